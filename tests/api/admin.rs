//! `/admin`: the page and its files come from the server; its live feed needs the admin token,
//! shows the fleet as it changes and the figures every second; and in a real Chromium the page
//! lists registered devices and elects the master an admin picks.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestApp, TestDevice, WsClient, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(15);

#[actix_web::test]
async fn the_page_and_its_files_come_from_the_server() {
    let app = spawn_app().await;
    let page = app.get("/admin").await;
    assert_eq!(page.status(), 200);
    assert!(page.url().path().ends_with("/admin/"), "{}", page.url());
    let policy =
        page.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert!(policy.as_deref().is_some_and(|p| p.contains("default-src 'self'")), "{policy:?}");
    let html = page.text().await.expect("the page");
    for (asset, kind) in [("app.js", "javascript"), ("app.css", "css")] {
        assert!(html.contains(&format!("\"{asset}\"")), "the page names {asset}");
        let response = app.get(&format!("/admin/{asset}")).await;
        assert_eq!(response.status(), 200, "{asset}");
        let content_type = response.headers()["content-type"].to_str().expect("type").to_owned();
        assert!(content_type.contains(kind), "{asset}: {content_type}");
        let text = response.text().await.expect("asset");
        assert!(!text.contains("http://") && !text.contains("https://"), "{asset} refers outside");
    }
    assert!(!html.contains("http://") && !html.contains("https://"), "the page refers outside");
    app.stop().await;
}

/// The events of a server-sent event stream, as (name, data).
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(app: &TestApp, token: Option<&str>) -> reqwest::Response {
        let mut request = app.http.get(app.url("/admin/events"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("GET /admin/events")
    }

    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_owned();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                return (name, serde_json::from_str(&data).expect("an event's data is JSON"));
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("an event in time")
                .expect("the stream reads")
                .expect("the stream goes on");
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next `fleet` event that `check` accepts (every event has a timeout).
    async fn fleet_until(&mut self, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..60 {
            let (name, data) = self.next().await;
            if name == "fleet" && check(&data) {
                return data;
            }
        }
        panic!("no fleet event as expected");
    }
}

fn device<'a>(fleet: &'a Value, id: &str) -> Option<&'a Value> {
    fleet["devices"].as_array()?.iter().find(|d| d["device_id"] == id)
}

#[actix_web::test]
async fn the_live_feed_needs_the_admin_token_and_follows_the_fleet() {
    let app = spawn_app_with(|s| s.auth.device_token = "device-token".into()).await;
    assert_eq!(Events::open(&app, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(Events::open(&app, Some("device-token")).await.status(), StatusCode::FORBIDDEN);
    let response = Events::open(&app, Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().expect("type").starts_with("text/event-stream"));
    let mut events = Events { response, buffer: String::new() };

    // At once: the fleet as it is (empty), then the figures.
    let (name, fleet) = events.next().await;
    assert_eq!(name, "fleet");
    assert_eq!(fleet["devices"], json!([]));
    assert_eq!(fleet["master"], Value::Null);
    assert_eq!(fleet["health"]["status"], "degraded");

    let ws = format!("{}?token=device-token", app.ws_url());
    let mut till = crate::helpers::TestDevice::from_ws(crate::helpers::WsClient::open(&ws).await, "till-1");
    till.send(
        json!({"type": "device_online", "device_id": "till-1", "device_name": "Front till", "priority": 50}),
    )
    .await;
    till.recv_until("device_online_ack").await;
    let fleet = events.fleet_until(|f| f["master"] == "till-1").await;
    let row = device(&fleet, "till-1").expect("till-1 is listed");
    assert_eq!(
        (&row["name"], &row["role"], &row["is_active"], &row["transport"]),
        (&json!("Front till"), &json!("master"), &json!(true), &json!("ws"))
    );
    assert_eq!(fleet["term"], 1);
    assert_eq!(fleet["health"]["status"], "healthy");
    assert!(fleet["elections"].as_array().is_some_and(|e| e.len() == 1), "{}", fleet["elections"]);
    assert!(fleet["audit"].as_array().is_some_and(|a| !a.is_empty()), "{}", fleet["audit"]);

    // The figures come every second.
    let figures = loop {
        let (name, data) = events.next().await;
        if name == "stats" {
            break data;
        }
    };
    assert_eq!(figures["sessions_ws"], 1, "{figures}");
    assert!(figures["received_per_second"].as_f64().is_some(), "{figures}");

    // A second device, a change it has not confirmed, and a manual election to it.
    let ws = format!("{}?token=device-token", app.ws_url());
    let mut tablet = crate::helpers::TestDevice::from_ws(crate::helpers::WsClient::open(&ws).await, "tablet");
    tablet.send(json!({"type": "device_online", "device_id": "tablet", "priority": 40})).await;
    tablet.recv_until("device_online_ack").await;
    app.create_station("pc1").await;
    let fleet =
        events.fleet_until(|f| device(f, "tablet").is_some_and(|d| d["sync_lag"].as_u64() >= Some(1))).await;
    assert_eq!(device(&fleet, "tablet").expect("tablet")["role"], "client");

    let elected = app
        .admin(reqwest::Method::POST, "/master-election")
        .json(&json!({"reason": "manual", "preferred_master": "tablet"}))
        .send()
        .await
        .expect("POST /master-election");
    assert_eq!(elected.status(), 200);
    let fleet = events.fleet_until(|f| f["master"] == "tablet").await;
    assert_eq!(fleet["term"], 2);
    assert_eq!(device(&fleet, "till-1").expect("till-1")["role"], "client");
    drop(events);
    till.close().await;
    tablet.close().await;
    app.stop().await;
}

#[actix_web::test]
async fn the_feed_ends_when_the_server_stops() {
    let app = spawn_app().await;
    let response = Events::open(&app, Some(ADMIN_TOKEN)).await;
    let mut events = Events { response, buffer: String::new() };
    events.next().await;
    let stopping = std::time::Instant::now();
    let stop = actix_web::rt::spawn(app.stop());
    // The feed ends its stream itself (the last chunk, then the end), rather than being cut
    // off with the connection when the drain timeout runs out.
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match events.response.chunk().await {
                Ok(Some(_)) => continue,
                end => return end.map(|_| ()),
            }
        }
    })
    .await
    .expect("the feed ended");
    assert!(ended.is_ok(), "the feed was cut off: {ended:?}");
    tokio::time::timeout(WAIT, stop).await.expect("the server stopped").expect("stop task");
    println!("the feed ended and the server stopped in {:?}", stopping.elapsed());
}

/// The browser driver (`tests/clients/admin_page.mjs`), one JSON line per step.
struct Browser {
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Browser {
    fn start(app: &TestApp, devices: &[&str], preferred: &str, screenshot: &str) -> Self {
        let base = app.url("");
        Self::run(
            "admin_page.mjs",
            &[base.trim_end_matches('/'), ADMIN_TOKEN, &devices.join(","), preferred, screenshot],
        )
    }

    /// Runs one of the browser scripts in `tests/clients`.
    fn run(script: &str, args: &[&str]) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
        let installed = std::path::Path::new(dir).join("node_modules/playwright-core");
        assert!(installed.exists(), "playwright-core is not installed in {dir}: run `make clients`");
        let mut child = Command::new("node")
            .arg(format!("{dir}/{script}"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the browser driver");
        let stdout = child.stdout.take().expect("stdout");
        let lines = crate::helpers::lines_of(stdout);
        Self { child, lines }
    }

    /// The driver's report of `step`.
    async fn step(&mut self, step: &str) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("the browser did not report {step} in time"))
            .unwrap_or_else(|| panic!("the browser driver ended before {step}: {:?}", self.child.try_wait()));
        let report: Value = serde_json::from_str(&line).expect("a JSON report");
        assert_eq!(report["step"], step, "{report}");
        report
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn in_a_browser_the_page_lists_the_devices_and_elects_the_chosen_master() {
    let app = spawn_app().await;
    let (till, online) = app.device("till-1", 50).await;
    assert_eq!(online["role"], "master");
    let (tablet, _) = app.device("tablet-2", 40).await;
    let (office, _) = app.device("office-pc", 30).await;

    // DEVICE_SYNC_SCREENSHOT keeps the picture (docs/admin.png is made so); otherwise it goes
    // into the test's own directory.
    let screenshot = std::env::var("DEVICE_SYNC_SCREENSHOT")
        .unwrap_or_else(|_| app.dir.path().join("admin.png").display().to_string());
    let mut browser = Browser::start(&app, &["till-1", "tablet-2", "office-pc"], "tablet-2", &screenshot);
    let opened = browser.step("opened").await;
    assert!(opened["url"].as_str().is_some_and(|u| u.ends_with("/admin/")), "{opened}");
    assert_eq!(opened["login"], true, "the page asks for the token first");
    let refused = browser.step("refused").await;
    assert!(refused["error"].as_str().is_some_and(|e| !e.is_empty()), "{refused}");

    let seen = browser.step("devices").await;
    assert_eq!(seen["master"], "till-1", "{seen}");
    let rows = seen["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{seen}");
    for row in rows {
        let expected = if row["device"] == "till-1" { "master" } else { "client" };
        assert_eq!(row["role"], expected, "{row}");
        assert_eq!(row["active"], "yes", "{row}");
    }

    let elected = browser.step("elected").await;
    assert_eq!(elected["master"], "tablet-2", "{elected}");
    // The server agrees: the page's election made tablet-2 master.
    let roles = app.get_json("/device/roles").await;
    assert_eq!(roles["master_device_id"], "tablet-2", "{roles}");
    let logs = app.election_logs("").await;
    assert_eq!(logs["logs"][0]["new_master_id"], "tablet-2", "{logs}");

    // The page enrolled a device: its token opens a session for that device, and the audit log
    // names the admin token that issued it, on the page too.
    let enrolled = browser.step("enrolled").await;
    assert_eq!(enrolled["qr"], true, "{enrolled}");
    let token = enrolled["token"].as_str().expect("token");
    let mut kiosk =
        TestDevice::from_ws(WsClient::open(&format!("{}?token={token}", app.ws_url())).await, "kiosk-9");
    let online = kiosk.request(json!({"type": "device_online", "device_id": "kiosk-9", "priority": 1})).await;
    assert_eq!(online["type"], "device_online_ack", "{online}");
    let refused = kiosk.request(json!({"type": "device_online", "device_id": "till-1", "priority": 1})).await;
    assert_eq!(refused["code"], "INSUFFICIENT_PERMISSIONS", "{refused}");
    let audit = app.admin(reqwest::Method::GET, "/sync/audit-logs?limit=50").send().await.expect("audit");
    let audit = audit.text().await.expect("body");
    assert!(
        audit.contains("by admin: term"),
        "the page's election is recorded with its token's name: {audit}"
    );
    assert!(audit.contains("token") && audit.contains("by admin"), "{audit}");
    kiosk.close().await;

    let done = browser.step("done").await;
    assert_eq!(done["token_in_urls"], 0, "the token went into a URL: {done}");
    assert_eq!(done["outside"], json!([]), "the page asked for something elsewhere: {done}");
    assert_eq!(done["problems"], json!([]), "the page reported errors: {done}");
    // Only the wrong token was refused; nothing the page asked for was missing.
    assert_eq!(done["failed"], json!([{"path": "/admin/events", "status": 401}]), "{done}");
    assert!(std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 10_000), "no screenshot at {screenshot}");
    drop(browser);
    for device in [till, tablet, office] {
        device.close().await;
    }
    app.stop().await;
}

/// docs/SECURITY.md, "Other web sites": a page on another site, in a real browser on the shop's
/// network, can neither open a session (`/ws`, Socket.IO) nor read a REST answer nor write with a
/// text/plain POST; the same page on the server's own origin opens both (the admin page's own
/// test shows the admin page still works).
#[actix_web::test]
async fn a_page_on_another_site_can_neither_connect_nor_write() {
    let app = spawn_app().await;
    let head = app.get_json("/sync/status").await["head_seq"].clone();
    let base = app.url("");
    let mut browser = Browser::run("cross_site_page.mjs", &[base.trim_end_matches('/')]);
    let other = browser.step("other").await;
    let origin = other["origin"].as_str().expect("origin");
    assert!(
        origin.starts_with("http://127.0.0.1:") && !origin.ends_with(&format!(":{}", app.port)),
        "{other}"
    );
    assert_eq!(other["ws"], "refused", "{other}");
    assert_eq!(other["socketio"], "refused", "{other}");
    assert_eq!(other["read"], "refused", "{other}");
    let own = browser.step("own").await;
    assert_eq!(own["ws"], "open", "{own}");
    assert_eq!(own["socketio"], "open", "{own}");
    assert_eq!(own["read"], "read 200", "{own}");
    // Neither page's text/plain push wrote anything: the other site's was refused for its
    // origin, the own page's for not being JSON.
    assert_eq!(app.get_json("/sync/status").await["head_seq"], head, "nothing was written");
    let devices = app.get_json("/cashier/devices").await;
    assert!(!devices.to_string().contains("intruder"), "{devices}");
    drop(browser);
    app.stop().await;
}
