//! The catalogue documents: read here, and written here by the Persistence actor inside its
//! transactions.

use chrono::{DateTime, Utc};
use entity::catalogue;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

use crate::domain::catalogue::CatalogueKind;

/// The document's JSON text as the admin sent it, or `None` if it was never written.
pub async fn get<C: ConnectionTrait>(db: &C, kind: CatalogueKind) -> Result<Option<String>, DbErr> {
    Ok(catalogue::Entity::find_by_id(kind.name().to_owned()).one(db).await?.map(|row| row.body))
}

/// The document's version (0 if it was never written).
pub async fn version<C: ConnectionTrait>(db: &C, kind: CatalogueKind) -> Result<i64, DbErr> {
    Ok(catalogue::Entity::find_by_id(kind.name().to_owned()).one(db).await?.map_or(0, |row| row.version))
}

/// Every stored catalogue document: its name, JSON text and time of writing.
pub async fn all<C: ConnectionTrait>(db: &C) -> Result<Vec<catalogue::Model>, DbErr> {
    catalogue::Entity::find().all(db).await
}

/// Replaces the document with `body`, moving its version on by one; the new version.
pub async fn replace<C: ConnectionTrait>(
    txn: &C,
    kind: CatalogueKind,
    body: &str,
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    catalogue::Entity::insert(catalogue::ActiveModel {
        name: Set(kind.name().to_owned()),
        body: Set(body.to_owned()),
        updated_at: Set(now),
        version: Set(1),
    })
    .on_conflict(
        OnConflict::column(catalogue::Column::Name)
            .update_columns([catalogue::Column::Body, catalogue::Column::UpdatedAt])
            .value(
                catalogue::Column::Version,
                Expr::col((catalogue::Entity, catalogue::Column::Version)).add(1),
            )
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    version(txn, kind).await
}
