//! A bad message gets the documented error, changes nothing, and leaves the session usable.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{WsClient, spawn_app, spawn_app_with};

/// Sends `frame` and returns the error it is answered with.
async fn error_for(ws: &mut WsClient, frame: &str) -> Value {
    ws.send_text(frame).await;
    let error = ws.expect("error").await;
    assert_eq!(error["status"], "error");
    assert_eq!(error["code"], error["error_code"]);
    assert_eq!(error["message"], error["error"]);
    assert_eq!(error["message"], error["error_message"]);
    error
}

#[actix_web::test]
async fn each_bad_message_gets_its_error_and_the_session_stays_usable() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    app.create_station("pc5").await;
    let mut ws = app.connect("a").await;
    let before = app.get_json("/cashier/devices").await;

    let cases: &[(&str, &str, Option<&str>)] = &[
        ("{not json", "INVALID_PAYLOAD", None),
        ("[1,2,3]", "INVALID_PAYLOAD", None),
        (r#"{"deviceId":"pc1"}"#, "INVALID_PAYLOAD", Some("type")),
        (r#"{"type":42}"#, "INVALID_PAYLOAD", Some("type")),
        (r#"{"type":"teleport"}"#, "UNKNOWN_EVENT", None),
        (r#"{"type":"device_update","data":{}}"#, "INVALID_PAYLOAD", Some("deviceId")),
        (r#"{"type":"device_update","deviceId":"pc1"}"#, "INVALID_PAYLOAD", Some("data")),
        (
            r#"{"type":"device_update","deviceId":"pc1","data":{"elapsedSeconds":"long"}}"#,
            "INVALID_PAYLOAD",
            Some("data"),
        ),
        (
            r#"{"type":"device_update","deviceId":"pc1","data":{"customerCount":-2}}"#,
            "INVALID_PAYLOAD",
            Some("data"),
        ),
        (
            r#"{"type":"device_update","deviceId":"pc1","data":{"isRunning":"yes"}}"#,
            "INVALID_PAYLOAD",
            Some("data"),
        ),
        (
            r#"{"type":"order_placed","deviceId":"pc1","orders":[{"name":"tea","price":2.5,"quantity":1}]}"#,
            "INVALID_PAYLOAD",
            Some("orders"),
        ),
        (
            r#"{"type":"order_placed","deviceId":"pc1","orders":[{"name":"tea","price":10,"quantity":0}]}"#,
            "INVALID_PAYLOAD",
            Some("orders"),
        ),
        (r#"{"type":"order_placed","deviceId":"pc1","orders":[]}"#, "INVALID_PAYLOAD", Some("orders")),
        (r#"{"type":"order_placed","deviceId":"pc1","orders":{}}"#, "INVALID_PAYLOAD", Some("orders")),
        (r#"{"type":"order_updated","deviceId":"pc1","data":{}}"#, "INVALID_PAYLOAD", Some("orderIndex")),
        (r#"{"type":"device_transfer","fromDeviceId":"pc1"}"#, "INVALID_PAYLOAD", Some("toDeviceId")),
        (r#"{"type":"device_reset","deviceId":""}"#, "INVALID_PAYLOAD", Some("deviceId")),
        (r#"{"type":"ping","timestamp":"yesterday"}"#, "INVALID_PAYLOAD", Some("timestamp")),
        (r#"{"type":"device_update","deviceId":"pc9","data":{"isRunning":true}}"#, "DEVICE_NOT_FOUND", None),
        (r#"{"type":"order_deleted","deviceId":"pc1","orderIndex":7}"#, "ORDER_NOT_FOUND", None),
        (
            r#"{"type":"order_updated","deviceId":"pc1","orderId":"nope","data":{"quantity":2}}"#,
            "ORDER_NOT_FOUND",
            None,
        ),
        (r#"{"type":"device_transfer","fromDeviceId":"pc1","toDeviceId":"pc9"}"#, "DEVICE_NOT_FOUND", None),
        (r#"{"type":"device_deleted","deviceId":"ghost"}"#, "DEVICE_NOT_FOUND", None),
    ];
    for (n, (frame, code, field)) in cases.iter().enumerate() {
        let error = error_for(&mut ws, frame).await;
        assert_eq!(error["code"], *code, "{frame} -> {error}");
        if let Some(field) = field {
            assert_eq!(error["error_details"]["field"], *field, "{frame} -> {error}");
            assert_eq!(error["numeric_code"], 2004);
        }
        assert!(ws.roundtrip(&format!("still-here-{n}")).await.is_empty());
    }
    let not_found = error_for(&mut ws, r#"{"type":"device_reset","deviceId":"pc1x"}"#).await;
    assert_eq!(not_found["message"], "Device pc1x does not exist");
    assert_eq!(not_found["numeric_code"], 3004);

    assert_eq!(app.get_json("/cashier/devices").await, before, "nothing changed");
    assert_eq!(app.health().await["head_seq"].as_u64(), Some(2), "no change was logged");
}

#[actix_web::test]
async fn an_error_answers_the_message_id() {
    let app = spawn_app().await;
    let mut ws = app.connect("a").await;
    let error = error_for(&mut ws, r#"{"type":"device_reset","id":"r-1","deviceId":"nope"}"#).await;
    assert_eq!(error["reply_to"], "r-1");
    let error = error_for(&mut ws, r#"{"type":"unheard_of","id":"r-2"}"#).await;
    assert_eq!((error["code"].as_str(), error["reply_to"].as_str()), (Some("UNKNOWN_EVENT"), Some("r-2")));
    let error = error_for(&mut ws, r#"{"type":"ping","id":{"nested":true}}"#).await;
    assert_eq!(error["error_details"]["field"], "id");
    assert!(error.get("reply_to").is_none());
}

#[actix_web::test]
async fn a_transfer_onto_a_busy_station_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    app.create_station("pc5").await;
    let mut ws = app.connect("a").await;
    ws.send(json!({"type": "device_update", "id": "1", "deviceId": "pc1", "data": {"isRunning": true, "notes": "moving"}}))
        .await;
    ws.expect("ack").await;
    ws.send(json!({"type": "device_update", "id": "2", "deviceId": "pc5", "data": {"isRunning": true}}))
        .await;
    ws.expect("ack").await;
    let before = app.get_json("/cashier/devices").await;
    let error =
        error_for(&mut ws, r#"{"type":"device_transfer","id":"t","fromDeviceId":"pc1","toDeviceId":"pc5"}"#)
            .await;
    assert_eq!(error["code"], "DEVICE_BUSY");
    assert_eq!(error["reply_to"], "t");
    assert_eq!(app.get_json("/cashier/devices").await, before);

    ws.send(json!({"type": "device_update", "id": "3", "deviceId": "pc5", "data": {"isRunning": false}}))
        .await;
    ws.expect("ack").await;
    ws.send(json!({"type": "order_placed", "id": "4", "deviceId": "pc5", "orders": [{"name": "x", "price": 1, "quantity": 1}]}))
        .await;
    ws.expect("ack").await;
    let error =
        error_for(&mut ws, r#"{"type":"device_transfer","fromDeviceId":"pc1","toDeviceId":"pc5"}"#).await;
    assert_eq!(error["code"], "DEVICE_BUSY", "a station with orders is busy too");
}

#[actix_web::test]
async fn a_binary_frame_is_invalid_payload_and_the_session_stays_open() {
    let app = spawn_app().await;
    let mut ws = app.connect("a").await;
    ws.send_raw(Message::binary(vec![0u8, 159, 146, 150])).await;
    let error = ws.expect("error").await;
    assert_eq!(error["code"], "INVALID_PAYLOAD");
    assert!(ws.roundtrip("after-binary").await.is_empty());
}

#[actix_web::test]
async fn a_message_over_the_size_limit_closes_the_session_with_1009() {
    let app = spawn_app_with(|s| s.limits.max_message_bytes = 4096).await;
    let mut ws = app.connect("a").await;
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(5000));
    ws.send_text(&big).await;
    let (close, before) = ws.recv_close().await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["code"], "MESSAGE_TOO_LARGE");
    assert_eq!(close.expect("a close frame").code, CloseCode::Size);
    app.wait_for_sessions(0).await;
}

#[actix_web::test]
async fn a_message_just_under_the_limit_is_accepted() {
    let app = spawn_app_with(|s| s.limits.max_message_bytes = 4096).await;
    let mut ws = app.connect("a").await;
    let pad = 4096 - r#"{"type":"ping","id":"p","pad":""}"#.len();
    ws.send_text(&format!(r#"{{"type":"ping","id":"p","pad":"{}"}}"#, "x".repeat(pad))).await;
    assert_eq!(ws.expect("pong").await["reply_to"], "p");
}

#[actix_web::test]
async fn messages_past_the_rate_limit_are_dropped_with_rate_limited() {
    let app = spawn_app_with(|s| s.limits.messages_per_second = 5).await;
    app.create_station("pc1").await;
    let mut ws = app.connect("a").await;
    for i in 0..20 {
        ws.send(json!({"type": "device_update", "id": format!("u{i}"), "deviceId": "pc1", "data": {"elapsedSeconds": i}}))
            .await;
    }
    let mut acked = 0;
    let mut limited = Vec::new();
    for _ in 0..20 {
        let frame = ws.recv().await;
        match frame["type"].as_str() {
            Some("ack") => acked += 1,
            Some("error") => {
                assert_eq!(frame["code"], "RATE_LIMITED");
                limited.push(frame["reply_to"].as_str().expect("reply_to").to_owned());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // A burst of 5 was allowed (the `connect` spent one of them), the rest dropped.
    assert!((4..20).contains(&acked) && !limited.is_empty(), "acked {acked}, limited {}", limited.len());
    assert_eq!(acked + limited.len(), 20);
    let head = app.health().await["head_seq"].as_u64().expect("head");
    assert_eq!(head, 1 + acked as u64, "only the accepted messages were applied");
}

#[actix_web::test]
async fn malformed_rest_bodies_get_a_4xx_with_the_error_body() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            app.http
                .patch(app.url("/cashier/devices/pc1"))
                .header("content-type", "application/json")
                .body("{oops"),
            400,
            "INVALID_PAYLOAD",
        ),
        (
            app.http.patch(app.url("/cashier/devices/pc1")).json(&json!({"elapsedSeconds": -1})),
            400,
            "INVALID_PAYLOAD",
        ),
        (
            app.http.patch(app.url("/cashier/devices/nope")).json(&json!({"isRunning": true})),
            404,
            "DEVICE_NOT_FOUND",
        ),
        (
            app.http.post(app.url("/cashier/devices/pc1/orders")).json(&json!({"orders": "many"})),
            400,
            "INVALID_PAYLOAD",
        ),
        (app.http.patch(app.url("/cashier/devices/pc1/orders/x")).json(&json!({})), 400, "INVALID_PAYLOAD"),
        (
            app.http.patch(app.url("/cashier/devices/pc1/orders/3")).json(&json!({"quantity": 2})),
            404,
            "ORDER_NOT_FOUND",
        ),
        (app.http.delete(app.url("/cashier/devices/pc1/orders/-1")), 400, "INVALID_PAYLOAD"),
        (app.http.post(app.url("/cashier/devices/pc1/transfer")).json(&json!({})), 400, "INVALID_PAYLOAD"),
        (
            app.http.post(app.url("/cashier/devices/pc1/transfer")).json(&json!({"toDeviceId": "pc1"})),
            400,
            "INVALID_PAYLOAD",
        ),
        (
            app.admin(reqwest::Method::POST, "/cashier/devices").json(&json!({"name": "x"})),
            400,
            "INVALID_PAYLOAD",
        ),
        (
            app.admin(reqwest::Method::POST, "/cashier/devices").json(&json!({"deviceId": "pc1"})),
            409,
            "DEVICE_EXISTS",
        ),
        (
            app.admin(reqwest::Method::PUT, "/cashier/prices")
                .header("content-type", "application/json")
                .body("not json"),
            400,
            "INVALID_PAYLOAD",
        ),
        (app.admin(reqwest::Method::PUT, "/cashier/prices").body("{}"), 415, "INVALID_PAYLOAD"),
        (
            app.http
                .post(app.url("/sync/push"))
                .header("content-type", "text/plain")
                .body(r#"{"events":[]}"#),
            415,
            "INVALID_PAYLOAD",
        ),
        (
            app.admin(reqwest::Method::PUT, "/cashier/prices")
                .header("content-type", "application/json")
                .body(vec![b'['; 100].into_iter().chain(vec![b']'; 100]).collect::<Vec<u8>>()),
            400,
            "INVALID_PAYLOAD",
        ),
        (app.http.get(app.url("/cashier/nowhere")), 404, "NOT_FOUND"),
        (app.http.put(app.url("/cashier/devices")), 405, "METHOD_NOT_ALLOWED"),
        (app.http.get(app.url(&format!("/cashier/devices/{}", "p".repeat(129)))), 400, "INVALID_PAYLOAD"),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.expect("request");
        let got = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON error body");
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["error_code"], code);
    }
    let big = json!({"orders": [{"name": "x".repeat(70_000), "price": 1, "quantity": 1}]});
    let response =
        app.http.post(app.url("/cashier/devices/pc1/orders")).json(&big).send().await.expect("POST");
    assert_eq!(response.status(), 400, "a string past 65,536 characters");
    let huge = vec![b' '; 2 * 1024 * 1024];
    let response = app
        .http
        .patch(app.url("/cashier/devices/pc1"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["code"], "MESSAGE_TOO_LARGE");
    assert_eq!(app.health().await["head_seq"].as_u64(), Some(1), "nothing was applied");
}

/// Every number a client gives is bounded: past the largest the database holds (a signed
/// 64-bit integer) it is refused `INVALID_PAYLOAD` (400 over REST), before it can reach the
/// database, whatever field, parameter or transport carries it.
#[actix_web::test]
async fn numbers_past_the_databases_range_are_refused_everywhere() {
    let app = spawn_app().await;
    let too_big = "9223372036854775808";
    for path in [
        format!("/sync/audit-logs?offset={too_big}"),
        format!("/sync/master-election-logs?offset={too_big}"),
        format!("/sync/pull?since_seq={too_big}"),
        "/sync/audit-logs?offset=18446744073709551615".to_owned(),
    ] {
        let response = app.admin(reqwest::Method::GET, &path).send().await.expect("GET");
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.expect("a JSON error");
        assert_eq!(body["code"], "INVALID_PAYLOAD", "{path}: {body}");
    }
    // The largest that fits is a number like any other.
    let fits = app.admin(reqwest::Method::GET, "/sync/audit-logs?offset=9223372036854775807").send().await;
    assert_eq!(fits.expect("GET").status(), 200);

    // In a pushed event, and in a message.
    let body = format!(
        r#"{{"device_id":"tab","events":[{{"type":"acknowledge","device_id":"tab","seq":{too_big},"id":"a"}}]}}"#
    );
    let response = app
        .admin(reqwest::Method::POST, "/sync/push")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    let pushed: Value = response.json().await.expect("JSON");
    assert_eq!(pushed["results"][0]["error"]["code"], "INVALID_PAYLOAD", "{pushed}");
    let mut ws = app.connect("till").await;
    let error =
        error_for(&mut ws, &format!(r#"{{"type":"connect","clientId":"till","last_seq":{too_big}}}"#)).await;
    assert_eq!(error["code"], "INVALID_PAYLOAD", "{error}");
    ws.roundtrip("still-usable").await;
    // Numbers in a record's data or the catalogue are the client's own, stored as sent.
    let response = app
        .admin(reqwest::Method::PUT, "/cashier/prices")
        .header("content-type", "application/json")
        .body(format!(r#"{{"barcode":{too_big}}}"#))
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 200);
    let stored = app.get("/cashier/prices").await.text().await.expect("body");
    assert!(stored.contains(too_big), "{stored}");
}
