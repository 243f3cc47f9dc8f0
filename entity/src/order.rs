//! An order on a station. `position` is the order's `orderIndex`: 0-based, without gaps.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    /// The server-assigned `orderId`; it stays with the order through transfers.
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: String,
    pub station_id: String,
    pub position: i32,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    /// In the smallest currency unit.
    pub price: i64,
    pub quantity: i64,
    #[sea_orm(column_type = "Text")]
    pub notes: String,
    pub first_order_time: DateTimeUtc,
    pub last_order_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::station::Entity",
        from = "Column::StationId",
        to = "super::station::Column::StationId"
    )]
    Station,
}

impl Related<super::station::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Station.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
