//! Devices and their election history, as stored.

use entity::{device_role, master_election_log};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::domain::fleet::DeviceRecord;

/// Every device, by id.
pub async fn all<C: ConnectionTrait>(db: &C) -> Result<Vec<DeviceRecord>, DbErr> {
    let rows = device_role::Entity::find().order_by_asc(device_role::Column::DeviceId).all(db).await?;
    Ok(rows.into_iter().map(to_record).collect())
}

/// Whether a device of this id was ever registered.
pub async fn exists<C: ConnectionTrait>(db: &C, device_id: &str) -> Result<bool, DbErr> {
    let found =
        device_role::Entity::find().filter(device_role::Column::DeviceId.eq(device_id)).count(db).await?;
    Ok(found > 0)
}

fn to_record(row: device_role::Model) -> DeviceRecord {
    DeviceRecord {
        device_id: row.device_id,
        name: row.device_name,
        device_type: row.device_type,
        priority: row.priority,
        capabilities: serde_json::from_str(&row.capabilities).unwrap_or_default(),
        role: row.role,
        is_active: row.is_active,
        last_seen: row.last_seen,
    }
}

/// A page of the election log, newest first, and how many entries there are in all.
pub async fn election_logs<C: ConnectionTrait>(
    db: &C,
    limit: u64,
    offset: u64,
) -> Result<(Vec<master_election_log::Model>, u64), DbErr> {
    let total = master_election_log::Entity::find().count(db).await?;
    let rows = master_election_log::Entity::find()
        .order_by_desc(master_election_log::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}
