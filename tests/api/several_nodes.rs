//! Several nodes over one Postgres database (PROTOCOL.md section 11), each a real server
//! process: one change log across them, every change delivered once and in `seq` order to every
//! session on every node, recovery against any node, and the nodes' view of each other.
//!
//! These tests need Postgres (`make test-postgres` runs them; the SQLite pass leaves the module
//! out), and fail, not pass, without it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestDevice, WAIT, WsClient, database_url, postgres_server, seq};
use crate::process::{Launch, Server};
use crate::reliability::{check_history, device_writer, whole_log};

/// Short leases and timings, and no rate limit on the writers.
const NODE_SETTINGS: &str = "[limits]\nmessages_per_second = 100000\n\
    [heartbeat]\ninterval_s = 0.2\ntimeout_s = 2\n\
    [election]\nack_timeout_s = 1\nbackoff_ms = [50, 100, 200]\nreconnect_grace_s = 0.5\n\
    [cluster]\nlease_ttl_s = 1.5\n";

/// A fresh Postgres database for a site's nodes.
fn site_database() -> String {
    assert!(
        postgres_server().is_some(),
        "the cluster tests need a Postgres server: run them with `make test-postgres`"
    );
    database_url(&tempfile::tempdir().expect("temp dir"))
}

/// Node `n` of the site on `url`.
fn start_node(n: usize, url: &str) -> Server {
    start_node_with(n, url, "")
}

/// Node `n` of the site on `url`, with `extra` settings (sections the node settings lack).
fn start_node_with(n: usize, url: &str, extra: &str) -> Server {
    Server::start(Launch {
        settings: format!("{extra}{NODE_SETTINGS}node_id = \"n{n}\"\n"),
        database_url: Some(url.to_owned()),
        ..Launch::default()
    })
}

/// `count` nodes named `n1`, `n2`, … on one fresh Postgres database.
fn start_nodes(count: usize) -> Vec<Server> {
    let url = site_database();
    (1..=count).map(|n| start_node(n, &url)).collect()
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
/// it receives, replayed or live. It reads all the time (a session that stops reading is cut
/// off by the server, as it should be).
struct Listener {
    seqs: Vec<u64>,
    arriving: tokio::sync::mpsc::UnboundedReceiver<u64>,
    reading: actix_web::rt::task::JoinHandle<()>,
}

impl Listener {
    async fn open(node: &Server, name: &str, last_seq: Option<u64>) -> Self {
        use futures_util::StreamExt;
        let mut ws = WsClient::open(&node.ws_url()).await;
        let mut connect = json!({"type": "connect", "clientId": name});
        if let Some(last) = last_seq {
            connect["last_seq"] = json!(last);
        }
        ws.send(connect).await;
        let (_, before) = ws.recv_until("connected").await;
        let (tx, arriving) = tokio::sync::mpsc::unbounded_channel();
        for frame in before.iter().filter(|f| f["type"] == "data_update") {
            let _ = tx.send(seq(frame));
        }
        let reading = actix_web::rt::spawn(async move {
            while let Some(Ok(message)) = ws.stream().next().await {
                let Ok(text) = message.to_text() else { continue };
                let Ok(frame) = serde_json::from_str::<Value>(text) else { continue };
                if frame["type"] == "data_update" && tx.send(seq(&frame)).is_err() {
                    return;
                }
            }
        });
        Self { seqs: Vec::new(), arriving, reading }
    }

    /// Waits until it has every change up to `head`.
    async fn read_up_to(&mut self, head: u64) {
        let deadline = Instant::now() + WAIT;
        while self.seqs.last().copied().unwrap_or(0) < head {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.arriving.recv()).await {
                Ok(Some(seq)) => self.seqs.push(seq),
                _ => panic!("only up to {:?} of {head} arrived", self.seqs.last()),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.reading.abort();
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

// ---- the site's elections ---------------------------------------------------------------

/// Who every device was told is master, by term, across all devices: one master per term.
#[derive(Default)]
struct Terms(BTreeMap<u64, String>);

impl Terms {
    fn note(&mut self, term: u64, master: &str) {
        match self.0.get(&term) {
            Some(known) => assert_eq!(known, master, "two masters for term {term}"),
            None => {
                self.0.insert(term, master.to_owned());
            }
        }
    }
}

/// A device on a node, and the terms it has been told of, in order.
struct Device {
    device: TestDevice,
    terms: Vec<u64>,
}

impl Device {
    /// Opens a session on `node` and registers the device; returns it and its ack.
    async fn online(node: &Server, id: &str, priority: i64, terms: &mut Terms) -> (Self, Value) {
        let mut device = TestDevice::from_ws(WsClient::open(&node.ws_url()).await, id);
        device.send(json!({"type": "device_online", "device_id": id, "priority": priority})).await;
        let (ack, before) = device.recv_until("device_online_ack").await;
        let mut me = Self { device, terms: Vec::new() };
        me.keep(&before, terms);
        if ack["role"] == "master" {
            terms.note(ack["term"].as_u64().expect("term"), id);
        }
        (me, ack)
    }

    fn keep(&mut self, frames: &[Value], terms: &mut Terms) {
        for frame in frames.iter().filter(|f| f["type"] == "master_elected") {
            let term = frame["term"].as_u64().expect("term");
            let master = frame["new_master_id"].as_str().expect("new_master_id");
            // A new leader says who the master is again after its roll call: the same term
            // and master, nothing new.
            let repeat =
                self.terms.last() == Some(&term) && terms.0.get(&term).map(String::as_str) == Some(master);
            if let Some(last) = self.terms.last().filter(|_| !repeat) {
                assert!(term > *last, "terms grow at every device: {term} after {last}");
            }
            if !repeat {
                self.terms.push(term);
            }
            terms.note(term, master);
        }
    }

    /// Reads until it is told of a master for `term`; returns that master.
    async fn master_of(&mut self, term: u64, terms: &mut Terms) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.terms.last().is_some_and(|t| *t >= term) {
                return terms.0.get(&term).cloned().expect("a master for the term");
            }
            assert!(Instant::now() < deadline, "{} was not told of term {term}", self.device.id);
            let frame = self.device.recv().await;
            self.keep(std::slice::from_ref(&frame), terms);
        }
    }
}

/// Asks `node` for a manual election, as an admin.
async fn elect(http: &reqwest::Client, node: &Server, preferred: &str) -> Value {
    let response = http
        .post(node.url("/master-election"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"reason": "manual", "preferred_master": preferred}))
        .send()
        .await
        .expect("POST /master-election");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

/// Waits until `node`'s health names `master` (each node knows the site's master).
async fn wait_for_master(http: &reqwest::Client, node: &Server, master: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let view = health(http, node).await;
        if view["master_device"] == master {
            return;
        }
        assert!(Instant::now() < deadline, "{} does not name {master} as master: {view}", node.port);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each election the site held is recorded once, under a term of its own (a node that lost the
/// lease recorded none of its own; terms asked in and not elected are skipped, never reused).
async fn assert_each_term_recorded_once(http: &reqwest::Client, node: &Server) {
    let logs: Value = http
        .get(node.url("/sync/master-election-logs?limit=100"))
        .send()
        .await
        .expect("logs")
        .json()
        .await
        .expect("json");
    let mut logged: Vec<u64> =
        logs["logs"].as_array().expect("logs").iter().filter_map(|l| l["term"].as_u64()).collect();
    let count = logged.len();
    logged.sort_unstable();
    logged.dedup();
    assert_eq!(logged.len(), count, "a term recorded twice: {logs}");
}

fn index_of(holder: &str) -> usize {
    holder.trim_start_matches('n').parse::<usize>().expect("a node name") - 1
}

#[actix_web::test]
async fn the_site_has_one_master_whatever_node_its_devices_are_on() {
    let nodes = start_nodes(3);
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    let holder = index_of(&wait_for_cluster(&http, &nodes).await);
    let mut terms = Terms::default();

    // The first device online is master at once, whichever node it is on; the others are clients.
    let (mut a, ack) = Device::online(&nodes[0], "a", 50, &mut terms).await;
    assert_eq!((ack["role"].as_str(), ack["term"].as_u64()), (Some("master"), Some(1)), "{ack}");
    let (mut b, ack) = Device::online(&nodes[1], "b", 80, &mut terms).await;
    assert_eq!((ack["role"].as_str(), ack["current_master"].as_str()), (Some("client"), Some("a")), "{ack}");
    let (mut c, ack) = Device::online(&nodes[2], "c", 60, &mut terms).await;
    assert_eq!((ack["role"].as_str(), ack["current_master"].as_str()), (Some("client"), Some("a")), "{ack}");
    for node in &nodes {
        wait_for_master(&http, node, "a").await;
    }

    // The master shuts down on its node: the highest priority on another node is elected.
    a.device.send(json!({"type": "device_shutdown", "device_id": "a"})).await;
    let (ack, before) = a.device.recv_until("device_shutdown_ack").await;
    a.keep(&before, &mut terms);
    assert_eq!(ack["master_election_triggered"], true, "{ack}");
    assert_eq!(b.master_of(2, &mut terms).await, "b");
    assert_eq!(c.master_of(2, &mut terms).await, "b");

    // A manual election asked on a node that does not hold the lease runs once and answers.
    let other = (holder + 1) % nodes.len();
    let held = elect(&http, &nodes[other], "c").await;
    assert_eq!((held["new_master_id"].as_str(), held["term"].as_u64()), (Some("c"), Some(3)), "{held}");
    assert_eq!(b.master_of(3, &mut terms).await, "c");
    assert_eq!(c.master_of(3, &mut terms).await, "c");
    for node in &nodes {
        wait_for_master(&http, node, "c").await;
    }
    assert_each_term_recorded_once(&http, &nodes[2]).await;
    assert_eq!(terms.0.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[actix_web::test]
async fn killing_the_lease_holder_elects_a_master_among_the_devices_left_and_loses_nothing() {
    let url = site_database();
    let mut nodes: Vec<Server> = (1..=3).map(|n| start_node(n, &url)).collect();
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    let holder = index_of(&wait_for_cluster(&http, &nodes).await);
    let (x, y) = ((holder + 1) % 3, (holder + 2) % 3);
    let mut terms = Terms::default();

    // The master is on the node that holds the lease; the other devices and a listener elsewhere.
    let (mut m, ack) = Device::online(&nodes[holder], "m", 90, &mut terms).await;
    assert_eq!(ack["role"], "master", "{ack}");
    let (mut dx, _) = Device::online(&nodes[x], "dx", 70, &mut terms).await;
    let (mut dy, _) = Device::online(&nodes[y], "dy", 40, &mut terms).await;
    let mut listener = Listener::open(&nodes[y], "listener", None).await;

    // Writers on every node; the lease holder is killed while they write.
    let acked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            let device = format!("writer-{n}");
            actix_web::rt::spawn(device_writer(node.ws_url(), device, "sales", 200, 16, Arc::clone(&acked)))
        })
        .collect();
    let deadline = Instant::now() + WAIT;
    while acked.load(Ordering::SeqCst) < 100 {
        assert!(Instant::now() < deadline, "the writers got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed = Instant::now();
    nodes[holder].kill();

    // Its master has dropped: once the lease runs out, the highest device left is elected.
    assert_eq!(dx.master_of(2, &mut terms).await, "dx");
    // A figure for the issue's note, not a check (lease 1.5 s, roll call 1 s, grace 0.5 s).
    eprintln!("failover: lease holder killed, new master elected after {:?}", killed.elapsed());
    assert_eq!(dy.master_of(2, &mut terms).await, "dx");
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("writer"));
    }
    wait_for_master(&http, &nodes[x], "dx").await;
    let view = health(&http, &nodes[y]).await;
    assert_ne!(view["lease_holder"], json!(format!("n{}", holder + 1)), "{view}");

    // Every acknowledged change is in the log once, in order; the listener had all of it.
    let log = whole_log(&nodes[x].url("")).await;
    assert_eq!(check_history(&log, &acknowledged), acknowledged.len());
    listener.read_up_to(log.len() as u64).await;
    assert_eq!(listener.seqs, (1..=log.len() as u64).collect::<Vec<_>>());

    // The killed node is started again on the same database; the old master comes back to it
    // as a client, and a session resumes against it with exactly what it missed.
    drop(m.device);
    nodes[holder] = start_node(holder + 1, &url);
    let (back, ack) = Device::online(&nodes[holder], "m", 90, &mut terms).await;
    assert_eq!((ack["role"].as_str(), ack["current_master"].as_str()), (Some("client"), Some("dx")), "{ack}");
    m = back;
    let from = log.len() as u64 / 2;
    let mut returning = Listener::open(&nodes[holder], "returning", Some(from)).await;
    returning.read_up_to(log.len() as u64).await;
    assert_eq!(returning.seqs, (from + 1..=log.len() as u64).collect::<Vec<_>>());
    drop(m);
    assert_each_term_recorded_once(&http, &nodes[holder]).await;
}

#[actix_web::test]
async fn a_lease_holder_paused_past_its_lease_decides_nothing_and_rejoins() {
    let nodes = start_nodes(3);
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    let holder = index_of(&wait_for_cluster(&http, &nodes).await);
    let (x, y) = ((holder + 1) % 3, (holder + 2) % 3);
    let mut terms = Terms::default();
    let (mut m, _) = Device::online(&nodes[x], "m", 50, &mut terms).await;
    let (mut h, _) = Device::online(&nodes[holder], "h", 60, &mut terms).await;
    let (mut dy, _) = Device::online(&nodes[y], "dy", 40, &mut terms).await;
    let mut paused_listener = Listener::open(&nodes[holder], "on-the-paused-node", None).await;

    // Paused for twice its lease: another node takes the lease, and the site goes on electing
    // and taking writes.
    nodes[holder].signal(libc::SIGSTOP);
    let acked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = [x, y]
        .into_iter()
        .map(|n| {
            let device = format!("writer-{n}");
            actix_web::rt::spawn(device_writer(
                nodes[n].ws_url(),
                device,
                "sales",
                100,
                16,
                Arc::clone(&acked),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = elect(&http, &nodes[y], "dy").await;
    assert_eq!(held["new_master_id"], "dy", "{held}");
    let term = held["term"].as_u64().expect("term");
    assert_eq!(m.master_of(term, &mut terms).await, "dy");
    let mut acknowledged = Vec::new();
    for writer in writers {
        let mine = writer.await.expect("writer");
        assert_eq!(mine.len(), 100, "writes go on while a node is paused");
        acknowledged.extend(mine);
    }
    nodes[holder].signal(libc::SIGCONT);

    // Its sessions get everything they missed while it was paused, in order; every acknowledged
    // change is in the log once; a session resumes against another node exactly.
    let log = whole_log(&nodes[x].url("")).await;
    assert_eq!(check_history(&log, &acknowledged), acknowledged.len());
    let head = log.len() as u64;
    paused_listener.read_up_to(head).await;
    assert_eq!(paused_listener.seqs, (1..=head).collect::<Vec<_>>());
    let mut returning = Listener::open(&nodes[y], "returning", Some(head / 2)).await;
    returning.read_up_to(head).await;
    assert_eq!(returning.seqs, (head / 2 + 1..=head).collect::<Vec<_>>());

    // Back, it no longer runs the elections, yet its device takes part in them again.
    let deadline = Instant::now() + WAIT;
    loop {
        let view = health(&http, &nodes[holder]).await;
        if view["lease_holder"].is_string() && view["lease_holder"] != json!(format!("n{}", holder + 1)) {
            break;
        }
        assert!(Instant::now() < deadline, "the paused node still claims the lease: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + WAIT;
    let held = loop {
        let response = http
            .post(nodes[holder].url("/master-election"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"reason": "manual", "preferred_master": "h"}))
            .send()
            .await
            .expect("POST /master-election");
        let body: Value = response.json().await.expect("json");
        if body["new_master_id"] == "h" {
            break body;
        }
        // Until its node has answered for it again, h is not an active device.
        assert!(Instant::now() < deadline, "h did not come back: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let term = held["term"].as_u64().expect("term");
    assert_eq!(h.master_of(term, &mut terms).await, "h");
    assert_eq!(dy.master_of(term, &mut terms).await, "h");
    assert_eq!(m.master_of(term, &mut terms).await, "h");
    assert_each_term_recorded_once(&http, &nodes[x]).await;
}

/// A TCP proxy to the test Postgres that can stop forwarding (and drop what it carries).
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    /// Starts the proxy on a thread of its own (a test blocks its own runtime while it waits for
    /// a node to start).
    fn start() -> Self {
        let server = postgres_server().expect("a Postgres server");
        let target = server
            .split('@')
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("host:port in the Postgres URL")
            .to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (cut_, connections_) = (Arc::clone(&cut), Arc::clone(&connections));
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if cut_.load(Ordering::SeqCst) {
                        continue;
                    }
                    let target = target.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections_.lock().expect("connections").push(task);
                }
            });
        });
        Self { port, cut, connections }
    }

    /// `url` with the proxy in place of the Postgres server.
    fn url_through(&self, url: &str) -> String {
        let (scheme_user, rest) = url.split_once('@').expect("a Postgres URL");
        let path = rest.split_once('/').map(|(_, path)| path).expect("a database");
        format!("{scheme_user}@127.0.0.1:{}/{path}", self.port)
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.connections.lock().expect("connections").drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[actix_web::test]
async fn a_node_cut_off_from_postgres_catches_up_in_order_and_its_devices_come_back() {
    let url = site_database();
    let proxy = Proxy::start();
    let near = start_node(1, &url);
    let far = start_node(2, &proxy.url_through(&url));
    let nodes = [near, far];
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    wait_for_cluster(&http, &nodes).await;
    let mut terms = Terms::default();
    let (_master, _) = Device::online(&nodes[0], "m", 90, &mut terms).await;
    let (mut z, _) = Device::online(&nodes[1], "z", 10, &mut terms).await;
    let mut listener = Listener::open(&nodes[1], "far-listener", None).await;
    wait_for_active(&http, &nodes[0], 2).await;

    // Cut off for longer than its lease: the other node counts its device as dropped and goes on
    // taking writes.
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_for_active(&http, &nodes[0], 1).await;
    let acked = Arc::new(AtomicUsize::new(0));
    let written = device_writer(nodes[0].ws_url(), "near-writer".into(), "sales", 50, 16, acked).await;
    assert_eq!(written.len(), 50);

    // Back: its sessions get every change in order, its device is active again, its writes land.
    proxy.restore();
    let head = written.iter().map(|(_, seq)| *seq).max().expect("writes");
    listener.read_up_to(head).await;
    assert_eq!(listener.seqs, (1..=head).collect::<Vec<_>>());
    wait_for_active(&http, &nodes[0], 2).await;
    // Its writer finds its connection broken by the cut at its first write, refuses that write
    // without storing it, and takes the next.
    let deadline = Instant::now() + WAIT;
    let reply = loop {
        let reply = z
            .device
            .request(
                json!({"type": "data_update", "device_id": "z", "table_name": "sales", "record_id": "far-1",
                "operation": "insert", "new_data": {"at": "far"}}),
            )
            .await;
        if reply["type"] == "data_update_ack" {
            break reply;
        }
        assert_eq!(reply["code"], "DATABASE_UNAVAILABLE", "{reply}");
        assert!(Instant::now() < deadline, "the far node never took a write again: {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(seq(&reply), head + 1, "a refused write stored nothing");
    let log = whole_log(&nodes[0].url("")).await;
    assert_eq!(log.len() as u64, head + 1);
    assert_eq!(log.last().map(|c| c["record_id"].clone()), Some(json!("far-1")));
    assert_eq!(check_history(&log, &written), written.len());

    // A session that was on the far node resumes against the near one exactly.
    let mut returning = Listener::open(&nodes[0], "returning", Some(head / 2)).await;
    returning.read_up_to(head + 1).await;
    assert_eq!(returning.seqs, (head / 2 + 1..=head + 1).collect::<Vec<_>>());
}

/// Waits until `node` counts `count` active devices.
async fn wait_for_active(http: &reqwest::Client, node: &Server, count: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let view = health(http, node).await;
        if view["active_devices"] == count {
            return;
        }
        assert!(Instant::now() < deadline, "not {count} active devices: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn devices_arriving_at_once_on_every_node_get_one_master() {
    let nodes = start_nodes(3);
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    wait_for_cluster(&http, &nodes).await;
    let arrivals: Vec<_> = (0..9)
        .map(|d| {
            let url = nodes[d % 3].ws_url();
            actix_web::rt::spawn(async move {
                let id = format!("till-{d}");
                let mut device = TestDevice::from_ws(WsClient::open(&url).await, &id);
                device.send(json!({"type": "device_online", "device_id": id, "priority": 10})).await;
                let (ack, _) = device.recv_until("device_online_ack").await;
                (device, ack)
            })
        })
        .collect();
    let mut acks = Vec::new();
    let mut devices = Vec::new();
    for arrival in arrivals {
        let (device, ack) = arrival.await.expect("arrival");
        acks.push(ack);
        devices.push(device);
    }
    let masters: Vec<&Value> = acks.iter().filter(|a| a["role"] == "master").collect();
    assert_eq!(masters.len(), 1, "exactly one master: {acks:?}");
    let master = masters[0]["device_id"].clone();
    for ack in acks.iter().filter(|a| a["role"] != "master") {
        assert_eq!(ack["current_master"], master, "{ack}");
        assert_eq!(ack["term"], 1, "{ack}");
    }
    assert_each_term_recorded_once(&http, &nodes[0]).await;
}

/// One device has one session in the whole site: a device registered on one node that
/// registers again on another is told `SESSION_REPLACED` on the older session, which is closed
/// (4009), wherever the lease is; the newer session speaks for the device.
#[actix_web::test]
async fn a_device_registering_on_another_node_replaces_its_older_session() {
    let nodes = start_nodes(3);
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    wait_for_cluster(&http, &nodes).await;
    let mut terms = Terms::default();
    let (mut first, ack) = Device::online(&nodes[0], "tablet", 50, &mut terms).await;
    assert_eq!(ack["role"], "master", "{ack}");
    let (mut again, ack) = Device::online(&nodes[2], "tablet", 50, &mut terms).await;
    assert_eq!(ack["role"], "master", "the newer session speaks for the master: {ack}");

    let (close, frames) = first.device.recv_close().await;
    let code = close.map(|c| u16::from(c.code));
    assert_eq!(code, Some(4009), "the older session is closed as replaced: {frames:?}");
    assert!(
        frames.iter().any(|f| f["type"] == "error" && f["code"] == "SESSION_REPLACED"),
        "the older session is told why: {frames:?}"
    );
    // The newer session is the device's: its heartbeats are answered.
    again.device.send(json!({"type": "heartbeat", "device_id": "tablet"})).await;
    again.device.recv_until("heartbeat_ack").await;
    for node in &nodes {
        wait_for_master(&http, node, "tablet").await;
    }
}

/// A live session never goes on silently past a gap: a node cut off from Postgres for longer
/// than the log keeps what it missed tells its live sessions to resynchronise
/// (`resync_required`, `history_trimmed`) before anything after the gap, rather than carrying
/// on as if nothing was missing.
#[actix_web::test]
async fn a_node_cut_off_past_retention_has_its_live_sessions_resync() {
    let url = site_database();
    let proxy = Proxy::start();
    let retention = "[sync]\nlog_keep_changes = 5\nprune_interval_s = 0.1\n";
    let near = start_node_with(1, &url, retention);
    let far = start_node_with(2, &proxy.url_through(&url), retention);
    let nodes = [near, far];
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    wait_for_cluster(&http, &nodes).await;
    let mut watcher = WsClient::open(&nodes[1].ws_url()).await;
    watcher.send(json!({"type": "connect", "clientId": "watcher"})).await;
    watcher.recv_until("connected").await;
    let acked = Arc::new(AtomicUsize::new(0));
    let first = device_writer(nodes[0].ws_url(), "w1".into(), "sales", 2, 0, Arc::clone(&acked)).await;
    let (_, before) = watcher.recv_until("data_update").await;
    assert!(before.iter().all(|f| f["type"] != "resync_required"), "{before:?}");

    // Cut off while the other node writes far past what the log keeps.
    proxy.cut();
    let written = device_writer(nodes[0].ws_url(), "w2".into(), "sales", 30, 0, acked).await;
    assert_eq!(written.len(), 30);
    let head = written.iter().map(|(_, seq)| *seq).max().expect("writes");
    let deadline = Instant::now() + WAIT;
    while health(&http, &nodes[0]).await["oldest_seq"].as_u64() < Some(head - 5) {
        assert!(Instant::now() < deadline, "the near node did not prune");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.restore();

    // Back: told to resynchronise before any change after the gap.
    let (resync, before) = watcher.recv_until("resync_required").await;
    assert_eq!(resync["reason"], "history_trimmed", "{resync}");
    let last_before = first.iter().map(|(_, seq)| *seq).max().expect("first writes");
    for frame in before.iter().filter(|f| f["type"] == "data_update") {
        assert!(seq(frame) <= last_before, "a change after the gap came before resync_required: {frame}");
    }
}

/// A device that reconnected on its node leaves nothing of its old session behind: when the
/// lease passes to that node, its roll call answers for the live session, and the master,
/// alive and well, stays master (its old session, answered for instead, would have timed out).
#[actix_web::test]
async fn a_reconnected_master_is_answered_for_by_its_live_session_after_a_takeover() {
    let nodes = start_nodes(2);
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    let holder = index_of(&wait_for_cluster(&http, &nodes).await);
    let other = 1 - holder;
    let mut terms = Terms::default();
    let (mut first, ack) = Device::online(&nodes[other], "m", 90, &mut terms).await;
    assert_eq!(ack["role"], "master", "{ack}");
    let (_m, ack) = Device::online(&nodes[other], "m", 90, &mut terms).await;
    assert_eq!(ack["role"], "master", "{ack}");
    let (close, _) = first.device.recv_close().await;
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4009), "the old session is replaced");
    let (mut c, _) = Device::online(&nodes[other], "c", 10, &mut terms).await;

    let mut nodes = nodes;
    nodes[holder].kill();
    let name = format!("n{}", other + 1);
    let deadline = Instant::now() + WAIT;
    while health(&http, &nodes[other]).await["lease_holder"] != name.as_str() {
        assert!(Instant::now() < deadline, "the lease did not pass on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past the roll call, the heartbeat timeout (2 s) and the reconnect grace.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let view = health(&http, &nodes[other]).await;
    assert_eq!(view["master_device"], "m", "{view}");
    let heard = c.device.roundtrip("after").await;
    c.keep(&heard, &mut terms);
    assert!(terms.0.values().all(|master| master == "m"), "no other master: {:?}", terms.0);
}

/// A device's own token revoked through one node closes the session it opened on another
/// (4011, within a heartbeat: each node reads the revocations every half heartbeat), and opens
/// nothing on any node afterwards.
#[actix_web::test]
async fn a_revoked_token_closes_its_session_on_every_node() {
    let url = site_database();
    let nodes: Vec<Server> =
        (1..=2).map(|n| start_node_with(n, &url, "require_device_token = true\n")).collect();
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    wait_for_cluster(&http, &nodes).await;
    let first = nodes[0].url("");
    let token = crate::device_tokens::issue(&http, first.trim_end_matches('/'), "tablet").await;
    let on_second = WsClient::open(&format!("{}?token={token}", nodes[1].ws_url())).await;
    let mut tablet = TestDevice::from_ws(on_second, "tablet");
    let online =
        tablet.request(json!({"type": "device_online", "device_id": "tablet", "priority": 10})).await;
    assert_eq!(online["type"], "device_online_ack", "{online}");

    let revoked = http
        .delete(nodes[0].url("/device/tablet/tokens"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    let (close, frames) = tablet.recv_close().await;
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4011), "{frames:?}");
    for node in &nodes {
        let again = tokio_tungstenite::connect_async(format!("{}?token={token}", node.ws_url())).await;
        assert!(
            matches!(&again, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
            "refused on every node"
        );
    }
}
