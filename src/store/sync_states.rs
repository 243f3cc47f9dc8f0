//! Each device's sync state: read here, and written here by the Persistence actor inside its
//! transactions.

use chrono::{DateTime, Utc};
use entity::{sync_conflict, sync_state};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::changes::{from_db, to_db};
use crate::domain::fleet::{SyncStateWrite, SyncStatus};

/// The last `seq` the device confirmed (0 when it never did).
pub async fn confirmed_seq<C: ConnectionTrait>(db: &C, device_id: &str) -> Result<u64, DbErr> {
    let row = sync_state::Entity::find().filter(sync_state::Column::DeviceId.eq(device_id)).one(db).await?;
    Ok(row.map_or(0, |r| from_db(r.confirmed_seq)))
}

/// Every device with a sync state, and the last `seq` it confirmed.
pub async fn confirmed_all<C: ConnectionTrait>(db: &C) -> Result<Vec<(String, u64)>, DbErr> {
    let rows = sync_state::Entity::find()
        .select_only()
        .column(sync_state::Column::DeviceId)
        .column(sync_state::Column::ConfirmedSeq)
        .order_by_asc(sync_state::Column::DeviceId)
        .into_tuple::<(String, i64)>()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(device, seq)| (device, from_db(seq))).collect())
}

/// A device's sync state, if it has one.
pub async fn get<C: ConnectionTrait>(db: &C, device_id: &str) -> Result<Option<sync_state::Model>, DbErr> {
    sync_state::Entity::find().filter(sync_state::Column::DeviceId.eq(device_id)).one(db).await
}

/// Up to `limit` conflicts the device lost after `since` (all when `None`), oldest first.
pub async fn lost_conflicts<C: ConnectionTrait>(
    db: &C,
    device_id: &str,
    since: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<sync_conflict::Model>, DbErr> {
    let mut select = sync_conflict::Entity::find().filter(sync_conflict::Column::DeviceId.eq(device_id));
    if let Some(since) = since {
        select = select.filter(sync_conflict::Column::CreatedAt.gt(since));
    }
    select.order_by_asc(sync_conflict::Column::Id).limit(limit).all(db).await
}

/// The sync state of a device that has not synced yet.
pub(super) fn new_row(device_id: &str, now: DateTime<Utc>) -> sync_state::ActiveModel {
    sync_state::ActiveModel {
        id: NotSet,
        device_id: Set(device_id.to_owned()),
        sync_status: Set(SyncStatus::Pending),
        pending_changes_count: Set(0),
        last_sync_timestamp: Set(None),
        last_error_message: Set(None),
        last_error_type: Set(None),
        confirmed_seq: Set(0),
        error_count: Set(0),
        reported_pending: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Changes a device's sync state as `w` says (making it if it has none).
pub async fn write<C: ConnectionTrait>(txn: &C, now: DateTime<Utc>, w: SyncStateWrite) -> Result<(), DbErr> {
    let existing = sync_state::Entity::find()
        .filter(sync_state::Column::DeviceId.eq(w.device_id.as_str()))
        .one(txn)
        .await?;
    let errors = existing.as_ref().map_or(0, |e| e.error_count) + i64::from(w.count_error);
    let mut row = match existing {
        Some(e) => sync_state::ActiveModel {
            id: Set(e.id),
            device_id: Set(e.device_id),
            sync_status: Set(e.sync_status),
            pending_changes_count: Set(e.pending_changes_count),
            last_sync_timestamp: Set(e.last_sync_timestamp),
            last_error_message: Set(e.last_error_message),
            last_error_type: Set(e.last_error_type),
            confirmed_seq: Set(e.confirmed_seq),
            error_count: Set(e.error_count),
            reported_pending: Set(e.reported_pending),
            created_at: Set(e.created_at),
            updated_at: Set(now),
        },
        None => new_row(&w.device_id, now),
    };
    if let Some(status) = w.status {
        row.sync_status = Set(status);
    }
    if let Some(seq) = w.confirmed_seq {
        row.confirmed_seq = Set(to_db(seq));
    }
    if let Some(at) = w.synced_at {
        row.last_sync_timestamp = Set(Some(at));
    }
    if w.clear_error {
        row.last_error_message = Set(None);
        row.last_error_type = Set(None);
    }
    if let Some(error) = w.error {
        row.last_error_message = Set(Some(error));
        row.last_error_type = Set(w.error_type);
    }
    if w.count_error {
        row.error_count = Set(errors);
    }
    if let Some(pending) = w.reported_pending {
        row.reported_pending = Set(Some(pending));
        row.pending_changes_count = Set(pending);
    }
    match row.id {
        Set(_) => {
            sync_state::Entity::update(row).exec(txn).await?;
        }
        _ => {
            sync_state::Entity::insert(row).exec_without_returning(txn).await?;
        }
    }
    Ok(())
}
