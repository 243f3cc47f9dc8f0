//! Integration tests: real servers (`spawn_app`) on loopback, real WebSocket and HTTP clients,
//! real SQLite files (or, in `make test-postgres`, a database of its own on a real Postgres).
//! One module per scenario; `several_nodes` runs on Postgres only.

mod helpers;
mod idle;
mod metrics;
mod process;

mod admin;
mod admission;
mod auth;
mod backup;
mod bad_input;
mod binary;
mod broadcast;
mod cross_site;
mod device_tokens;
mod election;
// Its faults are injected: `make test` builds with them.
#[cfg(feature = "fault-injection")]
mod exactly_once;
mod framing;
mod fuzz;
mod heartbeat;
mod jwt;
mod network;
mod openapi;
mod operations;
mod persistence;
mod recovery;
mod reliability;
mod retention;
mod several_nodes;
mod shutdown;
mod slow_consumer;
mod soak;
mod socketio;
mod socketio_clients;
mod sync;
mod sync_state;
mod tls;
