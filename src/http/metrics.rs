//! `GET /metrics`: the Prometheus figures (PROTOCOL.md section 12), open like `/system/health`.
//! The event figures are counted where things happen; the state figures are read here, at
//! each scrape, from the same sources `/system/health` uses.

use actix_web::{HttpResponse, web};

use super::error::{ApiError, RestError};
use super::routes::Routes;
use crate::actors::election::Fleet;
use crate::actors::registry::Stats;
use crate::http::state::AppState;
use crate::metrics::State;
use crate::protocol::{ErrorCode, WireError};
use crate::store;

/// The OpenMetrics text format, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `/metrics` in the API description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(scrape))]
pub struct Api;

/// Registers `/metrics`.
pub fn routes(r: &mut Routes<'_>) {
    r.at("/metrics", |p| p.get(scrape));
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    summary = "The Prometheus figures (OpenMetrics text)",
    responses((status = 200, description = "The figures", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String), (status = 500, description = "SERVER_ERROR: the figures could not be encoded", body = RestError))
)]
async fn scrape(app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let stats = app.registry.send(Stats).await?;
    let fleet = app.election.send(Fleet).await?;
    let head = app.published.get();
    // A scrape matters most when the database is in trouble: without it, the lag is left out
    // and everything else is still reported.
    let sync_lag = match store::sync_states::confirmed_all(&app.db).await {
        Ok(devices) => devices.into_iter().map(|(device, seq)| (device, head.saturating_sub(seq))).collect(),
        Err(err) => {
            tracing::warn!(%err, "metrics: device sync lag not read");
            Vec::new()
        }
    };
    let state = State {
        ws_sessions: stats.sessions.saturating_sub(stats.socketio_sessions),
        socketio_sessions: stats.socketio_sessions,
        term: fleet.term,
        has_master: fleet.master.is_some(),
        head_seq: head,
        oldest_seq: app.floor.oldest_seq(),
        sync_lag,
    };
    let text = app.metrics.scrape(&state).map_err(|_| {
        ApiError::from(WireError::new(ErrorCode::ServerError, "The metrics could not be encoded"))
    })?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(text))
}
