//! `GET /system/health`: whether the server can do its job, for anyone to ask.
//! Healthy when the database answers and is writable and there is a master; degraded without a
//! master; unhealthy (503) when the database is down.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::cashier::resource;
use super::error::ApiError;
use crate::actors::persistence::Status;
use crate::actors::registry::Stats;
use crate::protocol::time;
use crate::state::AppState;
use crate::store;

/// Registers the system routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/system/health").route(web::get().to(health)));
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    master_device: Option<String>,
    active_devices: usize,
    sync_status: &'static str,
    last_check: String,
    term: u64,
    head_seq: u64,
    epoch: String,
    database: DatabaseHealth,
    sessions: usize,
    uptime_seconds: i64,
}

#[derive(Serialize)]
struct DatabaseHealth {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn health(app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let read = app.db.ping().await;
    let write = app.persistence.send(Status).await?;
    let stats = app.registry.send(Stats).await?;
    let term = match store::meta::get(&app.db, store::meta::TERM).await {
        Ok(value) => value.and_then(|v| v.parse().ok()).unwrap_or(0),
        Err(_) => 0,
    };
    let database_error = match (&read, &write.last_error) {
        (Err(err), _) => Some(err.to_string()),
        (Ok(()), Some(err)) => Some(err.clone()),
        (Ok(()), None) => None,
    };
    let master_device: Option<String> = None;
    let status = match (&database_error, &master_device) {
        (Some(_), _) => "unhealthy",
        (None, None) => "degraded",
        (None, Some(_)) => "healthy",
    };
    let body = Health {
        status,
        master_device,
        active_devices: stats.devices,
        sync_status: if database_error.is_some() { "error" } else { "ok" },
        last_check: time::now(),
        term,
        head_seq: app.published.get(),
        epoch: app.epoch.clone(),
        database: DatabaseHealth {
            status: if database_error.is_some() { "unavailable" } else { "ok" },
            error: database_error,
        },
        sessions: stats.sessions,
        uptime_seconds: (chrono::Utc::now() - app.started_at).num_seconds(),
    };
    let mut response =
        if status == "unhealthy" { HttpResponse::ServiceUnavailable() } else { HttpResponse::Ok() };
    Ok(response.json(body))
}
