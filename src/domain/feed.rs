//! A session's feed of logged changes, as a state machine with no I/O and no clock: the
//! exactly-once, in-order guarantee of section 5, apart from the plumbing that reads the log and
//! writes frames. The Session actor feeds it what happens (`Input`) and carries out what it asks
//! for (`Effect`).
//!
//! A session takes changes from Broadcast only once it is *attached*, at a position in the log
//! (`seq`). It then reads the log from there, a chunk at a time, while live changes wait in a
//! small buffer; when a read reaches the buffer, the feed goes live. A buffer that overflows is
//! dropped (the log has every change). A resume (`last_seq`) older than the attachment sends
//! what came before it, skipping what was already sent. Changes that retention pruned while the
//! feed still had to send them are reported (`Effect::Trimmed`), never silently skipped.

use std::collections::VecDeque;

/// A logged change as the feed reads it: its `seq`, and the frame for this session (`None` when
/// there is nothing to send it, e.g. its own change made without an `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<F> {
    pub seq: u64,
    pub frame: Option<F>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<F> {
    /// Attach at `after` (where the log stood when the socket opened), unless attached already.
    Attach { after: u64 },
    /// The client resumes from `after` (`last_seq`).
    Resume { after: u64 },
    /// The log read asked for (`Effect::Read` with this `after`) returned `rows`, oldest first;
    /// `floor` is the newest pruned `seq` and `head` the newest published one, both read after it.
    Chunk { after: u64, rows: Vec<Row<F>>, floor: u64, head: u64 },
    /// A change from Broadcast, in `seq` order. `frame` is `None` when there is nothing to send
    /// this session (its own change made without an `id`): its place in the log moves on.
    Live { seq: u64, frame: Option<F> },
    /// Broadcast has subscribed the session: every change after `head` comes as `Live`; those
    /// up to it are in the log.
    Subscribed { head: u64 },
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<F> {
    /// Send this frame: `live` traffic counts against the slow-consumer bound; catch-up frames
    /// are paced by the reads already.
    Send { frame: F, live: bool },
    /// Read up to `limit` logged changes after `after` (once the client has read enough of what
    /// it was sent), and report them as `Input::Chunk` with the same `after`.
    Read { after: u64, limit: usize },
    /// The catch-up has joined the live stream: replies that waited for it may go now.
    Live,
    /// Changes this session still had to send were pruned: tell the client (`resync_required`,
    /// `history_trimmed`); the feed goes on from `head`.
    Trimmed { head: u64 },
}

enum State<F> {
    /// Not attached: live changes are ignored (the log has them).
    Unattached,
    /// Reading the log up to the live stream.
    CatchingUp(CatchUp<F>),
    /// Every change after `last` is sent as it comes.
    Live { last: u64 },
}

struct CatchUp<F> {
    /// The last `seq` handled (sent, or known not to be for this session).
    next: u64,
    /// Ranges `(a, b]` already sent before a late resume: skipped.
    sent: Vec<(u64, u64)>,
    /// Live changes that arrived during the catch-up, oldest first.
    buffer: VecDeque<(u64, Option<F>)>,
    /// The `after` of the read under way, if one is.
    reading: Option<u64>,
}

impl<F> CatchUp<F> {
    fn from(next: u64) -> Self {
        Self { next, sent: Vec::new(), buffer: VecDeque::new(), reading: None }
    }
}

/// A session's feed.
pub struct Feed<F> {
    state: State<F>,
    /// Where the current attachment started: changes after it were handled by this feed.
    attached_from: u64,
    /// Rows per read, and the live buffer's bound while catching up.
    chunk: usize,
    /// The newest change published when Broadcast subscribed the session: the feed goes live
    /// only past it (what came before is read from the log).
    subscribed: Option<u64>,
}

impl<F> Feed<F> {
    /// A feed that reads `chunk` rows at a time (at least 1).
    pub fn new(chunk: usize) -> Self {
        Self { state: State::Unattached, attached_from: 0, chunk: chunk.max(1), subscribed: None }
    }

    /// The last `seq` handled, once attached.
    pub fn position(&self) -> Option<u64> {
        match &self.state {
            State::Unattached => None,
            State::CatchingUp(c) => Some(c.next),
            State::Live { last } => Some(*last),
        }
    }

    pub fn is_attached(&self) -> bool {
        !matches!(self.state, State::Unattached)
    }

    pub fn is_live(&self) -> bool {
        matches!(self.state, State::Live { .. })
    }

    /// Takes one input; returns what to do, in order.
    pub fn on(&mut self, input: Input<F>) -> Vec<Effect<F>> {
        let mut effects = Vec::new();
        match input {
            Input::Attach { after } => {
                if !self.is_attached() {
                    self.attach(after, &mut effects);
                }
            }
            Input::Resume { after } => self.resume(after, &mut effects),
            Input::Chunk { after, rows, floor, head } => self.chunk(after, rows, floor, head, &mut effects),
            Input::Live { seq, frame } => self.live(seq, frame, &mut effects),
            Input::Subscribed { head } => {
                self.subscribed = Some(head);
                self.join_live(&mut effects);
            }
        }
        effects
    }

    fn attach(&mut self, after: u64, effects: &mut Vec<Effect<F>>) {
        self.attached_from = after;
        self.state = State::CatchingUp(CatchUp::from(after));
        self.read_on(effects);
    }

    fn resume(&mut self, after: u64, effects: &mut Vec<Effect<F>>) {
        let Some(position) = self.position() else {
            return self.attach(after, effects);
        };
        if after >= self.attached_from {
            // Everything after it is, or will be, sent by this attachment.
            return;
        }
        let (mut sent, buffer, reading) = match std::mem::replace(&mut self.state, State::Unattached) {
            State::CatchingUp(c) => (c.sent, c.buffer, c.reading),
            _ => (Vec::new(), VecDeque::new(), None),
        };
        sent.push((self.attached_from, position));
        self.attached_from = after;
        self.state = State::CatchingUp(CatchUp { next: after, sent, buffer, reading });
        self.read_on(effects);
    }

    /// Asks for the next read, unless one is under way.
    fn read_on(&mut self, effects: &mut Vec<Effect<F>>) {
        if let State::CatchingUp(c) = &mut self.state
            && c.reading.is_none()
        {
            c.reading = Some(c.next);
            effects.push(Effect::Read { after: c.next, limit: self.chunk });
        }
    }

    fn chunk(&mut self, after: u64, rows: Vec<Row<F>>, floor: u64, head: u64, effects: &mut Vec<Effect<F>>) {
        let State::CatchingUp(c) = &mut self.state else { return };
        if c.reading != Some(after) {
            // Not the read under way: a stale answer.
            return;
        }
        c.reading = None;
        if after != c.next {
            // A resume moved the position while it was read: read again from there.
            return self.read_on(effects);
        }
        let complete = rows.len() < self.chunk;
        // `seq` has no gaps: a read that does not start right after the position, or that
        // finds nothing while the position is below the floor, lost changes to retention.
        let trimmed = match rows.first() {
            Some(row) => row.seq > c.next + 1,
            None => c.next < floor,
        };
        if trimmed {
            effects.push(Effect::Trimmed { head });
            c.next = c.next.max(head);
            c.sent.clear();
            return self.read_on(effects);
        }
        for row in rows {
            if row.seq <= c.next {
                continue;
            }
            c.next = row.seq;
            if c.sent.iter().any(|&(a, b)| row.seq > a && row.seq <= b) {
                continue;
            }
            if let Some(frame) = row.frame {
                effects.push(Effect::Send { frame, live: false });
            }
        }
        if complete {
            self.join_live(effects);
        } else {
            self.read_on(effects);
        }
    }

    /// After a read that reached the log's end (or once subscribed): sends the buffered live
    /// changes that follow on, and goes live when nothing is missing between the position and
    /// the live stream; otherwise reads on.
    fn join_live(&mut self, effects: &mut Vec<Effect<F>>) {
        let State::CatchingUp(c) = &mut self.state else { return };
        if c.reading.is_some() {
            return;
        }
        while c.buffer.front().is_some_and(|(seq, _)| *seq <= c.next) {
            c.buffer.pop_front();
        }
        while let Some((seq, frame)) = c.buffer.pop_front_if(|(seq, _)| *seq == c.next + 1) {
            c.next = seq;
            if let Some(frame) = frame {
                effects.push(Effect::Send { frame, live: false });
            }
        }
        let Some(subscribed) = self.subscribed else {
            // Live changes do not come yet: what is published meanwhile is read when they do.
            return;
        };
        if c.buffer.is_empty() && c.next >= subscribed {
            let last = c.next;
            self.state = State::Live { last };
            effects.push(Effect::Live);
        } else {
            // Changes between the position and the live stream are in the log.
            self.read_on(effects);
        }
    }

    fn live(&mut self, seq: u64, frame: Option<F>, effects: &mut Vec<Effect<F>>) {
        match &mut self.state {
            State::Unattached => {}
            State::CatchingUp(c) => {
                if c.buffer.len() >= self.chunk {
                    // The log has every one of them: read on instead of holding them.
                    c.buffer.clear();
                }
                c.buffer.push_back((seq, frame));
            }
            State::Live { last } if seq <= *last => {}
            State::Live { last } if seq == *last + 1 => {
                *last = seq;
                if let Some(frame) = frame {
                    effects.push(Effect::Send { frame, live: true });
                }
            }
            State::Live { last } => {
                // A change is missing before this one (never handed over, or another node's
                // log moved on past it): catch up from the last one sent, from the log, which
                // has it or tells that it was pruned.
                let mut catch_up = CatchUp::from(*last);
                catch_up.buffer.push_back((seq, frame));
                self.state = State::CatchingUp(catch_up);
                self.read_on(effects);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::seeded::Rng;

    /// A log of changes `1..=head` whose frames are their seqs, and a feed reading it. Broadcast
    /// hands it every change committed once it is subscribed.
    struct World {
        feed: Feed<u64>,
        head: u64,
        floor: u64,
        sent: Vec<u64>,
        /// The read asked for and not yet answered.
        read: Option<(u64, usize)>,
        went_live: usize,
        trimmed: usize,
        subscribed: bool,
    }

    impl World {
        /// A world whose feed is subscribed from the start.
        fn new(chunk: usize, head: u64) -> Self {
            let mut world = Self::unsubscribed(chunk, head);
            world.subscribe();
            world
        }

        fn unsubscribed(chunk: usize, head: u64) -> Self {
            Self {
                feed: Feed::new(chunk),
                head,
                floor: 0,
                sent: Vec::new(),
                read: None,
                went_live: 0,
                trimmed: 0,
                subscribed: false,
            }
        }

        fn subscribe(&mut self) {
            self.subscribed = true;
            self.input(Input::Subscribed { head: self.head });
        }

        fn apply(&mut self, effects: Vec<Effect<u64>>) {
            for effect in effects {
                match effect {
                    Effect::Send { frame, .. } => self.sent.push(frame),
                    Effect::Read { after, limit } => {
                        assert!(self.read.is_none(), "one read at a time");
                        self.read = Some((after, limit));
                    }
                    Effect::Live => self.went_live += 1,
                    Effect::Trimmed { .. } => self.trimmed += 1,
                }
            }
        }

        fn input(&mut self, input: Input<u64>) {
            let effects = self.feed.on(input);
            self.apply(effects);
        }

        /// Answers the read under way from the log as it is now.
        fn answer(&mut self) -> bool {
            let Some((after, limit)) = self.read.take() else { return false };
            let first = after.max(self.floor) + 1;
            let rows = (first..=self.head).take(limit).map(|seq| Row { seq, frame: Some(seq) }).collect();
            self.input(Input::Chunk { after, rows, floor: self.floor, head: self.head });
            true
        }

        /// A change commits; Broadcast hands it over if the feed is subscribed.
        fn commit(&mut self) {
            self.head += 1;
            let seq = self.head;
            if self.subscribed {
                self.input(Input::Live { seq, frame: Some(seq) });
            }
        }

        fn settle(&mut self) {
            while self.answer() {}
        }
    }

    #[test]
    fn an_attached_feed_reads_the_log_then_goes_live() {
        let mut w = World::new(4, 10);
        w.input(Input::Attach { after: 3 });
        w.settle();
        assert_eq!(w.sent, (4..=10).collect::<Vec<_>>());
        assert!(w.feed.is_live());
        assert_eq!(w.went_live, 1);
        w.commit();
        assert_eq!(w.sent.last(), Some(&11));
        assert_eq!(w.feed.position(), Some(11));
    }

    #[test]
    fn an_unattached_feed_ignores_live_changes_and_attaches_once() {
        let mut w = World::new(4, 2);
        w.commit();
        assert!(w.sent.is_empty() && w.read.is_none());
        w.input(Input::Attach { after: 3 });
        w.input(Input::Attach { after: 0 });
        w.settle();
        assert!(w.sent.is_empty(), "attached at 3, nothing after it yet");
        assert_eq!(w.feed.position(), Some(3));
    }

    #[test]
    fn changes_committed_during_the_catch_up_come_once_in_order() {
        let mut w = World::new(3, 5);
        w.input(Input::Attach { after: 0 });
        w.commit();
        w.answer();
        w.commit();
        w.commit();
        w.settle();
        w.commit();
        assert_eq!(w.sent, (1..=9).collect::<Vec<_>>());
    }

    #[test]
    fn an_overflowing_buffer_is_dropped_and_the_log_read_on() {
        let mut w = World::new(2, 0);
        w.input(Input::Attach { after: 0 });
        for _ in 0..7 {
            w.commit();
        }
        w.settle();
        assert_eq!(w.sent, (1..=7).collect::<Vec<_>>());
        assert!(w.feed.is_live());
    }

    #[test]
    fn a_late_resume_sends_what_came_before_and_skips_what_was_sent() {
        let mut w = World::new(4, 10);
        w.input(Input::Attach { after: 8 });
        w.settle();
        assert_eq!(w.sent, vec![9, 10]);
        w.input(Input::Resume { after: 5 });
        w.settle();
        assert_eq!(w.sent, vec![9, 10, 6, 7, 8], "6..=8 once, 9 and 10 not again");
        w.commit();
        assert_eq!(w.sent.last(), Some(&11));
    }

    #[test]
    fn a_resume_at_or_after_the_attachment_changes_nothing() {
        let mut w = World::new(4, 10);
        w.input(Input::Attach { after: 8 });
        w.settle();
        w.input(Input::Resume { after: 9 });
        assert!(w.read.is_none());
        assert_eq!(w.sent, vec![9, 10]);
    }

    #[test]
    fn a_resume_while_a_read_is_under_way_reads_again_from_the_new_position() {
        let mut w = World::new(4, 10);
        w.input(Input::Attach { after: 6 });
        // The read after 6 is under way when the client resumes from 2.
        w.input(Input::Resume { after: 2 });
        w.settle();
        let mut sent = w.sent.clone();
        sent.sort_unstable();
        assert_eq!(sent, (3..=10).collect::<Vec<_>>(), "every change once: {:?}", w.sent);
    }

    #[test]
    fn a_stale_chunk_is_ignored() {
        let mut feed: Feed<u64> = Feed::new(4);
        let effects = feed.on(Input::Attach { after: 0 });
        assert_eq!(effects, vec![Effect::Read { after: 0, limit: 4 }]);
        let stale =
            feed.on(Input::Chunk { after: 7, rows: vec![Row { seq: 8, frame: Some(8) }], floor: 0, head: 8 });
        assert!(stale.is_empty());
        assert_eq!(feed.position(), Some(0));
    }

    #[test]
    fn changes_pruned_under_the_catch_up_are_reported_not_skipped() {
        let mut w = World::new(4, 20);
        w.input(Input::Attach { after: 0 });
        w.answer();
        assert_eq!(w.sent, vec![1, 2, 3, 4]);
        // Retention prunes 1..=12 before the next read.
        w.floor = 12;
        w.settle();
        assert_eq!(w.trimmed, 1);
        assert_eq!(w.sent, vec![1, 2, 3, 4], "nothing after a gap is sent as if it followed");
        assert_eq!(w.feed.position(), Some(20), "it goes on from the head");
        w.commit();
        assert_eq!(w.sent.last(), Some(&21));
        assert!(w.feed.is_live());
    }

    #[test]
    fn own_changes_without_a_reply_are_passed_over() {
        let mut feed: Feed<u64> = Feed::new(4);
        feed.on(Input::Attach { after: 0 });
        let rows =
            vec![Row { seq: 1, frame: Some(1) }, Row { seq: 2, frame: None }, Row { seq: 3, frame: Some(3) }];
        let effects = feed.on(Input::Chunk { after: 0, rows, floor: 0, head: 3 });
        let sent: Vec<u64> = effects
            .iter()
            .filter_map(|e| if let Effect::Send { frame, .. } = e { Some(*frame) } else { None })
            .collect();
        assert_eq!(sent, vec![1, 3]);
        assert_eq!(feed.position(), Some(3));
    }

    #[test]
    fn a_change_published_before_the_subscription_is_read_from_the_log() {
        let mut w = World::unsubscribed(4, 0);
        w.input(Input::Attach { after: 0 });
        w.settle();
        assert!(!w.feed.is_live(), "not live before it is subscribed");
        // Committed and published after the read, before Broadcast subscribed the session.
        w.commit();
        w.subscribe();
        w.settle();
        assert_eq!(w.sent, vec![1]);
        assert!(w.feed.is_live());
        w.commit();
        assert_eq!(w.sent, vec![1, 2]);
    }

    #[test]
    fn a_live_change_after_a_gap_catches_up_from_the_log_first() {
        let mut w = World::new(4, 0);
        w.input(Input::Attach { after: 0 });
        w.settle();
        w.commit();
        // Changes 2 and 3 never reach the session; 4 does.
        w.head += 2;
        w.commit();
        assert_eq!(w.sent, vec![1], "4 is not sent as if it followed 1");
        w.settle();
        assert_eq!(w.sent, vec![1, 2, 3, 4]);
        assert!(w.feed.is_live());
    }

    #[test]
    fn a_gap_that_retention_pruned_is_reported() {
        let mut w = World::new(4, 0);
        w.input(Input::Attach { after: 0 });
        w.settle();
        w.commit();
        w.head += 5;
        w.floor = 5;
        w.commit();
        w.settle();
        assert_eq!(w.trimmed, 1, "the live session is told, not silently moved on");
        assert_eq!(w.sent, vec![1]);
        w.commit();
        assert_eq!(w.sent.last(), Some(&8));
    }

    #[test]
    fn own_changes_without_a_reply_move_the_live_position() {
        let mut w = World::new(4, 0);
        w.input(Input::Attach { after: 0 });
        w.settle();
        w.head = 1;
        w.input(Input::Live { seq: 1, frame: None });
        w.commit();
        assert!(w.read.is_none(), "no gap: nothing to read");
        assert_eq!(w.sent, vec![2]);
    }

    #[test]
    fn random_interleavings_send_every_change_once_and_in_order_within_each_resume() {
        for seed in 1..=300u64 {
            let mut rng = Rng::new(seed);
            let chunk = 1 + rng.below(6) as usize;
            let mut w = World::unsubscribed(chunk, rng.below(30));
            let start = rng.below(w.head + 1);
            w.input(Input::Attach { after: start });
            let mut lowest = start;
            // Runs of increasing seqs: a late resume starts a new one.
            let mut marks = vec![0];
            for step in 0..200 {
                // Subscribed at some point: changes committed before are only in the log.
                if !w.subscribed && (rng.below(20) == 0 || step == 100) {
                    w.subscribe();
                }
                match rng.below(10) {
                    0..=3 => w.commit(),
                    4..=7 => {
                        w.answer();
                    }
                    8 => {
                        let after = rng.below(w.head + 1);
                        if after < w.feed.attached_from {
                            marks.push(w.sent.len());
                            lowest = lowest.min(after);
                        }
                        w.input(Input::Resume { after });
                    }
                    _ => {}
                }
            }
            if !w.subscribed {
                w.subscribe();
            }
            w.settle();
            let mut all = w.sent.clone();
            all.sort_unstable();
            let expected: Vec<u64> = ((lowest + 1)..=w.head).collect();
            assert_eq!(all, expected, "seed {seed}: every change after {lowest} once");
            marks.push(w.sent.len());
            for run in marks.windows(2) {
                let part = &w.sent[run[0]..run[1]];
                assert!(part.windows(2).all(|p| p[1] > p[0]), "seed {seed}: in order within a run: {part:?}");
            }
            assert!(w.feed.is_live(), "seed {seed}: live once the reads are answered");
        }
    }
}
