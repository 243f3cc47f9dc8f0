//! REST and the WebSocket endpoint, by resource, on one port.
//!
//! - `ws`: `GET /ws`, the upgrade into a Session actor, and the connection limit.
//! - `admin`: the admin page (`/admin/`) and its live feed.
//! - `cashier`: stations, orders and the catalogue (document 002).
//! - `devices`: device registration and roles, manual elections, election and audit logs.
//! - `sync`: push, pull, sync status and state.
//! - `system`: health and network status.
//! - `tls`: HTTPS and WSS with the configured certificate, reloaded on SIGHUP.
//! - `tokens`: devices' own tokens, issued and revoked by an admin.
//! - `metrics`: the Prometheus figures.
//! - `openapi`: the API description (`/openapi.json`) and its page (`/docs/`).
//! - `routes`: the one table REST routes are registered through (and listed from).
//! - `query`: query-string parameters, checked.
//! - `rate`: the rate limit per client address.
//! - `auth`: the admin and device tokens.
//! - `jwt`: devices' JWTs from the shop's identity provider.
//! - `origin`: requests from other sites' pages refused; CORS for the allowed ones.
//! - `body`: bounded JSON request bodies.
//! - `error`: the JSON error answer every endpoint uses.

pub mod admin;
pub mod auth;
pub mod body;
pub mod cashier;
pub mod devices;
pub mod error;
pub mod jwt;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod query;
pub mod rate;
pub mod routes;
pub mod socketio;
pub mod state;
pub mod sync;
pub mod system;
pub mod tls;
pub mod tokens;
pub mod ws;

use actix_web::{HttpResponse, ResponseError, web};

use crate::protocol::{ErrorCode, WireError};
use error::ApiError;
use routes::Routes;

/// Registers every route; `/socket.io/` only when `socketio.enabled`.
pub fn routes(cfg: &mut web::ServiceConfig, settings: &crate::settings::Settings) {
    if settings.socketio.enabled {
        cfg.configure(socketio::routes);
    }
    cfg.app_data(web::PathConfig::default().error_handler(|err, _| {
        ApiError::from(WireError::invalid(None, None, format!("bad path: {err}"))).into()
    }))
    .app_data(web::QueryConfig::default().error_handler(|err, _| {
        ApiError::from(WireError::invalid(None, None, format!("bad query string: {err}"))).into()
    }))
    .route("/ws", web::get().to(ws::upgrade))
    .configure(openapi::routes)
    .configure(admin::page);
    rest(&mut Routes::into(cfg));
    cfg.default_service(web::to(not_found));
}

/// The REST routes, by resource.
fn rest(r: &mut Routes<'_>) {
    cashier::routes(r);
    devices::routes(r);
    tokens::routes(r);
    sync::routes(r);
    system::routes(r);
    metrics::routes(r);
    admin::routes(r);
}

/// Every REST method and path the server registers (the WebSocket endpoints `/ws` and
/// `/socket.io/` are not REST: `docs/asyncapi.yaml` describes them).
pub fn rest_routes() -> Vec<(actix_web::http::Method, &'static str)> {
    let mut listing = Routes::listing();
    rest(&mut listing);
    listing.listed()
}

async fn not_found() -> HttpResponse {
    ApiError::from(WireError::new(ErrorCode::NotFound, "No such endpoint")).error_response()
}
