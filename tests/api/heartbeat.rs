//! Liveness: the server pings, a client that answers stays, a silent one is closed, closed
//! sessions leave the registry, and the connection limit holds.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{WAIT, spawn_app, spawn_app_with};

#[actix_web::test]
async fn the_server_pings_every_interval() {
    let app = spawn_app_with(|s| s.heartbeat.interval_s = 0.1).await;
    let mut ws = app.open().await;
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(Ok(Message::Ping(_)))) =
            tokio::time::timeout(Duration::from_millis(300), ws.stream().next()).await
        {
            pings += 1;
        }
    }
    assert!(pings >= 3, "{pings} pings in a second at a 0.1 s interval");
}

#[actix_web::test]
async fn a_client_that_answers_pings_outlives_the_idle_timeout() {
    let app = spawn_app_with(|s| {
        s.heartbeat.interval_s = 0.1;
        s.limits.idle_timeout_s = 0.5;
    })
    .await;
    let mut ws = app.connect("steady").await;
    // Reading answers the server's pings (the client library pongs as it reads).
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    while tokio::time::Instant::now() < until {
        match tokio::time::timeout(Duration::from_millis(50), ws.stream().next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => panic!("closed while answering pings: {frame:?}"),
            Ok(None) => panic!("connection ended"),
            _ => {}
        }
    }
    assert!(ws.roundtrip("alive").await.is_empty());
}

#[actix_web::test]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(|s| {
        s.heartbeat.interval_s = 0.1;
        s.limits.idle_timeout_s = 0.4;
    })
    .await;
    let mut ws = app.connect("silent").await;
    // Say nothing and read nothing (so no pong either) until the server has given up.
    app.wait_for_sessions(0).await;
    let (close, _) = ws.recv_close().await;
    let close = close.expect("a close frame");
    assert_eq!(close.code, CloseCode::Library(4000));
    assert_eq!(close.reason.as_str(), "idle timeout");
}

#[actix_web::test]
async fn closed_clients_are_removed_from_the_registry() {
    let app = spawn_app().await;
    let a = app.connect("a").await;
    let b = app.connect("b").await;
    let c = app.connect("c").await;
    app.wait_for_sessions(3).await;
    b.close().await;
    app.wait_for_sessions(2).await;
    drop(a); // dropped without a close handshake: the TCP connection just ends
    app.wait_for_sessions(1).await;
    c.close().await;
    app.wait_for_sessions(0).await;
}

#[actix_web::test]
async fn past_max_connections_the_upgrade_gets_503() {
    let app = spawn_app_with(|s| s.limits.max_connections = 2).await;
    let _a = app.connect("a").await;
    let _b = app.connect("b").await;
    let refused =
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(app.ws_url())).await.expect("in time");
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected a 503, got {other:?}"),
    }
    drop(_a);
    app.wait_for_sessions(1).await;
    let _c = app.connect("c").await;
}
