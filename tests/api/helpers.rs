//! The test harness: `spawn_app()` starts a real server on port 0 with its own database and
//! short timings (an SQLite file in its directory, or, when `DEVICE_SYNC_TEST_POSTGRES` names a
//! Postgres server, a database of its own there: see `database_url`); `WsClient` is a real WebSocket client over loopback whose every wait has a
//! timeout and whose every received frame is checked for the server's timestamp format.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use device_sync::app::{Application, ShutdownHandle, WorkerThreads};
use device_sync::settings::{LogFormat, LogSettings, Settings};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// The admin token every test server uses.
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub port: u16,
    /// The running server's shared state (its actors' addresses), for fault injection.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    pub state: device_sync::http::state::AppState,
    pub dir: Arc<TempDir>,
    pub http: reqwest::Client,
    shutdown: ShutdownHandle,
    /// `None` once stopped.
    handle: Option<actix_web::rt::task::JoinHandle<std::io::Result<()>>>,
    workers: WorkerThreads,
}

/// Settings for a test server in `dir`: port 0, its own database, short timings.
pub fn test_settings(dir: &TempDir) -> Settings {
    let mut s = Settings::defaults().expect("built-in defaults");
    s.server.port = 0;
    s.server.data_dir = dir.path().join("data");
    s.database.url = database_url(dir);
    s.auth.admin_token = ADMIN_TOKEN.into();
    s.heartbeat.interval_s = 0.2;
    s.heartbeat.timeout_s = 2.0;
    s.limits.idle_timeout_s = 5.0;
    s.election.ack_timeout_s = 1.0;
    s.election.backoff_ms = vec![50, 100, 200];
    s.election.reconnect_grace_s = 0.5;
    // On Postgres: a server killed and started again on its database waits this long for the
    // election lease its previous run held.
    s.cluster.lease_ttl_s = 2.0;
    s
}

/// The test database file in `dir` (SQLite).
pub fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("device-sync.db")
}

/// The Postgres server the suite runs against instead of SQLite, if any: the URL of a database
/// there that may create databases (`make test-postgres` starts a throwaway server and sets it).
pub fn postgres_server() -> Option<String> {
    std::env::var("DEVICE_SYNC_TEST_POSTGRES").ok().filter(|url| !url.is_empty())
}

/// The URL of the test database that belongs to `dir`: the SQLite file in it, or on Postgres a
/// database created for `dir` the first time it is asked for (its name is kept in the directory,
/// so a server restarted on `dir` finds the same database).
pub fn database_url(dir: &TempDir) -> String {
    let Some(server) = postgres_server() else {
        return format!("sqlite://{}?mode=rwc", db_path(dir).display());
    };
    let marker = dir.path().join("postgres-database");
    let name = match std::fs::read_to_string(&marker) {
        Ok(name) => name,
        Err(_) => {
            let name = fresh_database_name();
            create_postgres_database(&server, &name);
            std::fs::write(&marker, &name).expect("note the test database's name");
            name
        }
    };
    let (base, _) = server.rsplit_once('/').expect("a Postgres URL ends with its database");
    format!("{base}/{name}")
}

/// A database name no other test of any run has used: the process, the time and a counter.
fn fresh_database_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("test_{}_{nanos}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Creates database `name` on the Postgres server at `server`, from a thread of its own (so that
/// sync and async callers alike can ask for it).
fn create_postgres_database(server: &str, name: &str) {
    let server = server.to_owned();
    let sql = format!("CREATE DATABASE \"{name}\"");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let db = sea_orm::Database::connect(&server).await.expect("connect to the test Postgres");
            sea_orm::ConnectionTrait::execute_unprepared(&db, &sql).await.expect("create a test database");
            db.close().await.expect("close");
        });
    })
    .join()
    .expect("the database is created");
}

/// Starts a server with the test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server with the test settings changed by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    spawn_app_in(dir, configure).await
}

/// Starts a server on the database in `dir` (e.g. again, after `stop`).
pub async fn spawn_app_in(dir: Arc<TempDir>, configure: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        device_sync::telemetry::init(&LogSettings { level: "debug".into(), format: LogFormat::Text });
    }
    let mut settings = test_settings(&dir);
    configure(&mut settings);
    let app = Application::build(settings).await.expect("the server starts");
    let port = app.port();
    let state = app.state();
    let shutdown = app.shutdown_handle();
    let workers = app.worker_threads();
    let handle = Some(actix_web::rt::spawn(app.run_until_stopped()));
    let http = reqwest::Client::builder().timeout(WAIT).build().expect("http client");
    TestApp { port, state, dir, http, shutdown, handle, workers }
}

/// Every test server, when its test is done with it, must be idle and answer (`idle`).
impl Drop for TestApp {
    fn drop(&mut self) {
        if self.handle.is_some() && !std::thread::panicking() {
            crate::idle::assert_idle(self.port, &crate::idle::Cpu::Threads(self.workers.clone()));
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// Shuts the server down as SIGTERM would and waits for it; returns its directory so a
    /// test can start it again on the same database.
    pub async fn stop(mut self) -> Arc<TempDir> {
        let (port, cpu) = (self.port, crate::idle::Cpu::Threads(self.workers.clone()));
        actix_web::rt::task::spawn_blocking(move || crate::idle::assert_idle(port, &cpu))
            .await
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
        self.shutdown.shutdown();
        let handle = self.handle.take().expect("a running server");
        let result = tokio::time::timeout(WAIT, handle).await.expect("the server stops in time");
        result.expect("the server task").expect("the server stops cleanly");
        Arc::clone(&self.dir)
    }

    /// Opens a WebSocket without saying anything.
    pub async fn open(&self) -> WsClient {
        WsClient::open(&self.ws_url()).await
    }

    /// Opens a WebSocket and sends `connect` (with `last_seq`/`epoch` when given), reading up to
    /// and including `connected`; returns the client and the `connected` frame.
    pub async fn connect_as(&self, client_id: &str) -> (WsClient, Value) {
        let mut ws = self.open().await;
        ws.send(json!({"type": "connect", "clientId": client_id})).await;
        let connected = ws.expect("connected").await;
        (ws, connected)
    }

    /// `connect_as`, also reading the `connection_status` that follows.
    pub async fn connect(&self, client_id: &str) -> WsClient {
        let (mut ws, _) = self.connect_as(client_id).await;
        ws.expect("connection_status").await;
        ws
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.expect("JSON body")
    }

    /// An admin request.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(ADMIN_TOKEN)
    }

    /// Creates a station over REST (admin) and returns its `seq`.
    pub async fn create_station(&self, id: &str) -> u64 {
        let response = self
            .admin(reqwest::Method::POST, "/cashier/devices")
            .json(&json!({"deviceId": id}))
            .send()
            .await
            .expect("POST /cashier/devices");
        assert_eq!(response.status(), 201, "creating {id}");
        let body: Value = response.json().await.expect("JSON body");
        body["seq"].as_u64().expect("seq")
    }

    /// The station as REST returns it, or `None` (404).
    pub async fn station(&self, id: &str) -> Option<Value> {
        let response = self.get(&format!("/cashier/devices/{id}")).await;
        match response.status().as_u16() {
            200 => Some(response.json().await.expect("JSON body")),
            404 => None,
            other => panic!("GET station {id}: {other}"),
        }
    }

    /// A scrape of `/metrics`.
    pub async fn scrape(&self) -> Scrape {
        let response = self.get("/metrics").await;
        assert_eq!(response.status(), 200);
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
        let text = response.text().await.expect("the scrape");
        assert!(text.ends_with("# EOF\n"), "a whole OpenMetrics exposition: {text}");
        Scrape(text)
    }

    pub async fn health(&self) -> Value {
        self.get("/system/health").await.json().await.expect("health JSON")
    }

    /// Waits until `/system/health` reports `sessions` open sessions.
    pub async fn wait_for_sessions(&self, sessions: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let seen = self.health().await["sessions"].as_u64();
            if seen == Some(sessions) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sessions stayed at {seen:?}, expected {sessions}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What a client got instead of a text frame.
#[derive(Debug)]
pub enum Received {
    Text(Value),
    Closed(Option<CloseFrame>),
}

/// A WebSocket client over loopback.
pub struct WsClient {
    pub(crate) stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    pub async fn open(url: &str) -> Self {
        let (stream, _) = tokio::time::timeout(WAIT, connect_async(url))
            .await
            .expect("connect in time")
            .expect("WebSocket upgrade");
        Self { stream }
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(Message::text(text)).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        tokio::time::timeout(WAIT, self.stream.send(message)).await.expect("send in time").expect("send");
    }

    /// The next text frame or the close, skipping pings and pongs (within `WAIT` in all: pings
    /// alone do not keep it waiting).
    pub async fn next(&mut self) -> Received {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next()).await.expect("a frame in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("a JSON frame");
                    check_timestamp(&value);
                    return Received::Text(value);
                }
                Some(Ok(Message::Close(frame))) => return Received::Closed(frame),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("the server sent a binary frame"),
                Some(Err(err)) => panic!("WebSocket error: {err}"),
                None => return Received::Closed(None),
            }
        }
    }

    /// The next text frame as JSON.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Received::Text(value) => value,
            Received::Closed(frame) => panic!("closed instead of a message: {frame:?}"),
        }
    }

    /// The next text frame, which must be of type `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let value = self.recv().await;
        assert_eq!(value["type"], kind, "expected {kind}, got {value}");
        value
    }

    /// Reads until a frame of type `kind` (within `WAIT` in all), returning it and everything
    /// before it.
    pub async fn recv_until(&mut self, kind: &str) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        let reading = async {
            loop {
                let value = self.recv().await;
                if value["type"] == kind {
                    return value;
                }
                before.push(value);
            }
        };
        match tokio::time::timeout(WAIT, reading).await {
            Ok(value) => (value, before),
            Err(_) => panic!("no {kind} in time; got {before:?}"),
        }
    }

    /// Reads until the server closes (within `WAIT` in all), returning the close frame and the
    /// text frames before it.
    pub async fn recv_close(&mut self) -> (Option<CloseFrame>, Vec<Value>) {
        let mut before = Vec::new();
        let reading = async {
            loop {
                match self.next().await {
                    Received::Text(value) => before.push(value),
                    Received::Closed(frame) => return frame,
                }
            }
        };
        match tokio::time::timeout(WAIT, reading).await {
            Ok(frame) => (frame, before),
            Err(_) => panic!("not closed in time; got {} frames", before.len()),
        }
    }

    /// Sends `ping` with an id and reads up to its `pong`: proof the session is usable, and
    /// that nothing was queued for this client before the pong (those frames are returned).
    pub async fn roundtrip(&mut self, id: &str) -> Vec<Value> {
        self.send(json!({"type": "ping", "id": id})).await;
        let (pong, before) = self.recv_until("pong").await;
        assert_eq!(pong["reply_to"], id);
        before
    }

    /// Closes the connection from the client side.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(WAIT, self.stream.close(None)).await;
    }

    /// The raw stream, for tests that misbehave on purpose.
    pub fn stream(&mut self) -> &mut WebSocketStream<MaybeTlsStream<TcpStream>> {
        &mut self.stream
    }
}

/// Every server message carries `timestamp`: RFC 3339, UTC, milliseconds, `Z`.
pub fn check_timestamp(value: &Value) {
    let ts = value["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp in {value}"));
    assert!(is_server_time(ts), "timestamp {ts} is not RFC 3339 UTC with milliseconds and Z");
}

/// `2026-02-03T02:25:33.123Z`.
pub fn is_server_time(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() == 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && b[23] == b'Z'
        && chrono::DateTime::parse_from_rfc3339(ts).is_ok()
}

/// One scrape of `/metrics`, in the OpenMetrics text format.
pub struct Scrape(pub String);

impl Scrape {
    /// The value of one series, named with its labels as the exposition writes them
    /// (`device_sync_sessions{transport="ws"}`); `None` when the series is not there.
    pub fn get(&self, series: &str) -> Option<f64> {
        self.0.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
    }

    /// The value of a series that must be there.
    pub fn value(&self, series: &str) -> f64 {
        self.get(series).unwrap_or_else(|| panic!("no {series} in the scrape:\n{}", self.0))
    }
}

/// The `seq` of a frame.
pub fn seq(value: &Value) -> u64 {
    value["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {value}"))
}

/// A device: a WebSocket session registered with `device_online`, read continuously by a task
/// of its own as a real device would (so it answers pings), which confirms every `role_change`
/// that makes it master unless told not to, and hands every frame to the test.
pub struct TestDevice {
    pub id: String,
    frames: tokio::sync::mpsc::UnboundedReceiver<Received>,
    commands: tokio::sync::mpsc::UnboundedSender<DeviceCommand>,
    confirms: Arc<std::sync::atomic::AtomicBool>,
    task: actix_web::rt::task::JoinHandle<()>,
}

enum DeviceCommand {
    Send(Message),
    /// Stop reading (and so stop answering pings) until `Resume`.
    Pause,
    Resume,
}

impl TestApp {
    /// Registers a device with this priority; returns it and its `device_online_ack`.
    pub async fn device(&self, id: &str, priority: i64) -> (TestDevice, Value) {
        self.device_with(json!({"type": "device_online", "device_id": id, "priority": priority})).await
    }

    /// Registers a device with this `device_online` message.
    pub async fn device_with(&self, online: Value) -> (TestDevice, Value) {
        let id = online["device_id"].as_str().expect("device_id").to_owned();
        let mut device = TestDevice::start(self.open().await, id);
        device.send(online).await;
        let (ack, _) = device.recv_until("device_online_ack").await;
        (device, ack)
    }

    /// `/sync/master-election-logs` as JSON.
    pub async fn election_logs(&self, query: &str) -> Value {
        self.get_json(&format!("/sync/master-election-logs{query}")).await
    }
}

impl TestDevice {
    /// Opens a session for device `id` without registering it.
    pub async fn connect(app: &TestApp, id: &str) -> Self {
        Self::start(app.open().await, id.to_owned())
    }

    /// Reads `ws` as device `id` would (without registering it).
    pub fn from_ws(ws: WsClient, id: &str) -> Self {
        Self::start(ws, id.to_owned())
    }

    fn start(ws: WsClient, id: String) -> Self {
        use std::sync::atomic::Ordering;
        let (frame_tx, frames) = tokio::sync::mpsc::unbounded_channel();
        let (commands, mut command_rx) = tokio::sync::mpsc::unbounded_channel();
        let confirms = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (me, confirm) = (id.clone(), Arc::clone(&confirms));
        let mut stream = ws.stream;
        let task = actix_web::rt::spawn(async move {
            let mut reading = true;
            loop {
                tokio::select! {
                    command = command_rx.recv() => match command {
                        Some(DeviceCommand::Send(m)) => { let _ = stream.send(m).await; }
                        Some(DeviceCommand::Pause) => reading = false,
                        Some(DeviceCommand::Resume) => reading = true,
                        None => return,
                    },
                    frame = stream.next(), if reading => {
                        let received = match frame {
                            Some(Ok(Message::Text(text))) => {
                                let value: Value = serde_json::from_str(&text).expect("a JSON frame");
                                check_timestamp(&value);
                                if confirm.load(Ordering::SeqCst)
                                    && value["type"] == "role_change"
                                    && value["device_id"] == me.as_str()
                                    && value["new_role"] == "master"
                                {
                                    let ack = json!({"type": "role_change_ack", "device_id": me, "new_role": "master",
                                        "status": "success", "election_id": value["election_id"]});
                                    let _ = stream.send(Message::text(ack.to_string())).await;
                                }
                                Received::Text(value)
                            }
                            Some(Ok(Message::Close(frame))) => Received::Closed(frame),
                            Some(Ok(_)) => continue,
                            Some(Err(_)) | None => Received::Closed(None),
                        };
                        let closed = matches!(received, Received::Closed(_));
                        if frame_tx.send(received).is_err() || closed {
                            return;
                        }
                    }
                }
            }
        });
        Self { id, frames, commands, confirms, task }
    }

    /// Whether to confirm `role_change` to master (a device that does not, never becomes one).
    pub fn confirm_role_changes(&self, confirm: bool) {
        self.confirms.store(confirm, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops reading: the device falls silent (no frames, no pongs).
    pub fn go_silent(&self) {
        let _ = self.commands.send(DeviceCommand::Pause);
    }

    /// Reads again.
    pub fn resume(&self) {
        let _ = self.commands.send(DeviceCommand::Resume);
    }

    pub async fn send(&mut self, message: Value) {
        let _ = self.commands.send(DeviceCommand::Send(Message::text(message.to_string())));
    }

    /// The next frame or the close.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.frames.recv())
            .await
            .expect("a frame in time")
            .unwrap_or(Received::Closed(None))
    }

    /// The next text frame.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Received::Text(value) => value,
            Received::Closed(frame) => panic!("{} was closed: {frame:?}", self.id),
        }
    }

    /// Reads until a frame of type `kind`; returns it and the frames before it.
    pub async fn recv_until(&mut self, kind: &str) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return (frame, before);
            }
            before.push(frame);
        }
    }

    /// Sends `message` with a fresh `id` and returns the frame that answers it.
    pub async fn request(&mut self, message: Value) -> Value {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = format!("r-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.request_with_id(message, &id).await
    }

    /// Sends `message` with this `id` and returns the frame that answers it.
    pub async fn request_with_id(&mut self, mut message: Value, id: &str) -> Value {
        message["id"] = json!(id);
        self.send(message).await;
        loop {
            let frame = self.recv().await;
            if frame["reply_to"] == id {
                return frame;
            }
        }
    }

    /// Reads until `master_elected`.
    pub async fn elected(&mut self) -> Value {
        self.recv_until("master_elected").await.0
    }

    /// Reads until the close, returning it and the text frames before it.
    pub async fn recv_close(&mut self) -> (Option<CloseFrame>, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            match self.next().await {
                Received::Text(value) => before.push(value),
                Received::Closed(frame) => return (frame, before),
            }
        }
    }

    /// Sends `ping` with an id and reads up to its `pong`, returning what came before.
    pub async fn roundtrip(&mut self, id: &str) -> Vec<Value> {
        self.send(json!({"type": "ping", "id": id})).await;
        let (pong, before) = self.recv_until("pong").await;
        assert_eq!(pong["reply_to"], id);
        before
    }

    /// Closes the connection with a close handshake.
    pub async fn close(mut self) {
        let _ = self.commands.send(DeviceCommand::Send(Message::Close(None)));
        let _ = tokio::time::timeout(WAIT, &mut self.task).await;
    }
}

impl Drop for TestDevice {
    /// A dropped device vanishes without a close handshake.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The lines a child process writes, as they come (read on a thread of their own, so that a
/// test waits on them with a timeout).
pub fn lines_of(stdout: std::process::ChildStdout) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    use std::io::BufRead;
    let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// A program of the tests' Python tools (`make clients`: python-socketio's client, schemathesis,
/// openapi-spec-validator), from the virtualenv beside `DEVICE_SYNC_PYTHON`.
pub fn python_tool(name: &str) -> PathBuf {
    let python = std::env::var_os("DEVICE_SYNC_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/device-sync/clients/venv/bin/python")
    });
    let path = python.with_file_name(name);
    assert!(path.exists(), "{} is not installed: run `make clients`", path.display());
    path
}
