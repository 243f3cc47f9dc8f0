//! Client frames into typed events. Everything a client sends passes through `decode` (WebSocket)
//! or one of the `*_body` functions (REST bodies), which enforce the protocol's bounds and name
//! the offending top-level field in every `INVALID_PAYLOAD`.
//!
//! - `fields`: the bounds and the field types every event shares (one id validator).
//! - `devices`: devices and elections. `sync`: data and sync. `stations`: stations and orders,
//!   with the REST bodies that mirror them.
//! - here: the frame (its `id`, its `type`), the session events (`connect`, `ping`) and the
//!   dispatch to the families.

mod devices;
mod fields;
mod stations;
mod sync;
#[cfg(test)]
mod tests;

use serde::Deserialize;
use serde_json::{Map, Value};

pub use self::devices::DeviceOnline;
use self::fields::*;
pub use self::fields::{
    MAX_DEPTH, MAX_ID_CHARS, MAX_ITEMS, MAX_LIMIT, MAX_NUMBER, MAX_TEXT_CHARS, check_body_bounds, check_id,
    is_id, parse_body,
};
pub use self::stations::{
    CreateStationMsg, OrderMsg, OrderPatchMsg, OrdersMsg, StationPatchMsg, TransferTargetMsg,
    create_station_body, order_patch_body, place_orders_body, station_id_param, station_patch_body,
    transfer_body,
};
pub use self::sync::{
    DEFAULT_LATEST_LIMIT, DEFAULT_SYNC_LIMIT, DataRequest, RequestKind, SyncEvent, SyncRequest, SyncType,
};
use super::error::{ErrorCode, WireError};
use super::time;
use crate::domain::commands::Command;
use crate::domain::election::Role;
use crate::domain::station::StationCommand;

/// A decoded client message: its `id`, if it had one, and the event.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub id: Option<String>,
    pub event: ClientEvent,
}

/// A message that was refused, with the `id` to answer to when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub reply_to: Option<String>,
    pub error: WireError,
}

/// Every event a client may send.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `connect`: identifies the client and, with `last_seq`, resumes it.
    Connect(Connect),
    /// `ping`: answered by `pong`.
    Ping,
    /// `refresh`: a new token (a JWT) for the session before its current one expires.
    Refresh { token: String },
    /// A cashier command on stations (document 002).
    Station(StationCommand),
    /// `device_online`, or the legacy `register_device`: registers the session as a device.
    DeviceOnline(DeviceOnline),
    /// `device_offline`: the device is no longer a candidate; its session stays open.
    DeviceOffline { device_id: String, reason: Option<String> },
    /// `device_shutdown`: the device is going away.
    DeviceShutdown { device_id: String, reason: Option<String>, pending_operations: Option<u64> },
    /// `heartbeat`.
    Heartbeat { device_id: String },
    /// `master_election`: a manual election.
    MasterElection { reason: Option<String>, initiated_by: Option<String>, preferred_master: Option<String> },
    /// `role_change_ack`: a device confirms (or, with `status: "error"`, declines) a role change.
    RoleChangeAck { device_id: String, new_role: Role, accepted: bool, election_id: Option<String> },
    /// The data and sync events of section 5.
    Sync(SyncEvent),
}

/// A decoded event as a write, or as itself when it makes none.
pub enum Intent {
    Change(Command),
    Other(ClientEvent),
}

impl ClientEvent {
    /// The change this event asks for, for the events that make one (stations and orders,
    /// record writes and conflict reports, critical events); any other event is given back.
    /// The one mapping from a decoded event to a write, for every transport and `/sync/push`.
    pub fn into_intent(self) -> Intent {
        match self {
            Self::Station(command) => Intent::Change(Command::Station(command)),
            Self::Sync(SyncEvent::DataUpdate(write) | SyncEvent::SyncConflict(write)) => {
                Intent::Change(Command::Record(write))
            }
            Self::Sync(SyncEvent::CriticalEvent { device_id, event_type, payload }) => {
                Intent::Change(Command::Critical { device_id, event_type, payload })
            }
            other => Intent::Other(other),
        }
    }
}

impl ClientEvent {
    /// The device the event speaks for, for events that name one (sections 4 and 5).
    pub fn device_id(&self) -> Option<&str> {
        match self {
            Self::DeviceOnline(d) => Some(&d.device_id),
            Self::DeviceOffline { device_id, .. }
            | Self::DeviceShutdown { device_id, .. }
            | Self::Heartbeat { device_id }
            | Self::RoleChangeAck { device_id, .. } => Some(device_id),
            Self::Sync(event) => Some(event.device_id()),
            Self::Connect(_)
            | Self::Ping
            | Self::Refresh { .. }
            | Self::Station(_)
            | Self::MasterElection { .. } => None,
        }
    }
}

/// The `connect` event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connect {
    pub client_id: Option<String>,
    pub last_seq: Option<u64>,
    pub epoch: Option<String>,
}

/// Every message `type` a client may send (aliases included), in order.
pub const TYPES: &[&str] = &[
    "acknowledge",
    "connect",
    "critical_event",
    "data_request",
    "data_update",
    "device_deleted",
    "device_offline",
    "device_online",
    "device_reset",
    "device_shutdown",
    "device_transfer",
    "device_update",
    "heartbeat",
    "master_election",
    "order_deleted",
    "order_placed",
    "order_updated",
    "ping",
    "queue_status",
    "queue_status_request",
    "refresh",
    "register_device",
    "role_change_ack",
    "sync_complete",
    "sync_conflict",
    "sync_error",
    "sync_request",
];

/// The fields of each client message type, as its decoder reads them (`type`, `id` and
/// `timestamp` aside), for the check of `docs/asyncapi.yaml`.
#[cfg(test)]
pub(crate) fn fields_of(kind: &str) -> Option<super::asyncapi::Described> {
    use super::asyncapi::described;
    use devices::*;
    use stations::*;
    use sync::*;
    #[derive(utoipa::ToSchema)]
    struct NoFields {}
    Some(match kind {
        "acknowledge" => described::<AcknowledgeMsg>(),
        "connect" => described::<ConnectMsg>(),
        "critical_event" => described::<CriticalEventMsg>(),
        "data_request" => described::<DataRequestMsg>(),
        "data_update" | "sync_conflict" => described::<DataUpdateMsg>(),
        "device_deleted" | "device_reset" => described::<StationIdMsg>(),
        "device_offline" => described::<DeviceOfflineMsg>(),
        "device_online" | "register_device" => described::<DeviceOnlineMsg>(),
        "device_shutdown" => described::<DeviceShutdownMsg>(),
        "device_transfer" => described::<TransferMsg>(),
        "device_update" => described::<DeviceUpdateMsg>(),
        "heartbeat" => described::<HeartbeatMsg>(),
        "master_election" => described::<MasterElectionMsg>(),
        "order_deleted" => described::<OrderDeletedMsg>(),
        "order_placed" => described::<OrderPlacedMsg>(),
        "order_updated" => described::<OrderUpdatedMsg>(),
        "ping" => described::<NoFields>(),
        "queue_status" | "queue_status_request" => described::<QueueStatusMsg>(),
        "refresh" => described::<RefreshMsg>(),
        "role_change_ack" => described::<RoleChangeAckMsg>(),
        "sync_complete" => described::<SyncCompleteMsg>(),
        "sync_error" => described::<SyncErrorMsg>(),
        "sync_request" => described::<SyncRequestMsg>(),
        _ => return None,
    })
}

/// Where a client message type is in `TYPES`, if it is one.
pub fn type_index(kind: &str) -> Option<usize> {
    TYPES.binary_search(&kind).ok()
}

/// The `type` of a parsed message, if it has a string one.
pub fn type_of(value: &Value) -> Option<&str> {
    value.get("type").and_then(Value::as_str)
}

/// Parses one text frame as JSON.
pub fn parse_frame(text: &str) -> Result<Value, Rejected> {
    serde_json::from_str(text).map_err(|e| Rejected {
        reply_to: None,
        error: WireError::invalid(None, None, format!("not valid JSON ({e})")),
    })
}

/// Decodes one text frame.
pub fn decode(text: &str) -> Result<Inbound, Rejected> {
    decode_message(&parse_frame(text)?)
}

/// Decodes a message already parsed as JSON (a Socket.IO event's argument, its `type` set).
pub fn decode_message(value: &Value) -> Result<Inbound, Rejected> {
    let reject = |reply_to: Option<String>, error: WireError| Rejected { reply_to, error };
    let Value::Object(map) = value else {
        return Err(reject(None, WireError::invalid(None, None, "a message must be a JSON object")));
    };
    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_ID_CHARS => Some(s.clone()),
        Some(_) => {
            return Err(reject(
                None,
                WireError::invalid(
                    Some("id"),
                    None,
                    format!("must be a string of at most {MAX_ID_CHARS} characters"),
                ),
            ));
        }
    };
    let event = parse_event(map, value).map_err(|error| reject(id.clone(), error))?;
    Ok(Inbound { id, event })
}

/// Decodes one event given as a parsed JSON value (an event of a `/sync/push`).
pub fn decode_value(value: &Value) -> Result<ClientEvent, WireError> {
    let Value::Object(map) = value else {
        return Err(WireError::invalid(None, None, "an event must be a JSON object"));
    };
    parse_event(map, value)
}

/// Reads just the `id` of a frame that will not be processed (e.g. rate-limited), if it has one.
pub fn peek_id(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<Value>,
    }
    match serde_json::from_str::<IdOnly>(text).ok()?.id? {
        Value::String(s) if s.chars().count() <= MAX_ID_CHARS => Some(s),
        _ => None,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConnectMsg {
    client_id: Option<WireId>,
    #[serde(rename = "last_seq")]
    #[serde(default, deserialize_with = "opt_number")]
    last_seq: Option<u64>,
    epoch: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct RefreshMsg {
    /// The new token.
    #[schema(max_length = 8192)]
    token: String,
}

fn parse_event(map: &Map<String, Value>, value: &Value) -> Result<ClientEvent, WireError> {
    check_bounds(map)?;
    if let Some(ts) = map.get("timestamp")
        && !ts.is_null()
        && ts.as_str().and_then(time::parse).is_none()
    {
        return Err(WireError::invalid(Some("timestamp"), None, "must be an RFC 3339 time with an offset"));
    }
    let kind = match map.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(WireError::invalid(Some("type"), None, "must be a string")),
        None => return Err(WireError::invalid(Some("type"), None, "is required")),
    };
    let event = match kind {
        "connect" => {
            let m: ConnectMsg = parse(value)?;
            ClientEvent::Connect(Connect {
                client_id: m.client_id.map(|w| w.0),
                last_seq: m.last_seq,
                epoch: m.epoch,
            })
        }
        "ping" => ClientEvent::Ping,
        "refresh" => {
            let m: RefreshMsg = parse(value)?;
            ClientEvent::Refresh { token: m.token }
        }
        other => {
            for family in [devices::event, sync::event, stations::event] {
                if let Some(event) = family(other, value, map)? {
                    return Ok(event);
                }
            }
            let shown: String = other.chars().take(64).collect();
            return Err(WireError::new(ErrorCode::UnknownEvent, format!("Unknown event type '{shown}'")));
        }
    };
    Ok(event)
}
