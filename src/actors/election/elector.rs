//! Who is master, as a state machine with no actix, no clock and no I/O: every rule of section 4
//! in one place. The Election actor hands it what happens (`Input`, with the time `Now`) and
//! carries out what it asks for (`Effect`): writes, frames for sessions, timers, answers.
//!
//! A decision that must be on disk before it takes effect (a device online, a departure, an
//! election's result, a REST registration) is asked for as `Effect::Persist` with an `After`;
//! the actor takes no other input until that write is done and reports it as
//! `Input::Persisted`. Timers are never cancelled: a timer that no longer matches the state
//! (another election, a newer grace period) is ignored when it fires.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::election::{self, Candidate, Reason, Role, priority_for_type};
use crate::domain::fleet::{AuditEntry, DeviceRecord, ElectionLogEntry, FleetWrite, Terms};
use crate::protocol::inbound;
use crate::protocol::outbound::{self, CandidateView, ElectionStarted, Frame, MasterElected, RoleChange};
use crate::protocol::{ErrorCode, WireError, close, time};
use crate::settings::{ElectionSettings, HeartbeatSettings};

/// The time of an input: a monotonic instant for deadlines, the wall clock for records.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub instant: Instant,
    pub wall: DateTime<Utc>,
}

/// Who an answer goes to (the actor keeps the waiting caller under this number).
pub type ReplyTo = u64;

/// How a device left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Departure {
    /// `device_offline`: no longer a candidate; its session stays open.
    Offline,
    /// `device_shutdown`.
    Shutdown,
    /// Its session ended without either.
    Dropped,
    /// Its session was closed because its client fell silent (Engine.IO's ping timeout, or the
    /// idle timeout): as a heartbeat timeout, rule 4's `timeout`, with no grace.
    Silent,
}

impl Departure {
    /// Whether the device's session has ended.
    pub fn ends_session(self) -> bool {
        matches!(self, Self::Dropped | Self::Silent)
    }
}

/// Who asks for a manual election.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Requester {
    /// An admin over REST.
    Admin,
    /// A device over WebSocket, from this session; allowed for the master and for devices of
    /// priority at least `election.manual_min_priority`.
    Device { device_id: String, session: Uuid },
}

/// What a registering device is told.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Online {
    pub role: Role,
    pub current_master: Option<String>,
    pub term: u64,
}

/// The answer to a departure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gone {
    pub election_triggered: bool,
}

/// The outcome of an election.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Elected {
    pub announcement: MasterElected,
}

/// The answer to a REST registration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    pub role: Role,
    pub master: Option<String>,
    pub connected: bool,
}

/// An answer to a caller.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Answer {
    Online(Result<Online, WireError>),
    Gone(Gone),
    Elected(Result<Elected, WireError>),
    Registered(Result<Registration, WireError>),
    Retired(Result<(), WireError>),
}

/// A timer the elector asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    /// The candidate of this election has not confirmed in time.
    AckTimeout { election_id: String, candidate: String },
    /// The backoff after a failed attempt is over: try the next candidate.
    Backoff { election_id: String },
    /// The master's reconnect grace (the `generation`-th one) is over.
    Grace { device_id: String, generation: u64 },
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Input {
    /// A session registered as a device (`device_online`, `register_device`).
    Online { session: Uuid, info: inbound::DeviceOnline, reply: ReplyTo },
    /// A device left, or its session ended.
    Gone { device_id: String, session: Uuid, how: Departure, note: Option<String>, reply: Option<ReplyTo> },
    /// Life from a device's session at `at`.
    Seen { device_id: String, session: Uuid, at: Instant },
    /// A device confirms (or declines) the role change it was sent.
    RoleChangeAck { device_id: String, session: Uuid, accepted: bool, election_id: Option<String> },
    /// A manual election (joining the one running, if any).
    Request { request: Request, reply: ReplyTo },
    /// A device registered over REST: a record, not a session.
    Register { device_id: String, priority: Option<i32>, capabilities: Option<Vec<String>>, reply: ReplyTo },
    /// An admin retires a device (`reply`), or the elector retires one itself (`None`): its
    /// record, role and sync state go, and its session is closed.
    Retire { device_id: String, reply: Option<ReplyTo> },
    /// A write asked for with `After` is done (or failed).
    Persisted { after: Box<After>, result: Result<(), WireError> },
    /// A timer fired.
    Timer(Timer),
    /// The heartbeat check, every `every`.
    Tick { every: Duration },
    /// After taking over from another node (`Elector::take_over`): a device's session is open
    /// on some node, as it was before. Nothing is written or announced.
    Present { session: Uuid, info: inbound::DeviceOnline },
    /// After taking over: the roll call is over; a master no session answered for has dropped.
    Settle,
}

/// What a write that must land first is for: how the elector goes on once it has.
#[derive(Debug, Clone)]
pub enum After {
    Online(Arrival),
    Gone {
        device_id: String,
        how: Departure,
        at: DateTime<Utc>,
        reply: Option<ReplyTo>,
    },
    Elected {
        announcement: MasterElected,
    },
    Registered {
        record: DeviceRecord,
        reply: ReplyTo,
    },
    /// The term of an attempt is spent: the candidate may be asked in it.
    Spent {
        election_id: String,
        candidate: String,
        term: u64,
    },
    /// A device's records are gone.
    Retired {
        device_id: String,
        reply: Option<ReplyTo>,
    },
}

/// A device's arrival, once it is recorded: its session and record, the announcement when it
/// becomes master at once, and whether it preempts the master.
#[derive(Debug, Clone)]
pub struct Arrival {
    session: Uuid,
    record: DeviceRecord,
    announcement: Option<MasterElected>,
    preempts: bool,
    reply: ReplyTo,
}

/// What to do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Write these in one transaction. With `after`, report the result as `Input::Persisted`
    /// and take no other input until then; without, a failure is only logged (nothing it
    /// records was acknowledged to anyone).
    Persist { writes: Vec<FleetWrite>, after: Option<After> },
    /// A frame for every session but `except`, in order with every other notice.
    Notify { frame: Frame, except: Vec<Uuid> },
    /// A frame for one session, in order with the notices before it.
    SendTo { session: Uuid, frame: Frame },
    /// Close a session.
    Close { session: Uuid, code: u16, reason: &'static str },
    /// Report `timer` after `after`.
    Start { timer: Timer, after: Duration },
    /// Answer a caller.
    Reply { to: ReplyTo, answer: Answer },
    /// An election ended, with a master (`elected`) or without: for the metrics.
    Concluded { reason: &'static str, elected: bool },
}

/// A device as REST shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

/// The fleet as the elector sees it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FleetView {
    pub master: Option<String>,
    pub term: u64,
    pub devices: Vec<DeviceView>,
    /// The last election failed and no master has been chosen since.
    pub election_failed: bool,
    /// The most recent sign of life from any device.
    pub last_heartbeat: Option<DateTime<Utc>>,
}

struct Device {
    record: DeviceRecord,
    session: Option<Uuid>,
    seen_at: Instant,
}

impl Device {
    fn candidate(&self) -> Candidate<'_> {
        Candidate { device_id: &self.record.device_id, priority: self.record.priority }
    }
}

/// A caller waiting for an election's outcome.
struct Waiter {
    reply: ReplyTo,
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
    /// Devices not to elect: a leaving master, candidates that did not confirm.
    skipped: HashSet<String>,
    failures: u32,
    participants: usize,
    /// The candidate asked to confirm.
    candidate: Option<String>,
    waiters: Vec<Waiter>,
}

/// The state machine.
pub struct Elector {
    settings: ElectionSettings,
    heartbeat: HeartbeatSettings,
    devices: BTreeMap<String, Device>,
    master: Option<String>,
    term: u64,
    /// The highest term a device was asked to be master in (recorded before it was asked):
    /// every attempt asks in a term above it.
    spent: u64,
    contest: Option<Contest>,
    election_failed: bool,
    /// After a takeover: the announcement of the master the database names, said again once
    /// the roll call is over (the leader before may have recorded it and gone before saying it).
    announce_again: Option<MasterElected>,
    /// The master's reconnect grace, while it runs, and its generation.
    grace: Option<(String, u64)>,
    graces: u64,
    /// Devices whose `last_seen` has moved since it was last written.
    seen_dirty: BTreeSet<String>,
    last_tick: Option<Instant>,
    new_id: Box<dyn FnMut() -> String>,
}

impl Elector {
    /// An elector at `terms` knowing `devices` (all inactive: no master until one comes online);
    /// `new_id` makes election ids.
    pub fn new(
        settings: ElectionSettings,
        heartbeat: HeartbeatSettings,
        terms: Terms,
        devices: Vec<DeviceRecord>,
        now: Instant,
        new_id: Box<dyn FnMut() -> String>,
    ) -> Self {
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
            devices,
            master: None,
            term: terms.current,
            spent: terms.spent.max(terms.current),
            contest: None,
            election_failed: false,
            announce_again: None,
            grace: None,
            graces: 0,
            seen_dirty: BTreeSet::new(),
            last_tick: None,
            new_id,
        }
    }

    /// An elector taking over the site's elections from another node (several nodes over one
    /// database): the term, the devices and the master as the database has them, and no session
    /// until the nodes answer the roll call (`Input::Present`, then `Input::Settle`).
    pub fn take_over(
        settings: ElectionSettings,
        heartbeat: HeartbeatSettings,
        terms: Terms,
        devices: Vec<DeviceRecord>,
        now: Instant,
        new_id: Box<dyn FnMut() -> String>,
    ) -> Self {
        let master = devices.iter().find(|d| d.role == Role::Master).map(|d| d.device_id.clone());
        let mut elector = Self::new(settings, heartbeat, terms, devices, now, new_id);
        elector.master = master;
        elector
    }

    /// After a takeover: `last`, the latest election recorded, is announced again once the
    /// roll call is over, if its master is still the master then.
    pub fn announcing_again(mut self, last: Option<MasterElected>) -> Self {
        self.announce_again =
            last.filter(|a| Some(&a.new_master_id) == self.master.as_ref() && a.term == self.term);
        self
    }

    pub fn settings(&self) -> &ElectionSettings {
        &self.settings
    }

    /// The master's device id.
    pub fn master(&self) -> Option<&str> {
        self.master.as_deref()
    }

    /// The fleet as REST shows it.
    pub fn view(&self) -> FleetView {
        let devices: Vec<DeviceView> = self
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
            .collect();
        let last_heartbeat = devices.iter().filter_map(|d| d.last_seen).max();
        FleetView {
            master: self.master.clone(),
            term: self.term,
            devices,
            election_failed: self.election_failed,
            last_heartbeat,
        }
    }

    /// Takes one input; returns what to do, in order.
    pub fn on(&mut self, input: Input, now: Now) -> Vec<Effect> {
        let mut fx = Vec::new();
        match input {
            Input::Online { session, info, reply } => self.online(session, info, reply, now, &mut fx),
            Input::Gone { device_id, session, how, note, reply } => {
                self.gone(device_id, session, how, note, reply, now, &mut fx)
            }
            Input::Seen { device_id, session, at } => self.seen(&device_id, session, at, now),
            Input::RoleChangeAck { device_id, session, accepted, election_id } => {
                self.role_change_ack(&device_id, session, accepted, election_id, now, &mut fx)
            }
            Input::Request { request, reply } => self.request(request, reply, &mut fx),
            Input::Register { device_id, priority, capabilities, reply } => {
                self.register(device_id, priority, capabilities, reply, &mut fx)
            }
            Input::Retire { device_id, reply } => self.retire(device_id, reply, &mut fx),
            Input::Persisted { after, result } => self.persisted(*after, result, now, &mut fx),
            Input::Timer(timer) => self.timer(timer, &mut fx),
            Input::Tick { every } => self.tick(every, now, &mut fx),
            Input::Present { session, info } => self.present(session, info, now),
            Input::Settle => self.settle(now, &mut fx),
        }
        fx
    }

    fn present(&mut self, session: Uuid, info: inbound::DeviceOnline, now: Now) {
        let Some(device) = self.devices.get_mut(&info.device_id) else {
            tracing::warn!(device = %info.device_id, "a device in the roll call has no record");
            return;
        };
        if device.session.is_some_and(|current| current != session) {
            // It came online on another session since (on another node, say): that one counts.
            return;
        }
        device.session = Some(session);
        device.seen_at = now.instant;
        device.record.is_active = true;
        if self.grace.as_ref().is_some_and(|(d, _)| *d == info.device_id) {
            tracing::info!(device = %info.device_id, "master back within its grace period");
            self.grace = None;
        }
    }

    fn settle(&mut self, now: Now, fx: &mut Vec<Effect>) {
        let announcement = self.announce_again.take();
        let Some(master) = self.master.clone() else { return };
        if self.session_of(&master).is_some()
            && let Some(announcement) =
                announcement.filter(|a| a.new_master_id == master && a.term == self.term)
        {
            // Every device hears who the master is, whether or not the leader before said it.
            tracing::info!(%master, term = self.term, "the master announced again after a takeover");
            fx.push(Effect::Notify { frame: outbound::render(&announcement, None), except: Vec::new() });
        }
        if self.session_of(&master).is_none() && self.grace.is_none() {
            tracing::info!(device = %master, "the master is on no node after the roll call");
            self.departed(master, Departure::Dropped, now.wall, fx);
        }
    }

    fn role_of(&self, device_id: &str) -> Role {
        if self.master.as_deref() == Some(device_id) { Role::Master } else { Role::Client }
    }

    /// Active devices with a session, not skipped.
    fn candidates(&self, skipped: &HashSet<String>) -> Vec<Candidate<'_>> {
        self.devices
            .values()
            .filter(|d| d.record.is_active && d.session.is_some() && !skipped.contains(&d.record.device_id))
            .map(Device::candidate)
            .collect()
    }

    fn session_of(&self, device_id: &str) -> Option<Uuid> {
        self.devices.get(device_id).and_then(|d| d.session)
    }

    // ---- arrivals and departures --------------------------------------------------------

    fn online(
        &mut self,
        session: Uuid,
        info: inbound::DeviceOnline,
        reply: ReplyTo,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
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
            role: existing.map_or(Role::Client, |r| r.role),
            is_active: true,
            last_seen: Some(now.wall),
        };
        let device_id = info.device_id.clone();
        let was_master = self.master.as_deref() == Some(&device_id);
        // Rule 2: no master and no election under way: the arrival is master at once.
        let becomes_master = !was_master && self.master.is_none() && self.contest.is_none();
        // Rule 3, unless `election.preempt`: a higher priority arrival triggers an election.
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
            election_id: (self.new_id)(),
            election_reason: Reason::NoMaster.as_str(),
            election_timestamp: time::format(now.wall),
            election_method: Reason::NoMaster.method(),
            devices_participating: 1,
            term: self.spent + 1,
        });
        if let Some(a) = &announcement {
            // Its term is spent with it, in the same transaction.
            self.spent = a.term;
            writes.push(FleetWrite::TermSpent(a.term));
            writes.extend(election_writes(a, now.wall));
        }
        let after = After::Online(Arrival { session, record, announcement, preempts, reply });
        fx.push(Effect::Persist { writes, after: Some(after) });
    }

    fn online_recorded(&mut self, arrival: Arrival, now: Now, fx: &mut Vec<Effect>) {
        let Arrival { session, record, announcement, preempts, reply } = arrival;
        let device_id = record.device_id.clone();
        if self.grace.as_ref().is_some_and(|(d, _)| *d == device_id) {
            tracing::info!(device = %device_id, "master back within its grace period");
            self.grace = None;
        }
        self.devices
            .insert(device_id.clone(), Device { record, session: Some(session), seen_at: now.instant });
        if let Some(a) = announcement {
            self.master = Some(device_id.clone());
            self.term = a.term;
            self.election_failed = false;
            tracing::info!(master = %device_id, term = self.term, "first device online becomes master");
            fx.push(Effect::Notify { frame: outbound::render(&a, None), except: Vec::new() });
            fx.push(Effect::Concluded { reason: a.election_reason, elected: true });
        }
        if preempts {
            self.trigger(Reason::Preempt, None, false, None, None, fx);
        }
        let online =
            Online { role: self.role_of(&device_id), current_master: self.master.clone(), term: self.term };
        fx.push(Effect::Reply { to: reply, answer: Answer::Online(Ok(online)) });
    }

    #[allow(clippy::too_many_arguments)]
    fn gone(
        &mut self,
        device_id: String,
        session: Uuid,
        how: Departure,
        note: Option<String>,
        reply: Option<ReplyTo>,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        if self.session_of(&device_id) != Some(session) {
            // A session that is no longer the device's (replaced, or already timed out).
            if let Some(to) = reply {
                fx.push(Effect::Reply { to, answer: Answer::Gone(Gone { election_triggered: false }) });
            }
            return;
        }
        let event = match how {
            Departure::Offline => "device_offline",
            Departure::Shutdown => "device_shutdown",
            Departure::Dropped => "device_disconnected",
            Departure::Silent => {
                let was_master = self.master.as_deref() == Some(device_id.as_str());
                self.timed_out(&device_id, now, fx);
                if let Some(to) = reply {
                    let gone = Gone { election_triggered: was_master };
                    fx.push(Effect::Reply { to, answer: Answer::Gone(gone) });
                }
                return;
            }
        };
        let details = match &note {
            Some(note) => format!("inactive ({note})"),
            None => "inactive".to_owned(),
        };
        let writes = vec![
            FleetWrite::Activity { device_id: device_id.clone(), active: false, last_seen: now.wall },
            FleetWrite::Audit(AuditEntry::success(event, event, Some(&device_id), &details)),
        ];
        let after = After::Gone { device_id, how, at: now.wall, reply };
        fx.push(Effect::Persist { writes, after: Some(after) });
    }

    /// A device went offline, shut down, or lost its session (recorded, or not: it is inactive
    /// either way).
    fn departed(
        &mut self,
        device_id: String,
        how: Departure,
        at: DateTime<Utc>,
        fx: &mut Vec<Effect>,
    ) -> Gone {
        let Some(device) = self.devices.get_mut(&device_id) else {
            return Gone { election_triggered: false };
        };
        device.record.is_active = false;
        device.record.last_seen = Some(at);
        let reason = match how {
            Departure::Offline => Reason::Offline,
            Departure::Shutdown => Reason::Shutdown,
            Departure::Dropped => {
                device.session = None;
                Reason::Failure
            }
            Departure::Silent => {
                device.session = None;
                Reason::Timeout
            }
        };
        if self.master.as_deref() != Some(device_id.as_str()) {
            return Gone { election_triggered: false };
        }
        if how == Departure::Dropped {
            // Rule 4: a dropped master has `reconnect_grace_s` to come back.
            tracing::info!(device = %device_id, "master dropped; waiting for it to come back");
            self.graces += 1;
            let timer = Timer::Grace { device_id: device_id.clone(), generation: self.graces };
            self.grace = Some((device_id, self.graces));
            fx.push(Effect::Start { timer, after: self.settings.reconnect_grace() });
            return Gone { election_triggered: false };
        }
        self.master = None;
        self.trigger(reason, Some(device_id), true, None, None, fx);
        Gone { election_triggered: true }
    }

    fn seen(&mut self, device_id: &str, session: Uuid, at: Instant, now: Now) {
        let Some(device) = self.devices.get_mut(device_id) else { return };
        if device.session == Some(session) && at > device.seen_at {
            let ago = now.instant.saturating_duration_since(at);
            device.seen_at = at;
            device.record.last_seen = chrono::Duration::from_std(ago).ok().map(|ago| now.wall - ago);
            self.seen_dirty.insert(device_id.to_owned());
        }
    }

    /// Retires a device: refused for the master (elect another first) and for a device never
    /// seen; otherwise its records go and its session, if it has one, is closed.
    fn retire(&mut self, device_id: String, reply: Option<ReplyTo>, fx: &mut Vec<Effect>) {
        let refusal = if self.master.as_deref() == Some(device_id.as_str()) {
            Some(WireError::new(
                ErrorCode::DeviceBusy,
                format!("Device {device_id} is the master: elect another master first"),
            ))
        } else if !self.devices.contains_key(&device_id) {
            Some(WireError::new(ErrorCode::DeviceNotFound, format!("Device {device_id} does not exist")))
        } else {
            None
        };
        if let Some(error) = refusal {
            if let Some(to) = reply {
                fx.push(Effect::Reply { to, answer: Answer::Retired(Err(error)) });
            }
            return;
        }
        let how = if reply.is_some() { "by an admin" } else { "unseen past election.device_keep_days" };
        let writes = vec![
            FleetWrite::Retire(device_id.clone()),
            FleetWrite::Audit(AuditEntry::success("device_retired", "retire", Some(&device_id), how)),
        ];
        fx.push(Effect::Persist { writes, after: Some(After::Retired { device_id, reply }) });
    }

    fn register(
        &mut self,
        device_id: String,
        priority: Option<i32>,
        capabilities: Option<Vec<String>>,
        reply: ReplyTo,
        fx: &mut Vec<Effect>,
    ) {
        let existing = self.devices.get(&device_id);
        let record = DeviceRecord {
            device_id: device_id.clone(),
            name: existing.and_then(|d| d.record.name.clone()),
            device_type: existing.and_then(|d| d.record.device_type.clone()),
            priority: priority.or(existing.map(|d| d.record.priority)).unwrap_or(0),
            capabilities: capabilities
                .or_else(|| existing.map(|d| d.record.capabilities.clone()))
                .unwrap_or_default(),
            role: self.role_of(&device_id),
            is_active: existing.is_some_and(|d| d.record.is_active),
            last_seen: existing.and_then(|d| d.record.last_seen),
        };
        let writes = vec![
            FleetWrite::Device(record.clone()),
            FleetWrite::Audit(AuditEntry::success(
                "device_register",
                "register",
                Some(&device_id),
                "over REST",
            )),
        ];
        fx.push(Effect::Persist { writes, after: Some(After::Registered { record, reply }) });
    }

    fn persisted(&mut self, after: After, result: Result<(), WireError>, now: Now, fx: &mut Vec<Effect>) {
        match after {
            After::Online(arrival) => match result {
                Ok(()) => self.online_recorded(arrival, now, fx),
                Err(error) => {
                    fx.push(Effect::Reply { to: arrival.reply, answer: Answer::Online(Err(error)) })
                }
            },
            After::Gone { device_id, how, at, reply } => {
                // Inactive whether or not it was recorded.
                let gone = self.departed(device_id, how, at, fx);
                if let Some(to) = reply {
                    fx.push(Effect::Reply { to, answer: Answer::Gone(gone) });
                }
            }
            After::Elected { announcement } => match result {
                Ok(()) => self.elected(announcement, fx),
                Err(err) => {
                    tracing::error!(%err, "election result not recorded");
                    self.fail("its result could not be recorded", fx)
                }
            },
            After::Retired { device_id, reply } => {
                if result.is_ok()
                    && let Some(device) = self.devices.remove(&device_id)
                    && let Some(session) = device.session
                {
                    fx.push(Effect::Close { session, code: close::RETIRED, reason: "device retired" });
                }
                self.seen_dirty.remove(&device_id);
                if let Some(to) = reply {
                    fx.push(Effect::Reply { to, answer: Answer::Retired(result) });
                }
            }
            After::Spent { election_id, candidate, term } => match result {
                Ok(()) => self.ask(&election_id, &candidate, term, fx),
                Err(err) => {
                    tracing::error!(%err, "an election's term not recorded");
                    self.fail("its term could not be recorded", fx)
                }
            },
            After::Registered { record, reply } => {
                let answer = result.map(|()| {
                    let device_id = record.device_id.clone();
                    match self.devices.get_mut(&device_id) {
                        Some(d) => d.record = record,
                        None => {
                            let device = Device { record, session: None, seen_at: now.instant };
                            self.devices.insert(device_id.clone(), device);
                        }
                    }
                    let connected = self.session_of(&device_id).is_some();
                    Registration { role: self.role_of(&device_id), master: self.master.clone(), connected }
                });
                fx.push(Effect::Reply { to: reply, answer: Answer::Registered(answer) });
            }
        }
    }

    // ---- elections ----------------------------------------------------------------------

    /// Starts an election, or joins the one running (rule 6). `excluded` is a master that may
    /// not be elected: one that is going away (`departing`), or one being demoted.
    fn trigger(
        &mut self,
        reason: Reason,
        excluded: Option<String>,
        departing: bool,
        preferred: Option<String>,
        waiter: Option<Waiter>,
        fx: &mut Vec<Effect>,
    ) {
        if let Some(contest) = &mut self.contest {
            tracing::info!(election = %contest.id, reason = reason.as_str(), "trigger joins the running election");
            contest.waiters.extend(waiter);
            if let Some(excluded) = excluded {
                contest.skipped.insert(excluded.clone());
                if contest.candidate.as_deref() == Some(excluded.as_str()) {
                    contest.candidate = None;
                    self.attempt(fx);
                }
            }
            return;
        }
        let skipped: HashSet<String> = excluded.iter().cloned().collect();
        let candidates = self.candidates(&skipped);
        if candidates.is_empty() {
            // Rule 6 of an election: no active device, no master.
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
            fx.push(Effect::Persist { writes, after: None });
            if let Some(w) = waiter {
                let error = WireError::new(ErrorCode::NoCandidates, "No active device to elect");
                fx.push(Effect::Reply { to: w.reply, answer: Answer::Elected(Err(error)) });
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
            id: (self.new_id)(),
            reason,
            // The term its first attempt asks in.
            term: self.spent + 1,
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
        fx.push(Effect::Notify { frame: outbound::render(&started, None), except: Vec::new() });
        let details =
            format!("election {} started (term {}, {} candidates)", contest.id, contest.term, participants);
        let audit = AuditEntry::success("master_election", reason.as_str(), None, &details);
        fx.push(Effect::Persist { writes: vec![FleetWrite::Audit(audit)], after: None });
        self.contest = Some(contest);
        self.attempt(fx);
    }

    /// Picks the best remaining candidate (step 2) and spends a new term for it: recorded
    /// before the candidate is asked in it (`ask`), so that no two devices are ever asked to
    /// be master in one term, by this node or by one that takes over after it.
    fn attempt(&mut self, fx: &mut Vec<Effect>) {
        let Some(contest) = &self.contest else { return };
        let winner = {
            let candidates = self.candidates(&contest.skipped);
            election::choose(&candidates, contest.preferred.as_deref()).map(str::to_owned)
        };
        let Some(winner) = winner else {
            return self.fail("no candidate is left", fx);
        };
        let Some(contest) = &mut self.contest else { return };
        self.spent += 1;
        contest.term = self.spent;
        contest.candidate = Some(winner.clone());
        let after = After::Spent { election_id: contest.id.clone(), candidate: winner, term: self.spent };
        fx.push(Effect::Persist { writes: vec![FleetWrite::TermSpent(self.spent)], after: Some(after) });
    }

    /// Asks the candidate to confirm, in the term spent for it (step 3).
    fn ask(&mut self, election_id: &str, candidate: &str, term: u64, fx: &mut Vec<Effect>) {
        let previous_role = self.role_of(candidate);
        let Some(contest) = &mut self.contest else { return };
        if contest.id != election_id
            || contest.candidate.as_deref() != Some(candidate)
            || contest.term != term
        {
            // Passed over meanwhile (it left, or the election ended).
            return;
        }
        let change = RoleChange {
            device_id: candidate,
            new_role: Role::Master.as_str(),
            previous_role: previous_role.as_str(),
            reason: "election",
            election_id: &contest.id,
            term,
        };
        let frame = outbound::render(&change, None);
        let timer = Timer::AckTimeout { election_id: contest.id.clone(), candidate: candidate.to_owned() };
        fx.push(Effect::Start { timer, after: self.settings.ack_timeout() });
        fx.push(Effect::Notify { frame, except: Vec::new() });
    }

    /// The candidate did not confirm in time, or declined: skip it, back off, try the next
    /// (step 5).
    fn candidate_failed(&mut self, election_id: &str, candidate: &str, fx: &mut Vec<Effect>) {
        let Some(contest) = &mut self.contest else { return };
        if contest.id != election_id || contest.candidate.as_deref() != Some(candidate) {
            return;
        }
        contest.candidate = None;
        contest.skipped.insert(candidate.to_owned());
        contest.failures += 1;
        let failures = contest.failures;
        tracing::warn!(election = %election_id, candidate, failures, "candidate skipped");
        let details = format!("candidate {candidate} did not confirm (attempt {failures})");
        let audit = AuditEntry::error("master_election", contest.reason.as_str(), Some(candidate), &details);
        fx.push(Effect::Persist { writes: vec![FleetWrite::Audit(audit)], after: None });
        match election::next_attempt(failures, self.settings.max_retries, &self.settings.backoff_ms) {
            Some(wait) => {
                fx.push(Effect::Start {
                    timer: Timer::Backoff { election_id: election_id.to_owned() },
                    after: wait,
                });
            }
            None => self.fail(&format!("{failures} candidates did not confirm"), fx),
        }
    }

    fn role_change_ack(
        &mut self,
        device_id: &str,
        session: Uuid,
        accepted: bool,
        election_id: Option<String>,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let from_session = self.session_of(device_id) == Some(session);
        let Some(contest) = &mut self.contest else { return };
        let awaited = contest.candidate.as_deref() == Some(device_id);
        let same_election = election_id.as_ref().is_none_or(|id| *id == contest.id);
        if !(from_session && awaited && same_election) {
            return;
        }
        if !accepted {
            let id = contest.id.clone();
            return self.candidate_failed(&id, device_id, fx);
        }
        // Step 4: record, then announce.
        contest.candidate = None;
        let announcement = MasterElected {
            new_master_id: device_id.to_owned(),
            new_master_name: self.devices.get(device_id).and_then(|d| d.record.name.clone()),
            previous_master: contest.previous_master.clone(),
            previous_master_id: contest.previous_master.clone(),
            election_id: contest.id.clone(),
            election_reason: contest.reason.as_str(),
            election_timestamp: time::format(now.wall),
            election_method: contest.reason.method(),
            devices_participating: contest.participants,
            term: contest.term,
        };
        let writes = election_writes(&announcement, now.wall);
        fx.push(Effect::Persist { writes, after: Some(After::Elected { announcement }) });
    }

    fn elected(&mut self, announcement: MasterElected, fx: &mut Vec<Effect>) {
        let Some(contest) = self.contest.take() else { return };
        let previous = self.master.replace(announcement.new_master_id.clone());
        self.term = announcement.term;
        self.election_failed = false;
        tracing::info!(election = %contest.id, master = %announcement.new_master_id, term = self.term, "master elected");
        let direct: Vec<Uuid> = contest.waiters.iter().filter_map(|w| w.session).collect();
        fx.push(Effect::Notify { frame: outbound::render(&announcement, None), except: direct });
        fx.push(Effect::Concluded { reason: contest.reason.as_str(), elected: true });
        if let Some(previous) = previous.filter(|p| *p != announcement.new_master_id)
            && let Some(session) = self.session_of(&previous)
        {
            let change = RoleChange {
                device_id: &previous,
                new_role: Role::Client.as_str(),
                previous_role: Role::Master.as_str(),
                reason: "election",
                election_id: &contest.id,
                term: self.term,
            };
            fx.push(Effect::SendTo { session, frame: outbound::render(&change, None) });
        }
        for w in contest.waiters {
            let answer = Answer::Elected(Ok(Elected { announcement: announcement.clone() }));
            fx.push(Effect::Reply { to: w.reply, answer });
        }
    }

    /// The election failed: no master until a device comes online or an admin elects one.
    fn fail(&mut self, why: &str, fx: &mut Vec<Effect>) {
        let Some(contest) = self.contest.take() else { return };
        tracing::error!(election = %contest.id, why, "election failed");
        self.master = None;
        self.election_failed = true;
        let error = WireError::new(
            ErrorCode::ElectionFailed,
            format!("Master election {} failed: {why}", contest.id),
        )
        .with_details(serde_json::json!({ "election_id": contest.id, "term": contest.term }));
        let direct: Vec<Uuid> = contest.waiters.iter().filter_map(|w| w.session).collect();
        fx.push(Effect::Notify { frame: outbound::error(&error, None), except: direct });
        fx.push(Effect::Concluded { reason: contest.reason.as_str(), elected: false });
        let audit = AuditEntry::error("master_election", contest.reason.as_str(), None, &error.message);
        fx.push(Effect::Persist {
            writes: vec![FleetWrite::Master(None), FleetWrite::Audit(audit)],
            after: None,
        });
        for w in contest.waiters {
            fx.push(Effect::Reply { to: w.reply, answer: Answer::Elected(Err(error.clone())) });
        }
    }

    fn request(&mut self, r: Request, reply: ReplyTo, fx: &mut Vec<Effect>) {
        match self.admit(&r) {
            Ok(session) => {
                let by = match (&r.initiated_by, &r.requester) {
                    (Some(by), _) => by.clone(),
                    (None, Requester::Admin) => "admin".to_owned(),
                    (None, Requester::Device { device_id, .. }) => device_id.clone(),
                };
                tracing::info!(initiated_by = %by, preferred = ?r.preferred, "manual election requested");
                let excluded = if r.exclude_master { self.master.clone() } else { None };
                // A demoted master stays master until its successor has confirmed.
                let waiter = Waiter { reply, session };
                self.trigger(Reason::Manual, excluded, false, r.preferred, Some(waiter), fx);
            }
            Err(error) => fx.push(Effect::Reply { to: reply, answer: Answer::Elected(Err(error)) }),
        }
    }

    /// Whether a manual election may run: the requester's right, the preferred device, a
    /// successor for a demoted master. Answers the session to leave out of the broadcast.
    fn admit(&self, r: &Request) -> Result<Option<Uuid>, WireError> {
        let refuse = Err;
        let session = match &r.requester {
            Requester::Admin => None,
            Requester::Device { device_id, session } => {
                let priority = self.devices.get(device_id).map_or(0, |d| d.record.priority);
                let is_master = self.master.as_deref() == Some(device_id.as_str());
                let min = i32::try_from(self.settings.manual_min_priority).unwrap_or(i32::MAX);
                if !is_master && priority < min {
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
        if r.require_preferred {
            let Some(preferred) = r.preferred.as_deref() else {
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
        if r.exclude_master
            && let Some(master) = &self.master
            && self.contest.is_none()
            && self.candidates(&HashSet::from([master.clone()])).is_empty()
        {
            // A demotion with no one to take over: the master stays.
            return refuse(WireError::new(ErrorCode::NoCandidates, "No other active device to elect"));
        }
        Ok(session)
    }

    // ---- timers and liveness --------------------------------------------------------------

    fn timer(&mut self, timer: Timer, fx: &mut Vec<Effect>) {
        match timer {
            Timer::AckTimeout { election_id, candidate } => {
                self.candidate_failed(&election_id, &candidate, fx)
            }
            Timer::Backoff { election_id } => {
                if self.contest.as_ref().is_some_and(|c| c.id == election_id && c.candidate.is_none()) {
                    self.attempt(fx);
                }
            }
            Timer::Grace { device_id, generation } => {
                if self.grace != Some((device_id.clone(), generation)) {
                    return;
                }
                self.grace = None;
                let back = self.session_of(&device_id).is_some();
                if !back && self.master.as_deref() == Some(device_id.as_str()) {
                    self.master = None;
                    self.trigger(Reason::Failure, Some(device_id), true, None, None, fx);
                }
            }
        }
    }

    fn tick(&mut self, every: Duration, now: Now, fx: &mut Vec<Effect>) {
        // An actor held up (e.g. by a slow commit) has not read its mail: judge no one on it.
        let stalled = self.last_tick.is_some_and(|last| now.instant.duration_since(last) > every * 3);
        self.last_tick = Some(now.instant);
        // Devices gone for good are retired, one at a time (each waits for its write).
        let keep = self.settings.device_keep_for().and_then(|keep| chrono::Duration::from_std(keep).ok());
        if let Some(before) = keep.and_then(|keep| now.wall.checked_sub_signed(keep)) {
            let stale = self.devices.values().find(|d| {
                d.session.is_none()
                    && self.master.as_deref() != Some(d.record.device_id.as_str())
                    && d.record.last_seen.is_some_and(|at| at < before)
            });
            if let Some(stale) = stale.map(|d| d.record.device_id.clone()) {
                self.retire(stale, None, fx);
            }
        }
        if !stalled {
            let timeout = self.heartbeat.timeout();
            let silent: Vec<String> = self
                .devices
                .values()
                .filter(|d| d.session.is_some() && now.instant.duration_since(d.seen_at) > timeout)
                .map(|d| d.record.device_id.clone())
                .collect();
            for device_id in silent {
                self.timed_out(&device_id, now, fx);
            }
        }
        if !self.seen_dirty.is_empty() {
            let seen = std::mem::take(&mut self.seen_dirty)
                .into_iter()
                .filter_map(|id| self.devices.get(&id).and_then(|d| d.record.last_seen.map(|at| (id, at))))
                .collect();
            fx.push(Effect::Persist { writes: vec![FleetWrite::Seen(seen)], after: None });
        }
    }

    /// A device silent for `heartbeat.timeout_s` has failed (rule 4: `timeout`).
    fn timed_out(&mut self, device_id: &str, now: Now, fx: &mut Vec<Effect>) {
        let Some(device) = self.devices.get_mut(device_id) else { return };
        let Some(session) = device.session.take() else { return };
        tracing::warn!(device = device_id, "heartbeat timeout");
        device.record.is_active = false;
        fx.push(Effect::Close { session, code: close::HEARTBEAT_TIMEOUT, reason: "heartbeat timeout" });
        let last_seen = device.record.last_seen.unwrap_or(now.wall);
        let silent_for = self.heartbeat.timeout_s;
        let writes = vec![
            FleetWrite::Activity { device_id: device_id.to_owned(), active: false, last_seen },
            FleetWrite::Audit(AuditEntry::error(
                "device_timeout",
                "timeout",
                Some(device_id),
                &format!("silent for {silent_for} s"),
            )),
        ];
        fx.push(Effect::Persist { writes, after: None });
        if self.master.as_deref() == Some(device_id) {
            self.master = None;
            self.trigger(Reason::Timeout, Some(device_id.to_owned()), true, None, None, fx);
        }
    }
}

/// A manual election request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub requester: Requester,
    pub initiated_by: Option<String>,
    /// Chosen if it is an active device.
    pub preferred: Option<String>,
    /// The preferred device must be active (409 `DEVICE_NOT_ACTIVE` otherwise).
    pub require_preferred: bool,
    /// Elect without the current master (a demotion).
    pub exclude_master: bool,
}

/// What recording an election writes, in one transaction.
pub fn election_writes(a: &MasterElected, at: DateTime<Utc>) -> Vec<FleetWrite> {
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

#[cfg(test)]
mod tests;
