//! Each device's sync state.

use entity::sync_state;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

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
