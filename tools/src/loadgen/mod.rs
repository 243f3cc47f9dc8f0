//! `device-sync loadgen`: load against a running server, over `/ws` or Socket.IO, to size a
//! shop's server and to measure this one. Each mode prints a report (text, or JSON with
//! `--json`). `device-sync bench` runs them all against fresh servers and writes
//! `docs/PERFORMANCE.md`.
//!
//! - `catchup`: how long a device takes to pull N missed changes through `sync_request` paging.
//! - `failover`: the master leaves; time until every device has heard of its successor.
//! - `fanout`: broadcast latency, throughput, loss, server CPU and memory; stuck clients.
//! - `idle`: N sessions held open; connect times, failures, server memory per session.

pub mod bench;
pub mod catchup;
pub mod chart;
pub mod client;
pub mod cpus;
pub mod failover;
pub mod fanout;
pub mod idle;
pub mod procfs;
pub mod progress;
pub mod report;
pub mod servers;
pub mod stats;
pub mod wire;
