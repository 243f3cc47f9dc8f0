//! A station: a billed seat or PC (`pc1`, `pc5`) with a timer, driven by cashier clients.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stations")]
pub struct Model {
    /// The station's id, `deviceId` on the wire.
    #[sea_orm(primary_key, auto_increment = false)]
    pub station_id: String,
    pub name: String,
    pub is_running: bool,
    pub elapsed_seconds: i64,
    pub mode: String,
    pub customer_count: i64,
    #[sea_orm(column_type = "Text")]
    pub notes: String,
    /// Starts at 1 and grows by one with every write to the station or its orders.
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::order::Entity")]
    Order,
}

impl Related<super::order::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Order.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
