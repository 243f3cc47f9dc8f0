//! Logged changes to generic records and the legacy critical events, applied inside a batch.

use chrono::{DateTime, Utc};
use entity::record;
use sea_orm::{DatabaseTransaction, EntityTrait};
use serde_json::{Value, json};

use super::{ApplyError, Logged};
use crate::domain::commands::RecordWrite;
use crate::domain::records::{self, CRITICAL_EVENTS, Conflict, ConflictPolicy, Operation, Stored, Verdict};
use crate::protocol::outbound::{
    self, Acknowledged, CriticalEvent, DataUpdate, DataUpdateAck, SyncConflictResolved,
};
use crate::protocol::{ErrorCode, WireError};
use crate::store;

/// What a record write came to.
#[derive(Debug, Clone)]
pub enum RecordOutcome {
    /// The record after the write.
    Written { table: String, record_id: String, version: i64 },
    /// A conflict the stored copy won: nothing was written; the writer is told.
    Kept(Box<Conflict>),
}

fn data_json(data: Option<&str>) -> Value {
    data.and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null)
}

pub(super) async fn apply_record(
    txn: &DatabaseTransaction,
    seq: u64,
    now: DateTime<Utc>,
    policy: ConflictPolicy,
    w: RecordWrite,
    reply_to: Option<&str>,
) -> Result<(Option<Logged>, RecordOutcome), ApplyError> {
    let stored = record::Entity::find_by_id((w.table.clone(), w.record_id.clone())).one(txn).await?;
    let live = stored.as_ref().filter(|r| !r.deleted);
    if w.operation == Operation::Delete && live.is_none() && !w.reported {
        return Err(ApplyError::Rejected(WireError::new(
            ErrorCode::RecordNotFound,
            format!("Record {} of {} does not exist", w.record_id, w.table),
        )));
    }
    let meta = stored.as_ref().map(|r| Stored { version: r.version, written_at: r.written_at });
    let verdict = records::judge(policy, w.base_version, meta, w.at, w.reported);
    let server_version = meta.map_or(0, |m| m.version);
    let conflict = |incoming: Value| Conflict {
        device: w.device.clone(),
        table: w.table.clone(),
        record_id: w.record_id.clone(),
        local_version: w.local_version.or(w.base_version),
        server_version,
        incoming,
        stored: data_json(live.and_then(|r| r.data.as_deref())),
        policy,
        at: now,
        reported: w.reported,
    };
    if verdict == (Verdict::Conflict { incoming_wins: false }) {
        let conflict = conflict(w.data.clone().map(Value::Object).unwrap_or(Value::Null));
        // The device lost: kept so that its next sync lists the conflict.
        store::records::keep_conflict(txn, &conflict).await?;
        return Ok((None, RecordOutcome::Kept(Box::new(conflict))));
    }
    let version = server_version + 1;
    let deleted = w.operation == Operation::Delete;
    let data = if deleted { Value::Null } else { Value::Object(w.data.clone().unwrap_or_default()) };
    let data_text = (!deleted).then(|| data.to_string());
    let row = store::records::RecordRow {
        table: &w.table,
        record_id: &w.record_id,
        data: data_text.clone(),
        version,
        deleted,
        written_at: w.at.unwrap_or(now),
        seq,
        source_device: &w.device,
    };
    store::records::write(txn, row, now).await?;
    let record_id = records::id_to_json(&w.record_id);
    let update = DataUpdate {
        table: &w.table,
        table_name: &w.table,
        operation: w.operation.as_str(),
        record_id: record_id.clone(),
        data: &data,
        new_data: &data,
        version,
        seq,
        source_device: &w.device,
    };
    let ack = DataUpdateAck { status: "success", table_name: &w.table, record_id, version, seq };
    let notify = matches!(verdict, Verdict::Conflict { incoming_wins: true }).then(|| {
        let conflict = conflict(data.clone());
        outbound::render(&SyncConflictResolved::taken(&conflict, version, seq), None)
    });
    let logged = Logged {
        table_name: w.table.clone(),
        record_id: w.record_id.clone(),
        operation: w.operation.as_str(),
        data: data_text,
        version: Some(version),
        frame: outbound::render(&update, None),
        reply: Some(outbound::render(&ack, reply_to)),
        notify,
    };
    Ok((Some(logged), RecordOutcome::Written { table: w.table, record_id: w.record_id, version }))
}

/// A legacy critical event: logged as a change of `critical_events`.
pub(super) fn apply_critical(
    seq: u64,
    device_id: String,
    event_type: String,
    payload: Value,
    reply_to: Option<&str>,
) -> Logged {
    let id = uuid::Uuid::now_v7().to_string();
    let data = json!({ "event_type": event_type, "payload": payload, "device_id": device_id });
    let event = CriticalEvent { event_type: &event_type, payload: &payload, device_id: &device_id, seq };
    let ack = Acknowledged { message: "Critical event received".to_owned(), seq };
    Logged {
        table_name: CRITICAL_EVENTS.to_owned(),
        record_id: id,
        operation: "insert",
        data: Some(data.to_string()),
        version: None,
        frame: outbound::render(&event, None),
        reply: Some(outbound::render(&ack, reply_to)),
        notify: None,
    }
}
