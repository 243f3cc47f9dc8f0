//! Retention of the change log (section 5): changes older than `sync.log_keep_days`, or past
//! the newest `sync.log_keep_changes`, are pruned in the background, a small batch per
//! transaction, by the Persistence actor between write batches (a write waits for one prune
//! step at most). Each step deletes a prefix of the log and moves the log's *floor* (the newest
//! pruned `seq` and its commit time) in the same transaction, so a reader's snapshot sees the
//! floor and the kept changes agree. Only log rows go: records, stations and tombstones are
//! current state and stay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{change_log, sync_conflict};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use crate::settings::SyncSettings;
use crate::store::log::begin_write;
use crate::store::{self, changes::Floor};

/// Most log rows deleted in one prune step.
pub const PRUNE_BATCH: u64 = 500;

/// The `seq` of the newest pruned change, readable from any thread; `floor + 1` is the oldest
/// change kept. Only the Persistence actor moves it, after a prune step commits.
#[derive(Clone, Debug)]
pub struct LogFloor(Arc<AtomicU64>);

impl LogFloor {
    pub fn new(seq: u64) -> Self {
        Self(Arc::new(AtomicU64::new(seq)))
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// The `seq` of the oldest change kept (`head + 1` when none is).
    pub fn oldest_seq(&self) -> u64 {
        self.get() + 1
    }

    pub(super) fn set(&self, seq: u64) {
        self.0.fetch_max(seq, Ordering::AcqRel);
    }
}

/// What retention keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    pub keep_for: Option<Duration>,
    pub keep_changes: Option<u64>,
    pub every: Duration,
    /// How much longer a write's receipt is kept than its change.
    pub receipt_margin: Duration,
    /// How long the audit and election logs are kept.
    pub history_keep_for: Option<Duration>,
}

impl Retention {
    pub fn from_settings(sync: &SyncSettings) -> Self {
        Self {
            keep_for: sync.keep_for(),
            keep_changes: sync.keep_changes(),
            every: sync.prune_interval(),
            receipt_margin: sync.receipt_margin(),
            history_keep_for: sync.history_keep_for(),
        }
    }

    /// Whether anything is ever pruned.
    pub fn prunes(&self) -> bool {
        self.keep_for.is_some() || self.keep_changes.is_some() || self.history_keep_for.is_some()
    }

    fn cutoff_time(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let keep = chrono::Duration::from_std(self.keep_for?).ok()?;
        now.checked_sub_signed(keep)
    }
}

/// `at` less `span`, if that is a time.
fn back(at: DateTime<Utc>, span: Duration) -> Option<DateTime<Utc>> {
    at.checked_sub_signed(chrono::Duration::from_std(span).ok()?)
}

/// The newest `seq` retention may prune now, given the log's `head`.
pub fn cutoff_by_count(head: u64, keep_changes: Option<u64>) -> u64 {
    keep_changes.map_or(0, |keep| head.saturating_sub(keep))
}

/// What a prune step left: the log's floor, and whether nothing is left to prune.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pruned {
    pub floor: Floor,
    pub done: bool,
}

/// One prune step: deletes up to `PRUNE_BATCH` of the oldest changes that retention no longer
/// keeps, and moves the floor.
pub(super) async fn prune_step(
    db: &DatabaseConnection,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<Pruned, DbErr> {
    let txn = begin_write(db).await?;
    let (floor, head) = store::changes::bounds(&txn).await?;
    let before = retention.cutoff_time(now);
    let by_age = match before {
        Some(before) => store::changes::newest_before(&txn, before).await?.unwrap_or(0),
        None => 0,
    };
    let cutoff = cutoff_by_count(head, retention.keep_changes).max(by_age).min(head);
    if cutoff <= floor.seq {
        // The log is pruned as far as it goes: once per interval, lost conflicts past the age
        // limit go too (they are listed until the device syncs), and so do the receipts of
        // writes whose changes left the log more than the margin ago, and old history.
        if let Some(before) = before {
            sync_conflict::Entity::delete_many()
                .filter(sync_conflict::Column::CreatedAt.lt(before))
                .exec(&txn)
                .await?;
        }
        // A batch of each at a time: a write waits for one step at most.
        let mut more = false;
        if let Some(pruned_at) = floor.at
            && let Some(before) = back(pruned_at, retention.receipt_margin)
        {
            more |= store::receipts::prune(&txn, before, PRUNE_BATCH).await? == PRUNE_BATCH;
        }
        if let Some(before) = retention.history_keep_for.and_then(|keep| back(now, keep)) {
            more |= store::audit::prune(&txn, before, PRUNE_BATCH).await? == PRUNE_BATCH;
            more |= store::devices::prune_election_log(&txn, before, PRUNE_BATCH).await? == PRUNE_BATCH;
        }
        txn.commit().await?;
        // Nothing of the log is left to prune; the floor is the database's, which another node
        // may have moved (several nodes share the log).
        return Ok(Pruned { floor, done: !more });
    }
    let upper = cutoff.min(floor.seq + PRUNE_BATCH);
    let at = store::changes::committed_at(&txn, upper).await?.or(floor.at);
    change_log::Entity::delete_many()
        .filter(change_log::Column::Seq.lte(store::changes::to_db(upper)))
        .exec(&txn)
        .await?;
    // The floor only rises: a node whose look at the log was older than another's (several
    // nodes prune the one log) cannot move it back.
    if store::meta::raise(&txn, store::meta::LOG_FLOOR, upper).await?
        && let Some(at) = at
    {
        // Full precision: a sync by timestamp compares against it.
        store::meta::set(&txn, store::meta::LOG_FLOOR_AT, &at.to_rfc3339()).await?;
    }
    txn.commit().await?;
    Ok(Pruned { floor: Floor { seq: upper, at }, done: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_limit_keeps_the_newest_changes() {
        assert_eq!(cutoff_by_count(10, Some(3)), 7);
        assert_eq!(cutoff_by_count(2, Some(3)), 0);
        assert_eq!(cutoff_by_count(10, None), 0, "0 turns the limit off");
    }

    #[test]
    fn the_age_limit_is_measured_back_from_now() {
        let r = Retention {
            keep_for: Some(Duration::from_secs(86_400)),
            keep_changes: None,
            every: Duration::ZERO,
            receipt_margin: Duration::ZERO,
            history_keep_for: None,
        };
        let now = Utc::now();
        assert_eq!(r.cutoff_time(now), Some(now - chrono::Duration::days(1)));
        let off = Retention { keep_for: None, ..r };
        assert_eq!(off.cutoff_time(now), None);
    }
}
