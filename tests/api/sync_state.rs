//! A device's sync state from registration on, its errors as it reported them, the conflicts it
//! lost listed in its next sync, and the catalogue's snapshot versions.

use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};

#[actix_web::test]
async fn a_device_registered_over_rest_or_websocket_has_a_sync_state_at_once() {
    let app = spawn_app().await;
    assert_eq!(app.get("/sync/state/tablet").await.status(), 404, "an unknown device has none");
    let registered = app
        .http
        .post(app.url("/device/register"))
        .json(&json!({"device_id": "tablet", "priority": 10}))
        .send()
        .await
        .expect("POST");
    assert_eq!(registered.status(), 200);
    let state = app.get_json("/sync/state/tablet").await;
    assert_eq!(
        (state["device_id"].as_str(), state["sync_status"].as_str()),
        (Some("tablet"), Some("pending"))
    );
    assert_eq!(state["confirmed_seq"], 0);

    let (_till, _) = app.device("till-1", 20).await;
    let state = app.get_json("/sync/state/till-1").await;
    assert_eq!(state["sync_status"], "pending", "device_online registers a sync state too");
}

#[actix_web::test]
async fn a_sync_error_keeps_the_message_and_the_type_as_sent() {
    let app = spawn_app().await;
    let (mut tablet, _) = app.device("tablet", 20).await;
    let ack = tablet
        .request(json!({"type": "sync_error", "device_id": "tablet", "error_type": "data",
            "error_message": "disk full", "retry_count": 0}))
        .await;
    assert_eq!(ack["type"], "sync_error_ack");
    let state = app.get_json("/sync/state/tablet").await;
    assert_eq!(state["last_error_message"], "disk full");
    assert_eq!(state["last_error_type"], "data");
    // A successful sync clears both.
    tablet.request(json!({"type": "sync_complete", "device_id": "tablet"})).await;
    let state = app.get_json("/sync/state/tablet").await;
    assert!(state["last_error_message"].is_null() && state["last_error_type"].is_null(), "{state}");
}

async fn stale_write(device: &mut crate::helpers::TestDevice, record: i64) -> Value {
    device
        .request(json!({"type": "data_update", "device_id": device.id, "table_name": "products",
            "record_id": record, "new_data": {"stale": true}, "base_version": 0}))
        .await
}

#[actix_web::test]
async fn a_sync_response_lists_the_conflicts_the_device_lost_since_its_last_sync() {
    let app = spawn_app().await;
    let (mut office, _) = app.device("office", 100).await;
    let (mut tablet, _) = app.device("tablet", 20).await;
    for record in [1, 2] {
        let ack = office
            .request(json!({"type": "data_update", "device_id": "office", "table_name": "products",
                "record_id": record, "new_data": {"v": 1}}))
            .await;
        assert_eq!(ack["type"], "data_update_ack");
    }
    // The tablet writes against versions it never had: it loses both.
    for record in [1, 2] {
        assert_eq!(stale_write(&mut tablet, record).await["type"], "sync_conflict");
    }
    let sync =
        |kind: &str| json!({"type": "sync_request", "device_id": "tablet", "sync_type": kind, "last_seq": 0});
    let response = tablet.request(sync("incremental")).await;
    let conflicts = response["conflicts"].as_array().expect("conflicts");
    assert_eq!(conflicts.len(), 2, "{response}");
    assert_eq!(conflicts[0]["table_name"], "products");
    assert_eq!(conflicts[0]["record_id"], 1);
    assert_eq!(conflicts[0]["conflict_type"], "version");
    assert_eq!(
        (conflicts[0]["local_version"].as_i64(), conflicts[0]["server_version"].as_i64()),
        (Some(0), Some(1))
    );
    assert_eq!(conflicts[0]["resolution"], "server_wins");
    let full = tablet.request(sync("full")).await;
    assert_eq!(full["conflicts"].as_array().map(Vec::len), Some(2), "a full sync lists them too");
    // The office lost none.
    let theirs = office
        .request(
            json!({"type": "sync_request", "device_id": "office", "sync_type": "incremental", "last_seq": 0}),
        )
        .await;
    assert_eq!(theirs["conflicts"], json!([]));

    // Once the tablet confirms a sync, only later conflicts are listed.
    tablet.request(json!({"type": "sync_complete", "device_id": "tablet"})).await;
    assert_eq!(tablet.request(sync("incremental")).await["conflicts"], json!([]));
    stale_write(&mut tablet, 2).await;
    let later = tablet.request(sync("incremental")).await;
    assert_eq!(later["conflicts"].as_array().map(Vec::len), Some(1), "{later}");
    assert_eq!(later["conflicts"][0]["record_id"], 2);
}

#[actix_web::test]
async fn catalogue_documents_count_their_versions_in_a_full_sync() {
    let app = spawn_app_with(|_| {}).await;
    for i in 0..3 {
        let response = app
            .admin(reqwest::Method::PUT, "/cashier/categories")
            .json(&json!([format!("drinks-{i}")]))
            .send()
            .await
            .expect("PUT");
        assert_eq!(response.status(), 200);
    }
    let (mut office, _) = app.device("office", 100).await;
    let full =
        office.request(json!({"type": "sync_request", "device_id": "office", "sync_type": "full"})).await;
    let catalogue = full["data"]["catalogue"].as_array().expect("catalogue");
    assert_eq!(catalogue.len(), 1);
    assert_eq!(catalogue[0]["record_id"], "categories");
    assert_eq!(catalogue[0]["version"], 3, "three writes, version 3");
    assert_eq!(catalogue[0]["data"], json!(["drinks-2"]));
}
