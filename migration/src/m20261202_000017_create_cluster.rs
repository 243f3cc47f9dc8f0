//! What several nodes over one Postgres database share (PROTOCOL.md section 11), on Postgres
//! only (SQLite has one node, and needs none of it):
//!
//! - `cluster_log_head`: the newest `seq` committed, one row. A writer locks it inside its
//!   transaction to number its changes, so appends are serialised and `seq` is gapless and in
//!   commit order across nodes; a rolled-back transaction burns no number.
//! - `cluster_nodes`: the nodes alive, each until its `expires_at` (the database's clock), with
//!   the instance (one run of the process) that renewed it last.
//! - `cluster_lease`: the election lease, one row: its holder (node and instance), until when,
//!   and its fencing number, which grows each time the lease changes hands.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE TABLE cluster_log_head (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO cluster_log_head (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM change_log;
CREATE TABLE cluster_nodes (
    node_id TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE cluster_lease (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    holder TEXT NULL,
    holder_instance TEXT NULL,
    fence BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO cluster_lease (id, holder, holder_instance, fence, expires_at) VALUES (1, NULL, NULL, 0, now());
";

const DOWN: &str = "
DROP TABLE cluster_lease;
DROP TABLE cluster_nodes;
DROP TABLE cluster_log_head;
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
