//! Changes reach every other session, in `seq` order, and never come back to their sender.

use serde_json::json;

use crate::helpers::{seq, spawn_app};

#[actix_web::test]
async fn several_clients_connect_at_once_and_each_gets_its_own_session() {
    let app = spawn_app().await;
    let mut sessions = Vec::new();
    for i in 0..8 {
        let (ws, connected) = app.connect_as(&format!("cashier-{i}")).await;
        assert_eq!(connected["success"], true);
        assert_eq!(connected["message"], "Connected to server");
        sessions.push((ws, connected["session_id"].as_str().expect("session_id").to_owned()));
    }
    let mut ids: Vec<&str> = sessions.iter().map(|(_, id)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8, "every session has its own id");
    app.wait_for_sessions(8).await;
}

#[actix_web::test]
async fn a_change_reaches_everyone_but_its_sender() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    let mut a = app.connect("a").await;
    let mut b = app.connect("b").await;
    let mut c = app.connect("c").await;

    a.send(json!({"type": "device_update", "deviceId": "pc1", "data": {"isRunning": true}})).await;
    let at_b = b.expect("device_updated").await;
    let at_c = c.expect("device_updated").await;
    assert_eq!(at_b["deviceId"], "pc1");
    assert_eq!(at_b["data"]["isRunning"], true);
    assert_eq!(seq(&at_b), seq(&at_c));

    // B's change comes next in `seq`. Had A been sent its own change, it would have come first.
    b.send(json!({"type": "device_update", "deviceId": "pc1", "data": {"elapsedSeconds": 60}})).await;
    let first_at_a = a.expect("device_updated").await;
    assert_eq!(seq(&first_at_a), seq(&at_b) + 1);
    assert_eq!(first_at_a["data"]["elapsedSeconds"], 60);
    assert!(a.roundtrip("after").await.is_empty(), "nothing else was queued for the sender");
}

#[actix_web::test]
async fn a_change_with_an_id_is_acknowledged_with_its_seq_once_durable() {
    let app = spawn_app().await;
    let created = app.create_station("pc1").await;
    let mut a = app.connect("a").await;
    a.send(json!({"type": "device_update", "id": "c-17", "deviceId": "pc1", "data": {"notes": "VIP"}})).await;
    let ack = a.expect("ack").await;
    assert_eq!(ack["reply_to"], "c-17");
    assert_eq!(seq(&ack), created + 1);
    let stored = app.station("pc1").await.expect("station");
    assert_eq!(stored["data"]["notes"], "VIP");
}

#[actix_web::test]
async fn every_client_sees_every_change_once_in_seq_order() {
    let app = spawn_app().await;
    let base = app.create_station("pc1").await;
    app.create_station("pc2").await;
    let mut writers = [app.connect("w1").await, app.connect("w2").await];
    let mut readers = [app.connect("r1").await, app.connect("r2").await];
    let rounds = 40;
    for i in 0..rounds {
        for (n, w) in writers.iter_mut().enumerate() {
            let station = if n == 0 { "pc1" } else { "pc2" };
            w.send(json!({"type": "device_update", "deviceId": station, "data": {"elapsedSeconds": i}}))
                .await;
        }
    }
    let total = rounds * 2;
    for reader in &mut readers {
        let mut seqs = Vec::new();
        // Both creations happened before the readers connected; changes start after them.
        while seqs.len() < total {
            let frame = reader.expect("device_updated").await;
            seqs.push(seq(&frame));
        }
        let expected: Vec<u64> = (base + 2..base + 2 + total as u64).collect();
        assert_eq!(seqs, expected, "gap-free and in order");
    }
}

#[actix_web::test]
async fn every_station_event_is_persisted_and_broadcast() {
    let app = spawn_app().await;
    let mut a = app.connect("a").await;
    let mut b = app.connect("b").await;

    // device_created: REST writes go to every session, the writer's included.
    app.create_station("pc1").await;
    app.create_station("pc5").await;
    for ws in [&mut a, &mut b] {
        let created = ws.expect("device_created").await;
        assert_eq!(created["deviceId"], "pc1");
        assert_eq!(created["data"]["isRunning"], false);
        assert_eq!(created["data"]["mode"], "single");
        assert_eq!(created["data"]["customerCount"], 1);
        assert_eq!(created["data"]["orders"], json!([]));
        ws.expect("device_created").await;
    }

    a.send(json!({"type": "device_update", "deviceId": "pc1",
        "data": {"isRunning": true, "elapsedSeconds": 3600, "mode": "single", "customerCount": 2, "notes": "VIP customer"}}))
        .await;
    let updated = b.expect("device_updated").await;
    assert_eq!(updated["data"]["elapsedSeconds"], 3600);
    assert_eq!(updated["data"]["customerCount"], 2);
    assert_eq!(updated["data"]["orders"], json!([]), "the whole station state");

    a.send(json!({"type": "order_placed", "deviceId": "pc1", "orders": [
        {"name": "كولا", "price": 1000, "quantity": 2, "notes": "بارد", "firstOrderTime": "2026-02-03T02:25:33+03:00"},
        {"name": "chips", "price": 500, "quantity": 1}
    ]}))
    .await;
    let added = b.expect("order_added").await;
    let orders = added["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["orderIndex"], 0);
    assert_eq!(orders[1]["orderIndex"], 1);
    assert_eq!(orders[0]["firstOrderTime"], "2026-02-02T23:25:33.000Z", "times are sent in UTC with Z");
    let cola_id = orders[0]["orderId"].as_str().expect("orderId").to_owned();
    let chips_id = orders[1]["orderId"].as_str().expect("orderId").to_owned();
    assert_ne!(cola_id, chips_id);

    a.send(json!({"type": "order_updated", "deviceId": "pc1", "orderIndex": 0, "data": {"quantity": 3, "notes": "بارد جداً"}}))
        .await;
    let modified = b.expect("order_modified").await;
    assert_eq!(modified["orderIndex"], 0);
    assert_eq!(modified["orderId"], cola_id.as_str());
    assert_eq!(modified["data"]["quantity"], 3);
    assert_eq!(modified["data"]["price"], 1000, "the whole order");
    assert_eq!(modified["data"]["notes"], "بارد جداً");

    a.send(json!({"type": "order_updated", "deviceId": "pc1", "orderId": chips_id, "data": {"price": 700}}))
        .await;
    let modified = b.expect("order_modified").await;
    assert_eq!(modified["orderIndex"], 1);
    assert_eq!(modified["data"]["price"], 700);

    a.send(json!({"type": "order_deleted", "deviceId": "pc1", "orderIndex": 0})).await;
    let removed = b.expect("order_removed").await;
    assert_eq!((removed["orderIndex"].clone(), removed["orderId"].clone()), (json!(0), json!(cola_id)));
    let pc1 = app.station("pc1").await.expect("pc1");
    assert_eq!(pc1["data"]["orders"][0]["orderId"], chips_id.as_str());
    assert_eq!(pc1["data"]["orders"][0]["orderIndex"], 0, "later orders moved up");

    a.send(json!({"type": "device_transfer", "fromDeviceId": "pc1", "toDeviceId": "pc5"})).await;
    let transferred = b.expect("device_transferred").await;
    assert_eq!(transferred["fromDeviceId"], "pc1");
    assert_eq!(transferred["toDeviceId"], "pc5");
    assert_eq!(transferred["message"], "Device data transferred from pc1 to pc5");
    let (pc1, pc5) = (app.station("pc1").await.expect("pc1"), app.station("pc5").await.expect("pc5"));
    assert_eq!(pc1["data"]["isRunning"], false);
    assert_eq!(pc1["data"]["orders"], json!([]));
    assert_eq!(pc5["data"]["isRunning"], true);
    assert_eq!(pc5["data"]["elapsedSeconds"], 3600);
    assert_eq!(pc5["data"]["notes"], "VIP customer");
    assert_eq!(pc5["data"]["orders"][0]["orderId"], chips_id.as_str());

    a.send(json!({"type": "device_reset", "deviceId": "pc5"})).await;
    let cleared = b.expect("device_cleared").await;
    assert_eq!(cleared["deviceId"], "pc5");
    let pc5 = app.station("pc5").await.expect("pc5");
    assert_eq!(pc5["data"]["isRunning"], false);
    assert_eq!(pc5["data"]["elapsedSeconds"], 0);
    assert_eq!(pc5["data"]["orders"], json!([]));

    a.send(json!({"type": "device_deleted", "deviceId": "pc5"})).await;
    let gone = b.expect("device_removed").await;
    assert_eq!(gone["deviceId"], "pc5");
    assert!(app.station("pc5").await.is_none());

    // None of A's own changes came back to A: its next frame is the pong.
    assert!(a.roundtrip("end").await.is_empty());
}

#[actix_web::test]
async fn catalogue_writes_reach_every_session_as_sent() {
    let app = spawn_app().await;
    let mut a = app.connect("a").await;
    let categories = r#"{"drinks": ["كولا", "شاي"],  "snacks":[ "chips" ]}"#;
    let response = app
        .admin(reqwest::Method::PUT, "/cashier/categories")
        .header("content-type", "application/json")
        .body(categories)
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), categories, "answered as sent");
    let updated = a.expect("categories_updated").await;
    assert_eq!(updated["data"], serde_json::from_str::<serde_json::Value>(categories).expect("json"));
    let stored = app.get("/cashier/categories").await.text().await.expect("body");
    assert_eq!(stored, categories, "stored and returned byte for byte");

    let prices = json!({"كولا": 1000});
    let response =
        app.admin(reqwest::Method::PUT, "/cashier/prices").json(&prices).send().await.expect("PUT");
    assert_eq!(response.status(), 200);
    assert_eq!(a.expect("prices_updated").await["data"], prices);
    assert_eq!(app.get_json("/cashier/prices").await, prices);
}

#[actix_web::test]
async fn rest_writes_are_broadcast_to_every_session() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    let mut a = app.connect("a").await;
    let response = app
        .http
        .patch(app.url("/cashier/devices/pc1"))
        .json(&json!({"isRunning": true, "customerCount": 3}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["data"]["customerCount"], 3);
    let pushed = a.expect("device_updated").await;
    assert_eq!(seq(&pushed), seq(&body));
    assert_eq!(pushed["data"], body["data"]);

    let response = app
        .http
        .post(app.url("/cashier/devices/pc1/orders"))
        .json(&json!({"orders": [{"name": "tea", "price": 250, "quantity": 2}]}))
        .send()
        .await
        .expect("POST orders");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["orders"][0]["name"], "tea");
    assert_eq!(a.expect("order_added").await["orders"][0]["orderId"], body["orders"][0]["orderId"]);

    let response = app
        .http
        .patch(app.url("/cashier/devices/pc1/orders/0"))
        .json(&json!({"quantity": 5}))
        .send()
        .await
        .expect("PATCH order");
    assert_eq!(response.status(), 200);
    assert_eq!(a.expect("order_modified").await["data"]["quantity"], 5);

    let response =
        app.http.delete(app.url("/cashier/devices/pc1/orders/0")).send().await.expect("DELETE order");
    assert_eq!(response.status(), 204);
    a.expect("order_removed").await;

    app.create_station("pc2").await;
    a.expect("device_created").await;
    let response = app
        .http
        .post(app.url("/cashier/devices/pc1/transfer"))
        .json(&json!({"toDeviceId": "pc2"}))
        .send()
        .await
        .expect("transfer");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["deviceId"], "pc2", "a transfer answers with the target");
    assert_eq!(body["data"]["customerCount"], 3);
    a.expect("device_transferred").await;

    let response = app.http.post(app.url("/cashier/devices/pc2/reset")).send().await.expect("reset");
    assert_eq!(response.status(), 200);
    a.expect("device_cleared").await;

    let response = app.admin(reqwest::Method::DELETE, "/cashier/devices/pc2").send().await.expect("DELETE");
    assert_eq!(response.status(), 204);
    a.expect("device_removed").await;
    let list = app.get_json("/cashier/devices").await;
    let ids: Vec<&str> =
        list["devices"].as_array().expect("devices").iter().filter_map(|d| d["deviceId"].as_str()).collect();
    assert_eq!(ids, ["pc1"]);
}

/// A live session never skips a change: one committed after the session's first log read and
/// published before Broadcast subscribed it (held up here by an injected delay) reaches it from
/// the log, before anything after it.
#[cfg(feature = "fault-injection")]
#[actix_web::test]
async fn a_change_published_between_the_first_read_and_the_subscription_is_not_skipped() {
    let app = spawn_app().await;
    app.state.sessions.faults.delay_subscriptions(std::time::Duration::from_millis(700));
    let mut late = app.open().await;
    late.send(json!({"type": "connect", "clientId": "late"})).await;
    // The session has read the log (empty) by now; its subscription is still held up.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let created = app.create_station("pc1").await;
    let (_, mut heard) = late.recv_until("connected").await;
    heard.extend(late.roundtrip("after").await);
    let seqs: Vec<u64> = heard.iter().filter(|f| f["type"] == "device_created").map(seq).collect();
    assert_eq!(seqs, vec![created], "the change reached the session: {heard:?}");
}
