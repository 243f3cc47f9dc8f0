//! The nodes' bus, on Postgres only: how the node holding the election lease hears of the
//! devices on every node and speaks to their sessions. One row per message, numbered gapless
//! and in commit order by a counter row locked inside the inserting statement (like the change
//! log's head), so every node reads every message once and in order. Old rows are pruned.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE TABLE cluster_bus_head (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO cluster_bus_head (id, seq) VALUES (1, 0);
CREATE TABLE cluster_bus (
    seq BIGINT PRIMARY KEY,
    body TEXT NOT NULL,
    posted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
";

const DOWN: &str = "
DROP TABLE cluster_bus;
DROP TABLE cluster_bus_head;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::on_postgres(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::on_postgres(manager, DOWN).await
    }
}
