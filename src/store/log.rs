//! The storage seam of the write path: how a batch's transaction opens, which `seq` its first
//! change takes, and how its commit is announced. Everything else the writer and the readers
//! do is plain sea-orm and works alike on SQLite and Postgres.
//!
//! On SQLite one node is the only writer of its database ([`SoleWriter`]): it numbers changes
//! from the head it committed last and tells its own Broadcast actor after each commit. On
//! Postgres several nodes may share the database (section 11): [`SharedWriter`] takes the log's
//! head under a row lock inside the transaction (so appends from all nodes are serialised, and
//! `seq` is gapless and in commit order), and announces the commit to the other nodes with a
//! notification that Postgres sends only if it commits.

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

/// One of the nodes sharing a Postgres database: the run of the node it writes for.
#[derive(Debug, Clone, Default)]
pub struct SharedWriter {
    pub run: String,
}

impl LogWriter for SharedWriter {
    fn begin<'a>(&'a self, db: &'a DatabaseConnection) -> BoxFuture<'a, Result<DatabaseTransaction, DbErr>> {
        Box::pin(db.begin())
    }

    fn head<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        _known: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, DbErr>> {
        // Other nodes write too: the head is whatever the lock finds.
        Box::pin(super::cluster::lock_head(txn))
    }

    fn announce<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        _first: u64,
        last: u64,
    ) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(super::cluster::advance_head(txn, last, &self.run))
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
