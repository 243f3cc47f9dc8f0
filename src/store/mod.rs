//! Read queries shared by REST, session catch-up and the Persistence actor (which runs them
//! inside its write transaction). Only reads live here; every write is the Persistence actor's.
//!
//! - `stations`: stations with their orders, as domain values.
//! - `catalogue`: the stored catalogue documents.
//! - `changes`: the change log, for replay.
//! - `devices`: devices and the election log.
//! - `meta`: server facts kept across restarts.
//! - `records`: generic records.
//! - `sync_states`: each device's position against the log.

pub mod catalogue;
pub mod changes;
pub mod devices;
pub mod meta;
pub mod records;
pub mod stations;
pub mod sync_states;

use sea_orm::{
    AccessMode, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, IsolationLevel, TransactionTrait,
};

/// Opens a read-only transaction that sees one consistent snapshot, for reads that take more
/// than one query. (SQLite transactions are snapshots already; Postgres needs REPEATABLE READ.)
pub async fn snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await
        }
        _ => db.begin().await,
    }
}
