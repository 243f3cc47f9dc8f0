//! Logged changes to generic records and the legacy critical events, applied inside a batch,
//! and the receipts that make a pushed event apply once.

use chrono::{DateTime, Utc};
use entity::{push_receipt, record, sync_conflict};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    DatabaseTransaction, DbErr, EntityTrait,
};
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
        sync_conflict::Entity::insert(sync_conflict::ActiveModel {
            id: NotSet,
            device_id: Set(conflict.device.clone()),
            table_name: Set(conflict.table.clone()),
            record_id: Set(conflict.record_id.clone()),
            conflict_type: Set("version".to_owned()),
            local_version: Set(conflict.local_version),
            server_version: Set(server_version),
            resolution_method: Set(policy.as_str().to_owned()),
            created_at: Set(now),
        })
        .exec_without_returning(txn)
        .await?;
        return Ok((None, RecordOutcome::Kept(Box::new(conflict))));
    }
    let version = server_version + 1;
    let deleted = w.operation == Operation::Delete;
    let data = if deleted { Value::Null } else { Value::Object(w.data.clone().unwrap_or_default()) };
    let data_text = (!deleted).then(|| data.to_string());
    record::Entity::insert(record::ActiveModel {
        table_name: Set(w.table.clone()),
        record_id: Set(w.record_id.clone()),
        data: Set(data_text.clone()),
        version: Set(version),
        deleted: Set(deleted),
        written_at: Set(w.at.unwrap_or(now)),
        updated_at: Set(now),
        last_seq: Set(store::changes::to_db(seq)),
        source_device: Set(Some(w.device.clone())),
    })
    .on_conflict(
        OnConflict::columns([record::Column::TableName, record::Column::RecordId])
            .update_columns([
                record::Column::Data,
                record::Column::Version,
                record::Column::Deleted,
                record::Column::WrittenAt,
                record::Column::UpdatedAt,
                record::Column::LastSeq,
                record::Column::SourceDevice,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
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

/// The change a device's pushed event made before, if it was applied already.
pub(super) async fn receipt(
    txn: &DatabaseTransaction,
    device_id: &str,
    event_id: &str,
) -> Result<Option<Option<u64>>, DbErr> {
    let row = push_receipt::Entity::find_by_id((device_id.to_owned(), event_id.to_owned())).one(txn).await?;
    Ok(row.map(|r| r.seq.map(store::changes::from_db)))
}

/// Records that a device's pushed event was applied (as change `seq`).
pub(super) async fn keep_receipt(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    device_id: &str,
    event_id: &str,
    seq: Option<u64>,
) -> Result<(), DbErr> {
    push_receipt::Entity::insert(push_receipt::ActiveModel {
        device_id: Set(device_id.to_owned()),
        event_id: Set(event_id.to_owned()),
        seq: Set(seq.map(store::changes::to_db)),
        created_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}
