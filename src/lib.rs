//! device-sync keeps a shop's fleet of devices in step over WebSocket.
//!
//! Module map:
//! - `settings`: settings from `settings.toml`, built-in defaults and `DEVICE_SYNC__…` variables.
//! - `telemetry`: the `tracing` subscriber (text or JSON).
//! - `app`: starts the database, the actors and the HTTP server; graceful shutdown.
//! - `state`: what handlers and sessions share (settings, actor addresses, database for reads).
//! - `protocol`: the wire only: client frames into typed events, server messages into frames,
//!   error codes, times. Knows nothing of actors or the database.
//! - `domain`: rules without I/O (stations and orders, resume decisions), unit-tested.
//! - `actors`: Session (one per socket), Registry (who is connected), Broadcast (fan-out in
//!   `seq` order), Persistence (the only writer, group commit), and a session's outbox.
//! - `http`: REST by resource and the `/ws` upgrade; auth; the JSON error answer.
//! - `store`: read queries shared by REST, catch-up and Persistence.
//! - `sync`: sync reads (change pages, full snapshots, device sync states) for WebSocket and REST.
//!
//! The terminal client, the load generator and the benchmark are the workspace member `tools/`
//! (`device-sync-tools`): they import nothing of the server.

pub mod actors;
pub mod app;
pub mod domain;
pub mod http;
pub mod protocol;
pub mod settings;
pub mod store;
pub mod sync;
pub mod telemetry;
