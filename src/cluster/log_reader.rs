//! Delivery from the shared log: a task that reads the changes after the last one this node
//! delivered and hands them to the Broadcast actor, which merges them with this node's own in
//! `seq` order.
//!
//! It reads when Postgres notifies `LOG_CHANNEL` (every commit that logged changes does), when
//! the Broadcast actor finds a change missing, when the notification connection was lost and is
//! back, and every `POLL` whatever happened. A notification is only a hint: LISTEN loses what is
//! sent while its connection is down, and the log is always read from where delivery stands.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};

use crate::actors::broadcast::{Broadcast, LogRows, PublishedSeq};
use crate::store;
use crate::store::cluster::LOG_CHANNEL;

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

/// What woke the reader.
enum Wake {
    Notified,
    /// The notification connection broke (it reconnects on its next use), or never connected.
    Lost(Option<String>),
    Asked,
    Timer,
    Stopping,
}

/// Starts the reader: `url` is the database's (for its own LISTEN connection), `db` the pool it
/// reads with, `read_now` the Broadcast actor's request to read at once.
pub fn spawn(
    url: String,
    db: DatabaseConnection,
    broadcast: Addr<Broadcast>,
    published: PublishedSeq,
    read_now: Arc<Notify>,
    mut stopping: watch::Receiver<bool>,
) {
    actix::spawn(async move {
        let mut listener = Listening(None);
        loop {
            if listener.0.is_none() {
                listener.0 = listen(&url).await;
            }
            let wake = tokio::select! {
                got = next_notification(&mut listener.0) => got,
                _ = read_now.notified() => Wake::Asked,
                _ = tokio::time::sleep(POLL) => Wake::Timer,
                _ = stopping.wait_for(|stopped| *stopped) => Wake::Stopping,
            };
            match wake {
                Wake::Stopping => return,
                Wake::Lost(error) => {
                    tracing::warn!(error, "the log's notifications were interrupted; reading the log");
                    if error.is_some() {
                        listener.0 = None;
                    }
                }
                Wake::Notified | Wake::Asked | Wake::Timer => {}
            }
            if !read(&db, &broadcast, &published).await {
                return;
            }
        }
    });
}

async fn listen(url: &str) -> Option<PgListener> {
    let attempt = async {
        let mut listening = Listening(Some(PgListener::connect(url).await?));
        if let Some(listener) = &mut listening.0 {
            listener.listen(LOG_CHANNEL).await?;
        }
        Ok::<_, sea_orm::sqlx::Error>(listening.0.take())
    };
    match attempt.await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!(%err, "cannot listen for the log's notifications; reading it on a timer");
            None
        }
    }
}

async fn next_notification(listener: &mut Option<PgListener>) -> Wake {
    match listener {
        None => std::future::pending().await,
        Some(listener) => match listener.try_recv().await {
            Ok(Some(_)) => Wake::Notified,
            Ok(None) => Wake::Lost(None),
            Err(err) => Wake::Lost(Some(err.to_string())),
        },
    }
}

/// Reads every change after the last one delivered and hands them over, a page at a time.
/// Returns false once the Broadcast actor is gone.
async fn read(db: &DatabaseConnection, broadcast: &Addr<Broadcast>, published: &PublishedSeq) -> bool {
    let mut after = published.get();
    loop {
        let rows = match store::changes::frames_after(db, after, PAGE).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(%err, after, "the change log could not be read; trying again");
                return true;
            }
        };
        let Some(last) = rows.last().map(|row| row.seq) else { return true };
        let full = rows.len() as u64 == PAGE;
        if broadcast.send(LogRows { rows }).await.is_err() {
            return false;
        }
        if !full {
            return true;
        }
        after = last;
    }
}
