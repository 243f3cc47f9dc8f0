//! Server facts kept across restarts (`sync_meta`): read here, and written here by the
//! Persistence actor inside its transactions.

use entity::sync_meta;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

/// The key of the change log's epoch.
pub const EPOCH: &str = "epoch";

/// The value stored under `key`, if any.
pub async fn get<C: ConnectionTrait>(db: &C, key: &str) -> Result<Option<String>, DbErr> {
    Ok(sync_meta::Entity::find_by_id(key.to_owned()).one(db).await?.map(|row| row.value))
}

/// The key of the log's floor: the `seq` of the newest change pruned (retention).
pub const LOG_FLOOR: &str = "log_floor";
/// The key of the commit time of that change (RFC 3339).
pub const LOG_FLOOR_AT: &str = "log_floor_at";

/// The key of the election term (the number of successful elections, ever).
pub const TERM: &str = "term";

/// The election term (0 before the first election).
pub async fn term<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    Ok(get(db, TERM).await?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Stores `value` under `key`, replacing what was there.
pub async fn set<C: ConnectionTrait>(db: &C, key: &str, value: &str) -> Result<(), DbErr> {
    sync_meta::Entity::insert(sync_meta::ActiveModel {
        key: Set(key.to_owned()),
        value: Set(value.to_owned()),
    })
    .on_conflict(
        OnConflict::column(sync_meta::Column::Key).update_column(sync_meta::Column::Value).to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
