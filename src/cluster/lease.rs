//! This node's liveness and its part in the election lease: every third of `lease_ttl` it says
//! it is alive (`cluster_nodes`) and takes or renews the election lease if it is free, expired
//! or already its own. The database's clock decides who holds the lease; this node believes it
//! holds it only until `lease_ttl` after it last asked for it (`Held::until`, on its own
//! monotonic clock, so it gives the lease up in its mind no later than the database does), and
//! every election write is checked against the lease and its fencing number inside its own
//! transaction in any case.

use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use super::Node;
use crate::store::cluster;

/// The election lease as this node holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Its fencing number.
    pub fence: u64,
    /// Until when this node may count on it.
    pub until: Instant,
}

impl Held {
    pub fn current(&self) -> bool {
        Instant::now() < self.until
    }
}

/// What the lease task tells the node.
#[derive(Clone)]
pub struct Lease {
    /// Whether (and under which fencing number) this node holds the election lease.
    pub held: watch::Receiver<Option<Held>>,
    /// Moves on each time this node's liveness is renewed after it had run out (or for the first
    /// time): the other nodes may have counted its devices as dropped meanwhile.
    pub rejoined: watch::Receiver<u64>,
    /// Turns true once the node, stopping, has left: it is no longer alive and holds no lease.
    pub left: watch::Receiver<bool>,
}

/// Renews this node's liveness and the lease until `stopping`.
pub fn spawn(db: DatabaseConnection, node: Node, mut stopping: watch::Receiver<bool>) -> Lease {
    let (held, receiver) = watch::channel::<Option<Held>>(None);
    let (rejoined, rejoins) = watch::channel(0u64);
    let (left, has_left) = watch::channel(false);
    actix::spawn(async move {
        let every = node.lease_ttl / 3;
        let me = node.instance();
        let mut alive_until: Option<Instant> = None;
        loop {
            let asked = Instant::now();
            let renewed = async {
                cluster::renew_node(&db, &me, node.lease_ttl).await?;
                cluster::take_lease(&db, &me, node.lease_ttl).await
            };
            match renewed.await {
                Ok(fence) => {
                    if alive_until.is_none_or(|until| Instant::now() >= until) {
                        rejoined.send_modify(|n| *n += 1);
                    }
                    alive_until = Some(asked + node.lease_ttl);
                    let now = fence.map(|fence| Held { fence, until: asked + node.lease_ttl });
                    let before: Option<Held> = *held.borrow();
                    if before.map(|h| h.fence) != now.map(|h| h.fence) {
                        match now {
                            Some(h) => {
                                tracing::info!(node = %node.id, fence = h.fence, "holding the election lease")
                            }
                            None if before.is_some() => {
                                tracing::warn!(node = %node.id, "lost the election lease")
                            }
                            None => {}
                        }
                    }
                    held.send_replace(now);
                }
                Err(err) => {
                    // The last renewal's `until` still stands; past it the lease is not counted on.
                    tracing::warn!(node = %node.id, %err, "the node's lease could not be renewed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every.max(Duration::from_millis(10))) => {}
                _ = stopping.wait_for(|stopped| *stopped) => break,
            }
        }
        // Here, so that no renewal can follow it.
        held.send_replace(None);
        if let Err(err) = cluster::leave(&db, &me).await {
            tracing::warn!(%err, "could not tell the other nodes that this one stops");
        }
        left.send_replace(true);
    });
    Lease { held: receiver, rejoined: rejoins, left: has_left }
}
