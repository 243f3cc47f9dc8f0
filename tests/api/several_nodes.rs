//! Several nodes over one Postgres database (PROTOCOL.md section 11), each a real server
//! process: one change log across them, every change delivered once and in `seq` order to every
//! session on every node, recovery against any node, and the nodes' view of each other.
//!
//! These tests need Postgres (`make test-postgres` runs them; the SQLite pass leaves the module
//! out), and fail, not pass, without it.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{WAIT, WsClient, database_url, postgres_server, seq};
use crate::process::{Launch, Server};
use crate::reliability::device_writer;

/// Short leases, and no rate limit on the writers.
const NODE_SETTINGS: &str = "[limits]\nmessages_per_second = 100000\n[cluster]\nlease_ttl_s = 1.5\n";

/// `count` nodes named `n1`, `n2`, … on one fresh Postgres database.
fn start_nodes(count: usize) -> Vec<Server> {
    assert!(
        postgres_server().is_some(),
        "the cluster tests need a Postgres server: run them with `make test-postgres`"
    );
    let shared = tempfile::tempdir().expect("temp dir");
    let url = database_url(&shared);
    (1..=count)
        .map(|n| {
            Server::start(Launch {
                settings: format!("{NODE_SETTINGS}node_id = \"n{n}\"\n"),
                database_url: Some(url.clone()),
                ..Launch::default()
            })
        })
        .collect()
}

async fn health(http: &reqwest::Client, node: &Server) -> Value {
    http.get(node.url("/system/health")).send().await.expect("health").json().await.expect("json")
}

/// Waits until every node sees all of them alive and one lease holder; returns the holder.
async fn wait_for_cluster(http: &reqwest::Client, nodes: &[Server]) -> String {
    let names: Vec<String> = (1..=nodes.len()).map(|n| format!("n{n}")).collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let mut views = Vec::new();
        for node in nodes {
            views.push(health(http, node).await);
        }
        let holders: HashSet<String> =
            views.iter().filter_map(|h| h["lease_holder"].as_str().map(str::to_owned)).collect();
        let all_alive = views.iter().all(|h| h["nodes"] == json!(names));
        if all_alive && holders.len() == 1 && views.iter().all(|h| h["lease_holder"].is_string()) {
            for (view, name) in views.iter().zip(&names) {
                assert_eq!(view["node_id"], json!(name), "{view}");
            }
            let holder = holders.into_iter().next().expect("one holder");
            assert!(names.contains(&holder), "the holder {holder} is one of the nodes");
            return holder;
        }
        assert!(Instant::now() < deadline, "the nodes did not see each other: {views:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A session that says `connect` (from `last_seq`, when given) and keeps every logged change
/// it receives, replayed or live.
struct Listener {
    ws: WsClient,
    seqs: Vec<u64>,
}

impl Listener {
    async fn open(node: &Server, name: &str, last_seq: Option<u64>) -> Self {
        let mut ws = WsClient::open(&node.ws_url()).await;
        let mut connect = json!({"type": "connect", "clientId": name});
        if let Some(last) = last_seq {
            connect["last_seq"] = json!(last);
        }
        ws.send(connect).await;
        let (_, before) = ws.recv_until("connected").await;
        let mut listener = Self { ws, seqs: Vec::new() };
        listener.keep(&before);
        listener
    }

    fn keep(&mut self, frames: &[Value]) {
        self.seqs.extend(frames.iter().filter(|f| f["type"] == "data_update").map(seq));
    }

    /// Reads until it has every change up to `head`.
    async fn read_up_to(&mut self, head: u64) {
        let deadline = Instant::now() + WAIT;
        while self.seqs.last().copied().unwrap_or(0) < head {
            assert!(Instant::now() < deadline, "only up to {:?} of {head} arrived", self.seqs.last());
            let frame = self.ws.recv().await;
            self.keep(std::slice::from_ref(&frame));
        }
    }
}

#[actix_web::test]
async fn three_nodes_share_one_log_and_every_session_gets_every_change_once_in_order() {
    let nodes = start_nodes(3);
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    wait_for_cluster(&http, &nodes).await;

    // Two listening sessions on every node, connected before anything is written.
    let mut listeners = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for l in 0..2 {
            listeners.push(Listener::open(node, &format!("listener-{n}-{l}"), None).await);
        }
    }

    // Two devices on every node write at once, as fast as they can.
    const EACH: usize = 150;
    let acked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = nodes
        .iter()
        .enumerate()
        .flat_map(|(n, node)| {
            let (url, acked) = (node.ws_url(), &acked);
            (0..2).map(move |d| {
                let device = format!("till-{n}-{d}");
                actix_web::rt::spawn(device_writer(url.clone(), device, "sales", EACH, 16, Arc::clone(acked)))
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for writer in writers {
        let mine = writer.await.expect("writer");
        assert_eq!(mine.len(), EACH, "every write was acknowledged");
        acknowledged.extend(mine.into_iter().map(|(_, seq)| seq));
    }

    // One order: the acknowledged seqs are exactly 1..=N, each once.
    let total = acknowledged.len() as u64;
    acknowledged.sort_unstable();
    assert_eq!(acknowledged, (1..=total).collect::<Vec<_>>(), "one gapless log across the nodes");

    // Every session on every node has every change once, in seq order.
    for listener in &mut listeners {
        listener.read_up_to(total).await;
        assert_eq!(listener.seqs, (1..=total).collect::<Vec<_>>(), "every change once, in order");
    }
    for node in &nodes {
        assert_eq!(health(&http, node).await["head_seq"], total);
    }

    // A device that was away resumes against another node than before: exactly what it missed.
    let from = total / 2;
    for node in &nodes {
        let mut returning = Listener::open(node, "returning", Some(from)).await;
        returning.read_up_to(total).await;
        assert_eq!(returning.seqs, (from + 1..=total).collect::<Vec<_>>());
    }
}

#[actix_web::test]
async fn a_node_that_stops_leaves_and_its_lease_passes_to_another() {
    let mut nodes = start_nodes(2);
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    let holder = wait_for_cluster(&http, &nodes).await;
    let (leaving, staying) = if holder == "n1" { (0, 1) } else { (1, 0) };
    assert_eq!(nodes[leaving].terminate().code(), Some(0));

    // The node that stayed sees the other one gone at once and takes the lease within its time.
    let deadline = Instant::now() + WAIT;
    loop {
        let view = health(&http, &nodes[staying]).await;
        let name = format!("n{}", staying + 1);
        if view["nodes"] == json!([name]) && view["lease_holder"] == json!(name) {
            break;
        }
        assert!(Instant::now() < deadline, "the lease did not pass on: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
