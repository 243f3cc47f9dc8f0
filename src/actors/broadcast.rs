//! The Broadcast actor: fans every committed change out to every subscribed session, in `seq`
//! order, except to the session that made it, which gets its own reply in the same place.
//!
//! Persistence sends it `Publish` after each commit; the Registry keeps its subscriber list
//! current. When several nodes share one Postgres database (`fed_from_log`), other nodes'
//! changes come from the log (`LogRows`, read by `cluster::reader`), and the actor merges them
//! with its own node's in `seq` order: nothing is sent out of order, twice, or past a gap. A
//! frame is rendered once (a `Frame`) and the same bytes go to every session.
//! It never waits on a session: each session's own bounded queue decides when a slow reader
//! is cut off.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::protocol::outbound::Frame;
use crate::store::changes::LoggedFrame;

/// What a session is told by the server side.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum Outbound {
    /// A frame to send; `seq` is set when it is a logged change (or the origin's reply to one).
    Frame { seq: Option<u64>, frame: Frame },
    /// Logged change `seq` has nothing for this session (its own, made without an `id`): its
    /// place in the log moves on.
    Passed { seq: u64 },
    /// The session is subscribed: every change after `head` comes to it from now on.
    Subscribed { head: u64 },
    /// The server's budget for every queue together is exceeded and this queue is among the
    /// largest: cut the client off (4008), as a slow consumer.
    CutOff,
    /// Close the session with this WebSocket close code.
    Close { code: u16, reason: &'static str },
    /// These devices' own tokens were revoked: a session opened with one of them is closed
    /// (4011).
    Revoked(std::sync::Arc<[String]>),
}

/// Start sending committed changes to this session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub session: Uuid,
    pub recipient: Recipient<Outbound>,
}

/// Stop sending to this session. Safe to send twice.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub session: Uuid,
}

/// One committed change, ready to send.
#[derive(Debug, Clone)]
pub struct PublishedChange {
    pub seq: u64,
    /// What every session but the origin receives.
    pub frame: Frame,
    /// The session that made the change, if it came over WebSocket.
    pub origin: Option<Uuid>,
    /// What the origin receives instead of `frame` (nothing when `None`).
    pub reply: Option<Frame>,
}

/// Committed changes, in `seq` order, from the Persistence actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish {
    pub changes: Vec<PublishedChange>,
    /// When they were committed.
    pub committed_at: Instant,
}

/// Changes read from the shared log (several nodes), in `seq` order; any of them may have been
/// handed over already.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LogRows {
    /// They are every change kept after this `seq`, oldest first.
    pub after: u64,
    pub rows: Vec<LoggedFrame>,
}

/// A frame that is not a logged change (e.g. an election notice), to every session but those
/// in `except` (which are answered directly).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Notify {
    pub frame: Frame,
    pub except: Vec<Uuid>,
}

/// A frame for one session, in order with the notices sent before it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendTo {
    pub session: Uuid,
    pub frame: Frame,
}

/// Close every session (server shutdown); answered once every close is queued, after every
/// change published before it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAll {
    pub code: u16,
    pub reason: &'static str,
}

/// The `seq` of the newest change handed to the sessions, readable from any thread.
/// Only the Broadcast actor moves it forward.
#[derive(Clone, Debug)]
pub struct PublishedSeq(Arc<AtomicU64>);

impl PublishedSeq {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// The fan-out actor.
pub struct Broadcast {
    subscribers: HashMap<Uuid, Recipient<Outbound>>,
    published: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    /// Set when the log is shared with other nodes.
    merge: Option<Merge>,
    #[cfg(feature = "fault-injection")]
    faults: Option<Arc<crate::faults::Faults>>,
}

/// How long a change read from the shared log whose origin is a session here waits for this
/// node's own `Publish` of it (which carries the reply as the session's transport needs it).
/// Persistence publishes right after its commit returns; the wait ends sooner than this unless
/// the commit's answer was lost, and then the stored reply is sent.
const OWN_CHANGE_WAIT: Duration = Duration::from_secs(1);

/// Changes waiting for the ones before them, from both sources, when the log is shared.
struct Merge {
    /// Committed here (`Publish`).
    own: BTreeMap<u64, PublishedChange>,
    /// Read from the log (`LogRows`).
    read: BTreeMap<u64, LoggedFrame>,
    /// When the next change, read from the log, began to wait for its own `Publish`.
    waiting_since: Option<Instant>,
    /// Asks the log reader to read now (a change is missing before those waiting).
    read_now: Arc<tokio::sync::Notify>,
}

impl Broadcast {
    /// A Broadcast whose log already holds changes up to `head`.
    pub fn new(head: u64, metrics: Arc<Metrics>) -> Self {
        Self {
            subscribers: HashMap::new(),
            published: Arc::new(AtomicU64::new(head)),
            metrics,
            merge: None,
            #[cfg(feature = "fault-injection")]
            faults: None,
        }
    }

    /// Shares the log with other nodes: changes also come as `LogRows`, and `read_now` is
    /// notified whenever the next change in `seq` order is missing.
    pub fn fed_from_log(mut self, read_now: Arc<tokio::sync::Notify>) -> Self {
        self.merge =
            Some(Merge { own: BTreeMap::new(), read: BTreeMap::new(), waiting_since: None, read_now });
        self
    }

    /// Tests' faults (`fault-injection` builds).
    #[cfg(feature = "fault-injection")]
    pub fn with_faults(mut self, faults: Arc<crate::faults::Faults>) -> Self {
        self.faults = Some(faults);
        self
    }

    /// Adds a subscriber and tells it from where its changes come live: every one after what is
    /// published now (the ones before are in the log).
    fn subscribe(&mut self, msg: Subscribe) {
        let head = self.published.load(Ordering::Acquire);
        msg.recipient.do_send(Outbound::Subscribed { head });
        self.subscribers.insert(msg.session, msg.recipient);
    }

    /// The shared view of the newest published `seq`.
    pub fn published(&self) -> PublishedSeq {
        PublishedSeq(Arc::clone(&self.published))
    }

    /// Hands one change to every session, in its place after the ones before it.
    fn deliver(&self, change: &PublishedChange) {
        for (id, session) in &self.subscribers {
            if Some(*id) == change.origin {
                match &change.reply {
                    Some(reply) => {
                        session.do_send(Outbound::Frame { seq: Some(change.seq), frame: reply.clone() })
                    }
                    None => session.do_send(Outbound::Passed { seq: change.seq }),
                }
            } else {
                session.do_send(Outbound::Frame { seq: Some(change.seq), frame: change.frame.clone() });
            }
        }
        // Stored after the frames are queued: a session that reads this value and finds a
        // change at or below it still to come will find that change in its mailbox.
        self.published.store(change.seq, Ordering::Release);
    }

    /// Sends every change that is next in `seq` order, from either source.
    fn drain(&mut self, ctx: &mut Context<Self>) {
        let Some(mut merge) = self.merge.take() else { return };
        loop {
            let next = self.published.load(Ordering::Acquire) + 1;
            merge.own = merge.own.split_off(&next);
            merge.read = merge.read.split_off(&next);
            if let Some(change) = merge.own.remove(&next) {
                merge.read.remove(&next);
                merge.waiting_since = None;
                self.deliver(&change);
                continue;
            }
            let Some(row) = merge.read.get(&next) else { break };
            let origin = row.origin_session.as_deref().and_then(|s| Uuid::parse_str(s).ok());
            let own_session = origin.is_some_and(|id| self.subscribers.contains_key(&id));
            if own_session {
                let first_look = merge.waiting_since.is_none();
                let since = *merge.waiting_since.get_or_insert_with(Instant::now);
                if since.elapsed() < OWN_CHANGE_WAIT {
                    if first_look {
                        ctx.run_later(OWN_CHANGE_WAIT, |act, ctx| act.drain(ctx));
                    }
                    break;
                }
            }
            let Some(row) = merge.read.remove(&next) else { break };
            merge.waiting_since = None;
            let change = PublishedChange {
                seq: row.seq,
                frame: Frame::stored(row.frame),
                origin,
                reply: row.reply_frame.map(Frame::stored_answer),
            };
            self.deliver(&change);
        }
        let next = self.published.load(Ordering::Acquire) + 1;
        let missing = !merge.read.contains_key(&next) && !merge.own.contains_key(&next);
        if missing && !(merge.own.is_empty() && merge.read.is_empty()) {
            merge.read_now.notify_one();
        }
        self.merge = Some(merge);
    }
}

impl Actor for Broadcast {
    type Context = Context<Self>;
}

impl Handler<Subscribe> for Broadcast {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) {
        #[cfg(feature = "fault-injection")]
        if let Some(delay) = self.faults.as_ref().and_then(|f| f.subscription_delay()) {
            tracing::warn!(session = %msg.session, ?delay, "fault injected: a subscription is held up");
            ctx.run_later(delay, move |act, _| act.subscribe(msg));
            return;
        }
        let _ = ctx;
        self.subscribe(msg);
    }
}

impl Handler<Unsubscribe> for Broadcast {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        self.subscribers.remove(&msg.session);
    }
}

impl Handler<Publish> for Broadcast {
    type Result = ();

    fn handle(&mut self, msg: Publish, ctx: &mut Context<Self>) {
        #[cfg(feature = "fault-injection")]
        if let Some(delay) = self.faults.as_ref().and_then(|f| f.publish_delay()) {
            tracing::warn!(?delay, "fault injected: committed changes are handed out late");
            ctx.run_later(delay, move |act, ctx| act.publish(msg, ctx));
            return;
        }
        self.publish(msg, ctx);
    }
}

impl Broadcast {
    /// Hands out committed changes, in `seq` order.
    fn publish(&mut self, msg: Publish, ctx: &mut Context<Self>) {
        match &mut self.merge {
            None => {
                for change in &msg.changes {
                    self.deliver(change);
                }
            }
            Some(merge) => {
                merge.own.extend(msg.changes.into_iter().map(|change| (change.seq, change)));
                self.drain(ctx);
            }
        }
        self.metrics.broadcast(msg.committed_at.elapsed());
    }
}

impl Handler<LogRows> for Broadcast {
    type Result = ();

    fn handle(&mut self, msg: LogRows, ctx: &mut Context<Self>) {
        #[cfg(feature = "fault-injection")]
        if let Some(delay) = self.faults.as_ref().and_then(|f| f.publish_delay()) {
            ctx.run_later(delay, move |act, ctx| act.take_log_rows(msg, ctx));
            return;
        }
        self.take_log_rows(msg, ctx);
    }
}

impl Broadcast {
    /// Changes read from the shared log, merged with this node's own in `seq` order.
    fn take_log_rows(&mut self, msg: LogRows, ctx: &mut Context<Self>) {
        let Some(merge) = &mut self.merge else { return };
        let published = self.published.load(Ordering::Acquire);
        let first = msg.rows.first().map(|row| row.seq);
        if msg.after == published
            && let Some(first) = first
            && first > published + 1
            && !merge.own.contains_key(&(published + 1))
        {
            // `seq` has no gaps: the changes between were pruned before this node read them
            // (it was cut off for longer than the log keeps). Delivery goes on after them; each
            // live session's feed meets the gap at the next change, reads the log from its last
            // one and, finding them pruned, has its client resynchronise (`resync_required`).
            tracing::warn!(after = published, next = first, "changes pruned before this node read them");
            self.published.store(first - 1, Ordering::Release);
        }
        let published = self.published.load(Ordering::Acquire);
        merge.read.extend(msg.rows.into_iter().filter(|row| row.seq > published).map(|row| (row.seq, row)));
        self.drain(ctx);
    }
}

impl Handler<Notify> for Broadcast {
    type Result = ();

    fn handle(&mut self, msg: Notify, _: &mut Context<Self>) {
        for (id, session) in &self.subscribers {
            if !msg.except.contains(id) {
                session.do_send(Outbound::Frame { seq: None, frame: msg.frame.clone() });
            }
        }
    }
}

impl Handler<SendTo> for Broadcast {
    type Result = ();

    fn handle(&mut self, msg: SendTo, _: &mut Context<Self>) {
        if let Some(session) = self.subscribers.get(&msg.session) {
            session.do_send(Outbound::Frame { seq: None, frame: msg.frame });
        }
    }
}

impl Handler<CloseAll> for Broadcast {
    type Result = ();

    fn handle(&mut self, msg: CloseAll, _: &mut Context<Self>) {
        for session in self.subscribers.values() {
            session.do_send(Outbound::Close { code: msg.code, reason: msg.reason });
        }
    }
}
