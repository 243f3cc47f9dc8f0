//! What a session may use, and nothing more: the settings it runs by, the read handle, the
//! actors it talks to and the log's facts. Built once at start (`SessionContext`), shared by
//! every session; and the admission gate that bounds how many sessions are open at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

/// Admission of sessions: at most `max` at once (`limits.max_connections`), and, for a pool
/// limited per address (sessions not yet joined: `limits.max_anonymous_per_address`), at most so
/// many from one client address.
#[derive(Debug)]
pub struct ConnectionSlots {
    open: AtomicUsize,
    max: usize,
    per_address: Option<PerAddress>,
}

#[derive(Debug)]
struct PerAddress {
    max: usize,
    /// Loopback (this machine's own tools) is not counted.
    exempt_loopback: bool,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted session; frees its slot when dropped (with the session).
#[derive(Debug)]
pub struct ConnectionSlot {
    pool: Arc<ConnectionSlots>,
    /// The address it counts against, in a pool limited per address.
    address: Option<IpAddr>,
}

impl ConnectionSlots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { open: AtomicUsize::new(0), max, per_address: None })
    }

    /// A pool that also holds each client address to `per_address` slots (loopback aside
    /// when `exempt_loopback`).
    pub fn per_address(max: usize, per_address: usize, exempt_loopback: bool) -> Arc<Self> {
        let per_address = PerAddress { max: per_address, exempt_loopback, held: Mutex::default() };
        Arc::new(Self { open: AtomicUsize::new(0), max, per_address: Some(per_address) })
    }

    /// Takes a slot, or `None` when all are taken.
    pub fn try_acquire(self: &Arc<Self>) -> Option<ConnectionSlot> {
        self.try_acquire_for(None)
    }

    /// Takes a slot for a client at `address`, or `None` when all are taken or that address
    /// holds its share.
    pub fn try_acquire_for(self: &Arc<Self>, address: Option<IpAddr>) -> Option<ConnectionSlot> {
        let counted = match (&self.per_address, address) {
            (Some(limit), Some(ip)) if !(limit.exempt_loopback && ip.is_loopback()) => Some((limit, ip)),
            _ => None,
        };
        if let Some((limit, ip)) = counted {
            let mut held = limit.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = held.entry(ip).or_default();
            if *count >= limit.max {
                return None;
            }
            *count += 1;
        }
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1))
            .is_ok();
        if !taken {
            if let Some((limit, ip)) = counted {
                limit.give_back(ip);
            }
            return None;
        }
        Some(ConnectionSlot { pool: Arc::clone(self), address: counted.map(|(_, ip)| ip) })
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl PerAddress {
    /// One slot of `ip` is free again (an address holding none is forgotten).
    fn give_back(&self, ip: IpAddr) {
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = held.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&ip);
            }
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let (Some(limit), Some(ip)) = (&self.pool.per_address, self.address) {
            limit.give_back(ip);
        }
        self.pool.open.fetch_sub(1, Ordering::AcqRel);
    }
}
