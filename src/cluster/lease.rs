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

/// Renews this node's liveness and the lease until `stopping`; the receiver tells whether (and
/// under which fencing number) this node holds the lease.
pub fn spawn(
    db: DatabaseConnection,
    node: Node,
    mut stopping: watch::Receiver<bool>,
) -> watch::Receiver<Option<Held>> {
    let (held, receiver) = watch::channel::<Option<Held>>(None);
    actix::spawn(async move {
        let every = node.lease_ttl / 3;
        loop {
            let asked = Instant::now();
            let renewed = async {
                cluster::renew_node(&db, &node.id, node.lease_ttl).await?;
                cluster::take_lease(&db, &node.id, node.lease_ttl).await
            };
            match renewed.await {
                Ok(fence) => {
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
                _ = stopping.wait_for(|stopped| *stopped) => return,
            }
        }
    });
    receiver
}
