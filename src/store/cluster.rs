//! The tables several nodes over one Postgres database share (migration `000017`): the log's
//! head, the nodes alive and the election lease. Every time here is the database's clock
//! (`now()`), so the nodes' own clocks never decide who is alive or who holds the lease.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

/// The channel a commit that logged changes notifies, with its newest `seq` as the payload.
pub const LOG_CHANNEL: &str = "device_sync_log";

fn statement(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn seconds(ttl: Duration) -> Value {
    ttl.as_secs_f64().into()
}

/// Inside a write transaction: locks the log's head until the transaction ends and returns it.
/// Another node's writer waits here until this transaction commits or rolls back, and then
/// reads the head this one left.
pub async fn lock_head<C: ConnectionTrait>(txn: &C) -> Result<u64, DbErr> {
    let row = txn
        .query_one_raw(statement("SELECT seq FROM cluster_log_head WHERE id = 1 FOR UPDATE", []))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("cluster_log_head has no row".into()))?;
    Ok(super::changes::from_db(row.try_get_by_index::<i64>(0)?))
}

/// Inside the write transaction that locked the head: moves it to `last` and notifies
/// `LOG_CHANNEL` (Postgres delivers the notification when, and only if, the transaction commits).
pub async fn advance_head<C: ConnectionTrait>(txn: &C, last: u64) -> Result<(), DbErr> {
    let last = super::changes::to_db(last);
    txn.execute_raw(statement("UPDATE cluster_log_head SET seq = $1 WHERE id = 1", [last.into()])).await?;
    txn.execute_raw(statement("SELECT pg_notify($1, $2)", [LOG_CHANNEL.into(), last.to_string().into()]))
        .await?;
    Ok(())
}

/// At start: makes the head no lower than the newest change in the log (rows written by other
/// means than a node, such as a restored dump, would otherwise be numbered over) and returns it.
pub async fn reconcile_head<C: ConnectionTrait>(txn: &C) -> Result<u64, DbErr> {
    let sql = "UPDATE cluster_log_head \
               SET seq = GREATEST(seq, (SELECT COALESCE(MAX(seq), 0) FROM change_log)) \
               WHERE id = 1 RETURNING seq";
    let row = txn
        .query_one_raw(statement(sql, []))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("cluster_log_head has no row".into()))?;
    Ok(super::changes::from_db(row.try_get_by_index::<i64>(0)?))
}

/// The newest `seq` committed.
pub async fn head<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    let row = db
        .query_one_raw(statement("SELECT seq FROM cluster_log_head WHERE id = 1", []))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("cluster_log_head has no row".into()))?;
    Ok(super::changes::from_db(row.try_get_by_index::<i64>(0)?))
}

/// Says that `node` is alive for `ttl` more, from now on the database's clock.
pub async fn renew_node<C: ConnectionTrait>(db: &C, node: &str, ttl: Duration) -> Result<(), DbErr> {
    let sql = "INSERT INTO cluster_nodes (node_id, expires_at) \
               VALUES ($1, now() + $2 * interval '1 second') \
               ON CONFLICT (node_id) DO UPDATE SET expires_at = EXCLUDED.expires_at";
    db.execute_raw(statement(sql, [node.into(), seconds(ttl)])).await.map(|_| ())
}

/// `node` stops: it is no longer alive, and gives up the election lease if it holds it.
pub async fn leave<C: ConnectionTrait>(db: &C, node: &str) -> Result<(), DbErr> {
    db.execute_raw(statement("DELETE FROM cluster_nodes WHERE node_id = $1", [node.into()])).await?;
    let sql = "UPDATE cluster_lease SET holder = NULL, expires_at = now() WHERE id = 1 AND holder = $1";
    db.execute_raw(statement(sql, [node.into()])).await.map(|_| ())
}

/// The nodes alive now, by name.
pub async fn alive_nodes<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    let rows = db
        .query_all_raw(statement(
            "SELECT node_id FROM cluster_nodes WHERE expires_at > now() ORDER BY node_id",
            [],
        ))
        .await?;
    rows.iter().map(|row| row.try_get_by_index::<String>(0)).collect()
}

/// Takes the election lease for `node` for `ttl`, or renews it: when nobody holds it, its
/// holder's time ran out, or `node` holds it already. Returns the lease's fencing number, which
/// grows each time the lease is taken anew (and stays while its holder renews it in time);
/// `None` when another node holds it.
pub async fn take_lease<C: ConnectionTrait>(db: &C, node: &str, ttl: Duration) -> Result<Option<u64>, DbErr> {
    let sql = "UPDATE cluster_lease SET \
                   fence = CASE WHEN holder = $1 AND expires_at > now() THEN fence ELSE fence + 1 END, \
                   holder = $1, \
                   expires_at = now() + $2 * interval '1 second' \
               WHERE id = 1 AND (holder IS NULL OR holder = $1 OR expires_at <= now()) \
               RETURNING fence";
    let row = db.query_one_raw(statement(sql, [node.into(), seconds(ttl)])).await?;
    row.map(|row| row.try_get_by_index::<i64>(0).map(super::changes::from_db)).transpose()
}

/// The node holding the election lease now, if its time has not run out.
pub async fn lease_holder<C: ConnectionTrait>(db: &C) -> Result<Option<String>, DbErr> {
    let row = db
        .query_one_raw(statement("SELECT holder FROM cluster_lease WHERE id = 1 AND expires_at > now()", []))
        .await?;
    Ok(row.map(|row| row.try_get_by_index::<Option<String>>(0)).transpose()?.flatten())
}

/// Inside a transaction: whether `node` still holds the lease under `fence`, its time not run
/// out. The row stays share-locked until the transaction ends, so the lease cannot change hands
/// before this transaction commits: a write made after this check is fenced.
pub async fn holds_lease<C: ConnectionTrait>(txn: &C, node: &str, fence: u64) -> Result<bool, DbErr> {
    let sql = "SELECT 1 FROM cluster_lease \
               WHERE id = 1 AND holder = $1 AND fence = $2 AND expires_at > now() FOR SHARE";
    let row = txn.query_one_raw(statement(sql, [node.into(), super::changes::to_db(fence).into()])).await?;
    Ok(row.is_some())
}

/// Runs `work` holding a session-level advisory lock on `db`'s one connection, so that nodes
/// started at once on a fresh database run the migrations one after another.
pub async fn one_at_a_time<C, T, F>(db: &C, work: F) -> Result<T, DbErr>
where
    C: ConnectionTrait,
    F: std::future::Future<Output = Result<T, DbErr>>,
{
    // An arbitrary key of this product's own ("devsync" in ASCII).
    const KEY: i64 = 0x0064_6576_7379_6e63;
    db.execute_raw(statement("SELECT pg_advisory_lock($1)", [KEY.into()])).await?;
    let result = work.await;
    let unlocked = db.execute_raw(statement("SELECT pg_advisory_unlock($1)", [KEY.into()])).await;
    let value = result?;
    unlocked?;
    Ok(value)
}
