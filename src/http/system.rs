//! `GET /system/health` (for anyone) and `GET /system/network` (device endpoint).
//! Healthy when the database answers and is writable and there is a master; degraded without a
//! master; unhealthy (503) when the database is down.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::auth::DeviceAuth;
use super::error::ApiError;
use super::error::answers::Unauthorized;
use super::routes::Routes;
use crate::actors::election::{Fleet, FleetView};
use crate::actors::persistence::Status;
use crate::actors::registry::Stats;
use crate::http::state::AppState;
use crate::protocol::time;
use crate::store;

/// The system part of the API description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(health, network))]
pub struct Api;

/// Registers the system routes.
pub fn routes(r: &mut Routes<'_>) {
    r.at("/system/health", |p| p.get(health)).at("/system/network", |p| p.get(network));
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Health {
    pub(super) status: &'static str,
    pub(super) master_device: Option<String>,
    pub(super) active_devices: usize,
    pub(super) sync_status: &'static str,
    pub(super) last_check: String,
    pub(super) term: u64,
    pub(super) head_seq: u64,
    /// The oldest change the log still keeps (`head_seq + 1` when none is).
    pub(super) oldest_seq: u64,
    pub(super) epoch: String,
    pub(super) election_failed: bool,
    pub(super) database: DatabaseHealth,
    pub(super) sessions: usize,
    /// The open sessions by transport.
    pub(super) sessions_by_transport: SessionsByTransport,
    pub(super) uptime_seconds: i64,
    /// On Postgres, this node among those sharing the database.
    #[serde(flatten)]
    #[schema(value_type = ClusterHealth)]
    pub(super) cluster: Option<ClusterHealth>,
}

/// The nodes sharing a Postgres database, as one of them sees them (on SQLite, none of these).
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ClusterHealth {
    /// This node.
    #[schema(required = false)]
    pub(super) node_id: String,
    /// The node holding the election lease, if its time has not run out.
    #[schema(required = false)]
    pub(super) lease_holder: Option<String>,
    /// The nodes alive.
    #[schema(required = false)]
    pub(super) nodes: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SessionsByTransport {
    pub(super) ws: usize,
    pub(super) socketio: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct DatabaseHealth {
    pub(super) status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
}

#[utoipa::path(
    get,
    path = "/system/health",
    tag = "system",
    summary = "Healthy with a master and a working database, degraded without a master, unhealthy (503) without the database",
    responses((status = 200, description = "Healthy or degraded", body = Health), (status = 503, description = "Unhealthy: the database does not answer or cannot be written", body = Health))
)]
async fn health(app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let fleet = app.election.send(Fleet).await?;
    let body = health_of(&app, &fleet).await?;
    let mut response =
        if body.status == "unhealthy" { HttpResponse::ServiceUnavailable() } else { HttpResponse::Ok() };
    Ok(response.json(body))
}

/// The server's health with the fleet as `fleet` (read by the caller, which shows it too), as
/// `/system/health` and the admin page show it.
pub(super) async fn health_of(app: &AppState, fleet: &FleetView) -> Result<Health, ApiError> {
    let read = app.db.ping().await;
    let write = app.persistence.send(Status).await?;
    let stats = app.registry.send(Stats).await?;
    let database_error = match (&read, &write.last_error) {
        (Err(err), _) => Some(err.to_string()),
        (Ok(()), Some(err)) => Some(err.clone()),
        (Ok(()), None) => None,
    };
    let cluster = match &app.cluster {
        Some(cluster) if read.is_ok() => Some(ClusterHealth {
            node_id: cluster.node.id.clone(),
            lease_holder: store::cluster::lease_holder(&app.db).await.map_err(ApiError::from)?,
            nodes: store::cluster::alive_nodes(&app.db).await.map_err(ApiError::from)?,
        }),
        Some(cluster) => {
            Some(ClusterHealth { node_id: cluster.node.id.clone(), lease_holder: None, nodes: Vec::new() })
        }
        None => None,
    };
    let status = match (&database_error, &fleet.master) {
        (Some(_), _) => "unhealthy",
        (None, None) => "degraded",
        (None, Some(_)) => "healthy",
    };
    Ok(Health {
        status,
        master_device: fleet.master.clone(),
        active_devices: fleet.devices.iter().filter(|d| d.is_active).count(),
        sync_status: if database_error.is_some() { "error" } else { "ok" },
        last_check: time::now(),
        term: fleet.term,
        head_seq: app.published.get(),
        oldest_seq: app.floor.oldest_seq(),
        epoch: app.epoch.clone(),
        election_failed: fleet.election_failed,
        database: DatabaseHealth {
            status: if database_error.is_some() { "unavailable" } else { "ok" },
            error: database_error,
        },
        sessions: stats.sessions,
        sessions_by_transport: SessionsByTransport {
            ws: stats.sessions - stats.socketio_sessions,
            socketio: stats.socketio_sessions,
        },
        uptime_seconds: (chrono::Utc::now() - app.started_at).num_seconds(),
        cluster,
    })
}

#[utoipa::path(
    get,
    path = "/system/network",
    tag = "system",
    summary = "Open sessions, connected devices, the last heartbeat and the mean ping round trip",
    responses((status = 200, body = Network), Unauthorized),
    security((), ("device_token" = []))
)]
async fn network(_auth: DeviceAuth, app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let stats = app.registry.send(Stats).await?;
    let fleet = app.election.send(Fleet).await?;
    Ok(HttpResponse::Ok().json(Network {
        network_status: if stats.sessions > 0 { "connected" } else { "disconnected" },
        active_connections: stats.sessions,
        connected_devices: stats.devices,
        last_heartbeat: fleet.last_heartbeat.map(time::format),
        network_latency: stats.mean_rtt_ms,
    }))
}

/// The answer to `GET /system/network`.
#[derive(Serialize, utoipa::ToSchema)]
struct Network {
    network_status: &'static str,
    active_connections: usize,
    connected_devices: usize,
    last_heartbeat: Option<String>,
    /// Mean round trip of the sessions' pings, in milliseconds.
    network_latency: Option<f64>,
}
