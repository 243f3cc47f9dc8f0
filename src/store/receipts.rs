//! Receipts of writes sent with an `id` (`Command::Receipted`): each writer's id, the change it
//! made and the answer it was first given, written by the Persistence actor in the same
//! transaction as the write, and pruned with the change log (`prune`).

use chrono::{DateTime, Utc};
use entity::write_receipt;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::changes::{from_db, to_db};
use crate::domain::commands::Writer;
use crate::domain::records::Conflict;
use crate::protocol::WireError;

/// The first answer to a write sent with an `id`, kept with its receipt: a write sent again
/// gets it again, and nothing else happens.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Receipt {
    /// It was applied: the change it made (fleet writes make none), and the origin's own reply
    /// (the frame as sent) for an event with one (`data_update_ack`); otherwise `ack`.
    Applied { seq: Option<u64>, reply: Option<String> },
    /// A rule refused it; nothing was written.
    Refused { error: WireError },
    /// It met a newer stored copy, which was kept.
    Kept { conflict: Box<Conflict> },
}

/// The receipt of `writer`'s write `id`, if it was written.
pub async fn find<C: ConnectionTrait>(txn: &C, writer: &Writer, id: &str) -> Result<Option<Receipt>, DbErr> {
    let (kind, who) = writer.parts();
    let key = (kind.to_owned(), who.to_owned(), id.to_owned());
    let Some(row) = write_receipt::Entity::find_by_id(key).one(txn).await? else { return Ok(None) };
    let seq = row.seq.map(from_db);
    Ok(Some(match row.answer.as_deref().map(serde_json::from_str::<Receipt>) {
        Some(Ok(receipt)) => receipt,
        // A pushed event's receipt from before answers were kept: it was applied as `seq`.
        None => Receipt::Applied { seq, reply: None },
        Some(Err(err)) => return Err(DbErr::Custom(format!("a write's receipt cannot be read: {err}"))),
    }))
}

/// Keeps the receipt of `writer`'s write `id` and its first answer.
pub async fn keep<C: ConnectionTrait>(
    txn: &C,
    now: DateTime<Utc>,
    writer: &Writer,
    id: &str,
    receipt: &Receipt,
) -> Result<(), DbErr> {
    let (kind, who) = writer.parts();
    let seq = match receipt {
        Receipt::Applied { seq, .. } => *seq,
        Receipt::Refused { .. } | Receipt::Kept { .. } => None,
    };
    let answer = serde_json::to_string(receipt).map_err(|err| DbErr::Custom(err.to_string()))?;
    write_receipt::Entity::insert(write_receipt::ActiveModel {
        writer_kind: Set(kind.to_owned()),
        writer: Set(who.to_owned()),
        write_id: Set(id.to_owned()),
        seq: Set(seq.map(to_db)),
        answer: Set(Some(answer)),
        created_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Deletes up to `limit` of the oldest receipts written before `before`; how many.
pub async fn prune<C: ConnectionTrait>(txn: &C, before: DateTime<Utc>, limit: u64) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    use write_receipt::Column;
    let oldest = Query::select()
        .columns([Column::WriterKind, Column::Writer, Column::WriteId])
        .from(write_receipt::Entity)
        .and_where(Column::CreatedAt.lt(before))
        .order_by(Column::CreatedAt, sea_orm::Order::Asc)
        .limit(limit)
        .to_owned();
    let key =
        Expr::tuple([Expr::col(Column::WriterKind), Expr::col(Column::Writer), Expr::col(Column::WriteId)]);
    let done = write_receipt::Entity::delete_many().filter(key.in_subquery(oldest)).exec(txn).await?;
    Ok(done.rows_affected)
}
