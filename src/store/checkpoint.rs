//! SQLite's WAL checkpoints, run beside the writer.
//!
//! With its default settings SQLite checkpoints inside whichever commit takes the WAL past
//! 1,000 pages: that commit copies the WAL back into the database file and syncs it before it
//! returns, and the writes it carries (and their broadcasts) wait for all of it. Every connection
//! turns automatic checkpoints off (`store::connect`) and this task runs a `PASSIVE` checkpoint
//! from a reading connection twice a second instead. A passive checkpoint takes no lock a
//! writer needs, so commits carry on while it copies; it copies only frames that every reader
//! is done with, as the automatic one does. When the WAL has nothing new it returns at once
//! without touching the disk.
//!
//! SQLite starts writing the WAL from its beginning again only when a writer finds every frame
//! copied back; under writes that never pause, a checkpoint beside them is always a few frames
//! behind and the file would only grow. So when the WAL holds more than `RESTART_AFTER` frames,
//! the checkpoint is a `RESTART` one: it holds new writes back until it has copied the rest
//! (by then little: the passive ones copied the bulk), so the WAL starts over.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_millis(500);

/// WAL frames (pages of 4 KiB) past which a checkpoint makes the WAL start over.
const RESTART_AFTER: i64 = 4000;

/// What one checkpoint did, in WAL frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    /// Frames in the WAL.
    pub in_log: i64,
    /// Frames copied back into the database so far.
    pub copied: i64,
}

/// How a checkpoint treats the writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Beside them, copying what it can.
    Passive,
    /// Holding new writes back until everything is copied, so the WAL starts over.
    Restart,
}

/// Runs one checkpoint.
pub async fn run_once(db: &DatabaseConnection, mode: Mode) -> Result<Checkpointed, DbErr> {
    let sql = match mode {
        Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Mode::Restart => "PRAGMA wal_checkpoint(RESTART)",
    };
    let statement = Statement::from_string(DbBackend::Sqlite, sql);
    let row = db.query_one_raw(statement).await?;
    let column = |i: usize| -> Result<i64, DbErr> {
        match &row {
            Some(row) => row.try_get_by_index::<i64>(i),
            None => Ok(0),
        }
    };
    Ok(Checkpointed { in_log: column(1)?, copied: column(2)? })
}

/// Checkpoints the WAL every `INTERVAL` until `stopping` turns true (SQLite only). The server
/// closes the database after that; closing checkpoints what is left.
pub fn spawn(db: DatabaseConnection, mut stopping: tokio::sync::watch::Receiver<bool>) {
    if db.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    actix::spawn(async move {
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopping.wait_for(|stopped| *stopped) => return,
            }
            let done = match run_once(&db, Mode::Passive).await {
                Ok(done) if done.in_log > RESTART_AFTER => run_once(&db, Mode::Restart).await,
                passive => passive,
            };
            match done {
                Ok(done) => tracing::trace!(frames = done.in_log, copied = done.copied, "checkpoint"),
                // The next tick tries again; meanwhile the WAL only grows.
                Err(err) => tracing::warn!(%err, "WAL checkpoint failed"),
            }
        }
    });
}
