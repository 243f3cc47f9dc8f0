//! A generic record: a JSON object in a table, with a version; a tombstone once deleted.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub table_name: String,
    /// The canonical form: an integer id as its decimal digits.
    #[sea_orm(primary_key, auto_increment = false)]
    pub record_id: String,
    /// The JSON object; `None` for a tombstone.
    #[sea_orm(column_type = "Text", nullable)]
    pub data: Option<String>,
    /// Starts at 1, grows by one per write, deletes included.
    pub version: i64,
    pub deleted: bool,
    /// When the write that made this version happened: its client timestamp, or its commit time.
    pub written_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The `seq` of the change that made this version.
    pub last_seq: i64,
    pub source_device: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
