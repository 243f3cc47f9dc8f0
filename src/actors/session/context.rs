//! What a session may use, and nothing more: the settings it runs by, the read handle, the
//! actors it talks to and the log's facts. Built once at start (`SessionContext`), shared by
//! every session; and the admission gate that bounds how many sessions are open at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix::Addr;
use sea_orm::DatabaseConnection;

use crate::actors::broadcast::{Broadcast, PublishedSeq};
use crate::actors::election::Election;
use crate::actors::persistence::{LogFloor, Persistence};
use crate::actors::registry::Registry;
use crate::metrics::Metrics;
use crate::settings::{HeartbeatSettings, LimitSettings, SyncSettings};

/// A session's view of the server.
pub struct SessionContext {
    pub limits: LimitSettings,
    pub heartbeat: HeartbeatSettings,
    pub sync: SyncSettings,
    /// For reads (catch-up, sync answers); every write goes through `persistence`.
    pub db: DatabaseConnection,
    /// The change log's epoch.
    pub epoch: String,
    pub registry: Addr<Registry>,
    pub broadcast: Addr<Broadcast>,
    pub persistence: Addr<Persistence>,
    pub election: Addr<Election>,
    /// The newest `seq` handed to the sessions.
    pub published: PublishedSeq,
    /// What retention has pruned.
    pub floor: LogFloor,
    pub metrics: Arc<Metrics>,
    /// The reads that answer `sync_request`s under way, server-wide: a few at once, so that
    /// they cannot take the whole read pool.
    pub sync_reads: Arc<tokio::sync::Semaphore>,
    /// Every session's queue together (`limits.total_queue_bytes`).
    pub queue_budget: Arc<crate::actors::outbox::QueueBudget>,
    /// Who a token speaks as (a Socket.IO CONNECT's, a `refresh`'s), or `None`.
    pub authenticate: super::Authenticate,
    /// How long past its JWT's `exp` a session may stay open to send a new one.
    pub token_refresh: std::time::Duration,
    /// Faults the tests arm.
    #[cfg(feature = "fault-injection")]
    pub faults: Arc<crate::faults::Faults>,
}

/// Admission of sessions: at most `limits.max_connections` at once.
#[derive(Debug)]
pub struct ConnectionSlots {
    open: AtomicUsize,
    max: usize,
}

/// One admitted session; frees its slot when dropped (with the session).
#[derive(Debug)]
pub struct ConnectionSlot(Arc<ConnectionSlots>);

impl ConnectionSlots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { open: AtomicUsize::new(0), max })
    }

    /// Takes a slot, or `None` when all are taken.
    pub fn try_acquire(self: &Arc<Self>) -> Option<ConnectionSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1))
            .ok()
            .map(|_| ConnectionSlot(Arc::clone(self)))
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}
