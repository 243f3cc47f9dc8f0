//! Reading what the nodes share: a task that reads the changes after the last one this node
//! delivered and hands them to the Broadcast actor (which merges them with this node's own in
//! `seq` order), and the bus messages after the last one read, for the Election actor.
//!
//! It reads the log when Postgres notifies `LOG_CHANNEL` (every commit that logged changes
//! does) or the Broadcast actor finds a change missing, the bus when `BUS_CHANNEL` is notified,
//! and both when the notification connection was lost and is back and every `POLL` whatever
//! happened. A notification is only a hint: LISTEN loses what is sent while its connection is
//! down, and each is always read from where this node stands.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};

use super::bus::Posted;
use crate::actors::broadcast::{Broadcast, LogRows, PublishedSeq};
use crate::actors::election::{BusRows, Election};
use crate::store;
use crate::store::cluster::{BUS_CHANNEL, LOG_CHANNEL};

/// How often the log is read when nothing said to.
pub const POLL: Duration = Duration::from_millis(250);
/// Changes read at a time.
const PAGE: u64 = 1000;

/// The LISTEN connection. sqlx's listener hands its connection back on a task of its own when
/// dropped, which panics outside a Tokio runtime; when the reader is dropped with its runtime
/// (a process ending without a shutdown), the connection is left to close with the process.
struct Listening(Option<PgListener>);

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(listener) = self.0.take()
            && tokio::runtime::Handle::try_current().is_err()
        {
            std::mem::forget(listener);
        }
    }
}

/// Where the reader hands what it reads.
pub struct Readers {
    /// This node's run: its own commits' notifications are skipped (it delivers those itself).
    pub run: String,
    pub broadcast: Addr<Broadcast>,
    /// The newest change delivered here.
    pub published: PublishedSeq,
    /// The Broadcast actor's request to read the log at once.
    pub read_now: Arc<Notify>,
    pub election: Addr<Election>,
    /// The bus message this node starts after (the bus's head when it started).
    pub bus_from: u64,
}

/// Starts the readers: one task listens for notifications (`url` is the database's, for its own
/// LISTEN connection) and wakes one loop that reads the log and one that reads the bus, each
/// from `db`, so that neither waits for the other.
pub fn spawn(url: String, db: DatabaseConnection, to: Readers, stopping: watch::Receiver<bool>) {
    let Readers { run, broadcast, published, read_now, election, bus_from } = to;
    let bus_now = Arc::new(Notify::new());
    actix::spawn(listen_loop(url, run, Arc::clone(&read_now), Arc::clone(&bus_now), stopping.clone()));
    let log_db = db.clone();
    let mut log_stopping = stopping.clone();
    actix::spawn(async move {
        loop {
            tokio::select! {
                _ = read_now.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = log_stopping.wait_for(|stopped| *stopped) => return,
            }
            if !read(&log_db, &broadcast, &published).await {
                return;
            }
        }
    });
    let mut bus_stopping = stopping;
    actix::spawn(async move {
        let mut after = bus_from;
        loop {
            tokio::select! {
                _ = bus_now.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = bus_stopping.wait_for(|stopped| *stopped) => return,
            }
            match read_bus(&db, &election, after).await {
                Some(read) => after = read,
                None => return,
            }
        }
    });
}

/// Listens on both channels and wakes the readers: the log's for another node's commit, the
/// bus's for a message, both when the connection was lost (whatever was sent meanwhile).
async fn listen_loop(
    url: String,
    run: String,
    log_now: Arc<Notify>,
    bus_now: Arc<Notify>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut listener = Listening(None);
    loop {
        if listener.0.is_none() {
            listener.0 = listen(&url).await;
            // Whatever was sent before it listened.
            log_now.notify_one();
            bus_now.notify_one();
            if listener.0.is_none() {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => continue,
                    _ = stopping.wait_for(|stopped| *stopped) => return,
                }
            }
        }
        let Some(active) = &mut listener.0 else { continue };
        let got = tokio::select! {
            got = active.try_recv() => got,
            _ = stopping.wait_for(|stopped| *stopped) => return,
        };
        match got {
            Ok(Some(notification)) if notification.channel() == BUS_CHANNEL => bus_now.notify_one(),
            Ok(Some(notification)) => {
                if notification.payload() != run {
                    log_now.notify_one();
                }
            }
            Ok(None) => {
                tracing::warn!("the shared tables' notifications were interrupted; reading them");
                log_now.notify_one();
                bus_now.notify_one();
            }
            Err(err) => {
                tracing::warn!(%err, "lost the shared tables' notifications; listening again");
                listener.0 = None;
            }
        }
    }
}

async fn listen(url: &str) -> Option<PgListener> {
    let attempt = async {
        let mut listening = Listening(Some(PgListener::connect(url).await?));
        if let Some(listener) = &mut listening.0 {
            listener.listen_all([LOG_CHANNEL, BUS_CHANNEL]).await?;
        }
        Ok::<_, sea_orm::sqlx::Error>(listening.0.take())
    };
    match attempt.await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!(%err, "cannot listen for the shared tables' notifications; reading them on a timer");
            None
        }
    }
}

/// Reads every change after the last one delivered and hands them over, a page at a time.
/// Returns false once the Broadcast actor is gone.
async fn read(db: &DatabaseConnection, broadcast: &Addr<Broadcast>, published: &PublishedSeq) -> bool {
    let mut after = published.get();
    loop {
        let rows = match store::changes::frames_after(db, after, PAGE, usize::MAX).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(%err, after, "the change log could not be read; trying again");
                return true;
            }
        };
        let Some(last) = rows.last().map(|row| row.seq) else { return true };
        let full = rows.len() as u64 == PAGE;
        if broadcast.send(LogRows { after, rows }).await.is_err() {
            return false;
        }
        if !full {
            return true;
        }
        after = last;
    }
}

/// Reads every bus message after `after` and hands them to the Election actor, a page at a
/// time. Returns where it got to (`None` once the actor is gone).
async fn read_bus(db: &DatabaseConnection, election: &Addr<Election>, mut after: u64) -> Option<u64> {
    loop {
        let rows = match store::cluster::bus_after(db, after, PAGE).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(%err, after, "the nodes' bus could not be read; trying again");
                return Some(after);
            }
        };
        let Some(last) = rows.last().map(|(seq, _)| *seq) else { return Some(after) };
        let full = rows.len() as u64 == PAGE;
        let messages = rows
            .into_iter()
            .filter_map(|(seq, body)| match serde_json::from_str::<Posted>(&body) {
                Ok(message) => Some((seq, message)),
                Err(err) => {
                    tracing::warn!(%err, seq, "a bus message that this node cannot read was skipped");
                    None
                }
            })
            .collect();
        election.send(BusRows { messages }).await.ok()?;
        after = last;
        if !full {
            return Some(after);
        }
    }
}
