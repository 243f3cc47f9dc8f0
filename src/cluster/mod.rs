//! Several nodes over one Postgres database (PROTOCOL.md section 11; `docs/CLUSTER.md`).
//!
//! With a `postgres://` URL every node is a full server and this module is what they share:
//! - the change log is numbered under a lock (`store::log::SharedWriter`), so `seq` is gapless
//!   and in commit order across nodes;
//! - every node delivers from the log (`reader`): a notification, a gap, a reconnect or a
//!   short timer each mean "read the log after the last change delivered here", so a missed
//!   notification costs latency, never a change;
//! - each node renews its liveness and competes for the election lease (`lease`), whose
//!   fencing number grows each time it changes hands;
//! - the node holding the lease runs the site's elections, and hears of and speaks to the
//!   devices on every node over the nodes' bus (`bus`), read like the log.

pub mod bus;
pub mod lease;
pub mod reader;

use std::time::Duration;

use crate::settings::ClusterSettings;
use crate::store::cluster::Instance;

/// This node, among the nodes sharing the database.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    /// This run of the process (a node restarted under the same name is another run).
    pub run: String,
    /// How long its liveness and its election lease last unless renewed.
    pub lease_ttl: Duration,
}

impl Node {
    /// The node the settings name; without a name, the host name and the process id.
    pub fn from_settings(settings: &ClusterSettings) -> Self {
        let id = match settings.node_id.trim() {
            "" => format!("{}-{}", host_name(), std::process::id()),
            id => id.to_owned(),
        };
        Self { id, run: uuid::Uuid::new_v4().to_string(), lease_ttl: settings.lease_ttl() }
    }

    /// This run, as the shared tables name it.
    pub fn instance(&self) -> Instance {
        Instance { node: self.id.clone(), run: self.run.clone() }
    }

    /// Where the bus addresses this run (its answers).
    pub fn address(&self) -> String {
        self.instance().address()
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "node".into())
}
