//! The Election actor: the plumbing around the elector (`elector.rs`), which decides who is
//! master by the rules of section 4. Sessions report to it, through the Registry for
//! registrations: arrivals, departures, life (`Seen`), role-change acks; REST asks it for manual
//! elections and registrations. It hands each of those to the elector with the time, and carries
//! out what the elector asks for: writes through the Persistence actor, frames through the
//! Broadcast actor, timers, answers.
//!
//! A write the elector must see land before it goes on (an arrival, a departure, an election's
//! result) blocks the actor's mailbox until it is on disk (`ctx.wait`), so no two decisions about
//! the master interleave: there is never more than one master.

mod elector;
mod site;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

pub use self::elector::{
    Answer, Departure, DeviceView, Elected, FleetView, Gone, Online, Registration, Request, Requester,
};
use self::elector::{Effect, Elector, Input, Now, ReplyTo};
use self::site::Site;
pub use self::site::SiteLink;
use super::broadcast::{Broadcast, Notify, Outbound, SendTo};
use super::persistence::{Origin, Persistence, persist};
use crate::cluster::bus::{Forwarded, Posted};
use crate::domain::fleet::{DeviceRecord, Terms};
use crate::metrics::Metrics;
use crate::protocol::inbound;
use crate::protocol::{ErrorCode, WireError};
use crate::settings::{ElectionSettings, HeartbeatSettings};

// ---- messages ---------------------------------------------------------------------------

/// A session registered as a device (`device_online` or `register_device`). Sent by the
/// Registry once it has bound the session to the device.
#[derive(Message)]
#[rtype(result = "Result<Online, WireError>")]
pub struct DeviceOnline {
    pub session: Uuid,
    pub recipient: Recipient<Outbound>,
    pub info: inbound::DeviceOnline,
}

/// A device left (or its session ended).
#[derive(Message)]
#[rtype(result = "Gone")]
pub struct DeviceGone {
    pub device_id: String,
    pub session: Uuid,
    pub how: Departure,
    /// What the device said of its going (its reason, its pending operations), for the audit.
    pub note: Option<String>,
}

/// A session ended (whether or not it still spoke for a device): nothing is kept for it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionEnded {
    pub session: Uuid,
}

/// Life from a device's session (a heartbeat, any frame, a pong) at `at`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Seen {
    pub device_id: String,
    pub session: Uuid,
    pub at: Instant,
}

/// A device confirms (or declines) the role change it was sent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoleChangeAck {
    pub device_id: String,
    pub session: Uuid,
    pub accepted: bool,
    pub election_id: Option<String>,
}

/// Run a manual election (or join the one running) and answer with its outcome.
#[derive(Message)]
#[rtype(result = "Result<Elected, WireError>")]
pub struct RequestElection(pub Request);

/// Register a device over REST (`POST /device/register`): a record, not a session.
#[derive(Message)]
#[rtype(result = "Result<Registration, WireError>")]
pub struct RegisterDevice {
    pub device_id: String,
    pub priority: Option<i32>,
    pub capabilities: Option<Vec<String>>,
}

/// The fleet as the election sees it.
#[derive(Message)]
#[rtype(result = "FleetView")]
pub struct Fleet;

/// A receiver that changes whenever the fleet may have: a device came or went, a role or the
/// master changed, an election started or ended (for the admin page's live view).
#[derive(Message)]
#[rtype(result = "watch::Receiver<u64>")]
pub struct WatchFleet;

/// The master's device id, if there is a master.
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct MasterId;

/// Messages read from the nodes' bus, in order, with their numbers (several nodes).
#[derive(Message)]
#[rtype(result = "()")]
pub struct BusRows {
    pub messages: Vec<(u64, Posted)>,
}

// ---- the actor --------------------------------------------------------------------------

/// The election actor.
pub struct Election {
    elector: Elector,
    heartbeat: HeartbeatSettings,
    persistence: Addr<Persistence>,
    broadcast: Addr<Broadcast>,
    /// The sessions of registered devices, for the elector's closes.
    sessions: HashMap<Uuid, Recipient<Outbound>>,
    /// Callers waiting for an answer.
    replies: HashMap<ReplyTo, oneshot::Sender<Answer>>,
    next_reply: ReplyTo,
    metrics: Arc<Metrics>,
    /// Moved on whenever the elector records or announces something (`WatchFleet`).
    changes: watch::Sender<u64>,
    /// Several nodes over one database: this node's part in the site's elections.
    site: Option<Site>,
    /// Bus messages read and not yet taken (one may wait for a write to land).
    bus_queue: std::collections::VecDeque<(u64, Posted)>,
    drain_bus_queued: bool,
}

fn now() -> Now {
    Now { instant: Instant::now(), wall: Utc::now() }
}

impl Election {
    pub fn new(
        settings: ElectionSettings,
        heartbeat: HeartbeatSettings,
        persistence: Addr<Persistence>,
        broadcast: Addr<Broadcast>,
        terms: Terms,
        devices: Vec<DeviceRecord>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let new_id = Box::new(|| Uuid::new_v4().to_string());
        let elector = Elector::new(settings, heartbeat.clone(), terms, devices, Instant::now(), new_id);
        Self {
            elector,
            heartbeat,
            persistence,
            broadcast,
            sessions: HashMap::new(),
            replies: HashMap::new(),
            next_reply: 0,
            metrics,
            changes: watch::Sender::new(0),
            site: None,
            bus_queue: std::collections::VecDeque::new(),
            drain_bus_queued: false,
        }
    }

    /// Takes part in the elections of a site of several nodes (`site.rs`) instead of deciding
    /// alone.
    pub fn on_site(mut self, link: Option<SiteLink>) -> Self {
        let (settings, heartbeat) = (self.elector.settings().clone(), self.heartbeat.clone());
        self.site = link.map(|link| Site::new(link, settings, heartbeat));
        self
    }

    /// The fleet as this node knows it: its elector's, or, when another node runs the site's
    /// elections, the one that node posted last.
    fn fleet(&self) -> FleetView {
        match &self.site {
            Some(site) if !site.leading() => site.view().cloned().unwrap_or_else(|| self.elector.view()),
            _ => self.elector.view(),
        }
    }

    /// A number to answer under, and the channel the answer comes on.
    fn waiting(&mut self) -> (ReplyTo, oneshot::Receiver<Answer>) {
        self.next_reply += 1;
        let (tx, rx) = oneshot::channel();
        self.replies.insert(self.next_reply, tx);
        (self.next_reply, rx)
    }

    /// Hands `input` to the elector and carries out what it asks for.
    fn input(&mut self, ctx: &mut Context<Self>, input: Input) {
        let effects = self.elector.on(input, now());
        let changed = effects.iter().any(|e| matches!(e, Effect::Persist { .. } | Effect::Notify { .. }));
        for effect in effects {
            self.carry_out(ctx, effect);
        }
        if changed {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn carry_out(&mut self, ctx: &mut Context<Self>, effect: Effect) {
        match effect {
            Effect::Persist { writes, after: None } => {
                let write = persist(&self.persistence, writes, Origin::Rest);
                ctx.spawn(write.into_actor(self).map(|result, _, _| {
                    if let Err(err) = result {
                        tracing::error!(%err, "fleet record not written");
                    }
                }));
            }
            Effect::Persist { writes, after: Some(after) } => {
                // Nothing else is decided until this is on disk.
                let write = persist(&self.persistence, writes, Origin::Rest);
                ctx.wait(write.into_actor(self).map(move |result, act, ctx| {
                    let result = result.map(|_| ()).map_err(|err| {
                        tracing::error!(%err, "fleet record not written");
                        err.to_wire()
                    });
                    act.input(ctx, Input::Persisted { after: Box::new(after), result });
                }));
            }
            Effect::Notify { frame, except } => self.broadcast.do_send(Notify { frame, except }),
            Effect::SendTo { session, frame } => self.broadcast.do_send(SendTo { session, frame }),
            Effect::Close { session, code, reason } => {
                if let Some(recipient) = self.sessions.get(&session) {
                    recipient.do_send(Outbound::Close { code, reason });
                }
            }
            Effect::Start { timer, after } => {
                ctx.run_later(after, move |act, ctx| act.input(ctx, Input::Timer(timer)));
            }
            Effect::Reply { to, answer } => {
                if let Some(tx) = self.replies.remove(&to) {
                    let _ = tx.send(answer);
                }
            }
            Effect::Concluded { reason, elected } => self.metrics.election_ended(reason, elected),
        }
    }
}

/// Checks the lease every `every`.
fn act_on_lease(ctx: &mut Context<Election>, every: Duration) {
    ctx.run_interval(every, |act, ctx| act.check_lease(ctx));
}

/// The answer a caller waits for, of the kind it asked for.
async fn answer<T>(
    rx: oneshot::Receiver<Answer>,
    pick: impl FnOnce(Answer) -> Option<Result<T, WireError>>,
) -> Result<T, WireError> {
    let interrupted = || WireError::new(ErrorCode::ServerError, "The election was interrupted");
    rx.await.ok().and_then(pick).unwrap_or_else(|| Err(interrupted()))
}

impl Actor for Election {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = (self.heartbeat.timeout() / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let Some(site) = &self.site else {
            ctx.run_interval(every, move |act, ctx| act.input(ctx, Input::Tick { every }));
            return;
        };
        ctx.run_interval(every, move |act, ctx| act.tick_for_site(ctx, every));
        let ttl = site.lease_ttl();
        act_on_lease(ctx, (ttl / 10).clamp(Duration::from_millis(20), Duration::from_millis(500)));
        ctx.run_interval(ttl / 3, |act, ctx| act.check_nodes(ctx));
        self.check_lease(ctx);
    }
}

impl Handler<DeviceOnline> for Election {
    type Result = ResponseFuture<Result<Online, WireError>>;

    fn handle(&mut self, msg: DeviceOnline, ctx: &mut Context<Self>) -> Self::Result {
        self.sessions.insert(msg.session, msg.recipient);
        let (reply, rx) = self.waiting();
        match &mut self.site {
            Some(site) => {
                site.online(msg.session, msg.info, reply);
                self.expire_unanswered(ctx, reply);
            }
            None => self.input(ctx, Input::Online { session: msg.session, info: msg.info, reply }),
        }
        Box::pin(answer(rx, |a| if let Answer::Online(r) = a { Some(r) } else { None }))
    }
}

impl Handler<SessionEnded> for Election {
    type Result = ();

    fn handle(&mut self, msg: SessionEnded, _: &mut Context<Self>) {
        self.sessions.remove(&msg.session);
        if let Some(site) = &mut self.site {
            site.forget(msg.session);
        }
    }
}

impl Handler<DeviceGone> for Election {
    type Result = ResponseFuture<Gone>;

    fn handle(&mut self, msg: DeviceGone, ctx: &mut Context<Self>) -> Self::Result {
        if msg.how.ends_session() {
            self.sessions.remove(&msg.session);
        }
        let (reply, rx) = self.waiting();
        match &mut self.site {
            Some(site) => {
                let session = msg.session;
                let input = Forwarded::Gone {
                    device_id: msg.device_id,
                    session,
                    how: msg.how,
                    note: msg.note,
                    reply: Some(reply),
                };
                site.gone(input, session, reply);
                self.expire_unanswered(ctx, reply);
            }
            None => {
                let input = Input::Gone {
                    device_id: msg.device_id,
                    session: msg.session,
                    how: msg.how,
                    note: msg.note,
                    reply: Some(reply),
                };
                self.input(ctx, input);
            }
        }
        Box::pin(async move {
            match rx.await {
                Ok(Answer::Gone(gone)) => gone,
                _ => Gone { election_triggered: false },
            }
        })
    }
}

impl Handler<Seen> for Election {
    type Result = ();

    fn handle(&mut self, msg: Seen, ctx: &mut Context<Self>) {
        match &mut self.site {
            Some(site) => site.seen(msg.device_id, msg.session),
            None => {
                self.input(ctx, Input::Seen { device_id: msg.device_id, session: msg.session, at: msg.at })
            }
        }
    }
}

impl Handler<RoleChangeAck> for Election {
    type Result = ();

    fn handle(&mut self, msg: RoleChangeAck, ctx: &mut Context<Self>) {
        let RoleChangeAck { device_id, session, accepted, election_id } = msg;
        match &mut self.site {
            Some(site) => site.tell(Forwarded::RoleChangeAck { device_id, session, accepted, election_id }),
            None => self.input(ctx, Input::RoleChangeAck { device_id, session, accepted, election_id }),
        }
    }
}

impl Handler<RequestElection> for Election {
    type Result = ResponseFuture<Result<Elected, WireError>>;

    fn handle(&mut self, msg: RequestElection, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, rx) = self.waiting();
        let request = msg.0;
        match &mut self.site {
            Some(site) => {
                site.ask(Forwarded::Request { request, reply }, reply);
                self.expire_unanswered(ctx, reply);
            }
            None => self.input(ctx, Input::Request { request, reply }),
        }
        Box::pin(answer(rx, |a| if let Answer::Elected(r) = a { Some(r) } else { None }))
    }
}

/// Retire a device (`DELETE /device/{id}`): refused for the master.
#[derive(Message)]
#[rtype(result = "Result<(), WireError>")]
pub struct RetireDevice {
    pub device_id: String,
}

impl Handler<RetireDevice> for Election {
    type Result = ResponseFuture<Result<(), WireError>>;

    fn handle(&mut self, msg: RetireDevice, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, rx) = self.waiting();
        let device_id = msg.device_id;
        match &mut self.site {
            Some(site) => {
                site.ask(Forwarded::Retire { device_id, reply }, reply);
                self.expire_unanswered(ctx, reply);
            }
            None => self.input(ctx, Input::Retire { device_id, reply: Some(reply) }),
        }
        Box::pin(answer(rx, |a| if let Answer::Retired(r) = a { Some(r) } else { None }))
    }
}

impl Handler<RegisterDevice> for Election {
    type Result = ResponseFuture<Result<Registration, WireError>>;

    fn handle(&mut self, msg: RegisterDevice, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, rx) = self.waiting();
        let RegisterDevice { device_id, priority, capabilities } = msg;
        match &mut self.site {
            Some(site) => {
                site.ask(Forwarded::Register { device_id, priority, capabilities, reply }, reply);
                self.expire_unanswered(ctx, reply);
            }
            None => self.input(ctx, Input::Register { device_id, priority, capabilities, reply }),
        }
        Box::pin(answer(rx, |a| if let Answer::Registered(r) = a { Some(r) } else { None }))
    }
}

impl Handler<MasterId> for Election {
    type Result = Option<String>;

    fn handle(&mut self, _: MasterId, _: &mut Context<Self>) -> Option<String> {
        match &self.site {
            Some(site) if !site.leading() => site.view().and_then(|v| v.master.clone()),
            _ => self.elector.master().map(str::to_owned),
        }
    }
}

impl Handler<WatchFleet> for Election {
    type Result = MessageResult<WatchFleet>;

    fn handle(&mut self, _: WatchFleet, _: &mut Context<Self>) -> MessageResult<WatchFleet> {
        MessageResult(self.changes.subscribe())
    }
}

impl Handler<Fleet> for Election {
    type Result = MessageResult<Fleet>;

    fn handle(&mut self, _: Fleet, _: &mut Context<Self>) -> MessageResult<Fleet> {
        MessageResult(self.fleet())
    }
}

impl Handler<BusRows> for Election {
    type Result = ();

    fn handle(&mut self, msg: BusRows, ctx: &mut Context<Self>) {
        if self.site.is_none() {
            return;
        }
        self.bus_queue.extend(msg.messages);
        self.drain_bus(ctx);
    }
}

/// Go on with the bus messages queued (sent to itself when a write held them up).
#[derive(Message)]
#[rtype(result = "()")]
struct DrainBus;

impl Handler<DrainBus> for Election {
    type Result = ();

    fn handle(&mut self, _: DrainBus, ctx: &mut Context<Self>) {
        self.drain_bus_queued = false;
        self.drain_bus(ctx);
    }
}

impl Election {
    /// Takes the queued bus messages one at a time: one whose decision must be on disk first
    /// (`ctx.wait`) holds the rest back until it is, exactly like a message in the mailbox.
    fn drain_bus(&mut self, ctx: &mut Context<Self>) {
        while !ctx.waiting() {
            let Some((seq, message)) = self.bus_queue.pop_front() else { return };
            self.on_bus(ctx, seq, message);
        }
        if !self.bus_queue.is_empty() && !self.drain_bus_queued {
            // Handled once the wait is over (the mailbox is held until then).
            self.drain_bus_queued = true;
            ctx.notify(DrainBus);
        }
    }
}
