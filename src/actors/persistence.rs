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

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;

use actix::prelude::*;
use bytestring::ByteString;
use chrono::{DateTime, Utc};
use entity::{catalogue, change_log, order, station, sync_audit_log, sync_meta};
use futures_util::FutureExt;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tracing::instrument;
use uuid::Uuid;

use super::broadcast::{Broadcast, Publish, PublishedChange};
use crate::domain::catalogue::CatalogueKind;
use crate::domain::station::{Order, Station, StationCommand, StationError, transfer};
use crate::protocol::outbound::{
    self, Ack, CatalogueUpdated, OrderModified, OrderRemoved, OrderView, OrdersAdded, StationData,
    StationRef, StationState, Transferred,
};
use crate::protocol::{ErrorCode, WireError};
use crate::store;

/// Most commands committed in one transaction.
const MAX_BATCH: usize = 256;
/// Most commands waiting for a commit; past it (a stalled database) writes are refused with
/// `DATABASE_UNAVAILABLE` rather than held in memory without bound.
pub const MAX_QUEUE: usize = 65_536;
/// The actor's mailbox capacity: room for a full queue's worth of senders.
pub const MAILBOX_CAPACITY: usize = MAX_QUEUE;

/// A change to make.
#[derive(Debug, Clone)]
pub enum Command {
    /// A cashier command on stations.
    Station(StationCommand),
    /// Replace a catalogue document with this JSON text.
    Catalogue { kind: CatalogueKind, body: String },
}

/// Who asked for a change, and so who gets the reply in place of the broadcast.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A WebSocket session; with `reply_to`, it is sent an `ack` carrying the `seq`.
    Session { session: Uuid, reply_to: Option<String> },
    /// A REST request: answered over HTTP; the broadcast goes to every session.
    Rest,
}

/// The answer to one `Persist`.
pub type PersistResult = Result<Applied, PersistError>;

/// Apply one command: validate, write, log, commit, then publish; answer on `reply`.
///
/// Sent with `do_send` (see `persist`): actix drops a `send` whose requester has gone away
/// before it is handled, and a write must not vanish because its client disconnected.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Persist {
    pub command: Command,
    pub origin: Origin,
    pub reply: Option<oneshot::Sender<PersistResult>>,
}

/// Hands `command` to the Persistence actor and waits for its answer. The write goes ahead
/// even if the caller stops waiting.
pub fn persist(
    persistence: &Addr<Persistence>,
    command: Command,
    origin: Origin,
) -> impl std::future::Future<Output = PersistResult> + use<> {
    let (reply, answer) = oneshot::channel();
    persistence.do_send(Persist { command, origin, reply: Some(reply) });
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

/// A committed change, as the caller learns it.
#[derive(Debug, Clone)]
pub struct Applied {
    pub seq: u64,
    pub outcome: Outcome,
}

/// What a committed change produced, for a REST answer.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The station after the change (for a transfer, the target).
    Station(Station),
    /// The station is gone.
    Removed,
    /// The catalogue document as stored.
    Catalogue(String),
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

/// What the log needs to start: its epoch and newest `seq`.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub epoch: String,
    pub head: u64,
}

/// Makes the log's epoch on a new database (a random id, kept for the database's life) and
/// reads the log's head. Run once at start, before the actors.
pub async fn bootstrap(db: &DatabaseConnection) -> Result<Bootstrap, DbErr> {
    let fresh = Uuid::new_v4().to_string();
    sync_meta::Entity::insert(sync_meta::ActiveModel {
        key: Set(store::meta::EPOCH.to_owned()),
        value: Set(fresh),
    })
    .on_conflict(OnConflict::column(sync_meta::Column::Key).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    let epoch = store::meta::get(db, store::meta::EPOCH)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the log's epoch".into()))?;
    let head = store::changes::head(db).await?;
    Ok(Bootstrap { epoch, head })
}

struct Pending {
    command: Command,
    origin: Origin,
    reply: Option<oneshot::Sender<PersistResult>>,
}

/// Answers a caller, if it is still waiting.
fn answer(reply: Option<oneshot::Sender<PersistResult>>, result: PersistResult) {
    if let Some(reply) = reply {
        let _ = reply.send(result);
    }
}

/// The writer.
pub struct Persistence {
    db: DatabaseConnection,
    broadcast: Addr<Broadcast>,
    /// The newest committed `seq`, when known; `None` after a failure until re-read.
    head: Option<u64>,
    queue: VecDeque<Pending>,
    committing: bool,
    closing: bool,
    flush_waiters: Vec<oneshot::Sender<()>>,
    last_error: Option<String>,
}

impl Persistence {
    pub fn new(db: DatabaseConnection, broadcast: Addr<Broadcast>, head: u64) -> Self {
        Self {
            db,
            broadcast,
            head: Some(head),
            queue: VecDeque::new(),
            committing: false,
            closing: false,
            flush_waiters: Vec::new(),
            last_error: None,
        }
    }

    /// Starts the next batch unless one is running.
    fn next_batch(&mut self, ctx: &mut Context<Self>) {
        if self.committing {
            return;
        }
        if self.queue.is_empty() {
            for waiter in self.flush_waiters.drain(..) {
                let _ = waiter.send(());
            }
            return;
        }
        let take = self.queue.len().min(MAX_BATCH);
        let (work, replies): (Vec<_>, Vec<_>) =
            self.queue.drain(..take).map(|p| ((p.command, p.origin), p.reply)).unzip();
        self.committing = true;
        let batch = AssertUnwindSafe(write_batch(self.db.clone(), self.head, work)).catch_unwind();
        ctx.spawn(batch.into_actor(self).map(move |result, act, ctx| {
            act.committing = false;
            match result {
                Ok(Ok(done)) => act.finish_batch(done, replies),
                Ok(Err(err)) => {
                    tracing::error!(%err, commands = replies.len(), "batch not committed");
                    act.head = None;
                    act.last_error = Some(err.to_string());
                    let error = PersistError::Unavailable(err.to_string());
                    for reply in replies {
                        answer(reply, Err(error.clone()));
                    }
                }
                Err(_panic) => {
                    tracing::error!(commands = replies.len(), "batch interrupted by a panic; restarting");
                    drop(replies);
                    ctx.stop();
                    return;
                }
            }
            act.next_batch(ctx);
        }));
    }

    fn finish_batch(&mut self, done: BatchDone, replies: Vec<Option<oneshot::Sender<PersistResult>>>) {
        self.head = Some(done.head);
        self.last_error = None;
        let mut changes = Vec::with_capacity(done.items.len());
        let mut answers = Vec::with_capacity(done.items.len());
        for item in done.items {
            match item {
                Ok(staged) => {
                    answers.push(Ok(Applied { seq: staged.change.seq, outcome: staged.outcome }));
                    changes.push(staged.change);
                }
                Err(rejected) => answers.push(Err(PersistError::Rejected(rejected))),
            }
        }
        if !changes.is_empty() {
            self.broadcast.do_send(Publish { changes });
        }
        for (reply, result) in replies.into_iter().zip(answers) {
            answer(reply, result);
        }
    }
}

impl Actor for Persistence {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // After a restart the queue is still here: carry on with it.
        self.next_batch(ctx);
    }
}

impl Supervised for Persistence {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!(queued = self.queue.len(), "persistence restarting");
        self.committing = false;
        self.head = None;
    }
}

impl Handler<Persist> for Persistence {
    type Result = ();

    fn handle(&mut self, msg: Persist, ctx: &mut Context<Self>) {
        if self.closing {
            return answer(msg.reply, Err(PersistError::Closing));
        }
        if self.queue.len() >= MAX_QUEUE {
            return answer(msg.reply, Err(PersistError::Unavailable("the write queue is full".into())));
        }
        self.queue.push_back(Pending { command: msg.command, origin: msg.origin, reply: msg.reply });
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

struct Staged {
    change: PublishedChange,
    outcome: Outcome,
}

struct BatchDone {
    head: u64,
    items: Vec<Result<Staged, WireError>>,
}

/// Why one command was not staged.
enum ApplyError {
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

/// Opens the write transaction (on SQLite, taking the write lock at once).
async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
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

#[instrument(skip_all, fields(commands = work.len()))]
async fn write_batch(
    db: DatabaseConnection,
    known_head: Option<u64>,
    work: Vec<(Command, Origin)>,
) -> Result<BatchDone, DbErr> {
    let txn = begin_write(&db).await?;
    let mut head = match known_head {
        Some(head) => head,
        None => store::changes::head(&txn).await?,
    };
    let mut items = Vec::with_capacity(work.len());
    for (command, origin) in work {
        match apply(&txn, head + 1, Utc::now(), command, &origin).await {
            Ok(staged) => {
                head += 1;
                items.push(Ok(staged));
            }
            Err(ApplyError::Rejected(error)) => items.push(Err(error)),
            Err(ApplyError::Db(err)) => return Err(err),
        }
    }
    txn.commit().await?;
    Ok(BatchDone { head, items })
}

/// What a change writes to the log besides its frame.
struct LogEntry {
    table_name: &'static str,
    record_id: String,
    operation: &'static str,
    event_type: &'static str,
    data: Option<String>,
    version: Option<i64>,
}

/// Applies one command inside the batch's transaction. Every rule is checked before anything
/// is written, so a refused command leaves the transaction as it found it.
async fn apply(
    txn: &DatabaseTransaction,
    seq: u64,
    now: DateTime<Utc>,
    command: Command,
    origin: &Origin,
) -> Result<Staged, ApplyError> {
    let (entry, frame, outcome) = match command {
        Command::Station(command) => apply_station(txn, seq, now, command).await?,
        Command::Catalogue { kind, body } => {
            let raw = RawValue::from_string(body.clone()).map_err(|e| {
                ApplyError::Rejected(WireError::invalid(None, None, format!("not valid JSON ({e})")))
            })?;
            catalogue::Entity::insert(catalogue::ActiveModel {
                name: Set(kind.name().to_owned()),
                body: Set(body.clone()),
                updated_at: Set(now),
            })
            .on_conflict(
                OnConflict::column(catalogue::Column::Name)
                    .update_columns([catalogue::Column::Body, catalogue::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
            audit(txn, now, "catalogue", "update", None, kind.name()).await?;
            let frame = outbound::frame(kind.event(), &CatalogueUpdated { data: &raw, seq }, None);
            let entry = LogEntry {
                table_name: "catalogue",
                record_id: kind.name().to_owned(),
                operation: "update",
                event_type: kind.event(),
                data: Some(body.clone()),
                version: None,
            };
            (entry, frame, Outcome::Catalogue(body))
        }
    };
    let (origin_session, reply) = match origin {
        Origin::Session { session, reply_to } => {
            (Some(*session), reply_to.as_deref().map(|id| outbound::frame("ack", &Ack { seq }, Some(id))))
        }
        Origin::Rest => (None, None),
    };
    change_log::Entity::insert(change_log::ActiveModel {
        seq: Set(store::changes::to_db(seq)),
        table_name: Set(entry.table_name.to_owned()),
        record_id: Set(Some(entry.record_id)),
        operation: Set(entry.operation.to_owned()),
        event_type: Set(entry.event_type.to_owned()),
        data: Set(entry.data),
        version: Set(entry.version),
        frame: Set(frame.to_string()),
        origin_session: Set(origin_session.map(|s| s.to_string())),
        reply_frame: Set(reply.as_ref().map(ToString::to_string)),
        source_device: Set(None),
        committed_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(Staged { change: PublishedChange { seq, frame, origin: origin_session, reply }, outcome })
}

/// A station command's log entry, frame and outcome.
type StationApplied = (LogEntry, ByteString, Outcome);

async fn apply_station(
    txn: &DatabaseTransaction,
    seq: u64,
    now: DateTime<Utc>,
    command: StationCommand,
) -> Result<StationApplied, ApplyError> {
    match command {
        StationCommand::Create { station_id, name } => {
            if store::stations::load(txn, &station_id).await?.is_some() {
                return Err(StationError::Exists(station_id).into());
            }
            let s = Station::new(station_id, name);
            station::Entity::insert(station::ActiveModel { created_at: Set(now), ..station_row(&s, now) })
                .exec_without_returning(txn)
                .await?;
            audit(txn, now, "station", "create", None, &s.id).await?;
            let frame = state_frame("device_created", &s, seq);
            Ok((entry_for(&s, "insert", "device_created"), frame, Outcome::Station(s)))
        }
        StationCommand::Update { station_id, patch } => {
            let mut s = require(txn, &station_id).await?;
            s.apply(patch);
            save(txn, &mut s, now).await?;
            let frame = state_frame("device_updated", &s, seq);
            Ok((entry_for(&s, "update", "device_updated"), frame, Outcome::Station(s)))
        }
        StationCommand::PlaceOrders { station_id, orders } => {
            let mut s = require(txn, &station_id).await?;
            let added = s.place_orders(orders, now, || Uuid::now_v7().to_string());
            save(txn, &mut s, now).await?;
            let rows = added.clone().map(|i| order_row(&s.id, i, &s.orders[i]));
            order::Entity::insert_many(rows).exec_without_returning(txn).await?;
            let views = added.map(|i| OrderView::of(i, &s.orders[i])).collect();
            let frame =
                outbound::frame("order_added", &OrdersAdded { device_id: &s.id, orders: views, seq }, None);
            Ok((entry_for(&s, "update", "order_added"), frame, Outcome::Station(s)))
        }
        StationCommand::UpdateOrder { station_id, target, patch } => {
            let mut s = require(txn, &station_id).await?;
            let index = s.update_order(&target, patch)?;
            save(txn, &mut s, now).await?;
            let o = &s.orders[index];
            order::Entity::update_many()
                .set(order::ActiveModel { order_id: NotSet, ..order_row(&s.id, index, o) })
                .filter(order::Column::OrderId.eq(o.id.as_str()))
                .exec(txn)
                .await?;
            let body = OrderModified {
                device_id: &s.id,
                order_index: index,
                order_id: &o.id,
                data: OrderView::of(index, o),
                seq,
            };
            let frame = outbound::frame("order_modified", &body, None);
            Ok((entry_for(&s, "update", "order_modified"), frame, Outcome::Station(s)))
        }
        StationCommand::DeleteOrder { station_id, target } => {
            let mut s = require(txn, &station_id).await?;
            let (index, removed) = s.remove_order(&target)?;
            save(txn, &mut s, now).await?;
            order::Entity::delete_by_id(removed.id.clone()).exec(txn).await?;
            order::Entity::update_many()
                .col_expr(order::Column::Position, Expr::col(order::Column::Position).sub(1))
                .filter(order::Column::StationId.eq(s.id.as_str()))
                .filter(order::Column::Position.gt(position(index)))
                .exec(txn)
                .await?;
            let body = OrderRemoved { device_id: &s.id, order_index: index, order_id: &removed.id, seq };
            let frame = outbound::frame("order_removed", &body, None);
            Ok((entry_for(&s, "update", "order_removed"), frame, Outcome::Station(s)))
        }
        StationCommand::Transfer { from, to } => {
            let mut source = require(txn, &from).await?;
            let mut target = require(txn, &to).await?;
            transfer(&mut source, &mut target)?;
            save(txn, &mut source, now).await?;
            save(txn, &mut target, now).await?;
            order::Entity::update_many()
                .col_expr(order::Column::StationId, Expr::value(target.id.clone()))
                .filter(order::Column::StationId.eq(source.id.as_str()))
                .exec(txn)
                .await?;
            let body = Transferred {
                from_device_id: &source.id,
                to_device_id: &target.id,
                message: format!("Device data transferred from {} to {}", source.id, target.id),
                seq,
            };
            let frame = outbound::frame("device_transferred", &body, None);
            let data =
                serde_json::json!({ "from": StationData::of(&source), "to": StationData::of(&target) });
            let entry = LogEntry {
                table_name: "stations",
                record_id: source.id.clone(),
                operation: "update",
                event_type: "device_transferred",
                data: Some(data.to_string()),
                version: Some(source.version),
            };
            Ok((entry, frame, Outcome::Station(target)))
        }
        StationCommand::Delete { station_id } => {
            let s = require(txn, &station_id).await?;
            order::Entity::delete_many().filter(order::Column::StationId.eq(s.id.as_str())).exec(txn).await?;
            station::Entity::delete_by_id(s.id.clone()).exec(txn).await?;
            audit(txn, now, "station", "delete", None, &s.id).await?;
            let frame = outbound::frame("device_removed", &StationRef { device_id: &s.id, seq }, None);
            let entry = LogEntry {
                table_name: "stations",
                record_id: s.id,
                operation: "delete",
                event_type: "device_removed",
                data: None,
                version: Some(s.version + 1),
            };
            Ok((entry, frame, Outcome::Removed))
        }
        StationCommand::Reset { station_id } => {
            let mut s = require(txn, &station_id).await?;
            s.reset();
            save(txn, &mut s, now).await?;
            order::Entity::delete_many().filter(order::Column::StationId.eq(s.id.as_str())).exec(txn).await?;
            let frame = outbound::frame("device_cleared", &StationRef { device_id: &s.id, seq }, None);
            Ok((entry_for(&s, "update", "device_cleared"), frame, Outcome::Station(s)))
        }
    }
}

/// `device_created` / `device_updated`: the whole station state.
fn state_frame(kind: &str, s: &Station, seq: u64) -> ByteString {
    outbound::frame(kind, &StationState { device_id: &s.id, data: StationData::of(s), seq }, None)
}

/// The log entry of a change to one station: its state after the change.
fn entry_for(s: &Station, operation: &'static str, event_type: &'static str) -> LogEntry {
    LogEntry {
        table_name: "stations",
        record_id: s.id.clone(),
        operation,
        event_type,
        data: serde_json::to_string(&StationData::of(s)).ok(),
        version: Some(s.version),
    }
}

/// The station, or `DEVICE_NOT_FOUND`.
async fn require(txn: &DatabaseTransaction, id: &str) -> Result<Station, ApplyError> {
    store::stations::load(txn, id).await?.ok_or_else(|| StationError::NotFound(id.to_owned()).into())
}

/// Writes the station's row with its version moved on by one.
async fn save(txn: &DatabaseTransaction, s: &mut Station, now: DateTime<Utc>) -> Result<(), DbErr> {
    s.version += 1;
    station::Entity::update_many()
        .set(station::ActiveModel { station_id: NotSet, ..station_row(s, now) })
        .filter(station::Column::StationId.eq(s.id.as_str()))
        .exec(txn)
        .await?;
    Ok(())
}

fn station_row(s: &Station, now: DateTime<Utc>) -> station::ActiveModel {
    station::ActiveModel {
        station_id: Set(s.id.clone()),
        name: Set(s.name.clone()),
        is_running: Set(s.is_running),
        elapsed_seconds: Set(s.elapsed_seconds),
        mode: Set(s.mode.clone()),
        customer_count: Set(s.customer_count),
        notes: Set(s.notes.clone()),
        version: Set(s.version),
        created_at: NotSet,
        updated_at: Set(now),
    }
}

fn order_row(station_id: &str, index: usize, o: &Order) -> order::ActiveModel {
    order::ActiveModel {
        order_id: Set(o.id.clone()),
        station_id: Set(station_id.to_owned()),
        position: Set(position(index)),
        name: Set(o.name.clone()),
        price: Set(o.price),
        quantity: Set(o.quantity),
        notes: Set(o.notes.clone()),
        first_order_time: Set(o.first_order_time),
        last_order_time: Set(o.last_order_time),
    }
}

/// An order index as stored. Lists are bounded far below `i32::MAX` by the frame size.
fn position(index: usize) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}

/// Adds an audit row inside the transaction.
async fn audit(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    event_type: &str,
    operation: &str,
    device_id: Option<&str>,
    details: &str,
) -> Result<(), DbErr> {
    sync_audit_log::Entity::insert(sync_audit_log::ActiveModel {
        id: NotSet,
        event_type: Set(event_type.to_owned()),
        operation: Set(operation.to_owned()),
        status: Set("success".to_owned()),
        device_id: Set(device_id.map(str::to_owned)),
        details: Set(Some(details.to_owned())),
        timestamp: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}
