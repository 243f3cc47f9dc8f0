//! Client frames into typed events. Everything a client sends passes through `decode` (WebSocket)
//! or one of the `*_body` functions (REST bodies), which enforce the protocol's bounds and name
//! the offending top-level field in every `INVALID_PAYLOAD`.

use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::error::{ErrorCode, WireError};
use super::time;
use crate::domain::election::{MAX_PRIORITY, Role};
use crate::domain::records::{self, Operation, RESERVED_TABLES};
use crate::domain::station::{NewOrder, OrderPatch, OrderRef, StationCommand, StationPatch};

/// Longest id (`device_id`, `deviceId`, `clientId`, `table_name`, `record_id`, `id`), in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Longest other string, in characters.
pub const MAX_TEXT_CHARS: usize = 65_536;
/// Most items in `orders`, `record_ids`, `requested_tables`, `events`.
pub const MAX_ITEMS: usize = 1_000;
/// Deepest JSON nesting; the message object is level 1.
pub const MAX_DEPTH: usize = 64;

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

/// The data and sync events (section 5), each from a registered device.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEvent {
    DataUpdate(DataUpdate),
    DataRequest(DataRequest),
    SyncRequest(SyncRequest),
    SyncComplete {
        device_id: String,
        sync_id: Option<String>,
        last_seq: Option<u64>,
        changes_count: Option<u64>,
    },
    SyncError {
        device_id: String,
        error_type: String,
        error_message: String,
        sync_type: Option<SyncType>,
        retry_count: u32,
    },
    /// `queue_status` or `queue_status_request`.
    QueueStatus {
        device_id: String,
        queue_type: Option<String>,
    },
    /// A client's own conflict report (document 000's `sync_conflict`).
    SyncConflict(DataUpdate),
    /// Legacy (003): logged, broadcast, `acknowledged`.
    CriticalEvent {
        device_id: String,
        event_type: String,
        payload: Value,
    },
    /// Legacy (003): the device processed everything up to `seq`.
    Acknowledge {
        device_id: String,
        seq: u64,
    },
}

impl SyncEvent {
    pub fn device_id(&self) -> &str {
        match self {
            Self::DataUpdate(u) | Self::SyncConflict(u) => &u.device_id,
            Self::DataRequest(r) => &r.device_id,
            Self::SyncRequest(r) => &r.device_id,
            Self::SyncComplete { device_id, .. }
            | Self::SyncError { device_id, .. }
            | Self::QueueStatus { device_id, .. }
            | Self::CriticalEvent { device_id, .. }
            | Self::Acknowledge { device_id, .. } => device_id,
        }
    }
}

/// A write to a generic record (`data_update`, or a reported `sync_conflict`).
#[derive(Debug, Clone, PartialEq)]
pub struct DataUpdate {
    pub device_id: String,
    pub table: String,
    /// The canonical record id.
    pub record_id: String,
    pub operation: Operation,
    /// The JSON object written (`None` for a delete).
    pub data: Option<Map<String, Value>>,
    pub base_version: Option<i64>,
    /// The client's time of the write (the message's `timestamp`), for last-writer-wins.
    pub at: Option<DateTime<Utc>>,
}

/// What a `data_request` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    Single(String),
    Batch(Vec<String>),
    Latest(u64),
}

/// `data_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequest {
    pub device_id: String,
    pub table: String,
    pub kind: RequestKind,
}

/// The kinds of sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncType {
    Full,
    Incremental,
    Critical,
}

impl SyncType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
            Self::Critical => "critical",
        }
    }
}

/// `sync_request`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRequest {
    pub device_id: String,
    pub sync_type: SyncType,
    pub last_seq: Option<u64>,
    pub last_sync_timestamp: Option<DateTime<Utc>>,
    pub epoch: Option<String>,
    pub requested_tables: Option<Vec<String>>,
    pub limit: u64,
}

/// Default page size of an incremental sync.
pub const DEFAULT_SYNC_LIMIT: u64 = 1000;
/// Default count of a `latest` data request.
pub const DEFAULT_LATEST_LIMIT: u64 = 50;
/// Largest `limit`.
pub const MAX_LIMIT: u64 = 10_000;

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
            Self::Connect(_) | Self::Ping | Self::Station(_) | Self::MasterElection { .. } => None,
        }
    }
}

/// `device_online` (or `register_device`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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

/// The `connect` event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connect {
    pub client_id: Option<String>,
    pub last_seq: Option<u64>,
    pub epoch: Option<String>,
}

/// Decodes one text frame.
pub fn decode(text: &str) -> Result<Inbound, Rejected> {
    let reject = |reply_to: Option<String>, error: WireError| Rejected { reply_to, error };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| reject(None, WireError::invalid(None, None, format!("not valid JSON ({e})"))))?;
    let Value::Object(map) = &value else {
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
    let event = parse_event(map, &value).map_err(|error| reject(id.clone(), error))?;
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
        "data_update" => ClientEvent::Sync(SyncEvent::DataUpdate(data_update(value, map, false)?)),
        "sync_conflict" => ClientEvent::Sync(SyncEvent::SyncConflict(data_update(value, map, true)?)),
        "data_request" => {
            let m: DataRequestMsg = parse(value)?;
            let table = table_of(m.table_name, m.table)?;
            let kind = match m.request_type.as_deref().unwrap_or("single") {
                "single" => RequestKind::Single(
                    m.record_id.ok_or_else(|| WireError::invalid(Some("record_id"), None, "is required"))?.0,
                ),
                "batch" => {
                    let ids = m
                        .record_ids
                        .ok_or_else(|| WireError::invalid(Some("record_ids"), None, "is required"))?;
                    if ids.len() > MAX_ITEMS {
                        return Err(WireError::invalid(
                            Some("record_ids"),
                            None,
                            format!("at most {MAX_ITEMS} ids"),
                        ));
                    }
                    RequestKind::Batch(ids.into_iter().map(|id| id.0).collect())
                }
                "latest" => RequestKind::Latest(limit_of(m.limit, DEFAULT_LATEST_LIMIT)?),
                _ => {
                    return Err(WireError::invalid(
                        Some("request_type"),
                        None,
                        "must be single, batch or latest",
                    ));
                }
            };
            ClientEvent::Sync(SyncEvent::DataRequest(DataRequest { device_id: m.device_id.0, table, kind }))
        }
        "sync_request" => {
            let m: SyncRequestMsg = parse(value)?;
            if m.requested_tables.as_ref().is_some_and(|t| t.len() > MAX_ITEMS) {
                return Err(WireError::invalid(
                    Some("requested_tables"),
                    None,
                    format!("at most {MAX_ITEMS} tables"),
                ));
            }
            ClientEvent::Sync(SyncEvent::SyncRequest(SyncRequest {
                device_id: m.device_id.0,
                sync_type: m.sync_type.unwrap_or(SyncType::Full),
                last_seq: m.last_seq,
                last_sync_timestamp: m.last_sync_timestamp.map(|t| t.0),
                epoch: m.epoch,
                requested_tables: m.requested_tables.map(|t| t.into_iter().map(|t| t.0).collect()),
                limit: limit_of(m.limit, DEFAULT_SYNC_LIMIT)?,
            }))
        }
        "sync_complete" => {
            let m: SyncCompleteMsg = parse(value)?;
            ClientEvent::Sync(SyncEvent::SyncComplete {
                device_id: m.device_id.0,
                sync_id: m.sync_id,
                last_seq: m.last_seq,
                changes_count: m.changes_count.or(m.records_processed),
            })
        }
        "sync_error" => {
            let m: SyncErrorMsg = parse(value)?;
            ClientEvent::Sync(SyncEvent::SyncError {
                device_id: m.device_id.0,
                error_type: m.error_type,
                error_message: m.error_message,
                sync_type: m.sync_type,
                retry_count: m.retry_count.unwrap_or(0),
            })
        }
        "queue_status" | "queue_status_request" => {
            let m: QueueStatusMsg = parse(value)?;
            ClientEvent::Sync(SyncEvent::QueueStatus { device_id: m.device_id.0, queue_type: m.queue_type })
        }
        "critical_event" => {
            let m: CriticalEventMsg = parse(value)?;
            if !m.payload.is_object() {
                return Err(WireError::invalid(Some("payload"), None, "must be a JSON object"));
            }
            ClientEvent::Sync(SyncEvent::CriticalEvent {
                device_id: m.device_id.0,
                event_type: m.event_type.0,
                payload: m.payload,
            })
        }
        "acknowledge" => {
            let m: AcknowledgeMsg = parse(value)?;
            ClientEvent::Sync(SyncEvent::Acknowledge { device_id: m.device_id.0, seq: m.seq })
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
        "device_update" => {
            let m: DeviceUpdateMsg = parse(value)?;
            ClientEvent::Station(StationCommand::Update { station_id: m.device_id.0, patch: m.data.into() })
        }
        "order_placed" => {
            let m: OrderPlacedMsg = parse(value)?;
            ClientEvent::Station(StationCommand::PlaceOrders {
                station_id: m.device_id.0,
                orders: new_orders(m.orders, "orders")?,
            })
        }
        "order_updated" => {
            let m: OrderUpdatedMsg = parse(value)?;
            ClientEvent::Station(StationCommand::UpdateOrder {
                station_id: m.device_id.0,
                target: order_ref(m.order_index, m.order_id)?,
                patch: m.data.into(),
            })
        }
        "order_deleted" => {
            let m: OrderDeletedMsg = parse(value)?;
            ClientEvent::Station(StationCommand::DeleteOrder {
                station_id: m.device_id.0,
                target: order_ref(m.order_index, m.order_id)?,
            })
        }
        "device_transfer" => {
            let m: TransferMsg = parse(value)?;
            if m.from_device_id.0 == m.to_device_id.0 {
                return Err(WireError::invalid(Some("toDeviceId"), None, "must differ from fromDeviceId"));
            }
            ClientEvent::Station(StationCommand::Transfer { from: m.from_device_id.0, to: m.to_device_id.0 })
        }
        "device_deleted" => {
            let m: StationIdMsg = parse(value)?;
            ClientEvent::Station(StationCommand::Delete { station_id: m.device_id.0 })
        }
        "device_reset" => {
            let m: StationIdMsg = parse(value)?;
            ClientEvent::Station(StationCommand::Reset { station_id: m.device_id.0 })
        }
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(WireError::new(ErrorCode::UnknownEvent, format!("Unknown event type '{shown}'")));
        }
    };
    Ok(event)
}

/// `data_update` (or a reported `sync_conflict`): the seed aliases, the record-id rule, and the
/// data that must be an object unless the record is deleted.
fn data_update(value: &Value, map: &Map<String, Value>, reported: bool) -> Result<DataUpdate, WireError> {
    let m: DataUpdateMsg = parse(value)?;
    let table = table_of(m.table_name, m.table)?;
    let record_id = match &m.record_id {
        None => return Err(WireError::invalid(Some("record_id"), None, "is required")),
        Some(v) => records::canonical_id(v)
            .filter(|id| (1..=MAX_ID_CHARS).contains(&id.chars().count()))
            .ok_or_else(|| {
                WireError::invalid(
                    Some("record_id"),
                    None,
                    "must be a string of 1 to 128 characters or an integer",
                )
            })?,
    };
    let operation = match m.operation.as_deref() {
        None => Operation::Update,
        Some(name) => Operation::parse(name).ok_or_else(|| {
            WireError::invalid(Some("operation"), None, "must be insert, create, update or delete")
        })?,
    };
    let (field, data) = if reported {
        ("local_data", m.local_data)
    } else if m.new_data.is_some() {
        ("new_data", m.new_data)
    } else {
        ("data", m.data)
    };
    let data = match (operation, data) {
        (Operation::Delete, _) if !reported => None,
        (_, Some(Value::Object(object))) => Some(object),
        (_, None | Some(Value::Null)) => {
            return Err(WireError::invalid(Some(field), None, "is required: the record's JSON object"));
        }
        (_, Some(_)) => return Err(WireError::invalid(Some(field), None, "must be a JSON object")),
    };
    let base_version = if reported { m.server_version.or(m.base_version) } else { m.base_version };
    let at = map.get("timestamp").and_then(Value::as_str).and_then(time::parse);
    Ok(DataUpdate {
        device_id: m.device_id.0,
        table,
        record_id,
        operation: if reported { Operation::Update } else { operation },
        data,
        base_version: base_version.map(|v| v.0),
        at,
    })
}

/// The table of a data event, named `table_name` (001) or `table` (000).
fn table_of(table_name: Option<WireId>, table: Option<WireId>) -> Result<String, WireError> {
    let (field, table) = match (table_name, table) {
        (Some(a), Some(b)) if a != b => {
            return Err(WireError::invalid(
                Some("table"),
                None,
                "table and table_name name different tables",
            ));
        }
        (Some(t), _) => ("table_name", t.0),
        (None, Some(t)) => ("table", t.0),
        (None, None) => return Err(WireError::invalid(Some("table_name"), None, "is required")),
    };
    if RESERVED_TABLES.contains(&table.as_str()) {
        return Err(WireError::invalid(Some(field), None, format!("table {table} is kept by the server")));
    }
    Ok(table)
}

fn limit_of(limit: Option<u64>, default: u64) -> Result<u64, WireError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(WireError::invalid(Some("limit"), None, format!("must be within 1..={MAX_LIMIT}"))),
    }
}

// ---- REST bodies ------------------------------------------------------------------------

/// The body of `POST /cashier/devices`: `{deviceId, name?}`.
pub fn create_station_body(body: &Value) -> Result<StationCommand, WireError> {
    let m: CreateStationMsg = parse_body(body)?;
    Ok(StationCommand::Create { station_id: m.device_id.0, name: m.name })
}

/// The body of `PATCH /cashier/devices/{id}`: the `data` of a `device_update`.
pub fn station_patch_body(body: &Value) -> Result<StationPatch, WireError> {
    parse_body::<StationPatchMsg>(body).map(Into::into)
}

/// The body of `POST /cashier/devices/{id}/orders`: `{orders}`.
pub fn place_orders_body(body: &Value) -> Result<Vec<NewOrder>, WireError> {
    let m: OrdersMsg = parse_body(body)?;
    new_orders(m.orders, "orders")
}

/// The body of `PATCH /cashier/devices/{id}/orders/{index}`: the `data` of an `order_updated`.
pub fn order_patch_body(body: &Value) -> Result<OrderPatch, WireError> {
    parse_body::<OrderPatchMsg>(body).map(Into::into)
}

/// The body of `POST /cashier/devices/{id}/transfer`: `{toDeviceId}`.
pub fn transfer_body(from: &str, body: &Value) -> Result<StationCommand, WireError> {
    let m: TransferTargetMsg = parse_body(body)?;
    if m.to_device_id.0 == from {
        return Err(WireError::invalid(Some("toDeviceId"), None, "must differ from the source device"));
    }
    Ok(StationCommand::Transfer { from: from.to_owned(), to: m.to_device_id.0 })
}

/// Checks a REST body against the protocol's bounds (any JSON value).
pub fn check_body_bounds(body: &Value) -> Result<(), WireError> {
    match body {
        Value::Object(map) => check_bounds(map),
        other => check_value(other, 1).map_err(|reason| WireError::invalid(None, None, reason)),
    }
}

/// Checks a path segment used as a station id.
pub fn station_id_param(id: &str) -> Result<(), WireError> {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        return Err(WireError::invalid(
            Some("deviceId"),
            None,
            format!("must be 1 to {MAX_ID_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Parses a REST body into `T`: the protocol's bounds, then the fields, with every error an
/// `INVALID_PAYLOAD` naming the field.
pub fn parse_body<T: DeserializeOwned>(body: &Value) -> Result<T, WireError> {
    check_body_bounds(body)?;
    parse(body)
}

// ---- bounds -----------------------------------------------------------------------------

/// Depth and string bounds, checked field by field so the error names the top-level field.
fn check_bounds(map: &Map<String, Value>) -> Result<(), WireError> {
    for (key, value) in map {
        if key.len() > MAX_TEXT_CHARS && key.chars().count() > MAX_TEXT_CHARS {
            return Err(WireError::invalid(None, None, "a field name is too long"));
        }
        check_value(value, 2).map_err(|reason| WireError::invalid(Some(key), None, reason))?;
    }
    Ok(())
}

/// Checks `value`, found at nesting `level` (containers count; the message is level 1).
fn check_value(value: &Value, level: usize) -> Result<(), String> {
    match value {
        Value::String(s) => check_text(s),
        Value::Array(items) => {
            check_depth(level)?;
            items.iter().try_for_each(|v| check_value(v, level + 1))
        }
        Value::Object(map) => {
            check_depth(level)?;
            map.iter().try_for_each(|(k, v)| {
                check_text(k)?;
                check_value(v, level + 1)
            })
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn check_depth(level: usize) -> Result<(), String> {
    if level > MAX_DEPTH { Err(format!("nested deeper than {MAX_DEPTH} levels")) } else { Ok(()) }
}

fn check_text(s: &str) -> Result<(), String> {
    // A string of at most MAX_TEXT_CHARS bytes has at most that many characters.
    if s.len() > MAX_TEXT_CHARS && s.chars().count() > MAX_TEXT_CHARS {
        Err(format!("a string is longer than {MAX_TEXT_CHARS} characters"))
    } else {
        Ok(())
    }
}

// ---- typed parsing ----------------------------------------------------------------------

/// Deserializes `value` into `T`, turning a serde error into `INVALID_PAYLOAD` with its path.
fn parse<T: DeserializeOwned>(value: &Value) -> Result<T, WireError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let reason = err.inner().to_string();
        let path = err.path().to_string();
        let missing =
            reason.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()).map(str::to_owned);
        let (field, path) = if path == "." || path.is_empty() {
            (missing.clone(), missing)
        } else {
            let top = path.split(['.', '[']).next().map(str::to_owned);
            let full = match &missing {
                Some(name) => Some(format!("{path}.{name}")),
                None => Some(path),
            };
            (top, full)
        };
        WireError::invalid(field.as_deref(), path.as_deref(), reason)
    })
}

fn new_orders(orders: Vec<OrderMsg>, field: &str) -> Result<Vec<NewOrder>, WireError> {
    if orders.is_empty() {
        return Err(WireError::invalid(Some(field), None, "must hold at least one order"));
    }
    if orders.len() > MAX_ITEMS {
        return Err(WireError::invalid(Some(field), None, format!("must hold at most {MAX_ITEMS} orders")));
    }
    Ok(orders.into_iter().map(Into::into).collect())
}

fn order_ref(index: Option<u64>, id: Option<WireId>) -> Result<OrderRef, WireError> {
    let index = index
        .map(|i| {
            usize::try_from(i).map_err(|_| WireError::invalid(Some("orderIndex"), None, "is out of range"))
        })
        .transpose()?;
    match (index, id) {
        (Some(index), Some(id)) => Ok(OrderRef::Both { index, id: id.0 }),
        (Some(index), None) => Ok(OrderRef::Index(index)),
        (None, Some(id)) => Ok(OrderRef::Id(id.0)),
        (None, None) => {
            Err(WireError::invalid(Some("orderIndex"), None, "orderIndex or orderId is required"))
        }
    }
}

/// An id: a non-empty string of at most `MAX_ID_CHARS` characters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WireId(String);

impl<'de> Deserialize<'de> for WireId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let n = s.chars().count();
        if n == 0 || n > MAX_ID_CHARS {
            return Err(D::Error::custom(format!("must be a string of 1 to {MAX_ID_CHARS} characters")));
        }
        Ok(Self(s))
    }
}

/// An integer ≥ `MIN` (never a float).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AtLeast<const MIN: i64>(i64);

impl<'de, const MIN: i64> Deserialize<'de> for AtLeast<MIN> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let message = || D::Error::custom(format!("must be an integer >= {MIN}"));
        match Value::deserialize(d)? {
            Value::Number(n) => match n.as_i64() {
                Some(v) if v >= MIN => Ok(Self(v)),
                _ => Err(message()),
            },
            _ => Err(message()),
        }
    }
}

/// A client time: RFC 3339 with an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClientTime(DateTime<Utc>);

impl<'de> Deserialize<'de> for ClientTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        time::parse(&s).map(Self).ok_or_else(|| D::Error::custom("must be an RFC 3339 time with an offset"))
    }
}

/// A priority: an integer within 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Priority(i32);

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let message = || D::Error::custom(format!("must be an integer within 0..={MAX_PRIORITY}"));
        match Value::deserialize(d)? {
            Value::Number(n) => match n.as_i64().and_then(|v| i32::try_from(v).ok()) {
                Some(v) if (0..=MAX_PRIORITY).contains(&v) => Ok(Self(v)),
                _ => Err(message()),
            },
            _ => Err(message()),
        }
    }
}

#[derive(Deserialize)]
struct DeviceOnlineMsg {
    device_id: WireId,
    device_name: Option<String>,
    device_type: Option<String>,
    role: Option<Role>,
    priority: Option<Priority>,
    capabilities: Option<Vec<String>>,
    last_seq: Option<u64>,
    epoch: Option<String>,
}

#[derive(Deserialize)]
struct DataUpdateMsg {
    device_id: WireId,
    table_name: Option<WireId>,
    table: Option<WireId>,
    record_id: Option<Value>,
    new_data: Option<Value>,
    data: Option<Value>,
    local_data: Option<Value>,
    operation: Option<String>,
    base_version: Option<AtLeast<0>>,
    server_version: Option<AtLeast<0>>,
}

#[derive(Deserialize)]
struct DataRequestMsg {
    device_id: WireId,
    table_name: Option<WireId>,
    table: Option<WireId>,
    record_id: Option<WireIdOrInt>,
    record_ids: Option<Vec<WireIdOrInt>>,
    request_type: Option<String>,
    limit: Option<u64>,
}

#[derive(Deserialize)]
struct SyncRequestMsg {
    device_id: WireId,
    sync_type: Option<SyncType>,
    last_seq: Option<u64>,
    last_sync_timestamp: Option<ClientTime>,
    epoch: Option<String>,
    requested_tables: Option<Vec<WireId>>,
    limit: Option<u64>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SyncCompleteMsg {
    device_id: WireId,
    sync_id: Option<String>,
    last_seq: Option<u64>,
    changes_count: Option<u64>,
    records_processed: Option<u64>,
    conflicts_resolved: Option<u64>,
    duration_ms: Option<u64>,
}

#[derive(Deserialize)]
struct SyncErrorMsg {
    device_id: WireId,
    error_type: String,
    error_message: String,
    sync_type: Option<SyncType>,
    retry_count: Option<u32>,
}

#[derive(Deserialize)]
struct QueueStatusMsg {
    device_id: WireId,
    queue_type: Option<String>,
}

#[derive(Deserialize)]
struct CriticalEventMsg {
    device_id: WireId,
    event_type: WireId,
    payload: Value,
}

#[derive(Deserialize)]
struct AcknowledgeMsg {
    device_id: WireId,
    seq: u64,
}

/// A record id in a request: a string of 1 to 128 characters or an integer, canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WireIdOrInt(String);

impl<'de> Deserialize<'de> for WireIdOrInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        records::canonical_id(&value)
            .filter(|id| (1..=MAX_ID_CHARS).contains(&id.chars().count()))
            .map(Self)
            .ok_or_else(|| D::Error::custom("must be a string of 1 to 128 characters or an integer"))
    }
}

#[derive(Deserialize)]
struct DeviceOfflineMsg {
    device_id: WireId,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct DeviceShutdownMsg {
    device_id: WireId,
    reason: Option<String>,
    shutdown_reason: Option<String>,
    pending_operations: Option<u64>,
}

/// The fields of a heartbeat are checked for their types; only `device_id` is used.
#[derive(Deserialize)]
#[allow(dead_code)]
struct HeartbeatMsg {
    device_id: WireId,
    status: Option<String>,
    uptime_seconds: Option<f64>,
    memory_usage: Option<f64>,
    cpu_usage: Option<f64>,
}

#[derive(Deserialize)]
struct MasterElectionMsg {
    reason: Option<String>,
    initiated_by: Option<WireId>,
    preferred_master: Option<WireId>,
}

#[derive(Deserialize)]
struct RoleChangeAckMsg {
    device_id: WireId,
    new_role: Role,
    status: Option<String>,
    election_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectMsg {
    client_id: Option<WireId>,
    #[serde(rename = "last_seq")]
    last_seq: Option<u64>,
    epoch: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StationIdMsg {
    device_id: WireId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateStationMsg {
    device_id: WireId,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceUpdateMsg {
    device_id: WireId,
    data: StationPatchMsg,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StationPatchMsg {
    is_running: Option<bool>,
    elapsed_seconds: Option<AtLeast<0>>,
    mode: Option<String>,
    customer_count: Option<AtLeast<0>>,
    notes: Option<String>,
}

impl From<StationPatchMsg> for StationPatch {
    fn from(m: StationPatchMsg) -> Self {
        Self {
            is_running: m.is_running,
            elapsed_seconds: m.elapsed_seconds.map(|v| v.0),
            mode: m.mode,
            customer_count: m.customer_count.map(|v| v.0),
            notes: m.notes,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderPlacedMsg {
    device_id: WireId,
    orders: Vec<OrderMsg>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrdersMsg {
    orders: Vec<OrderMsg>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderMsg {
    name: String,
    price: AtLeast<0>,
    quantity: AtLeast<1>,
    notes: Option<String>,
    first_order_time: Option<ClientTime>,
    last_order_time: Option<ClientTime>,
}

impl From<OrderMsg> for NewOrder {
    fn from(m: OrderMsg) -> Self {
        Self {
            name: m.name,
            price: m.price.0,
            quantity: m.quantity.0,
            notes: m.notes,
            first_order_time: m.first_order_time.map(|t| t.0),
            last_order_time: m.last_order_time.map(|t| t.0),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderUpdatedMsg {
    device_id: WireId,
    order_index: Option<u64>,
    order_id: Option<WireId>,
    data: OrderPatchMsg,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderPatchMsg {
    name: Option<String>,
    price: Option<AtLeast<0>>,
    quantity: Option<AtLeast<1>>,
    notes: Option<String>,
    first_order_time: Option<ClientTime>,
    last_order_time: Option<ClientTime>,
}

impl From<OrderPatchMsg> for OrderPatch {
    fn from(m: OrderPatchMsg) -> Self {
        Self {
            name: m.name,
            price: m.price.map(|v| v.0),
            quantity: m.quantity.map(|v| v.0),
            notes: m.notes,
            first_order_time: m.first_order_time.map(|t| t.0),
            last_order_time: m.last_order_time.map(|t| t.0),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderDeletedMsg {
    device_id: WireId,
    order_index: Option<u64>,
    order_id: Option<WireId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferMsg {
    from_device_id: WireId,
    to_device_id: WireId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferTargetMsg {
    to_device_id: WireId,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(text: &str) -> Rejected {
        decode(text).expect_err("should be rejected")
    }

    fn field(r: &Rejected) -> Option<String> {
        r.error.details.as_ref().and_then(|d| d["field"].as_str().map(str::to_owned))
    }

    #[test]
    fn a_device_update_decodes_into_a_station_patch() {
        let m = decode(r#"{"type":"device_update","id":"c-1","deviceId":"pc1","data":{"isRunning":true,"elapsedSeconds":3600,"mode":"single","customerCount":2,"notes":"VIP customer"},"timestamp":"2026-02-03T02:25:33+03:00"}"#)
            .expect("decode");
        assert_eq!(m.id.as_deref(), Some("c-1"));
        let ClientEvent::Station(StationCommand::Update { station_id, patch }) = m.event else {
            panic!("not an update: {:?}", m.event)
        };
        assert_eq!(station_id, "pc1");
        assert_eq!(patch.elapsed_seconds, Some(3600));
        assert_eq!(patch.notes.as_deref(), Some("VIP customer"));
    }

    #[test]
    fn not_json_and_not_an_object_are_invalid_payload() {
        assert_eq!(rejected("{nope").error.code, ErrorCode::InvalidPayload);
        assert_eq!(rejected("[1,2]").error.code, ErrorCode::InvalidPayload);
        assert_eq!(rejected("\"ping\"").error.code, ErrorCode::InvalidPayload);
    }

    #[test]
    fn a_missing_type_names_the_field_and_keeps_the_id() {
        let r = rejected(r#"{"id":"x1","deviceId":"pc1"}"#);
        assert_eq!(r.error.code, ErrorCode::InvalidPayload);
        assert_eq!(field(&r).as_deref(), Some("type"));
        assert_eq!(r.reply_to.as_deref(), Some("x1"));
    }

    #[test]
    fn an_unknown_type_is_unknown_event() {
        let r = rejected(r#"{"type":"teleport","id":"x2"}"#);
        assert_eq!(r.error.code, ErrorCode::UnknownEvent);
        assert_eq!(r.reply_to.as_deref(), Some("x2"));
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let r = rejected(r#"{"type":"device_update","data":{}}"#);
        assert_eq!(field(&r).as_deref(), Some("deviceId"));
    }

    #[test]
    fn a_float_price_is_refused_naming_orders() {
        let r = rejected(
            r#"{"type":"order_placed","deviceId":"pc1","orders":[{"name":"tea","price":10.5,"quantity":1}]}"#,
        );
        assert_eq!(field(&r).as_deref(), Some("orders"));
        let path = r.error.details.as_ref().and_then(|d| d["path"].as_str().map(str::to_owned));
        assert_eq!(path.as_deref(), Some("orders[0].price"));
    }

    #[test]
    fn negative_counts_and_zero_quantities_are_refused() {
        let r = rejected(r#"{"type":"device_update","deviceId":"pc1","data":{"elapsedSeconds":-1}}"#);
        assert_eq!(field(&r).as_deref(), Some("data"));
        let r = rejected(
            r#"{"type":"order_placed","deviceId":"pc1","orders":[{"name":"tea","price":1,"quantity":0}]}"#,
        );
        assert_eq!(field(&r).as_deref(), Some("orders"));
    }

    #[test]
    fn a_long_device_id_is_refused() {
        let long = "p".repeat(MAX_ID_CHARS + 1);
        let r = rejected(&format!(r#"{{"type":"device_reset","deviceId":"{long}"}}"#));
        assert_eq!(field(&r).as_deref(), Some("deviceId"));
        let ok = "ب".repeat(MAX_ID_CHARS);
        assert!(decode(&format!(r#"{{"type":"device_reset","deviceId":"{ok}"}}"#)).is_ok());
    }

    #[test]
    fn an_id_that_is_not_a_short_string_is_refused_without_reply_to() {
        let r = rejected(r#"{"type":"ping","id":17}"#);
        assert_eq!(field(&r).as_deref(), Some("id"));
        assert_eq!(r.reply_to, None);
    }

    #[test]
    fn nesting_past_the_limit_names_the_field() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let r = rejected(&format!(r#"{{"type":"ping","extra":{deep}}}"#));
        assert_eq!(field(&r).as_deref(), Some("extra"));
        let fits = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(decode(&format!(r#"{{"type":"ping","extra":{fits}}}"#)).is_ok());
    }

    #[test]
    fn an_overlong_string_names_the_field() {
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        let r =
            rejected(&format!(r#"{{"type":"device_update","deviceId":"pc1","data":{{"notes":"{long}"}}}}"#));
        assert_eq!(field(&r).as_deref(), Some("data"));
    }

    #[test]
    fn too_many_orders_are_refused() {
        let one = r#"{"name":"t","price":1,"quantity":1}"#;
        let many = vec![one; MAX_ITEMS + 1].join(",");
        let r = rejected(&format!(r#"{{"type":"order_placed","deviceId":"pc1","orders":[{many}]}}"#));
        assert_eq!(field(&r).as_deref(), Some("orders"));
    }

    #[test]
    fn a_bad_client_timestamp_is_refused() {
        let r = rejected(r#"{"type":"ping","timestamp":"03/02/2026"}"#);
        assert_eq!(field(&r).as_deref(), Some("timestamp"));
        assert!(decode(r#"{"type":"ping","timestamp":"2026-02-03T02:25:33+03:00"}"#).is_ok());
    }

    #[test]
    fn an_order_is_named_by_index_or_id() {
        let m = decode(r#"{"type":"order_deleted","deviceId":"pc1","orderId":"o-1"}"#).expect("decode");
        assert_eq!(
            m.event,
            ClientEvent::Station(StationCommand::DeleteOrder {
                station_id: "pc1".into(),
                target: OrderRef::Id("o-1".into())
            })
        );
        let r = rejected(r#"{"type":"order_deleted","deviceId":"pc1"}"#);
        assert_eq!(field(&r).as_deref(), Some("orderIndex"));
    }

    #[test]
    fn a_transfer_onto_itself_is_refused() {
        let r = rejected(r#"{"type":"device_transfer","fromDeviceId":"pc1","toDeviceId":"pc1"}"#);
        assert_eq!(field(&r).as_deref(), Some("toDeviceId"));
    }

    #[test]
    fn connect_reads_resume_fields() {
        let m = decode(
            r#"{"type":"connect","clientId":"cashier-1","last_seq":42,"epoch":"e1","token":"ignored"}"#,
        )
        .expect("decode");
        assert_eq!(
            m.event,
            ClientEvent::Connect(Connect {
                client_id: Some("cashier-1".into()),
                last_seq: Some(42),
                epoch: Some("e1".into())
            })
        );
        assert_eq!(field(&rejected(r#"{"type":"connect","last_seq":-1}"#)).as_deref(), Some("last_seq"));
    }

    #[test]
    fn device_online_reads_both_seeds_fields() {
        let m = decode(r#"{"type":"device_online","device_id":"till-1","device_name":"Till 1","device_type":"manager","priority":80,"capabilities":["sync"],"last_seq":3,"epoch":"e"}"#)
            .expect("decode");
        let ClientEvent::DeviceOnline(d) = m.event else { panic!("{:?}", m.event) };
        assert_eq!((d.device_id.as_str(), d.priority, d.last_seq), ("till-1", Some(80), Some(3)));
        assert_eq!(d.capabilities, Some(vec!["sync".to_owned()]));
        assert!(!d.legacy);
        let m = decode(r#"{"type":"register_device","device_id":"t2","role":"master"}"#).expect("decode");
        let ClientEvent::DeviceOnline(d) = m.event else { panic!("{:?}", m.event) };
        assert!(d.legacy);
        assert_eq!(d.role, Some(Role::Master));
    }

    #[test]
    fn a_priority_outside_0_to_100_is_refused() {
        for bad in ["101", "-1", "50.5", "\"high\""] {
            let r = rejected(&format!(r#"{{"type":"device_online","device_id":"t","priority":{bad}}}"#));
            assert_eq!(field(&r).as_deref(), Some("priority"), "{bad}");
        }
        let r = rejected(r#"{"type":"device_online","device_id":"t","role":"boss"}"#);
        assert_eq!(field(&r).as_deref(), Some("role"));
    }

    #[test]
    fn device_shutdown_takes_either_reason_field() {
        let m = decode(r#"{"type":"device_shutdown","device_id":"t","shutdown_reason":"closing time","pending_operations":2}"#)
            .expect("decode");
        assert_eq!(
            m.event,
            ClientEvent::DeviceShutdown {
                device_id: "t".into(),
                reason: Some("closing time".into()),
                pending_operations: Some(2)
            }
        );
    }

    #[test]
    fn role_change_ack_may_decline() {
        let m = decode(r#"{"type":"role_change_ack","device_id":"t","new_role":"master","status":"error"}"#)
            .expect("decode");
        assert!(matches!(m.event, ClientEvent::RoleChangeAck { accepted: false, .. }));
        let r =
            rejected(r#"{"type":"role_change_ack","device_id":"t","new_role":"master","status":"maybe"}"#);
        assert_eq!(field(&r).as_deref(), Some("status"));
    }

    #[test]
    fn heartbeat_fields_are_type_checked() {
        assert!(decode(r#"{"type":"heartbeat","device_id":"t","status":"healthy","uptime_seconds":5,"memory_usage":0.5,"cpu_usage":12}"#).is_ok());
        let r = rejected(r#"{"type":"heartbeat","device_id":"t","cpu_usage":"hot"}"#);
        assert_eq!(field(&r).as_deref(), Some("cpu_usage"));
    }

    fn sync_event(text: &str) -> SyncEvent {
        match decode(text).expect("decode").event {
            ClientEvent::Sync(event) => event,
            other => panic!("not a sync event: {other:?}"),
        }
    }

    #[test]
    fn data_update_takes_both_seeds_field_names() {
        let a = sync_event(
            r#"{"type":"data_update","device_id":"t","table_name":"products","record_id":42,"new_data":{"n":1},"operation":"create","base_version":2,"timestamp":"2026-02-03T02:25:33+03:00"}"#,
        );
        let b = sync_event(
            r#"{"type":"data_update","device_id":"t","table":"products","record_id":"42","data":{"n":1},"operation":"insert","base_version":2,"timestamp":"2026-02-03T02:25:33+03:00"}"#,
        );
        assert_eq!(a, b);
        let SyncEvent::DataUpdate(u) = a else { panic!() };
        assert_eq!(
            (u.table.as_str(), u.record_id.as_str(), u.operation),
            ("products", "42", Operation::Insert)
        );
        assert!(u.at.is_some());
    }

    #[test]
    fn data_update_defaults_to_update_and_a_delete_needs_no_data() {
        let SyncEvent::DataUpdate(u) =
            sync_event(r#"{"type":"data_update","device_id":"t","table":"p","record_id":"x","data":{}}"#)
        else {
            panic!()
        };
        assert_eq!(u.operation, Operation::Update);
        let SyncEvent::DataUpdate(d) = sync_event(
            r#"{"type":"data_update","device_id":"t","table":"p","record_id":"x","operation":"delete"}"#,
        ) else {
            panic!()
        };
        assert_eq!((d.operation, d.data), (Operation::Delete, None));
    }

    #[test]
    fn malformed_data_updates_name_their_field() {
        let cases = [
            (r#"{"type":"data_update","device_id":"t","record_id":1,"data":{}}"#, "table_name"),
            (
                r#"{"type":"data_update","device_id":"t","table":"a","table_name":"b","record_id":1,"data":{}}"#,
                "table",
            ),
            (r#"{"type":"data_update","device_id":"t","table":"p","data":{}}"#, "record_id"),
            (r#"{"type":"data_update","device_id":"t","table":"p","record_id":1.5,"data":{}}"#, "record_id"),
            (r#"{"type":"data_update","device_id":"t","table":"p","record_id":1}"#, "data"),
            (
                r#"{"type":"data_update","device_id":"t","table":"p","record_id":1,"new_data":[1]}"#,
                "new_data",
            ),
            (
                r#"{"type":"data_update","device_id":"t","table":"p","record_id":1,"data":{},"operation":"merge"}"#,
                "operation",
            ),
            (
                r#"{"type":"data_update","device_id":"t","table":"p","record_id":1,"data":{},"base_version":-1}"#,
                "base_version",
            ),
            (
                r#"{"type":"data_update","device_id":"t","table":"stations","record_id":"pc1","data":{}}"#,
                "table",
            ),
            (r#"{"type":"data_update","table":"p","record_id":1,"data":{}}"#, "device_id"),
        ];
        for (text, expected) in cases {
            assert_eq!(field(&rejected(text)).as_deref(), Some(expected), "{text}");
        }
    }

    #[test]
    fn data_request_kinds_and_their_fields() {
        let SyncEvent::DataRequest(r) = sync_event(
            r#"{"type":"data_request","device_id":"t","table":"p","record_ids":[1,"b"],"request_type":"batch"}"#,
        ) else {
            panic!()
        };
        assert_eq!(r.kind, RequestKind::Batch(vec!["1".into(), "b".into()]));
        let SyncEvent::DataRequest(r) =
            sync_event(r#"{"type":"data_request","device_id":"t","table_name":"p","request_type":"latest"}"#)
        else {
            panic!()
        };
        assert_eq!(r.kind, RequestKind::Latest(50));
        assert_eq!(
            field(&rejected(r#"{"type":"data_request","device_id":"t","table":"p"}"#)).as_deref(),
            Some("record_id")
        );
        assert_eq!(
            field(&rejected(r#"{"type":"data_request","device_id":"t","table":"p","request_type":"batch"}"#))
                .as_deref(),
            Some("record_ids")
        );
        assert_eq!(
            field(&rejected(
                r#"{"type":"data_request","device_id":"t","table":"p","request_type":"all","record_id":1}"#
            ))
            .as_deref(),
            Some("request_type")
        );
        assert_eq!(
            field(&rejected(
                r#"{"type":"data_request","device_id":"t","table":"p","request_type":"latest","limit":0}"#
            ))
            .as_deref(),
            Some("limit")
        );
    }

    #[test]
    fn sync_request_defaults_and_bounds() {
        let SyncEvent::SyncRequest(r) = sync_event(r#"{"type":"sync_request","device_id":"t"}"#) else {
            panic!()
        };
        assert_eq!((r.sync_type, r.limit, r.last_seq), (SyncType::Full, 1000, None));
        assert_eq!(
            field(&rejected(r#"{"type":"sync_request","device_id":"t","sync_type":"partial"}"#)).as_deref(),
            Some("sync_type")
        );
        assert_eq!(
            field(&rejected(r#"{"type":"sync_request","device_id":"t","limit":10001}"#)).as_deref(),
            Some("limit")
        );
        assert_eq!(
            field(&rejected(r#"{"type":"sync_request","device_id":"t","last_seq":"5"}"#)).as_deref(),
            Some("last_seq")
        );
        assert_eq!(
            field(&rejected(r#"{"type":"sync_request","device_id":"t","last_sync_timestamp":"monday"}"#))
                .as_deref(),
            Some("last_sync_timestamp")
        );
        assert_eq!(
            field(&rejected(r#"{"type":"sync_request","device_id":"t","requested_tables":"p"}"#)).as_deref(),
            Some("requested_tables")
        );
    }

    #[test]
    fn legacy_and_status_events_decode() {
        assert!(matches!(
            sync_event(
                r#"{"type":"critical_event","device_id":"t","event_type":"sale","payload":{"total":5}}"#
            ),
            SyncEvent::CriticalEvent { .. }
        ));
        assert_eq!(
            field(&rejected(r#"{"type":"critical_event","device_id":"t","event_type":"sale","payload":5}"#))
                .as_deref(),
            Some("payload")
        );
        assert_eq!(
            sync_event(r#"{"type":"acknowledge","device_id":"t","seq":9}"#),
            SyncEvent::Acknowledge { device_id: "t".into(), seq: 9 }
        );
        assert!(matches!(
            sync_event(r#"{"type":"queue_status_request","device_id":"t"}"#),
            SyncEvent::QueueStatus { .. }
        ));
        assert_eq!(
            field(&rejected(r#"{"type":"sync_error","device_id":"t","error_type":"network"}"#)).as_deref(),
            Some("error_message")
        );
        assert_eq!(field(&rejected(r#"{"type":"sync_error","device_id":"t","error_type":"n","error_message":"m","retry_count":-1}"#)).as_deref(), Some("retry_count"));
        let SyncEvent::SyncConflict(c) = sync_event(
            r#"{"type":"sync_conflict","device_id":"t","table":"p","record_id":1,"local_version":2,"server_version":3,"local_data":{"a":1},"server_data":{"a":0}}"#,
        ) else {
            panic!()
        };
        assert_eq!((c.base_version, c.data.is_some()), (Some(3), true));
    }

    #[test]
    fn peek_id_reads_only_a_valid_id() {
        assert_eq!(peek_id(r#"{"type":"x","id":"a"}"#).as_deref(), Some("a"));
        assert_eq!(peek_id(r#"{"id":5}"#), None);
        assert_eq!(peek_id("garbage"), None);
    }
}
