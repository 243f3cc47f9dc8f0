//! Generic records and the conflicts a device lost: read here,
//! and written here by the Persistence actor inside its transactions.

use chrono::{DateTime, Utc};
use entity::{record, sync_conflict};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::changes::to_db;
use crate::domain::records::Conflict;

/// One record (live or tombstone).
pub async fn get<C: ConnectionTrait>(db: &C, table: &str, id: &str) -> Result<Option<record::Model>, DbErr> {
    record::Entity::find_by_id((table.to_owned(), id.to_owned())).one(db).await
}

/// The live records of `table` among `ids`.
pub async fn batch<C: ConnectionTrait>(
    db: &C,
    table: &str,
    ids: &[String],
) -> Result<Vec<record::Model>, DbErr> {
    record::Entity::find()
        .filter(record::Column::TableName.eq(table))
        .filter(record::Column::RecordId.is_in(ids.iter().cloned()))
        .filter(record::Column::Deleted.eq(false))
        .all(db)
        .await
}

/// The `limit` most recently written live records of `table`, newest first.
pub async fn latest<C: ConnectionTrait>(
    db: &C,
    table: &str,
    limit: u64,
) -> Result<Vec<record::Model>, DbErr> {
    record::Entity::find()
        .filter(record::Column::TableName.eq(table))
        .filter(record::Column::Deleted.eq(false))
        .order_by_desc(record::Column::LastSeq)
        .limit(limit)
        .all(db)
        .await
}

/// Every live record, of `tables` when given, by table and id.
pub async fn live<C: ConnectionTrait>(
    db: &C,
    tables: Option<&[String]>,
) -> Result<Vec<record::Model>, DbErr> {
    let mut select = record::Entity::find().filter(record::Column::Deleted.eq(false));
    if let Some(tables) = tables {
        select = select.filter(record::Column::TableName.is_in(tables.iter().cloned()));
    }
    select.order_by_asc(record::Column::TableName).order_by_asc(record::Column::RecordId).all(db).await
}

// ---- writes (the Persistence actor's, inside its transaction) ---------------------------

/// A record as a write leaves it.
pub struct RecordRow<'a> {
    pub table: &'a str,
    pub record_id: &'a str,
    /// Its JSON text; `None` for a tombstone.
    pub data: Option<String>,
    pub version: i64,
    pub deleted: bool,
    /// The time that decides last-writer-wins.
    pub written_at: DateTime<Utc>,
    /// The change that wrote it.
    pub seq: u64,
    pub source_device: &'a str,
}

/// Writes a record (inserting it or replacing what was stored).
pub async fn write<C: ConnectionTrait>(txn: &C, row: RecordRow<'_>, now: DateTime<Utc>) -> Result<(), DbErr> {
    record::Entity::insert(record::ActiveModel {
        table_name: Set(row.table.to_owned()),
        record_id: Set(row.record_id.to_owned()),
        data: Set(row.data),
        version: Set(row.version),
        deleted: Set(row.deleted),
        written_at: Set(row.written_at),
        updated_at: Set(now),
        last_seq: Set(to_db(row.seq)),
        source_device: Set(Some(row.source_device.to_owned())),
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
    Ok(())
}

/// Keeps a conflict the device lost, so that its next sync lists it.
pub async fn keep_conflict<C: ConnectionTrait>(txn: &C, conflict: &Conflict) -> Result<(), DbErr> {
    sync_conflict::Entity::insert(sync_conflict::ActiveModel {
        id: NotSet,
        device_id: Set(conflict.device.clone()),
        table_name: Set(conflict.table.clone()),
        record_id: Set(conflict.record_id.clone()),
        conflict_type: Set("version".to_owned()),
        local_version: Set(conflict.local_version),
        server_version: Set(conflict.server_version),
        resolution_method: Set(conflict.policy.as_str().to_owned()),
        created_at: Set(conflict.at),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}
