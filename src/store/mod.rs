//! Each table's reads and writes, side by side. The reads are shared by REST, session catch-up
//! and the Persistence actor (inside its write transaction); the writes take a transaction and
//! only the Persistence actor calls them: it stays the only writer.
//!
//! - `audit`: the audit log.
//! - `stations`: stations with their orders, as domain values.
//! - `catalogue`: the stored catalogue documents.
//! - `changes`: the change log, for replay.
//! - `devices`: devices and the election log.
//! - `log`: the write path's seam: how a batch opens, numbers its changes, announces them.
//! - `meta`: server facts kept across restarts.
//! - `records`: generic records.
//! - `sync_states`: each device's position against the log.

pub mod audit;
pub mod catalogue;
pub mod changes;
pub mod devices;
pub mod log;
pub mod meta;
pub mod records;
pub mod stations;
pub mod sync_states;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    AccessMode, ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, TransactionTrait,
};

use crate::settings::{DatabaseSettings, Durability};

/// Connects to the database with at most `max_connections` pooled connections. For SQLite
/// every connection gets WAL mode, the durability's `synchronous` level, a 5 s busy timeout and
/// foreign keys; the file is created if missing (its directory must exist).
pub async fn connect(settings: &DatabaseSettings, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(settings.url.clone());
    options
        .sqlx_logging(false)
        .max_connections(max_connections)
        .min_connections(1)
        .test_before_acquire(false);
    if settings.is_sqlite() {
        let synchronous = match settings.durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        options.map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
                .create_if_missing(true)
        });
    }
    Database::connect(options).await
}

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
