//! The actors, one per file, with their messages beside them.
//!
//! - `session`: one per WebSocket; decodes frames, answers, feeds its client in `seq` order.
//! - `outbox`: a session's bounded outbound queue and the pump that keeps it running (not an actor).
//! - `registry`: who is connected, as which client; keeps Broadcast's subscriber list current.
//! - `broadcast`: fans each committed change out to every session, rendered once.
//! - `persistence`: the only writer; commits changes (group commit), assigns `seq`, publishes.
//! - `election`: the devices as elections see them, the master and the term; heartbeat
//!   deadlines; elections with ack, retry and backoff.

pub mod broadcast;
pub mod election;
pub mod outbox;
pub mod persistence;
pub mod registry;
pub mod session;
