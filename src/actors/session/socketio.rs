//! A session spoken over Socket.IO (PROTOCOL.md section 10), on the Engine.IO websocket
//! transport: the same session, with Engine.IO's open packet and pings, the namespace
//! CONNECT in place of `connect`, events in place of `/ws` messages, and direct replies as
//! acknowledgements when the client asked for one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws;
use bytestring::ByteString;
use futures_util::future::LocalBoxFuture;
use serde_json::{Map, Value};

use super::{ConnectionSlots, Session, duration_ms};
use crate::domain::caller::Caller;
use crate::protocol::inbound::{self, ClientEvent, Rejected};
use crate::protocol::outbound::Frame;
use crate::protocol::socketio::{self, EnginePacket, PacketError, SioPacket};
use crate::protocol::{ErrorCode, WireError, close};

/// Who a token (or none) speaks as, or `None` when it opens nothing (a device's own token is
/// looked up in the database).
pub type Authenticate = Arc<dyn Fn(Option<String>) -> LocalBoxFuture<'static, Option<Caller>> + Send + Sync>;

/// How a session's frames are spoken.
pub enum Wire {
    /// `/ws`: one JSON object a text frame.
    Plain,
    /// `/socket.io/`: Engine.IO packets carrying Socket.IO packets.
    SocketIo(Box<SocketIoWire>),
}

/// A Socket.IO session's own state.
pub struct SocketIoWire {
    /// The Engine.IO session id (and the Socket.IO one: only the default namespace exists).
    sid: String,
    /// It may upgrade to websocket (it started on long-polling).
    upgrades: bool,
    /// The client joined the default namespace.
    joined: bool,
    /// The handshake request's token (`?token=` or the header), checked again when the client
    /// joins without one of its own.
    handshake_token: Option<String>,
    /// Events waiting for their acknowledgement: the reply's `reply_to` → the ack id.
    acks: HashMap<String, u64>,
    ping_interval: Duration,
    ping_timeout: Duration,
    /// The handlers of the protocol test suite in place of the fleet's (`socketio.conformance`).
    pub(super) conformance: Option<super::conformance::Conformance>,
    /// When the session opened: a client that has not joined the namespace within
    /// `pingInterval + pingTimeout` is closed (Socket.IO's own connect timeout is 45 s, the sum
    /// of the two defaults).
    opened: Instant,
    /// How long it may take to join the namespace.
    connect_timeout: Duration,
    /// The pool of device sessions' slots: joining takes one (the session's slot until then is
    /// one of the few kept for sessions not yet joined).
    joining: Option<Arc<ConnectionSlots>>,
    /// Binary attachments still to come of a binary packet already refused: they are part of
    /// it, and dropped without a word.
    attachments_due: usize,
}

impl SocketIoWire {
    /// A session `sid` (`upgrades` when it starts on long-polling).
    pub fn new(
        sid: String,
        upgrades: bool,
        handshake_token: Option<String>,
        ping_interval: Duration,
        ping_timeout: Duration,
    ) -> Self {
        Self {
            sid,
            upgrades,
            joined: false,
            handshake_token,
            acks: HashMap::new(),
            ping_interval,
            ping_timeout,
            opened: Instant::now(),
            connect_timeout: ping_interval + ping_timeout,
            joining: None,
            conformance: None,
            attachments_due: 0,
        }
    }

    /// How long the client may be silent before its session is gone.
    pub fn silence_limit(&self) -> Duration {
        self.ping_interval + self.ping_timeout
    }

    pub fn ping_interval(&self) -> Duration {
        self.ping_interval
    }

    /// The client joined the default namespace.
    pub fn joined(&self) -> bool {
        self.joined
    }

    /// Must join within `timeout`; with `slots`, joining takes one of them in place of its own.
    pub fn joining_within(mut self, timeout: Duration, slots: Option<Arc<ConnectionSlots>>) -> Self {
        self.connect_timeout = timeout;
        self.joining = slots;
        self
    }

    /// Serves the protocol test suite's handlers instead of the fleet's.
    pub fn for_conformance(mut self) -> Self {
        self.conformance = Some(Default::default());
        self.connect_timeout = super::conformance::CONNECT_TIMEOUT;
        self
    }

    /// The client joined a namespace (conformance mode).
    pub(super) fn mark_joined(&mut self) {
        self.joined = true;
    }

    /// A server message as this session sends it: the acknowledgement of the event it answers,
    /// or an event.
    pub fn encode(&mut self, frame: &Frame) -> ByteString {
        if let Some(ack) = frame.reply_to().and_then(|id| self.acks.remove(id)) {
            return ByteString::from(socketio::ack(ack, frame));
        }
        frame.socketio_event()
    }
}

impl Session {
    /// Sends an Engine.IO packet that is not a server message (open, ping, connect answers).
    pub(super) fn send_packet(&mut self, ctx: &mut ws::WebsocketContext<Self>, packet: String) {
        if !self.closing {
            let size = packet.len();
            ctx.text(packet);
            self.outbox.note_written(size, false);
        }
    }

    /// The Engine.IO open packet, first thing on the socket.
    pub(super) fn socketio_open(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Wire::SocketIo(sio) = &self.wire else { return };
        let handshake = socketio::Handshake {
            sid: &sio.sid,
            // On the websocket transport already, nothing to upgrade to.
            upgrades: if sio.upgrades { &["websocket"] } else { &[] },
            ping_interval: duration_ms(sio.ping_interval),
            ping_timeout: duration_ms(sio.ping_timeout),
            max_payload: self.cx.limits.max_message_bytes,
        };
        let open = socketio::open(&handshake);
        self.send_packet(ctx, open);
    }

    /// One Engine.IO packet from the client.
    pub(super) fn on_socketio_text(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: &str) {
        let packet = socketio::parse_engine(text);
        if let (Ok(EnginePacket::Message(_)), Wire::SocketIo(sio)) = (&packet, &mut self.wire) {
            // A binary packet's attachments come before any other packet.
            sio.attachments_due = 0;
        }
        match packet {
            Ok(EnginePacket::Message(packet)) if self.in_conformance() => {
                self.on_conformance_packet(ctx, packet)
            }
            Ok(EnginePacket::Message(packet)) => self.on_sio_packet(ctx, packet),
            Ok(EnginePacket::Pong(_)) => self.on_pong(ctx),
            Ok(EnginePacket::Ping(data)) => {
                let pong = format!("3{data}");
                self.send_packet(ctx, pong);
            }
            Ok(EnginePacket::Close) => {
                tracing::debug!(session = %self.id, "Engine.IO close from the client");
                self.close(ctx, crate::protocol::close::NORMAL, "closed by the client");
            }
            Ok(EnginePacket::Upgrade | EnginePacket::Noop) => {}
            Err(_) if self.in_conformance() => {
                self.close(ctx, crate::protocol::close::PROTOCOL_ERROR, "invalid packet");
            }
            // A binary attachment sent over long-polling (base64), of a packet refused already.
            Err(PacketError::Binary) if self.attachment_due() => {}
            Err(err) => self.refuse_packet(ctx, &err, None),
        }
    }

    fn on_sio_packet(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: &str) {
        let packet = match socketio::parse_sio(text) {
            Ok(packet) => packet,
            Err(err) => return self.refuse_packet(ctx, &err, None),
        };
        match packet {
            SioPacket::Connect { namespace, .. } if namespace != "/" => {
                let refusal = socketio::connect_error(&namespace, "Invalid namespace", None);
                self.send_packet(ctx, refusal);
            }
            SioPacket::Connect { auth, .. } => self.on_sio_connect(ctx, auth.unwrap_or_default()),
            SioPacket::Disconnect { namespace } if namespace == "/" => {
                tracing::debug!(session = %self.id, "Socket.IO disconnect from the client");
                self.close(ctx, crate::protocol::close::NORMAL, "disconnected by the client");
            }
            SioPacket::Event { namespace, ack, name, argument } if namespace == "/" && self.joined() => {
                let own_id = argument.as_ref().is_some_and(|a| a.get("id").is_some_and(|id| !id.is_null()));
                let message = match socketio::event_message(&name, argument, ack) {
                    Ok(message) => message,
                    Err(ack) => {
                        let error =
                            WireError::invalid(None, None, "an event's argument must be a JSON object");
                        return self.refuse(ctx, &error, ack);
                    }
                };
                self.cx.metrics.received(inbound::type_of(&message));
                let decoded = inbound::decode_message(&message);
                if let (Some(ack), Some(id)) = (ack, decoded_id(&decoded)) {
                    self.wait_for_reply(id, ack);
                }
                // An id the event did not carry stands for its ack number: it keys no receipt.
                self.own_id = own_id;
                self.on_inbound(ctx, decoded);
                self.own_id = true;
            }
            SioPacket::Binary { ack, attachments, .. } => {
                if let Wire::SocketIo(sio) = &mut self.wire {
                    sio.attachments_due = attachments.min(inbound::MAX_ITEMS);
                }
                let error = WireError::invalid(None, None, "binary events are not accepted; send JSON");
                self.refuse(ctx, &error, ack);
            }
            // Events for a namespace the client has not joined, acks of server events (the
            // server asks for none), a disconnect from another namespace: nothing to do.
            SioPacket::Event { .. } | SioPacket::Ack { .. } | SioPacket::Disconnect { .. } => {
                tracing::debug!(session = %self.id, "Socket.IO packet ignored");
            }
        }
    }

    /// The namespace CONNECT: checks the token, joins, and does what `/ws`'s `connect` does
    /// with the payload's `clientId`, `last_seq` and `epoch`.
    fn on_sio_connect(&mut self, ctx: &mut ws::WebsocketContext<Self>, mut auth: Map<String, Value>) {
        let Wire::SocketIo(sio) = &mut self.wire else { return };
        let token = match auth.remove("token") {
            Some(Value::String(token)) => Some(token),
            Some(_) => return self.sio_join(ctx, None, true, auth),
            // Checked again now: it may have been revoked, or have expired, since the handshake.
            None => sio.handshake_token.clone(),
        };
        let presented = token.is_some();
        // Looked up before anything else the client sent is read.
        let lookup = (self.cx.authenticate)(token);
        ctx.wait(
            lookup.into_actor(self).map(move |caller, act, ctx| act.sio_join(ctx, caller, presented, auth)),
        );
    }

    /// Joins the namespace as `caller`, or refuses the CONNECT without one.
    fn sio_join(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        caller: Option<Caller>,
        presented: bool,
        mut auth: Map<String, Value>,
    ) {
        let Wire::SocketIo(sio) = &mut self.wire else { return };
        let Some(caller) = caller else {
            let message = if presented { "The token is not valid" } else { "This server needs a token" };
            let refusal = socketio::connect_error("/", message, Some(ErrorCode::Unauthorized.as_str()));
            return self.send_packet(ctx, refusal);
        };
        if sio.joined {
            return;
        }
        if let Some(slots) = sio.joining.take() {
            match slots.try_acquire() {
                Some(slot) => self.slot = slot,
                None => {
                    let message = "The server is at its connection limit";
                    let refusal =
                        socketio::connect_error("/", message, Some(ErrorCode::ServerError.as_str()));
                    self.send_packet(ctx, refusal);
                    return self.close(ctx, close::GOING_AWAY, "connection limit");
                }
            }
        }
        sio.joined = true;
        let joined = socketio::connected(&sio.sid);
        self.caller = Some(caller);
        self.watch_expiry(ctx);
        self.send_packet(ctx, joined);
        auth.insert("type".to_owned(), Value::String("connect".to_owned()));
        match inbound::decode_message(&Value::Object(auth)) {
            Ok(inbound) => self.on_inbound(ctx, Ok(inbound)),
            Err(Rejected { error, .. }) => {
                // A bad `last_seq` or `epoch`: said, and the session attaches as a new one.
                self.send_error(ctx, &error, None);
                self.on_inbound(
                    ctx,
                    Ok(inbound::Inbound { id: None, event: ClientEvent::Connect(Default::default()) }),
                );
            }
        }
    }

    /// Whether a binary frame is an attachment of a binary packet refused already (and counts
    /// it as taken).
    pub(super) fn attachment_due(&mut self) -> bool {
        match &mut self.wire {
            Wire::SocketIo(sio) if sio.attachments_due > 0 => {
                sio.attachments_due -= 1;
                true
            }
            _ => false,
        }
    }

    fn joined(&self) -> bool {
        matches!(&self.wire, Wire::SocketIo(sio) if sio.joined())
    }

    pub(super) fn in_conformance(&self) -> bool {
        matches!(&self.wire, Wire::SocketIo(sio) if sio.conformance.is_some())
    }

    /// The reply to message `id` goes out as the acknowledgement `ack`.
    fn wait_for_reply(&mut self, id: String, ack: u64) {
        if let Wire::SocketIo(sio) = &mut self.wire {
            sio.acks.insert(id, ack);
        }
    }

    /// An error for a packet the session cannot take; the session stays.
    fn refuse(&mut self, ctx: &mut ws::WebsocketContext<Self>, error: &WireError, ack: Option<u64>) {
        let reply_to = ack.map(|ack| ack.to_string());
        if let (Some(ack), Some(id)) = (ack, reply_to.clone()) {
            self.wait_for_reply(id, ack);
        }
        self.send_error(ctx, error, reply_to.as_deref());
    }

    fn refuse_packet(&mut self, ctx: &mut ws::WebsocketContext<Self>, err: &PacketError, ack: Option<u64>) {
        let error = WireError::invalid(None, None, err.to_string());
        self.refuse(ctx, &error, ack);
    }

    /// Whether the client has been silent past Engine.IO's limit.
    pub(super) fn socketio_silent(&self, now: Instant) -> Option<bool> {
        match &self.wire {
            Wire::SocketIo(sio) => {
                let silent = now.duration_since(self.last_seen) >= sio.silence_limit();
                let never_joined = !sio.joined && now.duration_since(sio.opened) >= sio.connect_timeout;
                Some(silent || never_joined)
            }
            Wire::Plain => None,
        }
    }
}

fn decoded_id(decoded: &Result<inbound::Inbound, Rejected>) -> Option<String> {
    match decoded {
        Ok(inbound) => inbound.id.clone(),
        Err(rejected) => rejected.reply_to.clone(),
    }
}
