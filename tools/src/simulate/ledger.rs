//! What every simulated client recorded, and the verdict computed from it alone.
//!
//! Each client keeps its window on the log (from the head it first saw to the end), the `seq`
//! of every change the server delivered to it and of every write of its own that was
//! acknowledged, and the masters it was told of by term. The verdict then checks what the
//! server promises: every change inside a client's window reached it exactly once (its own
//! writes by their acknowledgement), no write was applied twice, and no term had two masters.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

/// One client's record.
#[derive(Debug, Default, Clone)]
pub struct ClientLog {
    /// The head when it first connected: its window starts after it.
    pub start: Option<u64>,
    /// Changes delivered to it (broadcasts and catch-up).
    pub seen: BTreeSet<u64>,
    /// Its own writes, acknowledged (over its session or `/sync/push`).
    pub own: BTreeSet<u64>,
    /// Changes delivered twice.
    pub duplicates: u64,
    /// Changes delivered after a later one.
    pub out_of_order: u64,
    /// The highest `seq` it knows of (what it resumes from).
    pub last: u64,
    /// `resync_required` answers (its window was broken by the server).
    pub resyncs: u64,
    pub reconnects: u64,
}

impl ClientLog {
    /// The head at its first `connected`.
    pub fn started_at(&mut self, head: u64) {
        if self.start.is_none() {
            self.start = Some(head);
            self.last = self.last.max(head);
        }
    }

    /// A change delivered to it.
    pub fn delivered(&mut self, seq: u64) {
        if self.seen.contains(&seq) {
            self.duplicates += 1;
            return;
        }
        let latest = self.seen.iter().next_back().copied().unwrap_or(0);
        if seq < latest {
            self.out_of_order += 1;
        }
        self.seen.insert(seq);
        self.last = self.last.max(seq);
    }

    /// One of its writes was acknowledged as change `seq`: in its session's feed (which is in
    /// `seq` order, so it resumes after it), or by `/sync/push` (outside the feed: changes before
    /// it may still be on their way, so it does not move where it resumes from).
    pub fn acknowledged(&mut self, seq: u64, in_feed: bool) {
        self.own.insert(seq);
        if in_feed {
            self.last = self.last.max(seq);
        }
    }

    /// The changes of its window up to `head` that it never got.
    pub fn missing(&self, head: u64) -> Vec<u64> {
        let Some(start) = self.start else { return Vec::new() };
        (start + 1..=head).filter(|seq| !self.seen.contains(seq) && !self.own.contains(seq)).collect()
    }
}

/// The fleet's masters by term, as the clients were told of them.
#[derive(Debug, Default, Clone)]
pub struct Masters {
    by_term: BTreeMap<u64, BTreeSet<String>>,
}

impl Masters {
    pub fn told(&mut self, term: u64, master: &str) {
        self.by_term.entry(term).or_default().insert(master.to_owned());
    }

    /// Terms that had more than one master.
    pub fn shared_terms(&self) -> Vec<u64> {
        self.by_term.iter().filter(|(_, masters)| masters.len() > 1).map(|(term, _)| *term).collect()
    }

    /// Terms with a master.
    pub fn terms(&self) -> usize {
        self.by_term.len()
    }
}

/// Which change each write (by its tag) became: a tag under two `seq`s was applied twice.
#[derive(Debug, Default, Clone)]
pub struct Writes {
    by_tag: HashMap<String, BTreeSet<u64>>,
}

impl Writes {
    pub fn became(&mut self, tag: &str, seq: u64) {
        self.by_tag.entry(tag.to_owned()).or_default().insert(seq);
    }

    pub fn applied_twice(&self) -> usize {
        self.by_tag.values().filter(|seqs| seqs.len() > 1).count()
    }
}

/// The simulator's verdict.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    pub scenario: String,
    pub seed: u64,
    pub seconds: f64,
    /// Changes the log holds at the end.
    pub head_seq: u64,
    /// Writes acknowledged, and writes whose connection dropped before their answer (not
    /// acknowledged: they may or may not have been applied).
    pub writes_acknowledged: u64,
    pub writes_in_doubt: u64,
    /// Changes some client never received inside its window (expected 0).
    pub lost: u64,
    /// Changes delivered twice to a client, plus writes applied twice (expected 0).
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Terms in which two devices were told they were master (expected none).
    pub shared_terms: Vec<u64>,
    pub elections: usize,
    pub seconds_without_master: f64,
    pub largest_lag: u64,
    pub reconnects: u64,
    pub resyncs: u64,
    pub server_restarts: u32,
    /// Write to acknowledgement, and write to delivery at another client, in milliseconds.
    pub p99_ack_ms: f64,
    pub p99_delivery_ms: f64,
    /// The first few lost changes, by client, to start from.
    pub lost_examples: Vec<String>,
    pub passed: bool,
}

/// The part of the verdict the ledgers decide.
pub struct Judged {
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub shared_terms: Vec<u64>,
    pub reconnects: u64,
    pub resyncs: u64,
    pub lost_examples: Vec<String>,
}

/// Judges the clients' records against the head at the end.
pub fn judge(clients: &[(String, ClientLog)], masters: &Masters, writes: &Writes, head: u64) -> Judged {
    let mut judged = Judged {
        lost: 0,
        duplicated: writes.applied_twice() as u64,
        out_of_order: 0,
        shared_terms: masters.shared_terms(),
        reconnects: 0,
        resyncs: 0,
        lost_examples: Vec::new(),
    };
    for (id, log) in clients {
        let missing = log.missing(head);
        judged.lost += missing.len() as u64;
        if !missing.is_empty() && judged.lost_examples.len() < 5 {
            let shown: Vec<String> = missing.iter().take(5).map(u64::to_string).collect();
            judged.lost_examples.push(format!("{id}: {}", shown.join(", ")));
        }
        judged.duplicated += log.duplicates;
        judged.out_of_order += log.out_of_order;
        judged.reconnects += log.reconnects;
        judged.resyncs += log.resyncs;
    }
    judged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(start: u64) -> ClientLog {
        let mut log = ClientLog::default();
        log.started_at(start);
        log
    }

    #[test]
    fn a_client_that_got_its_whole_window_once_loses_nothing() {
        let mut log = client(3);
        for seq in [4, 6, 7] {
            log.delivered(seq);
        }
        log.acknowledged(5, true);
        let judged = judge(&[("a".into(), log)], &Masters::default(), &Writes::default(), 7);
        assert_eq!((judged.lost, judged.duplicated, judged.out_of_order), (0, 0, 0));
    }

    #[test]
    fn a_gap_a_repeat_and_a_step_back_are_each_counted() {
        let mut log = client(0);
        for seq in [1, 2, 2, 5, 4] {
            log.delivered(seq);
        }
        assert_eq!(log.missing(6), vec![3, 6]);
        let judged = judge(&[("a".into(), log)], &Masters::default(), &Writes::default(), 6);
        assert_eq!((judged.lost, judged.duplicated, judged.out_of_order), (2, 1, 1));
        assert_eq!(judged.lost_examples, vec!["a: 3, 6".to_owned()]);
    }

    #[test]
    fn a_pushed_write_does_not_move_where_the_client_resumes() {
        let mut log = client(2);
        log.delivered(3);
        log.acknowledged(9, false);
        assert_eq!(log.last, 3);
        log.acknowledged(4, true);
        assert_eq!(log.last, 4);
    }

    #[test]
    fn changes_before_a_clients_first_connect_are_not_its_to_miss() {
        let log = client(10);
        assert!(log.missing(10).is_empty());
        assert_eq!(ClientLog::default().missing(5), Vec::<u64>::new(), "never connected: no window");
    }

    #[test]
    fn two_masters_in_one_term_and_a_write_applied_twice_are_found() {
        let mut masters = Masters::default();
        masters.told(1, "a");
        masters.told(1, "a");
        masters.told(2, "b");
        assert!(masters.shared_terms().is_empty());
        masters.told(2, "c");
        assert_eq!(masters.shared_terms(), vec![2]);
        let mut writes = Writes::default();
        writes.became("t1", 4);
        writes.became("t1", 4);
        writes.became("t2", 5);
        assert_eq!(writes.applied_twice(), 0);
        writes.became("t2", 9);
        assert_eq!(writes.applied_twice(), 1);
    }
}
