//! A client that stops reading is cut off (4008) without holding anyone else up.

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{seq, spawn_app_with};

#[actix_web::test]
async fn clients_that_stop_reading_are_closed_with_4008_after_a_gap_free_prefix_and_resume_exactly() {
    let app = spawn_app_with(|s| {
        s.limits.session_queue = 8;
        s.limits.messages_per_second = 100_000;
        // Long enough that neither the idle timeout nor the kernel's dead-peer timeout (which
        // follows the heartbeat timeout) ends the stalled connections before they read again.
        s.heartbeat.timeout_s = 60.0;
        s.limits.idle_timeout_s = 60.0;
    })
    .await;
    let start = app.create_station("pc1").await;
    let mut stuck = Vec::new();
    for i in 0..3 {
        stuck.push(app.connect(&format!("stuck-{i}")).await);
    }
    let mut reader = app.connect("reader").await;
    let mut writer = app.connect("writer").await;
    app.wait_for_sessions(5).await;
    // The reader reads all along, as a healthy client does.
    let (bursts, burst) = (60, 6);
    let reading = actix_web::rt::spawn(async move {
        let mut got = Vec::new();
        while got.len() < bursts * burst {
            got.push(seq(&reader.expect("device_updated").await));
        }
        (got, reader)
    });

    // Large frames fill the stuck clients' socket buffers quickly; then their queues fill.
    // The writes are pipelined, so each commit can hand every session a burst of changes at
    // once (a burst smaller than the queue, so that the writer's acks fit).
    let notes = "n".repeat(60_000);
    let mut written = 0;
    for _ in 0..bursts {
        for _ in 0..burst {
            let update = json!({"type": "device_update", "id": format!("w{written}"), "deviceId": "pc1",
                "data": {"notes": notes, "elapsedSeconds": written}});
            writer.send(update).await;
            written += 1;
        }
        for _ in 0..burst {
            writer.expect("ack").await;
        }
    }
    let head = start + written;
    let (got, _reader) = reading.await.expect("the reader");
    assert_eq!(got, ((start + 1)..=head).collect::<Vec<_>>(), "the reader got everything in order");
    app.wait_for_sessions(2).await;
    assert_eq!(
        app.scrape().await.value("device_sync_slow_consumer_closes_total"),
        3.0,
        "each close is counted"
    );

    for (i, client) in stuck.iter_mut().enumerate() {
        // What the socket had taken, then the close: a gap-free prefix of the feed.
        let (close, before) = client.recv_close().await;
        let close = close.expect("a close frame");
        assert_eq!(close.code, CloseCode::Library(4008));
        assert_eq!(close.reason.as_str(), "slow consumer");
        let seqs: Vec<u64> = before.iter().filter(|f| f["type"] == "device_updated").map(seq).collect();
        let last = seqs.last().copied().unwrap_or(start);
        assert!(last < head, "stuck-{i} was cut off before the end");
        assert_eq!(seqs, ((start + 1)..=last).collect::<Vec<_>>(), "stuck-{i} saw a gap-free prefix");

        // Resuming from the last seq it saw yields every later change, once, in order.
        let mut again = app.open().await;
        again.send(json!({"type": "connect", "clientId": format!("stuck-{i}"), "last_seq": last})).await;
        let (connected, replayed) = again.recv_until("connected").await;
        assert_eq!(connected["last_seq"], head);
        let replayed: Vec<u64> = replayed.iter().map(seq).collect();
        assert_eq!(replayed, ((last + 1)..=head).collect::<Vec<_>>(), "stuck-{i} resumed exactly");
    }
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
    // A gap-free prefix of the broadcasts, and a resume from its last seq gets the rest once.
    let seqs: Vec<u64> = before.iter().map(seq).collect();
    let last = seqs.last().copied().unwrap_or(0);
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "a gap-free prefix");
    let mut again = app.open().await;
    again.send(json!({"type": "connect", "clientId": "stuck", "last_seq": last})).await;
    let (_, replayed) = again.recv_until("connected").await;
    assert_eq!(replayed.iter().map(seq).collect::<Vec<_>>(), ((last + 1)..=sent as u64).collect::<Vec<_>>());
}

/// Every session's queue together is bounded (`limits.total_queue_bytes`): past it the largest
/// queues are closed (4008) first, though each is under its own bound, and a client that reads
/// along is not touched.
#[actix_web::test]
async fn past_the_servers_queue_budget_the_largest_queues_are_closed_first() {
    let app = spawn_app_with(|s| {
        s.limits.session_queue = 100_000;
        s.limits.session_queue_bytes = 256 * 1024 * 1024;
        s.limits.total_queue_bytes = 4 * 1024 * 1024;
        s.limits.messages_per_second = 100_000;
        s.heartbeat.timeout_s = 60.0;
        s.limits.idle_timeout_s = 60.0;
    })
    .await;
    let start = app.create_station("pc1").await;
    let mut stuck = Vec::new();
    for i in 0..2 {
        stuck.push(app.connect(&format!("stuck-{i}")).await);
    }
    let mut reader = app.connect("reader").await;
    let mut writer = app.connect("writer").await;
    app.wait_for_sessions(4).await;
    let writes = 400;
    let reading = actix_web::rt::spawn(async move {
        let mut got = Vec::new();
        while got.len() < writes {
            got.push(seq(&reader.expect("device_updated").await));
        }
        got
    });
    let notes = "n".repeat(60_000);
    for i in 0..writes {
        let update = json!({"type": "device_update", "id": format!("w{i}"), "deviceId": "pc1",
            "data": {"notes": notes, "elapsedSeconds": i}});
        writer.send(update).await;
        writer.expect("ack").await;
    }
    let got = reading.await.expect("the reader");
    assert_eq!(got, ((start + 1)..=start + writes as u64).collect::<Vec<_>>(), "the reader got everything");
    let mut closes = Vec::new();
    for mut client in stuck {
        let (close, _) = client.recv_close().await;
        closes.push(close.map(|c| c.code));
    }
    assert!(closes.iter().all(|c| *c == Some(CloseCode::Library(4008))), "{closes:?}");
}
