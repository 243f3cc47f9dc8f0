//! A client that stops reading is cut off (4008) without holding anyone else up.

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{seq, spawn_app_with};

#[actix_web::test]
async fn a_client_that_stops_reading_is_closed_with_4008_and_the_others_get_everything() {
    let app = spawn_app_with(|s| {
        s.limits.session_queue = 8;
        s.limits.messages_per_second = 100_000;
        // Long enough that neither the idle timeout nor the kernel's dead-peer timeout (which
        // follows the heartbeat timeout) ends the stalled connection before it reads again.
        s.heartbeat.timeout_s = 60.0;
        s.limits.idle_timeout_s = 60.0;
    })
    .await;
    app.create_station("pc1").await;
    let mut stuck = app.connect("stuck").await;
    let mut reader = app.connect("reader").await;
    let mut writer = app.connect("writer").await;
    app.wait_for_sessions(3).await;

    // Large frames fill the stuck client's socket buffers quickly; then its queue fills.
    let notes = "n".repeat(60_000);
    let writes = 400;
    for i in 0..writes {
        writer
            .send(json!({"type": "device_update", "id": format!("w{i}"), "deviceId": "pc1", "data": {"notes": notes, "elapsedSeconds": i}}))
            .await;
        writer.expect("ack").await;
        let frame = reader.expect("device_updated").await;
        assert_eq!(frame["data"]["elapsedSeconds"], i);
    }
    app.wait_for_sessions(2).await;

    // What the stuck client's socket had taken, then the close.
    let (close, before) = stuck.recv_close().await;
    let close = close.expect("a close frame");
    assert_eq!(close.code, CloseCode::Library(4008));
    assert_eq!(close.reason.as_str(), "slow consumer");
    assert!(before.len() < writes as usize, "it was cut off before the end ({} frames)", before.len());
    let seqs: Vec<u64> = before.iter().map(seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "what it got was in order and gap-free");
    assert!(writer.roundtrip("w").await.is_empty());
}

#[actix_web::test]
async fn a_client_behind_by_more_than_the_byte_bound_is_closed_with_4008() {
    let app = spawn_app_with(|s| {
        s.limits.session_queue = 1_000_000;
        s.limits.session_queue_bytes = 2 * 1024 * 1024;
        s.heartbeat.timeout_s = 60.0;
        s.limits.idle_timeout_s = 60.0;
    })
    .await;
    let mut stuck = app.connect("stuck").await;
    let mut reader = app.connect("reader").await;
    app.wait_for_sessions(2).await;
    // 1 MB catalogue broadcasts: a few fill the stuck client's socket buffers, two more pass
    // the 2 MiB bound.
    let document = serde_json::Value::Array(vec![json!("c".repeat(65_000)); 15]).to_string();
    let mut sent = 0;
    while app.health().await["sessions"] != 1 {
        assert!(sent < 200, "still open after {sent} MB");
        let response = app
            .admin(reqwest::Method::PUT, "/cashier/categories")
            .header("content-type", "application/json")
            .body(document.clone())
            .send()
            .await
            .expect("PUT");
        assert_eq!(response.status(), 200);
        reader.expect("categories_updated").await;
        sent += 1;
    }
    let (close, before) = stuck.recv_close().await;
    assert_eq!(close.expect("a close frame").code, CloseCode::Library(4008));
    assert!(before.len() < sent, "it was cut off ({} of {sent})", before.len());
}
