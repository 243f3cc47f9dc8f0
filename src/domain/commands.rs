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
    /// An event of a device's offline queue (`POST /sync/push`): applied at most once per
    /// device and event id.
    Pushed { device_id: String, event_id: String, command: Box<Command> },
    /// A fault for tests to inject (`fault-injection` builds only).
    #[cfg(feature = "fault-injection")]
    Fault(Fault),
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
