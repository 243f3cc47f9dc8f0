//! The Election actor: owns the fleet's devices as the election sees them, who is master, and
//! the term. It watches heartbeats for timeouts, runs one election at a time (later triggers
//! join the running one), chooses by priority then smallest device id (`domain::election`),
//! waits for the candidate's `role_change_ack`, retries the next candidate after the configured
//! backoff, and fails cleanly after `election.max_retries` attempts. It tells the Persistence
//! actor what to record and the Broadcast actor what to announce.
//!
//! Sessions report to it: registration (through the Registry, which binds the session to the
//! device first), departures, life (`Seen`), and role-change acks. Decisions about the master
//! and the term are made with the actor blocked until they are on disk (`AtomicResponse` /
//! `ctx.wait`), so no two decisions interleave: there is never more than one master.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::broadcast::{Broadcast, Notify, Outbound, SendTo};
use super::persistence::{Command, Origin, Persistence, persist};
use crate::domain::election::{self, Candidate, Reason, Role, priority_for_type};
use crate::domain::fleet::{AuditEntry, DeviceRecord, ElectionLogEntry, FleetWrite};
use crate::protocol::inbound;
use crate::protocol::outbound::{self, CandidateView, ElectionStarted, MasterElected, RoleChange};
use crate::protocol::{ErrorCode, WireError, close, time};
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

/// What a registering device is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Online {
    pub role: Role,
    pub current_master: Option<String>,
    pub term: u64,
}

/// How a device left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// `device_offline`: no longer a candidate; its session stays open.
    Offline,
    /// `device_shutdown`.
    Shutdown,
    /// Its session ended without either.
    Dropped,
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

/// The answer to `DeviceGone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, MessageResponse)]
pub struct Gone {
    pub election_triggered: bool,
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

/// Who asks for a manual election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// An admin over REST.
    Admin,
    /// A device over WebSocket, from this session; allowed for the master and for devices of
    /// priority at least `election.manual_min_priority`.
    Device { device_id: String, session: Uuid },
}

/// Run a manual election (or join the one running) and answer with its outcome.
#[derive(Message)]
#[rtype(result = "Result<Elected, WireError>")]
pub struct RequestElection {
    pub requester: Requester,
    pub initiated_by: Option<String>,
    /// Chosen if it is an active device.
    pub preferred: Option<String>,
    /// The preferred device must be active (409 `DEVICE_NOT_ACTIVE` otherwise).
    pub require_preferred: bool,
    /// Elect without the current master (a demotion).
    pub exclude_master: bool,
}

/// The outcome of an election.
#[derive(Debug, Clone)]
pub struct Elected {
    pub announcement: MasterElected,
}

/// Register a device over REST (`POST /device/register`): a record, not a session.
#[derive(Message)]
#[rtype(result = "Result<Registration, WireError>")]
pub struct RegisterDevice {
    pub device_id: String,
    pub priority: Option<i32>,
    pub capabilities: Option<Vec<String>>,
}

/// The answer to `RegisterDevice`.
#[derive(Debug, Clone)]
pub struct Registration {
    pub role: Role,
    pub master: Option<String>,
    pub connected: bool,
}

/// The fleet as the election sees it.
#[derive(Message)]
#[rtype(result = "FleetView")]
pub struct Fleet;

/// The master's device id, if there is a master.
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct MasterId;

/// The answer to `Fleet`.
#[derive(Debug, Clone, MessageResponse)]
pub struct FleetView {
    pub master: Option<String>,
    pub term: u64,
    pub devices: Vec<DeviceView>,
    /// The last election failed and no master has been chosen since.
    pub election_failed: bool,
    /// The most recent sign of life from any device.
    pub last_heartbeat: Option<DateTime<Utc>>,
}

/// A device as REST shows it.
#[derive(Debug, Clone)]
pub struct DeviceView {
    pub device_id: String,
    pub name: Option<String>,
    pub device_type: Option<String>,
    pub role: Role,
    pub priority: i32,
    pub capabilities: Vec<String>,
    pub last_seen: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub connected: bool,
}

// ---- state ------------------------------------------------------------------------------

struct SessionLink {
    id: Uuid,
    recipient: Recipient<Outbound>,
}

struct Device {
    record: DeviceRecord,
    session: Option<SessionLink>,
    seen_at: Instant,
}

impl Device {
    fn candidate(&self) -> Candidate<'_> {
        Candidate { device_id: &self.record.device_id, priority: self.record.priority }
    }
}

struct Waiter {
    reply: oneshot::Sender<Result<Elected, WireError>>,
    /// A session answered directly: it is left out of the broadcast of the outcome.
    session: Option<Uuid>,
}

/// The election under way.
struct Contest {
    id: String,
    reason: Reason,
    /// The term being elected.
    term: u64,
    previous_master: Option<String>,
    preferred: Option<String>,
    /// Devices not to elect: a leaving master, candidates that did not ack.
    skipped: HashSet<String>,
    failures: u32,
    participants: usize,
    /// The candidate asked to confirm, and its ack timer.
    candidate: Option<(String, SpawnHandle)>,
    waiters: Vec<Waiter>,
}

/// The election actor.
pub struct Election {
    settings: ElectionSettings,
    heartbeat: HeartbeatSettings,
    persistence: Addr<Persistence>,
    broadcast: Addr<Broadcast>,
    devices: BTreeMap<String, Device>,
    master: Option<String>,
    term: u64,
    contest: Option<Contest>,
    election_failed: bool,
    /// The master's reconnect grace, while it runs.
    grace: Option<(String, SpawnHandle)>,
    /// Devices whose `last_seen` has moved since it was last written.
    seen_dirty: BTreeSet<String>,
    last_tick: Instant,
}

impl Election {
    pub fn new(
        settings: ElectionSettings,
        heartbeat: HeartbeatSettings,
        persistence: Addr<Persistence>,
        broadcast: Addr<Broadcast>,
        term: u64,
        devices: Vec<DeviceRecord>,
    ) -> Self {
        let now = Instant::now();
        let devices = devices
            .into_iter()
            .map(|mut record| {
                record.is_active = false;
                (record.device_id.clone(), Device { record, session: None, seen_at: now })
            })
            .collect();
        Self {
            settings,
            heartbeat,
            persistence,
            broadcast,
            devices,
            master: None,
            term,
            contest: None,
            election_failed: false,
            grace: None,
            seen_dirty: BTreeSet::new(),
            last_tick: now,
        }
    }

    fn role_of(&self, device_id: &str) -> Role {
        if self.master.as_deref() == Some(device_id) { Role::Master } else { Role::Client }
    }

    /// Active devices not skipped by the running election.
    fn candidates(&self, skipped: &HashSet<String>) -> Vec<Candidate<'_>> {
        self.devices
            .values()
            .filter(|d| d.record.is_active && d.session.is_some() && !skipped.contains(&d.record.device_id))
            .map(Device::candidate)
            .collect()
    }

    fn notify(&self, frame: bytestring::ByteString, except: Vec<Uuid>) {
        self.broadcast.do_send(Notify { frame, except });
    }

    /// Writes in the background; a failure is logged (what it records is not acknowledged to
    /// anyone).
    fn record(&self, ctx: &mut Context<Self>, writes: Vec<FleetWrite>) {
        let write = persist(&self.persistence, Command::Fleet(writes), Origin::Rest);
        ctx.spawn(write.into_actor(self).map(|result, _, _| {
            if let Err(err) = result {
                tracing::error!(%err, "fleet record not written");
            }
        }));
    }

    fn announce(&self, announcement: &MasterElected, except: Vec<Uuid>) {
        self.notify(outbound::frame("master_elected", announcement, None), except);
    }

    /// A frame for one device's session, through Broadcast so that it keeps its place after
    /// the notices sent before it.
    fn send_to(&self, device_id: &str, frame: bytestring::ByteString) {
        if let Some(link) = self.devices.get(device_id).and_then(|d| d.session.as_ref()) {
            self.broadcast.do_send(SendTo { session: link.id, frame });
        }
    }

    // ---- elections ----------------------------------------------------------------------

    /// Starts an election, or joins the one running. `excluded` is a master that may not be
    /// elected: one that is going away (`departing`), or one being demoted.
    fn trigger(
        &mut self,
        ctx: &mut Context<Self>,
        reason: Reason,
        excluded: Option<String>,
        departing: bool,
        preferred: Option<String>,
        waiter: Option<Waiter>,
    ) {
        if let Some(contest) = &mut self.contest {
            tracing::info!(election = %contest.id, reason = reason.as_str(), "trigger joins the running election");
            contest.waiters.extend(waiter);
            if let Some(excluded) = excluded {
                contest.skipped.insert(excluded.clone());
                if contest.candidate.as_ref().is_some_and(|(c, _)| *c == excluded)
                    && let Some((_, timer)) = contest.candidate.take()
                {
                    ctx.cancel_future(timer);
                    self.attempt(ctx);
                }
            }
            return;
        }
        let skipped: HashSet<String> = excluded.iter().cloned().collect();
        let candidates = self.candidates(&skipped);
        if candidates.is_empty() {
            tracing::warn!(reason = reason.as_str(), "no active device to elect");
            let mut writes = vec![FleetWrite::Audit(AuditEntry::error(
                "master_election",
                reason.as_str(),
                excluded.as_deref(),
                "no active device to elect",
            ))];
            if departing {
                writes.push(FleetWrite::Master(None));
            }
            self.record(ctx, writes);
            if let Some(w) = waiter {
                let _ =
                    w.reply.send(Err(WireError::new(ErrorCode::NoCandidates, "No active device to elect")));
            }
            return;
        }
        let participants = candidates.len();
        let views: Vec<CandidateView> = candidates
            .iter()
            .filter_map(|c| self.devices.get(c.device_id))
            .map(|d| CandidateView {
                device_id: d.record.device_id.clone(),
                priority: d.record.priority,
                capabilities: d.record.capabilities.clone(),
                last_seen: d.record.last_seen.map(time::format),
            })
            .collect();
        let contest = Contest {
            id: Uuid::new_v4().to_string(),
            reason,
            term: self.term + 1,
            previous_master: excluded.or_else(|| self.master.clone()),
            preferred,
            skipped,
            failures: 0,
            participants,
            candidate: None,
            waiters: waiter.into_iter().collect(),
        };
        tracing::info!(election = %contest.id, reason = reason.as_str(), term = contest.term, candidates = participants, "election started");
        let started = ElectionStarted {
            election_id: &contest.id,
            trigger_reason: reason.as_str(),
            reason: reason.as_str(),
            candidates: &views,
            term: contest.term,
        };
        self.notify(outbound::frame("master_election", &started, None), Vec::new());
        let details =
            format!("election {} started (term {}, {} candidates)", contest.id, contest.term, participants);
        self.record(
            ctx,
            vec![FleetWrite::Audit(AuditEntry::success("master_election", reason.as_str(), None, &details))],
        );
        self.contest = Some(contest);
        self.attempt(ctx);
    }

    /// Asks the best remaining candidate to become master.
    fn attempt(&mut self, ctx: &mut Context<Self>) {
        let Some(contest) = &self.contest else { return };
        let winner = {
            let candidates = self.candidates(&contest.skipped);
            election::choose(&candidates, contest.preferred.as_deref()).map(str::to_owned)
        };
        let Some(winner) = winner else {
            return self.fail(ctx, "no candidate is left");
        };
        let previous_role = self.role_of(&winner);
        let Some(contest) = &mut self.contest else { return };
        let change = RoleChange {
            device_id: &winner,
            new_role: Role::Master.as_str(),
            previous_role: previous_role.as_str(),
            reason: "election",
            election_id: &contest.id,
            term: contest.term,
        };
        let frame = outbound::frame("role_change", &change, None);
        let (id, candidate) = (contest.id.clone(), winner.clone());
        let timer = ctx.run_later(self.settings.ack_timeout(), move |act, ctx| {
            act.candidate_failed(ctx, &id, &candidate)
        });
        contest.candidate = Some((winner, timer));
        self.notify(frame, Vec::new());
    }

    /// The candidate did not confirm in time (or declined): skip it, back off, try the next.
    fn candidate_failed(&mut self, ctx: &mut Context<Self>, election_id: &str, candidate: &str) {
        let Some(contest) = &mut self.contest else { return };
        if contest.id != election_id || contest.candidate.as_ref().is_none_or(|(c, _)| c != candidate) {
            return;
        }
        contest.candidate = None;
        contest.skipped.insert(candidate.to_owned());
        contest.failures += 1;
        let failures = contest.failures;
        let details = format!("candidate {candidate} did not confirm (attempt {failures})");
        tracing::warn!(election = %election_id, candidate, failures, "candidate skipped");
        let reason = contest.reason.as_str();
        self.record(
            ctx,
            vec![FleetWrite::Audit(AuditEntry::error("master_election", reason, Some(candidate), &details))],
        );
        match election::next_attempt(failures, self.settings.max_retries, &self.settings.backoff_ms) {
            Some(wait) => {
                let id = election_id.to_owned();
                ctx.run_later(wait, move |act, ctx| {
                    if act.contest.as_ref().is_some_and(|c| c.id == id && c.candidate.is_none()) {
                        act.attempt(ctx);
                    }
                });
            }
            None => self.fail(ctx, &format!("{failures} candidates did not confirm")),
        }
    }

    /// The candidate confirmed: record the election, then announce it.
    fn commit(&mut self, ctx: &mut Context<Self>, winner: String) {
        let Some(contest) = &self.contest else { return };
        let at = Utc::now();
        let announcement = MasterElected {
            new_master_id: winner.clone(),
            new_master_name: self.devices.get(&winner).and_then(|d| d.record.name.clone()),
            previous_master: contest.previous_master.clone(),
            previous_master_id: contest.previous_master.clone(),
            election_id: contest.id.clone(),
            election_reason: contest.reason.as_str(),
            election_timestamp: time::format(at),
            election_method: contest.reason.method(),
            devices_participating: contest.participants,
            term: contest.term,
        };
        let writes = election_writes(&announcement, at);
        let write = persist(&self.persistence, Command::Fleet(writes), Origin::Rest);
        ctx.wait(write.into_actor(self).map(move |result, act, ctx| match result {
            Ok(_) => act.elected(announcement),
            Err(err) => {
                tracing::error!(%err, "election result not recorded");
                act.fail(ctx, "its result could not be recorded")
            }
        }));
    }

    fn elected(&mut self, announcement: MasterElected) {
        let Some(contest) = self.contest.take() else { return };
        let previous = self.master.replace(announcement.new_master_id.clone());
        self.term = announcement.term;
        self.election_failed = false;
        tracing::info!(election = %contest.id, master = %announcement.new_master_id, term = self.term, "master elected");
        let direct: Vec<Uuid> = contest.waiters.iter().filter_map(|w| w.session).collect();
        self.announce(&announcement, direct);
        if let Some(previous) = previous.filter(|p| *p != announcement.new_master_id) {
            let change = RoleChange {
                device_id: &previous,
                new_role: Role::Client.as_str(),
                previous_role: Role::Master.as_str(),
                reason: "election",
                election_id: &contest.id,
                term: self.term,
            };
            self.send_to(&previous, outbound::frame("role_change", &change, None));
        }
        for w in contest.waiters {
            let _ = w.reply.send(Ok(Elected { announcement: announcement.clone() }));
        }
    }

    /// The election failed: there is no master until a device comes online or an admin elects.
    fn fail(&mut self, ctx: &mut Context<Self>, why: &str) {
        let Some(contest) = self.contest.take() else { return };
        if let Some((_, timer)) = contest.candidate {
            ctx.cancel_future(timer);
        }
        tracing::error!(election = %contest.id, why, "election failed");
        self.master = None;
        self.election_failed = true;
        let error = WireError::new(
            ErrorCode::ElectionFailed,
            format!("Master election {} failed: {why}", contest.id),
        )
        .with_details(serde_json::json!({ "election_id": contest.id, "term": contest.term }));
        let direct: Vec<Uuid> = contest.waiters.iter().filter_map(|w| w.session).collect();
        self.notify(outbound::error_frame(&error, None), direct);
        self.record(
            ctx,
            vec![
                FleetWrite::Master(None),
                FleetWrite::Audit(AuditEntry::error(
                    "master_election",
                    contest.reason.as_str(),
                    None,
                    &error.message,
                )),
            ],
        );
        for w in contest.waiters {
            let _ = w.reply.send(Err(error.clone()));
        }
    }

    // ---- liveness -----------------------------------------------------------------------

    /// The master's session dropped and it did not come back in time.
    fn grace_over(&mut self, ctx: &mut Context<Self>, device_id: &str) {
        if self.grace.as_ref().is_none_or(|(d, _)| d != device_id) {
            return;
        }
        self.grace = None;
        let back = self.devices.get(device_id).is_some_and(|d| d.session.is_some());
        if !back && self.master.as_deref() == Some(device_id) {
            self.master = None;
            self.trigger(ctx, Reason::Failure, Some(device_id.to_owned()), true, None, None);
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>, every: Duration) {
        let now = Instant::now();
        // An actor held up (e.g. by a slow commit) has not read its mail: judge no one on it.
        let stalled = now.duration_since(self.last_tick) > every * 3;
        self.last_tick = now;
        if !stalled {
            let timeout = self.heartbeat.timeout();
            let silent: Vec<String> = self
                .devices
                .values()
                .filter(|d| d.session.is_some() && now.duration_since(d.seen_at) > timeout)
                .map(|d| d.record.device_id.clone())
                .collect();
            for device_id in silent {
                self.timed_out(ctx, &device_id);
            }
        }
        if !self.seen_dirty.is_empty() {
            let seen = std::mem::take(&mut self.seen_dirty)
                .into_iter()
                .filter_map(|id| self.devices.get(&id).and_then(|d| d.record.last_seen.map(|at| (id, at))))
                .collect();
            self.record(ctx, vec![FleetWrite::Seen(seen)]);
        }
    }

    /// A device silent for `heartbeat.timeout_s` has failed.
    fn timed_out(&mut self, ctx: &mut Context<Self>, device_id: &str) {
        let Some(device) = self.devices.get_mut(device_id) else { return };
        let Some(link) = device.session.take() else { return };
        tracing::warn!(device = device_id, "heartbeat timeout");
        device.record.is_active = false;
        link.recipient
            .do_send(Outbound::Close { code: close::HEARTBEAT_TIMEOUT, reason: "heartbeat timeout" });
        let last_seen = device.record.last_seen.unwrap_or_else(Utc::now);
        let silent_for = self.heartbeat.timeout_s;
        self.record(
            ctx,
            vec![
                FleetWrite::Activity { device_id: device_id.to_owned(), active: false, last_seen },
                FleetWrite::Audit(AuditEntry::error(
                    "device_timeout",
                    "timeout",
                    Some(device_id),
                    &format!("silent for {silent_for} s"),
                )),
            ],
        );
        if self.master.as_deref() == Some(device_id) {
            self.master = None;
            self.trigger(ctx, Reason::Timeout, Some(device_id.to_owned()), true, None, None);
        }
    }
}

/// What recording an election writes, in one transaction.
fn election_writes(a: &MasterElected, at: DateTime<Utc>) -> Vec<FleetWrite> {
    let details = format!(
        "{} elected (term {}, reason {}, previous {})",
        a.new_master_id,
        a.term,
        a.election_reason,
        a.previous_master_id.as_deref().unwrap_or("none")
    );
    vec![
        FleetWrite::Master(Some(a.new_master_id.clone())),
        FleetWrite::Term(a.term),
        FleetWrite::ElectionLog(ElectionLogEntry {
            election_id: a.election_id.clone(),
            term: a.term,
            previous_master_id: a.previous_master_id.clone(),
            new_master_id: a.new_master_id.clone(),
            reason: a.election_reason,
            method: a.election_method,
            at,
            devices_participating: a.devices_participating,
        }),
        FleetWrite::Audit(AuditEntry::success(
            "master_elected",
            a.election_method,
            Some(&a.new_master_id),
            &details,
        )),
    ]
}

impl Actor for Election {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = (self.heartbeat.timeout() / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        self.last_tick = Instant::now();
        ctx.run_interval(every, move |act, ctx| act.tick(ctx, every));
    }
}

impl Handler<DeviceOnline> for Election {
    type Result = AtomicResponse<Self, Result<Online, WireError>>;

    fn handle(&mut self, msg: DeviceOnline, _: &mut Context<Self>) -> Self::Result {
        let info = msg.info;
        let now = Utc::now();
        let existing = self.devices.get(&info.device_id).map(|d| &d.record);
        let priority = info
            .priority
            .or_else(|| info.device_type.as_deref().and_then(priority_for_type))
            .or(existing.map(|r| r.priority))
            .unwrap_or(0);
        let record = DeviceRecord {
            device_id: info.device_id.clone(),
            name: info.name.clone().or_else(|| existing.and_then(|r| r.name.clone())),
            device_type: info.device_type.clone().or_else(|| existing.and_then(|r| r.device_type.clone())),
            priority,
            capabilities: info
                .capabilities
                .clone()
                .or_else(|| existing.map(|r| r.capabilities.clone()))
                .unwrap_or_default(),
            role: existing.map(|r| r.role.clone()).unwrap_or_else(|| Role::Client.as_str().to_owned()),
            is_active: true,
            last_seen: Some(now),
        };
        let device_id = info.device_id.clone();
        let was_master = self.master.as_deref() == Some(&device_id);
        let becomes_master = !was_master && self.master.is_none() && self.contest.is_none();
        let preempts = !was_master
            && !becomes_master
            && self.settings.preempt
            && self.contest.is_none()
            && self
                .master
                .as_ref()
                .and_then(|m| self.devices.get(m))
                .is_some_and(|m| priority > m.record.priority);
        let mut writes = vec![
            FleetWrite::Device(record.clone()),
            FleetWrite::Audit(AuditEntry::success(
                "device_online",
                if info.legacy { "register_device" } else { "device_online" },
                Some(&device_id),
                &format!("priority {priority}"),
            )),
        ];
        let announcement = becomes_master.then(|| MasterElected {
            new_master_id: device_id.clone(),
            new_master_name: record.name.clone(),
            previous_master: None,
            previous_master_id: None,
            election_id: Uuid::new_v4().to_string(),
            election_reason: Reason::NoMaster.as_str(),
            election_timestamp: time::format(now),
            election_method: Reason::NoMaster.method(),
            devices_participating: 1,
            term: self.term + 1,
        });
        if let Some(a) = &announcement {
            writes.extend(election_writes(a, now));
        }
        let link = SessionLink { id: msg.session, recipient: msg.recipient };
        let write = persist(&self.persistence, Command::Fleet(writes), Origin::Rest);
        AtomicResponse::new(Box::pin(write.into_actor(self).map(move |result, act, ctx| {
            if let Err(err) = result {
                tracing::error!(%err, device = %device_id, "device not registered");
                return Err(err.to_wire());
            }
            if act.grace.as_ref().is_some_and(|(d, _)| *d == device_id)
                && let Some((_, timer)) = act.grace.take()
            {
                ctx.cancel_future(timer);
                tracing::info!(device = %device_id, "master back within its grace period");
            }
            act.devices
                .insert(device_id.clone(), Device { record, session: Some(link), seen_at: Instant::now() });
            if let Some(a) = announcement {
                act.master = Some(device_id.clone());
                act.term = a.term;
                act.election_failed = false;
                tracing::info!(master = %device_id, term = act.term, "first device online becomes master");
                act.announce(&a, Vec::new());
            }
            if preempts {
                act.trigger(ctx, Reason::Preempt, None, false, None, None);
            }
            Ok(Online { role: act.role_of(&device_id), current_master: act.master.clone(), term: act.term })
        })))
    }
}

impl Handler<DeviceGone> for Election {
    type Result = AtomicResponse<Self, Gone>;

    fn handle(&mut self, msg: DeviceGone, _: &mut Context<Self>) -> Self::Result {
        let current = self
            .devices
            .get(&msg.device_id)
            .is_some_and(|d| d.session.as_ref().is_some_and(|s| s.id == msg.session));
        if !current {
            // A session that is no longer the device's (replaced, or already timed out).
            return AtomicResponse::new(Box::pin(fut::ready(Gone { election_triggered: false })));
        }
        let now = Utc::now();
        let event = match msg.how {
            Departure::Offline => "device_offline",
            Departure::Shutdown => "device_shutdown",
            Departure::Dropped => "device_disconnected",
        };
        let writes = vec![
            FleetWrite::Activity { device_id: msg.device_id.clone(), active: false, last_seen: now },
            FleetWrite::Audit(AuditEntry::success(
                event,
                event,
                Some(&msg.device_id),
                &match &msg.note {
                    Some(note) => format!("inactive ({note})"),
                    None => "inactive".to_owned(),
                },
            )),
        ];
        // Recorded before it is acknowledged; the device is inactive either way.
        let write = persist(&self.persistence, Command::Fleet(writes), Origin::Rest);
        AtomicResponse::new(Box::pin(write.into_actor(self).map(move |result, act, ctx| {
            if let Err(err) = result {
                tracing::error!(%err, device = %msg.device_id, "departure not recorded");
            }
            act.departed(ctx, msg, now)
        })))
    }
}

impl Election {
    /// A device went offline, shut down, or lost its session.
    fn departed(&mut self, ctx: &mut Context<Self>, msg: DeviceGone, now: DateTime<Utc>) -> Gone {
        let Some(device) = self.devices.get_mut(&msg.device_id) else {
            return Gone { election_triggered: false };
        };
        device.record.is_active = false;
        device.record.last_seen = Some(now);
        let reason = match msg.how {
            Departure::Offline => Reason::Offline,
            Departure::Shutdown => Reason::Shutdown,
            Departure::Dropped => {
                device.session = None;
                Reason::Failure
            }
        };
        if self.master.as_deref() != Some(msg.device_id.as_str()) {
            return Gone { election_triggered: false };
        }
        if msg.how == Departure::Dropped {
            let device_id = msg.device_id.clone();
            let timer = ctx
                .run_later(self.settings.reconnect_grace(), move |act, ctx| act.grace_over(ctx, &device_id));
            tracing::info!(device = %msg.device_id, "master dropped; waiting for it to come back");
            if let Some((_, old)) = self.grace.replace((msg.device_id, timer)) {
                ctx.cancel_future(old);
            }
            return Gone { election_triggered: false };
        }
        self.master = None;
        self.trigger(ctx, reason, Some(msg.device_id), true, None, None);
        Gone { election_triggered: true }
    }
}

impl Handler<Seen> for Election {
    type Result = ();

    fn handle(&mut self, msg: Seen, _: &mut Context<Self>) {
        let Some(device) = self.devices.get_mut(&msg.device_id) else { return };
        if device.session.as_ref().is_some_and(|s| s.id == msg.session) && msg.at > device.seen_at {
            let ago = Instant::now().saturating_duration_since(msg.at);
            device.seen_at = msg.at;
            device.record.last_seen = chrono::Duration::from_std(ago).ok().map(|ago| Utc::now() - ago);
            self.seen_dirty.insert(msg.device_id);
        }
    }
}

impl Handler<RoleChangeAck> for Election {
    type Result = ();

    fn handle(&mut self, msg: RoleChangeAck, ctx: &mut Context<Self>) {
        let from_session = self
            .devices
            .get(&msg.device_id)
            .and_then(|d| d.session.as_ref())
            .is_some_and(|s| s.id == msg.session);
        let Some(contest) = &mut self.contest else { return };
        let awaited = contest.candidate.as_ref().is_some_and(|(c, _)| *c == msg.device_id);
        let same_election = msg.election_id.as_ref().is_none_or(|id| *id == contest.id);
        if !(from_session && awaited && same_election) {
            return;
        }
        if msg.accepted {
            if let Some((winner, timer)) = contest.candidate.take() {
                ctx.cancel_future(timer);
                self.commit(ctx, winner);
            }
        } else {
            let id = contest.id.clone();
            if let Some((_, timer)) = contest.candidate.as_ref() {
                ctx.cancel_future(*timer);
            }
            self.candidate_failed(ctx, &id, &msg.device_id);
        }
    }
}

impl Handler<RequestElection> for Election {
    type Result = ResponseFuture<Result<Elected, WireError>>;

    fn handle(&mut self, msg: RequestElection, ctx: &mut Context<Self>) -> Self::Result {
        let refuse = |error: WireError| -> Self::Result { Box::pin(async move { Err(error) }) };
        let session = match &msg.requester {
            Requester::Admin => None,
            Requester::Device { device_id, session } => {
                let priority = self.devices.get(device_id).map_or(0, |d| d.record.priority);
                let is_master = self.master.as_deref() == Some(device_id.as_str());
                if !is_master
                    && priority < i32::try_from(self.settings.manual_min_priority).unwrap_or(i32::MAX)
                {
                    return refuse(WireError::new(
                        ErrorCode::InsufficientPermissions,
                        format!(
                            "A manual election needs the master or a priority of at least {}",
                            self.settings.manual_min_priority
                        ),
                    ));
                }
                Some(*session)
            }
        };
        if msg.require_preferred {
            let Some(preferred) = msg.preferred.as_deref() else {
                return refuse(WireError::invalid(Some("preferred_master"), None, "is required"));
            };
            match self.devices.get(preferred) {
                None => {
                    return refuse(WireError::new(
                        ErrorCode::DeviceNotFound,
                        format!("Device {preferred} does not exist"),
                    ));
                }
                Some(d) if !(d.record.is_active && d.session.is_some()) => {
                    return refuse(WireError::new(
                        ErrorCode::DeviceNotActive,
                        format!("Device {preferred} is not active"),
                    ));
                }
                Some(_) => {}
            }
        }
        let (reply, answer) = oneshot::channel();
        let waiter = Waiter { reply, session };
        let by = match (&msg.initiated_by, &msg.requester) {
            (Some(by), _) => by.clone(),
            (None, Requester::Admin) => "admin".to_owned(),
            (None, Requester::Device { device_id, .. }) => device_id.clone(),
        };
        tracing::info!(initiated_by = %by, preferred = ?msg.preferred, "manual election requested");
        let excluded = if msg.exclude_master { self.master.clone() } else { None };
        if let Some(master) = &excluded
            && self.contest.is_none()
            && self.candidates(&HashSet::from([master.clone()])).is_empty()
        {
            // A demotion with no one to take over: the master stays.
            return refuse(WireError::new(ErrorCode::NoCandidates, "No other active device to elect"));
        }
        // A demoted master stays master until its successor has confirmed.
        self.trigger(ctx, Reason::Manual, excluded, false, msg.preferred, Some(waiter));
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| {
                Err(WireError::new(ErrorCode::ServerError, "The election was interrupted"))
            })
        })
    }
}

impl Handler<RegisterDevice> for Election {
    type Result = AtomicResponse<Self, Result<Registration, WireError>>;

    fn handle(&mut self, msg: RegisterDevice, _: &mut Context<Self>) -> Self::Result {
        let existing = self.devices.get(&msg.device_id);
        let record = DeviceRecord {
            device_id: msg.device_id.clone(),
            name: existing.and_then(|d| d.record.name.clone()),
            device_type: existing.and_then(|d| d.record.device_type.clone()),
            priority: msg.priority.or(existing.map(|d| d.record.priority)).unwrap_or(0),
            capabilities: msg
                .capabilities
                .or_else(|| existing.map(|d| d.record.capabilities.clone()))
                .unwrap_or_default(),
            role: self.role_of(&msg.device_id).as_str().to_owned(),
            is_active: existing.is_some_and(|d| d.record.is_active),
            last_seen: existing.and_then(|d| d.record.last_seen),
        };
        let writes = vec![
            FleetWrite::Device(record.clone()),
            FleetWrite::Audit(AuditEntry::success(
                "device_register",
                "register",
                Some(&msg.device_id),
                "over REST",
            )),
        ];
        let write = persist(&self.persistence, Command::Fleet(writes), Origin::Rest);
        AtomicResponse::new(Box::pin(write.into_actor(self).map(move |result, act, _| {
            result.map_err(|e| e.to_wire())?;
            let device_id = record.device_id.clone();
            match act.devices.get_mut(&device_id) {
                Some(d) => d.record = record,
                None => {
                    act.devices
                        .insert(device_id.clone(), Device { record, session: None, seen_at: Instant::now() });
                }
            }
            let connected = act.devices.get(&device_id).is_some_and(|d| d.session.is_some());
            Ok(Registration { role: act.role_of(&device_id), master: act.master.clone(), connected })
        })))
    }
}

impl Handler<MasterId> for Election {
    type Result = Option<String>;

    fn handle(&mut self, _: MasterId, _: &mut Context<Self>) -> Option<String> {
        self.master.clone()
    }
}

impl Handler<Fleet> for Election {
    type Result = FleetView;

    fn handle(&mut self, _: Fleet, _: &mut Context<Self>) -> FleetView {
        let devices = self
            .devices
            .values()
            .map(|d| DeviceView {
                device_id: d.record.device_id.clone(),
                name: d.record.name.clone(),
                device_type: d.record.device_type.clone(),
                role: self.role_of(&d.record.device_id),
                priority: d.record.priority,
                capabilities: d.record.capabilities.clone(),
                last_seen: d.record.last_seen,
                is_active: d.record.is_active && d.session.is_some(),
                connected: d.session.is_some(),
            })
            .collect::<Vec<_>>();
        let last_heartbeat = devices.iter().filter_map(|d| d.last_seen).max();
        FleetView {
            master: self.master.clone(),
            term: self.term,
            devices,
            election_failed: self.election_failed,
            last_heartbeat,
        }
    }
}
