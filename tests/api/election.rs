//! Devices and master election: exactly one master, replaced within moments when it shuts down,
//! drops off or falls silent, with every election recorded.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{ADMIN_TOKEN, TestApp, spawn_app, spawn_app_in, spawn_app_with};

async fn master_of(app: &TestApp) -> Value {
    app.health().await["master_device"].clone()
}

/// `/sync/audit-logs` with the admin token.
async fn audit(app: &TestApp, query: &str) -> Value {
    let response =
        app.admin(reqwest::Method::GET, &format!("/sync/audit-logs{query}")).send().await.expect("GET");
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.expect("json")
}

async fn elect_over_rest(app: &TestApp, body: Value) -> reqwest::Response {
    app.admin(reqwest::Method::POST, "/master-election")
        .json(&body)
        .send()
        .await
        .expect("POST /master-election")
}

#[actix_web::test]
async fn the_first_device_online_becomes_master_at_once() {
    let app = spawn_app().await;
    assert_eq!(app.health().await["status"], "degraded", "no master yet");
    let mut ws = app.open().await;
    ws.send(json!({"type": "device_online", "device_id": "till-1", "device_name": "Till 1", "priority": 20}))
        .await;
    let mut frames = [ws.recv().await, ws.recv().await];
    frames.sort_by_key(|f| f["type"].as_str().map(str::to_owned));
    let (ack, elected) = (&frames[0], &frames[1]);
    assert_eq!(ack["type"], "device_online_ack");
    assert_eq!((ack["role"].as_str(), ack["assigned_role"].as_str()), (Some("master"), Some("master")));
    assert_eq!(ack["current_master"], "till-1");
    assert_eq!(ack["term"], 1, "the first master of a fresh database has term 1");
    assert_eq!(ack["status"], "success");
    assert_eq!(ack["heartbeat_interval_ms"], 200);
    assert_eq!(elected["type"], "master_elected");
    assert_eq!(elected["new_master_id"], "till-1");
    assert_eq!(elected["new_master_name"], "Till 1");
    assert_eq!(elected["election_reason"], "no_master");
    assert_eq!(elected["election_method"], "automatic");
    assert_eq!(elected["term"], 1);
    let health = app.health().await;
    assert_eq!(
        (health["status"].as_str(), health["master_device"].as_str()),
        (Some("healthy"), Some("till-1"))
    );
    assert_eq!(health["term"], 1);
    let logs = app.election_logs("").await;
    assert_eq!(logs["pagination"]["total"], 1);
    assert_eq!(logs["logs"][0]["election_reason"], "no_master");
    assert_eq!(logs["logs"][0]["election_method"], "automatic");
}

#[actix_web::test]
async fn a_higher_priority_arrival_stays_client() {
    let app = spawn_app().await;
    let (_till, _) = app.device("till-1", 20).await;
    let (mut office, ack) = app.device("office", 100).await;
    assert_eq!(ack["role"], "client");
    assert_eq!(ack["current_master"], "till-1");
    assert!(office.roundtrip("quiet").await.iter().all(|f| f["type"] != "master_election"), "no election");
    assert_eq!(master_of(&app).await, "till-1");
    assert_eq!(app.election_logs("").await["pagination"]["total"], 1);
}

#[actix_web::test]
async fn a_device_type_gives_its_priority() {
    let app = spawn_app().await;
    let (_till, _) = app.device("till-1", 20).await;
    let (_m, _) =
        app.device_with(json!({"type": "device_online", "device_id": "mgr", "device_type": "manager"})).await;
    let roles = app.get_json("/device/roles/mgr").await;
    assert_eq!(roles["priority"], 80);
    assert_eq!(roles["role"], "client");
    assert_eq!(roles["is_active"], true);
}

#[actix_web::test]
async fn master_shutdown_elects_the_highest_priority_with_ties_to_the_smallest_id() {
    let app = spawn_app().await;
    let (mut master, _) = app.device("a-master", 10).await;
    let (mut b, _) = app.device("till-b", 80).await;
    let (mut a, _) = app.device("till-a", 80).await;
    let (mut low, _) = app.device("till-c", 20).await;

    let started = Instant::now();
    master
        .send(json!({"type": "device_shutdown", "device_id": "a-master", "shutdown_reason": "closing"}))
        .await;
    let (ack, _) = master.recv_until("device_shutdown_ack").await;
    assert_eq!(ack["master_election_triggered"], true);
    let mut took = Vec::new();
    for device in [&mut b, &mut a, &mut low] {
        let (elected, before) = device.recv_until("master_elected").await;
        took.push(started.elapsed());
        let notice = before.iter().find(|f| f["type"] == "master_election").expect("master_election first");
        assert_eq!(notice["reason"], "shutdown");
        assert_eq!(notice["trigger_reason"], "shutdown");
        assert_eq!(notice["term"], 2);
        let candidates: Vec<&str> = notice["candidates"]
            .as_array()
            .expect("candidates")
            .iter()
            .filter_map(|c| c["device_id"].as_str())
            .collect();
        assert_eq!(candidates, ["till-a", "till-b", "till-c"], "the leaving master is no candidate");
        assert_eq!(elected["new_master_id"], "till-a");
        assert_eq!(elected["previous_master_id"], "a-master");
        assert_eq!(elected["previous_master"], "a-master");
        assert_eq!(elected["election_reason"], "shutdown");
        assert_eq!(elected["election_method"], "priority");
        assert_eq!(elected["devices_participating"], 3);
        assert_eq!(elected["term"], 2);
    }
    eprintln!("device_shutdown -> master_elected at each client: {took:?}");
    let health = app.health().await;
    assert_eq!((health["master_device"].as_str(), health["term"].as_u64()), (Some("till-a"), Some(2)));
    assert_eq!(app.get_json("/device/roles/a-master").await["is_active"], false);
    assert_eq!(app.get_json("/device/roles/till-a").await["role"], "master");
}

#[actix_web::test]
async fn a_former_master_that_restarts_is_a_client() {
    let app = spawn_app().await;
    let (mut master, _) = app.device("office", 100).await;
    let (mut till, _) = app.device("till-1", 20).await;
    master.send(json!({"type": "device_shutdown", "device_id": "office"})).await;
    assert_eq!(till.elected().await["new_master_id"], "till-1");
    master.close().await;

    let (_office, ack) = app.device("office", 100).await;
    assert_eq!(ack["role"], "client", "Option B: the current master keeps the role");
    assert_eq!(ack["current_master"], "till-1");
    assert_eq!(master_of(&app).await, "till-1");
}

#[actix_web::test]
async fn an_abrupt_master_drop_elects_after_the_grace_period() {
    let app = spawn_app_with(|s| s.election.reconnect_grace_s = 0.5).await;
    let (master, _) = app.device("office", 100).await;
    let (mut till, _) = app.device("till-1", 20).await;
    let dropped = Instant::now();
    drop(master); // no device_offline, no close handshake
    let elected = till.elected().await;
    let waited = dropped.elapsed();
    assert_eq!(elected["election_reason"], "failure");
    assert_eq!(elected["new_master_id"], "till-1");
    assert_eq!(elected["previous_master_id"], "office");
    assert!(waited >= Duration::from_millis(450), "it waited out the grace period ({waited:?})");
}

#[actix_web::test]
async fn a_master_back_within_the_grace_period_keeps_its_role() {
    let app = spawn_app_with(|s| s.election.reconnect_grace_s = 3.0).await;
    let (master, _) = app.device("office", 100).await;
    let (mut till, _) = app.device("till-1", 20).await;
    drop(master);
    app.wait_for_sessions(1).await;
    let (_office, ack) = app.device("office", 100).await;
    assert_eq!(ack["role"], "master");
    assert_eq!(ack["term"], 1, "no election ran");
    // Past the grace period nothing happens either.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert!(till.roundtrip("after-grace").await.iter().all(|f| f["type"] != "master_election"));
    assert_eq!(master_of(&app).await, "office");
    assert_eq!(app.election_logs("").await["pagination"]["total"], 1);
}

#[actix_web::test]
async fn a_silent_master_is_replaced_for_timeout() {
    let app = spawn_app_with(|s| s.heartbeat.timeout_s = 1.0).await;
    let (mut master, _) = app.device("office", 100).await;
    let (mut till, _) = app.device("till-1", 20).await;
    // The master says nothing and reads nothing (so it answers no ping) from here on.
    master.go_silent();
    let elected = till.elected().await;
    assert_eq!(elected["election_reason"], "timeout");
    assert_eq!(elected["new_master_id"], "till-1");
    master.resume();
    let (close, _) = master.recv_close().await;
    assert_eq!(close.expect("a close frame").code, CloseCode::Library(4001));
    assert_eq!(app.get_json("/device/roles/office").await["is_active"], false);
}

#[actix_web::test]
async fn heartbeats_keep_a_device_alive_and_are_acknowledged() {
    let app = spawn_app_with(|s| s.heartbeat.timeout_s = 1.0).await;
    let (mut master, _) = app.device("office", 100).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        master.send(json!({"type": "heartbeat", "id": "hb", "device_id": "office", "status": "healthy", "uptime_seconds": 5})).await;
        let (ack, _) = master.recv_until("heartbeat_ack").await;
        assert_eq!(
            (ack["device_id"].as_str(), ack["status"].as_str()),
            (Some("office"), Some("acknowledged"))
        );
        assert_eq!(ack["reply_to"], "hb");
        assert!(ack["server_time"].as_str().is_some_and(crate::helpers::is_server_time));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(master_of(&app).await, "office");
}

#[actix_web::test]
async fn a_candidate_that_never_acknowledges_is_skipped() {
    let app = spawn_app_with(|s| s.election.ack_timeout_s = 0.5).await;
    let (mut master, _) = app.device("office", 100).await;
    let (mut silent, _) = app.device("tablet", 90).await;
    silent.confirm_role_changes(false);
    let (mut till, _) = app.device("till-1", 50).await;
    master.send(json!({"type": "device_shutdown", "device_id": "office"})).await;
    let (elected, before) = till.recv_until("master_elected").await;
    let asked: Vec<&str> = before
        .iter()
        .filter(|f| f["type"] == "role_change" && f["new_role"] == "master")
        .filter_map(|f| f["device_id"].as_str())
        .collect();
    assert_eq!(asked, ["tablet", "till-1"], "the silent candidate first, then the next");
    assert_eq!(elected["new_master_id"], "till-1");
    assert_eq!(silent.elected().await["new_master_id"], "till-1");
    let skips = audit(&app, "?device_id=tablet&event_type=master_election").await;
    assert_eq!(skips["logs"][0]["status"], "error", "the skip is audited: {skips}");
}

#[actix_web::test]
async fn when_no_candidate_confirms_the_election_fails_and_the_next_arrival_becomes_master() {
    let app = spawn_app_with(|s| s.election.ack_timeout_s = 0.3).await;
    let (mut master, _) = app.device("office", 100).await;
    let (mut a, _) = app.device("till-1", 50).await;
    let (mut b, _) = app.device("till-2", 40).await;
    a.confirm_role_changes(false);
    b.confirm_role_changes(false);
    master.send(json!({"type": "device_shutdown", "device_id": "office"})).await;
    for device in [&mut a, &mut b] {
        let (failed, before) = device.recv_until("error").await;
        assert_eq!(failed["code"], "ELECTION_FAILED");
        assert_eq!(failed["numeric_code"], 4003);
        assert_eq!(before.iter().filter(|f| f["type"] == "role_change").count(), 2, "both were asked");
    }
    let health = app.health().await;
    assert_eq!(health["status"], "degraded");
    assert!(health["master_device"].is_null());
    assert_eq!(health["election_failed"], true);

    let (_late, ack) = app.device("till-3", 10).await;
    assert_eq!(ack["role"], "master", "a device coming online while there is no master becomes master");
    // Above the terms its two attempts asked in (2 and 3): no term is asked in twice.
    assert_eq!(ack["term"], 4);
    assert_eq!(app.health().await["status"], "healthy");
}

#[actix_web::test]
async fn two_triggers_at_once_give_one_election() {
    let app = spawn_app_with(|s| s.election.ack_timeout_s = 1.0).await;
    let (master, _) = app.device("office", 100).await;
    let (mut till, _) = app.device("till-1", 20).await;
    // The first candidate (office) does not confirm, so the election is surely still running
    // when the second trigger comes; it then goes to till-1, which confirms.
    master.confirm_role_changes(false);
    let first = actix_web::rt::spawn({
        let (http, url) = (app.http.clone(), app.url("/master-election"));
        async move {
            let response =
                http.post(url).bearer_auth(ADMIN_TOKEN).json(&json!({"reason": "one"})).send().await;
            response.expect("POST").json::<Value>().await.expect("json")
        }
    });
    let (started, _) = till.recv_until("master_election").await;
    let second: Value = elect_over_rest(&app, json!({"reason": "two"})).await.json().await.expect("json");
    let first = first.await.expect("the first request");
    assert_eq!(first["election_id"], second["election_id"], "{first} {second}");
    assert_eq!(first["election_id"], started["election_id"]);
    // Its second attempt's term: the first (2) was asked of office.
    assert_eq!((first["term"].as_u64(), first["new_master_id"].as_str()), (Some(3), Some("till-1")));
    assert_eq!(app.election_logs("").await["pagination"]["total"], 2);
}

#[actix_web::test]
async fn a_manual_election_over_rest_needs_the_admin_token_and_honours_the_preferred_master() {
    let app = spawn_app().await;
    let response = app.http.post(app.url("/master-election")).json(&json!({})).send().await.expect("POST");
    assert_eq!(response.status(), 401);
    let response = elect_over_rest(&app, json!({})).await;
    assert_eq!(response.status(), 409, "no device to elect");
    assert_eq!(response.json::<Value>().await.expect("json")["code"], "NO_CANDIDATES");

    let (mut master, _) = app.device("office", 100).await;
    let (_till, _) = app.device("till-1", 0).await;
    let response = elect_over_rest(
        &app,
        json!({"reason": "rota", "initiated_by": "owner", "preferred_master": "till-1"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["new_master_id"], "till-1");
    assert_eq!(body["previous_master_id"], "office");
    assert_eq!(body["term"], 2);
    assert_eq!(body["devices_participating"], 2);
    let (elected, _) = master.recv_until("master_elected").await;
    assert_eq!(elected["election_method"], "manual");
    let (demoted, _) = master.recv_until("role_change").await;
    assert_eq!(
        (demoted["device_id"].as_str(), demoted["new_role"].as_str()),
        (Some("office"), Some("client"))
    );

    // Without a preference the current master is a candidate too; the term still grows.
    let body: Value = elect_over_rest(&app, json!({})).await.json().await.expect("json");
    assert_eq!((body["new_master_id"].as_str(), body["term"].as_u64()), (Some("office"), Some(3)));
}

#[actix_web::test]
async fn a_manual_election_over_websocket_needs_the_master_or_a_high_priority() {
    let app = spawn_app().await;
    let (_master, _) = app.device("till-1", 10).await;
    let (mut low, _) = app.device("till-2", 20).await;
    let (mut manager, _) = app.device("mgr", 80).await;
    low.send(json!({"type": "master_election", "id": "e1", "reason": "manual"})).await;
    let (error, _) = low.recv_until("error").await;
    assert_eq!(
        (error["code"].as_str(), error["reply_to"].as_str()),
        (Some("INSUFFICIENT_PERMISSIONS"), Some("e1"))
    );

    manager
        .send(
            json!({"type": "master_election", "id": "e2", "reason": "manual", "preferred_master": "till-2"}),
        )
        .await;
    let (elected, _) = manager.recv_until("master_elected").await;
    assert_eq!(elected["reply_to"], "e2", "the requester's answer");
    assert_eq!(elected["new_master_id"], "till-2");
    let (seen_by_low, _) = low.recv_until("master_elected").await;
    assert_eq!(seen_by_low["election_id"], elected["election_id"]);
    assert!(seen_by_low.get("reply_to").is_none());
}

#[actix_web::test]
async fn put_device_role_elects_or_demotes() {
    let app = spawn_app().await;
    let (_master, _) = app.device("office", 100).await;
    let (_till, _) = app.device("till-1", 20).await;
    let put = |id: &str, body: Value| {
        app.admin(reqwest::Method::PUT, &format!("/device/roles/{id}")).json(&body).send()
    };

    let response = app
        .http
        .put(app.url("/device/roles/till-1"))
        .json(&json!({"role": "master"}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 401);
    let response = put("till-1", json!({"role": "master", "reason": "day shift"})).await.expect("PUT");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["success"], true);
    assert_eq!((body["device_id"].as_str(), body["new_role"].as_str()), (Some("till-1"), Some("master")));
    assert_eq!(body["reason"], "day shift");
    assert_eq!(master_of(&app).await, "till-1");

    let response = put("till-1", json!({"role": "client", "reason": "night"})).await.expect("PUT");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["new_role"], "client");
    assert_eq!(master_of(&app).await, "office", "demoting the master elects another");

    let response = put("ghost", json!({"role": "master"})).await.expect("PUT");
    assert_eq!(response.status(), 404);
    let response = put("till-1", json!({"role": "boss"})).await.expect("PUT");
    assert_eq!(response.status(), 400);

    let (mut gone, _) = app.device("tablet", 30).await;
    gone.send(json!({"type": "device_offline", "device_id": "tablet", "reason": "break"})).await;
    let (ack, _) = gone.recv_until("device_offline_ack").await;
    assert_eq!(ack["master_election_triggered"], false);
    let response = put("tablet", json!({"role": "master"})).await.expect("PUT");
    assert_eq!(response.status(), 409);
    assert_eq!(response.json::<Value>().await.expect("json")["code"], "DEVICE_NOT_ACTIVE");
}

#[actix_web::test]
async fn a_master_going_offline_is_replaced_and_its_session_stays_open() {
    let app = spawn_app().await;
    let (mut master, _) = app.device("office", 100).await;
    let (mut till, _) = app.device("till-1", 20).await;
    master.send(json!({"type": "device_offline", "device_id": "office", "reason": "network"})).await;
    let (ack, _) = master.recv_until("device_offline_ack").await;
    assert_eq!(ack["master_election_triggered"], true);
    assert_eq!(ack["status"], "success");
    let elected = till.elected().await;
    assert_eq!(elected["election_reason"], "offline");
    assert!(master.roundtrip("still-open").await.iter().all(|f| f["type"] != "error"));
}

#[actix_web::test]
async fn a_device_may_speak_only_for_itself() {
    let app = spawn_app().await;
    let mut ws = app.open().await;
    ws.send(json!({"type": "heartbeat", "device_id": "till-1"})).await;
    assert_eq!(ws.expect("error").await["code"], "NOT_REGISTERED");
    ws.send(json!({"type": "device_shutdown", "device_id": "till-1"})).await;
    assert_eq!(ws.expect("error").await["code"], "NOT_REGISTERED");

    let (mut till, _) = app.device("till-1", 20).await;
    let (_other, _) = app.device("till-2", 20).await;
    for event in [
        json!({"type": "heartbeat", "device_id": "till-2"}),
        json!({"type": "device_shutdown", "device_id": "till-2"}),
        json!({"type": "device_offline", "device_id": "till-2"}),
        json!({"type": "role_change_ack", "device_id": "till-2", "new_role": "master"}),
        json!({"type": "device_online", "device_id": "till-2"}),
    ] {
        till.send(event.clone()).await;
        let (error, _) = till.recv_until("error").await;
        assert_eq!(error["code"], "INSUFFICIENT_PERMISSIONS", "{event}");
        assert_eq!(error["numeric_code"], 3003);
    }
    let roles = app.get_json("/device/roles").await;
    let active: Vec<bool> =
        roles["devices"].as_array().expect("devices").iter().map(|d| d["is_active"] == true).collect();
    assert_eq!(active, [true, true], "nothing changed");
}

#[actix_web::test]
async fn a_newer_session_for_the_same_device_replaces_the_older() {
    let app = spawn_app().await;
    let (mut first, _) = app.device("office", 100).await;
    let (_second, ack) = app.device("office", 100).await;
    assert_eq!(ack["role"], "master", "the device is still the master");
    let (close, before) = first.recv_close().await;
    assert!(before.iter().any(|f| f["code"] == "SESSION_REPLACED"), "{before:?}");
    assert_eq!(close.expect("a close frame").code, CloseCode::Library(4009));
    app.wait_for_sessions(1).await;
    assert_eq!(master_of(&app).await, "office");
    assert_eq!(app.health().await["term"], 1);
}

#[actix_web::test]
async fn preempt_lets_a_higher_priority_arrival_take_over() {
    let app = spawn_app_with(|s| s.election.preempt = true).await;
    let (mut till, _) = app.device("till-1", 20).await;
    let (_office, ack) = app.device("office", 100).await;
    assert_eq!(ack["role"], "client", "a client first; the election follows");
    // till-1's own announcement (term 1) may still be on its way; the preemption is term 2.
    let elected = loop {
        let elected = till.elected().await;
        if elected["term"] == 2 {
            break elected;
        }
    };
    assert_eq!(elected["new_master_id"], "office");
    assert_eq!(elected["election_reason"], "preempt");
}

#[actix_web::test]
async fn election_logs_paginate_newest_first() {
    let app = spawn_app().await;
    let (_a, _) = app.device("a", 50).await;
    let (_b, _) = app.device("b", 40).await;
    for preferred in ["b", "a", "b", "a"] {
        let response = elect_over_rest(&app, json!({"preferred_master": preferred})).await;
        assert_eq!(response.status(), 200);
    }
    let page = app.election_logs("?limit=2&offset=0").await;
    assert_eq!(page["pagination"], json!({"limit": 2, "offset": 0, "total": 5}));
    let terms: Vec<i64> =
        page["logs"].as_array().expect("logs").iter().filter_map(|l| l["term"].as_i64()).collect();
    assert_eq!(terms, [5, 4]);
    let page = app.election_logs("?limit=2&offset=4").await;
    let terms: Vec<i64> =
        page["logs"].as_array().expect("logs").iter().filter_map(|l| l["term"].as_i64()).collect();
    assert_eq!(terms, [1]);
    assert_eq!(page["logs"][0]["new_master_id"], "a");
    let bad = app.get("/sync/master-election-logs?limit=0").await;
    assert_eq!(bad.status(), 400);
    let bad = app.get("/sync/master-election-logs?offset=-3").await;
    assert_eq!(bad.status(), 400);
}

#[actix_web::test]
async fn audit_logs_are_for_admins_and_filter() {
    let app = spawn_app().await;
    let (mut till, _) = app.device("till-1", 20).await;
    till.send(json!({"type": "device_offline", "device_id": "till-1"})).await;
    till.recv_until("device_offline_ack").await;
    assert_eq!(app.get("/sync/audit-logs").await.status(), 401);
    let all = audit(&app, "?device_id=till-1&limit=100").await;
    let events: Vec<&str> =
        all["logs"].as_array().expect("logs").iter().filter_map(|l| l["event_type"].as_str()).collect();
    assert!(events.contains(&"device_online") && events.contains(&"device_offline"), "{events:?}");
    assert!(events.contains(&"master_elected"));
    let offline = audit(&app, "?event_type=device_offline").await;
    assert_eq!(offline["pagination"]["total"], 1);
    let since_tomorrow = audit(&app, "?start_date=2999-01-01T00:00:00Z").await;
    assert_eq!(since_tomorrow["pagination"]["total"], 0);
    let bad = app
        .http
        .get(app.url("/sync/audit-logs?start_date=soon"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(bad.status(), 400);
}

#[actix_web::test]
async fn the_term_survives_a_restart_and_every_device_starts_inactive() {
    let app = spawn_app().await;
    let (mut master, _) = app.device("office", 100).await;
    let (mut till, _) = app.device("till-1", 20).await;
    master.send(json!({"type": "device_shutdown", "device_id": "office"})).await;
    till.elected().await;
    assert_eq!(app.health().await["term"], 2);
    drop(till);
    drop(master);
    let dir = app.stop().await;

    let app = spawn_app_in(dir, |_| {}).await;
    let health = app.health().await;
    assert_eq!(health["term"], 2);
    assert!(health["master_device"].is_null());
    let roles = app.get_json("/device/roles").await;
    assert!(
        roles["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .all(|d| d["is_active"] == false && d["role"] == "client")
    );
    let (_office, ack) = app.device("office", 100).await;
    assert_eq!((ack["role"].as_str(), ack["term"].as_u64()), (Some("master"), Some(3)));
}

#[actix_web::test]
async fn register_device_and_rest_registration_work() {
    let app = spawn_app().await;
    let mut ws = app.open().await;
    ws.send(json!({"type": "register_device", "device_id": "legacy-1", "role": "master", "priority": 5}))
        .await;
    let (registered, _) = ws.recv_until("registered").await;
    assert_eq!(
        (registered["device_id"].as_str(), registered["role"].as_str()),
        (Some("legacy-1"), Some("master"))
    );

    let response = app
        .http
        .post(app.url("/device/register"))
        .json(&json!({"device_id": "tablet-9", "role": "master", "priority": 70, "capabilities": ["sync", "print"]}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["success"], true);
    assert_eq!(body["role"], "client", "registering over REST does not make a master");
    assert_eq!(body["master_device_id"], "legacy-1");
    assert_eq!(body["sync_status"], "disconnected");
    let tablet = app.get_json("/device/roles/tablet-9").await;
    assert_eq!((tablet["priority"].as_i64(), tablet["is_active"].as_bool()), (Some(70), Some(false)));
    assert_eq!(tablet["capabilities"], json!(["sync", "print"]));
    let response =
        app.http.post(app.url("/device/register")).json(&json!({"priority": 5})).send().await.expect("POST");
    assert_eq!(response.status(), 400);
    assert_eq!(app.get("/device/roles/nobody").await.status(), 404);
}

#[actix_web::test]
async fn network_status_reports_connections_and_heartbeats() {
    let app = spawn_app().await;
    let (_till, _) = app.device("till-1", 20).await;
    let network = app.get_json("/system/network").await;
    assert_eq!(network["network_status"], "connected");
    assert_eq!(network["active_connections"], 1);
    assert!(network["last_heartbeat"].as_str().is_some_and(crate::helpers::is_server_time));
}

#[actix_web::test]
async fn a_master_whose_connection_resets_after_answering_pings_is_replaced_for_failure() {
    let app = spawn_app_with(|s| {
        s.heartbeat.interval_s = 0.2;
        s.heartbeat.timeout_s = 2.0;
        s.election.reconnect_grace_s = 0.5;
    })
    .await;
    let mut master = app.open().await;
    master.send(json!({"type": "device_online", "device_id": "office", "priority": 100})).await;
    let (ack, _) = master.recv_until("device_online_ack").await;
    assert_eq!(ack["role"], "master");
    let (mut till, _) = app.device("till-1", 20).await;

    // For twice the heartbeat timeout the master sends no message of its own: it only reads,
    // and so answers the server's pings with pong frames. That is life; it stays master.
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < until {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        match tokio::time::timeout(Duration::from_millis(50), master.stream().next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Close(frame)))) => panic!("the master was closed: {frame:?}"),
            Ok(None | Some(Err(_))) => panic!("the master's connection ended"),
            _ => {}
        }
    }
    assert!(pings >= 10, "the server pinged ({pings})");
    assert_eq!(master_of(&app).await, "office", "pongs kept the master alive");

    // Then its connection is reset: no close frame, an RST.
    let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = master.stream().get_ref() else {
        panic!("a plain TCP stream")
    };
    socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO)).expect("SO_LINGER 0");
    drop(master);
    let elected = till.elected().await;
    assert_eq!(elected["election_reason"], "failure", "a drop is a failure, not a timeout: {elected}");
    assert_eq!(elected["new_master_id"], "till-1");
    assert_eq!(elected["previous_master_id"], "office");
}

#[actix_web::test]
async fn a_shutdowns_reason_and_pending_operations_go_into_the_audit() {
    let app = spawn_app().await;
    let (mut till, _) = app.device("till-1", 20).await;
    let ack = till
        .request(json!({"type": "device_shutdown", "device_id": "till-1", "shutdown_reason": "closing time",
            "pending_operations": 2}))
        .await;
    assert_eq!(ack["type"], "device_shutdown_ack");
    let logs = audit(&app, "?event_type=device_shutdown").await;
    let details = logs["logs"][0]["details"].as_str().unwrap_or_default().to_owned();
    assert!(details.contains("closing time") && details.contains("2 operations pending"), "{logs}");
}

/// An admin retires a device: its record, role and sync state go, and its session is closed
/// (4010). The master cannot be retired (elect another first); an unknown device is 404.
#[actix_web::test]
async fn an_admin_retires_a_device_but_not_the_master() {
    let app = spawn_app().await;
    let (_office, online) = app.device("office", 100).await;
    assert_eq!(online["role"], "master");
    let (mut tablet, _) = app.device("tablet", 10).await;
    let retire = |id: &str| app.admin(reqwest::Method::DELETE, &format!("/device/{id}")).send();
    let refused = retire("office").await.expect("DELETE");
    assert_eq!(refused.status(), 409);
    assert_eq!(refused.json::<Value>().await.expect("json")["code"], "DEVICE_BUSY");
    assert_eq!(retire("no-such-device").await.expect("DELETE").status(), 404);
    let response = app.http.delete(app.url("/device/tablet")).send().await.expect("DELETE");
    assert_eq!(response.status(), 401, "an admin endpoint");

    assert_eq!(retire("tablet").await.expect("DELETE").status(), 204);
    let (close, _) = tablet.recv_close().await;
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4010));
    let roles = app.get_json("/device/roles").await;
    let ids: Vec<&str> = roles["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter_map(|d| d["device_id"].as_str())
        .collect();
    assert_eq!(ids, ["office"], "{roles}");
    let audit = app
        .admin(reqwest::Method::GET, "/sync/audit-logs?event_type=device_retired")
        .send()
        .await
        .expect("GET");
    assert_eq!(audit.json::<Value>().await.expect("json")["pagination"]["total"], 1);
}

/// A device neither connected nor seen for `election.device_keep_days` is retired: devices
/// that came once and never again do not pile up.
#[actix_web::test]
async fn a_device_unseen_for_long_is_retired() {
    let app = spawn_app_with(|s| s.election.device_keep_days = 1.0 / 86_400.0).await;
    let (_office, _) = app.device("office", 100).await;
    let (once, _) = app.device("once", 10).await;
    once.close().await;
    let deadline = std::time::Instant::now() + crate::helpers::WAIT;
    loop {
        let roles = app.get_json("/device/roles").await;
        let ids: Vec<String> = roles["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .filter_map(|d| d["device_id"].as_str().map(str::to_owned))
            .collect();
        if ids == ["office"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {ids:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
