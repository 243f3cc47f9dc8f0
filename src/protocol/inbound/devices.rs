//! Devices and elections (section 4): `device_online`/`register_device`, `device_offline`,
//! `device_shutdown`, `heartbeat`, `master_election`, `role_change_ack`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::super::error::WireError;
use super::ClientEvent;
use super::fields::*;
use crate::domain::election::Role;

/// `device_online` (or `register_device`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
pub struct DeviceOnline {
    pub device_id: String,
    pub name: Option<String>,
    pub device_type: Option<String>,
    /// The role the device asks for; the server decides (a device that arrives while there is a
    /// master is a client).
    pub role: Option<Role>,
    pub priority: Option<i32>,
    pub capabilities: Option<Vec<String>>,
    pub last_seq: Option<u64>,
    pub epoch: Option<String>,
    /// Sent as the legacy `register_device`, answered by `registered`.
    pub legacy: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct DeviceOnlineMsg {
    device_id: WireId,
    device_name: Option<String>,
    device_type: Option<String>,
    role: Option<Role>,
    priority: Option<Priority>,
    capabilities: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_number")]
    last_seq: Option<u64>,
    epoch: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct DeviceOfflineMsg {
    device_id: WireId,
    reason: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct DeviceShutdownMsg {
    device_id: WireId,
    reason: Option<String>,
    shutdown_reason: Option<String>,
    #[serde(default, deserialize_with = "opt_number")]
    pending_operations: Option<u64>,
}

/// The fields of a heartbeat are checked for their types; only `device_id` is used.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct HeartbeatMsg {
    device_id: WireId,
    status: Option<String>,
    uptime_seconds: Option<f64>,
    memory_usage: Option<f64>,
    cpu_usage: Option<f64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct MasterElectionMsg {
    reason: Option<String>,
    initiated_by: Option<WireId>,
    preferred_master: Option<WireId>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct RoleChangeAckMsg {
    device_id: WireId,
    new_role: Role,
    status: Option<String>,
    election_id: Option<String>,
}

/// The device and election events; `None` for another kind.
pub(super) fn event(
    kind: &str,
    value: &Value,
    _map: &Map<String, Value>,
) -> Result<Option<ClientEvent>, WireError> {
    let event = match kind {
        "device_online" | "register_device" => {
            let m: DeviceOnlineMsg = parse(value)?;
            let capabilities = m.capabilities;
            if capabilities.as_ref().is_some_and(|c| c.len() > MAX_ITEMS) {
                return Err(WireError::invalid(
                    Some("capabilities"),
                    None,
                    format!("at most {MAX_ITEMS} items"),
                ));
            }
            ClientEvent::DeviceOnline(DeviceOnline {
                device_id: m.device_id.0,
                name: m.device_name,
                device_type: m.device_type,
                role: m.role,
                priority: m.priority.map(|p| p.0),
                capabilities,
                last_seq: m.last_seq,
                epoch: m.epoch,
                legacy: kind == "register_device",
            })
        }
        "device_offline" => {
            let m: DeviceOfflineMsg = parse(value)?;
            ClientEvent::DeviceOffline { device_id: m.device_id.0, reason: m.reason }
        }
        "device_shutdown" => {
            let m: DeviceShutdownMsg = parse(value)?;
            ClientEvent::DeviceShutdown {
                device_id: m.device_id.0,
                reason: m.reason.or(m.shutdown_reason),
                pending_operations: m.pending_operations,
            }
        }
        "heartbeat" => {
            let m: HeartbeatMsg = parse(value)?;
            ClientEvent::Heartbeat { device_id: m.device_id.0 }
        }
        "master_election" => {
            let m: MasterElectionMsg = parse(value)?;
            ClientEvent::MasterElection {
                reason: m.reason,
                initiated_by: m.initiated_by.map(|w| w.0),
                preferred_master: m.preferred_master.map(|w| w.0),
            }
        }
        "role_change_ack" => {
            let m: RoleChangeAckMsg = parse(value)?;
            let accepted = match m.status.as_deref() {
                None | Some("success") => true,
                Some("error") => false,
                Some(_) => {
                    return Err(WireError::invalid(Some("status"), None, "must be \"success\" or \"error\""));
                }
            };
            ClientEvent::RoleChangeAck {
                device_id: m.device_id.0,
                new_role: m.new_role,
                accepted,
                election_id: m.election_id,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}
