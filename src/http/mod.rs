//! REST and the WebSocket endpoint, by resource, on one port.
//!
//! - `ws`: `GET /ws`, the upgrade into a Session actor, and the connection limit.
//! - `cashier`: stations, orders and the catalogue (document 002).
//! - `devices`: device registration and roles, manual elections, election and audit logs.
//! - `sync`: push, pull, sync status and state.
//! - `system`: health and network status.
//! - `metrics`: the Prometheus figures.
//! - `query`: query-string parameters, checked.
//! - `auth`: the admin and device tokens.
//! - `body`: bounded JSON request bodies.
//! - `error`: the JSON error answer every endpoint uses.

pub mod auth;
pub mod body;
pub mod cashier;
pub mod devices;
pub mod error;
pub mod metrics;
pub mod query;
pub mod socketio;
pub mod state;
pub mod sync;
pub mod system;
pub mod ws;

use actix_web::{HttpResponse, ResponseError, web};

use crate::protocol::{ErrorCode, WireError};
use error::ApiError;

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PathConfig::default().error_handler(|err, _| {
        ApiError::from(WireError::invalid(None, None, format!("bad path: {err}"))).into()
    }))
    .app_data(web::QueryConfig::default().error_handler(|err, _| {
        ApiError::from(WireError::invalid(None, None, format!("bad query string: {err}"))).into()
    }))
    .route("/ws", web::get().to(ws::upgrade))
    .configure(socketio::routes)
    .configure(cashier::routes)
    .configure(devices::routes)
    .configure(sync::routes)
    .configure(system::routes)
    .configure(metrics::routes)
    .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    ApiError::from(WireError::new(ErrorCode::NotFound, "No such endpoint")).error_response()
}
