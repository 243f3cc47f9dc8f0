//! Bad input, generated: mutations of a valid example of every event (wrong types in every
//! field, missing and extra fields, deep nesting, huge arrays and strings, truncated and random
//! text, binary and invalid UTF-8 frames), thrown at the decoder, at a live session, and at
//! every REST endpoint. Nothing may panic; every frame is answered or the session closed as the
//! contract says; rejected input changes nothing; REST answers 4xx with the error body, never
//! 5xx.
//!
//! `FUZZ_CASES` scales the number of cases (default: a short run for `make test`; `make fuzz`
//! runs many more), `FUZZ_SEED` picks the seed (default fixed, so CI is repeatable; `make fuzz`
//! uses a random one and prints it).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

use crate::helpers::{ADMIN_TOKEN, Received, TestApp, WsClient, spawn_app_with};

fn cases(default: usize) -> usize {
    let scale: usize = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    default * scale
}

fn rng() -> (StdRng, u64) {
    let seed = std::env::var("FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261122);
    (StdRng::seed_from_u64(seed), seed)
}

/// A valid example of every client event.
fn templates() -> Vec<Value> {
    vec![
        json!({"type": "connect", "clientId": "c", "last_seq": 0}),
        json!({"type": "ping"}),
        json!({"type": "device_update", "deviceId": "pc1", "data": {"isRunning": true, "elapsedSeconds": 5, "mode": "single", "customerCount": 2, "notes": "n"}}),
        json!({"type": "order_placed", "deviceId": "pc1", "orders": [{"name": "tea", "price": 100, "quantity": 1, "notes": "", "firstOrderTime": "2026-02-03T02:25:33+03:00"}]}),
        json!({"type": "order_updated", "deviceId": "pc1", "orderIndex": 0, "data": {"quantity": 2}}),
        json!({"type": "order_deleted", "deviceId": "pc1", "orderIndex": 0}),
        json!({"type": "device_transfer", "fromDeviceId": "pc1", "toDeviceId": "pc2"}),
        json!({"type": "device_reset", "deviceId": "pc2"}),
        json!({"type": "device_deleted", "deviceId": "pc9"}),
        json!({"type": "device_online", "device_id": "fuzz", "priority": 10, "capabilities": ["x"], "last_seq": 0}),
        json!({"type": "register_device", "device_id": "fuzz", "role": "client"}),
        json!({"type": "heartbeat", "device_id": "fuzz", "status": "healthy", "uptime_seconds": 1, "cpu_usage": 0.5}),
        json!({"type": "device_offline", "device_id": "fuzz", "reason": "net"}),
        json!({"type": "role_change_ack", "device_id": "fuzz", "new_role": "master", "status": "success"}),
        json!({"type": "master_election", "reason": "manual", "preferred_master": "fuzz"}),
        json!({"type": "data_update", "device_id": "fuzz", "table_name": "t", "record_id": 1, "new_data": {"a": 1}, "operation": "insert", "base_version": 0}),
        json!({"type": "sync_conflict", "device_id": "fuzz", "table": "t", "record_id": "1", "local_version": 1, "server_version": 1, "local_data": {"a": 2}}),
        json!({"type": "data_request", "device_id": "fuzz", "table": "t", "request_type": "batch", "record_ids": [1, 2]}),
        json!({"type": "sync_request", "device_id": "fuzz", "sync_type": "incremental", "last_seq": 0, "limit": 5, "requested_tables": ["t"]}),
        json!({"type": "sync_complete", "device_id": "fuzz", "last_seq": 0, "changes_count": 0}),
        json!({"type": "sync_error", "device_id": "fuzz", "error_type": "network", "error_message": "x", "retry_count": 1}),
        json!({"type": "queue_status", "device_id": "fuzz"}),
        json!({"type": "critical_event", "device_id": "fuzz", "event_type": "e", "payload": {"k": 1}}),
        json!({"type": "acknowledge", "device_id": "fuzz", "seq": 0}),
    ]
}

/// A random JSON value, sometimes a hostile one.
fn value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..14) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random_range(-3i64..3)),
        4 => json!(rng.random::<f64>() * 1e6 - 5e5),
        5 => json!(u64::MAX),
        6 => Value::String(text(rng, 40)),
        7 => Value::String("x".repeat(rng.random_range(60_000..70_000))),
        8 if depth < 3 => Value::Array((0..rng.random_range(0..5)).map(|_| value(rng, depth + 1)).collect()),
        9 if depth < 3 => {
            let mut m = Map::new();
            for _ in 0..rng.random_range(0..4) {
                m.insert(text(rng, 8), value(rng, depth + 1));
            }
            Value::Object(m)
        }
        10 => nested(rng.random_range(60..70)),
        11 => Value::Array(vec![json!(1); rng.random_range(990..1100)]),
        12 => json!("2026-13-45T99:99:99Z"),
        _ => json!("٣٤ كولا 🎮"),
    }
}

fn nested(depth: usize) -> Value {
    let mut v = json!(0);
    for _ in 0..depth {
        v = json!([v]);
    }
    v
}

fn text(rng: &mut StdRng, max: usize) -> String {
    let pool = ['a', 'Z', '0', '-', '_', ' ', '"', '\\', '{', '}', 'ب', '٣', '🎮', '\u{0}', '\u{200f}', 'é'];
    (0..rng.random_range(0..max)).map(|_| pool[rng.random_range(0..pool.len())]).collect()
}

/// A mutation of a template: one field changed, removed or added, or the type changed.
fn mutated(rng: &mut StdRng, templates: &[Value]) -> Value {
    let mut v = templates[rng.random_range(0..templates.len())].clone();
    let Value::Object(map) = &mut v else { return v };
    let keys: Vec<String> = map.keys().cloned().collect();
    for _ in 0..rng.random_range(1..3) {
        match rng.random_range(0..6) {
            0 | 1 => {
                let key = &keys[rng.random_range(0..keys.len())];
                map.insert(key.clone(), value(rng, 0));
            }
            2 => {
                let key = &keys[rng.random_range(0..keys.len())];
                map.remove(key);
            }
            3 => {
                map.insert(text(rng, 12), value(rng, 0));
            }
            4 => {
                // A nested field: into `data`, `orders[0]` or `new_data`.
                for key in ["data", "new_data", "local_data"] {
                    if let Some(Value::Object(inner)) = map.get_mut(key) {
                        let k = inner.keys().next().cloned().unwrap_or_else(|| "k".into());
                        inner.insert(k, value(rng, 1));
                    }
                }
                if let Some(Value::Array(orders)) = map.get_mut("orders")
                    && let Some(Value::Object(order)) = orders.first_mut()
                {
                    let k = ["name", "price", "quantity", "notes", "firstOrderTime"][rng.random_range(0..5)];
                    order.insert(k.into(), value(rng, 1));
                }
            }
            _ => {
                map.insert("type".into(), Value::String(text(rng, 16)));
            }
        }
    }
    v
}

/// One text frame's worth of generated input.
fn frame_text(rng: &mut StdRng, templates: &[Value]) -> String {
    match rng.random_range(0..10) {
        0 => {
            let s = mutated(rng, templates).to_string();
            let cut = rng.random_range(0..s.len().max(1));
            s.char_indices()
                .map(|(i, _)| i)
                .take_while(|i| *i <= cut)
                .last()
                .map_or(String::new(), |i| s[..i].to_owned())
        }
        1 => text(rng, 200),
        2 => value(rng, 0).to_string(),
        _ => mutated(rng, templates).to_string(),
    }
}

#[test]
fn the_decoder_never_panics_and_rejects_only_with_the_documented_codes() {
    let (mut rng, seed) = rng();
    let templates = templates();
    let n = cases(20_000);
    let (mut decoded, mut rejected) = (0, 0);
    for _ in 0..n {
        let text = frame_text(&mut rng, &templates);
        match device_sync::protocol::inbound::decode(&text) {
            Ok(_) => decoded += 1,
            Err(r) => {
                rejected += 1;
                let code = r.error.code.as_str();
                assert!(
                    code == "INVALID_PAYLOAD" || code == "UNKNOWN_EVENT",
                    "seed {seed}: {code} for {text}"
                );
                if code == "INVALID_PAYLOAD" {
                    assert!(r.error.details.is_some(), "seed {seed}: no details for {text}");
                }
            }
        }
    }
    for template in &templates {
        assert!(device_sync::protocol::inbound::decode(&template.to_string()).is_ok(), "{template}");
    }
    eprintln!("decoder: {n} frames (seed {seed}): {decoded} decoded, {rejected} rejected, no panic");
}

/// A registered session for the fuzzer (a reconnect after a close).
async fn fuzz_session(app: &TestApp) -> WsClient {
    let mut ws = app.open().await;
    ws.send(json!({"type": "device_online", "id": "online", "device_id": "fuzz", "priority": 90})).await;
    loop {
        if ws.recv().await["reply_to"] == "online" {
            return ws;
        }
    }
}

/// What a frame is owed.
enum Owed {
    /// An `error`, before anything sent after it is answered, with this `reply_to`; and no
    /// change.
    Rejection(Option<String>),
    /// A reply to this id, possibly later (it may wait for a commit).
    Reply(String),
    /// Nothing: a valid event without an id has no reply of its own.
    Nothing,
}

#[actix_web::test]
async fn a_live_session_answers_every_generated_frame_and_rejected_ones_change_nothing() {
    use device_sync::protocol::inbound::decode;
    let app = spawn_app_with(|s| {
        s.limits.messages_per_second = 1_000_000;
        s.limits.max_message_bytes = 256 * 1024;
        s.election.ack_timeout_s = 0.05;
        s.election.backoff_ms = vec![10];
        s.election.max_retries = 1;
    })
    .await;
    app.create_station("pc1").await;
    app.create_station("pc2").await;
    let (mut rng, seed) = rng();
    let templates = templates();
    let mut ws = fuzz_session(&app).await;
    let n = cases(400);
    let (mut rejected, mut replied, mut closed) = (0, 0, 0);
    for case in 0..n {
        let id = format!("f{case}");
        let (message, owed, expect_close) = match rng.random_range(0..40) {
            0 => (Message::binary(vec![0xff, 0x00, 0x7b]), Owed::Rejection(None), None),
            1 => {
                // Invalid UTF-8 in a text frame: a protocol violation, closed with 1007.
                let frame = Frame::message(vec![b'{', 0xc3, 0x28, b'}'], OpCode::Data(Data::Text), true);
                (Message::Frame(frame), Owed::Nothing, Some(CloseCode::Invalid))
            }
            2 => {
                let big = format!(r#"{{"type":"ping","id":"{id}","pad":"{}"}}"#, "x".repeat(300 * 1024));
                (Message::text(big), Owed::Nothing, Some(CloseCode::Size))
            }
            _ => {
                let text = frame_text(&mut rng, &templates);
                // Most frames carry an id, so that each one's answer can be found.
                let text = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(mut m)) if rng.random_bool(0.9) => {
                        m.insert("id".into(), json!(id));
                        Value::Object(m).to_string()
                    }
                    _ => text,
                };
                let owed = match decode(&text) {
                    Err(r) => Owed::Rejection(r.reply_to),
                    Ok(inbound) => inbound.id.map_or(Owed::Nothing, Owed::Reply),
                };
                (Message::text(text), owed, None)
            }
        };
        let head_before = app.health().await["head_seq"].clone();
        ws.send_raw(message).await;
        if let Some(code) = expect_close {
            let (close, _) = ws.recv_close().await;
            assert_eq!(close.map(|c| c.code), Some(code), "seed {seed} case {case}");
            closed += 1;
            ws = fuzz_session(&app).await;
            continue;
        }
        let ping = format!("p{case}");
        ws.send(json!({"type": "ping", "id": ping})).await;
        let (mut answered, mut ponged) = (matches!(owed, Owed::Nothing), false);
        while !(answered && ponged) {
            let frame = match ws.next().await {
                Received::Text(frame) => frame,
                Received::Closed(close) => panic!("seed {seed} case {case}: closed {close:?}"),
            };
            let reply_to = frame.get("reply_to").and_then(Value::as_str);
            match &owed {
                Owed::Rejection(expected)
                    if !ponged && frame["type"] == "error" && reply_to == expected.as_deref() =>
                {
                    answered = true;
                }
                Owed::Reply(expected) if reply_to == Some(expected.as_str()) => answered = true,
                _ => {}
            }
            if reply_to == Some(ping.as_str()) {
                ponged = true;
                assert!(
                    answered || !matches!(owed, Owed::Rejection(_)),
                    "seed {seed} case {case}: no rejection before the pong"
                );
            }
        }
        match owed {
            Owed::Rejection(_) => {
                rejected += 1;
                assert_eq!(
                    app.health().await["head_seq"],
                    head_before,
                    "seed {seed} case {case}: a rejected frame changed nothing"
                );
            }
            Owed::Reply(_) => replied += 1,
            Owed::Nothing => {}
        }
    }
    eprintln!(
        "session: {n} frames (seed {seed}): {rejected} rejected (state unchanged), {replied} answered by id, {closed} closed (1007/1009)"
    );
}

#[actix_web::test]
async fn every_rest_endpoint_answers_malformed_input_with_a_4xx_and_the_error_body() {
    let app = spawn_app_with(|s| s.limits.max_message_bytes = 256 * 1024).await;
    app.create_station("pc1").await;
    let (mut rng, seed) = rng();
    let endpoints: &[(&str, &str)] = &[
        ("POST", "/cashier/devices"),
        ("PATCH", "/cashier/devices/pc1"),
        ("DELETE", "/cashier/devices/{id}"),
        ("GET", "/cashier/devices/{id}"),
        ("POST", "/cashier/devices/pc1/orders"),
        ("PATCH", "/cashier/devices/pc1/orders/{index}"),
        ("DELETE", "/cashier/devices/pc1/orders/{index}"),
        ("POST", "/cashier/devices/{id}/reset"),
        ("POST", "/cashier/devices/pc1/transfer"),
        ("PUT", "/cashier/categories"),
        ("PUT", "/cashier/prices"),
        ("POST", "/device/register"),
        ("GET", "/device/roles/{id}"),
        ("PUT", "/device/roles/{id}"),
        ("POST", "/master-election"),
        ("GET", "/sync/master-election-logs"),
        ("GET", "/sync/audit-logs"),
        ("POST", "/sync/push"),
        ("GET", "/sync/pull"),
        ("GET", "/sync/status"),
        ("GET", "/sync/state/{id}"),
        ("PUT", "/sync/state/{id}"),
        ("GET", "/system/health"),
        ("GET", "/system/network"),
    ];
    let templates = templates();
    let n = cases(400);
    let mut statuses = std::collections::BTreeMap::new();
    for case in 0..n {
        let (method, path) = endpoints[rng.random_range(0..endpoints.len())];
        let id = match rng.random_range(0..5) {
            0 => "p".repeat(200),
            1 => "%ZZ".to_owned(),
            2 => "%D8%A8".to_owned(),
            3 => "..".to_owned(),
            _ => "pc1".to_owned(),
        };
        let index = ["0", "-1", "x", "99999999999999999999", "1.5"][rng.random_range(0..5)];
        let mut url = app.url(&path.replace("{id}", &id).replace("{index}", index));
        if rng.random_bool(0.5) {
            let query = [
                "limit=0",
                "limit=-1",
                "limit=abc",
                "offset=x",
                "since_seq=-5",
                "since=yesterday",
                "start_date=x",
                "limit=99999999999999999999",
                "tables=",
                "device_id=",
                "%ZZ",
                "a=%",
                "limit=5&limit=6",
            ];
            url.push('?');
            url.push_str(query[rng.random_range(0..query.len())]);
        }
        let body = match rng.random_range(0..6) {
            0 => text(&mut rng, 100).into_bytes(),
            1 => frame_text(&mut rng, &templates).into_bytes(),
            2 => value(&mut rng, 0).to_string().into_bytes(),
            3 => vec![0xff, 0xfe, 0x00],
            4 => nested(200).to_string().into_bytes(),
            _ => json!({"device_id": value(&mut rng, 0), "events": [mutated(&mut rng, &templates)], "role": value(&mut rng, 0),
                "deviceId": value(&mut rng, 0), "orders": value(&mut rng, 0)}).to_string().into_bytes(),
        };
        let request = app
            .http
            .request(method.parse().expect("method"), &url)
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body);
        let response = request.send().await.expect("a response");
        let status = response.status().as_u16();
        *statuses.entry(status).or_insert(0) += 1;
        assert!(
            status < 500 || status == 503 && path == "/master-election",
            "seed {seed} case {case}: {method} {url} -> {status}"
        );
        if status >= 400 {
            let body: Value = response
                .json()
                .await
                .unwrap_or_else(|_| panic!("seed {seed} case {case}: {method} {url}: no JSON error body"));
            assert!(body["code"].is_string() && body["success"] == false, "seed {seed} case {case}: {body}");
        }
    }
    eprintln!("REST: {n} requests (seed {seed}), statuses {statuses:?}");
}
