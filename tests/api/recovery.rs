//! A client that reconnects with its last `seq` is sent exactly what it missed, in order, once;
//! one whose history is not here is told to resync.

use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, seq, spawn_app, spawn_app_with};

/// Makes `n` changes through `writer` (each acknowledged) and returns their seqs.
async fn make_changes(writer: &mut WsClient, n: usize, tag: &str) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(n);
    for i in 0..n {
        // Each group of four works on one station: update, order, change that order, reset.
        let station = ["pc1", "pc2", "pc3"][(i / 4) % 3];
        let event = match i % 4 {
            0 => {
                json!({"type": "device_update", "deviceId": station, "data": {"elapsedSeconds": i, "notes": format!("{tag}-{i}")}})
            }
            1 => {
                json!({"type": "order_placed", "deviceId": station, "orders": [{"name": format!("{tag}-{i}"), "price": 100, "quantity": 1}]})
            }
            2 => {
                json!({"type": "order_updated", "deviceId": station, "orderIndex": 0, "data": {"quantity": 2}})
            }
            _ => json!({"type": "device_reset", "deviceId": station}),
        };
        let mut event = event;
        event["id"] = json!(format!("{tag}-{i}"));
        writer.send(event).await;
        let (ack, _) = writer.recv_until("ack").await;
        seqs.push(seq(&ack));
    }
    seqs
}

async fn stations(app: &TestApp) {
    for id in ["pc1", "pc2", "pc3"] {
        app.create_station(id).await;
    }
}

/// Opens a session and resumes it from `last_seq`; returns the frames before `connected`,
/// and `connected`.
async fn resume(app: &TestApp, last_seq: u64, epoch: &str) -> (WsClient, Vec<Value>, Value) {
    let mut ws = app.open().await;
    ws.send(json!({"type": "connect", "clientId": "returning", "last_seq": last_seq, "epoch": epoch})).await;
    let (connected, replayed) = ws.recv_until("connected").await;
    (ws, replayed, connected)
}

#[actix_web::test]
async fn a_returning_client_gets_exactly_what_it_missed_in_order_once() {
    let app = spawn_app().await;
    stations(&app).await;
    let mut writer = app.connect("writer").await;
    let (mut reader, connected) = app.connect_as("reader").await;
    let epoch = connected["epoch"].as_str().expect("epoch").to_owned();
    reader.expect("connection_status").await;

    let seen = make_changes(&mut writer, 6, "before").await;
    let mut last = 0;
    for expected in &seen {
        let frame = reader.recv().await;
        last = seq(&frame);
        assert_eq!(last, *expected);
    }
    reader.close().await;

    let missed = make_changes(&mut writer, 60, "missed").await;
    let rest = app
        .admin(reqwest::Method::PUT, "/cashier/prices")
        .json(&json!({"tea": 300}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(rest.status(), 200);

    let (mut reader, replayed, connected) = resume(&app, last, &epoch).await;
    let replayed_seqs: Vec<u64> = replayed.iter().map(seq).collect();
    let mut expected = missed.clone();
    expected.push(missed.last().expect("changes") + 1);
    assert_eq!(replayed_seqs, expected, "every missed change, in order, once");
    assert_eq!(replayed.last().expect("frames")["type"], "prices_updated");
    assert_eq!(replayed[0]["type"], "device_updated");
    assert_eq!(replayed[0]["data"]["notes"], "missed-0");
    assert_eq!(
        connected["last_seq"].as_u64(),
        expected.last().copied(),
        "connected says where the client now is"
    );
    assert_eq!(connected["epoch"], epoch.as_str());
    reader.expect("connection_status").await;

    // Live again, with nothing twice.
    let next = make_changes(&mut writer, 3, "after").await;
    for expected in next {
        assert_eq!(seq(&reader.recv().await), expected);
    }
    assert!(reader.roundtrip("done").await.is_empty());
}

#[actix_web::test]
async fn a_client_whose_ack_was_lost_learns_its_write_landed() {
    let app = spawn_app().await;
    stations(&app).await;
    let (mut ws, connected) = app.connect_as("flaky").await;
    let epoch = connected["epoch"].as_str().expect("epoch").to_owned();
    let before = connected["last_seq"].as_u64().expect("last_seq");
    ws.send(
        json!({"type": "device_update", "id": "lost", "deviceId": "pc2", "data": {"notes": "did it land?"}}),
    )
    .await;
    drop(ws); // gone before reading the ack

    // Wait until the write is in.
    let deadline = tokio::time::Instant::now() + crate::helpers::WAIT;
    while app.station("pc2").await.expect("pc2")["data"]["notes"] != "did it land?" {
        assert!(tokio::time::Instant::now() < deadline, "the write never landed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_ws, replayed, _) = resume(&app, before, &epoch).await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["type"], "device_updated");
    assert_eq!(replayed[0]["data"]["notes"], "did it land?");
    assert_eq!(seq(&replayed[0]), before + 1);
}

#[actix_web::test]
async fn a_catch_up_longer_than_the_session_queue_is_paced_not_cut_off() {
    let app = spawn_app_with(|s| {
        s.limits.session_queue = 16;
        s.limits.messages_per_second = 10_000;
    })
    .await;
    stations(&app).await;
    let mut writer = app.connect("writer").await;
    let (_, connected) = app.connect_as("sleeper").await;
    let epoch = connected["epoch"].as_str().expect("epoch").to_owned();
    let from = connected["last_seq"].as_u64().expect("last_seq");
    let missed = make_changes(&mut writer, 300, "bulk").await;

    let (mut ws, replayed, connected) = resume(&app, from, &epoch).await;
    let seqs: Vec<u64> = replayed.iter().map(seq).collect();
    assert_eq!(seqs, missed, "all 300, in order, over a queue of 16");
    assert_eq!(connected["last_seq"].as_u64(), missed.last().copied());
    assert!(ws.roundtrip("still-open").await.iter().all(|f| f["type"] == "connection_status"));
}

#[actix_web::test]
async fn changes_made_during_a_catch_up_are_neither_lost_nor_doubled() {
    let app = spawn_app_with(|s| {
        s.limits.session_queue = 32;
        s.limits.messages_per_second = 10_000;
    })
    .await;
    stations(&app).await;
    let mut writer = app.connect("writer").await;
    let (_, connected) = app.connect_as("sleeper").await;
    let epoch = connected["epoch"].as_str().expect("epoch").to_owned();
    let from = connected["last_seq"].as_u64().expect("last_seq");
    let mut all = make_changes(&mut writer, 200, "early").await;

    let mut ws = app.open().await;
    ws.send(json!({"type": "connect", "last_seq": from, "epoch": epoch})).await;
    // Keep writing while the returning client catches up.
    all.extend(make_changes(&mut writer, 100, "during").await);
    let mut got = Vec::new();
    let mut connected_at = None;
    while got.len() < all.len() {
        let frame = ws.recv().await;
        match frame["type"].as_str() {
            Some("connected") => connected_at = Some(got.len()),
            Some("connection_status") => {}
            _ => got.push(seq(&frame)),
        }
    }
    assert_eq!(got, all, "every change once, in order");
    assert!(connected_at.is_some(), "connected came once the catch-up joined the live feed");
}

#[actix_web::test]
async fn a_client_of_another_epoch_is_told_to_resync() {
    let app = spawn_app().await;
    stations(&app).await;
    let head = app.health().await["head_seq"].as_u64().expect("head");
    let epoch = app.health().await["epoch"].as_str().expect("epoch").to_owned();
    let (mut ws, replayed, connected) = resume(&app, 1, "some-other-database").await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    let resync = &replayed[0];
    assert_eq!(resync["type"], "resync_required");
    assert_eq!(resync["reason"], "epoch_mismatch");
    assert_eq!(resync["epoch"], epoch.as_str());
    assert_eq!(resync["head_seq"].as_u64(), Some(head));
    assert_eq!(connected["last_seq"].as_u64(), Some(head));
    assert!(ws.roundtrip("ok").await.iter().all(|f| f["type"] == "connection_status"));
}

#[actix_web::test]
async fn a_position_beyond_the_log_is_told_to_resync() {
    let app = spawn_app().await;
    stations(&app).await;
    let epoch = app.health().await["epoch"].as_str().expect("epoch").to_owned();
    let (_ws, replayed, _) = resume(&app, 999, &epoch).await;
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0]["type"], "resync_required");
    assert_eq!(replayed[0]["reason"], "ahead_of_log");
}

#[actix_web::test]
async fn connect_without_last_seq_starts_at_the_head() {
    let app = spawn_app().await;
    stations(&app).await;
    let health = app.health().await;
    let (_ws, connected) = app.connect_as("fresh").await;
    assert_eq!(connected["last_seq"], health["head_seq"]);
    assert_eq!(connected["epoch"], health["epoch"]);
    assert!(connected["session_id"].as_str().is_some_and(|s| !s.is_empty()));
}

#[actix_web::test]
async fn a_resume_after_other_messages_still_delivers_every_missed_change_once() {
    let app = spawn_app().await;
    stations(&app).await;
    let mut writer = app.connect("writer").await;
    let from = app.health().await["head_seq"].as_u64().expect("head");
    let epoch = app.health().await["epoch"].as_str().expect("epoch").to_owned();
    let missed = make_changes(&mut writer, 10, "gap").await;

    let mut ws = app.open().await;
    assert!(ws.roundtrip("first").await.is_empty(), "attached at the head: nothing missed yet");
    let live = make_changes(&mut writer, 3, "live").await;
    for expected in &live {
        assert_eq!(seq(&ws.recv().await), *expected);
    }
    ws.send(json!({"type": "connect", "last_seq": from, "epoch": epoch})).await;
    let (_, replayed) = ws.recv_until("connected").await;
    let seqs: Vec<u64> = replayed.iter().map(seq).collect();
    assert_eq!(seqs, missed, "the changes before the session attached, none of those it already had");
}

/// A client resuming from a `seq` this node has not handed out yet, but which is in the log
/// (another node wrote it, or it is being published now: held up here by an injected delay),
/// is resumed from there, not told it is ahead of the log.
#[cfg(feature = "fault-injection")]
#[actix_web::test]
async fn a_resume_ahead_of_what_is_published_but_in_the_log_is_replayed_not_resynced() {
    let app = crate::helpers::spawn_app().await;
    app.state.sessions.faults.delay_publishing(std::time::Duration::from_millis(1500));
    // Answered after its commit, before it is handed out.
    let seq = app.create_station("pc1").await;
    assert!(app.health().await["head_seq"].as_u64() < Some(seq), "not published yet");
    let mut tablet = app.open().await;
    tablet.send(serde_json::json!({"type": "connect", "clientId": "tablet", "last_seq": seq})).await;
    let (connected, before) = tablet.recv_until("connected").await;
    assert!(before.iter().all(|f| f["type"] != "resync_required"), "{before:?}");
    assert_eq!(connected["last_seq"], seq, "{connected}");
    // And the change it has is not sent to it again once handed out.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let heard = tablet.roundtrip("after").await;
    assert!(heard.iter().all(|f| f["type"] != "device_created"), "{heard:?}");
}
