//! Shutdown: no more writes are taken, everything acknowledged is committed, and every
//! session is closed with 1001 after the frames already queued for it.

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{seq, spawn_app_in, spawn_app_with};

#[actix_web::test]
async fn shutdown_closes_sessions_with_1001_and_keeps_every_acknowledged_write() {
    let app = spawn_app_with(|s| s.limits.messages_per_second = 100_000).await;
    let created = app.create_station("pc1").await;
    let mut writer = app.connect("writer").await;
    let mut listener = app.connect("listener").await;
    let sent = 200;
    for i in 0..sent {
        writer.send(json!({"type": "device_update", "id": format!("w{i}"), "deviceId": "pc1", "data": {"elapsedSeconds": i}})).await;
    }
    // Stop while writes are still arriving: some are committed, the rest refused or unread.
    let mut frames = Vec::new();
    for _ in 0..20 {
        frames.push(writer.expect("ack").await);
    }
    // The clients keep reading while the server stops, as clients do.
    let (dir, (close, rest), (listener_close, heard)) =
        tokio::join!(app.stop(), writer.recv_close(), listener.recv_close());
    frames.extend(rest);
    assert_eq!(close.expect("a close frame").code, CloseCode::Away);
    let acked: Vec<u64> = frames
        .iter()
        .filter(|f| f["type"] == "ack")
        .map(|f| f["reply_to"].as_str().and_then(|r| r[1..].parse().ok()).expect("w<i>"))
        .collect();
    assert!(frames.iter().all(|f| f["type"] == "ack" || f["code"] == "SERVER_ERROR"), "acks, then refusals");
    assert_eq!(acked, (0..acked.len() as u64).collect::<Vec<_>>(), "acknowledged in the order sent");
    assert!(acked.len() >= 20 && acked.len() <= sent as usize);
    assert_eq!(listener_close.expect("a close frame").code, CloseCode::Away);
    assert_eq!(heard.len(), acked.len(), "every committed change reached the listener before its close");

    let app = spawn_app_in(dir, |_| {}).await;
    let head = app.health().await["head_seq"].as_u64().expect("head");
    assert_eq!(head, created + acked.len() as u64, "every acknowledged write, and nothing else");
    let stored = app.station("pc1").await.expect("pc1");
    if let Some(last) = acked.last() {
        assert_eq!(stored["data"]["elapsedSeconds"].as_u64(), Some(*last));
        assert_eq!(seq(heard.last().expect("frames")), head);
    }
}
