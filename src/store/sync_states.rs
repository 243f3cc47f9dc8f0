//! Each device's sync state.

use chrono::{DateTime, Utc};
use entity::{sync_conflict, sync_state};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::changes::from_db;

/// The last `seq` the device confirmed (0 when it never did).
pub async fn confirmed_seq<C: ConnectionTrait>(db: &C, device_id: &str) -> Result<u64, DbErr> {
    let row = sync_state::Entity::find().filter(sync_state::Column::DeviceId.eq(device_id)).one(db).await?;
    Ok(row.map_or(0, |r| from_db(r.confirmed_seq)))
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
