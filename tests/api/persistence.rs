//! The database is the source of truth: every change survives a restart, text byte for byte.

use serde_json::json;

use crate::helpers::{seq, spawn_app, spawn_app_in};

#[actix_web::test]
async fn every_change_survives_a_restart() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    app.create_station("pc2").await;
    app.create_station("pc3").await;
    let mut a = app.connect("a").await;
    let steps = [
        json!({"type": "device_update", "id": "1", "deviceId": "pc1", "data": {"isRunning": true, "elapsedSeconds": 1800, "mode": "multi", "customerCount": 4, "notes": "طاولة ٤"}}),
        json!({"type": "order_placed", "id": "2", "deviceId": "pc1", "orders": [
            {"name": "كولا", "price": 1000, "quantity": 2, "notes": "بارد"},
            {"name": "شاي", "price": 300, "quantity": 1},
            {"name": "chips", "price": 500, "quantity": 3}]}),
        json!({"type": "order_updated", "id": "3", "deviceId": "pc1", "orderIndex": 1, "data": {"quantity": 2, "notes": "بالنعناع"}}),
        json!({"type": "order_deleted", "id": "4", "deviceId": "pc1", "orderIndex": 0}),
        json!({"type": "device_transfer", "id": "5", "fromDeviceId": "pc1", "toDeviceId": "pc2"}),
        json!({"type": "device_update", "id": "6", "deviceId": "pc3", "data": {"isRunning": true}}),
        json!({"type": "device_reset", "id": "7", "deviceId": "pc3"}),
        json!({"type": "device_update", "id": "8", "deviceId": "pc3", "data": {"notes": "محجوز"}}),
    ];
    for step in steps {
        let id = step["id"].clone();
        a.send(step).await;
        assert_eq!(a.expect("ack").await["reply_to"], id);
    }
    a.send(json!({"type": "device_deleted", "id": "9", "deviceId": "pc1"})).await;
    let last = seq(&a.expect("ack").await);
    let categories = r#"{"مشروبات":["كولا","شاي"]}"#;
    let response = app
        .admin(reqwest::Method::PUT, "/cashier/categories")
        .header("content-type", "application/json")
        .body(categories)
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 200);

    let before = app.get_json("/cashier/devices").await;
    let dir = app.stop().await;

    let app = spawn_app_in(dir, |_| {}).await;
    let after = app.get_json("/cashier/devices").await;
    assert_eq!(after, before, "the same state after a restart");
    let ids: Vec<&str> =
        after["devices"].as_array().expect("devices").iter().filter_map(|d| d["deviceId"].as_str()).collect();
    assert_eq!(ids, ["pc2", "pc3"]);
    let pc2 = &after["devices"][0]["data"];
    assert_eq!(pc2["isRunning"], true);
    assert_eq!(pc2["elapsedSeconds"], 1800);
    assert_eq!(pc2["mode"], "multi");
    assert_eq!(pc2["customerCount"], 4);
    assert_eq!(pc2["notes"], "طاولة ٤");
    let orders = pc2["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 2);
    assert_eq!((orders[0]["name"].as_str(), orders[0]["quantity"].as_i64()), (Some("شاي"), Some(2)));
    assert_eq!(orders[0]["notes"], "بالنعناع");
    assert_eq!((orders[1]["name"].as_str(), orders[1]["orderIndex"].as_i64()), (Some("chips"), Some(1)));
    let pc3 = &after["devices"][1]["data"];
    assert_eq!((pc3["isRunning"].as_bool(), pc3["notes"].as_str()), (Some(false), Some("محجوز")));
    let text = app.get("/cashier/categories").await.text().await.expect("body");
    assert_eq!(text, categories);

    // The log carries on from where it was: the next change has the next seq.
    let health = app.health().await;
    assert_eq!(health["head_seq"].as_u64(), Some(last + 1), "the catalogue write came after the last ack");
    let mut b = app.connect("b").await;
    b.send(json!({"type": "device_update", "id": "next", "deviceId": "pc3", "data": {"elapsedSeconds": 1}}))
        .await;
    assert_eq!(seq(&b.expect("ack").await), last + 2);
}

#[actix_web::test]
async fn arabic_and_other_text_pass_through_byte_exact() {
    let app = spawn_app().await;
    app.create_station("pc1").await;
    let mut a = app.connect("a").await;
    let mut b = app.connect("b").await;
    let notes = "عميل مميز — VIP 🎮 «كولا» ١٢٣ \u{200f}نص\u{200e} e\u{301} \"quoted\" \\ tab\t";
    let frame = format!(
        r#"{{"type":"order_placed","deviceId":"pc1","orders":[{{"name":"كولا","price":1000,"quantity":2,"notes":"{}"}}]}}"#,
        notes.replace('\\', "\\\\").replace('"', "\\\"").replace('\t', "\\t")
    );
    a.send_text(&frame).await;
    let added = b.expect("order_added").await;
    assert_eq!(added["orders"][0]["name"], "كولا");
    assert_eq!(added["orders"][0]["notes"].as_str().map(str::as_bytes), Some(notes.as_bytes()));
    let stored = app.station("pc1").await.expect("pc1");
    assert_eq!(stored["data"]["orders"][0]["notes"].as_str().map(str::as_bytes), Some(notes.as_bytes()));
    let name = "محطة الزاوية";
    let response = app
        .admin(reqwest::Method::POST, "/cashier/devices")
        .json(&json!({"deviceId": "ركن-١", "name": name}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 201);
    let created = b.expect("device_created").await;
    assert_eq!(created["deviceId"], "ركن-١");
    assert_eq!(created["data"]["name"], name);
    let fetched = app.get_json("/cashier/devices/%D8%B1%D9%83%D9%86-%D9%A1").await;
    assert_eq!(fetched["data"]["name"], name);
}
