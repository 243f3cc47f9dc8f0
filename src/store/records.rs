//! Generic records, as stored.

use entity::record;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

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
