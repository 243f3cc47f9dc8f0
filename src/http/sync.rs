//! Sync over REST (documents 001 and 003): a device's offline queue pushed in one request
//! (each event applied in order, at most once per device and event id), changes pulled by page,
//! and sync status and state.

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::DeviceAuth;
use super::body::JsonBody;
use super::error::answers::{Invalid, Unauthorized, Unavailable};
use super::error::{ApiError, RestError};
use super::query::Query;
use super::routes::Routes;
use crate::actors::election::Fleet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::actors::persistence::{self, Applied, InOrder, Origin, Outcome};
use crate::domain::commands::{Command, Writer};
use crate::domain::fleet::{FleetWrite, SyncStateWrite, SyncStatus};
use crate::domain::records::Conflict;
use crate::http::state::AppState;
use crate::protocol::error::ErrorBody;
use crate::protocol::inbound::{
    self, ClientEvent, DEFAULT_SYNC_LIMIT, Intent, MAX_ITEMS, SyncEvent, check_id,
};
use crate::protocol::outbound::{Change, SyncConflictResolved};
use crate::protocol::{ErrorCode, WireError, time};
use crate::store::changes::Since;
use crate::store::receipts::Receipt;
use crate::sync::DeviceSyncState;
use crate::{store, sync};
use sea_orm::Iterable;

/// The sync part of the API description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(push, pull, status, get_state, put_state))]
pub struct Api;

/// Registers the sync routes.
pub fn routes(r: &mut Routes<'_>) {
    r.at("/sync/push", |p| p.post(push))
        .at("/sync/pull", |p| p.get(pull))
        .at("/sync/status", |p| p.get(status))
        .at("/sync/state/{device_id}", |p| p.get(get_state).put(put_state));
}

#[derive(Deserialize, utoipa::ToSchema)]
struct PushBody {
    #[schema(min_length = 1, max_length = 128)]
    device_id: String,
    /// The queued events, in order; each answered on its own.
    #[schema(max_items = 1000)]
    events: Vec<Value>,
}

/// The command a pushed event asks for. Only writes can be pushed, and only for the pushing
/// device.
fn pushed_command(device_id: &str, event: &Value, head: u64) -> Result<Command, WireError> {
    let event = inbound::decode_value(event)?;
    if let Some(named) = event.device_id().filter(|named| *named != device_id) {
        return Err(WireError::new(
            ErrorCode::InsufficientPermissions,
            format!("The push is from device {device_id}, not {named}"),
        ));
    }
    match event.into_intent() {
        Intent::Change(command) => Ok(command),
        Intent::Other(ClientEvent::Sync(SyncEvent::Acknowledge { device_id, seq })) => {
            sync::check_position("seq", seq, head)?;
            Ok(Command::Fleet(vec![FleetWrite::SyncState(SyncStateWrite {
                device_id,
                confirmed_seq: Some(seq),
                ..Default::default()
            })]))
        }
        Intent::Other(_) => Err(WireError::invalid(Some("type"), None, "only changes can be pushed")),
    }
}

#[utoipa::path(
    post,
    path = "/sync/push",
    tag = "sync",
    summary = "Push a device's offline queue: each event applied in order, at most once per device and event id",
    request_body = PushBody,
    responses((status = 200, description = "Each event's result; `success` is false when any failed", body = PushReply), Invalid, Unauthorized, Unavailable),
    security((), ("device_token" = []))
)]
async fn push(auth: DeviceAuth, app: web::Data<AppState>, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let b: PushBody = inbound::parse_body(&body.value)?;
    check_id("device_id", &b.device_id)?;
    auth.speaks_for(&b.device_id)?;
    if b.events.len() > MAX_ITEMS {
        return Err(WireError::invalid(Some("events"), None, format!("at most {MAX_ITEMS} events")).into());
    }
    // Every event is handed over at once, in order, and applied in that order (committed
    // together where they can be), each at most once per device and id; from the first that
    // fails on, none is applied. Each is answered on its own.
    let stop = Arc::new(AtomicBool::new(false));
    // The log's head, for acknowledged positions: this node may not have published all of it
    // yet (another node wrote it).
    let head = app.published.get().max(store::changes::bounds(&app.db).await?.1);
    let mut pending = Vec::with_capacity(b.events.len());
    let mut failed = false;
    for event in &b.events {
        let id = event.get("id").and_then(Value::as_str).map(str::to_owned);
        if failed {
            pending.push((id, None));
            continue;
        }
        let command = match &id {
            None => Err(WireError::invalid(Some("events"), None, "every event needs an id (a string)")),
            Some(id) => check_id("id", id).and_then(|()| pushed_command(&b.device_id, event, head)),
        };
        let outcome = command.map(|command| {
            let command = Command::Receipted {
                writer: Writer::Device(b.device_id.clone()),
                id: id.clone().unwrap_or_default(),
                command: Box::new(command),
            };
            persistence::persist(&app.persistence, InOrder { stop: Arc::clone(&stop), command }, Origin::Rest)
        });
        failed = outcome.is_err();
        pending.push((id, Some(outcome)));
    }
    let (ids, outcomes): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
    let outcomes = join_all(outcomes.into_iter().map(|o| async move {
        match o {
            None => Ok(None),
            Some(Ok(write)) => write.await.map_err(|e| e.to_wire()),
            Some(Err(e)) => Err(e),
        }
    }))
    .await;
    let (mut accepted, mut duplicates, mut not_applied, mut last_seq) = (0, 0, 0, None::<u64>);
    let mut results = Vec::with_capacity(ids.len());
    for (id, outcome) in ids.into_iter().zip(outcomes) {
        let result = match outcome {
            Ok(None) => {
                not_applied += 1;
                Pushed::NotApplied
            }
            // Sent before: its first answer again (an error stays an error).
            Ok(Some(Applied { seq, outcome: Outcome::Repeat(first) })) => match first {
                Receipt::Applied { seq: applied, .. } => {
                    duplicates += 1;
                    last_seq = last_seq.max(seq);
                    Pushed::Duplicate { seq: applied }
                }
                Receipt::Refused { error } => Pushed::Error(error),
                Receipt::Kept { conflict } => Pushed::Error(conflict_error(&conflict)),
            },
            Ok(Some(Applied { outcome: Outcome::Conflict(conflict), .. })) => {
                Pushed::Error(conflict_error(&conflict))
            }
            Ok(Some(applied)) => {
                accepted += 1;
                last_seq = last_seq.max(applied.seq);
                Pushed::Applied { seq: applied.seq }
            }
            Err(error) => Pushed::Error(error),
        };
        results.push(PushResult { id, result });
    }
    let errors = results.len() - accepted - duplicates - not_applied;
    Ok(HttpResponse::Ok().json(PushReply {
        success: errors == 0 && not_applied == 0,
        device_id: &b.device_id,
        accepted,
        duplicates,
        errors,
        not_applied,
        results: results.iter().map(PushResult::view).collect(),
        last_seq: last_seq.unwrap_or_else(|| app.published.get()),
        epoch: &app.epoch,
    }))
}

/// A conflict the stored copy won, as a pushed event's error.
fn conflict_error(conflict: &Conflict) -> WireError {
    let error = WireError::new(
        ErrorCode::SyncConflict,
        "The record changed since base_version; the server's copy was kept",
    );
    match serde_json::to_value(SyncConflictResolved::kept(conflict)) {
        Ok(resolved) => error.with_details(resolved),
        Err(_) => error,
    }
}

/// How one pushed event fared.
enum Pushed {
    Applied {
        seq: Option<u64>,
    },
    /// Sent before: not applied again (its first answer was that it was applied).
    Duplicate {
        seq: Option<u64>,
    },
    Error(WireError),
    /// Not applied, because an earlier event of the push failed: send it again after that one.
    NotApplied,
}

struct PushResult {
    id: Option<String>,
    result: Pushed,
}

impl PushResult {
    fn view(&self) -> PushResultView<'_> {
        let (status, seq, error) = match &self.result {
            Pushed::Applied { seq } => ("applied", Some(*seq), None),
            Pushed::Duplicate { seq } => ("duplicate", Some(*seq), None),
            Pushed::Error(error) => ("error", None, Some(error.body(None))),
            Pushed::NotApplied => ("not_applied", None, None),
        };
        PushResultView { id: self.id.as_deref(), status, seq, error }
    }
}

/// One event's result in the answer to `POST /sync/push`.
#[derive(Serialize, utoipa::ToSchema)]
struct PushResultView<'a> {
    id: Option<&'a str>,
    /// `applied`, `duplicate`, `error`, or `not_applied` (an earlier event of the push failed:
    /// none after it is applied; send them again).
    status: &'static str,
    /// The change's `seq` for an applied or duplicate event (`null` for one that logs no
    /// change, such as `acknowledge`); absent for an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody<'a>>,
}

/// The answer to `POST /sync/push`.
#[derive(Serialize, utoipa::ToSchema)]
struct PushReply<'a> {
    success: bool,
    device_id: &'a str,
    accepted: usize,
    duplicates: usize,
    errors: usize,
    /// Events after the first that failed: not applied.
    not_applied: usize,
    results: Vec<PushResultView<'a>>,
    last_seq: u64,
    epoch: &'a str,
}

/// The answer to `GET /sync/pull`: a page of changes, or (when what it asks for from is no
/// longer kept) `resync_required` with no changes.
#[derive(Serialize, utoipa::ToSchema)]
struct PullReply<'a> {
    device_id: Option<&'a str>,
    #[schema(value_type = Vec<Change>)]
    changes: Vec<Box<serde_json::value::RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seq: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resync_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oldest_seq: Option<u64>,
    head_seq: u64,
    has_more: bool,
    epoch: &'a str,
}

/// The answer to `GET /sync/status`.
#[derive(Serialize, utoipa::ToSchema)]
struct StatusReply<'a> {
    status: &'a str,
    device_id: Option<&'a str>,
    master_device_id: Option<String>,
    term: u64,
    head_seq: u64,
    oldest_seq: u64,
    epoch: &'a str,
    active_devices: usize,
    pending_changes_count: Option<u64>,
    last_sync_timestamp: Option<&'a str>,
}

/// The answer to `PUT /sync/state/{device_id}`.
#[derive(Serialize, utoipa::ToSchema)]
struct StateReply {
    success: bool,
    sync_state: DeviceSyncState,
    timestamp: String,
}

#[utoipa::path(
    get,
    path = "/sync/pull",
    tag = "sync",
    summary = "A page of changes after a position, or resync_required when that position is no longer kept",
    params(("device_id" = Option<String>, Query, description = "The pulling device: without a position, from what it confirmed"), ("since_seq" = Option<u64>, Query, description = "Changes after this seq"), ("since" = Option<String>, Query, format = DateTime, description = "Changes committed after this time (RFC 3339)"), ("limit" = Option<u64>, Query, description = "At most this many changes (1..=10000, default 1000)"), ("tables" = Option<String>, Query, description = "Only these tables, comma-separated")),
    responses((status = 200, body = PullReply), Invalid, Unauthorized, Unavailable),
    security((), ("device_token" = []))
)]
async fn pull(
    auth: DeviceAuth,
    req: HttpRequest,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let device_id = query.id("device_id")?.map(str::to_owned);
    if let Some(device_id) = &device_id {
        auth.speaks_for(device_id)?;
    }
    let limit = query.number("limit")?.unwrap_or(DEFAULT_SYNC_LIMIT);
    if !(1..=inbound::MAX_LIMIT).contains(&limit) {
        return Err(WireError::invalid(Some("limit"), None, "must be within 1..=10000").into());
    }
    let tables: Option<Vec<String>> = query
        .text("tables")
        .map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect());
    let since = match (query.number("since_seq")?, query.time("since")?) {
        (Some(seq), _) => Since::Seq(seq),
        (None, Some(at)) => Since::Time(at),
        (None, None) => match &device_id {
            Some(device) => sync::start_of(&app.db, device, None, None).await?,
            None => Since::Seq(0),
        },
    };
    let page = sync::changes(&app.db, since, tables.as_deref(), false, limit, usize::MAX).await?;
    if page.trimmed {
        return Ok(HttpResponse::Ok().json(PullReply {
            device_id: device_id.as_deref(),
            changes: Vec::new(),
            last_seq: None,
            resync_required: true,
            reason: Some("history_trimmed"),
            oldest_seq: Some(page.oldest_seq),
            head_seq: page.head_seq,
            has_more: false,
            epoch: &app.epoch,
        }));
    }
    Ok(HttpResponse::Ok().json(PullReply {
        device_id: device_id.as_deref(),
        changes: page.changes,
        last_seq: Some(page.last_seq),
        resync_required: false,
        reason: None,
        oldest_seq: None,
        head_seq: page.head_seq,
        has_more: page.has_more,
        epoch: &app.epoch,
    }))
}

#[utoipa::path(
    get,
    path = "/sync/status",
    tag = "sync",
    summary = "The log's head, the master and term, and a device's sync status",
    params(("device_id" = Option<String>, Query, description = "Add this device's status")),
    responses((status = 200, body = StatusReply), Unauthorized, Unavailable),
    security((), ("device_token" = []))
)]
async fn status(
    auth: DeviceAuth,
    req: HttpRequest,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let fleet = app.election.send(Fleet).await?;
    let head = app.published.get();
    let state = match query.id("device_id")? {
        Some(device) => {
            auth.speaks_for(device)?;
            Some(sync::device_state(&app.db, device).await?)
        }
        None => None,
    };
    Ok(HttpResponse::Ok().json(StatusReply {
        status: state.as_ref().map_or("ok", |s| s.sync_status.as_str()),
        device_id: state.as_ref().map(|s| s.device_id.as_str()),
        master_device_id: fleet.master,
        term: fleet.term,
        head_seq: head,
        oldest_seq: app.floor.oldest_seq(),
        epoch: &app.epoch,
        active_devices: fleet.devices.iter().filter(|d| d.is_active).count(),
        pending_changes_count: state.as_ref().map(|s| s.pending_changes_count),
        last_sync_timestamp: state.as_ref().and_then(|s| s.last_sync_timestamp.as_deref()),
    }))
}

#[utoipa::path(
    get,
    path = "/sync/state/{device_id}",
    tag = "sync",
    summary = "A device's position against the log",
    params(("device_id" = String, Path, description = "The device's id")),
    responses((status = 200, body = DeviceSyncState), Invalid, Unauthorized, (status = 404, description = "DEVICE_NOT_FOUND: the server never saw this device", body = RestError), Unavailable),
    security((), ("device_token" = []))
)]
async fn get_state(
    auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_id("device_id", &path)?;
    auth.speaks_for(&path)?;
    // A registered device has a sync state from registration on; only an unknown one has none
    // (a device may also have one without registering, by `PUT`).
    let known = store::devices::exists(&app.db, &path).await?
        || store::sync_states::get(&app.db, &path).await?.is_some();
    if !known {
        let error = WireError::new(ErrorCode::DeviceNotFound, format!("Device {path} does not exist"));
        return Err(error.into());
    }
    Ok(HttpResponse::Ok().json(sync::device_state(&app.db, &path).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct StateBody {
    #[schema(value_type = Option<SyncStatus>)]
    sync_status: Option<String>,
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    pending_changes_count: Option<u32>,
    last_error_message: Option<String>,
    last_error_type: Option<String>,
}

#[utoipa::path(
    put,
    path = "/sync/state/{device_id}",
    tag = "sync",
    summary = "Report a device's sync status, pending count or last error",
    params(("device_id" = String, Path, description = "The device's id")),
    request_body = StateBody,
    responses((status = 200, body = StateReply), Invalid, Unauthorized, Unavailable),
    security((), ("device_token" = []))
)]
async fn put_state(
    auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let device_id = path.into_inner();
    check_id("device_id", &device_id)?;
    auth.speaks_for(&device_id)?;
    let b: StateBody = inbound::parse_body(&body.value)?;
    let status = match b.sync_status.as_deref() {
        None => None,
        Some(name) => Some(SyncStatus::iter().find(|s| s.as_str() == name).ok_or_else(|| {
            WireError::invalid(Some("sync_status"), None, "must be pending, syncing, synced or error")
        })?),
    };
    let write = SyncStateWrite {
        device_id: device_id.clone(),
        status,
        synced_at: (status == Some(SyncStatus::Synced)).then(chrono::Utc::now),
        error: b.last_error_message,
        error_type: b.last_error_type,
        reported_pending: b.pending_changes_count.map(i64::from),
        ..Default::default()
    };
    persistence::persist(&app.persistence, vec![FleetWrite::SyncState(write)], Origin::Rest).await?;
    let state = sync::device_state(&app.db, &device_id).await?;
    Ok(HttpResponse::Ok().json(StateReply { success: true, sync_state: state, timestamp: time::now() }))
}
