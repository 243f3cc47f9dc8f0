//! A credential issued to one device: only a hash of its secret is kept. A session opened with
//! it speaks for that device only; once revoked, it opens nothing.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "device_tokens")]
pub struct Model {
    /// The token's public part, written in the token itself (`dst_<id>_<secret>`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub device_id: String,
    /// SHA-256 of the secret part, in hex.
    pub secret_hash: String,
    /// Who issued it (the admin token's name, or `cli`).
    pub issued_by: String,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
