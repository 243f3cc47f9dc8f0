//! A device's sync state: where it stands against the change log.

use sea_orm::entity::prelude::*;

use crate::enums::SyncStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_states")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub device_id: String,
    /// `pending`, `syncing`, `synced` or `error`.
    pub sync_status: SyncStatus,
    pub pending_changes_count: i64,
    pub last_sync_timestamp: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error_message: Option<String>,
    /// The type of the last error, as the device named it (`sync_error.error_type`).
    pub last_error_type: Option<String>,
    /// The last `seq` the device confirmed with `sync_complete` (or `acknowledge`).
    pub confirmed_seq: i64,
    /// Sync errors the device reported (`sync_error`).
    pub error_count: i64,
    /// The pending count the device itself last reported (`PUT /sync/state`).
    pub reported_pending: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
