//! A write a client sent with an `id`, and the answer it was first given: the same write sent
//! again is answered from here and applied no second time.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "write_receipts")]
pub struct Model {
    /// `device` (a registered device) or `client` (a cashier's `clientId`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub writer_kind: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub writer: String,
    /// The write's `id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub write_id: String,
    /// The change it made.
    pub seq: Option<i64>,
    /// The first answer, as JSON (`domain::commands::Receipt`).
    pub answer: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
