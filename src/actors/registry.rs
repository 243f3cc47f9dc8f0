//! The Registry actor: who is connected, since when, as which client and which device.
//! Sessions announce themselves here (and only here); the Registry keeps Broadcast's subscriber
//! list current, binds sessions to devices (a newer session for the same device replaces the
//! older one), and tells the Election actor when a device's session ends.

use std::collections::HashMap;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::broadcast::{Broadcast, Outbound, Subscribe, Unsubscribe};
use super::election::{self, Departure, DeviceGone, Election, Online, SessionEnded};
use crate::protocol::inbound;
use crate::protocol::outbound;
use crate::protocol::{ErrorCode, WireError, close};

/// A session opened: remember it and start its broadcasts.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    pub session: Uuid,
    pub recipient: Recipient<Outbound>,
    pub transport: Transport,
}

/// Which protocol a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `/ws`.
    Ws,
    /// `/socket.io/`.
    SocketIo,
}

impl Transport {
    /// Its name in figures and on the admin page.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ws => "ws",
            Self::SocketIo => "socketio",
        }
    }
}

/// A session closed. Safe to send twice.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    pub session: Uuid,
    /// It was closed because its client fell silent (for the election, a timeout).
    pub silent: bool,
}

/// A session told its client id (`connect`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Identify {
    pub session: Uuid,
    pub client_id: String,
}

/// A session registers as a device (`device_online`, `register_device`): bind it, replacing
/// an older session of the same device, and register the device with the Election actor.
#[derive(Message)]
#[rtype(result = "Result<Online, WireError>")]
pub struct BindDevice {
    pub session: Uuid,
    pub info: inbound::DeviceOnline,
}

/// A session measured its round trip to its client.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Latency {
    pub session: Uuid,
    pub rtt_ms: u64,
}

/// Each device's current session: its transport and round trip.
#[derive(Message)]
#[rtype(result = "Vec<DeviceSession>")]
pub struct DeviceSessions;

/// A device's current session, as `DeviceSessions` gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSession {
    pub device_id: String,
    pub transport: Transport,
    pub rtt_ms: Option<u64>,
    pub connected_at: DateTime<Utc>,
}

/// How many sessions and devices are connected.
#[derive(Message)]
#[rtype(result = "RegistryStats")]
pub struct Stats;

/// The answer to `Stats`.
#[derive(Debug, Clone, Copy, PartialEq, MessageResponse)]
pub struct RegistryStats {
    /// Open sessions.
    pub sessions: usize,
    /// Of those, the ones on `/socket.io/`.
    pub socketio_sessions: usize,
    /// Sessions registered as a device.
    pub devices: usize,
    /// The mean round trip of the sessions that measured one, in milliseconds.
    pub mean_rtt_ms: Option<f64>,
}

struct Entry {
    recipient: Recipient<Outbound>,
    transport: Transport,
    client_id: Option<String>,
    device_id: Option<String>,
    connected_at: DateTime<Utc>,
    rtt_ms: Option<u64>,
}

/// The session registry.
pub struct Registry {
    sessions: HashMap<Uuid, Entry>,
    /// Each device's current session.
    devices: HashMap<String, Uuid>,
    broadcast: Addr<Broadcast>,
    election: Addr<Election>,
}

impl Registry {
    pub fn new(broadcast: Addr<Broadcast>, election: Addr<Election>) -> Self {
        Self { sessions: HashMap::new(), devices: HashMap::new(), broadcast, election }
    }

    /// Unbinds `device_id` from `session`, if it is bound to it.
    fn unbind(&mut self, device_id: &str, session: Uuid) -> bool {
        if self.devices.get(device_id) == Some(&session) {
            self.devices.remove(device_id);
            if let Some(entry) = self.sessions.get_mut(&session) {
                entry.device_id = None;
            }
            true
        } else {
            false
        }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;
}

impl Handler<Register> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Register, _: &mut Context<Self>) {
        self.broadcast.do_send(Subscribe { session: msg.session, recipient: msg.recipient.clone() });
        self.sessions.insert(
            msg.session,
            Entry {
                recipient: msg.recipient,
                transport: msg.transport,
                client_id: None,
                device_id: None,
                connected_at: Utc::now(),
                rtt_ms: None,
            },
        );
        tracing::debug!(session = %msg.session, sessions = self.sessions.len(), "session registered");
    }
}

impl Handler<Unregister> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Unregister, _: &mut Context<Self>) {
        let Some(entry) = self.sessions.remove(&msg.session) else { return };
        self.broadcast.do_send(Unsubscribe { session: msg.session });
        // After the departure below: the election forgets the session once told of it.
        let ended = SessionEnded { session: msg.session };
        if let Some(device_id) = entry.device_id
            && self.devices.get(&device_id) == Some(&msg.session)
        {
            self.devices.remove(&device_id);
            self.election.do_send(DeviceGone {
                device_id,
                session: msg.session,
                how: if msg.silent { Departure::Silent } else { Departure::Dropped },
                note: None,
            });
        }
        self.election.do_send(ended);
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

impl Handler<Identify> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Identify, _: &mut Context<Self>) {
        if let Some(entry) = self.sessions.get_mut(&msg.session) {
            entry.client_id = Some(msg.client_id);
        }
    }
}

impl Handler<BindDevice> for Registry {
    type Result = ResponseActFuture<Self, Result<Online, WireError>>;

    fn handle(&mut self, msg: BindDevice, _: &mut Context<Self>) -> Self::Result {
        let refuse = |error: WireError| -> Self::Result { Box::pin(fut::ready(Err(error))) };
        let device_id = msg.info.device_id.clone();
        let Some(entry) = self.sessions.get(&msg.session) else {
            return refuse(WireError::new(ErrorCode::ServerError, "The session is closing"));
        };
        if let Some(bound) = entry.device_id.as_ref().filter(|bound| **bound != device_id) {
            return refuse(WireError::new(
                ErrorCode::InsufficientPermissions,
                format!("This session speaks for device {bound}"),
            ));
        }
        let recipient = entry.recipient.clone();
        if let Some(old) = self.devices.get(&device_id).copied().filter(|old| *old != msg.session) {
            self.unbind(&device_id, old);
            if let Some(old_entry) = self.sessions.get(&old) {
                tracing::info!(device = %device_id, old = %old, new = %msg.session, "session replaced");
                let error = WireError::new(
                    ErrorCode::SessionReplaced,
                    format!("Device {device_id} connected again from a newer session"),
                );
                old_entry
                    .recipient
                    .do_send(Outbound::Frame { seq: None, frame: outbound::error(&error, None) });
                old_entry
                    .recipient
                    .do_send(Outbound::Close { code: close::SESSION_REPLACED, reason: "session replaced" });
            }
        }
        self.devices.insert(device_id.clone(), msg.session);
        if let Some(entry) = self.sessions.get_mut(&msg.session) {
            entry.device_id = Some(device_id.clone());
        }
        let session = msg.session;
        let request = self.election.send(election::DeviceOnline { session, recipient, info: msg.info });
        Box::pin(request.into_actor(self).map(move |result, act, _| {
            let result = result.unwrap_or_else(|_| {
                Err(WireError::new(ErrorCode::ServerError, "The election service is unavailable"))
            });
            if result.is_err() {
                act.unbind(&device_id, session);
            }
            result
        }))
    }
}

impl Handler<Latency> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Latency, _: &mut Context<Self>) {
        if let Some(entry) = self.sessions.get_mut(&msg.session) {
            entry.rtt_ms = Some(msg.rtt_ms);
        }
    }
}

impl Handler<DeviceSessions> for Registry {
    type Result = MessageResult<DeviceSessions>;

    fn handle(&mut self, _: DeviceSessions, _: &mut Context<Self>) -> MessageResult<DeviceSessions> {
        let sessions = self
            .devices
            .iter()
            .filter_map(|(device_id, session)| {
                let entry = self.sessions.get(session)?;
                Some(DeviceSession {
                    device_id: device_id.clone(),
                    transport: entry.transport,
                    rtt_ms: entry.rtt_ms,
                    connected_at: entry.connected_at,
                })
            })
            .collect();
        MessageResult(sessions)
    }
}

impl Handler<Stats> for Registry {
    type Result = RegistryStats;

    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> RegistryStats {
        let rtts: Vec<u64> = self.sessions.values().filter_map(|e| e.rtt_ms).collect();
        let mean_rtt_ms = (!rtts.is_empty()).then(|| rtts.iter().sum::<u64>() as f64 / rtts.len() as f64);
        let socketio_sessions = self.sessions.values().filter(|e| e.transport == Transport::SocketIo).count();
        RegistryStats {
            sessions: self.sessions.len(),
            socketio_sessions,
            devices: self.devices.len(),
            mean_rtt_ms,
        }
    }
}

/// These devices' own tokens were revoked: every session opened with one of them is closed
/// (4011). Each session knows its own token; the registry tells them all.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RevokeTokens(pub Vec<String>);

impl Handler<RevokeTokens> for Registry {
    type Result = ();

    fn handle(&mut self, msg: RevokeTokens, _: &mut Context<Self>) {
        if msg.0.is_empty() {
            return;
        }
        let tokens: std::sync::Arc<[String]> = msg.0.into();
        for entry in self.sessions.values() {
            entry.recipient.do_send(Outbound::Revoked(std::sync::Arc::clone(&tokens)));
        }
    }
}
