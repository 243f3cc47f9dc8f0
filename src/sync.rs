//! Sync reads, shared by the WebSocket events and REST: pages of the change log (incremental
//! sync, `/sync/pull`), one consistent snapshot of every live record (full sync), records by id,
//! and a device's sync state. Each read runs in one snapshot transaction, so what it returns is
//! consistent with the `seq` it reports.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::{record, sync_state};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::fleet::SyncStatus;
use crate::domain::records::{self as rules, CRITICAL_EVENTS};
use crate::protocol::outbound::{Change, ConflictView, RecordView, StationData};
use crate::protocol::{WireError, time};
use crate::store::{self, changes::Since};

/// Most conflicts one `sync_response` lists.
pub const MAX_CONFLICTS: u64 = 1000;

/// The conflicts `device_id` lost since its last confirmed sync (`sync_complete`), oldest first.
pub async fn lost_conflicts(db: &DatabaseConnection, device_id: &str) -> Result<Vec<ConflictView>, DbErr> {
    let since = store::sync_states::get(db, device_id).await?.and_then(|s| s.last_sync_timestamp);
    let rows = store::sync_states::lost_conflicts(db, device_id, since, MAX_CONFLICTS).await?;
    Ok(rows
        .into_iter()
        .map(|c| ConflictView {
            table: c.table_name.clone(),
            table_name: c.table_name,
            record_id: rules::id_to_json(&c.record_id),
            conflict_type: c.conflict_type,
            local_version: c.local_version,
            server_version: c.server_version,
            resolution: "server_wins",
            resolution_method: c.resolution_method,
            timestamp: time::format(c.created_at),
        })
        .collect())
}

/// A page of changes.
#[derive(Debug)]
pub struct ChangesPage {
    /// Each change as `Change` renders it.
    pub changes: Vec<Box<RawValue>>,
    /// The last change's `seq`, or the head when the page is empty.
    pub last_seq: u64,
    pub head_seq: u64,
    pub has_more: bool,
    /// The oldest change kept (retention).
    pub oldest_seq: u64,
    /// The page would need changes retention has pruned: it is empty, and the device must do a
    /// full sync (`history_trimmed`).
    pub trimmed: bool,
}

/// Every live record of the requested tables, at log position `last_seq`.
#[derive(Debug)]
pub struct Snapshot {
    pub data: BTreeMap<String, Vec<RecordView>>,
    pub last_seq: u64,
    pub head_seq: u64,
}

fn raw(text: Option<String>) -> Option<Box<RawValue>> {
    text.and_then(|t| RawValue::from_string(t).ok())
}

/// A stored record, as sent.
pub fn record_view(r: record::Model) -> RecordView {
    RecordView {
        record_id: rules::id_to_json(&r.record_id),
        data: raw(r.data),
        version: r.version,
        updated_at: time::format(r.updated_at),
    }
}

/// Up to `limit` changes from `since`, oldest first: of `tables` when given, of the critical
/// events only when `critical`.
pub async fn changes(
    db: &DatabaseConnection,
    since: Since,
    tables: Option<&[String]>,
    critical: bool,
    limit: u64,
    max_bytes: usize,
) -> Result<ChangesPage, DbErr> {
    let critical_only = [CRITICAL_EVENTS.to_owned()];
    let tables = if critical { Some(&critical_only[..]) } else { tables };
    let txn = store::snapshot(db).await?;
    // The floor and the kept changes are read in one snapshot: they agree.
    let (floor, head_seq) = store::changes::bounds(&txn).await?;
    if floor.trims(since) {
        txn.commit().await?;
        let oldest_seq = floor.oldest_seq();
        return Ok(ChangesPage {
            changes: Vec::new(),
            last_seq: head_seq,
            head_seq,
            has_more: false,
            oldest_seq,
            trimmed: true,
        });
    }
    let mut rows = store::changes::page(&txn, since, tables, limit.saturating_add(1)).await?;
    let mut has_more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    // And no more than `max_bytes` of changes (at least one): the rest is the next page.
    let mut bytes = 0usize;
    let fits = rows
        .iter()
        .position(|(_, text)| {
            bytes = bytes.saturating_add(text.as_ref().map_or(0, String::len));
            bytes > max_bytes
        })
        .map_or(rows.len(), |over| over.max(1));
    if fits < rows.len() {
        rows.truncate(fits);
        has_more = true;
    }
    let last_seq = rows.last().map_or(head_seq, |r| r.0);
    let rows: Vec<(u64, Option<Box<RawValue>>)> =
        rows.into_iter().map(|(seq, text)| (seq, raw(text))).collect();
    // Changes logged before the log kept their sync form: rendered from their columns, read in
    // the same snapshot.
    let unrendered: Vec<u64> = rows.iter().filter(|(_, text)| text.is_none()).map(|&(seq, _)| seq).collect();
    let mut rendered: BTreeMap<u64, Box<RawValue>> = BTreeMap::new();
    if !unrendered.is_empty() {
        for row in store::changes::rows(&txn, &unrendered).await? {
            let change = Change::new(
                row.seq,
                &row.table_name,
                row.record_id.as_deref(),
                &row.operation,
                row.data.as_deref(),
                row.version,
                row.committed_at,
            );
            rendered.extend(raw(change.to_text()).map(|text| (row.seq, text)));
        }
    }
    txn.commit().await?;
    let changes = rows
        .into_iter()
        .map(|(seq, text)| {
            // A page never skips a change: one that cannot be sent fails the read.
            text.or_else(|| rendered.remove(&seq))
                .ok_or_else(|| DbErr::RecordNotFound(format!("change {seq} could not be rendered")))
        })
        .collect::<Result<_, _>>()?;
    Ok(ChangesPage { changes, last_seq, head_seq, has_more, oldest_seq: floor.oldest_seq(), trimmed: false })
}

/// Every live record of `tables` (all when `None`) in one snapshot, with the log's position at
/// it. Stations and the catalogue are included as the tables `stations` and `catalogue`.
pub async fn snapshot(db: &DatabaseConnection, tables: Option<&[String]>) -> Result<Snapshot, DbErr> {
    let wanted = |table: &str| tables.is_none_or(|t| t.iter().any(|w| w == table));
    let txn = store::snapshot(db).await?;
    let head_seq = store::changes::head(&txn).await?;
    let mut data: BTreeMap<String, Vec<RecordView>> = BTreeMap::new();
    if let Some(tables) = tables {
        for table in tables {
            data.entry(table.clone()).or_default();
        }
    }
    for r in store::records::live(&txn, tables).await? {
        data.entry(r.table_name.clone()).or_default().push(record_view(r));
    }
    if wanted("stations") {
        let stations = store::stations::list_with_times(&txn).await?;
        data.entry("stations".to_owned()).or_default().extend(stations.into_iter().map(|(s, updated_at)| {
            RecordView {
                record_id: serde_json::Value::String(s.id.clone()),
                data: serde_json::to_string(&StationData::of(&s))
                    .ok()
                    .and_then(|t| RawValue::from_string(t).ok()),
                version: s.version,
                updated_at: time::format(updated_at),
            }
        }));
    }
    if wanted("catalogue") {
        let documents = store::catalogue::all(&txn).await?;
        data.entry("catalogue".to_owned()).or_default().extend(documents.into_iter().map(|d| RecordView {
            record_id: serde_json::Value::String(d.name),
            data: raw(Some(d.body)),
            version: d.version,
            updated_at: time::format(d.updated_at),
        }));
    }
    txn.commit().await?;
    Ok(Snapshot { data, last_seq: head_seq, head_seq })
}

/// A device's position against the log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceSyncState {
    pub device_id: String,
    pub sync_status: SyncStatus,
    /// Changes after the `seq` it confirmed.
    pub pending_changes_count: u64,
    pub confirmed_seq: u64,
    pub last_sync_timestamp: Option<String>,
    pub last_error_message: Option<String>,
    /// The type of the last error, as the device named it.
    pub last_error_type: Option<String>,
    pub error_count: i64,
    /// What the device itself last reported as pending (`PUT /sync/state`).
    pub client_pending_changes_count: Option<i64>,
    pub updated_at: Option<String>,
}

impl DeviceSyncState {
    pub fn of(device_id: &str, row: Option<sync_state::Model>, head: u64) -> Self {
        match row {
            Some(r) => {
                let confirmed = store::changes::from_db(r.confirmed_seq);
                Self {
                    device_id: r.device_id,
                    sync_status: r.sync_status,
                    pending_changes_count: head.saturating_sub(confirmed),
                    confirmed_seq: confirmed,
                    last_sync_timestamp: r.last_sync_timestamp.map(time::format),
                    last_error_message: r.last_error_message,
                    last_error_type: r.last_error_type,
                    error_count: r.error_count,
                    client_pending_changes_count: r.reported_pending,
                    updated_at: Some(time::format(r.updated_at)),
                }
            }
            None => Self {
                device_id: device_id.to_owned(),
                sync_status: SyncStatus::Pending,
                pending_changes_count: head,
                confirmed_seq: 0,
                last_sync_timestamp: None,
                last_error_message: None,
                last_error_type: None,
                error_count: 0,
                client_pending_changes_count: None,
                updated_at: None,
            },
        }
    }

    /// `idle`, `processing` or `error`, as `queue_status_response` says it.
    pub fn queue_status(&self) -> &'static str {
        match self.sync_status {
            SyncStatus::Syncing => "processing",
            SyncStatus::Error => "error",
            SyncStatus::Pending | SyncStatus::Synced => "idle",
        }
    }
}

/// A device's sync state now (the log's head read in the same snapshot).
pub async fn device_state(db: &DatabaseConnection, device_id: &str) -> Result<DeviceSyncState, DbErr> {
    let txn = db.begin().await?;
    let row = store::sync_states::get(&txn, device_id).await?;
    let head = store::changes::head(&txn).await?;
    txn.commit().await?;
    Ok(DeviceSyncState::of(device_id, row, head))
}

/// Where an incremental sync starts: after `last_seq`, else after `since`, else after what the
/// device confirmed.
pub async fn start_of(
    db: &DatabaseConnection,
    device_id: &str,
    last_seq: Option<u64>,
    since: Option<DateTime<Utc>>,
) -> Result<Since, DbErr> {
    Ok(match (last_seq, since) {
        (Some(seq), _) => Since::Seq(seq),
        (None, Some(at)) => Since::Time(at),
        (None, None) => Since::Seq(store::sync_states::confirmed_seq(db, device_id).await?),
    })
}

/// A device's confirmed position (`acknowledge`, `sync_complete`) may not be beyond the log's
/// `head`: one past it would hide every later change from the device. The one rule of every
/// transport.
pub fn check_position(field: &str, seq: u64, head: u64) -> Result<(), WireError> {
    if seq > head {
        return Err(WireError::invalid(Some(field), None, format!("is beyond the log's head ({head})")));
    }
    Ok(())
}
