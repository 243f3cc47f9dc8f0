//! The server's Prometheus figures (`GET /metrics`, PROTOCOL.md section 12), one registry per
//! server so that servers in one process (the tests) stay apart.
//!
//! Two kinds of figure:
//! - events, counted where they happen: messages in and out by type (sessions), broadcast and
//!   commit latency and writes per commit (Broadcast, Persistence), slow-consumer closes
//!   (sessions), elections by reason and outcome (Election). On the delivery path this is one
//!   relaxed atomic add: each message type's counter is looked up once, at start, not per
//!   message.
//! - state, read when scraped: sessions by transport, term, master, head and oldest `seq`, each
//!   device's sync lag (`http::metrics` sets them from the actors and the database).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::protocol::inbound;
use crate::protocol::outbound::Kind;

/// Label of a message counter: its wire `type`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: &'static str,
}

/// Labels of the election counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ElectionLabels {
    reason: &'static str,
    /// `elected` or `failed`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeviceLabel {
    device: String,
}

/// What `received` counts a message under when its type is not one the server knows (or it
/// has none, or is not JSON), and `sent` a stored message of a type this build does not know.
const OTHER: &str = "other";

/// The figures, shared by every actor and handler of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// By `inbound::TYPES` index, then one for anything else.
    received: Vec<Counter>,
    /// By `Kind` index, then one for a stored frame of a type this build does not know.
    sent: Vec<Counter>,
    broadcast_seconds: Histogram,
    commit_seconds: Histogram,
    commit_writes: Histogram,
    slow_consumer_closes: Counter,
    elections: Family<ElectionLabels, Counter>,
    sessions: Family<TransportLabel, Gauge>,
    term: Gauge,
    master: Gauge,
    head_seq: Gauge,
    oldest_seq: Gauge,
    sync_lag: Family<DeviceLabel, Gauge>,
}

/// The state figures, as a scrape reads them.
#[derive(Debug, Default)]
pub struct State {
    pub ws_sessions: usize,
    pub socketio_sessions: usize,
    pub term: u64,
    pub has_master: bool,
    pub head_seq: u64,
    pub oldest_seq: u64,
    /// Each device with a sync state, and how many changes it has not confirmed.
    pub sync_lag: Vec<(String, u64)>,
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("device_sync");

        let received_family = Family::<TypeLabel, Counter>::default();
        let received = inbound::TYPES
            .iter()
            .chain(std::iter::once(&OTHER))
            .map(|&name| received_family.get_or_create(&TypeLabel { r#type: name }).clone())
            .collect();
        registry.register("messages_received", "Client messages received, by type", received_family);

        let sent_family = Family::<TypeLabel, Counter>::default();
        let sent = Kind::ALL
            .iter()
            .map(|kind| kind.name())
            .chain(std::iter::once(OTHER))
            .map(|name| sent_family.get_or_create(&TypeLabel { r#type: name }).clone())
            .collect();
        registry.register("messages_sent", "Server messages written to sessions, by type", sent_family);

        // 100 µs … 3.3 s: a hand-off to the sessions is far below a commit.
        let broadcast_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register_with_unit(
            "broadcast",
            "From a change's commit to its hand-off to every session",
            Unit::Seconds,
            broadcast_seconds.clone(),
        );
        // 1 ms … 8 s, as etcd's disk figures.
        let commit_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register_with_unit(
            "commit",
            "Database transactions of the writer, from begin to commit",
            Unit::Seconds,
            commit_seconds.clone(),
        );
        let commit_writes = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "commit_writes",
            "Writes committed together in one transaction",
            commit_writes.clone(),
        );
        let slow_consumer_closes = Counter::default();
        registry.register(
            "slow_consumer_closes",
            "Sessions closed because their client fell too far behind (4008)",
            slow_consumer_closes.clone(),
        );
        let elections = Family::<ElectionLabels, Counter>::default();
        registry.register("elections", "Elections ended, by reason and outcome", elections.clone());

        let sessions = Family::<TransportLabel, Gauge>::default();
        registry.register("sessions", "Open sessions, by transport", sessions.clone());
        let term = Gauge::default();
        registry.register("term", "The election term", term.clone());
        let master = Gauge::default();
        registry.register("master", "1 when the fleet has a master, else 0", master.clone());
        let head_seq = Gauge::default();
        registry.register("head_seq", "The newest change's seq", head_seq.clone());
        let oldest_seq = Gauge::default();
        registry.register(
            "oldest_seq",
            "The oldest change the log keeps (head_seq + 1 when it keeps none)",
            oldest_seq.clone(),
        );
        let sync_lag = Family::<DeviceLabel, Gauge>::default();
        registry.register(
            "sync_lag",
            "Changes a device has not confirmed (head_seq − its confirmed seq)",
            sync_lag.clone(),
        );

        Arc::new(Self {
            registry,
            received,
            sent,
            broadcast_seconds,
            commit_seconds,
            commit_writes,
            slow_consumer_closes,
            elections,
            sessions,
            term,
            master,
            head_seq,
            oldest_seq,
            sync_lag,
        })
    }

    /// A client message of this wire `type` (`None`: none could be read) arrived.
    pub fn received(&self, kind: Option<&str>) {
        let at = kind.and_then(inbound::type_index).unwrap_or(inbound::TYPES.len());
        if let Some(counter) = self.received.get(at) {
            counter.inc();
        }
    }

    /// A server message was written to a session.
    pub fn sent(&self, kind: Option<Kind>) {
        if let Some(counter) = self.sent.get(kind.map_or(Kind::ALL.len(), Kind::index)) {
            counter.inc();
        }
    }

    /// Every client message received and every server message sent so far.
    pub fn message_totals(&self) -> (u64, u64) {
        let sum = |counters: &[Counter]| counters.iter().map(Counter::get).sum();
        (sum(&self.received), sum(&self.sent))
    }

    /// Changes committed `since` were handed to every session.
    pub fn broadcast(&self, since: Duration) {
        self.broadcast_seconds.observe(since.as_secs_f64());
    }

    /// A transaction of `writes` writes committed in `took`.
    pub fn committed(&self, writes: usize, took: Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.commit_writes.observe(writes as f64);
    }

    pub fn slow_consumer_closed(&self) {
        self.slow_consumer_closes.inc();
    }

    pub fn election_ended(&self, reason: &'static str, elected: bool) {
        let outcome = if elected { "elected" } else { "failed" };
        self.elections.get_or_create(&ElectionLabels { reason, outcome }).inc();
    }

    /// The text a scrape gets, with the state figures as `state` gives them.
    pub fn scrape(&self, state: &State) -> Result<String, std::fmt::Error> {
        for (transport, n) in [("ws", state.ws_sessions), ("socketio", state.socketio_sessions)] {
            self.sessions.get_or_create(&TransportLabel { transport }).set(gauge_value(n as u64));
        }
        self.term.set(gauge_value(state.term));
        self.master.set(i64::from(state.has_master));
        self.head_seq.set(gauge_value(state.head_seq));
        self.oldest_seq.set(gauge_value(state.oldest_seq));
        // Devices come and go: the family holds exactly the devices of this scrape.
        self.sync_lag.clear();
        for (device, lag) in &state.sync_lag {
            self.sync_lag.get_or_create(&DeviceLabel { device: device.clone() }).set(gauge_value(*lag));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn counters_are_named_and_labelled_the_prometheus_way() {
        let metrics = Metrics::new();
        metrics.received(Some("device_update"));
        metrics.received(Some("no_such_type"));
        metrics.received(None);
        metrics.sent(Some(Kind::Ack));
        metrics.sent(Some(Kind::Ack));
        metrics.election_ended("shutdown", true);
        let text = metrics.scrape(&State::default()).expect("encodes");
        assert_eq!(
            line(&text, "device_sync_messages_received_total{type=\"device_update\"}"),
            Some("device_sync_messages_received_total{type=\"device_update\"} 1")
        );
        assert_eq!(
            line(&text, "device_sync_messages_received_total{type=\"other\"}"),
            Some("device_sync_messages_received_total{type=\"other\"} 2")
        );
        assert_eq!(
            line(&text, "device_sync_messages_sent_total{type=\"ack\"}"),
            Some("device_sync_messages_sent_total{type=\"ack\"} 2")
        );
        assert!(
            line(&text, "device_sync_elections_total{reason=\"shutdown\",outcome=\"elected\"} 1").is_some(),
            "{text}"
        );
        assert!(line(&text, "# TYPE device_sync_commit_seconds histogram").is_some(), "{text}");
    }

    #[test]
    fn state_figures_are_those_of_the_latest_scrape() {
        let metrics = Metrics::new();
        let state = State {
            ws_sessions: 3,
            socketio_sessions: 1,
            term: 4,
            has_master: true,
            head_seq: 10,
            oldest_seq: 1,
            sync_lag: vec![("till-1".into(), 2)],
        };
        let text = metrics.scrape(&state).expect("encodes");
        assert!(line(&text, "device_sync_sessions{transport=\"socketio\"} 1").is_some(), "{text}");
        assert!(line(&text, "device_sync_sync_lag{device=\"till-1\"} 2").is_some(), "{text}");
        assert!(line(&text, "device_sync_master 1").is_some(), "{text}");
        let gone = State { sync_lag: Vec::new(), ..state };
        let text = metrics.scrape(&gone).expect("encodes");
        assert!(
            line(&text, "device_sync_sync_lag{").is_none(),
            "a device no longer there is not reported: {text}"
        );
    }
}
