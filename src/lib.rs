//! device-sync keeps a shop's fleet of devices in step over WebSocket.
//!
//! Module map:
//! - `settings`: settings from `settings.toml`, built-in defaults and `DEVICE_SYNC__…` variables.
//! - `telemetry`: the `tracing` subscriber (text or JSON).
//! - `app`: starts the database, the actors and the HTTP server; graceful shutdown.
//! - `backup`: `device-sync backup` and `restore` of the SQLite database.
//! - `protocol`: the wire only: client frames into typed events (`inbound`), every message the
//!   server sends (`outbound`, with the list `Kind`), error codes, close codes, times. Imports
//!   nothing of the server but `domain`.
//! - `domain`: rules without I/O, unit-tested: stations and orders, records and conflicts, the
//!   write commands, the fleet's records, resume decisions, a session's feed.
//! - `actors`: Session (one per socket), Registry (who is connected), Election (who is master:
//!   `election/elector.rs`), Broadcast (fan-out in `seq` order), Persistence (where a write is
//!   committed: the only writer, group commit), and a session's outbox.
//! - `http`: REST by resource and the `/ws` upgrade; `AppState`; auth extractors; the JSON error
//!   answer.
//! - `store`: each table's reads and writes side by side (the writes are the Persistence
//!   actor's alone); `log`, the write path's storage seam.
//! - `cluster`: several nodes over one Postgres database: delivery from the shared log, each
//!   node's liveness and the election lease.
//! - `metrics`: the Prometheus figures, counted where things happen, one registry per server.
//! - `sync`: sync reads (change pages, full snapshots, device sync states) for WebSocket and REST.
//! - `faults`: faults tests inject into a running server (`fault-injection` builds only).
//! - `tokens`: `device-sync token`, devices' own tokens from the command line.
//!
//! The terminal client, the load generator and the benchmark are the workspace member `tools/`
//! (`device-sync-tools`): they import nothing of the server.

pub mod actors;
pub mod app;
pub mod backup;
pub mod cluster;
pub mod domain;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod http;
pub mod metrics;
pub mod protocol;
pub mod settings;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod tokens;
