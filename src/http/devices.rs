//! The fleet over REST (document 001): device registration and roles, manual elections, and
//! the election and audit logs.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::{AdminAuth, DeviceAuth};
use super::body::JsonBody;
use super::error::answers::{Forbidden, Invalid, Unauthorized, Unavailable};
use super::error::{ApiError, RestError};
use super::query::Query;
use super::routes::Routes;
use crate::actors::election::{
    DeviceView, Elected, Fleet, RegisterDevice, Request, RequestElection, Requester, RetireDevice,
};
use crate::domain::election::{MAX_PRIORITY, Role};
use crate::http::state::AppState;
use crate::protocol::inbound;
use crate::protocol::{ErrorCode, WireError, time};
use crate::store;
use crate::store::audit::AuditFilter;

/// The fleet's part of the API description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(register, roles, role, set_role, retire, elect, election_logs, audit_logs))]
pub struct Api;

/// Registers the fleet routes.
pub fn routes(r: &mut Routes<'_>) {
    r.at("/device/register", |p| p.post(register))
        .at("/device/roles", |p| p.get(roles))
        .at("/device/roles/{device_id}", |p| p.get(role).put(set_role))
        .at("/device/{device_id}", |p| p.delete(retire))
        .at("/master-election", |p| p.post(elect))
        .at("/sync/master-election-logs", |p| p.get(election_logs))
        .at("/sync/audit-logs", |p| p.get(audit_logs));
}

#[utoipa::path(
    delete,
    path = "/device/{device_id}",
    tag = "fleet",
    summary = "Retire a device: its record, role and sync state go, and its session is closed (4010)",
    params(("device_id" = String, Path, description = "The device's id")),
    responses((status = 204, description = "Retired"), Invalid, Unauthorized, Forbidden, (status = 404, description = "DEVICE_NOT_FOUND", body = RestError), (status = 409, description = "DEVICE_BUSY: the device is the master; elect another first", body = RestError), Unavailable),
    security(("admin_token" = []))
)]
async fn retire(
    auth: AdminAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device_id = path.into_inner();
    inbound::check_id("device_id", &device_id)?;
    app.election.send(RetireDevice { device_id: device_id.clone() }).await??;
    auth.record(&app, "retire_device", Some(&device_id), "retired").await;
    Ok(HttpResponse::NoContent().finish())
}

fn parse<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ApiError> {
    Ok(inbound::parse_body(value)?)
}

#[derive(Serialize, utoipa::ToSchema)]
struct RoleView<'a> {
    device_id: &'a str,
    role: Role,
    priority: i32,
    last_seen: Option<String>,
    is_active: bool,
    device_name: Option<&'a str>,
    device_type: Option<&'a str>,
    capabilities: &'a [String],
}

impl<'a> RoleView<'a> {
    fn of(d: &'a DeviceView) -> Self {
        Self {
            device_id: &d.device_id,
            role: d.role,
            priority: d.priority,
            last_seen: d.last_seen.map(time::format),
            is_active: d.is_active,
            device_name: d.name.as_deref(),
            device_type: d.device_type.as_deref(),
            capabilities: &d.capabilities,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RegisterBody {
    #[schema(min_length = 1, max_length = 128)]
    device_id: String,
    #[allow(dead_code)]
    role: Option<Role>,
    #[schema(minimum = 0, maximum = 100)]
    priority: Option<i32>,
    capabilities: Option<Vec<String>>,
}

#[utoipa::path(
    post,
    path = "/device/register",
    tag = "fleet",
    summary = "Register a device without a session (it is a client until it comes online)",
    request_body = RegisterBody,
    responses((status = 200, body = Registration), Invalid, Unauthorized, Unavailable),
    security((), ("device_token" = []))
)]
async fn register(
    auth: DeviceAuth,
    app: web::Data<AppState>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let b: RegisterBody = parse(&body.value)?;
    inbound::check_id("device_id", &b.device_id)?;
    auth.speaks_for(&b.device_id)?;
    if b.priority.is_some_and(|p| !(0..=MAX_PRIORITY).contains(&p)) {
        return Err(WireError::invalid(Some("priority"), None, "must be an integer within 0..=100").into());
    }
    let registration = app
        .election
        .send(RegisterDevice {
            device_id: b.device_id.clone(),
            priority: b.priority,
            capabilities: b.capabilities,
        })
        .await??;
    Ok(HttpResponse::Ok().json(Registration {
        success: true,
        device_id: &b.device_id,
        role: registration.role,
        master_device_id: registration.master,
        sync_status: if registration.connected { "connected" } else { "disconnected" },
    }))
}

#[utoipa::path(
    get,
    path = "/device/roles",
    tag = "fleet",
    summary = "Every device with its role, the master and the term",
    responses((status = 200, body = Roles), Unauthorized, Unavailable),
    security((), ("device_token" = []))
)]
async fn roles(_auth: DeviceAuth, app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let fleet = app.election.send(Fleet).await?;
    let devices: Vec<RoleView<'_>> = fleet.devices.iter().map(RoleView::of).collect();
    Ok(HttpResponse::Ok().json(Roles { devices, master_device_id: fleet.master, term: fleet.term }))
}

#[utoipa::path(
    get,
    path = "/device/roles/{device_id}",
    tag = "fleet",
    summary = "One device's role",
    params(("device_id" = String, Path, description = "The device's id")),
    responses((status = 200, body = RoleView), Unauthorized, (status = 404, description = "DEVICE_NOT_FOUND", body = RestError), Unavailable),
    security((), ("device_token" = []))
)]
async fn role(
    _auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let fleet = app.election.send(Fleet).await?;
    let device = fleet.devices.iter().find(|d| d.device_id == *path).ok_or_else(|| not_found(&path))?;
    Ok(HttpResponse::Ok().json(RoleView::of(device)))
}

fn not_found(device_id: &str) -> ApiError {
    WireError::new(ErrorCode::DeviceNotFound, format!("Device {device_id} does not exist")).into()
}

#[derive(Deserialize, utoipa::ToSchema)]
struct SetRoleBody {
    role: Role,
    reason: Option<String>,
}

#[utoipa::path(
    put,
    path = "/device/roles/{device_id}",
    tag = "fleet",
    summary = "Make a device master (an election that must choose it) or demote the master (an election without it)",
    params(("device_id" = String, Path, description = "The device's id")),
    request_body = SetRoleBody,
    responses((status = 200, body = RoleSet), Invalid, Unauthorized, Forbidden, (status = 404, description = "DEVICE_NOT_FOUND", body = RestError), (status = 409, description = "NO_CANDIDATES: no active device to elect", body = RestError), (status = 503, description = "ELECTION_FAILED (no candidate confirmed) or DATABASE_UNAVAILABLE", body = RestError)),
    security(("admin_token" = []))
)]
async fn set_role(
    auth: AdminAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let device_id = path.into_inner();
    inbound::check_id("device_id", &device_id)?;
    let b: SetRoleBody = parse(&body.value)?;
    let reason = b.reason.unwrap_or_else(|| "manual".to_owned());
    let fleet = app.election.send(Fleet).await?;
    let is_master = fleet.master.as_deref() == Some(device_id.as_str());
    if !fleet.devices.iter().any(|d| d.device_id == device_id) {
        return Err(not_found(&device_id));
    }
    let elected = match b.role {
        Role::Master => Some(
            app.election
                .send(RequestElection(Request {
                    requester: Requester::Admin,
                    initiated_by: Some(format!("admin: {reason}")),
                    preferred: Some(device_id.clone()),
                    require_preferred: true,
                    exclude_master: false,
                }))
                .await??,
        ),
        Role::Client if is_master => Some(
            app.election
                .send(RequestElection(Request {
                    requester: Requester::Admin,
                    initiated_by: Some(format!("admin: {reason}")),
                    preferred: None,
                    require_preferred: false,
                    exclude_master: true,
                }))
                .await??,
        ),
        // Already a client: nothing to elect.
        Role::Client => None,
    };
    let new_role = match &elected {
        Some(e) if e.announcement.new_master_id == device_id => Role::Master,
        _ => Role::Client,
    };
    let done = format!("asked {:?}, now {new_role:?} ({reason})", b.role);
    auth.record(&app, "set_role", Some(&device_id), &done).await;
    Ok(HttpResponse::Ok().json(RoleSet {
        success: true,
        device_id: &device_id,
        new_role,
        reason: &reason,
        election_id: elected.as_ref().map(|e| e.announcement.election_id.as_str()),
        term: elected.as_ref().map_or(fleet.term, |e| e.announcement.term),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ElectBody {
    reason: Option<String>,
    initiated_by: Option<String>,
    #[schema(min_length = 1, max_length = 128)]
    preferred_master: Option<String>,
}

#[utoipa::path(
    post,
    path = "/master-election",
    tag = "fleet",
    summary = "Hold a manual election, optionally preferring a device",
    request_body = ElectBody,
    responses((status = 200, body = ElectionHeld), Invalid, Unauthorized, Forbidden, (status = 409, description = "NO_CANDIDATES: no active device to elect", body = RestError), (status = 503, description = "ELECTION_FAILED (no candidate confirmed) or DATABASE_UNAVAILABLE", body = RestError)),
    security(("admin_token" = []))
)]
async fn elect(auth: AdminAuth, app: web::Data<AppState>, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let b: ElectBody = if body.raw.is_empty() {
        ElectBody { reason: None, initiated_by: None, preferred_master: None }
    } else {
        parse(&body.value)?
    };
    if let Some(p) = &b.preferred_master {
        inbound::check_id("preferred_master", p)?;
    }
    let initiated_by = b.initiated_by.or(b.reason);
    let Elected { announcement: a } = app
        .election
        .send(RequestElection(Request {
            requester: Requester::Admin,
            initiated_by,
            preferred: b.preferred_master,
            require_preferred: false,
            exclude_master: false,
        }))
        .await??;
    let done = format!("term {}, master {}", a.term, a.new_master_id);
    auth.record(&app, "master_election", Some(&a.new_master_id), &done).await;
    Ok(HttpResponse::Ok().json(ElectionHeld {
        success: true,
        election_id: &a.election_id,
        new_master_id: &a.new_master_id,
        previous_master_id: a.previous_master_id.as_deref(),
        term: a.term,
        devices_participating: a.devices_participating,
        election_method: a.election_method,
        election_timestamp: &a.election_timestamp,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Pagination {
    limit: u64,
    offset: u64,
    total: u64,
}

#[utoipa::path(
    get,
    path = "/sync/master-election-logs",
    tag = "fleet",
    summary = "Elections, newest first",
    params(("limit" = Option<u64>, Query, description = "At most this many entries (1..=10000)"), ("offset" = Option<u64>, Query, description = "Entries to skip")),
    responses((status = 200, body = Logs<ElectionLogView>), Invalid, Unauthorized, Unavailable),
    security((), ("device_token" = []))
)]
async fn election_logs(
    _auth: DeviceAuth,
    req: HttpRequest,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let (limit, offset) = query.page(10)?;
    let (rows, total) = store::devices::election_logs(&app.db, limit, offset).await?;
    let logs = rows.into_iter().map(ElectionLogView::of).collect();
    Ok(HttpResponse::Ok().json(Logs { logs, pagination: Pagination { limit, offset, total } }))
}

#[utoipa::path(
    get,
    path = "/sync/audit-logs",
    tag = "fleet",
    summary = "The audit log, newest first",
    params(("limit" = Option<u64>, Query, description = "At most this many entries (1..=10000)"), ("offset" = Option<u64>, Query, description = "Entries to skip"), ("device_id" = Option<String>, Query, description = "Only this device's entries"), ("event_type" = Option<String>, Query, description = "Only entries of this type"), ("start_date" = Option<String>, Query, format = DateTime, description = "From this time (RFC 3339)"), ("end_date" = Option<String>, Query, format = DateTime, description = "Up to this time (RFC 3339)")),
    responses((status = 200, body = Logs<AuditLogView>), Invalid, Unauthorized, Forbidden, Unavailable),
    security(("admin_token" = []))
)]
async fn audit_logs(
    _auth: AdminAuth,
    req: HttpRequest,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let (limit, offset) = query.page(50)?;
    let filter = AuditFilter {
        device_id: query.id("device_id")?,
        event_type: query.text("event_type"),
        start: query.time("start_date")?,
        end: query.time("end_date")?,
    };
    let (rows, total) = store::audit::page(&app.db, filter, limit, offset).await?;
    let logs = rows.into_iter().map(AuditLogView::of).collect();
    Ok(HttpResponse::Ok().json(Logs { logs, pagination: Pagination { limit, offset, total } }))
}

/// The answer to `POST /device/register`.
#[derive(Serialize, utoipa::ToSchema)]
struct Registration<'a> {
    success: bool,
    device_id: &'a str,
    role: Role,
    master_device_id: Option<String>,
    sync_status: &'static str,
}

/// The answer to `GET /device/roles`.
#[derive(Serialize, utoipa::ToSchema)]
struct Roles<'a> {
    devices: Vec<RoleView<'a>>,
    master_device_id: Option<String>,
    term: u64,
}

/// The answer to `PUT /device/roles/{device_id}`.
#[derive(Serialize, utoipa::ToSchema)]
struct RoleSet<'a> {
    success: bool,
    device_id: &'a str,
    new_role: Role,
    reason: &'a str,
    election_id: Option<&'a str>,
    term: u64,
}

/// The answer to `POST /master-election`.
#[derive(Serialize, utoipa::ToSchema)]
struct ElectionHeld<'a> {
    success: bool,
    election_id: &'a str,
    new_master_id: &'a str,
    previous_master_id: Option<&'a str>,
    term: u64,
    devices_participating: usize,
    election_method: &'static str,
    election_timestamp: &'a str,
}

/// A page of a log.
#[derive(Serialize, utoipa::ToSchema)]
struct Logs<T: Serialize> {
    logs: Vec<T>,
    pagination: Pagination,
}

/// An entry of the election log.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ElectionLogView {
    id: i64,
    election_id: String,
    term: i64,
    previous_master_id: Option<String>,
    new_master_id: String,
    election_reason: String,
    election_method: String,
    election_timestamp: String,
    devices_participating: i32,
}

/// An entry of the audit log.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AuditLogView {
    id: i64,
    event_type: String,
    operation: String,
    status: String,
    device_id: Option<String>,
    details: Option<String>,
    timestamp: String,
}

impl ElectionLogView {
    pub(super) fn of(r: entity::master_election_log::Model) -> Self {
        Self {
            id: r.id,
            election_id: r.election_id,
            term: r.term,
            previous_master_id: r.previous_master_id,
            new_master_id: r.new_master_id,
            election_reason: r.election_reason,
            election_method: r.election_method,
            election_timestamp: time::format(r.election_timestamp),
            devices_participating: r.devices_participating,
        }
    }
}

impl AuditLogView {
    pub(super) fn of(r: entity::sync_audit_log::Model) -> Self {
        Self {
            id: r.id,
            event_type: r.event_type,
            operation: r.operation,
            status: r.status,
            device_id: r.device_id,
            details: r.details,
            timestamp: time::format(r.timestamp),
        }
    }
}
