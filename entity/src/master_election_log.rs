//! One successful election: who became master, after whom, why, and in which term.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "master_election_logs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub election_id: String,
    pub term: i64,
    pub previous_master_id: Option<String>,
    pub new_master_id: String,
    /// `no_master`, `shutdown`, `offline`, `failure`, `timeout`, `manual`, `preempt`.
    pub election_reason: String,
    /// `priority`, `manual` or `automatic`.
    pub election_method: String,
    pub election_timestamp: DateTimeUtc,
    pub devices_participating: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
