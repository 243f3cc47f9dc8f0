//! The fleet as the server records it: devices, elections, the audit trail and each device's
//! sync state, and the writes that change them. Plain values: the Election actor and the
//! sessions make them, the Persistence actor applies them, the store reads them back.

use chrono::{DateTime, Utc};

pub use super::election::Role;
/// Where a device's sync stands (defined with its column, see `entity::enums`).
pub use entity::enums::SyncStatus;

/// A device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub device_id: String,
    pub name: Option<String>,
    pub device_type: Option<String>,
    pub priority: i32,
    pub capabilities: Vec<String>,
    /// Written only through `FleetWrite::Master`.
    pub role: Role,
    pub is_active: bool,
    pub last_seen: Option<DateTime<Utc>>,
}

/// A successful election, as `master_election_logs` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionLogEntry {
    pub election_id: String,
    pub term: u64,
    pub previous_master_id: Option<String>,
    pub new_master_id: String,
    pub reason: &'static str,
    pub method: &'static str,
    pub at: DateTime<Utc>,
    pub devices_participating: usize,
}

/// An audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub event_type: String,
    pub operation: String,
    /// `success` or `error`.
    pub status: &'static str,
    pub device_id: Option<String>,
    pub details: String,
}

impl AuditEntry {
    pub fn success(event_type: &str, operation: &str, device_id: Option<&str>, details: &str) -> Self {
        Self::new("success", event_type, operation, device_id, details)
    }

    pub fn error(event_type: &str, operation: &str, device_id: Option<&str>, details: &str) -> Self {
        Self::new("error", event_type, operation, device_id, details)
    }

    fn new(
        status: &'static str,
        event_type: &str,
        operation: &str,
        device_id: Option<&str>,
        details: &str,
    ) -> Self {
        Self {
            event_type: event_type.to_owned(),
            operation: operation.to_owned(),
            status,
            device_id: device_id.map(str::to_owned),
            details: details.to_owned(),
        }
    }
}

/// The election terms the database keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Terms {
    /// The current master's term (0 before the first election).
    pub current: u64,
    /// The highest term a device was asked to be master in, elected or not: the next election
    /// asks in a term above it.
    pub spent: u64,
}

/// One fleet write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetWrite {
    /// Several nodes over one database: go on only while this run (`run`) of a node holds the
    /// election lease under `fence`; otherwise write nothing of this batch of fleet writes.
    Fenced {
        run: String,
        fence: u64,
    },
    /// Insert a device, or update its name, type, priority, capabilities and liveness.
    Device(DeviceRecord),
    /// A device became active or inactive.
    Activity {
        device_id: String,
        active: bool,
        last_seen: DateTime<Utc>,
    },
    /// When devices were last heard from.
    Seen(Vec<(String, DateTime<Utc>)>),
    /// Makes this device the master and every other one a client (`None`: no master).
    Master(Option<String>),
    /// The election term (the master's).
    Term(u64),
    /// An election asks a device to be master in this term: no device is ever asked in it
    /// again, whatever node runs the next election (kept as the highest such term).
    TermSpent(u64),
    /// A successful election.
    ElectionLog(ElectionLogEntry),
    Audit(AuditEntry),
    /// A device's sync state.
    SyncState(SyncStateWrite),
    /// A device retired: its record, role and sync state go.
    Retire(String),
    /// A credential issued to one device.
    TokenIssued(IssuedToken),
    /// Every credential of this device revoked.
    TokensRevoked(String),
}

/// A credential issued to one device, as stored: a hash of its secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub id: String,
    pub device_id: String,
    pub secret_hash: String,
    /// Who issued it (the admin token's name, or `cli`).
    pub issued_by: String,
}

/// A change to a device's sync state; fields left `None` stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStateWrite {
    pub device_id: String,
    /// `pending`, `syncing`, `synced` or `error`.
    pub status: Option<SyncStatus>,
    /// The last `seq` the device confirmed.
    pub confirmed_seq: Option<u64>,
    pub synced_at: Option<DateTime<Utc>>,
    /// The last error's message, as the device sent it.
    pub error: Option<String>,
    /// The last error's type, as the device sent it.
    pub error_type: Option<String>,
    /// Count it in `error_count` (a `sync_error`).
    pub count_error: bool,
    /// Clears the last error (after a successful sync).
    pub clear_error: bool,
    /// The pending count the device reports itself (`PUT /sync/state`).
    pub reported_pending: Option<i64>,
}
