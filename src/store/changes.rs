//! The change log, read for replay.

use chrono::{DateTime, Utc};
use entity::change_log;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

/// A logged change as a session replays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedFrame {
    pub seq: u64,
    /// The frame every session but the origin was sent.
    pub frame: String,
    /// The session that made the change, if it came over WebSocket.
    pub origin_session: Option<String>,
    /// What the origin session was sent instead, if anything.
    pub reply_frame: Option<String>,
}

/// Up to `limit` changes after `after`, oldest first, and no more of them than fit in
/// `max_bytes` of frames (but at least one): a client catching up over large records is read
/// for a little at a time.
pub async fn frames_after<C: ConnectionTrait>(
    db: &C,
    after: u64,
    limit: u64,
    max_bytes: usize,
) -> Result<Vec<LoggedFrame>, DbErr> {
    let mut last = None;
    if max_bytes != usize::MAX {
        // The sizes first (the database reads the frames, but hands over only their lengths).
        let sizes: Vec<(i64, i64)> = change_log::Entity::find()
            .select_only()
            .column(change_log::Column::Seq)
            // Bytes, as a 64-bit integer on both databases (OCTET_LENGTH: SQLite 3.43 and up).
            .column_as(
                Expr::cust("CAST(OCTET_LENGTH(frame) + COALESCE(OCTET_LENGTH(reply_frame), 0) AS BIGINT)"),
                "size",
            )
            .filter(change_log::Column::Seq.gt(to_db(after)))
            .order_by_asc(change_log::Column::Seq)
            .limit(limit)
            .into_tuple()
            .all(db)
            .await?;
        let mut total = 0usize;
        for (seq, size) in sizes {
            total = total.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
            if total > max_bytes && last.is_some() {
                break;
            }
            last = Some(seq);
        }
    }
    let mut query = change_log::Entity::find()
        .select_only()
        .column(change_log::Column::Seq)
        .column(change_log::Column::Frame)
        .column(change_log::Column::OriginSession)
        .column(change_log::Column::ReplyFrame)
        .filter(change_log::Column::Seq.gt(to_db(after)))
        .order_by_asc(change_log::Column::Seq)
        .limit(limit);
    if let Some(last) = last {
        query = query.filter(change_log::Column::Seq.lte(last));
    }
    let rows: Vec<(i64, String, Option<String>, Option<String>)> = query.into_tuple().all(db).await?;
    Ok(rows
        .into_iter()
        .map(|(seq, frame, origin_session, reply_frame)| LoggedFrame {
            seq: from_db(seq),
            frame,
            origin_session,
            reply_frame,
        })
        .collect())
}

/// A logged change as sync sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub seq: u64,
    pub table_name: String,
    pub record_id: Option<String>,
    pub operation: String,
    /// The record's state after the change, as JSON text.
    pub data: Option<String>,
    pub version: Option<i64>,
    pub committed_at: DateTime<Utc>,
}

/// Where a page of changes starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// After this `seq`.
    Seq(u64),
    /// Committed after this time.
    Time(DateTime<Utc>),
}

/// Up to `limit` changes from `since`, oldest first, of `tables` when given: each change's
/// `seq` and the text a sync page sends for it (`None` for a change logged before the log kept
/// that text: `rows` reads those).
pub async fn page<C: ConnectionTrait>(
    db: &C,
    since: Since,
    tables: Option<&[String]>,
    limit: u64,
) -> Result<Vec<(u64, Option<String>)>, DbErr> {
    let mut select = change_log::Entity::find()
        .select_only()
        .column(change_log::Column::Seq)
        .column(change_log::Column::SyncChange);
    select = match since {
        Since::Seq(after) => select.filter(change_log::Column::Seq.gt(to_db(after))),
        Since::Time(at) => select.filter(change_log::Column::CommittedAt.gt(at)),
    };
    if let Some(tables) = tables {
        select = select.filter(change_log::Column::TableName.is_in(tables.iter().cloned()));
    }
    let rows: Vec<(i64, Option<String>)> =
        select.order_by_asc(change_log::Column::Seq).limit(limit).into_tuple().all(db).await?;
    Ok(rows.into_iter().map(|(seq, text)| (from_db(seq), text)).collect())
}

/// The changes `seqs` (those kept), oldest first.
pub async fn rows<C: ConnectionTrait>(db: &C, seqs: &[u64]) -> Result<Vec<ChangeRow>, DbErr> {
    let mut found = Vec::with_capacity(seqs.len());
    // In chunks, well under every backend's limit on bound parameters.
    for chunk in seqs.chunks(500) {
        type Row = (i64, String, Option<String>, String, Option<String>, Option<i64>, DateTime<Utc>);
        let rows: Vec<Row> = change_log::Entity::find()
            .select_only()
            .column(change_log::Column::Seq)
            .column(change_log::Column::TableName)
            .column(change_log::Column::RecordId)
            .column(change_log::Column::Operation)
            .column(change_log::Column::Data)
            .column(change_log::Column::Version)
            .column(change_log::Column::CommittedAt)
            .filter(change_log::Column::Seq.is_in(chunk.iter().map(|&s| to_db(s))))
            .order_by_asc(change_log::Column::Seq)
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows.into_iter().map(
            |(seq, table_name, record_id, operation, data, version, committed_at)| ChangeRow {
                seq: from_db(seq),
                table_name,
                record_id,
                operation,
                data,
                version,
                committed_at,
            },
        ));
    }
    Ok(found)
}

/// The newest `seq` ever logged (0 for a new log), also when retention pruned every change.
pub async fn head<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    Ok(bounds(db).await?.1)
}

/// The log's floor and its head, read together.
pub async fn bounds<C: ConnectionTrait>(db: &C) -> Result<(Floor, u64), DbErr> {
    let max: Option<Option<i64>> = change_log::Entity::find()
        .select_only()
        .column_as(change_log::Column::Seq.max(), "head")
        .into_tuple()
        .one(db)
        .await?;
    let floor = floor(db).await?;
    let newest = max.flatten().map(from_db).unwrap_or(0);
    Ok((floor, newest.max(floor.seq)))
}

/// What retention has pruned: every change up to `seq`, the newest of them committed at `at`.
/// The changes `seq + 1 ..= head` are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Floor {
    pub seq: u64,
    pub at: Option<DateTime<Utc>>,
}

impl Floor {
    /// The `seq` of the oldest change kept (`head + 1` when none is).
    pub fn oldest_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Whether reading from `since` needs a change that was pruned.
    pub fn trims(&self, since: Since) -> bool {
        match since {
            Since::Seq(after) => crate::domain::resume::trimmed(after, self.seq),
            Since::Time(t) => self.at.is_some_and(|at| at > t),
        }
    }
}

/// The log's floor (nothing pruned on a new log).
pub async fn floor<C: ConnectionTrait>(db: &C) -> Result<Floor, DbErr> {
    let seq = super::meta::get(db, super::meta::LOG_FLOOR).await?.and_then(|v| v.parse().ok()).unwrap_or(0);
    let at = super::meta::get(db, super::meta::LOG_FLOOR_AT)
        .await?
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(Floor { seq, at })
}

/// The `seq` of the newest change committed before `at`, if any is kept (one step down the
/// commit-time index; `seq` follows commit order).
pub async fn newest_before<C: ConnectionTrait>(db: &C, at: DateTime<Utc>) -> Result<Option<u64>, DbErr> {
    let seq: Option<i64> = change_log::Entity::find()
        .select_only()
        .column(change_log::Column::Seq)
        .filter(change_log::Column::CommittedAt.lt(at))
        .order_by_desc(change_log::Column::CommittedAt)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    Ok(seq.map(from_db))
}

/// When change `seq` was committed, if it is kept.
pub async fn committed_at<C: ConnectionTrait>(db: &C, seq: u64) -> Result<Option<DateTime<Utc>>, DbErr> {
    let row: Option<DateTime<Utc>> = change_log::Entity::find()
        .select_only()
        .column(change_log::Column::CommittedAt)
        .filter(change_log::Column::Seq.eq(to_db(seq)))
        .into_tuple()
        .one(db)
        .await?;
    Ok(row)
}

/// A `seq` as the database stores it (a signed 64-bit integer; seqs never reach 2^63).
pub fn to_db(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A `seq` read from the database (never negative).
pub fn from_db(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

/// A change as the log keeps it.
pub struct LogRow {
    pub seq: u64,
    pub table_name: String,
    pub record_id: String,
    pub operation: &'static str,
    /// The broadcast frame's type.
    pub event_type: &'static str,
    /// The record's state after the change, as JSON.
    pub data: Option<String>,
    pub version: Option<i64>,
    /// What every session but the origin was sent.
    pub frame: String,
    pub origin_session: Option<String>,
    /// What the origin session was sent instead.
    pub reply_frame: Option<String>,
    pub source_device: Option<String>,
    pub committed_at: DateTime<Utc>,
    /// The change as a sync page sends it.
    pub sync_change: Option<String>,
}

/// Appends a change to the log (the Persistence actor, inside its transaction).
pub async fn append<C: ConnectionTrait>(txn: &C, row: LogRow) -> Result<(), DbErr> {
    change_log::Entity::insert(change_log::ActiveModel {
        seq: Set(to_db(row.seq)),
        table_name: Set(row.table_name),
        record_id: Set(Some(row.record_id)),
        operation: Set(row.operation.to_owned()),
        event_type: Set(row.event_type.to_owned()),
        data: Set(row.data),
        version: Set(row.version),
        frame: Set(row.frame),
        origin_session: Set(row.origin_session),
        reply_frame: Set(row.reply_frame),
        source_device: Set(row.source_device),
        committed_at: Set(row.committed_at),
        sync_change: Set(row.sync_change),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}
