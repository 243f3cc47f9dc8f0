//! Stations and orders (section 6, document 002): the WebSocket events and the REST bodies that
//! mirror them.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::super::error::WireError;
use super::ClientEvent;
use super::fields::*;
use crate::domain::station::{NewOrder, OrderPatch, OrderRef, StationCommand, StationPatch};

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

/// Checks a path segment used as a station id.
pub fn station_id_param(id: &str) -> Result<(), WireError> {
    check_id("deviceId", id)
}

pub(super) fn new_orders(orders: Vec<OrderMsg>, field: &str) -> Result<Vec<NewOrder>, WireError> {
    if orders.is_empty() {
        return Err(WireError::invalid(Some(field), None, "must hold at least one order"));
    }
    if orders.len() > MAX_ITEMS {
        return Err(WireError::invalid(Some(field), None, format!("must hold at most {MAX_ITEMS} orders")));
    }
    Ok(orders.into_iter().map(Into::into).collect())
}

pub(super) fn order_ref(index: Option<u64>, id: Option<WireId>) -> Result<OrderRef, WireError> {
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct StationIdMsg {
    device_id: WireId,
}

/// The body of `POST /cashier/devices`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateStationMsg {
    /// The station's id.
    #[schema(value_type = String, min_length = 1, max_length = 128)]
    device_id: WireId,
    name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeviceUpdateMsg {
    device_id: WireId,
    data: StationPatchMsg,
}

/// The fields of a station that a change sets (the body of `PATCH /cashier/devices/{id}`, the
/// `data` of a `device_update`); any left out stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationPatchMsg {
    is_running: Option<bool>,
    #[schema(value_type = Option<u64>)]
    elapsed_seconds: Option<AtLeast<0>>,
    mode: Option<String>,
    #[schema(value_type = Option<u64>)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderPlacedMsg {
    device_id: WireId,
    orders: Vec<OrderMsg>,
}

/// The body of `POST /cashier/devices/{id}/orders`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrdersMsg {
    /// At least one.
    #[schema(min_items = 1, max_items = 1000)]
    orders: Vec<OrderMsg>,
}

/// A new order.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderMsg {
    name: String,
    #[schema(value_type = u64)]
    price: AtLeast<0>,
    #[schema(value_type = u64, minimum = 1)]
    quantity: AtLeast<1>,
    notes: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    first_order_time: Option<ClientTime>,
    #[schema(value_type = Option<String>, format = DateTime)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderUpdatedMsg {
    device_id: WireId,
    #[serde(default, deserialize_with = "opt_number")]
    order_index: Option<u64>,
    order_id: Option<WireId>,
    data: OrderPatchMsg,
}

/// The fields of an order that a change sets; any left out stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPatchMsg {
    name: Option<String>,
    #[schema(value_type = Option<u64>)]
    price: Option<AtLeast<0>>,
    #[schema(value_type = Option<u64>, minimum = 1)]
    quantity: Option<AtLeast<1>>,
    notes: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    first_order_time: Option<ClientTime>,
    #[schema(value_type = Option<String>, format = DateTime)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderDeletedMsg {
    device_id: WireId,
    #[serde(default, deserialize_with = "opt_number")]
    order_index: Option<u64>,
    order_id: Option<WireId>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct TransferMsg {
    from_device_id: WireId,
    to_device_id: WireId,
}

/// The body of `POST /cashier/devices/{id}/transfer`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferTargetMsg {
    /// The station the orders move to; it must be idle.
    #[schema(value_type = String, min_length = 1, max_length = 128)]
    to_device_id: WireId,
}

/// The station and order events; `None` for another kind.
pub(super) fn event(
    kind: &str,
    value: &Value,
    _map: &Map<String, Value>,
) -> Result<Option<ClientEvent>, WireError> {
    let event = match kind {
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
        _ => return Ok(None),
    };
    Ok(Some(event))
}
