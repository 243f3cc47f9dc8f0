//! A conflict a device lost: its write was refused because the stored copy won. Its next
//! `sync_response` lists the ones since its last confirmed sync.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_conflicts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The device whose write lost.
    pub device_id: String,
    pub table_name: String,
    pub record_id: String,
    /// `version`.
    pub conflict_type: String,
    /// The version the device wrote against.
    pub local_version: Option<i64>,
    /// The version that was kept.
    pub server_version: i64,
    /// `server_wins` or `last_writer_wins`.
    pub resolution_method: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
