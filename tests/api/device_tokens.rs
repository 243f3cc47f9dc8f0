//! Devices' own tokens (docs/SECURITY.md, "What each token allows"): issued by an admin, shown
//! once, speaking for their device only on `/ws`, Socket.IO and REST, and closing their
//! sessions (4011) when revoked. Across nodes: `several_nodes::a_revoked_token_closes_its_session_on_every_node`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestApp, TestDevice, WsClient, spawn_app_with};
use crate::socketio::Sio;

/// A server that needs a token on every session and device endpoint, with no fleet token: only
/// devices' own tokens (and the admin's) open it.
async fn spawn_locked() -> TestApp {
    spawn_app_with(|s| {
        s.auth.require_device_token = true;
        s.heartbeat.interval_s = 0.2;
        s.heartbeat.timeout_s = 2.0;
    })
    .await
}

/// Issues a token for `device` as the admin; returns it.
pub(crate) async fn issue(http: &reqwest::Client, base: &str, device: &str) -> String {
    let response = http
        .post(format!("{base}/device/{device}/tokens"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("issue");
    assert_eq!(response.status(), StatusCode::CREATED);
    let issued: Value = response.json().await.expect("JSON");
    assert_eq!(issued["device_id"], device);
    issued["token"].as_str().expect("token").to_owned()
}

async fn ws_with(app: &TestApp, token: &str) -> WsClient {
    WsClient::open(&format!("{}?token={token}", app.ws_url())).await
}

#[actix_web::test]
async fn without_a_token_nothing_opens() {
    let app = spawn_locked().await;
    let url = app.ws_url();
    let refused = tokio_tungstenite::connect_async(url.as_str()).await.expect_err("refused");
    assert!(
        matches!(&refused, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 401),
        "{refused}"
    );
    assert_eq!(app.get("/sync/status").await.status(), StatusCode::UNAUTHORIZED);
    let (_sio, answer) = Sio::join(&app, json!({})).await;
    assert!(answer.starts_with("44"), "CONNECT refused: {answer}");
    app.stop().await;
}

#[actix_web::test]
async fn a_devices_token_speaks_for_that_device_only_on_every_transport() {
    let app = spawn_locked().await;
    let base = app.url("");
    let base = base.trim_end_matches('/');
    let token = issue(&app.http, base, "till-1").await;
    assert!(token.starts_with("dst_"), "{token}");

    // /ws: registering as another device is refused; as its own, served.
    let mut ws = TestDevice::from_ws(ws_with(&app, &token).await, "till-1");
    let refused = ws.request(json!({"type": "device_online", "device_id": "till-2", "priority": 100})).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "INSUFFICIENT_PERMISSIONS", "{refused}");
    let refused = ws.request(json!({"type": "connect", "clientId": "till-2"})).await;
    assert_eq!(refused["code"], "INSUFFICIENT_PERMISSIONS", "{refused}");
    let online = ws.request(json!({"type": "device_online", "device_id": "till-1", "priority": 10})).await;
    assert_eq!(online["type"], "device_online_ack", "{online}");

    // Socket.IO: the token in the CONNECT payload.
    let (mut sio, answer) = Sio::join(&app, json!({"token": token})).await;
    assert!(answer.starts_with("40"), "joined: {answer}");
    sio.send(r#"421["device_online",{"device_id":"till-2","priority":100}]"#).await;
    let refused = sio.ack(1).await;
    assert_eq!(refused["code"], "INSUFFICIENT_PERMISSIONS", "{refused}");

    // REST: its own device's endpoints, not another's, and no admin endpoint.
    let push = |device: &str| {
        json!({"device_id": device, "events": [{"id": format!("{device}-1"), "type": "data_update",
            "table": "notes", "record_id": "n1", "data": {"by": device}}]})
    };
    let other = app.http.post(app.url("/sync/push")).bearer_auth(&token).json(&push("till-2")).send().await;
    let other = other.expect("push");
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let body: Value = other.json().await.expect("JSON");
    assert_eq!(body["code"], "INSUFFICIENT_PERMISSIONS");
    let own = app.http.post(app.url("/sync/push")).bearer_auth(&token).json(&push("till-1")).send().await;
    assert_eq!(own.expect("push").status(), StatusCode::OK);
    for path in ["/sync/state/till-2", "/sync/pull?device_id=till-2", "/sync/status?device_id=till-2"] {
        let response = app.http.get(app.url(path)).bearer_auth(&token).send().await.expect("GET");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let register = app
        .http
        .post(app.url("/device/register"))
        .bearer_auth(&token)
        .json(&json!({"device_id": "till-2", "priority": 100}))
        .send()
        .await
        .expect("register");
    assert_eq!(register.status(), StatusCode::FORBIDDEN);
    let admin = app.http.post(app.url("/device/till-1/tokens")).bearer_auth(&token).send().await;
    assert_eq!(admin.expect("issue").status(), StatusCode::FORBIDDEN);

    // Only a hash is kept: the listing shows the token's id, never the token.
    let listed = app
        .http
        .get(app.url("/device/till-1/tokens"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("body");
    assert!(!listed.contains(&token[20..]), "{listed}");
    drop(sio);
    ws.close().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_revoked_token_closes_its_sessions_and_opens_nothing_again() {
    let app = spawn_locked().await;
    let base = app.url("");
    let token = issue(&app.http, base.trim_end_matches('/'), "tablet").await;
    let other = issue(&app.http, base.trim_end_matches('/'), "till").await;
    let mut tablet = TestDevice::from_ws(ws_with(&app, &token).await, "tablet");
    tablet.request(json!({"type": "device_online", "device_id": "tablet", "priority": 10})).await;
    let mut till = TestDevice::from_ws(ws_with(&app, &other).await, "till");
    till.request(json!({"type": "device_online", "device_id": "till", "priority": 20})).await;
    let (mut sio, answer) = Sio::join(&app, json!({"token": token})).await;
    assert!(answer.starts_with("40"), "{answer}");

    let revoked = app
        .http
        .delete(app.url("/device/tablet/tokens"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(revoked.json::<Value>().await.expect("JSON")["revoked"], 1);

    let (close, _) = tablet.recv_close().await;
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4011));
    let (packets, code) = sio.closed().await;
    assert_eq!(code, Some(4011), "{packets:?}");
    // The other device's session goes on.
    till.roundtrip("still-here").await;
    let again = tokio_tungstenite::connect_async(format!("{}?token={token}", app.ws_url())).await;
    assert!(matches!(&again, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401));
    let rest = app.http.get(app.url("/sync/status")).bearer_auth(&token).send().await.expect("GET");
    assert_eq!(rest.status(), StatusCode::UNAUTHORIZED);
    let audit = app
        .http
        .get(app.url("/sync/audit-logs?limit=50"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("audit")
        .text()
        .await
        .expect("body");
    assert!(audit.contains("device_token") && audit.contains("revoke"), "{audit}");
    till.close().await;
    app.stop().await;
}

/// `device-sync token` on a running server's database: the token it prints opens a session for
/// its device, and `revoke` closes that session (4011; the server reads recent revocations
/// every half heartbeat) and shuts the token out.
#[actix_web::test]
async fn the_command_line_issues_and_revokes_beside_a_running_server() {
    let server = crate::process::Server::start(crate::process::Launch {
        settings: "require_device_token = true\n[heartbeat]\ninterval_s = 0.2\ntimeout_s = 2\n".into(),
        ..Default::default()
    });
    let config = server.dir.path().join("site.toml");
    let token = |verb: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_device-sync"))
            .args(["token", verb, "kiosk", "--config"])
            .arg(&config)
            .output()
            .expect("run device-sync token");
        assert!(out.status.success(), "token {verb}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let issued = token("issue");
    let issued = issued.trim();
    assert!(issued.starts_with("dst_"), "{issued}");
    let mut kiosk =
        TestDevice::from_ws(WsClient::open(&format!("{}?token={issued}", server.ws_url())).await, "kiosk");
    let online = kiosk.request(json!({"type": "device_online", "device_id": "kiosk", "priority": 10})).await;
    assert_eq!(online["type"], "device_online_ack", "{online}");
    assert!(token("list").contains("live"));
    assert!(token("revoke").contains("revoked 1"));
    let (close, _) = kiosk.recv_close().await;
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4011));
    let again = tokio_tungstenite::connect_async(format!("{}?token={issued}", server.ws_url())).await;
    assert!(matches!(&again, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401));
    assert!(token("list").contains("revoked"));
}

/// Every admin action is in the audit log with the name of the admin token that did it
/// (`auth.admin_tokens`), and a device's token opens no admin endpoint.
#[actix_web::test]
async fn admin_actions_are_recorded_with_the_tokens_name() {
    let alice = "alice-admin-token-0123";
    let app = spawn_app_with(|s| {
        s.auth.admin_tokens =
            vec![device_sync::settings::NamedToken { name: "alice".into(), token: alice.into() }];
    })
    .await;
    let (till, _) = app.device("till", 50).await;
    let (tablet, _) = app.device("tablet", 40).await;
    let call =
        |method: reqwest::Method, path: &str| app.http.request(method, app.url(path)).bearer_auth(alice);
    let issued = call(reqwest::Method::POST, "/device/tablet/tokens").send().await.expect("issue");
    assert_eq!(issued.status(), StatusCode::CREATED);
    let elected = call(reqwest::Method::POST, "/master-election")
        .json(&json!({"preferred_master": "tablet"}))
        .send()
        .await
        .expect("elect");
    assert_eq!(elected.status(), StatusCode::OK);
    let role = call(reqwest::Method::PUT, "/device/roles/till")
        .json(&json!({"role": "master", "reason": "opening"}))
        .send()
        .await
        .expect("role");
    assert_eq!(role.status(), StatusCode::OK);
    let station =
        call(reqwest::Method::POST, "/cashier/devices").json(&json!({"deviceId": "pc9"})).send().await;
    assert_eq!(station.expect("create").status(), StatusCode::CREATED);
    let revoked = call(reqwest::Method::DELETE, "/device/tablet/tokens").send().await.expect("revoke");
    assert_eq!(revoked.status(), StatusCode::OK);
    tablet.close().await;
    app.wait_for_sessions(1).await;
    let retired = call(reqwest::Method::DELETE, "/device/tablet").send().await.expect("retire");
    assert_eq!(retired.status(), StatusCode::NO_CONTENT);
    let audit = audit_of(&app, "admin").await;
    let admin_rows: Vec<&Value> = audit["logs"].as_array().expect("logs").iter().collect();
    let said = |operation: &str| {
        admin_rows.iter().any(|r| {
            r["operation"] == operation && r["details"].as_str().is_some_and(|d| d.starts_with("by alice"))
        })
    };
    assert!(said("master_election") && said("set_role") && said("retire_device"), "{audit}");
    assert!(said("create_station"), "{audit}");
    let tokens = audit_of(&app, "device_token").await.to_string();
    assert!(tokens.contains("by alice"), "{tokens}");
    till.close().await;
    app.stop().await;
}

/// The latest audit entries of `event_type`, read as the admin.
async fn audit_of(app: &TestApp, event_type: &str) -> Value {
    let path = format!("/sync/audit-logs?limit=100&event_type={event_type}");
    let response = app.admin(reqwest::Method::GET, &path).send().await.expect("audit");
    response.json().await.expect("JSON")
}

/// A token revoked between a Socket.IO handshake (which carried it) and the client's CONNECT
/// opens nothing: the token is checked again when the client joins.
#[actix_web::test]
async fn a_token_revoked_before_the_socketio_connect_opens_nothing() {
    let app = spawn_locked().await;
    let base = app.url("");
    let token = issue(&app.http, base.trim_end_matches('/'), "tablet").await;
    let handshake = app.url(&format!("/socket.io/?EIO=4&transport=polling&token={token}"));
    let open = app.http.get(&handshake).send().await.expect("handshake").text().await.expect("body");
    let sid = serde_json::from_str::<Value>(open.trim_start_matches('0')).expect("the open packet")["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let revoked = app.http.delete(app.url("/device/tablet/tokens")).bearer_auth(ADMIN_TOKEN).send().await;
    assert_eq!(revoked.expect("revoke").status(), StatusCode::OK);
    let session = app.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"));
    let posted = app.http.post(&session).body("40").send().await.expect("CONNECT");
    assert_eq!(posted.status(), StatusCode::OK);
    let answer = app.http.get(&session).send().await.expect("poll").text().await.expect("body");
    assert!(answer.starts_with("44"), "the CONNECT is refused: {answer}");
    app.stop().await;
}
