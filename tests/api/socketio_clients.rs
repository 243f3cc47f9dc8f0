//! Real Socket.IO clients in one fleet with `/ws` clients: python-socketio's client
//! (`tests/clients/fleet_client.py`) and Node's socket.io-client (`fleet_client.mjs`), both
//! installed by `make clients`, each on the websocket transport and on long-polling with the
//! upgrade. Each registers a device, hears a `/ws` write, writes
//! one a `/ws` client hears, is elected when the master shuts down (confirming with
//! `role_change_ack`, as the app does), and resumes with `last_seq` after being offline.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{seq, spawn_app};

const WAIT: Duration = Duration::from_secs(20);

/// The Python interpreter with python-socketio installed (`make clients`).
fn python() -> PathBuf {
    let path = std::env::var_os("DEVICE_SYNC_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/device-sync/clients/venv/bin/python")
    });
    assert!(
        path.exists(),
        "python-socketio's client is not installed at {}: run `make clients`",
        path.display()
    );
    path
}

/// The client process, its lines as they come, and its stdin.
struct Client {
    child: Child,
    stdin: ChildStdin,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// Which real client.
#[derive(Clone, Copy)]
enum Kind {
    /// python-socketio's `Client`.
    Python,
    /// Node's `socket.io-client`.
    Node,
}

impl Client {
    fn start(kind: Kind, url: &str, transport: &str, device: &str) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
        let (program, script) = match kind {
            Kind::Python => (python(), format!("{dir}/fleet_client.py")),
            Kind::Node => {
                let installed = PathBuf::from(dir).join("node_modules/socket.io-client");
                assert!(installed.exists(), "socket.io-client is not installed in {dir}: run `make clients`");
                (PathBuf::from("node"), format!("{dir}/fleet_client.mjs"))
            }
        };
        let mut child = Command::new(program)
            .args([script.as_str(), "--url", url, "--transport", transport, "--device", device])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Python client");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, stdin, lines }
    }

    /// The client's next report, which must be `step`.
    async fn step(&mut self, step: &str) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("the client did not report {step} in time"))
            .unwrap_or_else(|| panic!("the client ended before {step}: {:?}", self.child.try_wait()));
        let report: Value = serde_json::from_str(&line).expect("a JSON report");
        assert_eq!(report["step"], step, "{report}");
        report
    }

    fn tell(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").and_then(|()| self.stdin.flush()).expect("tell the client");
    }

    fn finish(mut self) {
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

async fn one_fleet_with(kind: Kind, transport: &str) {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    let (mut master, online) = app.device("master-ws", 90).await;
    assert_eq!(online["role"], "master");
    let mut writer = app.connect("ws-writer").await;

    let mut client = Client::start(kind, &app.url(""), transport, "sio-till");
    client.step("connected").await;
    let welcomed = client.step("welcomed").await;
    if let Some(now) = welcomed["transport"].as_str() {
        assert_eq!(now, "websocket", "a polling client has upgraded: {welcomed}");
    }
    let online = client.step("online").await;
    assert_eq!(
        (online["type"].as_str(), online["role"].as_str()),
        (Some("device_online_ack"), Some("client"))
    );

    writer
        .send(json!({"type": "device_update", "deviceId": "pc1", "data": {"notes": "from ws"}, "id": "w1"}))
        .await;
    writer.expect("ack").await;
    client.tell("written");
    client.step("heard").await;
    let wrote = client.step("wrote").await;
    assert_eq!(wrote["type"], "ack", "the write's acknowledgement is the /ws ack");
    let (heard, _) = writer.recv_until("device_updated").await;
    assert_eq!(
        (heard["data"]["notes"].as_str(), heard["seq"].as_u64()),
        (Some("from socket.io"), wrote["seq"].as_u64())
    );

    master.send(json!({"type": "device_shutdown", "device_id": "master-ws"})).await;
    client.tell("master leaving");
    let elected = client.step("elected").await;
    assert_eq!(elected["new_master_id"], "sio-till");

    client.step("offline").await;
    let mut missed = Vec::new();
    for n in 0..2 {
        writer.send(json!({"type": "device_update", "deviceId": "pc1", "data": {"customerCount": n}, "id": format!("m{n}")})).await;
        missed.push(seq(&writer.recv_until("ack").await.0));
    }
    client.tell("missed two");
    client.step("connected").await;
    let resumed = client.step("resumed").await;
    assert_eq!(resumed["missed"], json!(missed), "exactly what it missed, in order");
    client.finish();
}

#[actix_web::test]
async fn a_python_socketio_client_on_websocket_is_one_fleet_with_ws_clients() {
    one_fleet_with(Kind::Python, "websocket").await;
}

#[actix_web::test]
async fn a_python_socketio_client_on_polling_upgrades_and_is_one_fleet_with_ws_clients() {
    one_fleet_with(Kind::Python, "polling").await;
}

#[actix_web::test]
async fn a_node_socketio_client_on_websocket_is_one_fleet_with_ws_clients() {
    one_fleet_with(Kind::Node, "websocket").await;
}

#[actix_web::test]
async fn a_node_socketio_client_on_polling_upgrades_and_is_one_fleet_with_ws_clients() {
    one_fleet_with(Kind::Node, "polling").await;
}
