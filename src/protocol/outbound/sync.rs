//! What the server sends about records and sync (section 5).

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::message;
use crate::domain::records::{Conflict, RESERVED_TABLES, id_to_json};
use crate::protocol::time;

/// A change as sync sends it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Change {
    pub seq: u64,
    pub table_name: String,
    pub record_id: serde_json::Value,
    pub operation: String,
    /// The record's state after the change (`null` after a delete), as stored.
    #[schema(value_type = serde_json::Value)]
    pub data: Option<Box<RawValue>>,
    pub version: Option<i64>,
    pub timestamp: String,
}

impl Change {
    /// A logged change as a sync page sends it. Generic records' ids follow the record-id rule;
    /// the server's own tables keep theirs as strings.
    pub fn new(
        seq: u64,
        table_name: &str,
        record_id: Option<&str>,
        operation: &str,
        data: Option<&str>,
        version: Option<i64>,
        committed_at: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let record_id = match record_id {
            Some(id) if RESERVED_TABLES.contains(&table_name) => Value::String(id.to_owned()),
            Some(id) => id_to_json(id),
            None => Value::Null,
        };
        Self {
            seq,
            table_name: table_name.to_owned(),
            record_id,
            operation: operation.to_owned(),
            data: data.and_then(|d| RawValue::from_string(d.to_owned()).ok()),
            version,
            timestamp: time::format(committed_at),
        }
    }

    /// The change as JSON text, as the change log keeps it for sync pages.
    pub fn to_text(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }
}

/// A conflict a device lost, as `sync_response.conflicts` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConflictView {
    pub table: String,
    pub table_name: String,
    pub record_id: serde_json::Value,
    pub conflict_type: String,
    pub local_version: Option<i64>,
    pub server_version: i64,
    pub resolution: &'static str,
    pub resolution_method: String,
    pub timestamp: String,
}

/// A record as sync and `data_request` send it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordView {
    pub record_id: serde_json::Value,
    #[schema(value_type = serde_json::Value)]
    pub data: Option<Box<RawValue>>,
    pub version: i64,
    pub updated_at: String,
}

/// `sync_response` (and, without `data`, a `/sync/pull` page).
#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct SyncResponse {
    pub device_id: String,
    pub sync_type: &'static str,
    pub status: &'static str,
    pub sync_id: String,
    pub master_device_id: Option<String>,
    /// Each change as `Change` renders it, kept in that form by the change log.
    #[schema(value_type = Vec<Change>)]
    pub changes: Vec<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<std::collections::BTreeMap<String, Vec<RecordView>>>,
    pub conflicts: Vec<ConflictView>,
    pub last_seq: u64,
    pub head_seq: u64,
    pub has_more: bool,
    pub epoch: String,
}

/// `data_update`: a record changed; every session but the writer's receives it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DataUpdate<'a> {
    pub table: &'a str,
    pub table_name: &'a str,
    pub operation: &'static str,
    pub record_id: Value,
    /// The record after the change (`null` after a delete).
    pub data: &'a Value,
    /// The same, under the name document 003 uses.
    pub new_data: &'a Value,
    pub version: i64,
    pub seq: u64,
    pub source_device: &'a str,
}

/// `data_update_ack`: the writer's reply.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DataUpdateAck<'a> {
    pub status: &'static str,
    pub table_name: &'a str,
    pub record_id: Value,
    pub version: i64,
    pub seq: u64,
}

/// The record a conflict is about, and the device that wrote it, as both conflict messages
/// name them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConflictOf<'a> {
    pub device_id: &'a str,
    pub table_name: &'a str,
    pub table: &'a str,
    pub record_id: Value,
}

impl<'a> ConflictOf<'a> {
    fn of(conflict: &'a Conflict) -> Self {
        Self {
            device_id: &conflict.device,
            table_name: &conflict.table,
            table: &conflict.table,
            record_id: id_to_json(&conflict.record_id),
        }
    }
}

/// `sync_conflict`: the writer's change lost to the stored copy.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SyncConflict<'a> {
    #[serde(flatten)]
    pub of: ConflictOf<'a>,
    pub conflict_type: &'static str,
    pub local_version: Option<i64>,
    pub server_version: i64,
    pub local_data: &'a Value,
    pub server_data: &'a Value,
    pub conflict_data: ConflictData,
}

/// The versions in conflict, as document 003 nests them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConflictData {
    pub local_version: Option<i64>,
    pub remote_version: i64,
    pub timestamp: String,
}

impl<'a> SyncConflict<'a> {
    pub fn of(conflict: &'a Conflict) -> Self {
        Self {
            of: ConflictOf::of(conflict),
            conflict_type: "version",
            local_version: conflict.local_version,
            server_version: conflict.server_version,
            local_data: &conflict.incoming,
            server_data: &conflict.stored,
            conflict_data: ConflictData {
                local_version: conflict.local_version,
                remote_version: conflict.server_version,
                timestamp: time::format(conflict.at),
            },
        }
    }
}

/// `sync_conflict_resolved`: which copy a conflict kept.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SyncConflictResolved<'a> {
    #[serde(flatten)]
    pub of: ConflictOf<'a>,
    /// `server_wins` or `local_wins`.
    pub resolution: &'static str,
    pub resolution_method: &'static str,
    pub resolved_data: &'a Value,
    pub version: i64,
    /// The change that took the incoming copy (none when the stored copy stayed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl<'a> SyncConflictResolved<'a> {
    /// The stored copy stayed; nothing was written.
    pub fn kept(conflict: &'a Conflict) -> Self {
        Self::new(conflict, "server_wins", &conflict.stored, conflict.server_version, None)
    }

    /// The incoming copy was written as `version`, change `seq`.
    pub fn taken(conflict: &'a Conflict, version: i64, seq: u64) -> Self {
        Self::new(conflict, "local_wins", &conflict.incoming, version, Some(seq))
    }

    fn new(
        conflict: &'a Conflict,
        resolution: &'static str,
        resolved_data: &'a Value,
        version: i64,
        seq: Option<u64>,
    ) -> Self {
        Self {
            of: ConflictOf::of(conflict),
            resolution,
            resolution_method: conflict.policy.as_str(),
            resolved_data,
            version,
            seq,
        }
    }
}

/// `critical_event`: a legacy critical event, as logged.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CriticalEvent<'a> {
    pub event_type: &'a str,
    pub payload: &'a Value,
    pub device_id: &'a str,
    pub seq: u64,
}

/// `acknowledged`: the reply to `acknowledge` and `critical_event`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Acknowledged {
    pub message: String,
    pub seq: u64,
}

/// `sync_error_ack`: the retry plan for a device's failed sync.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SyncErrorAck<'a> {
    pub device_id: &'a str,
    /// `retry_scheduled` or `manual_intervention`.
    pub status: &'static str,
    pub retry_after: Option<String>,
    pub error_message: &'a str,
    pub error_code: &'a str,
    pub sync_type: Option<&'static str>,
    pub retry_count: u32,
    pub message: String,
}

/// `queue_status_response`: where a device's queue stands.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QueueStatusResponse<'a> {
    pub device_id: &'a str,
    pub queue_type: &'a str,
    pub pending_count: u64,
    /// Sent to the device and not yet confirmed.
    pub processing_count: u64,
    pub confirmed_seq: u64,
    pub error_count: i64,
    pub last_processed: Option<&'a str>,
    pub status: &'static str,
}

/// `sync_complete_ack`: a device confirmed its sync.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SyncCompleteAck<'a> {
    pub device_id: &'a str,
    pub status: &'static str,
    pub sync_id: Option<&'a str>,
    pub sync_timestamp: String,
    pub last_seq: u64,
    pub changes_count: u64,
    pub next_sync_scheduled: String,
    pub message: String,
}

/// `data_response`: the records a `data_request` asked for.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DataResponse<'a> {
    pub device_id: &'a str,
    pub table_name: &'a str,
    pub table: &'a str,
    /// `success` or `not_found`.
    pub status: &'static str,
    #[serde(flatten)]
    pub found: Found,
}

/// What a `data_request` found, by the shape it asked in.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Found {
    /// One record by id (`data` and `version` are `null` when it is not there).
    Single {
        record_id: Value,
        #[schema(value_type = serde_json::Value)]
        data: Option<Box<RawValue>>,
        version: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        updated_at: Option<String>,
    },
    /// Records by id, and the ids not found.
    Batch { request_type: &'static str, records: Vec<RecordView>, not_found: Vec<Value> },
    /// The newest records of the table.
    Latest { request_type: &'static str, records: Vec<RecordView>, limit: u64 },
}

message! {
    DataUpdate<'a> => DataUpdate,
    DataUpdateAck<'a> => DataUpdateAck,
    SyncConflict<'a> => SyncConflict,
    SyncConflictResolved<'a> => SyncConflictResolved,
    CriticalEvent<'a> => CriticalEvent,
    Acknowledged => Acknowledged,
    SyncErrorAck<'a> => SyncErrorAck,
    QueueStatusResponse<'a> => QueueStatusResponse,
    SyncCompleteAck<'a> => SyncCompleteAck,
    DataResponse<'a> => DataResponse,
    SyncResponse => SyncResponse,
}
