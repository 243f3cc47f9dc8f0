//! Data sync: generic records, conflicts, offline catch-up (by reconnect, paged sync_request and
//! /sync/pull), pushes flushed twice, consistent snapshots, and the legacy events.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDevice, seq, spawn_app, spawn_app_with};

async fn write(device: &mut TestDevice, message: Value) -> Value {
    device.request(message).await
}

fn update(device: &str, table: &str, record: Value, data: Value) -> Value {
    json!({"type": "data_update", "device_id": device, "table_name": table, "record_id": record, "new_data": data})
}

async fn head(app: &TestApp) -> u64 {
    app.health().await["head_seq"].as_u64().expect("head_seq")
}

async fn epoch(app: &TestApp) -> String {
    app.health().await["epoch"].as_str().expect("epoch").to_owned()
}

/// Makes `n` changes across three record tables and a station; returns their seqs.
async fn changes(device: &mut TestDevice, n: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(n);
    for i in 0..n {
        let message = match i % 4 {
            0 => update(&device.id, "products", json!(i), json!({"name": format!("p{i}"), "price": i})),
            1 => update(&device.id, "customers", json!(format!("c{}", i % 7)), json!({"visits": i})),
            2 => json!({"type": "data_update", "device_id": device.id, "table": "stock", "record_id": i % 5,
                "data": {"qty": i}, "operation": "create"}),
            _ => json!({"type": "device_update", "deviceId": "pc1", "data": {"elapsedSeconds": i}}),
        };
        let reply = write(device, message).await;
        assert!(reply["type"] == "data_update_ack" || reply["type"] == "ack", "{reply}");
        seqs.push(seq(&reply));
    }
    seqs
}

#[actix_web::test]
async fn a_data_update_is_acknowledged_and_broadcast_with_the_record_id_rule() {
    let app = spawn_app().await;
    let (mut a, _) = app.device("till-1", 50).await;
    let (mut b, _) = app.device("till-2", 40).await;
    let ack =
        write(&mut a, update("till-1", "products", json!(42), json!({"name": "كولا", "price": 1000}))).await;
    assert_eq!(ack["type"], "data_update_ack");
    assert_eq!((ack["status"].as_str(), ack["table_name"].as_str()), (Some("success"), Some("products")));
    assert_eq!((ack["record_id"].clone(), ack["version"].clone()), (json!(42), json!(1)));
    let (pushed, _) = b.recv_until("data_update").await;
    assert_eq!(pushed["table"], "products");
    assert_eq!(pushed["table_name"], "products");
    assert_eq!(pushed["operation"], "update");
    assert_eq!(pushed["record_id"], json!(42), "a canonical integer goes back as an integer");
    assert_eq!(pushed["data"]["name"], "كولا");
    assert_eq!(pushed["new_data"], pushed["data"]);
    assert_eq!((pushed["version"].as_i64(), pushed["source_device"].as_str()), (Some(1), Some("till-1")));
    assert_eq!(seq(&pushed), seq(&ack));

    let ack = write(&mut a, update("till-1", "products", json!("42"), json!({"name": "cola"}))).await;
    assert_eq!(
        (ack["record_id"].clone(), ack["version"].clone()),
        (json!(42), json!(2)),
        "\"42\" is record 42"
    );
    let ack = write(&mut a, update("till-1", "products", json!("042"), json!({"name": "other"}))).await;
    assert_eq!(
        (ack["record_id"].clone(), ack["version"].clone()),
        (json!("042"), json!(1)),
        "not canonical: a string"
    );

    let deleted = write(&mut a, json!({"type": "data_update", "device_id": "till-1", "table": "products", "record_id": 42, "operation": "delete"})).await;
    assert_eq!(deleted["version"], 3);
    let (gone, _) = b.recv_until("data_update").await;
    assert!(gone["operation"] == "update" || gone["operation"] == "insert");
    let (gone, _) = b.recv_until("data_update").await;
    assert_eq!(gone["record_id"], json!("042"));
    let (gone, _) = b.recv_until("data_update").await;
    assert_eq!((gone["operation"].as_str(), gone["data"].clone()), (Some("delete"), Value::Null));
    let response = write(
        &mut a,
        json!({"type": "data_request", "device_id": "till-1", "table": "products", "record_id": 42}),
    )
    .await;
    assert_eq!(
        (response["type"].as_str(), response["status"].as_str()),
        (Some("data_response"), Some("not_found"))
    );
    let again = write(&mut a, update("till-1", "products", json!(42), json!({"name": "back"}))).await;
    assert_eq!(again["version"], 4, "a record written again after a delete keeps counting");
    let missing = write(&mut a, json!({"type": "data_update", "device_id": "till-1", "table": "products", "record_id": "nope", "operation": "delete"})).await;
    assert_eq!(missing["code"], "RECORD_NOT_FOUND");
}

#[actix_web::test]
async fn a_stale_base_version_loses_under_server_wins_and_nothing_is_written() {
    let app = spawn_app().await;
    let (mut a, _) = app.device("till-1", 50).await;
    let (mut b, _) = app.device("till-2", 40).await;
    write(&mut b, update("till-2", "products", json!(7), json!({"price": 100}))).await;
    write(&mut b, update("till-2", "products", json!(7), json!({"price": 120}))).await;
    let before = head(&app).await;
    let mut stale = update("till-1", "products", json!(7), json!({"price": 90}));
    stale["base_version"] = json!(1);
    let conflict = write(&mut a, stale).await;
    assert_eq!(conflict["type"], "sync_conflict", "{conflict}");
    assert_eq!(conflict["conflict_type"], "version");
    assert_eq!((conflict["local_version"].as_i64(), conflict["server_version"].as_i64()), (Some(1), Some(2)));
    assert_eq!(conflict["local_data"]["price"], 90);
    assert_eq!(conflict["server_data"]["price"], 120);
    assert_eq!(conflict["conflict_data"]["remote_version"], 2);
    let (resolved, _) = a.recv_until("sync_conflict_resolved").await;
    assert_eq!(
        (resolved["resolution"].as_str(), resolved["resolution_method"].as_str()),
        (Some("server_wins"), Some("server_wins"))
    );
    assert_eq!(resolved["resolved_data"]["price"], 120);
    assert_eq!(head(&app).await, before, "nothing was logged");
    let now = write(
        &mut a,
        json!({"type": "data_request", "device_id": "till-1", "table": "products", "record_id": 7}),
    )
    .await;
    assert_eq!((now["version"].as_i64(), now["data"]["price"].as_i64()), (Some(2), Some(120)));
    let mut current = update("till-1", "products", json!(7), json!({"price": 95}));
    current["base_version"] = json!(2);
    assert_eq!(write(&mut a, current).await["version"], 3, "the current base version applies");
}

#[actix_web::test]
async fn under_last_writer_wins_the_newer_write_wins_and_everyone_hears_of_it() {
    let app =
        spawn_app_with(|s| s.sync.conflict_policy = device_sync::settings::ConflictPolicy::LastWriterWins)
            .await;
    let (mut a, _) = app.device("till-1", 50).await;
    let (mut b, _) = app.device("till-2", 40).await;
    let mut first = update("till-2", "products", json!(1), json!({"price": 100}));
    first["timestamp"] = json!("2026-06-01T12:00:00Z");
    write(&mut b, first).await;

    let mut newer = update("till-1", "products", json!(1), json!({"price": 150}));
    newer["base_version"] = json!(0);
    newer["timestamp"] = json!("2026-06-01T12:00:05+00:00");
    let ack = write(&mut a, newer).await;
    assert_eq!((ack["type"].as_str(), ack["version"].as_i64()), (Some("data_update_ack"), Some(2)));
    let (resolved, _) = a.recv_until("sync_conflict_resolved").await;
    assert_eq!(
        (resolved["resolution"].as_str(), resolved["resolution_method"].as_str()),
        (Some("local_wins"), Some("last_writer_wins"))
    );
    let (pushed, _) = b.recv_until("data_update").await;
    assert_eq!(pushed["data"]["price"], 150);
    let (told, _) = b.recv_until("sync_conflict_resolved").await;
    assert_eq!(told["resolved_data"]["price"], 150);

    let mut older = update("till-2", "products", json!(1), json!({"price": 80}));
    older["base_version"] = json!(1);
    older["timestamp"] = json!("2026-06-01T11:00:00Z");
    let conflict = write(&mut b, older).await;
    assert_eq!(conflict["type"], "sync_conflict");
    let (resolved, _) = b.recv_until("sync_conflict_resolved").await;
    assert_eq!(
        (resolved["resolution"].as_str(), resolved["resolution_method"].as_str()),
        (Some("server_wins"), Some("last_writer_wins"))
    );
    let mut untimed = update("till-2", "products", json!(1), json!({"price": 70}));
    untimed["base_version"] = json!(1);
    assert_eq!(
        write(&mut b, untimed).await["type"],
        "sync_conflict",
        "without a timestamp the stored copy wins"
    );
    let stored = write(
        &mut a,
        json!({"type": "data_request", "device_id": "till-1", "table": "products", "record_id": 1}),
    )
    .await;
    assert_eq!((stored["version"].as_i64(), stored["data"]["price"].as_i64()), (Some(2), Some(150)));
}

#[actix_web::test]
async fn a_clients_own_conflict_report_is_resolved_by_the_policy() {
    let app = spawn_app().await;
    let (mut a, _) = app.device("till-1", 50).await;
    write(&mut a, update("till-1", "customers", json!("c1"), json!({"visits": 3}))).await;
    let report = json!({"type": "sync_conflict", "device_id": "till-1", "table": "customers", "record_id": "c1",
        "conflict_type": "version", "local_version": 1, "server_version": 1, "local_data": {"visits": 9},
        "server_data": {"visits": 3}, "timestamp": "2030-01-01T00:00:00Z"});
    let resolved = write(&mut a, report.clone()).await;
    assert_eq!(resolved["type"], "sync_conflict_resolved");
    assert_eq!(
        (resolved["resolution"].as_str(), resolved["resolved_data"]["visits"].as_i64()),
        (Some("server_wins"), Some(3))
    );

    let app =
        spawn_app_with(|s| s.sync.conflict_policy = device_sync::settings::ConflictPolicy::LastWriterWins)
            .await;
    let (mut a, _) = app.device("till-1", 50).await;
    write(&mut a, update("till-1", "customers", json!("c1"), json!({"visits": 3}))).await;
    let applied = write(&mut a, report).await;
    assert_eq!((applied["type"].as_str(), applied["version"].as_i64()), (Some("data_update_ack"), Some(2)));
    let (resolved, _) = a.recv_until("sync_conflict_resolved").await;
    assert_eq!(resolved["resolution"], "local_wins");
}

#[actix_web::test]
async fn data_requests_answer_single_batch_and_latest() {
    let app = spawn_app().await;
    let (mut a, _) = app.device("till-1", 50).await;
    for i in 1..=4 {
        write(&mut a, update("till-1", "products", json!(i), json!({"n": i}))).await;
    }
    let one = write(
        &mut a,
        json!({"type": "data_request", "device_id": "till-1", "table_name": "products", "record_id": "3"}),
    )
    .await;
    assert_eq!(
        (one["status"].as_str(), one["data"]["n"].as_i64(), one["record_id"].clone()),
        (Some("success"), Some(3), json!(3))
    );
    let batch = write(
        &mut a,
        json!({"type": "data_request", "device_id": "till-1", "table": "products",
        "request_type": "batch", "record_ids": [1, "2", 99]}),
    )
    .await;
    let found: Vec<Value> =
        batch["records"].as_array().expect("records").iter().map(|r| r["record_id"].clone()).collect();
    assert_eq!(found, [json!(1), json!(2)]);
    assert_eq!(batch["not_found"], json!([99]));
    let latest = write(
        &mut a,
        json!({"type": "data_request", "device_id": "till-1", "table": "products",
        "request_type": "latest", "limit": 2}),
    )
    .await;
    let newest: Vec<Value> =
        latest["records"].as_array().expect("records").iter().map(|r| r["record_id"].clone()).collect();
    assert_eq!(newest, [json!(4), json!(3)]);
    assert!(latest["records"][0]["updated_at"].as_str().is_some_and(crate::helpers::is_server_time));
}

#[actix_web::test]
async fn an_offline_device_catches_up_on_reconnect_each_change_once_in_order() {
    let app = spawn_app_with(|s| s.limits.messages_per_second = 100_000).await;
    app.create_station("pc1").await;
    let epoch = epoch(&app).await;
    let (mut writer, _) = app.device("office", 100).await;
    let (tablet, ack) = app.device("tablet", 20).await;
    let at = ack["last_seq"].as_u64().expect("last_seq");
    tablet.close().await;
    let missed = changes(&mut writer, 300).await;

    let mut tablet = crate::helpers::TestDevice::connect(&app, "tablet").await;
    tablet.send(json!({"type": "device_online", "device_id": "tablet", "priority": 20, "last_seq": at, "epoch": epoch})).await;
    let (ack, replayed) = tablet.recv_until("device_online_ack").await;
    let seqs: Vec<u64> = replayed.iter().filter(|f| f.get("seq").is_some()).map(seq).collect();
    assert_eq!(seqs, missed, "each missed change once, in order, before the ack");
    assert_eq!(ack["last_seq"].as_u64(), missed.last().copied());
    assert_eq!(ack["sync_required"], true, "it has not confirmed them with sync_complete");
    let next = write(&mut writer, update("office", "products", json!(1), json!({"again": true}))).await;
    assert_eq!(seq(&tablet.recv_until("data_update").await.0), seq(&next), "then live");
}

#[actix_web::test]
async fn an_offline_device_catches_up_through_paged_sync_requests() {
    let app = spawn_app_with(|s| s.limits.messages_per_second = 100_000).await;
    app.create_station("pc1").await;
    let (mut writer, _) = app.device("office", 100).await;
    let (mut tablet, ack) = app.device("tablet", 20).await;
    let from = ack["last_seq"].as_u64().expect("last_seq");
    let epoch = ack["epoch"].clone();
    let missed = changes(&mut writer, 230).await;
    let mut got = Vec::new();
    let mut after = from;
    let mut pages = 0;
    loop {
        let response = write(
            &mut tablet,
            json!({"type": "sync_request", "device_id": "tablet", "sync_type": "incremental",
            "last_seq": after, "epoch": epoch, "limit": 50}),
        )
        .await;
        assert_eq!(response["type"], "sync_response");
        pages += 1;
        let page: Vec<u64> = response["changes"].as_array().expect("changes").iter().map(seq).collect();
        let more = response["has_more"].as_bool().expect("has_more");
        assert_eq!(response["status"], if more { "partial" } else { "success" });
        assert_eq!(response["epoch"], epoch);
        assert_eq!(response["master_device_id"], "office");
        if let Some(last) = page.last() {
            assert_eq!(response["last_seq"].as_u64(), Some(*last));
        }
        got.extend(page);
        after = response["last_seq"].as_u64().expect("last_seq");
        if !more {
            assert_eq!(response["last_seq"], response["head_seq"]);
            break;
        }
    }
    assert_eq!(got, missed);
    assert_eq!(pages, 5);
    let first = write(&mut tablet, json!({"type": "sync_request", "device_id": "tablet", "sync_type": "incremental", "last_seq": from, "limit": 1})).await;
    let change = &first["changes"][0];
    assert_eq!(change["table_name"], "products");
    assert_eq!((change["record_id"].clone(), change["operation"].as_str()), (json!(0), Some("update")));
    assert_eq!(change["data"]["name"], "p0");
    assert_eq!(change["version"], 1);
    assert!(change["timestamp"].as_str().is_some_and(crate::helpers::is_server_time));
}

#[actix_web::test]
async fn an_offline_device_catches_up_through_sync_pull() {
    let app = spawn_app_with(|s| s.limits.messages_per_second = 100_000).await;
    app.create_station("pc1").await;
    let (mut writer, _) = app.device("office", 100).await;
    let from = head(&app).await;
    let missed = changes(&mut writer, 120).await;
    let mut got = Vec::new();
    let mut after = from;
    loop {
        let page = app.get_json(&format!("/sync/pull?device_id=tablet&since_seq={after}&limit=50")).await;
        got.extend(page["changes"].as_array().expect("changes").iter().map(seq));
        after = page["last_seq"].as_u64().expect("last_seq");
        if !page["has_more"].as_bool().expect("has_more") {
            break;
        }
    }
    assert_eq!(got, missed);
    let stock = app.get_json(&format!("/sync/pull?since_seq={from}&tables=stock&limit=1000")).await;
    assert!(stock["changes"].as_array().expect("changes").iter().all(|c| c["table_name"] == "stock"));
    assert_eq!(stock["changes"].as_array().expect("changes").len(), 30);
    assert_eq!(app.get("/sync/pull?limit=0").await.status(), 400);
    assert_eq!(app.get("/sync/pull?since=yesterday").await.status(), 400);
}

#[actix_web::test]
async fn a_push_flushed_twice_is_applied_once() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    let (mut listener, _) = app.device("office", 100).await;
    let events = json!([
        {"id": "q-1", "type": "data_update", "device_id": "tablet", "table_name": "sales", "record_id": 1, "new_data": {"total": 500}},
        {"id": "q-2", "type": "data_update", "device_id": "tablet", "table_name": "sales", "record_id": 1, "new_data": {"total": 700}, "base_version": 1},
        {"id": "q-3", "type": "critical_event", "device_id": "tablet", "event_type": "refund", "payload": {"sale": 1}},
        {"id": "q-4", "type": "device_update", "deviceId": "pc1", "data": {"isRunning": true}},
        {"id": "q-5", "type": "order_placed", "deviceId": "pc1", "orders": [{"name": "tea", "price": 300, "quantity": 1}]}
    ]);
    let push = |events: Value| {
        app.http.post(app.url("/sync/push")).json(&json!({"device_id": "tablet", "events": events})).send()
    };
    let first: Value = push(events.clone()).await.expect("push").json().await.expect("json");
    assert_eq!(
        (first["success"].as_bool(), first["accepted"].as_u64(), first["duplicates"].as_u64()),
        (Some(true), Some(5), Some(0))
    );
    let seqs: Vec<u64> = first["results"].as_array().expect("results").iter().map(seq).collect();
    let start = seqs[0];
    assert_eq!(seqs, (start..start + 5).collect::<Vec<_>>(), "applied in order");
    assert_eq!(first["last_seq"].as_u64(), seqs.last().copied());
    let head_after_first = head(&app).await;

    let second: Value = push(events.clone()).await.expect("push").json().await.expect("json");
    assert_eq!((second["accepted"].as_u64(), second["duplicates"].as_u64()), (Some(0), Some(5)));
    let statuses: Vec<&str> =
        second["results"].as_array().expect("results").iter().filter_map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["duplicate"; 5]);
    let again: Vec<u64> = second["results"].as_array().expect("results").iter().map(seq).collect();
    assert_eq!(again, seqs, "each duplicate names the change it made");
    assert_eq!(head(&app).await, head_after_first, "nothing applied twice");
    let sale = app.get_json(&format!("/sync/pull?since_seq={}&tables=sales", start - 1)).await;
    assert_eq!(sale["changes"].as_array().expect("changes").len(), 2);
    assert_eq!(app.station("pc1").await.expect("pc1")["data"]["orders"].as_array().expect("orders").len(), 1);

    // The listener heard each change once.
    let mut heard = Vec::new();
    while heard.len() < 5 {
        let frame = listener.recv().await;
        if frame.get("seq").is_some() {
            heard.push(seq(&frame));
        }
    }
    assert_eq!(heard, seqs);
    assert!(listener.roundtrip("quiet").await.iter().all(|f| f.get("seq").is_none()));
}

/// Each bad pushed event is refused with its own code. A write refused by a rule is answered
/// for good: pushed again once the rule would allow it, it gets its first answer and changes
/// nothing (a write is applied at most once, and its answer does not change with the retry).
#[actix_web::test]
async fn each_bad_pushed_event_gets_its_code_and_a_refusal_stands() {
    let app = spawn_app().await;
    let push = |events: Value| {
        let request =
            app.http.post(app.url("/sync/push")).json(&json!({"device_id": "tablet", "events": events}));
        async move { request.send().await.expect("push").json::<Value>().await.expect("json") }
    };
    let cases = [
        (
            json!({"id": "e-1", "type": "device_update", "deviceId": "pc9", "data": {"isRunning": true}}),
            "DEVICE_NOT_FOUND",
        ),
        (json!({"type": "device_update", "deviceId": "pc9", "data": {}}), "INVALID_PAYLOAD"),
        (json!({"id": "e-3", "type": "sync_request", "device_id": "tablet"}), "INVALID_PAYLOAD"),
        (
            json!({"id": "e-4", "type": "data_update", "device_id": "someone-else", "table": "t", "record_id": 1, "data": {}}),
            "INSUFFICIENT_PERMISSIONS",
        ),
    ];
    for (event, code) in cases {
        let answer = push(json!([event])).await;
        assert_eq!(
            (
                answer["success"].as_bool(),
                answer["errors"].as_u64(),
                answer["results"][0]["error"]["code"].as_str()
            ),
            (Some(false), Some(1), Some(code)),
            "{answer}"
        );
    }
    app.create_station("pc9").await;
    let again =
        push(json!([{"id": "e-1", "type": "device_update", "deviceId": "pc9", "data": {"isRunning": true}}]))
            .await;
    assert_eq!(again["results"][0]["error"]["code"], "DEVICE_NOT_FOUND", "{again}");
    let station = app.station("pc9").await.expect("pc9");
    assert_eq!(station["data"]["isRunning"], false, "{station}");
    let bad = app
        .http
        .post(app.url("/sync/push"))
        .json(&json!({"device_id": "tablet"}))
        .send()
        .await
        .expect("push");
    assert_eq!(bad.status(), 400);
}

#[actix_web::test]
async fn a_full_sync_while_others_write_is_one_consistent_snapshot() {
    let app = spawn_app_with(|s| s.limits.messages_per_second = 100_000).await;
    let (mut writer, _) = app.device("office", 100).await;
    let (mut reader, _) = app.device("tablet", 20).await;
    app.create_station("pc1").await;
    for i in 0..20 {
        write(&mut writer, update("office", "stock", json!(i), json!({"qty": 0}))).await;
    }
    // Keep writing while the reader takes snapshots.
    let writes = async {
        for round in 1..=15 {
            for i in 0..20 {
                writer.send(update("office", "stock", json!(i), json!({"qty": round}))).await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let reads = async {
        let mut snapshots = Vec::new();
        for _ in 0..8 {
            let full = write(
                &mut reader,
                json!({"type": "sync_request", "device_id": "tablet", "sync_type": "full"}),
            )
            .await;
            snapshots.push(full);
        }
        snapshots
    };
    let ((), snapshots) = tokio::join!(writes, reads);
    let log = app.get_json("/sync/pull?since_seq=0&tables=stock&limit=10000").await;
    let changes = log["changes"].as_array().expect("changes");
    for full in snapshots {
        assert_eq!((full["sync_type"].as_str(), full["has_more"].as_bool()), (Some("full"), Some(false)));
        let at = full["last_seq"].as_u64().expect("last_seq");
        // What the log says every record was at `at`.
        let mut expected: HashMap<String, (i64, Value)> = HashMap::new();
        for c in changes.iter().filter(|c| seq(c) <= at) {
            expected.insert(
                c["record_id"].to_string(),
                (c["version"].as_i64().expect("version"), c["data"].clone()),
            );
        }
        let stock = full["data"]["stock"].as_array().expect("stock");
        assert_eq!(stock.len(), expected.len(), "every record written by {at}, no more");
        for record in stock {
            let (version, data) = &expected[&record["record_id"].to_string()];
            assert_eq!(record["version"].as_i64(), Some(*version), "at the version of seq {at}");
            assert_eq!(&record["data"], data);
        }
        assert_eq!(full["data"]["stations"][0]["record_id"], "pc1", "stations are part of the snapshot");
    }
}

#[actix_web::test]
async fn an_incremental_sync_by_timestamp_returns_what_committed_after_it() {
    let app = spawn_app().await;
    let (mut a, _) = app.device("office", 100).await;
    changes(&mut a, 3).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mark =
        write(&mut a, json!({"type": "ping"})).await["timestamp"].as_str().expect("timestamp").to_owned();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut after = Vec::new();
    for i in 0..4 {
        after.push(seq(&write(&mut a, update("office", "late", json!(i), json!({"i": i}))).await));
    }
    let response = write(
        &mut a,
        json!({"type": "sync_request", "device_id": "office", "sync_type": "incremental",
        "last_sync_timestamp": mark}),
    )
    .await;
    let got: Vec<u64> = response["changes"].as_array().expect("changes").iter().map(seq).collect();
    assert_eq!(got, after);
}

#[actix_web::test]
async fn queue_status_counts_what_the_device_has_not_confirmed() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    let (mut office, _) = app.device("office", 100).await;
    let (mut tablet, ack) = app.device("tablet", 20).await;
    assert_eq!(ack["sync_required"], true, "the station's creation is not confirmed yet");
    write(&mut tablet, json!({"type": "sync_complete", "device_id": "tablet"})).await;
    let seqs = changes(&mut office, 5).await;
    let status = write(&mut tablet, json!({"type": "queue_status", "device_id": "tablet"})).await;
    assert_eq!(status["type"], "queue_status_response");
    assert_eq!((status["pending_count"].as_u64(), status["status"].as_str()), (Some(5), Some("idle")));
    assert_eq!(status["queue_type"], "sync");

    let done = write(
        &mut tablet,
        json!({"type": "sync_complete", "device_id": "tablet", "last_seq": seqs[2], "changes_count": 3}),
    )
    .await;
    assert_eq!(
        (done["type"].as_str(), done["status"].as_str()),
        (Some("sync_complete_ack"), Some("success"))
    );
    assert!(done["next_sync_scheduled"].as_str().is_some_and(crate::helpers::is_server_time));
    let (told, _) = office.recv_until("sync_complete_ack").await;
    assert_eq!(told["device_id"], "tablet", "every session hears of it");
    let status = write(
        &mut tablet,
        json!({"type": "queue_status_request", "device_id": "tablet", "queue_type": "sync"}),
    )
    .await;
    assert_eq!(
        (status["pending_count"].as_u64(), status["confirmed_seq"].as_u64()),
        (Some(2), Some(seqs[2]))
    );
    assert_eq!(status["processing_count"], 2, "both were sent to it and are not confirmed yet");
    assert!(status.get("completed_count").is_none(), "a count the server cannot know is not made up");

    let error = write(
        &mut tablet,
        json!({"type": "sync_error", "device_id": "tablet", "error_type": "network",
        "error_message": "timeout", "sync_type": "incremental", "retry_count": 0}),
    )
    .await;
    assert_eq!(
        (error["type"].as_str(), error["status"].as_str()),
        (Some("sync_error_ack"), Some("retry_scheduled"))
    );
    assert!(error["retry_after"].as_str().is_some_and(crate::helpers::is_server_time));
    let status = write(&mut tablet, json!({"type": "queue_status", "device_id": "tablet"})).await;
    assert_eq!((status["status"].as_str(), status["error_count"].as_u64()), (Some("error"), Some(1)));
    let manual = write(
        &mut tablet,
        json!({"type": "sync_error", "device_id": "tablet", "error_type": "data",
        "error_message": "corrupt", "retry_count": 3}),
    )
    .await;
    assert_eq!(manual["status"], "manual_intervention");
    assert!(manual["retry_after"].is_null());

    let state = app.get_json("/sync/state/tablet").await;
    assert_eq!(
        (state["sync_status"].as_str(), state["pending_changes_count"].as_u64()),
        (Some("error"), Some(2))
    );
    assert_eq!(state["last_error_message"], "corrupt", "the message as the device sent it");
    assert_eq!(state["last_error_type"], "data", "the type in its own field");
    let status = app.get_json("/sync/status?device_id=tablet").await;
    assert_eq!(
        (status["pending_changes_count"].as_u64(), status["master_device_id"].as_str()),
        (Some(2), Some("office"))
    );
    let beyond =
        write(&mut tablet, json!({"type": "sync_complete", "device_id": "tablet", "last_seq": 999})).await;
    assert_eq!(
        (beyond["code"].as_str(), beyond["error_details"]["field"].as_str()),
        (Some("INVALID_PAYLOAD"), Some("last_seq"))
    );
}

#[actix_web::test]
async fn sync_state_can_be_read_and_set_over_rest() {
    let app = spawn_app().await;
    assert_eq!(app.get("/sync/state/tablet").await.status(), 404, "an unknown device has none");
    let response = app
        .http
        .put(app.url("/sync/state/tablet"))
        .json(
            &json!({"sync_status": "syncing", "pending_changes_count": 4, "last_error_message": "retrying"}),
        )
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        (body["success"].as_bool(), body["sync_state"]["sync_status"].as_str()),
        (Some(true), Some("syncing"))
    );
    assert_eq!(body["sync_state"]["client_pending_changes_count"], 4);
    assert_eq!(body["sync_state"]["last_error_message"], "retrying");
    let bad = app
        .http
        .put(app.url("/sync/state/tablet"))
        .json(&json!({"sync_status": "bored"}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(bad.status(), 400);
}

#[actix_web::test]
async fn critical_events_are_logged_broadcast_and_acknowledged() {
    let app = spawn_app().await;
    let (mut a, _) = app.device("till-1", 50).await;
    let (mut b, _) = app.device("till-2", 40).await;
    let acknowledged = write(
        &mut a,
        json!({"type": "critical_event", "device_id": "till-1", "event_type": "void_sale",
        "payload": {"sale": 17, "by": "مدير"}}),
    )
    .await;
    assert_eq!(acknowledged["type"], "acknowledged");
    let at = seq(&acknowledged);
    let (event, _) = b.recv_until("critical_event").await;
    assert_eq!(
        (event["event_type"].as_str(), event["device_id"].as_str()),
        (Some("void_sale"), Some("till-1"))
    );
    assert_eq!(event["payload"]["by"], "مدير");
    assert_eq!(seq(&event), at);
    write(&mut a, update("till-1", "products", json!(1), json!({}))).await;
    let critical = write(
        &mut b,
        json!({"type": "sync_request", "device_id": "till-2", "sync_type": "critical", "last_seq": 0}),
    )
    .await;
    let tables: Vec<&str> = critical["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["table_name"].as_str())
        .collect();
    assert_eq!(tables, ["critical_events"]);
    let ack = write(&mut b, json!({"type": "acknowledge", "device_id": "till-2", "seq": at})).await;
    assert_eq!((ack["type"].as_str(), ack["seq"].as_u64()), (Some("acknowledged"), Some(at)));
    assert_eq!(app.get_json("/sync/state/till-2").await["confirmed_seq"].as_u64(), Some(at));
}

#[actix_web::test]
async fn a_client_of_another_epoch_is_told_to_resync() {
    let app = spawn_app().await;
    let (mut a, _) = app.device("till-1", 50).await;
    changes(&mut a, 2).await;
    let resync = write(
        &mut a,
        json!({"type": "sync_request", "device_id": "till-1", "sync_type": "incremental",
        "last_seq": 1, "epoch": "another-database"}),
    )
    .await;
    assert_eq!(
        (resync["type"].as_str(), resync["reason"].as_str()),
        (Some("resync_required"), Some("epoch_mismatch"))
    );
    assert_eq!(resync["epoch"], epoch(&app).await.as_str());
    let mut b = crate::helpers::TestDevice::connect(&app, "till-2").await;
    b.send(
        json!({"type": "device_online", "device_id": "till-2", "last_seq": 1, "epoch": "another-database"}),
    )
    .await;
    let (ack, before) = b.recv_until("device_online_ack").await;
    assert!(before.iter().any(|f| f["type"] == "resync_required"), "{before:?}");
    assert_eq!(ack["status"], "success");
}

#[actix_web::test]
async fn malformed_sync_events_get_invalid_payload_naming_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let (mut a, _) = app.device("till-1", 50).await;
    write(&mut a, update("till-1", "products", json!(1), json!({"v": 1}))).await;
    let before = head(&app).await;
    let cases = [
        (json!({"type": "data_update", "device_id": "till-1", "record_id": 1, "data": {}}), "table_name"),
        (json!({"type": "data_update", "device_id": "till-1", "table": "products", "data": {}}), "record_id"),
        (
            json!({"type": "data_update", "device_id": "till-1", "table": "products", "record_id": true, "data": {}}),
            "record_id",
        ),
        (
            json!({"type": "data_update", "device_id": "till-1", "table": "products", "record_id": 1, "data": "x"}),
            "data",
        ),
        (
            json!({"type": "data_update", "device_id": "till-1", "table": "products", "record_id": 1, "data": {}, "operation": "merge"}),
            "operation",
        ),
        (
            json!({"type": "data_update", "device_id": "till-1", "table": "products", "record_id": 1, "data": {}, "base_version": "2"}),
            "base_version",
        ),
        (
            json!({"type": "data_update", "device_id": "till-1", "table": "stations", "record_id": "pc1", "data": {}}),
            "table",
        ),
        (
            json!({"type": "data_update", "device_id": "till-1", "table": "products", "record_id": 1, "data": {}, "timestamp": "soon"}),
            "timestamp",
        ),
        (json!({"type": "data_request", "device_id": "till-1", "table": "products"}), "record_id"),
        (
            json!({"type": "data_request", "device_id": "till-1", "table": "products", "request_type": "batch", "record_ids": [[1]]}),
            "record_ids",
        ),
        (json!({"type": "sync_request", "device_id": "till-1", "sync_type": "everything"}), "sync_type"),
        (json!({"type": "sync_request", "device_id": "till-1", "limit": 0}), "limit"),
        (json!({"type": "sync_request", "device_id": "till-1", "last_seq": -1}), "last_seq"),
        (json!({"type": "sync_request", "device_id": "till-1", "requested_tables": [1]}), "requested_tables"),
        (json!({"type": "sync_complete", "device_id": "till-1", "last_seq": "1"}), "last_seq"),
        (json!({"type": "sync_error", "device_id": "till-1", "error_message": "x"}), "error_type"),
        (json!({"type": "critical_event", "device_id": "till-1", "payload": {}}), "event_type"),
        (
            json!({"type": "critical_event", "device_id": "till-1", "event_type": "x", "payload": [1]}),
            "payload",
        ),
        (json!({"type": "acknowledge", "device_id": "till-1"}), "seq"),
        (json!({"type": "queue_status", "device_id": 5}), "device_id"),
    ];
    for (frame, field) in cases {
        let error = write(&mut a, frame.clone()).await;
        assert_eq!(error["code"], "INVALID_PAYLOAD", "{frame} -> {error}");
        assert_eq!(error["error_details"]["field"], field, "{frame} -> {error}");
    }
    let other = write(&mut a, update("till-2", "products", json!(1), json!({}))).await;
    assert_eq!(other["code"], "INSUFFICIENT_PERMISSIONS");
    assert_eq!(head(&app).await, before, "nothing was written");
    let unregistered = app.open().await;
    let mut unregistered = crate::helpers::TestDevice::from_ws(unregistered, "nobody");
    let error = write(&mut unregistered, update("nobody", "products", json!(1), json!({}))).await;
    assert_eq!(error["code"], "NOT_REGISTERED");
}

/// A change logged before the log kept each change's sync form (its `sync_change` empty) is
/// sent exactly as one logged after it: the same page, read before and after every other
/// change's sync form is blanked, is the same.
#[actix_web::test]
async fn changes_logged_before_their_sync_form_was_kept_are_sent_the_same() {
    use sea_orm::ConnectionTrait;

    let app = spawn_app_with(|_| {}).await;
    app.create_station("pc1").await;
    let (mut device, _) = app.device("office", 100).await;
    for (i, record_id) in [json!(7), json!("abc"), json!(8), json!("x-1"), json!(7)].into_iter().enumerate() {
        let reply = device
            .request(json!({"type": "data_update", "device_id": device.id, "table_name": "products",
                "record_id": record_id, "new_data": {"n": i, "name": "Flat white \"large\""}}))
            .await;
        assert_eq!(reply["type"], "data_update_ack", "{reply}");
    }
    let page = "/sync/pull?since_seq=0&limit=100";
    let before = app.get_json(page).await;
    assert!(before["changes"].as_array().is_some_and(|c| c.len() >= 6), "{before}");
    let dir = app.stop().await;
    {
        let url = crate::helpers::database_url(&dir);
        let db = sea_orm::Database::connect(url).await.expect("open the test database");
        let blanked = db
            .execute_unprepared("UPDATE change_log SET sync_change = NULL WHERE seq % 2 = 0")
            .await
            .expect("blank the sync forms");
        assert!(blanked.rows_affected() >= 3, "{} rows blanked", blanked.rows_affected());
        db.close().await.expect("close");
    }
    let app = crate::helpers::spawn_app_in(dir, |_| {}).await;
    let after = app.get_json(page).await;
    assert_eq!(after["changes"], before["changes"]);
    assert_eq!(after["last_seq"], before["last_seq"]);
}

/// One `sync_request` is answered at a time per session: one sent while the one before is being
/// answered (its read held up here) is refused (`RATE_LIMITED`), and the first is answered.
#[cfg(feature = "fault-injection")]
#[actix_web::test]
async fn one_sync_request_at_a_time_per_session() {
    let app = spawn_app().await;
    app.state.sessions.faults.delay_sync_reads(std::time::Duration::from_millis(500));
    let (mut tablet, _) = app.device("tablet", 10).await;
    let request =
        |id: &str| json!({"type": "sync_request", "id": id, "device_id": "tablet", "sync_type": "full"});
    tablet.send(request("first")).await;
    tablet.send(request("second")).await;
    let mut answers = std::collections::HashMap::new();
    while answers.len() < 2 {
        let frame = tablet.recv().await;
        if let Some(id) = frame["reply_to"].as_str() {
            answers.insert(id.to_owned(), frame.clone());
        }
    }
    assert_eq!(answers["first"]["type"], "sync_response", "{:?}", answers["first"]);
    assert_eq!(answers["second"]["code"], "RATE_LIMITED", "{:?}", answers["second"]);
}

/// A pushed `acknowledge` is held to the log's head, as over WebSocket: a position beyond it
/// would hide every later change from the device.
#[actix_web::test]
async fn a_pushed_acknowledge_beyond_the_head_is_refused() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    let acknowledge = |id: &str, seq: u64| {
        let event = json!({"id": id, "type": "acknowledge", "device_id": "tablet", "seq": seq});
        let request =
            app.http.post(app.url("/sync/push")).json(&json!({"device_id": "tablet", "events": [event]}));
        async move { request.send().await.expect("push").json::<Value>().await.expect("json") }
    };
    let pushed = acknowledge("a1", 1000).await;
    assert_eq!(pushed["results"][0]["error"]["code"], "INVALID_PAYLOAD", "{pushed}");
    let fine = acknowledge("a2", 1).await;
    assert_eq!(fine["results"][0]["status"], "applied", "{fine}");
}
