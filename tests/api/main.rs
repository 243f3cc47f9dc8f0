//! Integration tests: real servers (`spawn_app`) on loopback, real WebSocket and HTTP clients,
//! real SQLite files. One module per scenario.

mod helpers;
mod metrics;
mod process;

mod admin;
mod auth;
mod bad_input;
mod binary;
mod broadcast;
mod election;
mod framing;
mod fuzz;
mod heartbeat;
mod network;
mod openapi;
mod operations;
mod persistence;
mod recovery;
mod reliability;
mod retention;
mod shutdown;
mod slow_consumer;
mod soak;
mod socketio;
mod socketio_clients;
mod sync;
mod sync_state;
