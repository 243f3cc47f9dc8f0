//! Retention of the change log (section 5): old changes are pruned in the background, in small
//! steps between writes; a client that needs a pruned change is told `history_trimmed` wherever
//! it asks; the log's head and the current state survive pruning and restarts.

use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::{ActiveValue::Set, Database, EntityTrait, TransactionTrait};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDevice, WAIT, seq, spawn_app_in, spawn_app_with};

async fn health(app: &TestApp) -> Value {
    app.health().await
}

/// Waits until `/system/health` reports this `oldest_seq`.
async fn wait_for_oldest(app: &TestApp, oldest: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = health(app).await["oldest_seq"].as_u64();
        if seen == Some(oldest) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "oldest_seq stayed at {seen:?}, expected {oldest}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn write(device: &mut TestDevice, i: u64) -> u64 {
    let reply = device
        .request(json!({"type": "data_update", "device_id": device.id, "table_name": "products",
            "record_id": i % 7, "new_data": {"n": i}}))
        .await;
    assert_eq!(reply["type"], "data_update_ack", "{reply}");
    seq(&reply)
}

#[actix_web::test]
async fn past_the_count_limit_old_changes_are_pruned_and_asking_for_them_says_history_trimmed() {
    let app = spawn_app_with(|s| {
        s.sync.log_keep_changes = 10;
        s.sync.prune_interval_s = 0.05;
    })
    .await;
    let (mut office, _) = app.device("office", 100).await;
    let mut last = 0;
    for i in 0..30 {
        last = write(&mut office, i).await;
    }
    assert_eq!(last, 30);
    wait_for_oldest(&app, 21).await;
    assert_eq!(health(&app).await["head_seq"], 30);
    let epoch = health(&app).await["epoch"].as_str().expect("epoch").to_owned();

    // A resume from before the oldest kept change: told, not silently skipped.
    let mut old = app.open().await;
    old.send(json!({"type": "connect", "clientId": "old", "last_seq": 5, "epoch": epoch})).await;
    let (_, before) = old.recv_until("connected").await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(
        (before[0]["type"].as_str(), before[0]["reason"].as_str()),
        (Some("resync_required"), Some("history_trimmed"))
    );
    // From the floor itself every kept change comes, once, in order.
    let mut fine = app.open().await;
    fine.send(json!({"type": "connect", "clientId": "fine", "last_seq": 20, "epoch": epoch})).await;
    let (_, replayed) = fine.recv_until("connected").await;
    assert_eq!(replayed.iter().map(seq).collect::<Vec<_>>(), (21..=30).collect::<Vec<_>>());

    // An incremental sync_request, by seq: `resync_required`, answering its id.
    let resync = office
        .request(
            json!({"type": "sync_request", "device_id": "office", "sync_type": "incremental", "last_seq": 5}),
        )
        .await;
    assert_eq!(
        (resync["type"].as_str(), resync["reason"].as_str()),
        (Some("resync_required"), Some("history_trimmed"))
    );
    let page = office
        .request(json!({"type": "sync_request", "device_id": "office", "sync_type": "incremental", "last_seq": 25}))
        .await;
    assert_eq!(page["changes"].as_array().map(Vec::len), Some(5));

    // `/sync/pull` and `/sync/status`.
    let pull = app.get_json("/sync/pull?since_seq=5").await;
    assert_eq!(pull["resync_required"], true);
    assert_eq!(pull["reason"], "history_trimmed");
    assert_eq!((pull["oldest_seq"].as_u64(), pull["head_seq"].as_u64()), (Some(21), Some(30)));
    assert_eq!(pull["changes"], json!([]));
    assert_eq!(app.get_json("/sync/pull?since_seq=20").await["changes"].as_array().map(Vec::len), Some(10));
    assert_eq!(app.get_json("/sync/status").await["oldest_seq"], 21);

    // The current state is not history: every record is still there.
    let full =
        office.request(json!({"type": "sync_request", "device_id": "office", "sync_type": "full"})).await;
    assert_eq!(full["data"]["products"].as_array().map(Vec::len), Some(7));
}

#[actix_web::test]
async fn when_every_change_is_past_its_age_the_log_is_empty_and_the_head_survives_a_restart() {
    let keep = |s: &mut device_sync::settings::Settings| {
        // 0.3 s.
        s.sync.log_keep_days = 0.3 / 86_400.0;
        s.sync.prune_interval_s = 0.05;
    };
    let app = spawn_app_with(keep).await;
    let (mut office, _) = app.device("office", 100).await;
    for i in 0..5 {
        write(&mut office, i).await;
    }
    // Server times go out in whole milliseconds: the mark must fall in a later millisecond
    // than the last commit, or that commit counts as after it.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mark = office.request(json!({"type": "ping"})).await["timestamp"].as_str().expect("ts").to_owned();
    wait_for_oldest(&app, 6).await;
    let status = health(&app).await;
    assert_eq!(status["head_seq"], 5, "the head is the newest seq ever logged, kept or not");

    // By timestamp: a time before the pruned changes needs them.
    let by_time = office
        .request(json!({"type": "sync_request", "device_id": "office", "sync_type": "incremental",
            "last_sync_timestamp": "2020-01-01T00:00:00.000Z"}))
        .await;
    assert_eq!(by_time["reason"], "history_trimmed", "{by_time}");
    let after = office
        .request(json!({"type": "sync_request", "device_id": "office", "sync_type": "incremental",
            "last_sync_timestamp": mark}))
        .await;
    assert_eq!(after["type"], "sync_response", "nothing pruned was committed after the mark: {after}");

    drop(office);
    let dir = app.stop().await;
    let app = spawn_app_in(dir, keep).await;
    assert_eq!(health(&app).await["head_seq"], 5, "the head survives a restart with an empty log");
    assert_eq!(health(&app).await["oldest_seq"], 6);
    let (mut office, _) = app.device("office", 100).await;
    assert_eq!(write(&mut office, 9).await, 6, "seq goes on from the head, never reused");
}

#[actix_web::test]
async fn a_writer_keeps_getting_acks_while_a_large_backlog_is_pruned() {
    const BACKLOG: i64 = 60_000;
    // A database with a backlog of old changes (40 days), made before the server starts.
    let app = spawn_app_with(|_| {}).await;
    let dir = app.stop().await;
    {
        let url = crate::helpers::database_url(&dir);
        let db = Database::connect(url).await.expect("open the test database");
        let txn = db.begin().await.expect("begin");
        let old = Utc::now() - chrono::Duration::days(40);
        let frame =
            json!({"type": "device_updated", "deviceId": "pc1", "data": {}, "timestamp": "x"}).to_string();
        for chunk in (1..=BACKLOG).collect::<Vec<_>>().chunks(500) {
            let rows = chunk.iter().map(|&seq| entity::change_log::ActiveModel {
                seq: Set(seq),
                table_name: Set("stations".into()),
                record_id: Set(Some("pc1".into())),
                operation: Set("update".into()),
                event_type: Set("device_updated".into()),
                data: Set(Some("{}".into())),
                version: Set(None),
                frame: Set(frame.clone()),
                origin_session: Set(None),
                reply_frame: Set(None),
                source_device: Set(None),
                committed_at: Set(old),
                // As a change logged before the log kept the sync form.
                sync_change: Set(None),
            });
            entity::change_log::Entity::insert_many(rows).exec(&txn).await.expect("insert");
        }
        txn.commit().await.expect("commit");
        db.close().await.expect("close");
    }
    let app = spawn_app_in(dir, |s| {
        s.sync.log_keep_days = 30.0;
        s.sync.prune_interval_s = 0.1;
    })
    .await;
    let (mut writer, _) = app.device("office", 100).await;

    // The writer writes all through the prune, one change at a time, each waiting for its ack.
    let mut during = 0;
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    let mut i = 0;
    loop {
        let oldest = health(&app).await["oldest_seq"].as_u64().expect("oldest_seq");
        if oldest > BACKLOG as u64 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the prune made no progress (oldest {oldest})");
        for _ in 0..5 {
            let sent = Instant::now();
            let seq = write(&mut writer, i).await;
            slowest = slowest.max(sent.elapsed());
            assert!(seq > BACKLOG as u64, "seq goes on after the backlog");
            i += 1;
            if oldest > 1 {
                during += 1;
            }
        }
    }
    eprintln!(
        "{during} writes acknowledged while {BACKLOG} old changes were pruned; slowest ack {slowest:?}"
    );
    assert!(during >= 10, "writes were acknowledged between the prune's steps ({during})");
    let status = health(&app).await;
    assert_eq!(
        status["oldest_seq"].as_u64(),
        Some(BACKLOG as u64 + 1),
        "every old change is gone, no new one"
    );
    assert_eq!(status["head_seq"].as_u64(), Some(BACKLOG as u64 + i));
}

/// A write's receipt lives as long as its change is in the log, and `receipt_margin_days`
/// more: within it, the write sent again is applied once; past it, the receipt is pruned with
/// the log and the write is a new one.
#[actix_web::test]
async fn receipts_are_pruned_with_the_log_after_their_margin() {
    for (margin_days, applied_again) in [(1.0, false), (0.0, true)] {
        let app = spawn_app_with(|s| {
            s.sync.log_keep_changes = 2;
            s.sync.prune_interval_s = 0.05;
            s.sync.receipt_margin_days = margin_days;
        })
        .await;
        let (mut office, _) = app.device("office", 100).await;
        let first = json!({"type": "data_update", "device_id": "office", "table_name": "products",
            "record_id": "first", "new_data": {"n": 0}});
        let seq_of_first = seq(&office.request_with_id(first.clone(), "first").await);
        for i in 1..6 {
            write(&mut office, i).await;
        }
        wait_for_oldest(&app, 5).await;
        // A prune step runs at every interval: give the receipts' one its turn.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let again = seq(&office.request_with_id(first, "first").await);
        assert_eq!(again != seq_of_first, applied_again, "margin {margin_days} days: seq {again}");
    }
}

/// Audit and election log entries older than `sync.history_keep_days` are pruned.
#[actix_web::test]
async fn old_audit_and_election_entries_are_pruned() {
    let app = spawn_app_with(|s| {
        s.sync.history_keep_days = 1.0 / 86_400.0;
        s.sync.prune_interval_s = 0.05;
    })
    .await;
    let (_office, online) = app.device("office", 100).await;
    assert_eq!(online["role"], "master");
    let deadline = Instant::now() + WAIT;
    loop {
        let audit = app.admin(reqwest::Method::GET, "/sync/audit-logs").send().await.expect("audit");
        let audit: Value = audit.json().await.expect("json");
        let elections = app.election_logs("").await;
        let (a, e) = (audit["pagination"]["total"].as_u64(), elections["pagination"]["total"].as_u64());
        if a == Some(0) && e == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "still {a:?} audit and {e:?} election entries");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The log's floor only rises: two nodes pruning one log, the one whose look is older cannot
/// move it back (a single statement compares and writes, so a race cannot either).
#[actix_web::test]
async fn the_floor_only_rises() {
    let app = spawn_app_with(|_| {}).await;
    let db = &app.state.db;
    let floor = device_sync::store::meta::LOG_FLOOR;
    assert!(device_sync::store::meta::raise(db, floor, 600).await.expect("raise"));
    assert!(!device_sync::store::meta::raise(db, floor, 550).await.expect("raise"), "not moved back");
    let stored = device_sync::store::meta::get(db, floor).await.expect("read");
    assert_eq!(stored.as_deref(), Some("600"));
}
