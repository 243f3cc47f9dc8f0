//! The Election actor when several nodes share one Postgres database (PROTOCOL.md section 11):
//! one elector decides for the whole site, on the node holding the election lease.
//!
//! Every node, the lease holder too, posts what its sessions and REST callers tell the election
//! on the nodes' bus (`cluster::bus`), and keeps what it posted until it is answered. The lease
//! holder ("leading") feeds the inputs posted after its roll call to its elector and posts what
//! the elector asks for: frames for the sessions of every node, answers, the fleet. Its fleet
//! writes carry the lease's fencing number and are refused in the same transaction once the
//! lease has passed on, so a node that was paused or cut off cannot record an election.
//!
//! Taking over: a node that finds itself holding the lease under a new fencing number reads the
//! term, the devices and the master from the database, and posts a roll call. Every node answers
//! with the device sessions open on it (`Present`) and posts again every input not yet
//! answered; after `SETTLE` a master that no node answered for counts as dropped (rule 4, with
//! its reconnect grace). The leader also counts the devices of a node whose liveness ran out as
//! dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use actix::prelude::*;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::elector::{Effect, Elector, FleetView, Input, ReplyTo};
use super::{Election, now};
use crate::actors::broadcast::{Notify, Outbound, SendTo};
use crate::actors::persistence::{Origin, persist};
use crate::cluster::Node;
use crate::cluster::bus::{Forwarded, Posted, Poster};
use crate::cluster::lease::{Held, Lease};
use crate::domain::fleet::{FleetWrite, Terms};
use crate::protocol::outbound::{self, Frame};
use crate::protocol::{ErrorCode, WireError, close, inbound};
use crate::settings::{ElectionSettings, HeartbeatSettings};
use crate::store;
use crate::store::cluster::Instance;

/// How long a new leader waits for the nodes' answers to its roll call.
const SETTLE: Duration = Duration::from_secs(1);
/// How long bus messages are kept.
const BUS_KEEP: Duration = Duration::from_secs(600);

/// What a node needs to take part in the site's elections.
pub struct SiteLink {
    pub node: Node,
    /// The read pool (the takeover's reads, the roll call, liveness).
    pub db: DatabaseConnection,
    pub lease: Lease,
    pub poster: Poster,
}

/// This node's part in the site's elections.
pub(super) struct Site {
    link: SiteLink,
    /// This run's address on the bus.
    address: String,
    settings: ElectionSettings,
    heartbeat: HeartbeatSettings,
    /// Set while this node runs the site's elections.
    leading: Option<Leading>,
    /// The fencing number of a takeover under way.
    taking_over: Option<u64>,
    /// Takeovers so far on this node.
    generations: u64,
    /// The highest fencing number of a roll call read: messages of older leaders are dropped.
    newest_fence: u64,
    /// Inputs posted and not answered yet, by the number their answer comes under.
    unanswered: BTreeMap<ReplyTo, Forwarded>,
    /// The device sessions open here, for roll calls.
    here: HashMap<Uuid, inbound::DeviceOnline>,
    /// When each session's life was last posted.
    seen_posted: HashMap<Uuid, Instant>,
    /// The fleet as the leader last posted it.
    view: Option<FleetView>,
}

/// The lease holder's state.
struct Leading {
    /// This takeover's number on this node: timers and writes of an earlier one are ignored.
    generation: u64,
    fence: u64,
    /// The roll call's bus number: inputs posted after it are this leader's to decide.
    from: u64,
    /// The elector's answers owed, by its reply number: to which node run, under which number.
    owed: HashMap<ReplyTo, (String, ReplyTo)>,
    next_owed: ReplyTo,
    /// The device sessions the elector knows: on which node run, of which device.
    sessions: HashMap<Uuid, (String, String)>,
    /// The inputs with an answer decided already, by node run and number, and when: one posted
    /// again (at a roll call, or when its node rejoined) is not decided twice. Kept as long as
    /// its node may post it again (`Site::answer_deadline`), then forgotten.
    decided: HashMap<(String, ReplyTo), Instant>,
}

impl Leading {
    /// Notes an answer owed to `from` under `reply`; returns the elector's number for it, or
    /// `None` when that input was decided already.
    fn owe(&mut self, from: &str, reply: ReplyTo) -> Option<ReplyTo> {
        if self.decided.insert((from.to_owned(), reply), Instant::now()).is_some() {
            return None;
        }
        self.next_owed += 1;
        self.owed.insert(self.next_owed, (from.to_owned(), reply));
        Some(self.next_owed)
    }
}

impl Site {
    pub(super) fn new(link: SiteLink, settings: ElectionSettings, heartbeat: HeartbeatSettings) -> Self {
        Self {
            address: link.node.address(),
            link,
            settings,
            heartbeat,
            leading: None,
            taking_over: None,
            generations: 0,
            newest_fence: 0,
            unanswered: BTreeMap::new(),
            here: HashMap::new(),
            seen_posted: HashMap::new(),
            view: None,
        }
    }

    pub(super) fn lease_ttl(&self) -> Duration {
        self.link.node.lease_ttl
    }

    /// The longest an input's answer can take (a lease running out, the roll call, an election
    /// with every retry): past it, the node that posted it gives up and never posts it again.
    fn answer_deadline(&self) -> Duration {
        let s = &self.settings;
        let attempt = Duration::from_secs_f64(s.ack_timeout_s)
            + Duration::from_millis(s.backoff_ms.iter().copied().max().unwrap_or(0));
        3 * self.lease_ttl() + SETTLE + attempt * (s.max_retries + 1)
    }

    /// Whether this node runs the site's elections now.
    pub(super) fn leading(&self) -> bool {
        self.leading.is_some()
    }

    /// The fleet as the leader last posted it (before any post: nobody is known).
    pub(super) fn view(&self) -> Option<&FleetView> {
        self.view.as_ref()
    }

    /// Posts an input for the leader; with `reply`, keeps it until it is answered.
    fn forward(&mut self, input: Forwarded, reply: Option<ReplyTo>) {
        if let Some(reply) = reply {
            self.unanswered.insert(reply, input.clone());
        }
        self.link.poster.post(&Posted::Input { from: self.address.clone(), input });
    }

    /// A device registered here.
    pub(super) fn online(&mut self, session: Uuid, info: inbound::DeviceOnline, reply: ReplyTo) {
        self.here.insert(session, info.clone());
        self.forward(Forwarded::Online { session, info, reply }, Some(reply));
    }

    /// A session here ended: replaced by a newer one of its device, or gone with it.
    pub(super) fn forget(&mut self, session: Uuid) {
        self.here.remove(&session);
        self.seen_posted.remove(&session);
    }

    /// A device here left, or its session ended.
    pub(super) fn gone(&mut self, input: Forwarded, session: Uuid, reply: ReplyTo) {
        self.here.remove(&session);
        self.seen_posted.remove(&session);
        self.forward(input, Some(reply));
    }

    /// Life from a session here: posted at most every quarter of the heartbeat timeout.
    pub(super) fn seen(&mut self, device_id: String, session: Uuid) {
        let every = self.heartbeat.timeout() / 4;
        let due = self.seen_posted.get(&session).is_none_or(|at| at.elapsed() >= every);
        if due && self.here.contains_key(&session) {
            self.seen_posted.insert(session, Instant::now());
            self.forward(Forwarded::Seen { device_id, session }, None);
        }
    }

    /// Posts the device sessions open here (but those still waiting for their registration's
    /// answer) and, again, every input not answered yet.
    fn answer_roll_call(&mut self) {
        let registering: HashSet<Uuid> = self
            .unanswered
            .values()
            .filter_map(|input| match input {
                Forwarded::Online { session, .. } => Some(*session),
                _ => None,
            })
            .collect();
        let present = self
            .here
            .iter()
            .filter(|(session, _)| !registering.contains(session))
            .map(|(session, info)| Forwarded::Present { session: *session, info: info.clone() });
        let again = self.unanswered.values().cloned();
        for input in present.chain(again).collect::<Vec<_>>() {
            self.link.poster.post(&Posted::Input { from: self.address.clone(), input });
        }
    }

    /// An input with no answer (a role-change ack).
    pub(super) fn tell(&mut self, input: Forwarded) {
        self.forward(input, None);
    }

    /// An input whose answer comes under `reply`.
    pub(super) fn ask(&mut self, input: Forwarded, reply: ReplyTo) {
        self.forward(input, Some(reply));
    }
}

impl Election {
    fn site(&mut self) -> &mut Site {
        self.site.as_mut().expect("only called in site mode")
    }

    /// Gives up on an input that no leader has answered in the longest an answer can take (a
    /// lease running out, the roll call, an election with every retry): its caller is told the
    /// election was interrupted.
    pub(super) fn expire_unanswered(&mut self, ctx: &mut Context<Self>, reply: ReplyTo) {
        let longest = self.site().answer_deadline();
        ctx.run_later(longest, move |act, _| {
            if let Some(site) = &mut act.site
                && site.unanswered.remove(&reply).is_some()
            {
                tracing::warn!(reply, "no node running the site's elections answered in time");
                act.replies.remove(&reply);
            }
        });
    }

    /// Checks the lease: takes over when this node holds it under a new fencing number, stops
    /// leading when it no longer holds it.
    pub(super) fn check_lease(&mut self, ctx: &mut Context<Self>) {
        let Some(site) = &mut self.site else { return };
        if site.link.lease.rejoined.has_changed().unwrap_or(false) {
            site.link.lease.rejoined.mark_unchanged();
            // Its devices may have been counted as dropped while it was away.
            site.answer_roll_call();
        }
        let held = (*site.link.lease.held.borrow()).filter(Held::current);
        let leading = site.leading.as_ref().map(|l| l.fence);
        match held {
            Some(held) if leading == Some(held.fence) => {}
            Some(held) => {
                if leading.is_some() {
                    self.stop_leading("the lease was taken anew");
                }
                self.take_over(ctx, held.fence);
            }
            None if leading.is_some() => self.stop_leading("the lease ran out"),
            None => {}
        }
    }

    fn stop_leading(&mut self, why: &str) {
        let site = self.site();
        if let Some(leading) = site.leading.take() {
            tracing::warn!(fence = leading.fence, why, "no longer running the site's elections");
        }
        site.taking_over = None;
        let (settings, heartbeat) = (site.settings.clone(), site.heartbeat.clone());
        self.elector = Elector::new(
            settings,
            heartbeat,
            Terms::default(),
            Vec::new(),
            Instant::now(),
            Box::new(|| Uuid::new_v4().to_string()),
        );
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Reads the site's election state and posts the roll call; leads once both are done.
    fn take_over(&mut self, ctx: &mut Context<Self>, fence: u64) {
        let site = self.site();
        if site.taking_over == Some(fence) {
            return;
        }
        site.taking_over = Some(fence);
        tracing::info!(fence, node = %site.link.node.id, "taking over the site's elections");
        let db = site.link.db.clone();
        let read = async move {
            let terms = store::meta::terms(&db).await?;
            let devices = store::devices::all(&db).await?;
            let last = store::devices::last_election(&db).await?;
            let call = serde_json::to_string(&Posted::RollCall { fence })
                .map_err(|err| sea_orm::DbErr::Custom(err.to_string()))?;
            let from = store::cluster::post(&db, &[call]).await?;
            Ok::<_, sea_orm::DbErr>((terms, devices, last, from))
        };
        ctx.wait(read.into_actor(self).map(move |result, act, ctx| {
            let site = act.site();
            if site.taking_over != Some(fence) {
                return;
            }
            site.taking_over = None;
            let (terms, devices, last, from) = match result {
                Ok(read) => read,
                Err(err) => {
                    // The next lease check tries again.
                    tracing::warn!(%err, "could not take over the site's elections");
                    return;
                }
            };
            let still = (*site.link.lease.held.borrow()).filter(Held::current).map(|h| h.fence);
            if still != Some(fence) {
                return;
            }
            let (settings, heartbeat) = (site.settings.clone(), site.heartbeat.clone());
            site.generations += 1;
            let generation = site.generations;
            site.leading = Some(Leading {
                generation,
                fence,
                from,
                owed: HashMap::new(),
                next_owed: 0,
                sessions: HashMap::new(),
                decided: HashMap::new(),
            });
            act.elector = Elector::take_over(
                settings,
                heartbeat,
                terms,
                devices,
                Instant::now(),
                Box::new(|| Uuid::new_v4().to_string()),
            )
            .announcing_again(last);
            tracing::info!(fence, term = terms.current, spent = terms.spent, "running the site's elections");
            act.post_fleet(fence);
            ctx.run_later(SETTLE, move |act, ctx| act.lead(ctx, generation, Input::Settle));
        }));
    }

    /// The heartbeat check, on the leader.
    pub(super) fn tick_for_site(&mut self, ctx: &mut Context<Self>, every: Duration) {
        if let Some(generation) = self.leading_generation() {
            self.lead(ctx, generation, Input::Tick { every });
        }
    }

    /// The takeover this node leads under, if it leads.
    fn leading_generation(&self) -> Option<u64> {
        self.site.as_ref().and_then(|s| s.leading.as_ref()).map(|l| l.generation)
    }

    /// Hands `input` to the elector if this node still leads in the takeover `generation` and
    /// still holds the lease under its fencing number, and carries out what it asks for.
    pub(super) fn lead(&mut self, ctx: &mut Context<Self>, generation: u64, input: Input) {
        let Some(site) = &self.site else { return };
        let Some(leading) = site.leading.as_ref().filter(|l| l.generation == generation) else { return };
        let fence = leading.fence;
        let held = (*site.link.lease.held.borrow()).filter(Held::current).map(|h| h.fence);
        if held != Some(fence) {
            self.stop_leading("the lease ran out");
            return;
        }
        let effects = self.elector.on(input, now());
        let changed = effects.iter().any(|e| matches!(e, Effect::Persist { .. } | Effect::Notify { .. }));
        for effect in effects {
            self.carry_out_for_site(ctx, generation, fence, effect);
        }
        if changed {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
            self.post_fleet(fence);
        }
    }

    fn post_fleet(&mut self, fence: u64) {
        let view = self.elector.view();
        self.site().link.poster.post(&Posted::Fleet { fence, view });
    }

    fn carry_out_for_site(&mut self, ctx: &mut Context<Self>, generation: u64, fence: u64, effect: Effect) {
        let run = self.site().link.node.run.clone();
        match effect {
            Effect::Persist { mut writes, after } => {
                writes.insert(0, FleetWrite::Fenced { run, fence });
                let write = persist(&self.persistence, writes, Origin::Rest);
                match after {
                    None => {
                        ctx.spawn(write.into_actor(self).map(|result, _, _| {
                            if let Err(err) = result {
                                tracing::error!(%err, "fleet record not written");
                            }
                        }));
                    }
                    Some(after) => {
                        ctx.wait(write.into_actor(self).map(move |result, act, ctx| {
                            let result = result.map(|_| ()).map_err(|err| {
                                tracing::error!(%err, "fleet record not written");
                                err.to_wire()
                            });
                            act.lead(ctx, generation, Input::Persisted { after: Box::new(after), result });
                        }));
                    }
                }
            }
            Effect::Notify { frame, except } => {
                let frame = frame.json().to_string();
                self.site().link.poster.post(&Posted::Notify { fence: Some(fence), frame, except });
            }
            Effect::SendTo { session, frame } => {
                let frame = frame.json().to_string();
                self.site().link.poster.post(&Posted::SendTo { fence, session, frame });
            }
            Effect::Close { session, code, .. } => {
                self.site().link.poster.post(&Posted::Close { fence, session, code });
            }
            Effect::Start { timer, after } => {
                ctx.run_later(after, move |act, ctx| act.lead(ctx, generation, Input::Timer(timer)));
            }
            Effect::Reply { to, answer } => {
                let site = self.site();
                let owed = site.leading.as_mut().and_then(|l| l.owed.remove(&to));
                if let Some((node, reply)) = owed {
                    site.link.poster.post(&Posted::Reply { fence, to: node, reply, answer });
                }
            }
            Effect::Concluded { reason, elected } => self.metrics.election_ended(reason, elected),
        }
    }

    /// Messages read from the bus, in order. What a leader posted under an older fencing number
    /// than the newest roll call's is dropped: that leader has been replaced.
    pub(super) fn on_bus(&mut self, ctx: &mut Context<Self>, seq: u64, message: Posted) {
        let newest = self.site().newest_fence;
        if message.fence().is_some_and(|fence| fence < newest) {
            tracing::debug!(seq, "a message from a replaced leader was dropped");
            return;
        }
        match message {
            Posted::Input { from, input } => {
                let leading = self.site().leading.as_ref().filter(|l| seq > l.from).map(|l| l.generation);
                if let Some(generation) = leading {
                    self.decide(ctx, generation, from, input);
                }
            }
            Posted::Notify { frame, except, .. } => {
                self.broadcast.do_send(Notify { frame: Frame::stored(frame), except });
            }
            Posted::SendTo { session, frame, .. } => {
                self.broadcast.do_send(SendTo { session, frame: Frame::stored(frame) });
            }
            Posted::Close { session, code, .. } => {
                if let Some(recipient) = self.sessions.get(&session) {
                    let reason = match code {
                        close::HEARTBEAT_TIMEOUT => "heartbeat timeout",
                        close::RETIRED => "device retired",
                        close::SESSION_REPLACED => {
                            // Told why first, as the Registry tells a session replaced on its node.
                            let error = WireError::new(
                                ErrorCode::SessionReplaced,
                                "This device connected again from a newer session on another node",
                            );
                            let frame = outbound::error(&error, None);
                            recipient.do_send(Outbound::Frame { seq: None, frame });
                            "session replaced"
                        }
                        _ => "closed",
                    };
                    recipient.do_send(Outbound::Close { code, reason });
                }
            }
            Posted::Reply { to, reply, answer, .. } => {
                let site = self.site();
                if to == site.address {
                    site.unanswered.remove(&reply);
                    if let Some(tx) = self.replies.remove(&reply) {
                        let _ = tx.send(answer);
                    }
                }
            }
            Posted::Fleet { view, .. } => {
                let site = self.site();
                if site.leading.is_none() {
                    site.view = Some(view);
                    self.changes.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
            Posted::RollCall { fence } => {
                let site = self.site();
                site.newest_fence = site.newest_fence.max(fence);
                tracing::debug!(
                    fence,
                    here = site.here.len(),
                    unanswered = site.unanswered.len(),
                    "roll call"
                );
                site.answer_roll_call();
            }
        }
    }

    /// Tells session `old` of `device_id`, on another node, that a newer session replaced it,
    /// and closes it (4009), as its own node's Registry does when both are on one node.
    fn replace_elsewhere(&mut self, fence: u64, old: Uuid, device_id: &str) {
        tracing::info!(device = %device_id, %old, "session replaced by one on another node");
        self.site().link.poster.post(&Posted::Close { fence, session: old, code: close::SESSION_REPLACED });
    }

    /// The leader takes an input posted by the node run at `from`.
    fn decide(&mut self, ctx: &mut Context<Self>, generation: u64, from: String, input: Forwarded) {
        let Some(leading) = self.site().leading.as_mut() else { return };
        let fence = leading.fence;
        let mut replaced = Vec::new();
        let input = match input {
            Forwarded::Online { session, info, reply } => {
                let Some(reply) = leading.owe(&from, reply) else { return };
                // One device has one session in the whole site: a newer one replaces the older,
                // on whatever node it is (the node of both replaces it itself, as alone).
                let older: Vec<(Uuid, String)> = leading
                    .sessions
                    .iter()
                    .filter(|(s, (_, device))| **s != session && *device == info.device_id)
                    .map(|(s, (node, _))| (*s, node.clone()))
                    .collect();
                for (old, node) in older {
                    leading.sessions.remove(&old);
                    if node != from {
                        replaced.push((old, info.device_id.clone()));
                    }
                }
                leading.sessions.insert(session, (from.clone(), info.device_id.clone()));
                Input::Online { session, info, reply }
            }
            Forwarded::Present { session, info } => {
                leading.sessions.insert(session, (from, info.device_id.clone()));
                Input::Present { session, info }
            }
            Forwarded::Gone { device_id, session, how, note, reply } => {
                let reply = match reply {
                    None => None,
                    // Decided already: posted again.
                    Some(reply) => match leading.owe(&from, reply) {
                        Some(owed) => Some(owed),
                        None => return,
                    },
                };
                if how.ends_session() {
                    leading.sessions.remove(&session);
                }
                Input::Gone { device_id, session, how, note, reply }
            }
            Forwarded::Seen { device_id, session } => Input::Seen { device_id, session, at: Instant::now() },
            Forwarded::RoleChangeAck { device_id, session, accepted, election_id } => {
                Input::RoleChangeAck { device_id, session, accepted, election_id }
            }
            Forwarded::Request { request, reply } => {
                let Some(reply) = leading.owe(&from, reply) else { return };
                Input::Request { request, reply }
            }
            Forwarded::Register { device_id, priority, capabilities, reply } => {
                let Some(reply) = leading.owe(&from, reply) else { return };
                Input::Register { device_id, priority, capabilities, reply }
            }
            Forwarded::Retire { device_id, reply } => {
                let Some(reply) = leading.owe(&from, reply) else { return };
                Input::Retire { device_id, reply: Some(reply) }
            }
        };
        for (old, device_id) in replaced {
            self.replace_elsewhere(fence, old, &device_id);
        }
        self.lead(ctx, generation, input);
    }

    /// The leader's look at the nodes alive: the device sessions of a node run whose liveness
    /// ran out have dropped. Also prunes old bus messages.
    pub(super) fn check_nodes(&mut self, ctx: &mut Context<Self>) {
        let Some(generation) = self.leading_generation() else { return };
        let deadline = self.site().answer_deadline();
        if let Some(leading) = self.site().leading.as_mut() {
            leading.decided.retain(|_, at| at.elapsed() < deadline);
        }
        // Only the sessions known before the look can be judged by it: a node that renews and
        // answers for its devices meanwhile keeps them.
        let known: HashSet<Uuid> =
            self.site().leading.as_ref().map(|l| l.sessions.keys().copied().collect()).unwrap_or_default();
        let db = self.site().link.db.clone();
        let look = async move {
            let _ = store::cluster::prune_bus(&db, BUS_KEEP).await;
            store::cluster::alive_instances(&db).await
        };
        ctx.spawn(look.into_actor(self).map(move |alive, act, ctx| {
            let alive: HashSet<String> = match alive {
                Ok(alive) => alive.iter().map(Instance::address).collect(),
                Err(err) => {
                    tracing::warn!(%err, "could not read which nodes are alive");
                    return;
                }
            };
            let Some(leading) = act.site().leading.as_mut().filter(|l| l.generation == generation) else {
                return;
            };
            let gone: Vec<(Uuid, String)> = leading
                .sessions
                .iter()
                .filter(|(session, (node, _))| known.contains(session) && !alive.contains(node))
                .map(|(session, (_, device))| (*session, device.clone()))
                .collect();
            for (session, _) in &gone {
                leading.sessions.remove(session);
            }
            for (session, device_id) in gone {
                tracing::warn!(device = %device_id, "its node is no longer alive: the device has dropped");
                let input = Input::Gone {
                    device_id,
                    session,
                    how: super::Departure::Dropped,
                    note: Some("its node stopped".into()),
                    reply: None,
                };
                act.lead(ctx, generation, input);
            }
        }));
    }
}
