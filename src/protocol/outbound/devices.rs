//! What the server sends about sessions, devices and elections (sections 3 and 4).

use serde::Serialize;

use super::{Kind, Message, message};

/// The reply to `ping`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Pong {}

/// The reply to a message with an `id` that the seeds give no reply to, once it is durable.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Ack {
    pub seq: u64,
}

/// The reply to `connect`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Connected<'a> {
    pub success: bool,
    pub message: &'a str,
    pub session_id: &'a str,
    pub last_seq: u64,
    pub epoch: &'a str,
}

/// Sent after `connected` (document 000's flow).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectionStatus {
    pub status: &'static str,
    pub connection_quality: &'static str,
    pub latency_ms: Option<u64>,
    pub active_devices: usize,
}

/// A resuming client whose history is not here: it must do a full sync.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResyncRequired<'a> {
    pub epoch: &'a str,
    pub head_seq: u64,
    pub reason: &'a str,
}

/// The reply to `device_online`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceOnlineAck<'a> {
    pub status: &'static str,
    pub device_id: &'a str,
    pub role: &'static str,
    pub assigned_role: &'static str,
    pub current_master: Option<&'a str>,
    pub term: u64,
    pub sync_required: bool,
    pub last_seq: u64,
    pub epoch: &'a str,
    pub heartbeat_interval_ms: u64,
    pub message: String,
}

/// The reply to the legacy `register_device`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Registered<'a> {
    pub device_id: &'a str,
    pub role: &'static str,
}

/// The reply to `device_offline` and `device_shutdown`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceGoneAck<'a> {
    /// `device_shutdown_ack` when set, else `device_offline_ack`.
    #[serde(skip)]
    pub shutdown: bool,
    pub status: &'static str,
    pub device_id: &'a str,
    pub master_election_triggered: bool,
    pub message: String,
}

/// The reply to `heartbeat`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HeartbeatAck<'a> {
    pub device_id: &'a str,
    pub status: &'static str,
    pub server_time: String,
}

/// A candidate, as `master_election` lists it.
#[derive(Serialize, Clone, Debug, utoipa::ToSchema)]
pub struct CandidateView {
    pub device_id: String,
    pub priority: i32,
    pub capabilities: Vec<String>,
    pub last_seen: Option<String>,
}

/// `master_election`: an election has started.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ElectionStarted<'a> {
    pub election_id: &'a str,
    pub trigger_reason: &'static str,
    pub reason: &'static str,
    #[schema(value_type = Vec<CandidateView>)]
    pub candidates: &'a [CandidateView],
    pub term: u64,
}

/// `role_change`: a device's role is changing (to `master`: please confirm with
/// `role_change_ack`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RoleChange<'a> {
    pub device_id: &'a str,
    pub new_role: &'static str,
    pub previous_role: &'static str,
    pub reason: &'static str,
    pub election_id: &'a str,
    pub term: u64,
}

/// `master_elected`. Read back too, as nodes pass an election's outcome to each other.
#[derive(Serialize, Clone, Debug, utoipa::ToSchema)]
pub struct MasterElected {
    pub new_master_id: String,
    pub new_master_name: Option<String>,
    pub previous_master: Option<String>,
    pub previous_master_id: Option<String>,
    pub election_id: String,
    pub election_reason: &'static str,
    pub election_timestamp: String,
    pub election_method: &'static str,
    pub devices_participating: usize,
    pub term: u64,
}

impl<'de> serde::Deserialize<'de> for MasterElected {
    /// Reads it back, with the reason and the method as the names this server gives them.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Text {
            new_master_id: String,
            new_master_name: Option<String>,
            previous_master: Option<String>,
            previous_master_id: Option<String>,
            election_id: String,
            election_reason: String,
            election_timestamp: String,
            election_method: String,
            devices_participating: usize,
            term: u64,
        }
        let t = Text::deserialize(d)?;
        let name = |text: &str| {
            crate::domain::election::Reason::known_name(text).ok_or_else(|| {
                serde::de::Error::custom(format!("unknown election reason or method {text:?}"))
            })
        };
        Ok(Self {
            election_reason: name(&t.election_reason)?,
            election_method: name(&t.election_method)?,
            new_master_id: t.new_master_id,
            new_master_name: t.new_master_name,
            previous_master: t.previous_master,
            previous_master_id: t.previous_master_id,
            election_id: t.election_id,
            election_timestamp: t.election_timestamp,
            devices_participating: t.devices_participating,
            term: t.term,
        })
    }
}

message! {
    Pong => Pong,
    Ack => Ack,
    Connected<'a> => Connected,
    ConnectionStatus => ConnectionStatus,
    ResyncRequired<'a> => ResyncRequired,
    DeviceOnlineAck<'a> => DeviceOnlineAck,
    Registered<'a> => Registered,
    HeartbeatAck<'a> => HeartbeatAck,
    ElectionStarted<'a> => MasterElection,
    RoleChange<'a> => RoleChange,
    MasterElected => MasterElected,
}

impl Message for DeviceGoneAck<'_> {
    fn kind(&self) -> Kind {
        if self.shutdown { Kind::DeviceShutdownAck } else { Kind::DeviceOfflineAck }
    }
}
