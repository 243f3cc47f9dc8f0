//! `device-sync loadgen`: load against a running server, speaking the plain protocol, to size a
//! shop's server and to measure this one. Each mode prints a report (text, or JSON with
//! `--json`).
//!
//! - `catchup`: how long a device takes to pull N missed changes through `sync_request` paging.
//! - `fanout`: broadcast latency, throughput, loss, server CPU and memory; stuck clients.

pub mod catchup;
pub mod client;
pub mod fanout;
pub mod procfs;
pub mod report;
pub mod stats;
