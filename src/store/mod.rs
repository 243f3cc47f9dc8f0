//! Each table's reads and writes, side by side. The reads are shared by REST, session catch-up
//! and the Persistence actor (inside its write transaction); the writes take a transaction and
//! only the Persistence actor calls them: it stays the only writer.
//!
//! - `audit`: the audit log.
//! - `stations`: stations with their orders, as domain values.
//! - `catalogue`: the stored catalogue documents.
//! - `changes`: the change log, for replay.
//! - `cluster`: what several nodes over one Postgres database share (head, nodes, lease).
//! - `checkpoint`: SQLite's WAL checkpoints, run beside the writer instead of inside a commit.
//! - `devices`: devices and the election log.
//! - `log`: the write path's seam: how a batch opens, numbers its changes, announces them.
//! - `meta`: server facts kept across restarts.
//! - `receipts`: receipts of writes sent with an id, with their first answer.
//! - `records`: generic records.
//! - `sync_states`: each device's position against the log.
//! - `tokens`: credentials issued to single devices.

pub mod audit;
pub mod catalogue;
pub mod changes;
pub mod checkpoint;
pub mod cluster;
pub mod devices;
pub mod log;
pub mod meta;
pub mod receipts;
pub mod records;
pub mod stations;
pub mod sync_states;
pub mod tokens;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    AccessMode, ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, TransactionTrait,
};

use crate::settings::{DatabaseSettings, Durability};

/// How many rows sqlx's SQLite worker thread may read ahead of the task that consumes them.
/// sqlx's default, 50, made a 10,000-change sync page a few hundred thread switches between the
/// worker and the reader; a page's rows are a few hundred bytes each, so reading a page ahead
/// costs a few megabytes at most while it is read.
const ROW_BUFFER: usize = 4096;

/// Connects to the database with at most `max_connections` pooled connections. On Postgres a
/// transaction left idle for `PAUSED_TRANSACTION_LIMIT` is ended by the server. For SQLite
/// every connection gets WAL mode, the durability's `synchronous` level, a 5 s busy timeout and
/// foreign keys, and no automatic checkpoints (`checkpoint` runs them off the commit path); rows
/// come back from SQLite's worker thread in batches of `ROW_BUFFER`; the file is created if
/// missing (its directory must exist).
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
                .pragma("wal_autocheckpoint", "0")
                .row_buffer_size(ROW_BUFFER)
        });
    }
    if !settings.is_sqlite() {
        // A node paused (or starved) inside a transaction would keep its row locks, the log's
        // head among them, and stall every node's writes: Postgres ends such a transaction.
        let limit = format!("{}ms", PAUSED_TRANSACTION_LIMIT.as_millis());
        options.map_sqlx_postgres_opts(move |o| {
            o.options([("idle_in_transaction_session_timeout", limit.clone())])
        });
    }
    Database::connect(options).await
}

/// How long Postgres lets a transaction of ours sit idle (its node stopped between two of its
/// statements) before it ends it and frees its locks. A live node's transactions are never idle
/// for more than moments.
const PAUSED_TRANSACTION_LIMIT: Duration = Duration::from_secs(2);

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
