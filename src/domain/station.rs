//! A station (document 002's "device"): a billed seat with a timer and an ordered list of
//! orders, and the rules of every cashier command on it.
//!
//! Orders are kept in a list; an order's `orderIndex` is its place in the list, so deleting one
//! moves the later ones up. Each order also has a server-made `orderId` that never changes, so a
//! client can name an order without racing another client's deletions.

use std::ops::Range;

use chrono::{DateTime, Utc};

/// The mode of a new or reset station.
pub const DEFAULT_MODE: &str = "single";
/// The customer count of a new or reset station.
pub const DEFAULT_CUSTOMER_COUNT: i64 = 1;

/// A station and its orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    pub id: String,
    pub name: String,
    pub is_running: bool,
    pub elapsed_seconds: i64,
    pub mode: String,
    pub customer_count: i64,
    pub notes: String,
    /// Grows by one with every write to the station or its orders.
    pub version: i64,
    pub orders: Vec<Order>,
}

/// One order on a station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub name: String,
    /// In the smallest currency unit.
    pub price: i64,
    pub quantity: i64,
    pub notes: String,
    pub first_order_time: DateTime<Utc>,
    pub last_order_time: DateTime<Utc>,
}

/// The timer fields a `device_update` may change; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StationPatch {
    pub is_running: Option<bool>,
    pub elapsed_seconds: Option<i64>,
    pub mode: Option<String>,
    pub customer_count: Option<i64>,
    pub notes: Option<String>,
}

/// An order as a client places it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub name: String,
    pub price: i64,
    pub quantity: i64,
    pub notes: Option<String>,
    pub first_order_time: Option<DateTime<Utc>>,
    pub last_order_time: Option<DateTime<Utc>>,
}

/// The order fields an `order_updated` may change; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderPatch {
    pub name: Option<String>,
    pub price: Option<i64>,
    pub quantity: Option<i64>,
    pub notes: Option<String>,
    pub first_order_time: Option<DateTime<Utc>>,
    pub last_order_time: Option<DateTime<Utc>>,
}

/// How a client names an order: by place, by id, or by both (which must then agree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRef {
    Index(usize),
    Id(String),
    Both { index: usize, id: String },
}

/// Every command on stations, from WebSocket or REST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StationCommand {
    Create { station_id: String, name: Option<String> },
    Update { station_id: String, patch: StationPatch },
    PlaceOrders { station_id: String, orders: Vec<NewOrder> },
    UpdateOrder { station_id: String, target: OrderRef, patch: OrderPatch },
    DeleteOrder { station_id: String, target: OrderRef },
    Transfer { from: String, to: String },
    Delete { station_id: String },
    Reset { station_id: String },
}

impl StationCommand {
    /// The station the command is about (the source, for a transfer).
    pub fn station_id(&self) -> &str {
        match self {
            Self::Create { station_id, .. }
            | Self::Update { station_id, .. }
            | Self::PlaceOrders { station_id, .. }
            | Self::UpdateOrder { station_id, .. }
            | Self::DeleteOrder { station_id, .. }
            | Self::Delete { station_id }
            | Self::Reset { station_id } => station_id,
            Self::Transfer { from, .. } => from,
        }
    }
}

/// Why a command cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StationError {
    #[error("Device {0} does not exist")]
    NotFound(String),
    #[error("Device {0} already exists")]
    Exists(String),
    #[error("Device {0} is busy: it is running or has orders")]
    Busy(String),
    #[error("{0}")]
    OrderNotFound(String),
}

impl Station {
    /// A new idle station (document 002's `device_created` defaults).
    pub fn new(id: impl Into<String>, name: Option<String>) -> Self {
        let id = id.into();
        Self {
            name: name.unwrap_or_else(|| id.clone()),
            id,
            is_running: false,
            elapsed_seconds: 0,
            mode: DEFAULT_MODE.to_owned(),
            customer_count: DEFAULT_CUSTOMER_COUNT,
            notes: String::new(),
            version: 1,
            orders: Vec::new(),
        }
    }

    /// Running, or holding orders: a transfer may not land here.
    pub fn is_busy(&self) -> bool {
        self.is_running || !self.orders.is_empty()
    }

    /// Changes the fields the patch carries.
    pub fn apply(&mut self, patch: StationPatch) {
        if let Some(v) = patch.is_running {
            self.is_running = v;
        }
        if let Some(v) = patch.elapsed_seconds {
            self.elapsed_seconds = v;
        }
        if let Some(v) = patch.mode {
            self.mode = v;
        }
        if let Some(v) = patch.customer_count {
            self.customer_count = v;
        }
        if let Some(v) = patch.notes {
            self.notes = v;
        }
    }

    /// Appends orders, giving each an id from `new_id`; missing order times become `now`.
    /// Returns the indexes of the new orders.
    pub fn place_orders(
        &mut self,
        orders: Vec<NewOrder>,
        now: DateTime<Utc>,
        mut new_id: impl FnMut() -> String,
    ) -> Range<usize> {
        let start = self.orders.len();
        self.orders.extend(orders.into_iter().map(|o| {
            let first = o.first_order_time.unwrap_or(now);
            Order {
                id: new_id(),
                name: o.name,
                price: o.price,
                quantity: o.quantity,
                notes: o.notes.unwrap_or_default(),
                first_order_time: first,
                last_order_time: o.last_order_time.unwrap_or(first),
            }
        }));
        start..self.orders.len()
    }

    /// The index of the order `target` names.
    pub fn locate(&self, target: &OrderRef) -> Result<usize, StationError> {
        let by_id = |id: &str| self.orders.iter().position(|o| o.id == id);
        match target {
            OrderRef::Index(index) if *index < self.orders.len() => Ok(*index),
            OrderRef::Index(index) => Err(StationError::OrderNotFound(format!(
                "Order {index} does not exist on device {}",
                self.id
            ))),
            OrderRef::Id(id) => by_id(id).ok_or_else(|| {
                StationError::OrderNotFound(format!("Order {id} does not exist on device {}", self.id))
            }),
            OrderRef::Both { index, id } => match by_id(id) {
                Some(found) if found == *index => Ok(found),
                Some(found) => Err(StationError::OrderNotFound(format!(
                    "Order {id} is at index {found} on device {}, not {index}",
                    self.id
                ))),
                None => Err(StationError::OrderNotFound(format!(
                    "Order {id} does not exist on device {}",
                    self.id
                ))),
            },
        }
    }

    /// Changes the fields the patch carries on the order `target` names; returns its index.
    pub fn update_order(&mut self, target: &OrderRef, patch: OrderPatch) -> Result<usize, StationError> {
        let index = self.locate(target)?;
        let order = &mut self.orders[index];
        if let Some(v) = patch.name {
            order.name = v;
        }
        if let Some(v) = patch.price {
            order.price = v;
        }
        if let Some(v) = patch.quantity {
            order.quantity = v;
        }
        if let Some(v) = patch.notes {
            order.notes = v;
        }
        if let Some(v) = patch.first_order_time {
            order.first_order_time = v;
        }
        if let Some(v) = patch.last_order_time {
            order.last_order_time = v;
        }
        Ok(index)
    }

    /// Removes the order `target` names; later orders move up one index.
    /// Returns the removed order and the index it had.
    pub fn remove_order(&mut self, target: &OrderRef) -> Result<(usize, Order), StationError> {
        let index = self.locate(target)?;
        Ok((index, self.orders.remove(index)))
    }

    /// Clears the timer and the orders; the station and its name stay.
    pub fn reset(&mut self) {
        self.is_running = false;
        self.elapsed_seconds = 0;
        self.mode = DEFAULT_MODE.to_owned();
        self.customer_count = DEFAULT_CUSTOMER_COUNT;
        self.notes.clear();
        self.orders.clear();
    }
}

/// Moves the timer state and the orders of `from` onto `to` and resets `from`.
/// Refused when `to` is running or has orders. Each keeps its own id and name.
pub fn transfer(from: &mut Station, to: &mut Station) -> Result<(), StationError> {
    if to.is_busy() {
        return Err(StationError::Busy(to.id.clone()));
    }
    to.is_running = from.is_running;
    to.elapsed_seconds = from.elapsed_seconds;
    to.mode = std::mem::take(&mut from.mode);
    to.customer_count = from.customer_count;
    to.notes = std::mem::take(&mut from.notes);
    to.orders = std::mem::take(&mut from.orders);
    from.reset();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    fn order(name: &str, price: i64) -> NewOrder {
        NewOrder {
            name: name.into(),
            price,
            quantity: 1,
            notes: None,
            first_order_time: None,
            last_order_time: None,
        }
    }

    fn station_with(names: &[&str]) -> Station {
        let mut s = Station::new("pc1", None);
        let mut n = 0;
        s.place_orders(
            names.iter().map(|name| order(name, 100)).collect(),
            at("2026-02-03T00:00:00Z"),
            || {
                n += 1;
                format!("o{n}")
            },
        );
        s
    }

    fn names(s: &Station) -> Vec<&str> {
        s.orders.iter().map(|o| o.name.as_str()).collect()
    }

    #[test]
    fn a_new_station_is_idle_and_named_after_its_id() {
        let s = Station::new("pc10", None);
        assert_eq!(s.name, "pc10");
        assert!(!s.is_running);
        assert_eq!(s.elapsed_seconds, 0);
        assert_eq!(s.mode, "single");
        assert_eq!(s.customer_count, 1);
        assert_eq!(s.notes, "");
        assert!(s.orders.is_empty());
        assert!(!s.is_busy());
    }

    #[test]
    fn a_patch_changes_only_the_fields_it_carries() {
        let mut s = Station::new("pc1", None);
        s.apply(StationPatch { is_running: Some(true), notes: Some("VIP".into()), ..Default::default() });
        assert!(s.is_running);
        assert_eq!(s.notes, "VIP");
        assert_eq!(s.mode, "single");
        assert_eq!(s.customer_count, 1);
    }

    #[test]
    fn placed_orders_are_appended_with_their_indexes() {
        let mut s = station_with(&["tea"]);
        let added = s.place_orders(vec![order("cola", 1000), order("chips", 500)], Utc::now(), || "x".into());
        assert_eq!(added, 1..3);
        assert_eq!(names(&s), ["tea", "cola", "chips"]);
    }

    #[test]
    fn missing_order_times_default_to_now_and_last_follows_first() {
        let now = at("2026-02-03T02:25:33Z");
        let mut s = Station::new("pc1", None);
        let first = at("2026-02-03T01:00:00Z");
        s.place_orders(
            vec![order("tea", 1), NewOrder { first_order_time: Some(first), ..order("cola", 2) }],
            now,
            || "id".into(),
        );
        assert_eq!(s.orders[0].first_order_time, now);
        assert_eq!(s.orders[0].last_order_time, now);
        assert_eq!(s.orders[1].first_order_time, first);
        assert_eq!(s.orders[1].last_order_time, first);
    }

    #[test]
    fn deleting_an_order_moves_the_later_ones_up() {
        let mut s = station_with(&["a", "b", "c", "d"]);
        let (index, removed) = s.remove_order(&OrderRef::Index(1)).expect("remove");
        assert_eq!((index, removed.name.as_str()), (1, "b"));
        assert_eq!(names(&s), ["a", "c", "d"]);
        assert_eq!(s.locate(&OrderRef::Id("o3".into())), Ok(1));
    }

    #[test]
    fn an_order_named_by_id_is_found_wherever_it_moved() {
        let mut s = station_with(&["a", "b", "c"]);
        s.remove_order(&OrderRef::Index(0)).expect("remove");
        let index = s
            .update_order(&OrderRef::Id("o3".into()), OrderPatch { quantity: Some(3), ..Default::default() })
            .expect("update");
        assert_eq!(index, 1);
        assert_eq!(s.orders[1].quantity, 3);
        assert_eq!(s.orders[1].name, "c");
    }

    #[test]
    fn an_index_and_id_that_disagree_are_refused() {
        let s = station_with(&["a", "b"]);
        assert!(matches!(
            s.locate(&OrderRef::Both { index: 0, id: "o2".into() }),
            Err(StationError::OrderNotFound(_))
        ));
        assert_eq!(s.locate(&OrderRef::Both { index: 1, id: "o2".into() }), Ok(1));
    }

    #[test]
    fn an_order_past_the_end_is_not_found() {
        let mut s = station_with(&["a"]);
        assert!(matches!(s.remove_order(&OrderRef::Index(1)), Err(StationError::OrderNotFound(_))));
        assert!(matches!(
            s.update_order(&OrderRef::Id("nope".into()), OrderPatch::default()),
            Err(StationError::OrderNotFound(_))
        ));
        assert_eq!(names(&s), ["a"]);
    }

    #[test]
    fn an_order_patch_changes_only_the_fields_it_carries() {
        let mut s = station_with(&["كولا"]);
        s.update_order(
            &OrderRef::Index(0),
            OrderPatch { notes: Some("بارد جداً".into()), price: Some(1200), ..Default::default() },
        )
        .expect("update");
        let o = &s.orders[0];
        assert_eq!((o.name.as_str(), o.price, o.quantity, o.notes.as_str()), ("كولا", 1200, 1, "بارد جداً"));
    }

    #[test]
    fn reset_clears_timer_and_orders_but_keeps_the_station() {
        let mut s = station_with(&["a", "b"]);
        s.apply(StationPatch {
            is_running: Some(true),
            elapsed_seconds: Some(3600),
            mode: Some("multi".into()),
            customer_count: Some(4),
            notes: Some("VIP".into()),
        });
        s.name = "Corner PC".into();
        s.reset();
        assert_eq!(s, Station { name: "Corner PC".into(), ..Station::new("pc1", None) });
    }

    #[test]
    fn transfer_moves_timer_and_orders_and_resets_the_source() {
        let mut from = station_with(&["a", "b"]);
        from.apply(StationPatch {
            is_running: Some(true),
            elapsed_seconds: Some(3600),
            mode: Some("multi".into()),
            customer_count: Some(2),
            notes: Some("VIP customer".into()),
        });
        let moved_orders = from.orders.clone();
        let mut to = Station::new("pc5", Some("Window".into()));
        transfer(&mut from, &mut to).expect("transfer");

        assert!(to.is_running);
        assert_eq!(to.elapsed_seconds, 3600);
        assert_eq!(to.mode, "multi");
        assert_eq!(to.customer_count, 2);
        assert_eq!(to.notes, "VIP customer");
        assert_eq!(to.orders, moved_orders);
        assert_eq!((to.id.as_str(), to.name.as_str()), ("pc5", "Window"));
        assert_eq!(from, Station::new("pc1", None));
    }

    #[test]
    fn transfer_onto_a_running_station_is_refused_and_changes_nothing() {
        let mut from = station_with(&["a"]);
        let mut to = Station::new("pc5", None);
        to.is_running = true;
        let (before_from, before_to) = (from.clone(), to.clone());
        assert_eq!(transfer(&mut from, &mut to), Err(StationError::Busy("pc5".into())));
        assert_eq!((from, to), (before_from, before_to));
    }

    #[test]
    fn transfer_onto_a_station_with_orders_is_refused() {
        let mut from = Station::new("pc1", None);
        let mut to = station_with(&["x"]);
        to.id = "pc5".into();
        assert_eq!(transfer(&mut from, &mut to), Err(StationError::Busy("pc5".into())));
    }
}
