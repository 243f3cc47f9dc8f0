//! Server facts kept across restarts (`sync_meta`): read here, and written here by the
//! Persistence actor inside its transactions.

use crate::domain::fleet::Terms;
use entity::sync_meta;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

/// The key of the change log's epoch.
pub const EPOCH: &str = "epoch";

/// The value stored under `key`, if any.
pub async fn get<C: ConnectionTrait>(db: &C, key: &str) -> Result<Option<String>, DbErr> {
    Ok(sync_meta::Entity::find_by_id(key.to_owned()).one(db).await?.map(|row| row.value))
}

/// The key of the log's floor: the `seq` of the newest change pruned (retention).
pub const LOG_FLOOR: &str = "log_floor";
/// The key of the commit time of that change (RFC 3339).
pub const LOG_FLOOR_AT: &str = "log_floor_at";

/// The key of the election term (the number of successful elections, ever).
pub const TERM: &str = "term";

/// The election term (0 before the first election).
pub async fn term<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    number(db, TERM).await
}

/// The highest term a device was asked to be master in.
pub const TERM_SPENT: &str = "term_spent";

/// The election terms: the master's, and the highest spent.
pub async fn terms<C: ConnectionTrait>(db: &C) -> Result<Terms, DbErr> {
    Ok(Terms { current: term(db).await?, spent: number(db, TERM_SPENT).await? })
}

/// Records that term `spent` was asked in (the highest such term is kept).
pub async fn spend_term<C: ConnectionTrait>(db: &C, spent: u64) -> Result<(), DbErr> {
    raise(db, TERM_SPENT, spent).await.map(|_| ())
}

/// Stores the number `value` under `key` unless a higher one is there, in one statement: two
/// writers racing (nodes sharing the database) cannot move it back. Whether it was raised.
pub async fn raise<C: ConnectionTrait>(db: &C, key: &str, value: u64) -> Result<bool, DbErr> {
    use sea_orm::{DbBackend, Statement};
    sync_meta::Entity::insert(sync_meta::ActiveModel {
        key: Set(key.to_owned()),
        value: Set("0".to_owned()),
    })
    .on_conflict(OnConflict::column(sync_meta::Column::Key).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    let value = i64::try_from(value).map_err(|_| DbErr::Custom(format!("{key}: {value} is out of range")))?;
    // The cast reads only this key's value (the others need not be numbers), whatever order
    // the database evaluates the conditions in.
    let backend = db.get_database_backend();
    let (sql, values): (&str, Vec<sea_orm::Value>) = match backend {
        DbBackend::Postgres => (
            "UPDATE sync_meta SET value = $1 \
             WHERE key = $2 AND CAST(CASE WHEN key = $2 THEN value ELSE '0' END AS BIGINT) < $3",
            vec![value.to_string().into(), key.into(), value.into()],
        ),
        _ => (
            "UPDATE sync_meta SET value = ? \
             WHERE key = ? AND CAST(CASE WHEN key = ? THEN value ELSE '0' END AS BIGINT) < ?",
            vec![value.to_string().into(), key.into(), key.into(), value.into()],
        ),
    };
    let raised = db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    Ok(raised.rows_affected() > 0)
}

async fn number<C: ConnectionTrait>(db: &C, key: &str) -> Result<u64, DbErr> {
    Ok(get(db, key).await?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Stores `value` under `key`, replacing what was there.
pub async fn set<C: ConnectionTrait>(db: &C, key: &str, value: &str) -> Result<(), DbErr> {
    sync_meta::Entity::insert(sync_meta::ActiveModel {
        key: Set(key.to_owned()),
        value: Set(value.to_owned()),
    })
    .on_conflict(
        OnConflict::column(sync_meta::Column::Key).update_column(sync_meta::Column::Value).to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
