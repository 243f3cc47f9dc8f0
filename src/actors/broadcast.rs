//! The Broadcast actor: fans every committed change out to every subscribed session, in `seq`
//! order, except to the session that made it, which gets its own reply in the same place.
//!
//! Persistence sends it `Publish` after each commit; the Registry keeps its subscriber list
//! current. A frame is rendered once (a `Frame`) and the same bytes go to every session.
//! It never waits on a session: each session's own bounded queue decides when a slow reader
//! is cut off.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix::prelude::*;
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::protocol::outbound::Frame;

/// What a session is told by the server side.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum Outbound {
    /// A frame to send; `seq` is set when it is a logged change (or the origin's reply to one).
    Frame { seq: Option<u64>, frame: Frame },
    /// Close the session with this WebSocket close code.
    Close { code: u16, reason: &'static str },
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
}

impl Broadcast {
    /// A Broadcast whose log already holds changes up to `head`.
    pub fn new(head: u64, metrics: Arc<Metrics>) -> Self {
        Self { subscribers: HashMap::new(), published: Arc::new(AtomicU64::new(head)), metrics }
    }

    /// The shared view of the newest published `seq`.
    pub fn published(&self) -> PublishedSeq {
        PublishedSeq(Arc::clone(&self.published))
    }
}

impl Actor for Broadcast {
    type Context = Context<Self>;
}

impl Handler<Subscribe> for Broadcast {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.insert(msg.session, msg.recipient);
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

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        for change in msg.changes {
            for (id, session) in &self.subscribers {
                if Some(*id) == change.origin {
                    if let Some(reply) = &change.reply {
                        session.do_send(Outbound::Frame { seq: Some(change.seq), frame: reply.clone() });
                    }
                } else {
                    session.do_send(Outbound::Frame { seq: Some(change.seq), frame: change.frame.clone() });
                }
            }
            // Stored after the frames are queued: a session that reads this value and finds a
            // change at or below it still to come will find that change in its mailbox.
            self.published.store(change.seq, Ordering::Release);
        }
        self.metrics.broadcast(msg.committed_at.elapsed());
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
