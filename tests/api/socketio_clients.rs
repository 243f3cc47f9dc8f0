//! The README's three walk-throughs (two tills in step, a failover, an offline device) with a
//! real Socket.IO client in a fleet of `/ws` clients: python-socketio's asyncio client
//! (`tests/clients/fleet_client.py`) and Node's socket.io-client (`fleet_client.mjs`), both
//! installed by `make clients`, each on the websocket transport and on long-polling with the
//! upgrade. The client behaves as the shop's app does (auth payload, events with and without
//! acknowledgements, confirming `role_change`); the test says each step and checks what the
//! client and the `/ws` clients saw.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestApp, python_tool, seq, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(20);

/// The client process, its reports as they come, and its stdin.
pub(crate) struct Client {
    child: Child,
    stdin: ChildStdin,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// Which real client, on which Engine.IO transport.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// python-socketio's `AsyncClient`.
    Python,
    /// Node's `socket.io-client`.
    Node,
}

impl Client {
    pub(crate) fn start(kind: Kind, app: &TestApp, transport: &str, device: &str) -> Self {
        Self::start_at(kind, &app.url(""), transport, device, None)
    }

    /// A client of the server at `url`, trusting the certificate authority in `ca` (a PEM file)
    /// besides the system's.
    pub(crate) fn start_at(
        kind: Kind,
        url: &str,
        transport: &str,
        device: &str,
        ca: Option<&std::path::Path>,
    ) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
        let (program, script) = match kind {
            Kind::Python => (python_tool("python"), format!("{dir}/fleet_client.py")),
            Kind::Node => {
                let installed = PathBuf::from(dir).join("node_modules/socket.io-client");
                assert!(installed.exists(), "socket.io-client is not installed in {dir}: run `make clients`");
                (PathBuf::from("node"), format!("{dir}/fleet_client.mjs"))
            }
        };
        let mut command = Command::new(program);
        if let Some(ca) = ca {
            // Python's ssl (through aiohttp) reads SSL_CERT_FILE; Node adds NODE_EXTRA_CA_CERTS.
            command.env("SSL_CERT_FILE", ca).env("NODE_EXTRA_CA_CERTS", ca);
        }
        let mut child = command
            .args([script.as_str(), "--url", url, "--transport", transport, "--device", device])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Socket.IO client");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let lines = crate::helpers::lines_of(stdout);
        Self { child, stdin, lines }
    }

    /// Tells the client one command and reads its report of it.
    pub(crate) async fn ask(&mut self, command: Value) -> Value {
        let what = command["do"].as_str().unwrap_or_default().to_owned();
        writeln!(self.stdin, "{command}").and_then(|()| self.stdin.flush()).expect("tell the client");
        let line = tokio::time::timeout(WAIT, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("the client did not report {command} in time"))
            .unwrap_or_else(|| panic!("the client ended during {command}: {:?}", self.child.try_wait()));
        let report: Value = serde_json::from_str(&line).expect("a JSON report");
        assert!(report.get("failed").is_none(), "the client failed at {command}: {}", report["failed"]);
        assert_eq!(report["did"], what.as_str(), "{report}");
        report
    }

    /// Connects with `auth` (and, on polling, waits for the upgrade to websocket).
    pub(crate) async fn connect(&mut self, auth: Value) {
        self.ask(json!({"do": "connect", "auth": auth})).await;
        let upgraded = self.ask(json!({"do": "upgraded"})).await;
        assert_eq!(upgraded["transport"], "websocket", "a polling client upgrades");
    }

    /// Emits `event` with an acknowledgement and returns the reply it carried.
    pub(crate) async fn call(&mut self, event: &str, data: Value) -> Value {
        self.ask(json!({"do": "call", "event": event, "data": data})).await["reply"].take()
    }

    /// Emits `event` without an acknowledgement.
    async fn emit(&mut self, event: &str, data: Value) {
        self.ask(json!({"do": "emit", "event": event, "data": data})).await;
    }

    /// The first event named `event` whose data has `match`'s fields.
    async fn expect(&mut self, event: &str, r#match: Value) -> Value {
        self.ask(json!({"do": "expect", "event": event, "match": r#match})).await["data"].take()
    }

    /// Every event heard, in order, up to and including the first named `event`.
    async fn until(&mut self, event: &str) -> Vec<(String, Value)> {
        let report = self.ask(json!({"do": "until", "event": event})).await;
        let events = report["events"].as_array().expect("events").iter();
        events.map(|e| (e[0].as_str().expect("a name").to_owned(), e[1].clone())).collect()
    }

    async fn disconnect(&mut self) {
        self.ask(json!({"do": "disconnect"})).await;
    }

    pub(crate) fn finish(mut self) {
        writeln!(self.stdin, "{}", json!({"do": "exit"})).expect("tell the client");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            match self.child.try_wait().expect("wait for the client") {
                Some(status) => return assert!(status.success(), "the client failed: {status}"),
                None if std::time::Instant::now() > deadline => panic!("the client did not finish"),
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

/// "Try it: two tills in step": till-1 on Socket.IO, till-2 on `/ws`. Each change one makes
/// reaches the other and never comes back; a till that was away gets exactly what it missed.
async fn two_tills(kind: Kind, transport: &str) {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    app.create_station("pc5").await;
    let mut till2 = app.connect("till-2").await;
    let mut till1 = Client::start(kind, &app, transport, "till-1");
    till1.connect(json!({"clientId": "till-1"})).await;
    let connected = till1.expect("connected", json!({})).await;
    let epoch = connected["epoch"].as_str().expect("epoch").to_owned();

    let ack = till1
        .call("device_update", json!({"deviceId": "pc1", "data": {"isRunning": true, "customerCount": 2}}))
        .await;
    assert_eq!(ack["type"], "ack", "with an acknowledgement the reply is the ack: {ack}");
    let (updated, _) = till2.recv_until("device_updated").await;
    assert_eq!(
        (updated["seq"].as_u64(), updated["data"]["customerCount"].as_u64()),
        (ack["seq"].as_u64(), Some(2))
    );

    let ack = till1
        .call(
            "order_placed",
            json!({"deviceId": "pc1", "orders": [{"name": "كولا", "price": 1000, "quantity": 2}]}),
        )
        .await;
    let (added, _) = till2.recv_until("order_added").await;
    assert_eq!(added["seq"], ack["seq"]);
    let order = &added["orders"][0];
    assert_eq!((order["name"].as_str(), order["quantity"].as_u64()), (Some("كولا"), Some(2)), "{added}");
    assert!(order["orderId"].is_string() && order["orderIndex"].is_u64(), "{added}");

    till2
        .send(json!({"type": "device_transfer", "fromDeviceId": "pc1", "toDeviceId": "pc5", "id": "t"}))
        .await;
    let (transferred_ack, _) = till2.recv_until("ack").await;
    let transferred = till1.expect("device_transferred", json!({})).await;
    assert_eq!(transferred["seq"], transferred_ack["seq"], "{transferred}");

    // Without an acknowledgement, the reply comes as an event, as the old handlers' emit did.
    till1.emit("device_reset", json!({"deviceId": "pc5", "id": "r"})).await;
    let reset = till1.expect("ack", json!({"reply_to": "r"})).await;
    let (cleared, _) = till2.recv_until("device_cleared").await;
    assert_eq!(cleared["seq"], reset["seq"]);

    // till-1's own changes never came back to it.
    till1.emit("ping", json!({"id": "p"})).await;
    let heard = till1.until("pong").await;
    assert!(
        !names(&heard).iter().any(|n| ["device_updated", "order_added", "device_cleared"].contains(n)),
        "{heard:?}"
    );

    // Away while till-2 works; back with its last seq and epoch.
    till1.disconnect().await;
    let mut missed = Vec::new();
    for n in 0..2 {
        till2.send(json!({"type": "device_update", "deviceId": "pc1", "data": {"customerCount": n}, "id": format!("m{n}")})).await;
        missed.push(seq(&till2.recv_until("ack").await.0));
    }
    till1.connect(json!({"clientId": "till-1", "last_seq": seq(&reset), "epoch": epoch})).await;
    let replayed = till1.until("connected").await;
    let replayed: Vec<u64> =
        replayed.iter().filter(|(name, _)| name == "device_updated").map(|(_, data)| seq(data)).collect();
    assert_eq!(replayed, missed, "exactly what it missed, in order, before connected");
    till1.finish();
}

/// "Watch a failover": office (`/ws`, priority 100) is master; till-1 on Socket.IO and till-2
/// on `/ws`. The office shuts down and till-1 is elected; then an admin elects till-2 by hand.
async fn failover(kind: Kind, transport: &str) {
    let app = spawn_app().await;
    let (mut office, online) = app.device("office", 100).await;
    assert_eq!(online["role"], "master");
    let mut till1 = Client::start(kind, &app, transport, "till-1");
    till1.connect(json!({"clientId": "till-1"})).await;
    let ack = till1.call("device_online", json!({"device_id": "till-1", "priority": 50})).await;
    assert_eq!(
        (ack["type"].as_str(), ack["role"].as_str()),
        (Some("device_online_ack"), Some("client")),
        "{ack}"
    );
    let (_till2, online) = app.device("till-2", 50).await;
    assert_eq!(online["role"], "client", "a device never takes over from a working master");

    office.send(json!({"type": "device_shutdown", "device_id": "office"})).await;
    let election = till1.expect("master_election", json!({})).await;
    assert!(election.is_object());
    // A tie on priority goes to the smaller id; till-1 confirms, as the app does.
    till1.expect("role_change", json!({"device_id": "till-1", "new_role": "master"})).await;
    let elected = till1.expect("master_elected", json!({"new_master_id": "till-1"})).await;
    assert_eq!(elected["term"], 2);

    let response = app
        .http
        .post(app.url("/master-election"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"preferred_master": "till-2"}))
        .send()
        .await
        .expect("POST /master-election");
    assert!(response.status().is_success(), "{}", response.status());
    let elected = till1.expect("master_elected", json!({"new_master_id": "till-2"})).await;
    assert_eq!(elected["term"], 3);
    let health = app.health().await;
    assert_eq!(
        (health["master_device"].as_str(), health["term"].as_u64()),
        (Some("till-2"), Some(3)),
        "{health}"
    );
    till1.finish();
}

/// "An offline device": a tablet on Socket.IO goes away, comes back with where it was and is
/// sent what it missed, pages through the log itself, and confirms.
async fn offline_device(kind: Kind, transport: &str) {
    let app = spawn_app().await;
    let (_office, _) = app.device("office", 100).await;
    let mut tablet = Client::start(kind, &app, transport, "tablet");
    tablet.connect(json!({"clientId": "tablet"})).await;
    let ack = tablet.call("device_online", json!({"device_id": "tablet", "priority": 20})).await;
    let last_seq = ack["last_seq"].as_u64().unwrap_or_else(|| panic!("last_seq in {ack}"));
    let epoch = ack["epoch"].as_str().unwrap_or_else(|| panic!("epoch in {ack}")).to_owned();
    tablet.disconnect().await;

    let (mut till1, _) = app.device("till-1", 50).await;
    let mut missed = Vec::new();
    for n in 0..3 {
        till1
            .send(json!({"type": "data_update", "device_id": "till-1", "table_name": "products", "record_id": 40 + n,
                "new_data": {"name": "كولا", "price": 1000}, "id": format!("d{n}")}))
            .await;
        missed.push(seq(&till1.recv_until("data_update_ack").await.0));
    }

    // Back with where it was: every change it missed, in order and once, then the answer.
    tablet.connect(json!({"clientId": "tablet"})).await;
    tablet.until("connected").await;
    tablet
        .emit(
            "device_online",
            json!({"device_id": "tablet", "priority": 20, "last_seq": last_seq, "epoch": epoch}),
        )
        .await;
    let heard = tablet.until("device_online_ack").await;
    let replayed: Vec<u64> =
        heard.iter().filter(|(name, _)| name == "data_update").map(|(_, data)| seq(data)).collect();
    assert_eq!(replayed, missed, "{:?}", names(&heard));

    // Or it pages through the log itself, and confirms where it got to.
    let page = tablet
        .call(
            "sync_request",
            json!({"device_id": "tablet", "sync_type": "incremental", "last_seq": last_seq, "limit": 1000}),
        )
        .await;
    assert_eq!(page["type"], "sync_response", "{page}");
    let end = page["last_seq"].as_u64().expect("last_seq");
    assert_eq!(end, *missed.last().expect("missed"));
    let done = tablet.call("sync_complete", json!({"device_id": "tablet", "last_seq": end})).await;
    assert_eq!(done["type"], "sync_complete_ack", "{done}");
    let status = app.get_json("/sync/status?device_id=tablet").await;
    assert!(status.to_string().contains(&end.to_string()), "{status}");
    tablet.finish();
}

macro_rules! walk_throughs {
    ($($name:ident: $walk:ident, $kind:expr, $transport:literal;)*) => {$(
        #[actix_web::test]
        async fn $name() {
            $walk($kind, $transport).await;
        }
    )*};
}

walk_throughs! {
    two_tills_with_python_on_websocket: two_tills, Kind::Python, "websocket";
    two_tills_with_python_on_polling: two_tills, Kind::Python, "polling";
    two_tills_with_node_on_websocket: two_tills, Kind::Node, "websocket";
    two_tills_with_node_on_polling: two_tills, Kind::Node, "polling";
    failover_with_python_on_websocket: failover, Kind::Python, "websocket";
    failover_with_python_on_polling: failover, Kind::Python, "polling";
    failover_with_node_on_websocket: failover, Kind::Node, "websocket";
    failover_with_node_on_polling: failover, Kind::Node, "polling";
    offline_device_with_python_on_websocket: offline_device, Kind::Python, "websocket";
    offline_device_with_python_on_polling: offline_device, Kind::Python, "polling";
    offline_device_with_node_on_websocket: offline_device, Kind::Node, "websocket";
    offline_device_with_node_on_polling: offline_device, Kind::Node, "polling";
}

/// Sessions that end one after another on long-polling (with and without the upgrade), as a
/// browser's or Flutter-web's client does when it closes: each registers a device and leaves.
/// The server is left idle and answering on every worker (the harness checks it when the test
/// ends); a session ended while its GET waited used to leave a task spinning on its worker.
async fn polling_sessions_end(kind: Kind, transport: &str) {
    // An ended session's last packets wait for a GET up to pingInterval + pingTimeout (a client
    // that left without one, seen under load, leaves its side that long): shorter than WAIT.
    let app = spawn_app_with(|s| {
        s.socketio.ping_interval_s = 2.0;
        s.socketio.ping_timeout_s = 3.0;
    })
    .await;
    let mut client = Client::start(kind, &app, transport, "tablet");
    for n in 0..4 {
        client.ask(json!({"do": "connect", "auth": {"clientId": "tablet"}})).await;
        let ack = client.call("device_online", json!({"device_id": "tablet", "priority": 20})).await;
        assert_eq!(ack["type"], "device_online_ack", "session {n}: {ack}");
        client.disconnect().await;
    }
    client.finish();
    app.wait_for_sessions(0).await;
    // Nor is any session's long-polling side left behind.
    let deadline = std::time::Instant::now() + WAIT;
    while !app.state.polling.is_empty() {
        assert!(std::time::Instant::now() < deadline, "{} polling sessions left", app.state.polling.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

walk_throughs! {
    polling_sessions_that_end_leave_python_idle: polling_sessions_end, Kind::Python, "polling-only";
    upgraded_sessions_that_end_leave_python_idle: polling_sessions_end, Kind::Python, "polling";
    polling_sessions_that_end_leave_node_idle: polling_sessions_end, Kind::Node, "polling-only";
    upgraded_sessions_that_end_leave_node_idle: polling_sessions_end, Kind::Node, "polling";
}
