//! What the writer can apply, each with the typed answer its caller gets.
//!
//! A [`Write`] is applied inside a batch's transaction and yields what it logs (if anything)
//! and its output: a station command yields the station, a catalogue write the stored text,
//! fleet writes nothing, a decoded client command (`Command`) the [`Outcome`] of whichever
//! write it was. The batch holds its writes as [`Queued`] jobs, so one queue carries every kind
//! and each caller is answered with its own type once the batch commits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;
use sea_orm::{DatabaseTransaction, DbErr};
use tokio::sync::oneshot;

use super::records::{self, RecordOutcome};
use super::stations::{self, StationCache};
use super::{ApplyError, Logged, Origin, PersistError, Staged, fleet, log_change};
use crate::domain::catalogue::CatalogueWrite;
#[cfg(feature = "fault-injection")]
use crate::domain::commands::Fault;
use crate::domain::commands::{Command, RecordWrite};
use crate::domain::fleet::FleetWrite;
use crate::domain::records::{Conflict, ConflictPolicy};
use crate::domain::station::{Station, StationCommand};
use crate::protocol::{ErrorCode, WireError};
use crate::store;
use crate::store::receipts::{self, Receipt};

/// What applying a write comes to: the change it logs, if any, and its output.
pub type Applying<'a, T> = LocalBoxFuture<'a, Result<(Option<Logged>, T), ApplyError>>;

/// What one write sees of its batch.
pub struct Step<'t> {
    pub(super) txn: &'t DatabaseTransaction,
    pub(super) cache: &'t mut StationCache,
    /// The `seq` this write takes if it logs a change.
    pub(super) seq: u64,
    pub(super) now: DateTime<Utc>,
    pub(super) policy: ConflictPolicy,
}

/// A change the writer applies. Every rule is checked before anything is written, so a refused
/// write leaves the transaction as it found it.
pub trait Write: Send + 'static {
    /// What the caller learns once it is committed.
    type Output: Send + 'static;

    /// Applies it: the change it logs, if any, and its output. `reply_to` is the origin
    /// session's message id, for a write whose event has a reply of its own.
    fn apply<'a>(self, step: &'a mut Step<'_>, reply_to: Option<&'a str>) -> Applying<'a, Self::Output>;

    /// For a write in a queue applied in order (`InOrder`): the flag that stops the writes
    /// after it, set when it is not stored for any reason (refused, or its batch failed).
    fn stops(&self) -> Option<Arc<AtomicBool>> {
        None
    }
}

/// A station command, committed: the station after it (for a transfer, the target; for a
/// removal, the station as it was) and the change's `seq`.
#[derive(Debug, Clone)]
pub struct StationWritten {
    pub station: Station,
    pub seq: u64,
}

impl Write for StationCommand {
    type Output = StationWritten;

    fn apply<'a>(self, step: &'a mut Step<'_>, _: Option<&'a str>) -> Applying<'a, StationWritten> {
        Box::pin(async move {
            let (logged, station) =
                stations::apply_station(step.txn, step.cache, step.seq, step.now, self).await?;
            Ok((Some(logged), StationWritten { station, seq: step.seq }))
        })
    }
}

impl Write for CatalogueWrite {
    /// The document as stored.
    type Output = String;

    fn apply<'a>(self, step: &'a mut Step<'_>, _: Option<&'a str>) -> Applying<'a, String> {
        Box::pin(async move {
            let (logged, stored) =
                stations::apply_catalogue(step.txn, step.seq, step.now, self.kind, self.body).await?;
            Ok((Some(logged), stored))
        })
    }
}

impl Write for Vec<FleetWrite> {
    type Output = ();

    fn apply<'a>(self, step: &'a mut Step<'_>, _: Option<&'a str>) -> Applying<'a, ()> {
        Box::pin(async move {
            if let Some(FleetWrite::Fenced { run, fence }) = self.first()
                && !store::cluster::holds_lease(step.txn, run, *fence).await?
            {
                // Checked before anything is written: the batch's other writes go on.
                let message = "This node no longer holds the election lease";
                return Err(ApplyError::Rejected(WireError::new(ErrorCode::ServerError, message)));
            }
            fleet::apply(step.txn, step.now, self).await?;
            Ok((None, ()))
        })
    }
}

impl Write for RecordWrite {
    type Output = RecordOutcome;

    fn apply<'a>(self, step: &'a mut Step<'_>, reply_to: Option<&'a str>) -> Applying<'a, RecordOutcome> {
        Box::pin(records::apply_record(step.txn, step.seq, step.now, step.policy, self, reply_to))
    }
}

/// What a client's command came to: the output of whichever write it was.
#[derive(Debug, Clone)]
pub enum Outcome {
    Station(Station),
    /// The catalogue document as stored.
    Catalogue(String),
    /// Fleet writes were committed.
    Fleet,
    /// A record after the write.
    Record {
        table: String,
        record_id: String,
        version: i64,
    },
    /// A conflict the stored copy won: nothing was written.
    Conflict(Box<Conflict>),
    /// A critical event was logged.
    Critical,
    /// A write sent with an `id` its writer had sent before: nothing was done, and this is how
    /// it was first answered.
    Repeat(Receipt),
}

/// A client's command, committed.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The change's `seq` (fleet writes and kept conflicts take none).
    pub seq: Option<u64>,
    pub outcome: Outcome,
}

impl Write for Command {
    type Output = Applied;

    fn apply<'a>(self, step: &'a mut Step<'_>, reply_to: Option<&'a str>) -> Applying<'a, Applied> {
        Box::pin(async move {
            let seq = step.seq;
            let applied =
                |logged: &Option<Logged>, outcome| Applied { seq: logged.as_ref().map(|_| seq), outcome };
            let (logged, outcome) = match self {
                Command::Station(command) => {
                    let (logged, written) = command.apply(step, reply_to).await?;
                    (logged, Outcome::Station(written.station))
                }
                Command::Catalogue(write) => {
                    let (logged, stored) = write.apply(step, reply_to).await?;
                    (logged, Outcome::Catalogue(stored))
                }
                Command::Fleet(writes) => (writes.apply(step, reply_to).await?.0, Outcome::Fleet),
                Command::Record(write) => match write.apply(step, reply_to).await? {
                    (logged, RecordOutcome::Written { table, record_id, version }) => {
                        (logged, Outcome::Record { table, record_id, version })
                    }
                    (logged, RecordOutcome::Kept(conflict)) => (logged, Outcome::Conflict(conflict)),
                },
                Command::Critical { device_id, event_type, payload } => (
                    Some(records::apply_critical(seq, device_id, event_type, payload, reply_to)),
                    Outcome::Critical,
                ),
                Command::Receipted { writer, id, command } => {
                    if let Some(first) = receipts::find(step.txn, &writer, &id).await? {
                        let seq = match &first {
                            Receipt::Applied { seq, .. } => *seq,
                            Receipt::Refused { .. } | Receipt::Kept { .. } => None,
                        };
                        return Ok((None, Applied { seq, outcome: Outcome::Repeat(first) }));
                    }
                    // Written in the same transaction as the write: both commit, or neither.
                    return match command.apply(step, reply_to).await {
                        Ok((logged, applied)) => {
                            let receipt = match &applied.outcome {
                                Outcome::Conflict(conflict) => Receipt::Kept { conflict: conflict.clone() },
                                _ => Receipt::Applied {
                                    seq: applied.seq,
                                    reply: logged.as_ref().and_then(Logged::reply_text),
                                },
                            };
                            receipts::keep(step.txn, step.now, &writer, &id, &receipt).await?;
                            Ok((logged, applied))
                        }
                        Err(ApplyError::Rejected(error)) => {
                            let receipt = Receipt::Refused { error: error.clone() };
                            receipts::keep(step.txn, step.now, &writer, &id, &receipt).await?;
                            Err(ApplyError::Rejected(error))
                        }
                        Err(err) => Err(err),
                    };
                }
                #[cfg(feature = "fault-injection")]
                Command::Fault(Fault::Panic) => panic!("fault injected into a write batch"),
            };
            let applied = applied(&logged, outcome);
            Ok((logged, applied))
        })
    }
}

/// One event of a queue applied in order (`POST /sync/push`): the events of one queue share a
/// `stop`, and once one of them fails (refused, or a conflict the stored copy won), the later
/// ones are not applied (`None`) and may be sent again. An event sent before is answered from
/// its receipt and does not stop the queue: its answer is final, and the client knows it.
pub struct InOrder {
    pub stop: Arc<AtomicBool>,
    pub command: Command,
}

impl Write for InOrder {
    /// `None`: not applied, because an earlier event of the queue failed.
    type Output = Option<Applied>;

    fn stops(&self) -> Option<Arc<AtomicBool>> {
        Some(Arc::clone(&self.stop))
    }

    fn apply<'a>(self, step: &'a mut Step<'_>, reply_to: Option<&'a str>) -> Applying<'a, Option<Applied>> {
        Box::pin(async move {
            if self.stop.load(Ordering::Acquire) {
                return Ok((None, None));
            }
            match self.command.apply(step, reply_to).await {
                Ok((logged, applied)) => {
                    if matches!(applied.outcome, Outcome::Conflict(_)) {
                        self.stop.store(true, Ordering::Release);
                    }
                    Ok((logged, Some(applied)))
                }
                Err(err) => {
                    self.stop.store(true, Ordering::Release);
                    Err(err)
                }
            }
        })
    }
}

/// A write waiting in the queue, with the caller to answer.
pub(super) trait Queued: Send {
    /// Applies the write inside the batch: the staged change, if it logs one. A refusal is
    /// kept for the answer; only a database error fails the batch.
    fn apply<'a>(&'a mut self, step: &'a mut Step<'_>) -> LocalBoxFuture<'a, Result<Option<Staged>, DbErr>>;

    /// Answers the caller: with its output once its batch committed (`failure` is `None`), or
    /// with why nothing was stored.
    fn answer(self: Box<Self>, failure: Option<PersistError>);
}

/// A typed write in the queue.
pub(super) struct Job<W: Write> {
    state: JobState<W>,
    origin: Origin,
    reply: Option<oneshot::Sender<Result<W::Output, PersistError>>>,
    /// Set when this job is not stored (see `Write::stops`).
    stops: Option<Arc<AtomicBool>>,
}

enum JobState<W: Write> {
    Waiting(W),
    Applied(W::Output),
    Rejected(WireError),
    /// Taken by a batch that stopped before it was done.
    Taken,
}

impl<W: Write> Job<W> {
    pub(super) fn new(
        write: W,
        origin: Origin,
        reply: Option<oneshot::Sender<Result<W::Output, PersistError>>>,
    ) -> Self {
        let stops = write.stops();
        Self { state: JobState::Waiting(write), origin, reply, stops }
    }
}

impl<W: Write> Queued for Job<W> {
    fn apply<'a>(&'a mut self, step: &'a mut Step<'_>) -> LocalBoxFuture<'a, Result<Option<Staged>, DbErr>> {
        Box::pin(async move {
            let JobState::Waiting(write) = std::mem::replace(&mut self.state, JobState::Taken) else {
                return Ok(None);
            };
            let reply_to = match &self.origin {
                Origin::Session { reply_to, .. } => reply_to.as_deref(),
                Origin::Rest => None,
            };
            match write.apply(step, reply_to).await {
                Ok((logged, output)) => {
                    self.state = JobState::Applied(output);
                    match logged {
                        Some(logged) => Ok(Some(log_change(step, &self.origin, logged).await?)),
                        None => Ok(None),
                    }
                }
                Err(ApplyError::Rejected(error)) => {
                    self.state = JobState::Rejected(error);
                    Ok(None)
                }
                Err(ApplyError::Db(err)) => Err(err),
            }
        })
    }

    fn answer(self: Box<Self>, failure: Option<PersistError>) {
        // Not stored (the batch failed, or the write was refused before it): the writes queued
        // after it in its queue are not applied either. Answered before the next batch starts.
        if let (Some(stops), Some(_)) = (&self.stops, &failure) {
            stops.store(true, Ordering::Release);
        }
        let Some(reply) = self.reply else { return };
        let result = match (failure, self.state) {
            (Some(failure), _) => Err(failure),
            (None, JobState::Applied(output)) => Ok(output),
            (None, JobState::Rejected(error)) => Err(PersistError::Rejected(error)),
            // A committed batch applied every write it took.
            (None, JobState::Waiting(_) | JobState::Taken) => Err(PersistError::Interrupted),
        };
        let _ = reply.send(result);
    }
}
