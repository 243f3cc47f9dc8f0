//! The admin and device tokens on REST and on `/ws`.

use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{ADMIN_TOKEN, WAIT, spawn_app, spawn_app_with};

#[actix_web::test]
async fn admin_endpoints_need_the_admin_token() {
    let app = spawn_app_with(|s| s.auth.device_token = "device-secret".into()).await;
    let create = || app.http.post(app.url("/cashier/devices")).json(&json!({"deviceId": "pc1"}));
    let response = create().send().await.expect("POST");
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!((body["code"].as_str(), body["numeric_code"].as_u64()), (Some("UNAUTHORIZED"), Some(3001)));
    assert_eq!(create().bearer_auth("wrong").send().await.expect("POST").status(), 401);
    let response = create().bearer_auth("device-secret").send().await.expect("POST");
    assert_eq!(response.status(), 403, "the device token does not open admin endpoints");
    assert_eq!(create().bearer_auth(ADMIN_TOKEN).send().await.expect("POST").status(), 201);
    for path in ["/cashier/categories", "/cashier/prices"] {
        let response = app
            .http
            .put(app.url(path))
            .json(&json!([]))
            .bearer_auth("device-secret")
            .send()
            .await
            .expect("PUT");
        assert_eq!(response.status(), 403);
    }
    let response = app.http.delete(app.url("/cashier/devices/pc1")).send().await.expect("DELETE");
    assert_eq!(response.status(), 401);
    let still_there =
        app.http.get(app.url("/cashier/devices/pc1")).bearer_auth(ADMIN_TOKEN).send().await.expect("GET");
    assert_eq!(still_there.status(), 200, "a refused delete deletes nothing");
}

#[actix_web::test]
async fn device_endpoints_need_the_device_token_when_one_is_set() {
    let app = spawn_app_with(|s| s.auth.device_token = "device-secret".into()).await;
    let response = app.get("/cashier/devices").await;
    assert_eq!(response.status(), 401);
    for token in ["device-secret", ADMIN_TOKEN] {
        let response =
            app.http.get(app.url("/cashier/devices")).bearer_auth(token).send().await.expect("GET");
        assert_eq!(response.status(), 200, "{token}");
    }
    assert_eq!(app.get("/system/health").await.status(), 200, "health is for anyone");
}

#[actix_web::test]
async fn device_endpoints_are_open_without_a_device_token() {
    let app = spawn_app().await;
    assert_eq!(app.get("/cashier/devices").await.status(), 200);
}

#[actix_web::test]
async fn the_websocket_needs_the_device_token_on_the_upgrade() {
    let app = spawn_app_with(|s| s.auth.device_token = "device-secret".into()).await;
    let refused =
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(app.ws_url())).await.expect("in time");
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401, got {other:?}"),
    }
    let with_query = format!("{}?token=device-secret", app.ws_url());
    assert!(tokio_tungstenite::connect_async(with_query).await.is_ok());
    let mut request = app.ws_url().into_client_request().expect("request");
    request.headers_mut().insert("authorization", "Bearer device-secret".parse().expect("header"));
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
    let wrong = format!("{}?token=guess", app.ws_url());
    assert!(tokio_tungstenite::connect_async(wrong).await.is_err());
}

#[actix_web::test]
async fn an_empty_admin_token_is_generated_into_an_owner_only_file() {
    let app = spawn_app_with(|s| s.auth.admin_token = String::new()).await;
    let path = app.dir.path().join("data").join("admin-token");
    let token = std::fs::read_to_string(&path).expect("the token file");
    let token = token.trim();
    assert!(token.len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777, 0o600);
    }
    let response = app
        .http
        .post(app.url("/cashier/devices"))
        .bearer_auth(token)
        .json(&json!({"deviceId": "pc1"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 201);
    let response = app
        .admin(reqwest::Method::POST, "/cashier/devices")
        .json(&json!({"deviceId": "pc2"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 401, "the test token is not the generated one");
}

/// Every endpoint and who may call it.
const ENDPOINTS: &[(&str, &str, Level)] = &[
    ("GET", "/cashier/devices", Level::Device),
    ("POST", "/cashier/devices", Level::Admin),
    ("GET", "/cashier/devices/pc1", Level::Device),
    ("PATCH", "/cashier/devices/pc1", Level::Device),
    ("DELETE", "/cashier/devices/pc1", Level::Admin),
    ("POST", "/cashier/devices/pc1/orders", Level::Device),
    ("PATCH", "/cashier/devices/pc1/orders/0", Level::Device),
    ("DELETE", "/cashier/devices/pc1/orders/0", Level::Device),
    ("POST", "/cashier/devices/pc1/reset", Level::Device),
    ("POST", "/cashier/devices/pc1/transfer", Level::Device),
    ("GET", "/cashier/categories", Level::Device),
    ("PUT", "/cashier/categories", Level::Admin),
    ("GET", "/cashier/prices", Level::Device),
    ("PUT", "/cashier/prices", Level::Admin),
    ("POST", "/device/register", Level::Device),
    ("GET", "/device/roles", Level::Device),
    ("GET", "/device/roles/d1", Level::Device),
    ("PUT", "/device/roles/d1", Level::Admin),
    ("POST", "/master-election", Level::Admin),
    ("GET", "/sync/master-election-logs", Level::Device),
    ("GET", "/sync/audit-logs", Level::Admin),
    ("POST", "/sync/push", Level::Device),
    ("GET", "/sync/pull", Level::Device),
    ("GET", "/sync/status", Level::Device),
    ("GET", "/sync/state/d1", Level::Device),
    ("PUT", "/sync/state/d1", Level::Device),
    ("GET", "/system/network", Level::Device),
    ("GET", "/system/health", Level::Anyone),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Anyone,
    Device,
    Admin,
}

#[actix_web::test]
async fn every_endpoint_checks_its_token() {
    let app = spawn_app_with(|s| s.auth.device_token = "device-secret".into()).await;
    for (method, path, level) in ENDPOINTS {
        let call = |token: Option<&str>| {
            let request = app
                .http
                .request(method.parse().expect("method"), app.url(path))
                .header("content-type", "application/json")
                .body("{}");
            match token {
                Some(t) => request.bearer_auth(t),
                None => request,
            }
        };
        let none = call(None).send().await.expect("request").status().as_u16();
        let wrong = call(Some("not-a-token")).send().await.expect("request").status().as_u16();
        let device = call(Some("device-secret")).send().await.expect("request").status().as_u16();
        let admin = call(Some(ADMIN_TOKEN)).send().await.expect("request").status().as_u16();
        let refused = |s: u16| s == 401 || s == 403;
        match level {
            Level::Anyone => assert!(!refused(none), "{method} {path} is open: {none}"),
            Level::Device => {
                assert_eq!((none, wrong), (401, 401), "{method} {path}");
                assert!(
                    !refused(device) && !refused(admin),
                    "{method} {path}: device {device}, admin {admin}"
                );
            }
            Level::Admin => {
                assert_eq!((none, wrong, device), (401, 401, 403), "{method} {path}");
                assert!(!refused(admin), "{method} {path}: admin {admin}");
            }
        }
    }
}

#[actix_web::test]
async fn no_token_appears_in_any_log_line() {
    use crate::process::{Launch, Server};
    for generated in [false, true] {
        let admin_setting = if generated { String::new() } else { "configured-admin-secret".to_owned() };
        let launch = Launch {
            env: vec![
                ("DEVICE_SYNC__LOG__LEVEL".into(), "trace".into()),
                ("DEVICE_SYNC__AUTH__DEVICE_TOKEN".into(), "configured-device-secret".into()),
                ("DEVICE_SYNC__AUTH__ADMIN_TOKEN".into(), admin_setting.clone()),
            ],
            ..Launch::default()
        };
        let mut server = Server::start(launch);
        let admin = if generated {
            std::fs::read_to_string(server.dir.path().join("data/admin-token"))
                .expect("token file")
                .trim()
                .to_owned()
        } else {
            admin_setting
        };
        let http = reqwest::Client::new();
        for token in [admin.as_str(), "configured-device-secret", "wrong-guess"] {
            let _ = http.get(server.url("/cashier/devices")).bearer_auth(token).send().await;
            let _ =
                http.post(server.url("/master-election")).bearer_auth(token).json(&json!({})).send().await;
            let _ = tokio_tungstenite::connect_async(format!("{}?token={token}", server.ws_url())).await;
        }
        let mut request = server.ws_url().into_client_request().expect("request");
        request.headers_mut().insert("authorization", format!("Bearer {admin}").parse().expect("header"));
        let _ = tokio_tungstenite::connect_async(request).await;
        assert_eq!(server.terminate().code(), Some(0));
        let logs = server.logs();
        assert!(logs.len() > 10, "the server logged at trace level");
        for secret in [admin.as_str(), "configured-device-secret"] {
            assert!(
                !logs.iter().any(|l| l.contains(secret)),
                "a token was logged: {:?}",
                logs.iter().find(|l| l.contains(secret))
            );
        }
        if generated {
            assert!(
                logs.iter().any(|l| l.contains("admin-token")),
                "where the generated token is, is logged"
            );
        }
    }
}
