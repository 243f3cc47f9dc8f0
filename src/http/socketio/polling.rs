//! Engine.IO's HTTP long-polling transport, and the bridge that keeps a polling session's
//! Session actor in one place while its requests come and go.
//!
//! A polling session's actor runs on the worker that took its handshake, behind a WebSocket of
//! its own that no socket carries: what the client POSTs is handed to it as WebSocket frames,
//! and what it writes stays in its outbox (with the same bounds as any session) until a GET
//! takes it. The poller task, on the actor's thread, takes frames out of the outbox only when a
//! GET (or, after an upgrade, the websocket) asks, so a client that stops polling falls behind
//! and is closed like any slow consumer. Requests reach the bridge from any worker; only
//! thread-safe channels cross.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_http::ws::{OpCode, Parser};
use actix_web::web::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};

use crate::actors::outbox::OutboxBody;
use crate::protocol::socketio::RECORD_SEPARATOR;

/// What the poller hands a GET: the packets waiting (joined for the body), or the end.
pub enum Taken {
    Packets(Vec<String>),
    /// The session ended while this poll waited: it is answered with a noop, and the next
    /// request learns the session is gone.
    Closed,
    /// The session is gone (ended, or silent past its limit): the request is refused.
    Gone,
    /// The session has upgraded to websocket: no more polls (it stays).
    Upgraded,
}

/// How long a poll that comes after the upgrade's probe is held before its noop: long enough
/// for the client's `5` (sent at once by a client that polls no more) to complete the upgrade.
const PROBED_POLL_WAIT: Duration = Duration::from_millis(100);

/// Where the poller delivers once the session has upgraded to websocket.
pub type Upgraded = mpsc::Sender<String>;

enum Ask {
    /// A GET waits for packets.
    Poll(oneshot::Sender<Taken>),
    /// From now on, deliver everything to the upgraded websocket.
    Upgrade(Upgraded),
    /// End the pending poll with a noop (the upgrade's probe succeeded).
    Noop,
}

/// A polling session, as every worker reaches it.
pub struct Bridge {
    /// Frames for the Session actor (masked client WebSocket frames).
    input: mpsc::UnboundedSender<Bytes>,
    asks: mpsc::UnboundedSender<Ask>,
    /// A GET is waiting (Engine.IO allows one at a time).
    polling: Mutex<bool>,
    /// A websocket has taken the session over (or is probing): no other transport may.
    upgrading: std::sync::atomic::AtomicBool,
    /// The upgrade is complete.
    upgraded: watch::Sender<bool>,
    /// The upgrade's probe succeeded: the client polls no more.
    probed: std::sync::atomic::AtomicBool,
    /// When the client last sent anything, and how long it may be silent.
    last_heard: Mutex<std::time::Instant>,
    silence_limit: Duration,
}

impl Bridge {
    /// A bridge whose actor reads `input`'s other end, and its poller over `outbox`.
    pub fn start(
        input: mpsc::UnboundedSender<Bytes>,
        outbox: OutboxBody,
        max_size: usize,
        silence_limit: Duration,
        sessions: Arc<PollingSessions>,
        sid: String,
    ) -> Arc<Self> {
        let (asks, asked) = mpsc::unbounded_channel();
        actix_web::rt::spawn(async move {
            poller(outbox, asked, max_size, silence_limit).await;
            // The session has ended (or upgraded and then ended): forget it.
            sessions.remove(&sid);
        });
        Arc::new(Self {
            input,
            asks,
            polling: Mutex::new(false),
            upgrading: Default::default(),
            upgraded: watch::Sender::new(false),
            probed: Default::default(),
            last_heard: Mutex::new(std::time::Instant::now()),
            silence_limit,
        })
    }

    /// Hands the client's packets to the session, in order. `false` once it has ended.
    pub fn send(&self, packets: &str) -> bool {
        *self.last_heard.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            std::time::Instant::now();
        packets.split(RECORD_SEPARATOR).filter(|p| !p.is_empty()).all(|packet| {
            let mut frame = BytesMut::new();
            Parser::write_message(&mut frame, packet, OpCode::Text, true, true);
            self.input.send(frame.freeze()).is_ok()
        })
    }

    /// Waits (at most `wait`) for what the session has written. `None` when another GET is
    /// already waiting.
    pub async fn poll(&self, wait: Duration) -> Option<Taken> {
        let heard = *self.last_heard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.probed.load(std::sync::atomic::Ordering::Acquire) {
            // A poll the client sent before it heard the probe's answer: it ends with a noop,
            // as the one waiting did, unless the upgrade completes meanwhile (then the session
            // is the websocket's and polls are refused).
            let mut upgraded = self.upgraded.subscribe();
            let done = tokio::time::timeout(PROBED_POLL_WAIT, upgraded.wait_for(|done| *done)).await;
            return Some(match done {
                Ok(Ok(_)) => Taken::Upgraded,
                _ => noop(),
            });
        }
        if heard.elapsed() >= self.silence_limit {
            // Silent past Engine.IO's limit: the session is closing.
            return Some(Taken::Gone);
        }
        // Held until this poll is answered or its request is dropped (actix drops it when the
        // connection fails; one the client half-closes is held until answered).
        let _waiting = PollSlot::take(&self.polling)?;
        let (reply, mut taken) = oneshot::channel();
        if self.asks.send(Ask::Poll(reply)).is_err() {
            return Some(Taken::Gone);
        }
        Some(match tokio::time::timeout(wait, &mut taken).await {
            Ok(Ok(taken)) => taken,
            Ok(Err(_)) => Taken::Closed,
            Err(_) => {
                // Nothing within the wait: an empty answer is a noop, unless packets were handed
                // over just now (closing the channel first, so none can come after the look).
                taken.close();
                taken.try_recv().unwrap_or_else(|_| noop())
            }
        })
    }

    /// The upgrade's probe succeeded: the waiting poll ends with a noop.
    pub fn noop(&self) {
        self.probed.store(true, std::sync::atomic::Ordering::Release);
        let _ = self.asks.send(Ask::Noop);
    }

    /// How long the client may be silent before the session is gone.
    pub fn silence_limit(&self) -> Duration {
        self.silence_limit
    }

    /// Claims the upgrade for one websocket; `false` if another has it already.
    pub fn claim_upgrade(&self) -> bool {
        !self.upgrading.swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// Whether a websocket has the session (then polling requests for it are refused).
    pub fn upgraded(&self) -> bool {
        *self.upgraded.borrow()
    }

    /// The upgrade is done: everything from now on goes to `socket`.
    pub fn upgrade(&self, socket: Upgraded) {
        self.upgraded.send_replace(true);
        let _ = self.asks.send(Ask::Upgrade(socket));
    }
}

/// A session's one waiting GET: taken by a poll, given back when the poll ends however it ends.
struct PollSlot<'a>(&'a Mutex<bool>);

impl<'a> PollSlot<'a> {
    /// The slot, or `None` when another GET holds it.
    fn take(polling: &'a Mutex<bool>) -> Option<Self> {
        let mut taken = polling.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *taken {
            return None;
        }
        *taken = true;
        Some(Self(polling))
    }
}

impl Drop for PollSlot<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = false;
    }
}

/// The polling sessions open now, by Engine.IO session id.
#[derive(Default)]
pub struct PollingSessions(Mutex<HashMap<String, Arc<Bridge>>>);

impl PollingSessions {
    /// Polling sessions open now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub fn insert(&self, sid: String, bridge: Arc<Bridge>) {
        self.lock().insert(sid, bridge);
    }

    pub fn get(&self, sid: &str) -> Option<Arc<Bridge>> {
        self.lock().get(sid).cloned()
    }

    pub fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Bridge>>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Takes the session's frames out of its outbox when asked, as Engine.IO packets.
///
/// Every turn awaits something (a request, the session's end, a packet, a deadline): the task
/// never runs without a reason to. It ends when the session has ended and its last packets are
/// taken, or when nobody comes for them within `linger`; its bridge is then forgotten.
async fn poller(
    mut outbox: OutboxBody,
    mut asks: mpsc::UnboundedReceiver<Ask>,
    max_size: usize,
    linger: Duration,
) {
    let mut frames = Frames { buf: BytesMut::new(), max_size, ended: false };
    // Packets taken for a GET that had gone by the time they came.
    let mut carry: Vec<String> = Vec::new();
    // Set when the session ends: its last packets wait for a GET until then, and no longer.
    let mut gone_at: Option<tokio::time::Instant> = None;
    'turn: loop {
        // Between polls: wait for the next request, or for the session to end.
        let ask = if frames.ended {
            if carry.is_empty() {
                return;
            }
            let deadline = *gone_at.get_or_insert_with(|| tokio::time::Instant::now() + linger);
            match tokio::time::timeout_at(deadline, asks.recv()).await {
                Ok(Some(ask)) => ask,
                Ok(None) | Err(_) => return,
            }
        } else {
            tokio::select! {
                ask = asks.recv() => match ask {
                    Some(ask) => ask,
                    None => return,
                },
                () = finished(&outbox) => {
                    // Nothing more will be written: what is left is the session's last word.
                    while let Some(packet) = frames.ready(&mut outbox) {
                        carry.push(packet);
                    }
                    frames.ended = true;
                    continue;
                }
            }
        };
        let mut reply = match ask {
            Ask::Poll(reply) => reply,
            // No poll is waiting for it.
            Ask::Noop => continue,
            Ask::Upgrade(socket) => return upgraded(outbox, frames, carry, socket).await,
        };
        // Wait for the first packet, unless the GET goes away or the upgrade asks.
        while carry.is_empty() && !frames.ended {
            enum Woke {
                Packet(Option<String>),
                Gone,
                Asked(Option<Ask>),
            }
            let woke = tokio::select! {
                packet = frames.next(&mut outbox) => Woke::Packet(packet),
                () = reply.closed() => Woke::Gone,
                ask = asks.recv() => Woke::Asked(ask),
            };
            match woke {
                // `None`: the session ended (`frames.ended`), answered below.
                Woke::Packet(packet) => carry.extend(packet),
                Woke::Gone => continue 'turn,
                Woke::Asked(None) => return,
                Woke::Asked(Some(Ask::Noop)) => {
                    let _ = reply.send(noop());
                    continue 'turn;
                }
                Woke::Asked(Some(Ask::Upgrade(socket))) => {
                    let _ = reply.send(noop());
                    return upgraded(outbox, frames, carry, socket).await;
                }
                // The GET before it went away unnoticed: the newer one waits instead.
                Woke::Asked(Some(Ask::Poll(newer))) => reply = newer,
            }
        }
        // And everything else already there.
        while let Some(packet) = frames.ready(&mut outbox) {
            carry.push(packet);
        }
        if reply.is_closed() {
            continue;
        }
        let taken = if carry.is_empty() && frames.ended {
            Taken::Closed
        } else {
            Taken::Packets(std::mem::take(&mut carry))
        };
        if let Err(Taken::Packets(back)) = reply.send(taken) {
            carry = back;
        }
    }
}

/// An empty answer.
fn noop() -> Taken {
    Taken::Packets(vec![crate::protocol::socketio::NOOP.to_owned()])
}

/// Resolves once the session's stream has ended (whatever is still queued for the socket).
async fn finished(outbox: &OutboxBody) {
    std::future::poll_fn(|cx| outbox.poll_finished(cx)).await;
}

/// After the upgrade: every packet goes to the websocket as soon as it can take it.
async fn upgraded(mut outbox: OutboxBody, mut frames: Frames, carry: Vec<String>, socket: Upgraded) {
    for packet in carry {
        if socket.send(packet).await.is_err() {
            return;
        }
    }
    while let Some(packet) = frames.next(&mut outbox).await {
        if socket.send(packet).await.is_err() {
            return;
        }
    }
}

/// Reads WebSocket frames from the session's outbox as text packets.
struct Frames {
    buf: BytesMut,
    max_size: usize,
    ended: bool,
}

impl Frames {
    /// The next text packet, or `None` when the session has ended.
    async fn next(&mut self, outbox: &mut OutboxBody) -> Option<String> {
        loop {
            if let Some(packet) = self.parse() {
                return Some(packet);
            }
            if self.ended {
                return None;
            }
            match outbox.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(never)) => match never {},
                None => self.ended = true,
            }
        }
    }

    /// A packet already written, without waiting.
    fn ready(&mut self, outbox: &mut OutboxBody) -> Option<String> {
        loop {
            if let Some(packet) = self.parse() {
                return Some(packet);
            }
            if self.ended {
                return None;
            }
            match futures_util::FutureExt::now_or_never(outbox.next()) {
                Some(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                Some(Some(Err(never))) => match never {},
                Some(None) => self.ended = true,
                None => return None,
            }
        }
    }

    /// The next whole text frame in the buffer; a close frame ends the session.
    fn parse(&mut self) -> Option<String> {
        loop {
            match Parser::parse(&mut self.buf, false, self.max_size.saturating_mul(2)) {
                Ok(Some((_, OpCode::Text, Some(payload)))) => {
                    return Some(String::from_utf8_lossy(&payload).into_owned());
                }
                Ok(Some((_, OpCode::Close, _))) => {
                    self.ended = true;
                    self.buf.clear();
                    return None;
                }
                // Pings, pongs and anything else: not Engine.IO packets.
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(err) => {
                    tracing::error!(%err, "a polling session's frame could not be read");
                    self.ended = true;
                    self.buf.clear();
                    return None;
                }
            }
        }
    }
}
