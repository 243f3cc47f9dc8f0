//! What the server sends about stations, orders and the catalogue (section 6).

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Kind, Message, message};
use crate::domain::catalogue::CatalogueKind;
use crate::domain::station::{Order, Station};
use crate::protocol::time;

/// A station (a cashier device of document 002) as it stands.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationView<'a> {
    pub device_id: &'a str,
    pub data: StationData<'a>,
}

/// A station's state: its timer and its orders.
#[derive(Serialize, utoipa::ToSchema)]
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
#[derive(Serialize, utoipa::ToSchema)]
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
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationState<'a> {
    /// `device_created` when set, else `device_updated`.
    #[serde(skip)]
    pub created: bool,
    pub device_id: &'a str,
    pub data: StationData<'a>,
    pub seq: u64,
}

/// `order_added`: the new orders, each with its index and id.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrdersAdded<'a> {
    pub device_id: &'a str,
    pub orders: Vec<OrderView<'a>>,
    pub seq: u64,
}

/// `order_modified`: the whole order after the change.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderModified<'a> {
    pub device_id: &'a str,
    pub order_index: usize,
    pub order_id: &'a str,
    pub data: OrderView<'a>,
    pub seq: u64,
}

/// `order_removed`: the place and id the order had.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderRemoved<'a> {
    pub device_id: &'a str,
    pub order_index: usize,
    pub order_id: &'a str,
    pub seq: u64,
}

/// `device_transferred`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transferred<'a> {
    pub from_device_id: &'a str,
    pub to_device_id: &'a str,
    pub message: String,
    pub seq: u64,
}

/// `device_removed` and `device_cleared`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationRef<'a> {
    /// `device_cleared` when set, else `device_removed`.
    #[serde(skip)]
    pub cleared: bool,
    pub device_id: &'a str,
    pub seq: u64,
}

/// `categories_updated` and `prices_updated`: the document as the admin sent it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CatalogueUpdated<'a> {
    #[serde(skip)]
    pub catalogue: CatalogueKind,
    #[schema(value_type = serde_json::Value)]
    pub data: &'a RawValue,
    pub seq: u64,
}

message! {
    OrdersAdded<'a> => OrderAdded,
    OrderModified<'a> => OrderModified,
    OrderRemoved<'a> => OrderRemoved,
    Transferred<'a> => DeviceTransferred,
}

impl Message for StationState<'_> {
    fn kind(&self) -> Kind {
        if self.created { Kind::DeviceCreated } else { Kind::DeviceUpdated }
    }
}

impl Message for StationRef<'_> {
    fn kind(&self) -> Kind {
        if self.cleared { Kind::DeviceCleared } else { Kind::DeviceRemoved }
    }
}

impl Message for CatalogueUpdated<'_> {
    fn kind(&self) -> Kind {
        match self.catalogue {
            CatalogueKind::Categories => Kind::CategoriesUpdated,
            CatalogueKind::Prices => Kind::PricesUpdated,
        }
    }
}
