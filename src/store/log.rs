//! The storage seam of the write path: how a batch's transaction opens, which `seq` its first
//! change takes, and how its commit is announced. Everything else the writer and the readers
//! do is plain sea-orm and works alike on SQLite and Postgres.
//!
//! One node is the only writer of its database ([`SoleWriter`], for SQLite and for a
//! single-node Postgres): it numbers changes from the head it committed last and tells its own
//! Broadcast actor after each commit. Several nodes over one Postgres database (section 11)
//! need another [`LogWriter`]: one that takes the log's head under a lock inside the
//! transaction, and announces the commit to the other nodes.

use futures_util::future::BoxFuture;
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};

/// How the change log is written.
pub trait LogWriter: Send + Sync + 'static {
    /// Opens a write transaction.
    fn begin<'a>(&'a self, db: &'a DatabaseConnection) -> BoxFuture<'a, Result<DatabaseTransaction, DbErr>>;

    /// The newest `seq` committed, which the batch now open continues. `known` is the head this
    /// writer committed last, if it knows it (not after a failure or a restart).
    fn head<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        known: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, DbErr>>;

    /// Inside the transaction, once its changes `first..=last` are written and before it
    /// commits: tells whoever else reads the log that they are coming.
    fn announce<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        first: u64,
        last: u64,
    ) -> BoxFuture<'a, Result<(), DbErr>>;
}

/// The only writer of its database.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoleWriter;

impl LogWriter for SoleWriter {
    fn begin<'a>(&'a self, db: &'a DatabaseConnection) -> BoxFuture<'a, Result<DatabaseTransaction, DbErr>> {
        Box::pin(begin_write(db))
    }

    fn head<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        known: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, DbErr>> {
        Box::pin(async move {
            match known {
                // Nobody else writes: what it committed last is the head.
                Some(head) => Ok(head),
                None => super::changes::head(txn).await,
            }
        })
    }

    fn announce<'a>(
        &'a self,
        _: &'a DatabaseTransaction,
        _: u64,
        _: u64,
    ) -> BoxFuture<'a, Result<(), DbErr>> {
        // Its own Broadcast actor is told after the commit; there is no one else.
        Box::pin(async { Ok(()) })
    }
}

/// Opens a write transaction; on SQLite it takes the write lock at once (`BEGIN IMMEDIATE`),
/// so that a batch never fails half-way for want of it.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            db.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
        }
        _ => db.begin().await,
    }
}
