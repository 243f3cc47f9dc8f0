//! Devices' JWTs from the shop's identity provider (docs/SECURITY.md): verified with an HMAC
//! secret or a JWKS file's public keys (ES256 here, a key made in the test), `sub` the device
//! (another is refused), `exp` honoured: an expired token opens nothing, and a session past its
//! token's `exp` is told, then closed (4012) unless it sent a new token (`refresh`) in time.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDevice, WsClient, spawn_app_with};
use crate::socketio::Sio;

const SECRET: &str = "the-shops-identity-provider-secret-0123";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An HS256 token for `device` expiring `in_s` seconds from now.
fn hs256(device: &str, in_s: i64) -> String {
    let claims = json!({"sub": device, "exp": now() + in_s, "iss": "shop-idp"});
    encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes()).expect("key"))
        .expect("encode")
}

async fn spawn_with_secret(refresh_s: f64) -> TestApp {
    spawn_app_with(|s| {
        s.auth.jwt_secret = SECRET.into();
        s.auth.jwt_issuer = "shop-idp".into();
        s.auth.jwt_refresh_s = refresh_s;
    })
    .await
}

async fn session(app: &TestApp, token: &str, device: &str) -> TestDevice {
    TestDevice::from_ws(WsClient::open(&format!("{}?token={token}", app.ws_url())).await, device)
}

fn refused_upgrade(result: Result<impl std::fmt::Debug, tokio_tungstenite::tungstenite::Error>) -> bool {
    matches!(&result, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401)
}

#[actix_web::test]
async fn a_jwt_speaks_for_its_subject_and_an_expired_one_opens_nothing() {
    let app = spawn_with_secret(30.0).await;
    let token = hs256("till-1", 60);
    let mut till = session(&app, &token, "till-1").await;
    let refused = till.request(json!({"type": "device_online", "device_id": "till-2", "priority": 1})).await;
    assert_eq!(refused["code"], "INSUFFICIENT_PERMISSIONS", "{refused}");
    let online = till.request(json!({"type": "device_online", "device_id": "till-1", "priority": 1})).await;
    assert_eq!(online["type"], "device_online_ack", "{online}");
    let rest = app.http.get(app.url("/sync/state/till-2")).bearer_auth(&token).send().await.expect("GET");
    assert_eq!(rest.status(), StatusCode::FORBIDDEN);
    let admin = app.http.get(app.url("/sync/audit-logs")).bearer_auth(&token).send().await.expect("GET");
    assert_eq!(admin.status(), StatusCode::FORBIDDEN, "a device's JWT on an admin endpoint");

    let expired = hs256("till-1", -5);
    let upgrade = tokio_tungstenite::connect_async(format!("{}?token={expired}", app.ws_url())).await;
    assert!(refused_upgrade(upgrade), "an expired token opens no session");
    let rest = app.http.get(app.url("/sync/status")).bearer_auth(&expired).send().await.expect("GET");
    assert_eq!(rest.status(), StatusCode::UNAUTHORIZED);
    let body: Value = rest.json().await.expect("JSON");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("xpired")), "{body}");
    let (_sio, answer) = Sio::join(&app, json!({"token": expired})).await;
    assert!(answer.starts_with("44"), "CONNECT refused: {answer}");
    let forged = {
        let claims = json!({"sub": "till-1", "exp": now() + 60, "iss": "shop-idp"});
        encode(&Header::default(), &claims, &EncodingKey::from_secret(b"not-the-secret").expect("key"))
            .expect("encode")
    };
    let upgrade = tokio_tungstenite::connect_async(format!("{}?token={forged}", app.ws_url())).await;
    assert!(refused_upgrade(upgrade), "a token signed with another secret opens nothing");
    till.close().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_session_past_its_tokens_exp_is_closed_unless_it_refreshes() {
    let app = spawn_with_secret(0.5).await;
    let mut lapsing = session(&app, &hs256("tablet", 2), "tablet").await;
    lapsing.request(json!({"type": "device_online", "device_id": "tablet", "priority": 1})).await;
    let mut renewed = session(&app, &hs256("kiosk", 2), "kiosk").await;
    renewed.request(json!({"type": "device_online", "device_id": "kiosk", "priority": 1})).await;
    // A new token for another device is refused; one for its own is taken.
    let wrong = renewed.request(json!({"type": "refresh", "token": hs256("tablet", 60)})).await;
    assert_eq!(wrong["code"], "UNAUTHORIZED", "{wrong}");
    let ack = renewed.request(json!({"type": "refresh", "token": hs256("kiosk", 60)})).await;
    assert_eq!(ack["type"], "ack", "{ack}");

    let (close, frames) = lapsing.recv_close().await;
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4012), "{frames:?}");
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "error" && f["message"].as_str().is_some_and(|m| m.contains("refresh"))),
        "told to refresh first: {frames:?}"
    );
    // The refreshed session outlives the first token's exp and refresh window.
    tokio::time::sleep(Duration::from_millis(500)).await;
    renewed.roundtrip("still-open").await;
    renewed.close().await;
    app.stop().await;
}

/// An ES256 key pair made here: its public half as a JWKS file in `dir`, its private half to sign.
fn es256_keys(dir: &std::path::Path) -> (std::path::PathBuf, EncodingKey) {
    let pair = rcgen::KeyPair::generate().expect("a P-256 key");
    let raw = pair.public_key_raw();
    assert_eq!((raw.len(), raw[0]), (65, 4), "an uncompressed P-256 point");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": b64(&raw[1..33]), "y": b64(&raw[33..]),
        "kid": "shop-1", "alg": "ES256", "use": "sig"}]});
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks.to_string()).expect("write the JWKS");
    let signing = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("the private key");
    (path, signing)
}

#[actix_web::test]
async fn a_jwt_signed_with_a_key_of_the_jwks_file_is_taken() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (jwks, signing) = es256_keys(dir.path());
    let app = spawn_app_with(|s| s.auth.jwt_jwks_file = jwks).await;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("shop-1".into());
    let token = encode(&header, &json!({"sub": "office-pc", "exp": now() + 60}), &signing).expect("sign");
    let mut office = session(&app, &token, "office-pc").await;
    let online =
        office.request(json!({"type": "device_online", "device_id": "office-pc", "priority": 1})).await;
    assert_eq!(online["type"], "device_online_ack", "{online}");
    // The same claims under HS256 with the public key's bytes as a secret (the algorithm
    // confusion attack) open nothing.
    let confused = encode(
        &Header::default(),
        &json!({"sub": "office-pc", "exp": now() + 60}),
        &EncodingKey::from_secret(b"x").expect("key"),
    )
    .expect("encode");
    let upgrade = tokio_tungstenite::connect_async(format!("{}?token={confused}", app.ws_url())).await;
    assert!(refused_upgrade(upgrade));
    office.close().await;
    app.stop().await;
}
