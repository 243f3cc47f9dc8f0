//! A write is applied once, whatever the network does: every write its writer sends with an `id`
//! is applied at most once per writer (the registered device, or the cashier's `clientId`), on
//! `/ws`, Socket.IO and `POST /sync/push` alike. The connection is dropped after the write
//! committed and before its answer went out (an injected fault), the writer sends it again on
//! its next session, and finds one change: the same answer, the same `seq`, nothing broadcast
//! twice.

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Received, TestApp, TestDevice, seq, spawn_app};
use crate::socketio_clients::Kind;

/// Every change in the log, as `GET /sync/pull` gives it.
async fn log(app: &TestApp) -> Vec<Value> {
    let page = app.get_json("/sync/pull?since_seq=0&limit=10000").await;
    page["changes"].as_array().expect("changes").clone()
}

/// Arms the fault: the answer to message `id` is not sent; its connection drops instead.
fn drop_before_answer(app: &TestApp, id: &str) {
    app.state.sessions.faults.drop_connection_before_reply(id);
}

/// Reads until the connection ends; fails on an answer to `id`.
async fn dropped_without_answer(device: &mut TestDevice, id: &str) {
    loop {
        match device.next().await {
            Received::Closed(_) => return,
            Received::Text(frame) => assert_ne!(frame["reply_to"], id, "answered before the drop: {frame}"),
        }
    }
}

/// A listening session's frames up to its `pong` for `id`.
async fn heard_by(listener: &mut TestDevice, id: &str) -> Vec<Value> {
    listener.roundtrip(id).await
}

#[actix_web::test]
async fn a_device_write_in_doubt_sent_again_is_applied_once() {
    let app = spawn_app().await;
    let (mut listener, _) = app.device("office", 90).await;
    let (mut tablet, _) = app.device("tablet", 10).await;
    let write = json!({"type": "data_update", "id": "sale-1", "device_id": "tablet", "table_name": "sales",
        "record_id": 1, "operation": "insert", "new_data": {"total": 1200}});

    drop_before_answer(&app, "sale-1");
    tablet.send(write.clone()).await;
    dropped_without_answer(&mut tablet, "sale-1").await;
    let committed = log(&app).await;
    assert_eq!(committed.len(), 1, "the write committed before the drop: {committed:?}");
    let first_seq = seq(&committed[0]);

    // In doubt: sent again on the device's next session.
    let (mut again, _) = app.device("tablet", 10).await;
    let answer = again.request_with_id(write.clone(), "sale-1").await;
    assert_eq!(answer["type"], "data_update_ack", "{answer}");
    assert_eq!(seq(&answer), first_seq, "the first answer again: {answer}");
    assert_eq!(log(&app).await.len(), 1, "one change in the log");

    // Sent a third time on the same session: the same.
    let answer = again.request_with_id(write, "sale-1").await;
    assert_eq!(seq(&answer), first_seq);
    let heard = heard_by(&mut listener, "p").await;
    let broadcasts: Vec<&Value> = heard.iter().filter(|f| f["type"] == "data_update").collect();
    assert_eq!(broadcasts.len(), 1, "the change is broadcast once: {heard:?}");
    assert_eq!(seq(broadcasts[0]), first_seq);
}

#[actix_web::test]
async fn a_cashier_write_in_doubt_is_applied_once_per_client_id() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    let order = json!({"type": "order_placed", "id": "o-1", "deviceId": "pc1",
        "orders": [{"name": "tea", "price": 500, "quantity": 1}]});
    let mut till = app.connect("till-1").await;
    let before = log(&app).await.len();
    drop_before_answer(&app, "o-1");
    till.send(order.clone()).await;
    // The connection ends without the answer, and without a close frame.
    loop {
        match tokio::time::timeout(crate::helpers::WAIT, till.stream().next())
            .await
            .expect("the drop in time")
        {
            Some(Ok(Message::Text(text))) => assert!(!text.contains("\"reply_to\":\"o-1\""), "{text}"),
            Some(Ok(Message::Close(frame))) => panic!("closed, not dropped: {frame:?}"),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => break,
        }
    }

    // Back, resuming from where it was before the write, and sending it again at once: the
    // answer comes after the change it names, as the first would have.
    let mut till = app.open().await;
    till.send(json!({"type": "connect", "clientId": "till-1", "last_seq": before})).await;
    till.send(order.clone()).await;
    let (ack, before_ack) = till.recv_until("ack").await;
    assert!(
        before_ack.iter().any(|f| f.get("seq") == ack.get("seq") && f["reply_to"].is_null()),
        "the change before its answer: {before_ack:?}"
    );
    let station = app.station("pc1").await.expect("pc1");
    assert_eq!(station["data"]["orders"].as_array().map(Vec::len), Some(1), "one order: {station}");
    assert_eq!(log(&app).await.len(), before + 1, "one change");
    assert_eq!(ack["reply_to"], "o-1");

    // Another cashier's write with the same id is its own.
    let mut other = app.connect("till-2").await;
    other.send(order).await;
    other.recv_until("ack").await;
    let station = app.station("pc1").await.expect("pc1");
    assert_eq!(station["data"]["orders"].as_array().map(Vec::len), Some(2), "{station}");
}

#[actix_web::test]
async fn a_refused_write_sent_again_gets_the_same_error_and_changes_nothing() {
    let app = spawn_app().await;
    let mut till = app.connect("till-1").await;
    let order = json!({"type": "order_placed", "id": "o-9", "deviceId": "pc9",
        "orders": [{"name": "tea", "price": 500, "quantity": 1}]});
    till.send(order.clone()).await;
    let (first, _) = till.recv_until("error").await;
    assert_eq!(first["code"], "DEVICE_NOT_FOUND", "{first}");
    // The station exists now, but the write's answer was given: it stands.
    app.create_station("pc9").await;
    till.send(order).await;
    let (again, _) = till.recv_until("error").await;
    assert_eq!((again["code"].as_str(), again["reply_to"].as_str()), (Some("DEVICE_NOT_FOUND"), Some("o-9")));
    let station = app.station("pc9").await.expect("pc9");
    assert_eq!(station["data"]["orders"], json!([]), "nothing applied: {station}");
}

#[actix_web::test]
async fn a_device_has_one_set_of_receipts_over_ws_and_push() {
    let app = spawn_app().await;
    let (mut tablet, _) = app.device("tablet", 10).await;
    let write = json!({"type": "data_update", "id": "q-1", "device_id": "tablet", "table_name": "stock",
        "record_id": "tea", "operation": "update", "new_data": {"count": 3}});
    let ack = tablet.request_with_id(write.clone(), "q-1").await;
    // Its offline queue pushes the same write again.
    let response = app
        .http
        .post(app.url("/sync/push"))
        .json(&json!({"device_id": "tablet", "events": [write]}))
        .send()
        .await
        .expect("push");
    let pushed: Value = response.json().await.expect("json");
    assert_eq!(pushed["results"][0]["status"], "duplicate", "{pushed}");
    assert_eq!(pushed["results"][0]["seq"], ack["seq"], "{pushed}");
    assert_eq!(log(&app).await.len(), 1);
}

/// Socket.IO numbers acknowledgements per connection, from 0: an ack number stands for a
/// missing `id` in replies, but two writes with the same ack number on two connections are two
/// writes.
#[actix_web::test]
async fn ack_numbers_are_not_write_ids() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    for _ in 0..2 {
        let (mut sio, _) = crate::socketio::Sio::join(&app, json!({"clientId": "flutter"})).await;
        sio.send("421[\"order_placed\",{\"deviceId\":\"pc1\",\"orders\":[{\"name\":\"tea\",\"price\":1,\"quantity\":1}]}]")
            .await;
        assert_eq!(sio.ack(1).await["type"], "ack");
    }
    let station = app.station("pc1").await.expect("pc1");
    assert_eq!(station["data"]["orders"].as_array().map(Vec::len), Some(2), "{station}");
}

/// Each pushed event's status, in order.
fn statuses_of(pushed: &Value) -> Vec<&str> {
    pushed["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or(""))
        .collect()
}

/// `POST /sync/push` applies a queue in order and stops at the first event that fails: the ones
/// after it are answered `not_applied` and applied when they are sent again.
#[actix_web::test]
async fn a_push_stops_at_the_first_failure() {
    let app = spawn_app().await;
    let write = |id: &str, record: u64| {
        json!({"type": "data_update", "id": id, "device_id": "tablet", "table_name": "stock", "record_id": record,
            "operation": "insert", "new_data": {"n": record}})
    };
    let bad = json!({"type": "order_placed", "id": "e2", "deviceId": "no-such-station",
        "orders": [{"name": "tea", "price": 1, "quantity": 1}]});
    let push = |events: Vec<Value>| {
        let request =
            app.http.post(app.url("/sync/push")).json(&json!({"device_id": "tablet", "events": events}));
        async move { request.send().await.expect("push").json::<Value>().await.expect("json") }
    };
    let first = push(vec![write("e1", 1), bad.clone(), write("e3", 3), write("e4", 4)]).await;
    let statuses = statuses_of(&first);
    assert_eq!(statuses, ["applied", "error", "not_applied", "not_applied"], "{first}");
    assert_eq!(
        (first["success"].as_bool(), first["not_applied"].as_u64()),
        (Some(false), Some(2)),
        "{first}"
    );
    assert_eq!(log(&app).await.len(), 1);

    // Sent again: the refusal stands and no longer stops the queue; the rest are applied, in order.
    let again = push(vec![write("e1", 1), bad, write("e3", 3), write("e4", 4)]).await;
    let statuses = statuses_of(&again);
    assert_eq!(statuses, ["duplicate", "error", "applied", "applied"], "{again}");
    let records: Vec<Value> = log(&app).await.iter().map(|c| c["record_id"].clone()).collect();
    assert_eq!(records, [json!(1), json!(3), json!(4)]);
}

/// The same over Socket.IO with a real client (python-socketio): its call is cut off after the
/// write committed, and it calls again with the same `id` on its next connection.
#[actix_web::test]
async fn a_socket_io_write_in_doubt_is_applied_once() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    let mut client = crate::socketio_clients::Client::start(Kind::Python, &app, "websocket", "tablet");
    let order =
        json!({"deviceId": "pc1", "id": "o-7", "orders": [{"name": "tea", "price": 500, "quantity": 1}]});
    client.ask(json!({"do": "connect", "auth": {"clientId": "tablet"}})).await;
    let before = log(&app).await;
    drop_before_answer(&app, "o-7");
    let cut = client.ask(json!({"do": "try_call", "event": "order_placed", "data": order})).await;
    assert!(cut["error"].is_string(), "the call was cut off: {cut}");
    client.ask(json!({"do": "connect", "auth": {"clientId": "tablet"}})).await;
    let answer = client.ask(json!({"do": "try_call", "event": "order_placed", "data": order})).await;
    assert_eq!(answer["reply"]["type"], "ack", "{answer}");
    let after = log(&app).await;
    assert_eq!(after.len(), before.len() + 1, "one change: {after:?}");
    assert_eq!(answer["reply"]["seq"], after[before.len()]["seq"]);
    let station = app.station("pc1").await.expect("pc1");
    assert_eq!(station["data"]["orders"].as_array().map(Vec::len), Some(1), "{station}");
    client.finish();
}
