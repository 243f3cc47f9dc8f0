//! What a client gets before it has shown a token (docs/SECURITY.md, "Before authentication,
//! little is held"): Socket.IO sessions not yet joined hold slots of their own
//! (`limits.max_anonymous`) for `socketio.connect_timeout_s` at most, so a flood of anonymous
//! handshakes cannot take the devices' slots; and one address making too many requests gets 429
//! with `Retry-After`.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestDevice, WAIT, WsClient, spawn_app_with};

#[actix_web::test]
async fn ten_thousand_anonymous_handshakes_leave_ws_open_to_devices() {
    let app = spawn_app_with(|s| {
        s.limits.max_anonymous = 256;
        s.socketio.connect_timeout_s = 5.0;
    })
    .await;
    let url = app.url("/socket.io/?EIO=4&transport=polling");
    let http = reqwest::Client::builder().timeout(WAIT).pool_max_idle_per_host(64).build().expect("client");
    let statuses: Vec<u16> = futures_util::stream::iter(0..10_000)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(&url).send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let opened = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(opened + refused, 10_000, "every handshake answered, 200 or 503");
    assert!(refused > 0 && opened >= 256, "opened {opened}, refused {refused}");
    assert!(app.state.anonymous.open() <= 256);

    // The devices' slots are untouched: a device connects and registers over /ws.
    let mut till = TestDevice::from_ws(WsClient::open(&app.ws_url()).await, "till");
    let online = till.request(json!({"type": "device_online", "device_id": "till", "priority": 10})).await;
    assert_eq!(online["type"], "device_online_ack", "{online}");

    // Never joined, the anonymous sessions are closed after the connect timeout, and a client
    // that joins is served again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.state.anonymous.open() > 0 {
        assert!(Instant::now() < deadline, "{} anonymous sessions left", app.state.anonymous.open());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_sio, answer) = crate::socketio::Sio::join(&app, json!({})).await;
    assert!(answer.starts_with("40"), "joined: {answer}");
    assert_eq!(app.state.anonymous.open(), 0, "a joined session holds a device's slot");
    till.close().await;
    app.wait_for_sessions(1).await;
}

#[actix_web::test]
async fn one_address_past_its_rate_gets_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.limits.requests_per_second_per_address = 2;
        s.limits.request_burst_per_address = 5;
        s.limits.rate_limit_loopback = true;
    })
    .await;
    let mut limited = None;
    for _ in 0..20 {
        let response = app.get("/system/health").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("a 429 within 20 quick requests");
    let retry: u64 = limited.headers()["retry-after"].to_str().expect("text").parse().expect("seconds");
    let body: Value = limited.json().await.expect("JSON");
    assert_eq!(body["code"], "RATE_LIMITED", "{body}");
    // Upgrades count too.
    let upgrade = tokio_tungstenite::connect_async(app.ws_url()).await;
    assert!(
        matches!(&upgrade, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 429),
        "{upgrade:?}"
    );
    tokio::time::sleep(Duration::from_secs(retry.max(1))).await;
    assert_eq!(app.get("/system/health").await.status(), StatusCode::OK, "served again after Retry-After");
}

/// One address holds at most `limits.max_anonymous_per_address` sessions that have not joined,
/// so it cannot fill the pool alone; a handshake whose token opens a session does not wait in
/// that pool at all.
#[actix_web::test]
async fn one_address_holds_a_few_anonymous_sessions_and_a_token_skips_the_queue() {
    let app = spawn_app_with(|s| {
        s.auth.device_token = "the-fleet-token".into();
        s.limits.max_anonymous_per_address = 4;
        s.limits.rate_limit_loopback = true;
        s.socketio.connect_timeout_s = 30.0;
    })
    .await;
    let url = app.url("/socket.io/?EIO=4&transport=polling");
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(app.http.get(&url).send().await.expect("handshake").status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 4, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 6, "{statuses:?}");
    let with_token = app.http.get(format!("{url}&token=the-fleet-token")).send().await.expect("handshake");
    assert_eq!(with_token.status(), 200, "a device with its token is not held up by the anonymous ones");
    assert_eq!(app.state.anonymous.open(), 4);
}
