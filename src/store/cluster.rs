//! The tables several nodes over one Postgres database share (migrations `000017` and
//! `000018`): the log's head, the nodes alive, the election lease and the nodes' bus. Every time here is the database's clock
//! (`now()`), so the nodes' own clocks never decide who is alive or who holds the lease.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

/// The channel a commit that logged changes notifies, with its writer's run as the payload.
pub const LOG_CHANNEL: &str = "device_sync_log";
/// The channel a message posted on the nodes' bus notifies.
pub const BUS_CHANNEL: &str = "device_sync_bus";

fn statement(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn seconds(ttl: Duration) -> Value {
    ttl.as_secs_f64().into()
}

/// The one `seq` that `sql` returns from the one row of `table`.
async fn one_seq<C: ConnectionTrait>(db: &C, sql: Statement, table: &str) -> Result<u64, DbErr> {
    let row =
        db.query_one_raw(sql).await?.ok_or_else(|| DbErr::RecordNotFound(format!("{table} has no row")))?;
    Ok(super::changes::from_db(row.try_get_by_index::<i64>(0)?))
}

/// Inside a write transaction: locks the log's head until the transaction ends and returns it.
/// Another node's writer waits here until this transaction commits or rolls back, and then
/// reads the head this one left.
pub async fn lock_head<C: ConnectionTrait>(txn: &C) -> Result<u64, DbErr> {
    let sql = statement("SELECT seq FROM cluster_log_head WHERE id = 1 FOR UPDATE", []);
    one_seq(txn, sql, "cluster_log_head").await
}

/// Inside the write transaction that locked the head: moves it to `last` and notifies
/// `LOG_CHANNEL` with the writer's run, so that it can skip its own notifications (Postgres
/// delivers a notification when, and only if, the transaction commits). One statement.
pub async fn advance_head<C: ConnectionTrait>(txn: &C, last: u64, run: &str) -> Result<(), DbErr> {
    let sql = "WITH head AS (UPDATE cluster_log_head SET seq = $1 WHERE id = 1 RETURNING seq) \
               SELECT pg_notify($2, $3) FROM head";
    let values = [super::changes::to_db(last).into(), LOG_CHANNEL.into(), run.into()];
    txn.execute_raw(statement(sql, values)).await.map(|_| ())
}

/// At start: makes the head no lower than the newest change in the log (rows written by other
/// means than a node, such as a restored dump, would otherwise be numbered over) and returns it.
pub async fn reconcile_head<C: ConnectionTrait>(txn: &C) -> Result<u64, DbErr> {
    let sql = "UPDATE cluster_log_head \
               SET seq = GREATEST(seq, (SELECT COALESCE(MAX(seq), 0) FROM change_log)) \
               WHERE id = 1 RETURNING seq";
    one_seq(txn, statement(sql, []), "cluster_log_head").await
}

/// One run of a node's process: its name among the nodes and an id of this run, so that a node
/// restarted under the same name is told apart from the run before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub node: String,
    pub run: String,
}

impl Instance {
    /// Where the nodes' bus addresses this run (its answers, its sessions).
    pub fn address(&self) -> String {
        format!("{}/{}", self.node, self.run)
    }
}

/// Says that `me` is alive for `ttl` more, from now on the database's clock.
pub async fn renew_node<C: ConnectionTrait>(db: &C, me: &Instance, ttl: Duration) -> Result<(), DbErr> {
    let sql = "INSERT INTO cluster_nodes (node_id, instance, expires_at) \
               VALUES ($1, $2, now() + $3 * interval '1 second') \
               ON CONFLICT (node_id) DO UPDATE \
               SET instance = EXCLUDED.instance, expires_at = EXCLUDED.expires_at, \
                   started_at = CASE WHEN cluster_nodes.instance = EXCLUDED.instance \
                                THEN cluster_nodes.started_at ELSE now() END";
    db.execute_raw(statement(sql, [me.node.as_str().into(), me.run.as_str().into(), seconds(ttl)]))
        .await
        .map(|_| ())
}

/// `me` stops: it is no longer alive, and gives up the election lease if it holds it.
pub async fn leave<C: ConnectionTrait>(db: &C, me: &Instance) -> Result<(), DbErr> {
    let sql = "DELETE FROM cluster_nodes WHERE node_id = $1 AND instance = $2";
    db.execute_raw(statement(sql, [me.node.as_str().into(), me.run.as_str().into()])).await?;
    let sql = "UPDATE cluster_lease SET holder = NULL, holder_instance = NULL, expires_at = now() \
               WHERE id = 1 AND holder_instance = $1";
    db.execute_raw(statement(sql, [me.run.as_str().into()])).await.map(|_| ())
}

/// The nodes alive now, by name.
pub async fn alive_nodes<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    Ok(alive_instances(db).await?.into_iter().map(|i| i.node).collect())
}

/// The node runs alive now, by node name.
pub async fn alive_instances<C: ConnectionTrait>(db: &C) -> Result<Vec<Instance>, DbErr> {
    let rows = db
        .query_all_raw(statement(
            "SELECT node_id, instance FROM cluster_nodes WHERE expires_at > now() ORDER BY node_id",
            [],
        ))
        .await?;
    rows.iter()
        .map(|row| Ok(Instance { node: row.try_get_by_index(0)?, run: row.try_get_by_index(1)? }))
        .collect()
}

/// Takes the election lease for `me` for `ttl`, or renews it: when nobody holds it, its
/// holder's time ran out, or `me` holds it already. Returns the lease's fencing number, which
/// grows each time the lease is taken anew (and stays while its holder renews it in time);
/// `None` when another node holds it.
pub async fn take_lease<C: ConnectionTrait>(
    db: &C,
    me: &Instance,
    ttl: Duration,
) -> Result<Option<u64>, DbErr> {
    let sql = "UPDATE cluster_lease SET \
                   fence = CASE WHEN holder_instance = $2 AND expires_at > now() THEN fence ELSE fence + 1 END, \
                   holder = $1, holder_instance = $2, \
                   expires_at = now() + $3 * interval '1 second' \
               WHERE id = 1 AND (holder_instance IS NULL OR holder_instance = $2 OR expires_at <= now()) \
               RETURNING fence";
    let values = [me.node.as_str().into(), me.run.as_str().into(), seconds(ttl)];
    let row = db.query_one_raw(statement(sql, values)).await?;
    row.map(|row| row.try_get_by_index::<i64>(0).map(super::changes::from_db)).transpose()
}

/// The node holding the election lease now, if its time has not run out.
pub async fn lease_holder<C: ConnectionTrait>(db: &C) -> Result<Option<String>, DbErr> {
    let row = db
        .query_one_raw(statement("SELECT holder FROM cluster_lease WHERE id = 1 AND expires_at > now()", []))
        .await?;
    Ok(row.map(|row| row.try_get_by_index::<Option<String>>(0)).transpose()?.flatten())
}

/// Inside a transaction: whether `me` still holds the lease under `fence`, its time not run
/// out. The row stays share-locked until the transaction ends, so the lease cannot change hands
/// before this transaction commits: a write made after this check is fenced.
pub async fn holds_lease<C: ConnectionTrait>(txn: &C, run: &str, fence: u64) -> Result<bool, DbErr> {
    let sql = "SELECT 1 FROM cluster_lease \
               WHERE id = 1 AND holder_instance = $1 AND fence = $2 AND expires_at > now() FOR SHARE";
    let row = txn.query_one_raw(statement(sql, [run.into(), super::changes::to_db(fence).into()])).await?;
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

/// Posts `bodies` on the nodes' bus, in order, in one statement: the counter row is locked
/// until it commits, so messages are numbered gapless and in commit order. Returns the number
/// of the last one.
pub async fn post<C: ConnectionTrait>(db: &C, bodies: &[String]) -> Result<u64, DbErr> {
    let sql = "WITH head AS ( \
                   UPDATE cluster_bus_head SET seq = seq + json_array_length($1::json) WHERE id = 1 \
                   RETURNING seq - json_array_length($1::json) AS before), \
               posted AS ( \
                   INSERT INTO cluster_bus (seq, body) \
                   SELECT head.before + body.n, body.text \
                   FROM head, json_array_elements_text($1::json) WITH ORDINALITY AS body(text, n) \
                   RETURNING seq) \
               SELECT pg_notify($2, ''), COALESCE(MAX(seq), 0) FROM posted";
    let bodies = serde_json::to_string(bodies).map_err(|err| DbErr::Custom(err.to_string()))?;
    let row = db
        .query_one_raw(statement(sql, [bodies.into(), BUS_CHANNEL.into()]))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the bus post returned nothing".into()))?;
    Ok(super::changes::from_db(row.try_get_by_index::<i64>(1)?))
}

/// The newest message on the bus.
pub async fn bus_head<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    one_seq(db, statement("SELECT seq FROM cluster_bus_head WHERE id = 1", []), "cluster_bus_head").await
}

/// Up to `limit` messages after `after`, oldest first.
pub async fn bus_after<C: ConnectionTrait>(
    db: &C,
    after: u64,
    limit: u64,
) -> Result<Vec<(u64, String)>, DbErr> {
    let sql = "SELECT seq, body FROM cluster_bus WHERE seq > $1 ORDER BY seq LIMIT $2";
    let rows = db
        .query_all_raw(statement(
            sql,
            [super::changes::to_db(after).into(), super::changes::to_db(limit).into()],
        ))
        .await?;
    rows.iter()
        .map(|row| Ok((super::changes::from_db(row.try_get_by_index::<i64>(0)?), row.try_get_by_index(1)?)))
        .collect()
}

/// Deletes bus messages posted more than `age` ago (every node has read them long since).
pub async fn prune_bus<C: ConnectionTrait>(db: &C, age: Duration) -> Result<u64, DbErr> {
    let sql = "DELETE FROM cluster_bus WHERE posted_at < now() - $1 * interval '1 second'";
    Ok(db.execute_raw(statement(sql, [seconds(age)])).await?.rows_affected())
}
