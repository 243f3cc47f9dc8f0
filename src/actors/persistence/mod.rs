//! The Persistence actor: the only writer. It owns the write side of the sea-orm connection,
//! applies each command's domain rule inside a transaction, appends the change-log row that
//! numbers it (`seq`), commits, and only then answers the caller and hands the change to the
//! Broadcast actor, in `seq` order.
//!
//! Group commit: commands that arrive while a commit runs queue up and are committed together
//! in the next transaction; each is answered only after that commit. A command its rule refuses
//! writes nothing and takes no `seq`; a database error fails the whole batch and acknowledges
//! nothing of it.
//!
//! It runs under an actix `Supervisor`. A panic inside a batch is caught, the batch's callers are
//! told it was not stored, and the actor is stopped and restarted by its supervisor, which keeps
//! its queue and re-reads the log's head from the database before writing again: nothing
//! acknowledged is lost, and `seq` stays gap-free.

mod fleet;
mod records;
mod retention;
mod stations;
mod write;

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use chrono::Utc;
use entity::{device_role, sync_meta};
use futures_util::FutureExt;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait};
use tokio::sync::oneshot;
use tracing::instrument;
use uuid::Uuid;

use self::stations::StationCache;
use self::write::{Job, Queued, Step};
use super::broadcast::{Broadcast, Notify, Publish, PublishedChange};
use crate::cluster::bus::{Posted, Poster};
use crate::domain::fleet::DeviceRecord;
use crate::domain::station::StationError;
use crate::metrics::Metrics;
use crate::protocol::outbound::{self, Ack, Change, Frame, Kind};
use crate::protocol::{ErrorCode, WireError};
use crate::settings::{ConflictPolicy, DatabaseSettings};
use crate::store;
use crate::store::log::{LogWriter, begin_write};

pub use records::RecordOutcome;
pub use retention::{LogFloor, Retention};
pub use write::{Applied, InOrder, Outcome, StationWritten, Write};

/// Most commands committed in one transaction.
const MAX_BATCH: usize = 256;
/// Most commands waiting for a commit; past it (a stalled database) writes are refused with
/// `DATABASE_UNAVAILABLE` rather than held in memory without bound.
pub const MAX_QUEUE: usize = 65_536;
/// The actor's mailbox capacity: room for a full queue's worth of senders.
pub const MAILBOX_CAPACITY: usize = MAX_QUEUE;
/// How often a database that failed is tried again (a fresh connection and a small write), so
/// that writes and health recover when it does, even if no client writes.
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Who asked for a change, and so who gets the reply in place of the broadcast.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A WebSocket session (speaking for `device`, if it registered as one); with `reply_to`,
    /// it is sent an `ack` carrying the `seq`.
    Session { session: Uuid, device: Option<String>, reply_to: Option<String> },
    /// A REST request: answered over HTTP; the broadcast goes to every session.
    Rest,
}

/// Apply one write: validate, write, log, commit, then publish; then answer its caller.
///
/// Sent with `do_send` (see `persist`): actix drops a `send` whose requester has gone away
/// before it is handled, and a write must not vanish because its client disconnected.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Persist(Box<dyn Queued>);

impl Persist {
    /// A write whose caller is answered on `reply`, if given.
    pub fn new<W: Write>(
        write: W,
        origin: Origin,
        reply: Option<oneshot::Sender<Result<W::Output, PersistError>>>,
    ) -> Self {
        Self(Box::new(Job::new(write, origin, reply)))
    }
}

/// Hands `write` to the Persistence actor and waits for its answer. The write goes ahead even
/// if the caller stops waiting.
pub fn persist<W: Write>(
    persistence: &Addr<Persistence>,
    write: W,
    origin: Origin,
) -> impl Future<Output = Result<W::Output, PersistError>> + use<W> {
    let (reply, answer) = oneshot::channel();
    persistence.do_send(Persist::new(write, origin, Some(reply)));
    async move { answer.await.unwrap_or(Err(PersistError::Interrupted)) }
}

/// Stop taking writes and answer once everything accepted before is committed (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

/// The state of the write side, for health checks.
#[derive(Message)]
#[rtype(result = "WriteStatus")]
pub struct Status;

/// The answer to `Status`.
#[derive(Debug, Clone, MessageResponse)]
pub struct WriteStatus {
    /// The error of the last batch, when it failed; `None` once a batch commits again.
    pub last_error: Option<String>,
    /// Whether it has stopped taking writes (shutdown).
    pub closing: bool,
}

/// Why a change was not made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PersistError {
    /// A rule of the domain refused it; nothing was written.
    #[error("{0}")]
    Rejected(WireError),
    /// The database could not be written; nothing of the batch was stored.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The server is shutting down and takes no more writes.
    #[error("the server is shutting down")]
    Closing,
    /// An internal fault interrupted the batch; it was rolled back.
    #[error("the write was interrupted")]
    Interrupted,
}

impl PersistError {
    /// The error as the protocol reports it.
    pub fn to_wire(&self) -> WireError {
        match self {
            Self::Rejected(e) => e.clone(),
            Self::Unavailable(_) => WireError::new(
                ErrorCode::DatabaseUnavailable,
                "The database cannot be written; the change was not stored",
            ),
            Self::Closing => WireError::new(
                ErrorCode::ServerError,
                "The server is shutting down; the change was not stored",
            ),
            Self::Interrupted => WireError::new(
                ErrorCode::ServerError,
                "An internal error interrupted the write; the change was not stored",
            ),
        }
    }
}

/// What the actors need to start: the log's epoch and newest `seq`, the election term, and
/// the devices known.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub epoch: String,
    pub head: u64,
    /// What retention has pruned so far.
    pub floor: store::changes::Floor,
    pub terms: crate::domain::fleet::Terms,
    pub devices: Vec<DeviceRecord>,
}

/// Run once at start, before the actors: makes the log's epoch on a new database (a random id,
/// kept for the database's life), with `reset_devices` marks every device inactive and a client
/// (no master until a device comes online; not for a node joining others that are running), and
/// reads what the actors start from.
pub async fn bootstrap(db: &DatabaseConnection, reset_devices: bool) -> Result<Bootstrap, DbErr> {
    let txn = begin_write(db).await?;
    sync_meta::Entity::insert(sync_meta::ActiveModel {
        key: Set(store::meta::EPOCH.to_owned()),
        value: Set(Uuid::new_v4().to_string()),
    })
    .on_conflict(OnConflict::column(sync_meta::Column::Key).do_nothing().to_owned())
    .exec_without_returning(&txn)
    .await?;
    let epoch = store::meta::get(&txn, store::meta::EPOCH)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the log's epoch".into()))?;
    let now = Utc::now();
    if reset_devices {
        device_role::Entity::update_many()
            .set(device_role::ActiveModel {
                is_active: Set(false),
                role: Set(crate::domain::fleet::Role::Client),
                updated_at: Set(now),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
    }
    let (floor, mut head) = store::changes::bounds(&txn).await?;
    if sea_orm::ConnectionTrait::get_database_backend(&txn) == sea_orm::DbBackend::Postgres {
        // The shared head also counts changes that retention may have pruned since.
        head = head.max(store::cluster::reconcile_head(&txn).await?);
    }
    let terms = store::meta::terms(&txn).await?;
    let devices = store::devices::all(&txn).await?;
    txn.commit().await?;
    Ok(Bootstrap { epoch, head, floor, terms, devices })
}

/// The database as the writer holds it.
pub struct WriteStore {
    /// Its own write connection.
    pub db: DatabaseConnection,
    /// To open it again after a failure.
    pub database: DatabaseSettings,
    /// How batches open, number their changes and announce their commits.
    pub log: Arc<dyn LogWriter>,
    /// Several nodes: the notices that follow a change go to the sessions of every node.
    pub notices: Option<Poster>,
}

/// The writer.
pub struct Persistence {
    /// Its own write connection (one connection: it is the only writer).
    db: DatabaseConnection,
    /// How batches open, number their changes and announce their commits.
    log: Arc<dyn LogWriter>,
    /// To open it again after a failure.
    database: DatabaseSettings,
    /// Several nodes: where the notices that follow a change are posted.
    notices: Option<Poster>,
    /// The connection failed: open a new one before writing again.
    reopen: bool,
    policy: ConflictPolicy,
    broadcast: Addr<Broadcast>,
    /// The newest committed `seq`, when known; `None` after a failure until re-read.
    head: Option<u64>,
    /// Stations as committed, so that writes need not read them first.
    stations: StationCache,
    queue: VecDeque<Box<dyn Queued>>,
    committing: bool,
    retention: Retention,
    /// The log's floor as the readers see it.
    floor: LogFloor,
    /// Retention has (or may have) changes to prune: a step runs whenever no write waits.
    prune_due: bool,
    closing: bool,
    flush_waiters: Vec<oneshot::Sender<()>>,
    last_error: Option<String>,
    metrics: Arc<Metrics>,
}

impl Persistence {
    /// A writer on `store`, whose log holds changes up to `head`.
    pub fn new(
        store: WriteStore,
        broadcast: Addr<Broadcast>,
        head: u64,
        policy: ConflictPolicy,
        retention: Retention,
        floor: LogFloor,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            db: store.db,
            log: store.log,
            database: store.database,
            notices: store.notices,
            reopen: false,
            policy,
            broadcast,
            head: Some(head),
            stations: StationCache::default(),
            queue: VecDeque::new(),
            committing: false,
            retention,
            floor,
            prune_due: false,
            closing: false,
            flush_waiters: Vec::new(),
            last_error: None,
            metrics,
        }
    }

    /// Starts the next batch unless one is running.
    fn next_batch(&mut self, ctx: &mut Context<Self>) {
        if self.committing {
            return;
        }
        if self.reopen {
            return self.recover(ctx);
        }
        if self.queue.is_empty() {
            for waiter in self.flush_waiters.drain(..) {
                let _ = waiter.send(());
            }
            if self.prune_due && !self.closing {
                self.prune(ctx);
            }
            return;
        }
        let take = self.queue.len().min(MAX_BATCH);
        let jobs: Vec<Box<dyn Queued>> = self.queue.drain(..take).collect();
        let (writes, started) = (jobs.len(), Instant::now());
        self.committing = true;
        // The cache goes with the batch and comes back only if it commits.
        let cache = std::mem::take(&mut self.stations);
        let batch = AssertUnwindSafe(write_batch(
            self.db.clone(),
            Arc::clone(&self.log),
            self.head,
            self.policy,
            jobs,
            cache,
        ))
        .catch_unwind();
        ctx.spawn(batch.into_actor(self).map(move |result, act, ctx| {
            act.committing = false;
            match result {
                Ok((jobs, Ok(done))) => {
                    act.metrics.committed(writes, started.elapsed());
                    act.finish_batch(done, jobs);
                }
                Ok((jobs, Err(err))) => {
                    tracing::error!(%err, commands = jobs.len(), "batch not committed");
                    act.head = None;
                    act.last_error = Some(err.to_string());
                    // A connection that failed mid-transaction may still hold the write lock.
                    act.reopen = true;
                    let error = PersistError::Unavailable(err.to_string());
                    for job in jobs {
                        job.answer(Some(error.clone()));
                    }
                }
                Err(_panic) => {
                    // The batch's jobs went with it: their callers learn it was interrupted.
                    tracing::error!("batch interrupted by a panic; restarting");
                    ctx.stop();
                    return;
                }
            }
            act.next_batch(ctx);
        }));
    }

    /// One retention step, when no write waits; the next runs after the writes that queued
    /// meanwhile.
    fn prune(&mut self, ctx: &mut Context<Self>) {
        self.committing = true;
        let (db, retention) = (self.db.clone(), self.retention);
        let step = async move { retention::prune_step(&db, retention, Utc::now()).await };
        let step = AssertUnwindSafe(step).catch_unwind();
        ctx.spawn(step.into_actor(self).map(|result, act, ctx| {
            act.committing = false;
            match result {
                Ok(Ok(pruned)) => {
                    tracing::debug!(floor = pruned.floor.seq, "change log pruned");
                    act.floor.set(pruned.floor.seq);
                    if pruned.done {
                        act.prune_due = false;
                    }
                }
                Ok(Err(err)) => {
                    // Tried again at the next interval; writes are not held up by it.
                    tracing::warn!(%err, "change log not pruned");
                    act.prune_due = false;
                }
                Err(_panic) => {
                    tracing::error!("prune step interrupted by a panic");
                    act.prune_due = false;
                }
            }
            act.next_batch(ctx);
        }));
    }

    /// After a failure: closes the write connection, opens a new one and proves it with a
    /// small write. Until that works, waiting writes are refused (`DATABASE_UNAVAILABLE`)
    /// rather than held, and it is tried again every `RETRY_EVERY`.
    fn recover(&mut self, ctx: &mut Context<Self>) {
        self.committing = true;
        let (old, database) = (self.db.clone(), self.database.clone());
        let attempt = async move {
            if let Err(err) = old.close_by_ref().await {
                tracing::debug!(%err, "closing the failed write connection");
            }
            let db = store::connect(&database, 1).await?;
            probe_write(&db).await?;
            Ok::<_, DbErr>(db)
        };
        ctx.spawn(attempt.into_actor(self).map(|result, act, ctx| {
            act.committing = false;
            match result {
                Ok(db) => {
                    tracing::info!("the database is writable again");
                    act.db = db;
                    act.reopen = false;
                    act.last_error = None;
                    act.next_batch(ctx);
                }
                Err(err) => {
                    tracing::warn!(%err, "the database is still not writable");
                    act.last_error = Some(err.to_string());
                    let error = PersistError::Unavailable(err.to_string());
                    for job in act.queue.drain(..) {
                        job.answer(Some(error.clone()));
                    }
                    for waiter in act.flush_waiters.drain(..) {
                        let _ = waiter.send(());
                    }
                    ctx.run_later(RETRY_EVERY, |act, ctx| act.next_batch(ctx));
                }
            }
        }));
    }

    fn finish_batch(&mut self, done: BatchDone, jobs: Vec<Box<dyn Queued>>) {
        self.head = Some(done.head);
        self.stations = done.cache;
        self.last_error = None;
        let mut changes = Vec::with_capacity(done.staged.len());
        let mut notices = Vec::new();
        for staged in done.staged.into_iter().flatten() {
            changes.push(staged.change);
            notices.extend(staged.notify);
        }
        if !changes.is_empty() {
            self.broadcast.do_send(Publish { changes, committed_at: Instant::now() });
        }
        // After the changes they follow (Broadcast takes its mail in order; with several nodes,
        // every node's Election actor hands them to its Broadcast as it reads the bus).
        for frame in notices {
            match &self.notices {
                None => self.broadcast.do_send(Notify { frame, except: Vec::new() }),
                Some(bus) => {
                    let frame = frame.json().to_string();
                    bus.post(&Posted::Notify { fence: None, frame, except: Vec::new() });
                }
            }
        }
        for job in jobs {
            job.answer(None);
        }
    }
}

impl Actor for Persistence {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.retention.prunes() {
            self.prune_due = true;
            ctx.run_interval(self.retention.every, |act, ctx| {
                act.prune_due = true;
                act.next_batch(ctx);
            });
        }
        // After a restart the queue is still here: carry on with it (writes before pruning).
        self.next_batch(ctx);
    }
}

impl Supervised for Persistence {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!(queued = self.queue.len(), "persistence restarting");
        self.committing = false;
        self.head = None;
        self.stations = StationCache::default();
    }
}

impl Handler<Persist> for Persistence {
    type Result = ();

    fn handle(&mut self, msg: Persist, ctx: &mut Context<Self>) {
        if self.closing {
            return msg.0.answer(Some(PersistError::Closing));
        }
        if self.queue.len() >= MAX_QUEUE {
            return msg.0.answer(Some(PersistError::Unavailable("the write queue is full".into())));
        }
        self.queue.push_back(msg.0);
        self.next_batch(ctx);
    }
}

impl Handler<Flush> for Persistence {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) -> Self::Result {
        self.closing = true;
        let (done, wait) = oneshot::channel();
        self.flush_waiters.push(done);
        self.next_batch(ctx);
        Box::pin(async move {
            let _ = wait.await;
        })
    }
}

impl Handler<Status> for Persistence {
    type Result = WriteStatus;

    fn handle(&mut self, _: Status, _: &mut Context<Self>) -> WriteStatus {
        WriteStatus { last_error: self.last_error.clone(), closing: self.closing }
    }
}

// ---- the batch ---------------------------------------------------------------------------

/// A logged change, staged in the batch's transaction.
struct Staged {
    change: PublishedChange,
    /// A frame for every session after the change.
    notify: Option<Frame>,
}

struct BatchDone {
    head: u64,
    /// Each job's staged change, in queue order.
    staged: Vec<Option<Staged>>,
    /// The station cache with this batch's writes, now committed.
    cache: StationCache,
}

/// Why one command was not staged.
pub enum ApplyError {
    Rejected(WireError),
    Db(DbErr),
}

impl From<DbErr> for ApplyError {
    fn from(e: DbErr) -> Self {
        Self::Db(e)
    }
}

impl From<StationError> for ApplyError {
    fn from(e: StationError) -> Self {
        let code = match e {
            StationError::NotFound(_) => ErrorCode::DeviceNotFound,
            StationError::Exists(_) => ErrorCode::DeviceExists,
            StationError::Busy(_) => ErrorCode::DeviceBusy,
            StationError::OrderNotFound(_) => ErrorCode::OrderNotFound,
        };
        Self::Rejected(WireError::new(code, e.to_string()))
    }
}

/// A small real write: whether the database takes writes.
async fn probe_write(db: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    store::meta::set(&txn, "write_probe", &crate::protocol::time::now()).await?;
    txn.commit().await
}

/// Applies the jobs in one transaction and commits it; the jobs come back to be answered.
#[instrument(skip_all, fields(commands = jobs.len()))]
async fn write_batch(
    db: DatabaseConnection,
    log: Arc<dyn LogWriter>,
    known_head: Option<u64>,
    policy: ConflictPolicy,
    mut jobs: Vec<Box<dyn Queued>>,
    mut cache: StationCache,
) -> (Vec<Box<dyn Queued>>, Result<BatchDone, DbErr>) {
    let result = async {
        let txn = log.begin(&db).await?;
        let first = log.head(&txn, known_head).await? + 1;
        if known_head.is_some_and(|known| known != first - 1) {
            // Another node wrote since: the copy of the stations may be out of date.
            cache = StationCache::default();
        }
        let mut head = first - 1;
        let mut staged = Vec::with_capacity(jobs.len());
        for job in &mut jobs {
            let mut step = Step { txn: &txn, cache: &mut cache, seq: head + 1, now: Utc::now(), policy };
            let done = job.apply(&mut step).await?;
            if done.is_some() {
                head += 1;
            }
            staged.push(done);
        }
        if head >= first {
            log.announce(&txn, first, head).await?;
        }
        txn.commit().await?;
        Ok::<_, DbErr>((head, staged))
    }
    .await;
    let result = result.map(|(head, staged)| BatchDone { head, staged, cache });
    (jobs, result)
}

/// A logged change, before its log row is written: what the log keeps besides the frame.
pub struct Logged {
    table_name: String,
    record_id: String,
    operation: &'static str,
    /// The record's state after the change, as JSON.
    data: Option<String>,
    version: Option<i64>,
    /// What every session but the origin is sent; its type is the log row's `event_type`.
    frame: Frame,
    /// The origin session's reply, when the event has one of its own; without, an origin that
    /// gave an `id` gets `ack`.
    reply: Option<Frame>,
    /// A frame for every session after the change.
    notify: Option<Frame>,
}

impl Logged {
    /// The origin's own reply, as sent, for an event with one.
    fn reply_text(&self) -> Option<String> {
        self.reply.as_ref().map(|reply| reply.json().to_string())
    }
}

/// Writes a change's log row, numbering it `step.seq`.
async fn log_change(step: &Step<'_>, origin: &Origin, logged: Logged) -> Result<Staged, DbErr> {
    let seq = step.seq;
    let (origin_session, device, reply) = match origin {
        Origin::Session { session, device, reply_to } => {
            let reply = match (logged.reply, reply_to) {
                (Some(reply), _) => Some(reply),
                (None, Some(id)) => Some(outbound::render(&Ack { seq }, Some(id))),
                (None, None) => None,
            };
            (Some(*session), device.clone(), reply)
        }
        Origin::Rest => (None, None, None),
    };
    let sync_change = Change::new(
        seq,
        &logged.table_name,
        Some(&logged.record_id),
        logged.operation,
        logged.data.as_deref(),
        logged.version,
        step.now,
    )
    .to_text();
    let row = store::changes::LogRow {
        seq,
        table_name: logged.table_name,
        record_id: logged.record_id,
        operation: logged.operation,
        // A rendered frame always knows its kind.
        event_type: logged.frame.kind().map_or("", Kind::name),
        data: logged.data,
        version: logged.version,
        frame: logged.frame.json().to_string(),
        origin_session: origin_session.map(|s| s.to_string()),
        reply_frame: reply.as_ref().map(|r| r.json().to_string()),
        source_device: device,
        committed_at: step.now,
        sync_change,
    };
    store::changes::append(step.txn, row).await?;
    let change = PublishedChange { seq, frame: logged.frame, origin: origin_session, reply };
    Ok(Staged { change, notify: logged.notify })
}
