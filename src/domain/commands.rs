//! The changes a client can ask for, as the Persistence actor applies them: the one write
//! vocabulary of every transport (WebSocket events, REST, `/sync/push`).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::catalogue::CatalogueWrite;
use super::fleet::FleetWrite;
use super::records::Operation;
use super::station::StationCommand;

/// A change to make.
#[derive(Debug, Clone)]
pub enum Command {
    /// A cashier command on stations.
    Station(StationCommand),
    /// Replace a catalogue document.
    Catalogue(CatalogueWrite),
    /// Writes about the fleet (devices, roles, elections, sync states), together in one
    /// transaction. Not a logged change: it takes no `seq` and is not broadcast.
    Fleet(Vec<FleetWrite>),
    /// A write to a generic record (`data_update`, or a reported `sync_conflict`).
    Record(RecordWrite),
    /// A legacy critical event.
    Critical { device_id: String, event_type: String, payload: Value },
    /// A write its writer sent with an `id`: applied at most once per writer and id, on any
    /// transport; sent again, it is answered as it was the first time (`store::receipts`).
    Receipted { writer: Writer, id: String, command: Box<Command> },
    /// A fault for tests to inject (`fault-injection` builds only).
    #[cfg(feature = "fault-injection")]
    Fault(Fault),
}

/// Who sent a write, for its receipt: the same writer on every transport.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Writer {
    /// A registered device (a `/ws` or Socket.IO session, or its `POST /sync/push`).
    Device(String),
    /// A cashier that said `connect` with its `clientId` and registered no device.
    Client(String),
}

impl Writer {
    /// How it is stored: its kind and its id.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Self::Device(id) => ("device", id),
            Self::Client(id) => ("client", id),
        }
    }
}

/// Faults tests can inject into a batch.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The batch panics while it is being written.
    Panic,
}

/// A write to a generic record: `data_update`, or a client's own `sync_conflict` report.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordWrite {
    /// The device that wrote it.
    pub device: String,
    pub table: String,
    /// Canonical.
    pub record_id: String,
    pub operation: Operation,
    /// The object written; `None` for a delete.
    pub data: Option<Map<String, Value>>,
    pub base_version: Option<i64>,
    /// The client's time of the write (the message's `timestamp`), for last-writer-wins.
    pub at: Option<DateTime<Utc>>,
    /// A client's own conflict report (`sync_conflict`): always judged by the policy.
    pub reported: bool,
    /// The version the writer had (`local_version`); `None` for a report.
    pub local_version: Option<i64>,
}
