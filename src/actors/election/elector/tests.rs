//! The rules of section 4, one by one, and random runs that check the invariants: one master
//! per term, terms that only grow, and no `master_elected` before its candidate confirmed.

use std::collections::HashMap;

use serde_json::Value;

use super::*;
use crate::domain::seeded::Rng;

/// The elector with a clock, the writes it made, the frames it sent, its timers and answers.
struct World {
    elector: Elector,
    start: Instant,
    /// Milliseconds since `start`.
    at_ms: u64,
    sessions: HashMap<String, Uuid>,
    /// Frames sent to every session (`Notify`), parsed.
    notices: Vec<Value>,
    /// Frames sent to one session.
    direct: Vec<(Uuid, Value)>,
    closed: Vec<(Uuid, u16)>,
    writes: Vec<FleetWrite>,
    timers: Vec<(u64, Timer)>,
    answers: HashMap<ReplyTo, Answer>,
    next_reply: ReplyTo,
    /// Persists with an `After` fail while set.
    failing: bool,
    /// Role changes to master sent, by election id and device, and the acks given.
    acked: Vec<(String, String)>,
    /// Elections ended, by reason, and whether they found a master.
    concluded: Vec<(&'static str, bool)>,
}

fn settings() -> (ElectionSettings, HeartbeatSettings) {
    let election = ElectionSettings {
        ack_timeout_s: 1.0,
        max_retries: 3,
        backoff_ms: vec![100, 200, 400],
        reconnect_grace_s: 5.0,
        preempt: false,
        manual_min_priority: 80,
        device_keep_days: 0.0,
    };
    (election, HeartbeatSettings { interval_s: 1.0, timeout_s: 10.0 })
}

impl World {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(configure: impl FnOnce(&mut ElectionSettings)) -> Self {
        let (mut election, heartbeat) = settings();
        configure(&mut election);
        let start = Instant::now();
        let mut n = 0;
        let new_id = Box::new(move || {
            n += 1;
            format!("e{n}")
        });
        Self {
            elector: Elector::new(election, heartbeat, Terms::default(), Vec::new(), start, new_id),
            start,
            at_ms: 0,
            sessions: HashMap::new(),
            notices: Vec::new(),
            direct: Vec::new(),
            closed: Vec::new(),
            writes: Vec::new(),
            timers: Vec::new(),
            answers: HashMap::new(),
            next_reply: 0,
            failing: false,
            acked: Vec::new(),
            concluded: Vec::new(),
        }
    }

    fn now(&self) -> Now {
        let instant = self.start + Duration::from_millis(self.at_ms);
        let wall =
            DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000 + self.at_ms as i64).unwrap_or_default();
        Now { instant, wall }
    }

    fn input(&mut self, input: Input) {
        let effects = self.elector.on(input, self.now());
        self.apply(effects);
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Persist { writes, after } => {
                    if let Some(after) = after {
                        let result = if self.failing {
                            Err(WireError::new(ErrorCode::DatabaseUnavailable, "down"))
                        } else {
                            self.writes.extend(writes);
                            Ok(())
                        };
                        self.input(Input::Persisted { after: Box::new(after), result });
                    } else {
                        self.writes.extend(writes);
                    }
                }
                Effect::Notify { frame, .. } => self.notices.push(parse(&frame)),
                Effect::SendTo { session, frame } => self.direct.push((session, parse(&frame))),
                Effect::Close { session, code, .. } => self.closed.push((session, code)),
                Effect::Start { timer, after } => {
                    let due = self.at_ms + u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
                    self.timers.push((due, timer));
                }
                Effect::Reply { to, answer } => {
                    self.answers.insert(to, answer);
                }
                Effect::Concluded { reason, elected } => self.concluded.push((reason, elected)),
            }
        }
    }

    fn reply(&mut self) -> ReplyTo {
        self.next_reply += 1;
        self.next_reply
    }

    /// `device_online` from a new session.
    fn online(&mut self, device_id: &str, priority: i32) -> Online {
        match self.try_online(device_id, priority) {
            Ok(online) => online,
            Err(error) => panic!("device_online refused: {error:?}"),
        }
    }

    /// `device_online`, which fails when its record cannot be written.
    fn try_online(&mut self, device_id: &str, priority: i32) -> Result<Online, WireError> {
        let session = Uuid::new_v4();
        let info = inbound::DeviceOnline {
            device_id: device_id.to_owned(),
            priority: Some(priority),
            ..Default::default()
        };
        let reply = self.reply();
        self.input(Input::Online { session, info, reply });
        match self.answers.remove(&reply) {
            Some(Answer::Online(result)) => {
                if result.is_ok() {
                    self.sessions.insert(device_id.to_owned(), session);
                }
                result
            }
            other => panic!("device_online answered {other:?}"),
        }
    }

    fn gone(&mut self, device_id: &str, how: Departure) -> Gone {
        let session = self.sessions[device_id];
        let reply = self.reply();
        self.input(Input::Gone {
            device_id: device_id.to_owned(),
            session,
            how,
            note: None,
            reply: Some(reply),
        });
        match self.answers.remove(&reply) {
            Some(Answer::Gone(gone)) => gone,
            other => panic!("departure answered {other:?}"),
        }
    }

    /// The device confirms the role change it was last asked for.
    fn ack(&mut self, device_id: &str, accepted: bool) {
        let election_id = self.asked(device_id).expect("it was asked to become master");
        // Only an ack while it is the one asked last in its election counts: a candidate that
        // was passed over must not win by confirming late.
        let latest = self
            .notices
            .iter()
            .rev()
            .find(|n| {
                n["type"] == "role_change"
                    && n["new_role"] == "master"
                    && n["election_id"] == election_id.as_str()
            })
            .is_some_and(|n| n["device_id"] == device_id);
        if accepted && latest {
            self.acked.push((election_id.clone(), device_id.to_owned()));
        }
        let session = self.sessions[device_id];
        let input = Input::RoleChangeAck {
            device_id: device_id.to_owned(),
            session,
            accepted,
            election_id: Some(election_id),
        };
        self.input(input);
    }

    /// The election id of the last `role_change` asking `device_id` to become master.
    fn asked(&self, device_id: &str) -> Option<String> {
        self.notices
            .iter()
            .rev()
            .find(|n| n["type"] == "role_change" && n["device_id"] == device_id && n["new_role"] == "master")
            .and_then(|n| n["election_id"].as_str().map(str::to_owned))
    }

    fn request(
        &mut self,
        requester: Requester,
        preferred: Option<&str>,
        require: bool,
        exclude: bool,
    ) -> ReplyTo {
        let reply = self.reply();
        let request = Request {
            requester,
            initiated_by: None,
            preferred: preferred.map(str::to_owned),
            require_preferred: require,
            exclude_master: exclude,
        };
        self.input(Input::Request { request, reply });
        reply
    }

    fn elected_answer(&mut self, reply: ReplyTo) -> Option<Result<Elected, WireError>> {
        match self.answers.remove(&reply) {
            Some(Answer::Elected(result)) => Some(result),
            None => None,
            other => panic!("an election answered {other:?}"),
        }
    }

    /// Moves the clock forward by `ms`, firing the timers that fall due, in order.
    fn advance(&mut self, ms: u64) {
        let until = self.at_ms + ms;
        loop {
            self.timers.sort_by_key(|(due, _)| *due);
            match self.timers.first() {
                Some((due, _)) if *due <= until => {
                    let (due, timer) = self.timers.remove(0);
                    self.at_ms = self.at_ms.max(due);
                    self.input(Input::Timer(timer));
                }
                _ => break,
            }
        }
        self.at_ms = until;
    }

    fn tick(&mut self) {
        self.input(Input::Tick { every: Duration::from_millis(250) });
    }

    fn elections(&self) -> Vec<&Value> {
        self.notices.iter().filter(|n| n["type"] == "master_elected").collect()
    }

    fn last_elected(&self) -> &Value {
        self.elections().last().copied().expect("a master_elected")
    }
}

fn parse(frame: &Frame) -> Value {
    serde_json::from_str(frame.json()).expect("a JSON frame")
}

#[test]
fn the_first_device_online_becomes_master_at_once_with_term_1() {
    let mut w = World::new();
    let online = w.online("till-1", 10);
    assert_eq!((online.role, online.term), (Role::Master, 1));
    let elected = w.last_elected();
    assert_eq!(
        (elected["new_master_id"].as_str(), elected["election_reason"].as_str()),
        (Some("till-1"), Some("no_master"))
    );
    assert_eq!(elected["election_method"], "automatic");
    assert!(w.writes.contains(&FleetWrite::Term(1)));
    assert!(w.writes.contains(&FleetWrite::Master(Some("till-1".into()))));
}

#[test]
fn a_device_that_comes_online_while_there_is_a_master_is_a_client_whatever_its_priority() {
    let mut w = World::new();
    w.online("till-1", 10);
    let online = w.online("office", 100);
    assert_eq!(
        (online.role, online.current_master.as_deref(), online.term),
        (Role::Client, Some("till-1"), 1)
    );
    assert_eq!(w.elections().len(), 1);
}

#[test]
fn with_preempt_a_higher_priority_arrival_triggers_an_election() {
    let mut w = World::with(|s| s.preempt = true);
    w.online("till-1", 10);
    w.online("office", 100);
    w.ack("office", true);
    let elected = w.last_elected();
    assert_eq!(
        (elected["new_master_id"].as_str(), elected["election_reason"].as_str()),
        (Some("office"), Some("preempt"))
    );
}

#[test]
fn a_master_that_shuts_down_is_replaced_by_the_highest_priority_ties_to_the_smallest_id() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-2", 50);
    w.online("till-1", 50);
    let gone = w.gone("office", Departure::Shutdown);
    assert!(gone.election_triggered);
    let started = w.notices.iter().find(|n| n["type"] == "master_election").expect("master_election");
    assert_eq!((started["reason"].as_str(), started["term"].as_u64()), (Some("shutdown"), Some(2)));
    let candidates: Vec<&str> = started["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .filter_map(|c| c["device_id"].as_str())
        .collect();
    assert_eq!(candidates, vec!["till-1", "till-2"], "the leaving master is no candidate");
    assert_eq!(w.asked("till-1").as_deref(), Some("e2"));
    assert_eq!(w.elections().len(), 1, "no master_elected before the ack");
    assert_eq!(w.elector.master(), None, "no master while the election runs");
    w.ack("till-1", true);
    let elected = w.last_elected();
    assert_eq!((elected["new_master_id"].as_str(), elected["term"].as_u64()), (Some("till-1"), Some(2)));
    assert_eq!(elected["previous_master_id"], "office");
    assert_eq!(elected["election_method"], "priority");
    assert_eq!(w.elector.master(), Some("till-1"));
}

#[test]
fn a_master_going_offline_is_replaced_for_offline() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 20);
    assert!(w.gone("office", Departure::Offline).election_triggered);
    w.ack("till-1", true);
    assert_eq!(w.last_elected()["election_reason"], "offline");
}

#[test]
fn a_dropped_master_is_replaced_for_failure_only_after_the_grace() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 20);
    assert!(!w.gone("office", Departure::Dropped).election_triggered);
    w.advance(4_900);
    assert!(w.notices.iter().all(|n| n["type"] != "master_election"), "still within the grace");
    w.advance(200);
    w.ack("till-1", true);
    assert_eq!(w.last_elected()["election_reason"], "failure");
}

#[test]
fn a_master_back_within_its_grace_stays_master() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 20);
    w.gone("office", Departure::Dropped);
    w.advance(1_000);
    let back = w.online("office", 100);
    assert_eq!((back.role, back.term), (Role::Master, 1));
    w.advance(10_000);
    assert!(w.notices.iter().all(|n| n["type"] != "master_election"));
    assert_eq!(w.elector.master(), Some("office"));
}

#[test]
fn an_earlier_grace_timer_does_not_cut_a_later_grace_short() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 20);
    w.gone("office", Departure::Dropped);
    w.advance(4_000);
    w.online("office", 100);
    w.gone("office", Departure::Dropped);
    // The first grace's timer falls due now; the second grace has 4 s to go.
    w.advance(2_000);
    assert!(w.notices.iter().all(|n| n["type"] != "master_election"), "the newer grace holds");
    w.advance(3_100);
    assert!(w.notices.iter().any(|n| n["type"] == "master_election"));
}

#[test]
fn a_silent_master_is_closed_and_replaced_for_timeout() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 20);
    for _ in 0..44 {
        w.advance(250);
        w.tick();
        let till = w.sessions["till-1"];
        w.input(Input::Seen { device_id: "till-1".into(), session: till, at: w.now().instant });
    }
    assert_eq!(w.closed, vec![(w.sessions["office"], close::HEARTBEAT_TIMEOUT)]);
    w.ack("till-1", true);
    assert_eq!(w.last_elected()["election_reason"], "timeout");
}

#[test]
fn a_candidate_that_does_not_confirm_is_skipped_after_the_ack_timeout_and_the_backoff() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 50);
    w.online("till-2", 40);
    w.gone("office", Departure::Shutdown);
    assert!(w.asked("till-1").is_some());
    w.advance(1_000);
    assert!(w.asked("till-2").is_none(), "not before the backoff");
    w.advance(100);
    assert!(w.asked("till-2").is_some(), "the next candidate after the first backoff");
    w.ack("till-2", true);
    assert_eq!(w.last_elected()["new_master_id"], "till-2");
}

#[test]
fn a_declined_role_change_skips_the_candidate_at_once() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 50);
    w.online("till-2", 40);
    w.gone("office", Departure::Shutdown);
    w.ack("till-1", false);
    w.advance(100);
    w.ack("till-2", true);
    assert_eq!(w.last_elected()["new_master_id"], "till-2");
}

#[test]
fn after_max_retries_the_election_fails_and_the_next_arrival_becomes_master() {
    let mut w = World::new();
    w.online("office", 100);
    for id in ["a", "b", "c", "d"] {
        w.online(id, 10);
    }
    w.gone("office", Departure::Shutdown);
    w.advance(10_000);
    let failed = w.notices.iter().find(|n| n["type"] == "error").expect("an error broadcast");
    assert_eq!(failed["code"], "ELECTION_FAILED");
    let asked = w.notices.iter().filter(|n| n["type"] == "role_change").count();
    assert_eq!(asked, 3, "three attempts, then it gives up");
    assert!(w.elector.view().election_failed);
    assert_eq!(w.elector.master(), None);
    let online = w.online("late", 0);
    // In a term above the three its attempts asked in (2, 3 and 4).
    assert_eq!((online.role, online.term), (Role::Master, 5), "rule 2 after a failed election");
    assert!(!w.elector.view().election_failed);
    assert_eq!(
        w.concluded,
        [("no_master", true), ("shutdown", false), ("no_master", true)],
        "each election's end is told once, with its reason and outcome"
    );
}

#[test]
fn an_election_whose_result_cannot_be_recorded_fails() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 50);
    w.gone("office", Departure::Shutdown);
    w.failing = true;
    w.ack("till-1", true);
    assert_eq!(w.elections().len(), 1, "no master_elected that is not on disk");
    assert!(w.elector.view().election_failed);
}

#[test]
fn triggers_during_an_election_join_it() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 50);
    let first = w.request(Requester::Admin, None, false, false);
    let second = w.request(Requester::Admin, None, false, false);
    assert_eq!(w.notices.iter().filter(|n| n["type"] == "master_election").count(), 1);
    w.ack("office", true);
    let (a, b) = (w.elected_answer(first), w.elected_answer(second));
    let id =
        |r: Option<Result<Elected, WireError>>| r.and_then(Result::ok).map(|e| e.announcement.election_id);
    assert_eq!(id(a), id(b));
    assert_eq!(w.last_elected()["term"], 2, "the term grows even when the master is chosen again");
}

#[test]
fn manual_elections_need_the_master_or_a_high_priority() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 20);
    w.online("manager", 80);
    let till = Requester::Device { device_id: "till-1".into(), session: w.sessions["till-1"] };
    let refused = w.request(till, None, false, false);
    let code = w.elected_answer(refused).and_then(Result::err).map(|e| e.code);
    assert_eq!(code, Some(ErrorCode::InsufficientPermissions));
    let manager = Requester::Device { device_id: "manager".into(), session: w.sessions["manager"] };
    let allowed = w.request(manager, Some("till-1"), false, false);
    w.ack("till-1", true);
    let elected = w.elected_answer(allowed).and_then(Result::ok).expect("elected");
    assert_eq!(elected.announcement.new_master_id, "till-1", "the preferred master is chosen");
    assert_eq!(elected.announcement.election_method, "manual");
}

#[test]
fn a_preferred_master_that_must_be_active_is_refused_when_it_is_not() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 20);
    w.gone("till-1", Departure::Offline);
    let r = w.request(Requester::Admin, Some("till-1"), true, false);
    assert_eq!(w.elected_answer(r).and_then(Result::err).map(|e| e.code), Some(ErrorCode::DeviceNotActive));
    let r = w.request(Requester::Admin, Some("ghost"), true, false);
    assert_eq!(w.elected_answer(r).and_then(Result::err).map(|e| e.code), Some(ErrorCode::DeviceNotFound));
}

#[test]
fn a_demoted_master_is_no_candidate_and_stays_master_until_its_successor_confirms() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 20);
    let r = w.request(Requester::Admin, None, false, true);
    assert_eq!(w.elector.master(), Some("office"), "still master while the successor is asked");
    w.ack("till-1", true);
    assert_eq!(
        w.elected_answer(r).and_then(Result::ok).map(|e| e.announcement.new_master_id).as_deref(),
        Some("till-1")
    );
    let demoted =
        w.direct.iter().find(|(_, f)| f["type"] == "role_change").expect("a role_change for office");
    assert_eq!((demoted.0, demoted.1["new_role"].as_str()), (w.sessions["office"], Some("client")));
}

#[test]
fn a_demotion_with_no_one_to_take_over_changes_nothing() {
    let mut w = World::new();
    w.online("office", 100);
    let r = w.request(Requester::Admin, None, false, true);
    assert_eq!(w.elected_answer(r).and_then(Result::err).map(|e| e.code), Some(ErrorCode::NoCandidates));
    assert_eq!(w.elector.master(), Some("office"));
}

#[test]
fn an_election_with_no_active_device_elects_no_one() {
    let mut w = World::new();
    w.online("office", 100);
    w.gone("office", Departure::Shutdown);
    assert_eq!(w.elector.master(), None);
    assert!(w.notices.iter().all(|n| n["type"] != "master_election"), "nothing broadcast");
    let r = w.request(Requester::Admin, None, false, false);
    assert_eq!(w.elected_answer(r).and_then(Result::err).map(|e| e.code), Some(ErrorCode::NoCandidates));
}

#[test]
fn an_ack_from_another_session_or_for_another_election_is_ignored() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 50);
    w.gone("office", Departure::Shutdown);
    let election_id = w.asked("till-1");
    w.input(Input::RoleChangeAck {
        device_id: "till-1".into(),
        session: Uuid::new_v4(),
        accepted: true,
        election_id: election_id.clone(),
    });
    let session = w.sessions["till-1"];
    w.input(Input::RoleChangeAck {
        device_id: "till-1".into(),
        session,
        accepted: true,
        election_id: Some("other".into()),
    });
    assert_eq!(w.elections().len(), 1, "neither counts");
}

#[test]
fn a_candidate_passed_over_cannot_win_by_confirming_late() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 50);
    w.online("till-2", 40);
    w.gone("office", Departure::Shutdown);
    w.advance(1_000);
    // till-1 timed out; before till-2 is asked, and after, till-1's late ack counts for nothing.
    w.ack("till-1", true);
    w.advance(100);
    w.ack("till-1", true);
    assert_eq!(w.elections().len(), 1);
    w.ack("till-2", true);
    assert_eq!(w.last_elected()["new_master_id"], "till-2");
}

#[test]
fn random_runs_keep_one_master_per_term_growing_terms_and_acks_before_announcements() {
    const DEVICES: [&str; 5] = ["a", "b", "c", "d", "e"];
    for seed in 1..=200u64 {
        let mut rng = Rng::new(seed);
        let mut w = World::with(|s| s.preempt = seed % 3 == 0);
        let mut online: HashMap<&str, bool> = HashMap::new();
        let mut checked = 0;
        for _ in 0..150 {
            let device = DEVICES[rng.below(DEVICES.len() as u64) as usize];
            match rng.below(12) {
                0..=2 => {
                    if !online.get(device).copied().unwrap_or(false)
                        && w.try_online(device, rng.below(101) as i32).is_ok()
                    {
                        online.insert(device, true);
                    }
                }
                3 => {
                    if online.get(device).copied().unwrap_or(false) {
                        let how = [Departure::Offline, Departure::Shutdown, Departure::Dropped]
                            [rng.below(3) as usize];
                        w.gone(device, how);
                        online.insert(device, how != Departure::Dropped);
                    }
                }
                4..=6 => {
                    if w.asked(device).is_some() && online.get(device).copied().unwrap_or(false) {
                        w.ack(device, rng.below(4) != 0);
                    }
                }
                7 => {
                    let exclude = rng.below(2) == 0;
                    w.request(Requester::Admin, None, false, exclude);
                }
                8 => w.failing = rng.below(4) == 0,
                _ => {
                    w.advance(rng.below(3_000));
                    w.tick();
                }
            }
            // Invariants over every announcement so far.
            let elections = w.elections();
            let terms: Vec<u64> = elections.iter().filter_map(|e| e["term"].as_u64()).collect();
            assert!(
                terms.windows(2).all(|t| t[1] > t[0]),
                "seed {seed}: terms grow, one master each: {terms:?}"
            );
            for e in &elections[checked..] {
                if e["election_reason"] != "no_master" {
                    let key = (
                        e["election_id"].as_str().unwrap_or_default().to_owned(),
                        e["new_master_id"].as_str().unwrap_or_default().to_owned(),
                    );
                    assert!(w.acked.contains(&key), "seed {seed}: {e} announced without its candidate's ack");
                }
            }
            checked = elections.len();
            if let Some(last) = elections.last() {
                let master = w.elector.master();
                assert!(
                    master.is_none() || master == last["new_master_id"].as_str(),
                    "seed {seed}: the master is the last one announced"
                );
                assert_eq!(
                    w.elector.view().term,
                    last["term"].as_u64().unwrap_or_default(),
                    "seed {seed}: the term is the last announced"
                );
            }
        }
    }
}

// ---- taking over from another node (several nodes over one database) -----------------------

fn record(device_id: &str, priority: i32, role: Role) -> DeviceRecord {
    DeviceRecord {
        device_id: device_id.to_owned(),
        name: None,
        device_type: None,
        priority,
        capabilities: Vec::new(),
        role,
        is_active: true,
        last_seen: None,
    }
}

/// A world whose elector takes over at term 4 with `office` recorded as master.
fn taken_over() -> World {
    let mut w = World::new();
    let (election, heartbeat) = settings();
    let devices = vec![record("office", 100, Role::Master), record("till-1", 20, Role::Client)];
    let new_id = Box::new(|| "e-taken".to_owned());
    w.elector =
        Elector::take_over(election, heartbeat, Terms { current: 4, spent: 4 }, devices, w.start, new_id);
    w
}

fn present(w: &mut World, device_id: &str, session: Uuid) {
    let info = inbound::DeviceOnline { device_id: device_id.to_owned(), ..Default::default() };
    w.input(Input::Present { session, info });
    w.sessions.insert(device_id.to_owned(), session);
}

#[test]
fn a_new_leader_keeps_the_recorded_master_when_its_node_answers_the_roll_call() {
    let mut w = taken_over();
    assert_eq!(w.elector.master(), Some("office"));
    present(&mut w, "office", Uuid::new_v4());
    present(&mut w, "till-1", Uuid::new_v4());
    w.input(Input::Settle);
    w.advance(10_000);
    assert!(w.notices.is_empty(), "nothing to announce: {:?}", w.notices);
    assert!(w.writes.is_empty(), "a roll call writes nothing");
    let view = w.elector.view();
    assert_eq!((view.master.as_deref(), view.term), (Some("office"), 4));
    assert!(view.devices.iter().all(|d| d.is_active && d.connected));
}

#[test]
fn a_master_no_node_answers_for_is_replaced_after_its_grace_with_the_next_term() {
    let mut w = taken_over();
    present(&mut w, "till-1", Uuid::new_v4());
    w.input(Input::Settle);
    w.advance(4_900);
    assert!(w.notices.iter().all(|n| n["type"] != "master_election"), "still within the grace");
    w.advance(200);
    w.ack("till-1", true);
    let elected = w.last_elected();
    assert_eq!((elected["new_master_id"].as_str(), elected["term"].as_u64()), (Some("till-1"), Some(5)));
    assert_eq!(elected["election_reason"], "failure");
}

#[test]
fn a_roll_call_answer_for_an_older_session_leaves_the_newer_one_in_place() {
    let mut w = taken_over();
    present(&mut w, "office", Uuid::new_v4());
    // till-1 came online again on another node; its old node answers late for the old session.
    let newer = Uuid::new_v4();
    present(&mut w, "till-1", newer);
    let info = inbound::DeviceOnline { device_id: "till-1".into(), ..Default::default() };
    w.input(Input::Present { session: Uuid::new_v4(), info });
    // The newer session is still the device's: its departure counts.
    let reply = w.reply();
    w.input(Input::Gone {
        device_id: "till-1".into(),
        session: newer,
        how: Departure::Offline,
        note: None,
        reply: Some(reply),
    });
    let inactive = w.elector.view().devices.iter().any(|d| d.device_id == "till-1" && !d.is_active);
    assert!(inactive, "the newer session's departure was taken");
}

#[test]
fn no_two_devices_are_ever_asked_to_be_master_in_one_term() {
    let mut w = World::new();
    w.online("office", 100);
    w.online("till-1", 50);
    w.online("till-2", 40);
    w.gone("office", Departure::Shutdown);
    // As in `a_declined_role_change_skips_the_candidate_at_once`: till-1 declines, till-2 wins.
    w.ack("till-1", false);
    w.advance(100);
    w.ack("till-2", true);
    let asked: Vec<(String, u64)> = w
        .notices
        .iter()
        .filter(|n| n["type"] == "role_change" && n["new_role"] == "master")
        .map(|n| (n["device_id"].as_str().unwrap_or_default().to_owned(), n["term"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(
        asked,
        [("till-1".to_owned(), 2), ("till-2".to_owned(), 3)],
        "each attempt in a term of its own"
    );
    assert_eq!(w.last_elected()["term"], 3);
    // Every term was recorded as spent before its candidate was asked.
    let spent: Vec<u64> = w
        .writes
        .iter()
        .filter_map(|write| if let FleetWrite::TermSpent(t) = write { Some(*t) } else { None })
        .collect();
    assert_eq!(spent, [1, 2, 3]);
}

#[test]
fn a_term_asked_in_before_a_takeover_is_not_asked_in_again() {
    let mut w = World::new();
    let (election, heartbeat) = settings();
    let devices = vec![record("office", 100, Role::Master), record("till-1", 20, Role::Client)];
    // The previous leader recorded term 5 as spent (its candidate was asked) and then went.
    w.elector = Elector::take_over(
        election,
        heartbeat,
        Terms { current: 4, spent: 5 },
        devices,
        w.start,
        Box::new(|| "e-taken".to_owned()),
    );
    let till = Uuid::new_v4();
    present(&mut w, "till-1", till);
    w.input(Input::Settle);
    w.advance(10_000);
    let asked: Vec<u64> = w
        .notices
        .iter()
        .filter(|n| n["type"] == "role_change" && n["new_role"] == "master")
        .filter_map(|n| n["term"].as_u64())
        .collect();
    assert_eq!(asked.first(), Some(&6), "asked above the spent term: {asked:?}");
}

#[test]
fn a_new_leader_announces_the_master_again_after_its_roll_call() {
    let mut w = taken_over();
    let last = MasterElected {
        new_master_id: "office".into(),
        new_master_name: None,
        previous_master: Some("till-1".into()),
        previous_master_id: Some("till-1".into()),
        election_id: "e-before".into(),
        election_reason: "manual",
        election_timestamp: "2026-12-07T00:00:00.000Z".into(),
        election_method: "manual",
        devices_participating: 2,
        term: 4,
    };
    w.elector = std::mem::replace(&mut w.elector, World::new().elector).announcing_again(Some(last));
    present(&mut w, "office", Uuid::new_v4());
    assert!(w.notices.iter().all(|n| n["type"] != "master_elected"), "not before the roll call is over");
    w.input(Input::Settle);
    let announced: Vec<&Value> = w.notices.iter().filter(|n| n["type"] == "master_elected").collect();
    assert_eq!(announced.len(), 1, "{:?}", w.notices);
    assert_eq!(
        (announced[0]["new_master_id"].as_str(), announced[0]["term"].as_u64()),
        (Some("office"), Some(4))
    );
    assert!(w.writes.iter().all(|write| !matches!(write, FleetWrite::Term(_))), "nothing is elected anew");
}
