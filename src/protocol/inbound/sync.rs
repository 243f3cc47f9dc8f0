//! Data and sync (section 5): `data_update`, `sync_conflict`, `data_request`, `sync_request`,
//! `sync_complete`, `sync_error`, `queue_status`, `critical_event`, `acknowledge`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::super::error::WireError;
use super::super::time;
use super::ClientEvent;
use super::fields::*;
use crate::domain::commands::RecordWrite;
use crate::domain::records::{self, Operation, RESERVED_TABLES};

/// The data and sync events (section 5), each from a registered device.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEvent {
    DataUpdate(RecordWrite),
    DataRequest(DataRequest),
    SyncRequest(SyncRequest),
    SyncComplete {
        device_id: String,
        sync_id: Option<String>,
        last_seq: Option<u64>,
        changes_count: Option<u64>,
    },
    SyncError {
        device_id: String,
        error_type: String,
        error_message: String,
        sync_type: Option<SyncType>,
        retry_count: u32,
    },
    /// `queue_status` or `queue_status_request`.
    QueueStatus {
        device_id: String,
        queue_type: Option<String>,
    },
    /// A client's own conflict report (document 000's `sync_conflict`).
    SyncConflict(RecordWrite),
    /// Legacy (003): logged, broadcast, `acknowledged`.
    CriticalEvent {
        device_id: String,
        event_type: String,
        payload: Value,
    },
    /// Legacy (003): the device processed everything up to `seq`.
    Acknowledge {
        device_id: String,
        seq: u64,
    },
}

impl SyncEvent {
    pub fn device_id(&self) -> &str {
        match self {
            Self::DataUpdate(u) | Self::SyncConflict(u) => &u.device,
            Self::DataRequest(r) => &r.device_id,
            Self::SyncRequest(r) => &r.device_id,
            Self::SyncComplete { device_id, .. }
            | Self::SyncError { device_id, .. }
            | Self::QueueStatus { device_id, .. }
            | Self::CriticalEvent { device_id, .. }
            | Self::Acknowledge { device_id, .. } => device_id,
        }
    }
}

/// What a `data_request` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    Single(String),
    Batch(Vec<String>),
    Latest(u64),
}

/// `data_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequest {
    pub device_id: String,
    pub table: String,
    pub kind: RequestKind,
}

/// The kinds of sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncType {
    Full,
    Incremental,
    Critical,
}

impl SyncType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
            Self::Critical => "critical",
        }
    }
}

/// `sync_request`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRequest {
    pub device_id: String,
    pub sync_type: SyncType,
    pub last_seq: Option<u64>,
    pub last_sync_timestamp: Option<DateTime<Utc>>,
    pub epoch: Option<String>,
    pub requested_tables: Option<Vec<String>>,
    pub limit: u64,
}

/// Default page size of an incremental sync.
pub const DEFAULT_SYNC_LIMIT: u64 = 1000;

/// Default count of a `latest` data request.
pub const DEFAULT_LATEST_LIMIT: u64 = 50;

/// `data_update` (or a reported `sync_conflict`): the seed aliases, the record-id rule, and the
/// data that must be an object unless the record is deleted.
pub(super) fn data_update(
    value: &Value,
    map: &Map<String, Value>,
    reported: bool,
) -> Result<RecordWrite, WireError> {
    let m: DataUpdateMsg = parse(value)?;
    let table = table_of(m.table_name, m.table)?;
    let record_id = match &m.record_id {
        None => return Err(WireError::invalid(Some("record_id"), None, "is required")),
        Some(v) => records::canonical_id(v).filter(|id| is_id(id)).ok_or_else(|| {
            WireError::invalid(
                Some("record_id"),
                None,
                "must be a string of 1 to 128 characters or an integer",
            )
        })?,
    };
    let operation = match m.operation.as_deref() {
        None => Operation::Update,
        Some(name) => Operation::parse(name).ok_or_else(|| {
            WireError::invalid(Some("operation"), None, "must be insert, create, update or delete")
        })?,
    };
    let (field, data) = if reported {
        ("local_data", m.local_data)
    } else if m.new_data.is_some() {
        ("new_data", m.new_data)
    } else {
        ("data", m.data)
    };
    let data = match (operation, data) {
        (Operation::Delete, _) if !reported => None,
        (_, Some(Value::Object(object))) => Some(object),
        (_, None | Some(Value::Null)) => {
            return Err(WireError::invalid(Some(field), None, "is required: the record's JSON object"));
        }
        (_, Some(_)) => return Err(WireError::invalid(Some(field), None, "must be a JSON object")),
    };
    let base_version = if reported { m.server_version.or(m.base_version) } else { m.base_version };
    let at = map.get("timestamp").and_then(Value::as_str).and_then(time::parse);
    let base_version = base_version.map(|v| v.0);
    Ok(RecordWrite {
        device: m.device_id.0,
        table,
        record_id,
        operation: if reported { Operation::Update } else { operation },
        data,
        base_version,
        at,
        reported,
        local_version: if reported { None } else { base_version },
    })
}

/// The table of a data event, named `table_name` (001) or `table` (000).
pub(super) fn table_of(table_name: Option<WireId>, table: Option<WireId>) -> Result<String, WireError> {
    let (field, table) = match (table_name, table) {
        (Some(a), Some(b)) if a != b => {
            return Err(WireError::invalid(
                Some("table"),
                None,
                "table and table_name name different tables",
            ));
        }
        (Some(t), _) => ("table_name", t.0),
        (None, Some(t)) => ("table", t.0),
        (None, None) => return Err(WireError::invalid(Some("table_name"), None, "is required")),
    };
    if RESERVED_TABLES.contains(&table.as_str()) {
        return Err(WireError::invalid(Some(field), None, format!("table {table} is kept by the server")));
    }
    Ok(table)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct DataUpdateMsg {
    device_id: WireId,
    table_name: Option<WireId>,
    table: Option<WireId>,
    record_id: Option<Value>,
    new_data: Option<Value>,
    data: Option<Value>,
    local_data: Option<Value>,
    operation: Option<String>,
    base_version: Option<AtLeast<0>>,
    server_version: Option<AtLeast<0>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct DataRequestMsg {
    device_id: WireId,
    table_name: Option<WireId>,
    table: Option<WireId>,
    record_id: Option<WireIdOrInt>,
    record_ids: Option<Vec<WireIdOrInt>>,
    request_type: Option<String>,
    #[serde(default, deserialize_with = "opt_number")]
    limit: Option<u64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SyncRequestMsg {
    device_id: WireId,
    sync_type: Option<SyncType>,
    #[serde(default, deserialize_with = "opt_number")]
    last_seq: Option<u64>,
    last_sync_timestamp: Option<ClientTime>,
    epoch: Option<String>,
    requested_tables: Option<Vec<WireId>>,
    #[serde(default, deserialize_with = "opt_number")]
    limit: Option<u64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct SyncCompleteMsg {
    device_id: WireId,
    sync_id: Option<String>,
    #[serde(default, deserialize_with = "opt_number")]
    last_seq: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    changes_count: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    records_processed: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    conflicts_resolved: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    duration_ms: Option<u64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SyncErrorMsg {
    device_id: WireId,
    error_type: String,
    error_message: String,
    sync_type: Option<SyncType>,
    retry_count: Option<u32>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct QueueStatusMsg {
    device_id: WireId,
    queue_type: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct CriticalEventMsg {
    device_id: WireId,
    event_type: WireId,
    payload: Value,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct AcknowledgeMsg {
    device_id: WireId,
    #[serde(deserialize_with = "number")]
    seq: u64,
}

/// The data and sync events; `None` for another kind.
pub(super) fn event(
    kind: &str,
    value: &Value,
    map: &Map<String, Value>,
) -> Result<Option<ClientEvent>, WireError> {
    let event = match kind {
        "data_update" => ClientEvent::Sync(SyncEvent::DataUpdate(data_update(value, map, false)?)),
        "sync_conflict" => ClientEvent::Sync(SyncEvent::SyncConflict(data_update(value, map, true)?)),
        "data_request" => {
            let m: DataRequestMsg = parse(value)?;
            let table = table_of(m.table_name, m.table)?;
            let kind = match m.request_type.as_deref().unwrap_or("single") {
                "single" => RequestKind::Single(
                    m.record_id.ok_or_else(|| WireError::invalid(Some("record_id"), None, "is required"))?.0,
                ),
                "batch" => {
                    let ids = m
                        .record_ids
                        .ok_or_else(|| WireError::invalid(Some("record_ids"), None, "is required"))?;
                    if ids.len() > MAX_ITEMS {
                        return Err(WireError::invalid(
                            Some("record_ids"),
                            None,
                            format!("at most {MAX_ITEMS} ids"),
                        ));
                    }
                    RequestKind::Batch(ids.into_iter().map(|id| id.0).collect())
                }
                "latest" => RequestKind::Latest(limit_of(m.limit, DEFAULT_LATEST_LIMIT)?),
                _ => {
                    return Err(WireError::invalid(
                        Some("request_type"),
                        None,
                        "must be single, batch or latest",
                    ));
                }
            };
            ClientEvent::Sync(SyncEvent::DataRequest(DataRequest { device_id: m.device_id.0, table, kind }))
        }
        "sync_request" => {
            let m: SyncRequestMsg = parse(value)?;
            if m.requested_tables.as_ref().is_some_and(|t| t.len() > MAX_ITEMS) {
                return Err(WireError::invalid(
                    Some("requested_tables"),
                    None,
                    format!("at most {MAX_ITEMS} tables"),
                ));
            }
            ClientEvent::Sync(SyncEvent::SyncRequest(SyncRequest {
                device_id: m.device_id.0,
                sync_type: m.sync_type.unwrap_or(SyncType::Full),
                last_seq: m.last_seq,
                last_sync_timestamp: m.last_sync_timestamp.map(|t| t.0),
                epoch: m.epoch,
                requested_tables: m.requested_tables.map(|t| t.into_iter().map(|t| t.0).collect()),
                limit: limit_of(m.limit, DEFAULT_SYNC_LIMIT)?,
            }))
        }
        "sync_complete" => {
            let m: SyncCompleteMsg = parse(value)?;
            ClientEvent::Sync(SyncEvent::SyncComplete {
                device_id: m.device_id.0,
                sync_id: m.sync_id,
                last_seq: m.last_seq,
                changes_count: m.changes_count.or(m.records_processed),
            })
        }
        "sync_error" => {
            let m: SyncErrorMsg = parse(value)?;
            ClientEvent::Sync(SyncEvent::SyncError {
                device_id: m.device_id.0,
                error_type: m.error_type,
                error_message: m.error_message,
                sync_type: m.sync_type,
                retry_count: m.retry_count.unwrap_or(0),
            })
        }
        "queue_status" | "queue_status_request" => {
            let m: QueueStatusMsg = parse(value)?;
            ClientEvent::Sync(SyncEvent::QueueStatus { device_id: m.device_id.0, queue_type: m.queue_type })
        }
        "critical_event" => {
            let m: CriticalEventMsg = parse(value)?;
            if !m.payload.is_object() {
                return Err(WireError::invalid(Some("payload"), None, "must be a JSON object"));
            }
            ClientEvent::Sync(SyncEvent::CriticalEvent {
                device_id: m.device_id.0,
                event_type: m.event_type.0,
                payload: m.payload,
            })
        }
        "acknowledge" => {
            let m: AcknowledgeMsg = parse(value)?;
            ClientEvent::Sync(SyncEvent::Acknowledge { device_id: m.device_id.0, seq: m.seq })
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}
