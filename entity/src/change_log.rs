//! The change log: one row per change, numbered by a global `seq` in commit order.
//!
//! A row keeps the frame that was broadcast for the change, so that a client that missed
//! broadcasts is sent exactly those, and the direct reply its origin session was sent, so that
//! a session catching up from the log sees its own acknowledgement in its place.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    /// The table the change is about (`stations`, `catalogue`, …).
    pub table_name: String,
    pub record_id: Option<String>,
    /// `insert`, `update` or `delete`.
    pub operation: String,
    /// The event type that was broadcast (`device_updated`, `order_added`, …).
    pub event_type: String,
    /// The record's state after the change, as JSON; `None` when it was deleted.
    #[sea_orm(column_type = "Text", nullable)]
    pub data: Option<String>,
    pub version: Option<i64>,
    /// The frame broadcast to every session but the origin.
    #[sea_orm(column_type = "Text")]
    pub frame: String,
    /// The session that made the change over WebSocket, if one did.
    pub origin_session: Option<String>,
    /// The frame sent to the origin session in place of the broadcast, if any.
    #[sea_orm(column_type = "Text", nullable)]
    pub reply_frame: Option<String>,
    pub source_device: Option<String>,
    pub committed_at: DateTimeUtc,
    /// The change as a sync page sends it (JSON), rendered when it was logged, so that a page
    /// is these texts joined. `None` for changes logged before the column existed.
    #[sea_orm(column_type = "Text", nullable)]
    pub sync_change: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
