//! The Registry actor: who is connected, since when, as which client. Sessions announce
//! themselves here (and only here); the Registry keeps Broadcast's subscriber list current.

use std::collections::HashMap;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::broadcast::{Broadcast, Outbound, Subscribe, Unsubscribe};

/// A session opened: remember it and start its broadcasts.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    pub session: Uuid,
    pub recipient: Recipient<Outbound>,
}

/// A session closed. Safe to send twice.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    pub session: Uuid,
}

/// A session told its client id (`connect`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Identify {
    pub session: Uuid,
    pub client_id: String,
}

/// How many sessions and devices are connected.
#[derive(Message)]
#[rtype(result = "RegistryStats")]
pub struct Stats;

/// The answer to `Stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, MessageResponse)]
pub struct RegistryStats {
    /// Open WebSocket sessions.
    pub sessions: usize,
    /// Sessions registered as a device.
    pub devices: usize,
}

struct Entry {
    client_id: Option<String>,
    device_id: Option<String>,
    connected_at: DateTime<Utc>,
}

/// The session registry.
pub struct Registry {
    sessions: HashMap<Uuid, Entry>,
    broadcast: Addr<Broadcast>,
}

impl Registry {
    pub fn new(broadcast: Addr<Broadcast>) -> Self {
        Self { sessions: HashMap::new(), broadcast }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;
}

impl Handler<Register> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Register, _: &mut Context<Self>) {
        self.sessions
            .insert(msg.session, Entry { client_id: None, device_id: None, connected_at: Utc::now() });
        self.broadcast.do_send(Subscribe { session: msg.session, recipient: msg.recipient });
        tracing::debug!(session = %msg.session, sessions = self.sessions.len(), "session registered");
    }
}

impl Handler<Unregister> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Unregister, _: &mut Context<Self>) {
        if let Some(entry) = self.sessions.remove(&msg.session) {
            self.broadcast.do_send(Unsubscribe { session: msg.session });
            let open_for = Utc::now() - entry.connected_at;
            tracing::debug!(
                session = %msg.session,
                client_id = entry.client_id.as_deref().unwrap_or("-"),
                open_ms = open_for.num_milliseconds(),
                sessions = self.sessions.len(),
                "session unregistered"
            );
        }
    }
}

impl Handler<Identify> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Identify, _: &mut Context<Self>) {
        if let Some(entry) = self.sessions.get_mut(&msg.session) {
            entry.client_id = Some(msg.client_id);
        }
    }
}

impl Handler<Stats> for Registry {
    type Result = RegistryStats;

    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> RegistryStats {
        RegistryStats {
            sessions: self.sessions.len(),
            devices: self.sessions.values().filter(|e| e.device_id.is_some()).count(),
        }
    }
}
