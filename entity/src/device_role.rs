//! A device (till, tablet, back-office PC) and its role in the fleet.

use sea_orm::entity::prelude::*;

use crate::enums::Role;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "device_roles")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub device_id: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub device_name: Option<String>,
    pub device_type: Option<String>,
    pub role: Role,
    /// 0..=100; the highest active priority wins an election.
    pub priority: i32,
    /// A JSON array of strings.
    #[sea_orm(column_type = "Text")]
    pub capabilities: String,
    pub last_seen: Option<DateTimeUtc>,
    /// Has a live session and has not gone offline or shut down.
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
