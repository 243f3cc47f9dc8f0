//! Server messages rendered to frames. A frame is rendered once, as a `ByteString`, and the same
//! bytes are shared by every session that receives it. Every frame carries `type` and the server
//! `timestamp`; a direct reply carries `reply_to`.

use bytestring::ByteString;
use serde::Serialize;
use serde_json::value::RawValue;

use super::error::WireError;
use super::time;
use crate::domain::station::{Order, Station};

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    body: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
    timestamp: String,
}

/// Renders `{"type": kind, …body, "reply_to"?, "timestamp"}`.
pub fn frame<T: Serialize>(kind: &str, body: &T, reply_to: Option<&str>) -> ByteString {
    let envelope = Envelope { kind, body, reply_to, timestamp: time::now() };
    match serde_json::to_string(&envelope) {
        Ok(text) => ByteString::from(text),
        Err(err) => {
            // Only a bug in a server type can get here (every body is a plain struct).
            tracing::error!(kind, %err, "a server message could not be rendered");
            let fallback = WireError::new(super::ErrorCode::ServerError, "a reply could not be rendered");
            error_frame(&fallback, reply_to)
        }
    }
}

/// The `error` frame.
pub fn error_frame(error: &WireError, reply_to: Option<&str>) -> ByteString {
    let envelope =
        Envelope { kind: "error", body: &error.body(reply_to), reply_to: None, timestamp: time::now() };
    // The error body holds only strings, numbers and a JSON value: it always serializes.
    ByteString::from(serde_json::to_string(&envelope).unwrap_or_default())
}

/// A body with no fields of its own (`pong`).
#[derive(Serialize)]
pub struct Empty {}

/// The reply to a message with an `id` that the seeds give no reply to, once it is durable.
#[derive(Serialize)]
pub struct Ack {
    pub seq: u64,
}

/// The reply to `connect`.
#[derive(Serialize)]
pub struct Connected<'a> {
    pub success: bool,
    pub message: &'a str,
    pub session_id: &'a str,
    pub last_seq: u64,
    pub epoch: &'a str,
}

/// Sent after `connected` (document 000's flow).
#[derive(Serialize)]
pub struct ConnectionStatus {
    pub status: &'static str,
    pub connection_quality: &'static str,
    pub latency_ms: Option<u64>,
    pub active_devices: usize,
}

/// A resuming client whose history is not here: it must do a full sync.
#[derive(Serialize)]
pub struct ResyncRequired<'a> {
    pub epoch: &'a str,
    pub head_seq: u64,
    pub reason: &'a str,
}

/// The reply to `device_online`.
#[derive(Serialize)]
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
#[derive(Serialize)]
pub struct Registered<'a> {
    pub device_id: &'a str,
    pub role: &'static str,
}

/// The reply to `device_offline` and `device_shutdown`.
#[derive(Serialize)]
pub struct DeviceGoneAck<'a> {
    pub status: &'static str,
    pub device_id: &'a str,
    pub master_election_triggered: bool,
    pub message: String,
}

/// The reply to `heartbeat`.
#[derive(Serialize)]
pub struct HeartbeatAck<'a> {
    pub device_id: &'a str,
    pub status: &'static str,
    pub server_time: String,
}

/// A candidate, as `master_election` lists it.
#[derive(Serialize, Clone, Debug)]
pub struct CandidateView {
    pub device_id: String,
    pub priority: i32,
    pub capabilities: Vec<String>,
    pub last_seen: Option<String>,
}

/// `master_election`: an election has started.
#[derive(Serialize)]
pub struct ElectionStarted<'a> {
    pub election_id: &'a str,
    pub trigger_reason: &'static str,
    pub reason: &'static str,
    pub candidates: &'a [CandidateView],
    pub term: u64,
}

/// `role_change`: a device's role is changing (to `master`: please confirm with
/// `role_change_ack`).
#[derive(Serialize)]
pub struct RoleChange<'a> {
    pub device_id: &'a str,
    pub new_role: &'static str,
    pub previous_role: &'static str,
    pub reason: &'static str,
    pub election_id: &'a str,
    pub term: u64,
}

/// `master_elected`.
#[derive(Serialize, Clone, Debug)]
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

/// A change as sync sends it.
#[derive(Debug, Serialize)]
pub struct Change {
    pub seq: u64,
    pub table_name: String,
    pub record_id: serde_json::Value,
    pub operation: String,
    /// The record's state after the change (`null` after a delete), as stored.
    pub data: Option<Box<RawValue>>,
    pub version: Option<i64>,
    pub timestamp: String,
}

/// A conflict a device lost, as `sync_response.conflicts` lists it.
#[derive(Debug, Serialize)]
pub struct ConflictView {
    pub table: String,
    pub table_name: String,
    pub record_id: serde_json::Value,
    pub conflict_type: String,
    pub local_version: Option<i64>,
    pub server_version: i64,
    pub resolution: &'static str,
    pub resolution_method: String,
    pub timestamp: String,
}

/// A record as sync and `data_request` send it.
#[derive(Debug, Serialize)]
pub struct RecordView {
    pub record_id: serde_json::Value,
    pub data: Option<Box<RawValue>>,
    pub version: i64,
    pub updated_at: String,
}

/// `sync_response` (and, without `data`, a `/sync/pull` page).
#[derive(Serialize, Debug)]
pub struct SyncResponse {
    pub device_id: String,
    pub sync_type: &'static str,
    pub status: &'static str,
    pub sync_id: String,
    pub master_device_id: Option<String>,
    pub changes: Vec<Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<std::collections::BTreeMap<String, Vec<RecordView>>>,
    pub conflicts: Vec<ConflictView>,
    pub last_seq: u64,
    pub head_seq: u64,
    pub has_more: bool,
    pub epoch: String,
}

/// A station as REST returns it and as `device_created` carries it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StationView<'a> {
    pub device_id: &'a str,
    pub data: StationData<'a>,
}

/// A station's state: its timer and its orders.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StationData<'a> {
    pub name: &'a str,
    pub is_running: bool,
    pub elapsed_seconds: i64,
    pub mode: &'a str,
    pub customer_count: i64,
    pub notes: &'a str,
    pub orders: Vec<OrderView<'a>>,
}

/// An order with its place and id.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView<'a> {
    pub order_index: usize,
    pub order_id: &'a str,
    pub name: &'a str,
    pub price: i64,
    pub quantity: i64,
    pub notes: &'a str,
    pub first_order_time: String,
    pub last_order_time: String,
}

impl<'a> StationView<'a> {
    pub fn of(station: &'a Station) -> Self {
        Self { device_id: &station.id, data: StationData::of(station) }
    }
}

impl<'a> StationData<'a> {
    pub fn of(station: &'a Station) -> Self {
        Self {
            name: &station.name,
            is_running: station.is_running,
            elapsed_seconds: station.elapsed_seconds,
            mode: &station.mode,
            customer_count: station.customer_count,
            notes: &station.notes,
            orders: station.orders.iter().enumerate().map(|(i, o)| OrderView::of(i, o)).collect(),
        }
    }
}

impl<'a> OrderView<'a> {
    pub fn of(index: usize, order: &'a Order) -> Self {
        Self {
            order_index: index,
            order_id: &order.id,
            name: &order.name,
            price: order.price,
            quantity: order.quantity,
            notes: &order.notes,
            first_order_time: time::format(order.first_order_time),
            last_order_time: time::format(order.last_order_time),
        }
    }
}

/// `device_updated` and `device_created`: the whole station state after the change.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StationState<'a> {
    pub device_id: &'a str,
    pub data: StationData<'a>,
    pub seq: u64,
}

/// `order_added`: the new orders, each with its index and id.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrdersAdded<'a> {
    pub device_id: &'a str,
    pub orders: Vec<OrderView<'a>>,
    pub seq: u64,
}

/// `order_modified`: the whole order after the change.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderModified<'a> {
    pub device_id: &'a str,
    pub order_index: usize,
    pub order_id: &'a str,
    pub data: OrderView<'a>,
    pub seq: u64,
}

/// `order_removed`: the place and id the order had.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRemoved<'a> {
    pub device_id: &'a str,
    pub order_index: usize,
    pub order_id: &'a str,
    pub seq: u64,
}

/// `device_transferred`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transferred<'a> {
    pub from_device_id: &'a str,
    pub to_device_id: &'a str,
    pub message: String,
    pub seq: u64,
}

/// `device_removed` and `device_cleared`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StationRef<'a> {
    pub device_id: &'a str,
    pub seq: u64,
}

/// `categories_updated` and `prices_updated`: the document as the admin sent it.
#[derive(Serialize)]
pub struct CatalogueUpdated<'a> {
    pub data: &'a RawValue,
    pub seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_frame_has_type_fields_reply_to_and_a_timestamp() {
        let f = frame("ack", &Ack { seq: 7 }, Some("c-1"));
        let v: Value = serde_json::from_str(&f).expect("json");
        assert_eq!(v["type"], "ack");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["reply_to"], "c-1");
        let ts = v["timestamp"].as_str().expect("timestamp");
        assert!(time::parse(ts).is_some() && ts.ends_with('Z'));
    }

    #[test]
    fn an_error_frame_is_typed_error() {
        let err = WireError::new(super::super::ErrorCode::RateLimited, "slow down");
        let v: Value = serde_json::from_str(&error_frame(&err, None)).expect("json");
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "RATE_LIMITED");
        assert!(v.get("reply_to").is_none());
    }

    #[test]
    fn arabic_text_is_written_as_is() {
        let mut s = Station::new("pc1", Some("الزاوية".into()));
        s.notes = "بارد جداً".into();
        let f = frame(
            "device_updated",
            &StationState { device_id: &s.id, data: StationData::of(&s), seq: 1 },
            None,
        );
        assert!(f.contains("\"notes\":\"بارد جداً\""), "{f}");
        assert!(f.contains("الزاوية"));
    }
}
