//! Requests from other sites' pages (docs/SECURITY.md): a WebSocket upgrade, a Socket.IO
//! handshake or a REST call whose `Origin` is neither the server's own nor allowed is refused
//! with 403, and a REST body not sent as JSON with 415, so nothing is written; the server's own
//! origin and `server.allowed_origins` are served. The same from a real browser page is in
//! `admin::a_page_on_another_site_can_neither_connect_nor_write`.

use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const EVIL: &str = "http://evil.example";

/// The status of a WebSocket upgrade to `path` sent with `origin` (101 when it opened).
async fn upgrade_status(app: &TestApp, path: &str, origin: &str) -> u16 {
    let mut request = format!("ws://127.0.0.1:{}{path}", app.port).into_client_request().expect("request");
    request.headers_mut().insert("origin", HeaderValue::from_str(origin).expect("origin"));
    match connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(err) => panic!("upgrade to {path}: {err}"),
    }
}

async fn log_head(app: &TestApp) -> Value {
    app.get_json("/sync/status").await["head_seq"].clone()
}

#[actix_web::test]
async fn another_sites_page_can_neither_connect_nor_write() {
    let app = spawn_app().await;
    let head = log_head(&app).await;
    for path in ["/ws", "/socket.io/?EIO=4&transport=websocket"] {
        assert_eq!(upgrade_status(&app, path, EVIL).await, 403, "{path}");
    }
    let handshake = app
        .http
        .get(app.url("/socket.io/?EIO=4&transport=polling"))
        .header("origin", EVIL)
        .send()
        .await
        .expect("handshake");
    assert_eq!(handshake.status(), 403);
    // The browser's "simple request": a text/plain POST it sends without asking first.
    let push =
        json!({"device_id": "evil", "events": [{"id": "e1", "type": "device_added", "deviceId": "x"}]});
    let simple = app
        .http
        .post(app.url("/sync/push"))
        .header("origin", EVIL)
        .header("content-type", "text/plain")
        .body(push.to_string())
        .send()
        .await
        .expect("push");
    assert_eq!(simple.status(), 403);
    let body: Value = simple.json().await.expect("a JSON error");
    assert_eq!(body["code"], "INSUFFICIENT_PERMISSIONS");
    assert!(simple_headers_absent(&app).await);
    // Without an Origin (an app) the same text/plain body is refused as not JSON.
    let plain = app
        .http
        .post(app.url("/sync/push"))
        .header("content-type", "text/plain")
        .body(push.to_string())
        .send()
        .await
        .expect("push");
    assert_eq!(plain.status(), 415);
    let read = app.http.get(app.url("/cashier/devices")).header("origin", EVIL).send().await.expect("GET");
    assert_eq!(read.status(), 403);
    assert_eq!(log_head(&app).await, head, "nothing was written");
}

/// A refused request gets no CORS headers a browser could read it by.
async fn simple_headers_absent(app: &TestApp) -> bool {
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/sync/push"))
        .header("origin", EVIL)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    preflight.status() == 403 && preflight.headers().get("access-control-allow-origin").is_none()
}

#[actix_web::test]
async fn the_servers_own_origin_and_the_allowed_ones_are_served() {
    let till = "https://till.example:8443";
    let app = spawn_app_with(|s| s.server.allowed_origins = vec![till.into()]).await;
    let own = format!("http://127.0.0.1:{}", app.port);
    for origin in [own.as_str(), till] {
        assert_eq!(upgrade_status(&app, "/ws", origin).await, 101, "{origin}");
        assert_eq!(
            upgrade_status(&app, "/socket.io/?EIO=4&transport=websocket", origin).await,
            101,
            "{origin}"
        );
    }
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/sync/push"))
        .header("origin", till)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], till);
    let read = app.http.get(app.url("/cashier/devices")).header("origin", till).send().await.expect("GET");
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["access-control-allow-origin"], till);
    let same =
        app.http.get(app.url("/cashier/devices")).header("origin", own.as_str()).send().await.expect("GET");
    assert_eq!(same.status(), 200);
}
