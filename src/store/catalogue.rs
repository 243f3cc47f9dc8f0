//! The catalogue documents, as stored.

use entity::catalogue;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};

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
