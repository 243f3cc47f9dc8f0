//! Devices' own tokens over REST (docs/SECURITY.md): an admin issues one for a device (shown
//! once; only a hash is kept), lists a device's tokens, and revokes them, which closes the
//! sessions they opened on this node at once and on every other node within a heartbeat
//! (`app::watch_revocations`). `device-sync token` does the same from the command line.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::auth::{AdminAuth, DeviceToken};
use super::error::ApiError;
use super::error::answers::{Forbidden, Invalid, Unauthorized, Unavailable};
use super::routes::Routes;
use crate::actors::persistence::{self, Origin};
use crate::actors::registry::RevokeTokens;
use crate::domain::fleet::{AuditEntry, FleetWrite, IssuedToken};
use crate::http::state::AppState;
use crate::protocol::inbound;
use crate::store;

/// This part of the API description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(issue_token, list_tokens, revoke_tokens))]
pub struct Api;

pub fn routes(r: &mut Routes<'_>) {
    r.at("/device/{device_id}/tokens", |p| p.post(issue_token).get(list_tokens).delete(revoke_tokens));
}

/// A token just issued: the only time it is shown.
#[derive(Serialize, utoipa::ToSchema)]
struct Issued {
    device_id: String,
    token_id: String,
    /// The token itself (`dst_…`): give it to the device; the server keeps only a hash.
    token: String,
    /// What a device scans to enrol: `{"server": …, "device_id": …, "token": …}` as JSON, the
    /// server's address as this request reached it.
    enrolment: String,
    /// `enrolment` as a QR code (an SVG image).
    qr_svg: String,
}

/// The enrolment payload, and its QR code as SVG.
fn enrolment(server: &str, device_id: &str, token: &str) -> Result<(String, String), ApiError> {
    let payload = serde_json::json!({"server": server, "device_id": device_id, "token": token}).to_string();
    let code = qrcode::QrCode::new(payload.as_bytes()).map_err(|err| {
        ApiError::from(crate::protocol::WireError::new(
            crate::protocol::ErrorCode::ServerError,
            format!("the QR code could not be made: {err}"),
        ))
    })?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(240, 240).build();
    Ok((payload, svg))
}

/// One of a device's tokens, without its secret.
#[derive(Serialize, utoipa::ToSchema)]
struct TokenView {
    token_id: String,
    issued_by: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TokenList {
    device_id: String,
    tokens: Vec<TokenView>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Revoked {
    device_id: String,
    /// How many live tokens were revoked.
    revoked: usize,
}

/// Stores a token issued by `by` through the Persistence actor, with its audit row; returns its
/// id.
async fn store_issued(app: &AppState, stored: IssuedToken, by: &str) -> Result<String, ApiError> {
    let token_id = stored.id.clone();
    let details = format!("token {token_id} by {by}");
    let audit = AuditEntry::success("device_token", "issue", Some(&stored.device_id), &details);
    let writes = vec![FleetWrite::TokenIssued(stored), FleetWrite::Audit(audit)];
    persistence::persist(&app.persistence, writes, Origin::Rest).await?;
    Ok(token_id)
}

#[utoipa::path(
    post,
    path = "/device/{device_id}/tokens",
    tag = "fleet",
    summary = "Issue a token for one device; it is shown once, and speaks for that device only",
    params(("device_id" = String, Path, description = "The device's id (it need not be registered yet)")),
    responses((status = 201, body = Issued), Invalid, Unauthorized, Forbidden, Unavailable),
    security(("admin_token" = []))
)]
async fn issue_token(
    auth: AdminAuth,
    req: actix_web::HttpRequest,
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device_id = path.into_inner();
    inbound::check_id("device_id", &device_id)?;
    // The enrolment is made before the token is stored: a token is never live unshown.
    let (token, stored) = DeviceToken::issue(&device_id, &auth.0);
    let server = {
        let scheme = if app.settings.server.tls().is_some() { "https" } else { "http" };
        let host = req.headers().get(actix_web::http::header::HOST).and_then(|h| h.to_str().ok());
        format!("{scheme}://{}", host.unwrap_or("localhost"))
    };
    let (enrolment, qr_svg) = enrolment(&server, &device_id, &token)?;
    let token_id = store_issued(&app, stored, &auth.0).await?;
    tracing::info!(device = %device_id, token = %token_id, by = %auth.0, "device token issued");
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(Issued { device_id, token_id, token, enrolment, qr_svg }))
}

#[utoipa::path(
    get,
    path = "/device/{device_id}/tokens",
    tag = "fleet",
    summary = "A device's tokens (never their secrets)",
    params(("device_id" = String, Path, description = "The device's id")),
    responses((status = 200, body = TokenList), Invalid, Unauthorized, Forbidden, Unavailable),
    security(("admin_token" = []))
)]
async fn list_tokens(
    _auth: AdminAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device_id = path.into_inner();
    inbound::check_id("device_id", &device_id)?;
    let tokens = store::tokens::of_device(&app.db, &device_id)
        .await?
        .into_iter()
        .map(|row| TokenView {
            token_id: row.id,
            issued_by: row.issued_by,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(TokenList { device_id, tokens }))
}

#[utoipa::path(
    delete,
    path = "/device/{device_id}/tokens",
    tag = "fleet",
    summary = "Revoke every token of a device: the sessions they opened are closed (4011) on every node within a heartbeat, and they open nothing again",
    params(("device_id" = String, Path, description = "The device's id")),
    responses((status = 200, body = Revoked), Invalid, Unauthorized, Forbidden, Unavailable),
    security(("admin_token" = []))
)]
async fn revoke_tokens(
    auth: AdminAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device_id = path.into_inner();
    inbound::check_id("device_id", &device_id)?;
    let live: Vec<String> = store::tokens::of_device(&app.db, &device_id)
        .await?
        .into_iter()
        .filter(|row| row.revoked_at.is_none())
        .map(|row| row.id)
        .collect();
    let details = format!("{} tokens by {}", live.len(), auth.0);
    let audit = AuditEntry::success("device_token", "revoke", Some(&device_id), &details);
    let writes = vec![FleetWrite::TokensRevoked(device_id.clone()), FleetWrite::Audit(audit)];
    persistence::persist(&app.persistence, writes, Origin::Rest).await?;
    tracing::info!(device = %device_id, tokens = live.len(), by = %auth.0, "device tokens revoked");
    let revoked = live.len();
    app.registry.do_send(RevokeTokens(live));
    Ok(HttpResponse::Ok().json(Revoked { device_id, revoked }))
}
