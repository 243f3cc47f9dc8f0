//! The Session actor: one per WebSocket connection.
//!
//! It decodes each frame into a typed event (the protocol module), answers what it can answer
//! itself (`ping`, `connect`, errors), hands changes to the Persistence actor, and writes what
//! the Broadcast actor sends it. It pings its client every `heartbeat.interval_s`, closes it
//! after `limits.idle_timeout_s` of silence, drops messages past `limits.messages_per_second`,
//! and closes it (4008) when it falls `limits.session_queue` frames behind.
//!
//! **The feed.** A client must see every change once, in `seq` order, including across
//! reconnects. A session therefore takes logged changes from Broadcast only once it is
//! *attached*: by its first message (`connect` or `device_online` with `last_seq` resumes from
//! there; anything else starts from where the log stood when the socket opened), or after a
//! short grace for clients that only listen. Attaching reads the change log from the resume
//! point, in chunks paced by the client's reading, while live changes wait in a small buffer;
//! when the log read reaches the buffer, the session goes live. If the buffer overflows it is
//! dropped and the log is read further: everything is in the log. A change this session made
//! is sent as its own reply (its `ack`), from the buffer or from the log, never twice. Those
//! rules are `domain::feed`, a state machine without I/O; this actor reads the log and writes
//! the frames it asks for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web::web::{Bytes, BytesMut};
use actix_web_actors::ws::{self, CloseReason, ProtocolError};
use uuid::Uuid;

use super::broadcast::Outbound;
use super::election::{Online, Seen};
use super::outbox::{self, Outbox};
use super::persistence::{Applied, Origin, Outcome, persist};
use super::registry::{Identify, Latency, Register, Stats, Transport, Unregister};
use crate::domain::caller::Caller;
use crate::domain::commands::{Command, Writer};
use crate::domain::feed::{self, Feed};
use crate::domain::records::Conflict;
use crate::domain::resume::{self, Resume};
use crate::protocol::inbound::{self, ClientEvent, Connect, Inbound, Intent, Rejected};
use crate::protocol::outbound::{
    self, Ack, Connected, ConnectionStatus, DeviceOnlineAck, Frame, Pong, Registered, ResyncRequired,
    SyncConflict, SyncConflictResolved,
};
use crate::protocol::{ErrorCode, WireError, close};
use crate::store;
use crate::store::receipts::Receipt;

/// How long a silent new session waits before it is attached to the live feed anyway.
pub const ATTACH_GRACE: Duration = Duration::from_secs(1);
/// How long `connection_status` waits for the first pong to report a latency.
const STATUS_WAIT: Duration = Duration::from_secs(1);
/// How long a session the server closes waits for the client's close frame (the close
/// handshake) before it ends the connection anyway.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(1);
/// How long a session whose connection failed goes on reading what arrived before the failure.
const LOST_LINGER: Duration = Duration::from_millis(50);

mod conformance;
mod context;
mod devices;
mod socketio;
mod sync;

pub use context::{ConnectionSlot, ConnectionSlots, SessionContext};
pub use socketio::{Authenticate, SocketIoWire, Wire};

/// The outbound queue fell low enough to read more of the log.
#[derive(Message)]
#[rtype(result = "()")]
struct Drained;

/// A reply that is sent once the session's catch-up is done (after the replay it follows).
enum Reply {
    Connected {
        reply_to: Option<String>,
    },
    DeviceOnline {
        reply_to: Option<String>,
        device_id: String,
        online: Online,
        sync_required: bool,
        legacy: bool,
    },
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A token bucket: `rate` messages a second, bursts of up to `rate`.
struct RateLimiter {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        Self { rate, tokens: rate, at: Instant::now() }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One WebSocket session.
pub struct Session {
    id: Uuid,
    id_text: String,
    cx: Arc<SessionContext>,
    /// `/ws` or Socket.IO.
    wire: Wire,
    outbox: Outbox,
    /// Its admission: a device session's slot, or, until a Socket.IO client joins, one of the
    /// few kept for sessions not yet joined.
    slot: ConnectionSlot,
    client_id: Option<String>,
    /// Who its token speaks as: a device's own token may register and write as that device
    /// only.
    caller: Option<Caller>,
    /// Its token's expiry (a JWT's) and the two timers watching it.
    expiry: Option<(chrono::DateTime<chrono::Utc>, [SpawnHandle; 2])>,
    /// The device this session registered as (`device_online`, `register_device`).
    device_id: Option<String>,
    last_seen: Instant,
    last_ping: Instant,
    ping_sent_at: Option<Instant>,
    rtt: Option<Duration>,
    /// The log's head when the socket opened: where a plain attach starts.
    opened_at: u64,
    /// Its place in the stream of logged changes (catch-up, resumes, live).
    feed: Feed<Frame>,
    /// The log read the feed asked for, while it waits for the client to read what it has.
    pending_read: Option<(u64, usize)>,
    /// Replies (`connected`, `device_online_ack`) waiting for the catch-up to finish.
    pending_replies: Vec<Reply>,
    /// When life was last reported to the Election actor.
    reported_life: Instant,
    /// `connection_status` waits for a pong to report latency.
    status_pending: bool,
    limiter: RateLimiter,
    fragments: Option<(bool, BytesMut)>,
    closing: bool,
    /// The connection failed; the session stops once it has read what arrived before.
    lost: bool,
    /// It was closed because its client fell silent (idle, or Engine.IO's ping timeout).
    silent: bool,
    /// Its `sync_request` answers.
    sync: sync::SyncAnswers,
    /// Answers to writes sent again, waiting until the feed has sent the change they name.
    answers_again: Vec<(u64, Frame)>,
    /// The `id` of the message being handled is its client's own (on Socket.IO an event's ack
    /// number stands in for a missing one; those restart at every connection and key no
    /// receipt).
    own_id: bool,
}

impl Session {
    /// A session speaking `wire`; `caller` is who its token speaks as (a Socket.IO session
    /// learns it when its client joins the namespace).
    pub fn new(
        cx: Arc<SessionContext>,
        wire: Wire,
        outbox: Outbox,
        slot: ConnectionSlot,
        caller: Option<Caller>,
    ) -> Self {
        let id = Uuid::new_v4();
        let now = Instant::now();
        let opened_at = cx.published.get();
        let rate = cx.limits.messages_per_second;
        // Log rows read per catch-up step, and the live buffer's bound while catching up.
        let chunk = cx.limits.session_queue / 4;
        Self {
            id,
            id_text: id.to_string(),
            cx,
            wire,
            outbox,
            slot,
            client_id: None,
            device_id: None,
            caller,
            expiry: None,
            last_seen: now,
            last_ping: now,
            ping_sent_at: None,
            rtt: None,
            opened_at,
            feed: Feed::new(chunk),
            pending_read: None,
            pending_replies: Vec::new(),
            reported_life: now,
            status_pending: false,
            limiter: RateLimiter::new(rate),
            fragments: None,
            closing: false,
            lost: false,
            silent: false,
            own_id: true,
            sync: sync::SyncAnswers::default(),
            answers_again: Vec::new(),
        }
    }

    // ---- writing ----------------------------------------------------------------------

    fn queue_limit(&self) -> usize {
        self.cx.limits.session_queue
    }

    /// Writes a frame, or closes the session (4008) if its client is too far behind.
    fn write(&mut self, ctx: &mut ws::WebsocketContext<Self>, frame: Frame) {
        if self.closing {
            return;
        }
        #[cfg(feature = "fault-injection")]
        if frame.reply_to().is_some_and(|id| self.cx.faults.drops_reply(id)) {
            tracing::warn!(session = %self.id, "fault injected: the connection drops before this answer");
            self.closing = true;
            self.outbox.end_reading();
            return ctx.stop();
        }
        let limits = &self.cx.limits;
        let too_many = self.outbox.pending() >= limits.session_queue;
        // Every frame the session has written counts: live traffic, catch-up and answers.
        let too_big = self.outbox.pending_bytes() + outbox::encoded_len(frame.json().len())
            > limits.session_queue_bytes;
        if too_many || too_big {
            tracing::warn!(session = %self.id, client = self.client_label(), frames = self.outbox.pending(),
                bytes = self.outbox.pending_live_bytes(), "slow consumer: closing");
            self.cx.metrics.slow_consumer_closed();
            self.cut_off(ctx, close::SLOW_CONSUMER, "slow consumer");
            return;
        }
        self.emit(ctx, frame, true);
    }

    /// Writes a frame whose pacing the catch-up (or a sync answer) already did: it counts as a
    /// frame, not as live traffic.
    fn write_paced(&mut self, ctx: &mut ws::WebsocketContext<Self>, frame: Frame) {
        self.emit(ctx, frame, false);
    }

    fn emit(&mut self, ctx: &mut ws::WebsocketContext<Self>, frame: Frame, live: bool) {
        if !self.closing {
            let text = match &mut self.wire {
                Wire::Plain => frame.json().clone(),
                // Before the client joins the namespace, it is sent nothing but Engine.IO's
                // own packets.
                Wire::SocketIo(sio) if !sio.joined() => return,
                Wire::SocketIo(sio) => sio.encode(&frame),
            };
            let size = text.len();
            ctx.text(text);
            self.outbox.note_written(size, live);
            self.cx.metrics.sent(frame.kind());
        }
    }

    fn send_error(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        error: &WireError,
        reply_to: Option<&str>,
    ) {
        let frame = outbound::error(error, reply_to);
        self.write(ctx, frame);
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: u16, reason: &str) {
        if self.closing {
            return;
        }
        self.closing = true;
        ctx.close(Some(CloseReason { code: code.into(), description: Some(reason.to_owned()) }));
        self.outbox.note_written(2 + reason.len(), false);
        // The connection ends when the client answers the close, or after a short wait.
        ctx.run_later(CLOSE_HANDSHAKE, |_, ctx| ctx.stop());
    }

    /// Closes a client that fell too far behind: its queue is dropped, and the close frame
    /// follows exactly what its socket already took (a gap-free prefix of its feed).
    fn cut_off(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: u16, reason: &str) {
        if self.closing {
            return;
        }
        self.closing = true;
        let mut frame = BytesMut::new();
        let reason = CloseReason { code: code.into(), description: Some(reason.into()) };
        actix_http::ws::Parser::write_close(&mut frame, Some(reason), false);
        self.outbox.cut_off(frame.freeze());
        ctx.run_later(CLOSE_HANDSHAKE, |_, ctx| ctx.stop());
    }

    fn ping(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.closing {
            return;
        }
        let now = Instant::now();
        self.last_ping = now;
        if self.ping_sent_at.is_none() {
            self.ping_sent_at = Some(now);
        }
        match self.wire {
            Wire::Plain => {
                ctx.ping(b"");
                self.outbox.note_written(0, false);
            }
            Wire::SocketIo(_) => self.send_packet(ctx, crate::protocol::socketio::PING.to_owned()),
        }
    }

    /// The answer to the last ping (a WebSocket pong, or Engine.IO's `3`): the round trip.
    fn on_pong(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(sent) = self.ping_sent_at.take() {
            let rtt = sent.elapsed();
            self.rtt = Some(rtt);
            self.cx.registry.do_send(Latency { session: self.id, rtt_ms: duration_ms(rtt) });
            if self.status_pending {
                self.send_status(ctx);
            }
        }
    }

    /// How often the client is pinged.
    fn ping_every(&self) -> Duration {
        match &self.wire {
            Wire::Plain => self.cx.heartbeat.interval(),
            Wire::SocketIo(sio) => sio.ping_interval(),
        }
    }

    fn client_label(&self) -> &str {
        self.client_id.as_deref().unwrap_or("-")
    }

    // ---- the feed of logged changes ---------------------------------------------------

    /// The last `seq` this session has handled, once attached.
    fn position(&self) -> Option<u64> {
        self.feed.position()
    }

    /// Hands `input` to the feed and carries out what it asks for.
    fn feed(&mut self, ctx: &mut ws::WebsocketContext<Self>, input: feed::Input<Frame>) {
        self.carry_out(ctx, input);
        self.answer_again_in_order(ctx);
    }

    fn carry_out(&mut self, ctx: &mut ws::WebsocketContext<Self>, input: feed::Input<Frame>) {
        for effect in self.feed.on(input) {
            match effect {
                feed::Effect::Send { frame, live: true } => self.write(ctx, frame),
                feed::Effect::Send { frame, live: false } => self.write_paced(ctx, frame),
                feed::Effect::Read { after, limit } => {
                    self.pending_read = Some((after, limit));
                    self.read_log(ctx);
                }
                feed::Effect::Live => self.flush_replies(ctx),
                feed::Effect::Trimmed { head } => {
                    tracing::info!(session = %self.id, head, "history trimmed under a catch-up");
                    let body =
                        ResyncRequired { epoch: &self.cx.epoch, head_seq: head, reason: "history_trimmed" };
                    let frame = outbound::render(&body, None);
                    self.write(ctx, frame);
                }
            }
        }
    }

    /// Attaches from where the log stood when the socket opened, if not attached yet.
    fn ensure_attached(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let after = self.opened_at;
        self.feed(ctx, feed::Input::Attach { after });
    }

    /// Whether the client has read enough of what it was sent for more to be read for it (at
    /// most half the frame bound and half the byte bound pending); if not, `Drained` comes when
    /// it has.
    fn drained(&mut self, ctx: &mut ws::WebsocketContext<Self>) -> bool {
        let low_water = self.queue_limit() / 2;
        let low_bytes = self.cx.limits.session_queue_bytes / 2;
        if self.outbox.pending() <= low_water && self.outbox.pending_bytes() <= low_bytes {
            return true;
        }
        let addr = ctx.address();
        self.outbox.notify_when_drained(low_water, low_bytes, move || addr.do_send(Drained));
        false
    }

    /// Reads the log chunk the feed asked for, once the client has read enough of what it was
    /// sent.
    fn read_log(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some((after, limit)) = self.pending_read else { return };
        if self.closing {
            return;
        }
        if !self.drained(ctx) {
            return;
        }
        self.pending_read = None;
        let db = self.cx.db.clone();
        // A chunk holds at most a quarter of the byte bound (and at least one change).
        let max_bytes = self.cx.limits.session_queue_bytes / 4;
        let read = async move {
            let rows = store::changes::frames_after(&db, after, limit as u64, max_bytes).await?;
            // Read after the rows: on several nodes another node may have pruned the log.
            let floor = store::changes::floor(&db).await?;
            Ok((rows, floor.seq))
        };
        ctx.spawn(read.into_actor(self).map(move |result, act, ctx| act.on_log_chunk(ctx, after, result)));
    }

    fn on_log_chunk(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        after: u64,
        result: Result<(Vec<store::changes::LoggedFrame>, u64), sea_orm::DbErr>,
    ) {
        let (rows, floor) = match result {
            Ok(read) => read,
            Err(err) => {
                tracing::error!(session = %self.id, %err, "change log could not be read for catch-up");
                let error = WireError::new(
                    ErrorCode::DatabaseUnavailable,
                    "The change log could not be read; reconnect with last_seq to resume",
                );
                self.send_error(ctx, &error, None);
                self.close(ctx, close::INTERNAL_ERROR, "catch-up failed");
                return;
            }
        };
        // The session's own changes are replayed as the reply it was sent (its `ack`), if any.
        let rows = rows
            .into_iter()
            .map(|row| {
                let own = row.origin_session.as_deref() == Some(self.id_text.as_str());
                let frame = match own {
                    // The reply it was sent, answering the message it answered (on Socket.IO, an
                    // acknowledgement).
                    true => row.reply_frame.map(Frame::stored_answer),
                    false => Some(Frame::stored(row.frame)),
                };
                feed::Row { seq: row.seq, frame }
            })
            .collect();
        let (floor, head) = (floor.max(self.cx.floor.get()), self.cx.published.get());
        self.feed(ctx, feed::Input::Chunk { after, rows, floor, head });
    }

    // ---- events -----------------------------------------------------------------------

    fn on_text(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: &str) {
        match self.wire {
            Wire::Plain => {
                let decoded = match inbound::parse_frame(text) {
                    Ok(message) => {
                        self.cx.metrics.received(inbound::type_of(&message));
                        inbound::decode_message(&message)
                    }
                    Err(rejected) => {
                        self.cx.metrics.received(None);
                        Err(rejected)
                    }
                };
                self.on_inbound(ctx, decoded)
            }
            Wire::SocketIo(_) => self.on_socketio_text(ctx, text),
        }
    }

    /// A decoded message, whichever transport brought it.
    fn on_inbound(&mut self, ctx: &mut ws::WebsocketContext<Self>, decoded: Result<Inbound, Rejected>) {
        match decoded {
            Err(Rejected { reply_to, error }) => {
                self.ensure_attached(ctx);
                self.send_error(ctx, &error, reply_to.as_deref());
            }
            Ok(Inbound { id, event }) => match event {
                ClientEvent::Connect(connect) => self.on_connect(ctx, id, connect),
                ClientEvent::Ping => {
                    self.ensure_attached(ctx);
                    let frame = outbound::render(&Pong {}, id.as_deref());
                    self.write(ctx, frame);
                }
                ClientEvent::Refresh { token } => self.on_refresh(ctx, id, token),
                event @ ClientEvent::Station(_) => {
                    // Stations need no device identity (cashier clients).
                    self.ensure_attached(ctx);
                    if let Intent::Change(change) = event.into_intent() {
                        self.submit(ctx, change, id);
                    }
                }
                ClientEvent::DeviceOnline(online) => self.on_device_online(ctx, id, online),
                event => {
                    self.ensure_attached(ctx);
                    self.on_device_event(ctx, id, event);
                }
            },
        }
    }

    /// Resumes from `last_seq` (replay, or `resync_required`), or attaches from where the log
    /// stood when the socket opened.
    fn resume(&mut self, ctx: &mut ws::WebsocketContext<Self>, last_seq: Option<u64>, epoch: Option<&str>) {
        let published = self.cx.published.get();
        if let Some(last) = last_seq.filter(|last| *last > published) {
            // Ahead of what this node has handed out, not necessarily of the log: another node
            // may have written it, or it is being published now. Decided against the log's head
            // (the changes up to `last` are then not sent again, and those after it are).
            let db = self.cx.db.clone();
            let epoch = epoch.map(str::to_owned);
            let read = async move { store::changes::bounds(&db).await.map(|(_, head)| head) };
            ctx.wait(read.into_actor(self).map(move |head, act, ctx| {
                let head = head.unwrap_or_else(|err| {
                    tracing::warn!(%err, "the log's head could not be read for a resume");
                    published
                });
                act.resume_against(ctx, last, epoch.as_deref(), head.max(published));
            }));
            return;
        }
        match last_seq {
            Some(last) => self.resume_against(ctx, last, epoch, published),
            None => self.ensure_attached(ctx),
        }
    }

    /// Resumes from `last_seq` against a log whose newest change is `head`.
    fn resume_against(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        last_seq: u64,
        epoch: Option<&str>,
        head: u64,
    ) {
        let floor = self.cx.floor.get();
        match resume::decide(epoch, last_seq, &self.cx.epoch, floor, head) {
            Resume::Resync { reason } => {
                let body = ResyncRequired { epoch: &self.cx.epoch, head_seq: head, reason };
                let frame = outbound::render(&body, None);
                self.write(ctx, frame);
                self.feed(ctx, feed::Input::Attach { after: head });
            }
            Resume::Replay { after } => self.feed(ctx, feed::Input::Resume { after }),
        }
    }

    fn on_connect(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reply_to: Option<String>,
        connect: Connect,
    ) {
        if let Err(error) = self.may_speak_for(connect.client_id.as_deref()) {
            return self.send_error(ctx, &error, reply_to.as_deref());
        }
        if let Some(client_id) = connect.client_id {
            self.cx.registry.do_send(Identify { session: self.id, client_id: client_id.clone() });
            self.client_id = Some(client_id);
        }
        self.resume(ctx, connect.last_seq, connect.epoch.as_deref());
        self.reply_when_live(ctx, Reply::Connected { reply_to });
    }

    /// `refresh`: a new JWT for the same device; the session's expiry moves to the new token's.
    /// A token that is not valid, or speaks for another device, is refused and the old one
    /// stays.
    fn on_refresh(&mut self, ctx: &mut ws::WebsocketContext<Self>, reply_to: Option<String>, token: String) {
        let lookup = (self.cx.authenticate)(Some(token));
        ctx.wait(lookup.into_actor(self).map(move |caller, act, ctx| {
            let same_device = |caller: &Caller| match (caller, &act.caller) {
                (Caller::Device { device_id: new, .. }, Some(Caller::Device { device_id: old, .. })) => {
                    new == old
                }
                (Caller::Device { .. }, _) => true,
                _ => false,
            };
            match caller {
                Some(caller) if same_device(&caller) => {
                    act.caller = Some(caller);
                    act.watch_expiry(ctx);
                    let frame = outbound::render(
                        &Ack { seq: act.position().unwrap_or(act.opened_at) },
                        reply_to.as_deref(),
                    );
                    act.write(ctx, frame);
                }
                _ => {
                    let error = WireError::new(
                        ErrorCode::Unauthorized,
                        "The new token is not valid, or not a token of this session's device",
                    );
                    act.send_error(ctx, &error, reply_to.as_deref());
                }
            }
        }));
    }

    /// With a token that expires (a JWT): at its `exp` the client is told to send a new one
    /// (`refresh`), and once `auth.jwt_refresh_s` more have passed without one the session is
    /// closed (4012).
    fn watch_expiry(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let expires = self.caller.as_ref().and_then(Caller::expires);
        if expires == self.expiry.as_ref().map(|(at, _)| *at) {
            return;
        }
        // The timers of the token before go: one pair at a time, however often it refreshes.
        for timer in self.expiry.take().into_iter().flat_map(|(_, timers)| timers) {
            ctx.cancel_future(timer);
        }
        let Some(expires) = expires else { return };
        let until =
            |at: chrono::DateTime<chrono::Utc>| (at - chrono::Utc::now()).to_std().unwrap_or_default();
        let refresh = self.cx.token_refresh;
        let told = ctx.run_later(until(expires), move |act, ctx| {
            if act.caller.as_ref().and_then(Caller::expires) == Some(expires) {
                let error = WireError::new(
                    ErrorCode::Unauthorized,
                    format!(
                        "The session's token has expired: send `refresh` with a new one within {} s",
                        refresh.as_secs_f64()
                    ),
                );
                act.send_error(ctx, &error, None);
            }
        });
        let closed = ctx.run_later(until(expires) + refresh, move |act, ctx| {
            // A refreshed session has a later expiry (and its own timers).
            if act.caller.as_ref().and_then(Caller::expires) == Some(expires) {
                act.close(ctx, close::TOKEN_EXPIRED, "token expired");
            }
        });
        self.expiry = Some((expires, [told, closed]));
    }

    /// Whether the session's token may speak for `id` (a device, or a cashier's `clientId`): a
    /// device's own token speaks for that device only.
    fn may_speak_for(&self, id: Option<&str>) -> Result<(), WireError> {
        match (&self.caller, id) {
            (Some(caller), Some(id)) => caller.speaks_for(id),
            _ => Ok(()),
        }
    }

    /// Sends `reply` now if the session is live, or once its catch-up is done.
    fn reply_when_live(&mut self, ctx: &mut ws::WebsocketContext<Self>, reply: Reply) {
        self.pending_replies.push(reply);
        if self.feed.is_live() {
            self.flush_replies(ctx);
        }
    }

    /// Sends the replies that waited for the catch-up, in order.
    fn flush_replies(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let last_seq = self.position().unwrap_or(self.opened_at);
        for reply in std::mem::take(&mut self.pending_replies) {
            match reply {
                Reply::Connected { reply_to } => {
                    let body = Connected {
                        success: true,
                        message: "Connected to server",
                        session_id: &self.id_text,
                        last_seq,
                        epoch: &self.cx.epoch,
                    };
                    let frame = outbound::render(&body, reply_to.as_deref());
                    self.write(ctx, frame);
                    self.connection_status(ctx);
                }
                Reply::DeviceOnline { reply_to, device_id, online, sync_required, legacy } => {
                    let role = online.role.as_str();
                    let frame = if legacy {
                        outbound::render(&Registered { device_id: &device_id, role }, reply_to.as_deref())
                    } else {
                        let body = DeviceOnlineAck {
                            status: "success",
                            device_id: &device_id,
                            role,
                            assigned_role: role,
                            current_master: online.current_master.as_deref(),
                            term: online.term,
                            sync_required,
                            last_seq,
                            epoch: &self.cx.epoch,
                            heartbeat_interval_ms: duration_ms(self.cx.heartbeat.interval()),
                            message: format!("Device {device_id} is online as {role}"),
                        };
                        outbound::render(&body, reply_to.as_deref())
                    };
                    self.write(ctx, frame);
                }
            }
        }
    }

    /// Sends `connection_status`, once the latency is known (or after a short wait).
    fn connection_status(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.rtt.is_some() {
            self.send_status(ctx);
        } else {
            self.status_pending = true;
            if self.ping_sent_at.is_none() {
                self.ping(ctx);
            }
            ctx.run_later(STATUS_WAIT, |act, ctx| {
                if act.status_pending {
                    act.send_status(ctx);
                }
            });
        }
    }

    fn send_status(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.status_pending = false;
        let latency_ms = self.rtt.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let connection_quality = match latency_ms {
            Some(ms) if ms < 50 => "excellent",
            Some(ms) if ms < 200 => "good",
            _ => "poor",
        };
        let stats = self.cx.registry.send(Stats);
        ctx.spawn(stats.into_actor(self).map(move |stats, act, ctx| {
            let active_devices = stats.map(|s| s.devices).unwrap_or(0);
            let body =
                ConnectionStatus { status: "connected", connection_quality, latency_ms, active_devices };
            let frame = outbound::render(&body, None);
            act.write(ctx, frame);
        }));
    }

    /// Hands a change to the Persistence actor. Success is answered through the feed (the
    /// `ack` comes in `seq` order with everything else); a refusal, or a conflict the stored copy
    /// won, is answered here. A change its client sent with an `id` of its own is applied at
    /// most once per writer (the device, or the cashier's `clientId`) and id: sent again, from
    /// this session or another, it is answered as it was the first time and changes nothing.
    fn submit(&mut self, ctx: &mut ws::WebsocketContext<Self>, command: Command, reply_to: Option<String>) {
        let writer = match (&self.device_id, &self.client_id) {
            (Some(device), _) => Some(Writer::Device(device.clone())),
            (None, Some(client)) => Some(Writer::Client(client.clone())),
            (None, None) => None,
        };
        let key = reply_to.clone().filter(|id| self.own_id && inbound::is_id(id));
        let command = match (writer, key) {
            (Some(writer), Some(id)) => Command::Receipted { writer, id, command: Box::new(command) },
            _ => command,
        };
        let origin =
            Origin::Session { session: self.id, device: self.device_id.clone(), reply_to: reply_to.clone() };
        let request = persist(&self.cx.persistence, command, origin);
        ctx.spawn(request.into_actor(self).map(move |result, act, ctx| match result {
            Ok(Applied { outcome: Outcome::Conflict(conflict), .. }) => {
                act.conflict_kept(ctx, &conflict, reply_to)
            }
            Ok(Applied { outcome: Outcome::Repeat(first), .. }) => act.answer_again(ctx, first, reply_to),
            Ok(_) => {}
            Err(err) => act.send_error(ctx, &err.to_wire(), reply_to.as_deref()),
        }));
    }

    /// Tells the writer that the stored copy was kept over its write.
    fn conflict_kept(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        conflict: &Conflict,
        reply_to: Option<String>,
    ) {
        // A device that reported the conflict itself is told only how it was resolved.
        let resolved_reply = if conflict.reported { reply_to.as_deref() } else { None };
        if !conflict.reported {
            self.write(ctx, outbound::render(&SyncConflict::of(conflict), reply_to.as_deref()));
        }
        self.write(ctx, outbound::render(&SyncConflictResolved::kept(conflict), resolved_reply));
    }

    /// A write sent again: its first answer, again (the change it made is not sent again). An
    /// answer naming change `seq` goes once the session has sent everything up to it, as the
    /// first answer went in `seq` order with the rest.
    fn answer_again(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        first: Receipt,
        reply_to: Option<String>,
    ) {
        let (seq, frame) = match first {
            Receipt::Applied { seq, reply: Some(reply) } => {
                // As it was sent, answering this id (a first answer given over REST had none).
                let mut reply: serde_json::Value = serde_json::from_str(&reply).unwrap_or_default();
                if let (Some(fields), Some(id)) = (reply.as_object_mut(), reply_to.as_deref()) {
                    fields.insert("reply_to".to_owned(), serde_json::Value::String(id.to_owned()));
                }
                (seq, Frame::stored_reply(reply.to_string(), reply_to.as_deref()))
            }
            Receipt::Applied { seq: Some(seq), reply: None } => {
                (Some(seq), outbound::render(&Ack { seq }, reply_to.as_deref()))
            }
            Receipt::Applied { seq: None, reply: None } => return,
            Receipt::Refused { error } => return self.send_error(ctx, &error, reply_to.as_deref()),
            Receipt::Kept { conflict } => return self.conflict_kept(ctx, &conflict, reply_to),
        };
        match seq {
            Some(seq) => {
                self.answers_again.push((seq, frame));
                self.answer_again_in_order(ctx);
            }
            None => self.write(ctx, frame),
        }
    }

    /// Sends the repeated answers whose change this session has sent (or passed) by now.
    fn answer_again_in_order(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.answers_again.is_empty() || !self.feed.is_live() {
            return;
        }
        let position = self.position().unwrap_or(0);
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.answers_again).into_iter().partition(|(seq, _)| *seq <= position);
        self.answers_again = later;
        for (_, frame) in due {
            self.write(ctx, frame);
        }
    }

    fn on_message_bytes(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: bool, data: Bytes) {
        // An attachment of a binary packet refused already is part of that packet.
        if !text && self.attachment_due() {
            return;
        }
        if !self.limiter.allow() {
            let reply_to =
                if text { std::str::from_utf8(&data).ok().and_then(inbound::peek_id) } else { None };
            let error = WireError::new(
                ErrorCode::RateLimited,
                format!(
                    "More than {} messages a second; this one was dropped",
                    self.cx.limits.messages_per_second
                ),
            );
            return self.send_error(ctx, &error, reply_to.as_deref());
        }
        if !text && self.in_conformance() {
            return self.on_conformance_binary(ctx, data);
        }
        if !text {
            let error = WireError::invalid(None, None, "binary frames are not accepted; send JSON text");
            return self.send_error(ctx, &error, None);
        }
        match std::str::from_utf8(&data) {
            Ok(text) => self.on_text(ctx, text),
            Err(_) => self.close(ctx, close::INVALID_DATA, "text frame is not UTF-8"),
        }
    }

    fn too_large(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let error = WireError::new(
            ErrorCode::MessageTooLarge,
            format!("A message is limited to {} bytes", self.cx.limits.max_message_bytes),
        );
        self.send_error(ctx, &error, None);
        self.close(ctx, close::TOO_BIG, "message too large");
    }

    fn on_continuation(&mut self, ctx: &mut ws::WebsocketContext<Self>, item: Item) {
        let limit = self.cx.limits.max_message_bytes;
        let (first, last, data) = match item {
            Item::FirstText(data) => (Some(true), false, data),
            Item::FirstBinary(data) => (Some(false), false, data),
            Item::Continue(data) => (None, false, data),
            Item::Last(data) => (None, true, data),
        };
        match (first, self.fragments.as_mut()) {
            (Some(is_text), _) => self.fragments = Some((is_text, BytesMut::from(&data[..]))),
            (None, Some((_, buf))) => buf.extend_from_slice(&data),
            (None, None) => {
                return self.close(ctx, close::PROTOCOL_ERROR, "continuation without a first frame");
            }
        }
        if self.fragments.as_ref().is_some_and(|(_, buf)| buf.len() > limit) {
            self.fragments = None;
            return self.too_large(ctx);
        }
        if last && let Some((is_text, buf)) = self.fragments.take() {
            self.on_message_bytes(ctx, is_text, buf.freeze());
        }
    }

    fn on_tick(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let now = Instant::now();
        let idle = self
            .socketio_silent(now)
            .unwrap_or_else(|| now.duration_since(self.last_seen) >= self.cx.limits.idle_timeout());
        if idle && !self.closing {
            tracing::info!(session = %self.id, client = self.client_label(), "idle timeout: closing");
            self.silent = true;
            return self.close(ctx, close::IDLE_TIMEOUT, "idle timeout");
        }
        if now.duration_since(self.last_ping) >= self.ping_every() {
            self.ping(ctx);
        }
        if let Some(device_id) = &self.device_id
            && self.last_seen > self.reported_life
        {
            self.reported_life = self.last_seen;
            let seen = Seen { device_id: device_id.clone(), session: self.id, at: self.last_seen };
            self.cx.election.do_send(seen);
        }
    }
}

impl Actor for Session {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let transport = match self.wire {
            Wire::Plain => Transport::Ws,
            Wire::SocketIo(_) => Transport::SocketIo,
        };
        let recipient = ctx.address().recipient();
        self.outbox.join_budget(&self.cx.queue_budget, self.id, recipient.clone());
        self.cx.registry.do_send(Register { session: self.id, recipient, transport });
        self.watch_expiry(ctx);
        let tick = self.ping_every().min(self.cx.limits.idle_timeout()) / 2;
        ctx.run_interval(tick.max(Duration::from_millis(10)), |act, ctx| act.on_tick(ctx));
        if let Wire::SocketIo(_) = self.wire {
            // A Socket.IO session attaches when its client joins the namespace, and is first
            // pinged after an interval (Engine.IO).
            self.socketio_open(ctx);
            self.last_ping = Instant::now();
        } else {
            ctx.run_later(ATTACH_GRACE, |act, ctx| act.ensure_attached(ctx));
            self.ping(ctx);
        }
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.outbox.leave_budget(self.id);
        self.cx.registry.do_send(Unregister { session: self.id, silent: self.silent });
        Running::Stop
    }
}

impl Handler<Outbound> for Session {
    type Result = ();

    fn handle(&mut self, msg: Outbound, ctx: &mut Self::Context) {
        match msg {
            Outbound::Frame { seq: Some(seq), frame } => {
                self.feed(ctx, feed::Input::Live { seq, frame: Some(frame) });
            }
            Outbound::Passed { seq } => self.feed(ctx, feed::Input::Live { seq, frame: None }),
            Outbound::Subscribed { head } => self.feed(ctx, feed::Input::Subscribed { head }),
            Outbound::CutOff => {
                tracing::warn!(session = %self.id, client = self.client_label(), bytes = self.outbox.pending_bytes(),
                    "the server's queue budget is exceeded: closing one of the largest queues");
                self.cx.metrics.slow_consumer_closed();
                self.cut_off(ctx, close::SLOW_CONSUMER, "slow consumer");
            }
            Outbound::Frame { seq: None, frame } => self.write(ctx, frame),
            Outbound::Close { code, reason } => self.close(ctx, code, reason),
            Outbound::Revoked(tokens) => {
                let token = self.caller.as_ref().and_then(Caller::token_id);
                if token.is_some_and(|token| tokens.iter().any(|t| t == token)) {
                    self.close(ctx, close::REVOKED, "token revoked");
                }
            }
        }
    }
}

impl Handler<Drained> for Session {
    type Result = ();

    fn handle(&mut self, _: Drained, ctx: &mut Self::Context) {
        self.read_log(ctx);
        self.start_sync(ctx);
    }
}

impl StreamHandler<Result<ws::Message, ProtocolError>> for Session {
    fn handle(&mut self, msg: Result<ws::Message, ProtocolError>, ctx: &mut Self::Context) {
        if self.closing {
            // Waiting for the client's answer to our close; nothing else is read. A decoding
            // error repeats at every poll (the decoder keeps the bad bytes): stop at once.
            if matches!(msg, Ok(ws::Message::Close(_)) | Err(_)) {
                self.outbox.end_reading();
                ctx.stop();
            }
            return;
        }
        self.last_seen = Instant::now();
        match msg {
            Ok(ws::Message::Text(text)) => {
                tracing::trace!(session = %self.id, bytes = text.len(), "text frame");
                self.on_message_bytes(ctx, true, text.into_bytes())
            }
            Ok(ws::Message::Binary(data)) => self.on_message_bytes(ctx, false, data),
            Ok(ws::Message::Continuation(item)) => self.on_continuation(ctx, item),
            Ok(ws::Message::Ping(data)) => {
                ctx.pong(&data);
                self.outbox.note_written(data.len(), false);
            }
            Ok(ws::Message::Pong(_)) => self.on_pong(ctx),
            Ok(ws::Message::Close(reason)) => {
                self.closing = true;
                let payload =
                    reason.as_ref().map_or(0, |r| 2 + r.description.as_ref().map_or(0, String::len));
                ctx.close(reason);
                self.outbox.note_written(payload, false);
                self.outbox.end_reading();
                ctx.stop();
            }
            Ok(ws::Message::Nop) => {}
            Err(ProtocolError::Overflow) => {
                self.too_large(ctx);
                ctx.stop();
            }
            Err(ProtocolError::Io(err)) => {
                // actix reports a text frame that is not UTF-8, and a frame with reserved bits
                // set, as I/O errors; anything else is the connection itself failing.
                if err.to_string().to_ascii_lowercase().contains("utf-8") {
                    self.close(ctx, close::INVALID_DATA, "text frame is not UTF-8");
                } else if err.kind() == std::io::ErrorKind::InvalidData {
                    self.protocol_error(ctx, &err);
                } else {
                    self.connection_lost(ctx, &err);
                }
            }
            Err(err) => self.protocol_error(ctx, &err),
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Session {
    /// A framing error from the decoder (RFC 6455 §7.1.7: fail the connection): the close frame
    /// goes out and the session stops at once, without the close handshake. The decoder keeps
    /// the bad bytes and reports them again at every poll, so reading on would spin.
    fn protocol_error(&mut self, ctx: &mut ws::WebsocketContext<Self>, err: &dyn std::fmt::Display) {
        tracing::debug!(session = %self.id, client = self.client_label(), %err, "protocol error: closing");
        self.close(ctx, close::PROTOCOL_ERROR, "protocol error");
        ctx.stop();
    }

    /// The connection failed (a reset, a read error): no more frames will come. What arrived
    /// before the failure is decoded right after it; then the session stops, and the Registry
    /// and the Election learn at once that the device dropped (`failure` after the grace),
    /// rather than waiting for its heartbeat to run out (`timeout`).
    fn connection_lost(&mut self, ctx: &mut ws::WebsocketContext<Self>, err: &std::io::Error) {
        if self.lost {
            return;
        }
        self.lost = true;
        tracing::debug!(session = %self.id, client = self.client_label(), %err, "connection lost");
        ctx.run_later(LOST_LINGER, |_, ctx| ctx.stop());
    }
}
