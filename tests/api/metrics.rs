//! `/metrics`: a Prometheus scrape whose figures move with what the fleet does.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{seq, spawn_app};

const WAIT: Duration = Duration::from_secs(10);

#[actix_web::test]
async fn the_scrape_follows_sessions_writes_and_elections() {
    let app = spawn_app().await;
    let before = app.scrape().await;
    assert_eq!(before.value("device_sync_sessions{transport=\"ws\"}"), 0.0);
    assert_eq!(before.value("device_sync_master"), 0.0);
    assert_eq!(before.value("device_sync_commit_seconds_count"), 0.0);
    // Help and type lines, and counters named with `_total`.
    assert!(before.0.contains("# TYPE device_sync_commit_seconds histogram"), "{}", before.0);
    assert!(before.0.contains("# UNIT device_sync_commit_seconds seconds"), "{}", before.0);

    app.create_station("pc1").await;
    let (mut till, online) = app.device("till-1", 50).await;
    assert_eq!(online["role"], "master");
    let mut reader = app.connect("reader").await;
    till.send(json!({"type": "device_update", "deviceId": "pc1", "data": {"customerCount": 2}, "id": "u1"}))
        .await;
    let (ack, _) = till.recv_until("ack").await;
    let (update, _) = reader.recv_until("device_updated").await;
    assert_eq!(seq(&update), seq(&ack));

    let after = app.scrape().await;
    assert_eq!(after.value("device_sync_sessions{transport=\"ws\"}"), 2.0);
    assert_eq!(after.value("device_sync_sessions{transport=\"socketio\"}"), 0.0);
    assert_eq!((after.value("device_sync_master"), after.value("device_sync_term")), (1.0, 1.0));
    assert_eq!(after.value("device_sync_elections_total{reason=\"no_master\",outcome=\"elected\"}"), 1.0);
    assert_eq!(after.value("device_sync_head_seq"), seq(&ack) as f64);
    assert_eq!(after.value("device_sync_messages_received_total{type=\"device_update\"}"), 1.0);
    assert_eq!(after.value("device_sync_messages_received_total{type=\"device_online\"}"), 1.0);
    assert!(after.value("device_sync_messages_sent_total{type=\"device_updated\"}") >= 1.0);
    assert!(after.value("device_sync_messages_sent_total{type=\"ack\"}") >= 1.0);
    // The station's creation, the registration and the update were committed.
    assert!(after.value("device_sync_commit_seconds_count") >= 3.0);
    assert_eq!(
        after.value("device_sync_commit_seconds_count"),
        after.value("device_sync_commit_writes_count")
    );
    assert!(after.value("device_sync_broadcast_seconds_count") >= 1.0);
    // The device confirmed nothing yet: it is behind by every change.
    assert_eq!(after.value("device_sync_sync_lag{device=\"till-1\"}"), seq(&ack) as f64);

    till.send(json!({"type": "sync_complete", "device_id": "till-1", "last_seq": seq(&ack), "id": "c"}))
        .await;
    till.recv_until("sync_complete_ack").await;
    let confirmed = app.scrape().await;
    assert_eq!(confirmed.value("device_sync_sync_lag{device=\"till-1\"}"), 0.0);

    // A frame that is not JSON is counted too, under `other`.
    reader.send_text("not json").await;
    reader.recv_until("error").await;
    let last = app.scrape().await;
    assert_eq!(last.value("device_sync_messages_received_total{type=\"other\"}"), 1.0);
    assert!(last.value("device_sync_messages_sent_total{type=\"error\"}") >= 1.0);
}

#[actix_web::test]
async fn a_socket_io_session_is_counted_by_its_transport_and_a_failed_election_by_its_reason() {
    let app = spawn_app().await;
    let (mut office, _) = app.device("office", 90).await;
    let (mut till, _) = app.device("till-1", 50).await;
    // till-1 declines to become master: with it the only candidate, the election fails.
    till.confirm_role_changes(false);
    office.send(json!({"type": "device_shutdown", "device_id": "office"})).await;
    let (failed, _) = till.recv_until("error").await;
    assert_eq!(failed["code"], "ELECTION_FAILED");
    // A Socket.IO session joins.
    let url = format!("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket", app.port);
    let (mut sio, _) = tokio_tungstenite::connect_async(url).await.expect("a Socket.IO session");
    sio.send(Message::text("40")).await.expect("CONNECT");
    let joined = tokio::time::timeout(WAIT, async {
        while let Some(Ok(frame)) = sio.next().await {
            if frame.to_text().is_ok_and(|t| t.starts_with("40")) {
                return true;
            }
        }
        false
    });
    assert!(joined.await.expect("joined in time"), "the CONNECT is answered");

    let scrape = app.scrape().await;
    assert_eq!(scrape.value("device_sync_elections_total{reason=\"shutdown\",outcome=\"failed\"}"), 1.0);
    assert_eq!(scrape.value("device_sync_master"), 0.0);
    assert_eq!(scrape.value("device_sync_sessions{transport=\"ws\"}"), 2.0);
    assert_eq!(scrape.value("device_sync_sessions{transport=\"socketio\"}"), 1.0);
}
