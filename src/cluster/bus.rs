//! The nodes' bus: messages between the Election actors of the nodes sharing a database, as rows
//! of `cluster_bus` (numbered gapless, in commit order; every node reads all of them, in order).
//!
//! Every node posts what its sessions and REST callers tell the election (`Posted::Input`); the
//! node holding the election lease feeds those to its elector and posts what the elector asks
//! for: frames for sessions on every node, answers to the node that asked, and the fleet as it
//! stands. A new lease holder starts with a roll call, which every node answers with its
//! devices' sessions and the inputs still waiting for an answer.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::actors::election::{Answer, Departure, FleetView, Request};
use crate::protocol::inbound;
use crate::store;

/// A message on the bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Posted {
    /// For the lease holder's elector, from the node run at `from` (its bus address).
    Input { from: String, input: Forwarded },
    /// A frame for every session on every node but those in `except`: from the leader under
    /// `fence`, or from any node's writer (a notice after a change) without one.
    Notify { fence: Option<u64>, frame: String, except: Vec<Uuid> },
    /// A frame for one session, wherever it is (from the leader under `fence`, as below).
    SendTo { fence: u64, session: Uuid, frame: String },
    /// Close a session, wherever it is.
    Close { fence: u64, session: Uuid, code: u16 },
    /// The answer to the input `reply` of the node run at `to`.
    Reply { fence: u64, to: String, reply: u64, answer: Answer },
    /// The fleet as the lease holder's elector sees it, for the other nodes' answers.
    Fleet { fence: u64, view: FleetView },
    /// A new lease holder (under `fence`) asks every node for its devices and unanswered inputs.
    RollCall { fence: u64 },
}

impl Posted {
    /// The fencing number of the leader that posted it, for what only a leader posts.
    pub fn fence(&self) -> Option<u64> {
        match self {
            Self::Notify { fence, .. } => *fence,
            Self::SendTo { fence, .. }
            | Self::Close { fence, .. }
            | Self::Reply { fence, .. }
            | Self::Fleet { fence, .. } => Some(*fence),
            Self::Input { .. } | Self::RollCall { .. } => None,
        }
    }
}

/// What a node's sessions and callers tell the election.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Forwarded {
    Online {
        session: Uuid,
        info: inbound::DeviceOnline,
        reply: u64,
    },
    Gone {
        device_id: String,
        session: Uuid,
        how: Departure,
        note: Option<String>,
        reply: Option<u64>,
    },
    Seen {
        device_id: String,
        session: Uuid,
    },
    RoleChangeAck {
        device_id: String,
        session: Uuid,
        accepted: bool,
        election_id: Option<String>,
    },
    Request {
        request: Request,
        reply: u64,
    },
    Register {
        device_id: String,
        priority: Option<i32>,
        capabilities: Option<Vec<String>>,
        reply: u64,
    },
    Retire {
        device_id: String,
        reply: u64,
    },
    /// The answer to a roll call: this session of this device is open here.
    Present {
        session: Uuid,
        info: inbound::DeviceOnline,
    },
}

/// Posts messages in the order they are handed over, from a task of its own, a batch per
/// statement. A post that fails is tried again a few times, then dropped with a warning: what
/// it carried is either asked again (unanswered inputs, at the next roll call) or overtaken by
/// what follows.
#[derive(Clone)]
pub struct Poster(mpsc::UnboundedSender<String>);

/// How often a failed post is tried before it is dropped, and the wait between tries.
const POST_TRIES: u32 = 20;
const POST_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

impl Poster {
    pub fn spawn(db: sea_orm::DatabaseConnection) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        actix::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < 256
                    && let Ok(next) = rx.try_recv()
                {
                    batch.push(next);
                }
                let mut tries = 0;
                while let Err(err) = store::cluster::post(&db, &batch).await {
                    tries += 1;
                    if tries >= POST_TRIES {
                        tracing::warn!(%err, messages = batch.len(), "bus messages dropped");
                        break;
                    }
                    tokio::time::sleep(POST_RETRY).await;
                }
            }
        });
        Self(tx)
    }

    pub fn post(&self, message: &Posted) {
        match serde_json::to_string(message) {
            Ok(body) => {
                let _ = self.0.send(body);
            }
            Err(err) => tracing::error!(%err, "a bus message could not be encoded"),
        }
    }
}
