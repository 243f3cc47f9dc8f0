//! The wire, and only the wire: client frames into typed events (`inbound`), server messages
//! into shared frames (`outbound`), the error codes (`error`), the WebSocket close codes
//! (`close`), the time format (`time`), and Socket.IO's packets (`socketio`).
//! Knows nothing of actors or the database.

#[cfg(test)]
mod asyncapi;
pub mod close;
pub mod error;
pub mod inbound;
pub mod outbound;
pub mod socketio;
pub mod time;

pub use error::{ErrorCode, WireError};
