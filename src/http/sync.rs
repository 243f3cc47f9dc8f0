//! Sync over REST (documents 001 and 003): a device's offline queue pushed in one request
//! (each event applied in order, at most once per device and event id), changes pulled by page,
//! and sync status and state.

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::DeviceAuth;
use super::body::JsonBody;
use super::cashier::resource;
use super::error::ApiError;
use super::query::Query;
use crate::actors::election::Fleet;
use crate::actors::persistence::{self, Origin, Outcome};
use crate::domain::commands::Command;
use crate::domain::fleet::{FleetWrite, SyncStateWrite};
use crate::protocol::inbound::{
    self, ClientEvent, DEFAULT_SYNC_LIMIT, Intent, MAX_ITEMS, SyncEvent, check_id,
};
use crate::protocol::{ErrorCode, WireError, time};
use crate::state::AppState;
use crate::store::changes::Since;
use crate::{store, sync};

/// Registers the sync routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/sync/push").route(web::post().to(push)))
        .service(resource("/sync/pull").route(web::get().to(pull)))
        .service(resource("/sync/status").route(web::get().to(status)))
        .service(
            resource("/sync/state/{device_id}")
                .route(web::get().to(get_state))
                .route(web::put().to(put_state)),
        );
}

#[derive(Deserialize)]
struct PushBody {
    device_id: String,
    events: Vec<Value>,
}

/// The command a pushed event asks for. Only writes can be pushed, and only for the pushing
/// device.
fn pushed_command(device_id: &str, event: &Value) -> Result<Command, WireError> {
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
            Ok(Command::Fleet(vec![FleetWrite::SyncState(SyncStateWrite {
                device_id,
                confirmed_seq: Some(seq),
                ..Default::default()
            })]))
        }
        Intent::Other(_) => Err(WireError::invalid(Some("type"), None, "only changes can be pushed")),
    }
}

async fn push(_auth: DeviceAuth, app: web::Data<AppState>, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let b: PushBody = inbound::parse_body(&body.value)?;
    check_id("device_id", &b.device_id)?;
    if b.events.len() > MAX_ITEMS {
        return Err(WireError::invalid(Some("events"), None, format!("at most {MAX_ITEMS} events")).into());
    }
    // Every event is handed over at once, in order: they are applied in that order (and
    // committed together where they can be); each is answered on its own.
    let mut pending = Vec::with_capacity(b.events.len());
    for event in &b.events {
        let id = event.get("id").and_then(Value::as_str).map(str::to_owned);
        let command = match &id {
            None => Err(WireError::invalid(Some("events"), None, "every event needs an id (a string)")),
            Some(id) => check_id("id", id).and_then(|()| pushed_command(&b.device_id, event)),
        };
        let outcome = command.map(|command| {
            let command = Command::Pushed {
                device_id: b.device_id.clone(),
                event_id: id.clone().unwrap_or_default(),
                command: Box::new(command),
            };
            persistence::persist(&app.persistence, command, Origin::Rest)
        });
        pending.push((id, outcome));
    }
    let (ids, outcomes): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
    let outcomes = join_all(outcomes.into_iter().map(|o| async move {
        match o {
            Ok(write) => write.await.map_err(|e| e.to_wire()),
            Err(e) => Err(e),
        }
    }))
    .await;
    let (mut accepted, mut duplicates, mut last_seq) = (0, 0, None::<u64>);
    let mut results = Vec::with_capacity(ids.len());
    for (id, outcome) in ids.into_iter().zip(outcomes) {
        let result = match outcome {
            Ok(applied) => match applied.outcome {
                Outcome::Duplicate { seq } => {
                    duplicates += 1;
                    last_seq = last_seq.max(seq);
                    json!({"id": id, "status": "duplicate", "seq": seq})
                }
                Outcome::Conflict { resolved, .. } => {
                    let error = WireError::new(
                        ErrorCode::SyncConflict,
                        "The record changed since base_version; the server's copy was kept",
                    )
                    .with_details(resolved);
                    json!({"id": id, "status": "error", "error": error.body(None)})
                }
                _ => {
                    accepted += 1;
                    last_seq = last_seq.max(applied.seq);
                    json!({"id": id, "status": "applied", "seq": applied.seq})
                }
            },
            Err(error) => json!({"id": id, "status": "error", "error": error.body(None)}),
        };
        results.push(result);
    }
    let errors = results.len() - accepted - duplicates;
    Ok(HttpResponse::Ok().json(json!({
        "success": errors == 0,
        "device_id": b.device_id,
        "accepted": accepted,
        "duplicates": duplicates,
        "errors": errors,
        "results": results,
        "last_seq": last_seq.unwrap_or_else(|| app.published.get()),
        "epoch": app.epoch,
    })))
}

async fn pull(
    _auth: DeviceAuth,
    req: HttpRequest,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let device_id = query.text("device_id").map(str::to_owned);
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
    let page = sync::changes(&app.db, since, tables.as_deref(), false, limit).await?;
    if page.trimmed {
        return Ok(HttpResponse::Ok().json(json!({
            "device_id": device_id,
            "changes": [],
            "resync_required": true,
            "reason": "history_trimmed",
            "oldest_seq": page.oldest_seq,
            "head_seq": page.head_seq,
            "has_more": false,
            "epoch": app.epoch,
        })));
    }
    Ok(HttpResponse::Ok().json(json!({
        "device_id": device_id,
        "changes": page.changes,
        "last_seq": page.last_seq,
        "head_seq": page.head_seq,
        "has_more": page.has_more,
        "epoch": app.epoch,
    })))
}

async fn status(
    _auth: DeviceAuth,
    req: HttpRequest,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let fleet = app.election.send(Fleet).await?;
    let head = app.published.get();
    let state = match query.text("device_id") {
        Some(device) => Some(sync::device_state(&app.db, device).await?),
        None => None,
    };
    Ok(HttpResponse::Ok().json(json!({
        "status": state.as_ref().map_or("ok", |s| s.sync_status.as_str()),
        "device_id": state.as_ref().map(|s| s.device_id.clone()),
        "master_device_id": fleet.master,
        "term": fleet.term,
        "head_seq": head,
        "oldest_seq": app.floor.oldest_seq(),
        "epoch": app.epoch,
        "active_devices": fleet.devices.iter().filter(|d| d.is_active).count(),
        "pending_changes_count": state.as_ref().map(|s| s.pending_changes_count),
        "last_sync_timestamp": state.as_ref().and_then(|s| s.last_sync_timestamp.clone()),
    })))
}

async fn get_state(
    _auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_id("device_id", &path)?;
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

#[derive(Deserialize)]
struct StateBody {
    sync_status: Option<String>,
    pending_changes_count: Option<u32>,
    last_error_message: Option<String>,
    last_error_type: Option<String>,
}

async fn put_state(
    _auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let device_id = path.into_inner();
    check_id("device_id", &device_id)?;
    let b: StateBody = inbound::parse_body(&body.value)?;
    let status = match b.sync_status.as_deref() {
        None => None,
        Some("pending") => Some("pending"),
        Some("syncing") => Some("syncing"),
        Some("synced") => Some("synced"),
        Some("error") => Some("error"),
        Some(_) => {
            return Err(WireError::invalid(
                Some("sync_status"),
                None,
                "must be pending, syncing, synced or error",
            )
            .into());
        }
    };
    let write = SyncStateWrite {
        device_id: device_id.clone(),
        status,
        synced_at: (status == Some("synced")).then(chrono::Utc::now),
        error: b.last_error_message,
        error_type: b.last_error_type,
        reported_pending: b.pending_changes_count.map(i64::from),
        ..Default::default()
    };
    persistence::persist(&app.persistence, Command::Fleet(vec![FleetWrite::SyncState(write)]), Origin::Rest)
        .await?;
    let state = sync::device_state(&app.db, &device_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "sync_state": state, "timestamp": time::now() })))
}
