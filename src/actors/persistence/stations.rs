//! Logged changes to stations and the catalogue (document 002), applied inside a batch.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{ApplyError, Logged};
use crate::domain::catalogue::CatalogueKind;
use crate::domain::fleet::AuditEntry;
use crate::domain::station::{Station, StationCommand, StationError, transfer};
use crate::protocol::WireError;
use crate::protocol::outbound::{
    self, CatalogueUpdated, Frame, OrderModified, OrderRemoved, OrderView, OrdersAdded, StationData,
    StationRef, StationState, Transferred,
};
use crate::store;

/// Replaces a catalogue document.
pub(super) async fn apply_catalogue(
    txn: &DatabaseTransaction,
    seq: u64,
    now: DateTime<Utc>,
    kind: CatalogueKind,
    body: String,
) -> Result<(Logged, String), ApplyError> {
    let raw = RawValue::from_string(body.clone())
        .map_err(|e| ApplyError::Rejected(WireError::invalid(None, None, format!("not valid JSON ({e})"))))?;
    let version = store::catalogue::replace(txn, kind, &body, now).await?;
    store::audit::append(txn, now, AuditEntry::success("catalogue", "update", None, kind.name())).await?;
    let frame = outbound::render(&CatalogueUpdated { catalogue: kind, data: &raw, seq }, None);
    let logged = Logged {
        table_name: "catalogue".to_owned(),
        record_id: kind.name().to_owned(),
        operation: "update",
        data: Some(body.clone()),
        version: Some(version),
        frame,
        reply: None,
        notify: None,
    };
    Ok((logged, body))
}

/// Stations as the Persistence actor last wrote them, so that a write does not first read
/// the station back (two queries of the four a timer update costs). The actor is the only
/// writer, so the copy is exact: a batch works on the copy inside its transaction, and the
/// actor keeps it only when that transaction commits; after any failure it starts empty and
/// stations are read from the database again.
#[derive(Default)]
pub(super) struct StationCache {
    stations: HashMap<String, Station>,
}

/// Stations kept at most; a shop has tens. Past this, the copy starts again empty.
const CACHED_STATIONS: usize = 4096;

impl StationCache {
    /// The station as it stands in this transaction: from the copy, or read from the database.
    async fn get(&self, txn: &DatabaseTransaction, id: &str) -> Result<Option<Station>, DbErr> {
        match self.stations.get(id) {
            Some(s) => Ok(Some(s.clone())),
            None => store::stations::load(txn, id).await,
        }
    }

    /// Notes a station just written in this transaction.
    fn wrote(&mut self, s: &Station) {
        if self.stations.len() >= CACHED_STATIONS && !self.stations.contains_key(&s.id) {
            self.stations.clear();
        }
        self.stations.insert(s.id.clone(), s.clone());
    }

    fn removed(&mut self, id: &str) {
        self.stations.remove(id);
    }
}

/// Applies a station command.
pub(super) async fn apply_station(
    txn: &DatabaseTransaction,
    cache: &mut StationCache,
    seq: u64,
    now: DateTime<Utc>,
    command: StationCommand,
) -> Result<(Logged, Station), ApplyError> {
    match command {
        StationCommand::Create { station_id, name } => {
            if cache.get(txn, &station_id).await?.is_some() {
                return Err(StationError::Exists(station_id).into());
            }
            let s = Station::new(station_id, name);
            store::stations::insert(txn, &s, now).await?;
            cache.wrote(&s);
            store::audit::append(txn, now, AuditEntry::success("station", "create", None, &s.id)).await?;
            let frame = state_frame(true, &s, seq);
            Ok(logged_station(s, "insert", frame))
        }
        StationCommand::Update { station_id, patch } => {
            let mut s = require(txn, cache, &station_id).await?;
            s.apply(patch);
            store::stations::save(txn, &mut s, now).await?;
            let frame = state_frame(false, &s, seq);
            cache.wrote(&s);
            Ok(logged_station(s, "update", frame))
        }
        StationCommand::PlaceOrders { station_id, orders } => {
            let mut s = require(txn, cache, &station_id).await?;
            let added = s.place_orders(orders, now, || Uuid::now_v7().to_string());
            store::stations::save(txn, &mut s, now).await?;
            store::stations::add_orders(txn, &s, added.clone()).await?;
            let views = added.map(|i| OrderView::of(i, &s.orders[i])).collect();
            let frame = outbound::render(&OrdersAdded { device_id: &s.id, orders: views, seq }, None);
            cache.wrote(&s);
            Ok(logged_station(s, "update", frame))
        }
        StationCommand::UpdateOrder { station_id, target, patch } => {
            let mut s = require(txn, cache, &station_id).await?;
            let index = s.update_order(&target, patch)?;
            store::stations::save(txn, &mut s, now).await?;
            store::stations::update_order(txn, &s, index).await?;
            let o = &s.orders[index];
            let body = OrderModified {
                device_id: &s.id,
                order_index: index,
                order_id: &o.id,
                data: OrderView::of(index, o),
                seq,
            };
            let frame = outbound::render(&body, None);
            cache.wrote(&s);
            Ok(logged_station(s, "update", frame))
        }
        StationCommand::DeleteOrder { station_id, target } => {
            let mut s = require(txn, cache, &station_id).await?;
            let (index, removed) = s.remove_order(&target)?;
            store::stations::save(txn, &mut s, now).await?;
            store::stations::remove_order(txn, &s.id, index, &removed.id).await?;
            let body = OrderRemoved { device_id: &s.id, order_index: index, order_id: &removed.id, seq };
            let frame = outbound::render(&body, None);
            cache.wrote(&s);
            Ok(logged_station(s, "update", frame))
        }
        StationCommand::Transfer { from, to } => {
            let mut source = require(txn, cache, &from).await?;
            let mut target = require(txn, cache, &to).await?;
            transfer(&mut source, &mut target)?;
            store::stations::save(txn, &mut source, now).await?;
            store::stations::save(txn, &mut target, now).await?;
            store::stations::move_orders(txn, &source.id, &target.id).await?;
            let body = Transferred {
                from_device_id: &source.id,
                to_device_id: &target.id,
                message: format!("Device data transferred from {} to {}", source.id, target.id),
                seq,
            };
            let frame = outbound::render(&body, None);
            let data =
                serde_json::json!({ "from": StationData::of(&source), "to": StationData::of(&target) });
            cache.wrote(&source);
            cache.wrote(&target);
            let logged = Logged {
                table_name: "stations".to_owned(),
                record_id: source.id.clone(),
                operation: "update",
                data: Some(data.to_string()),
                version: Some(source.version),
                frame,
                reply: None,
                notify: None,
            };
            Ok((logged, target))
        }
        StationCommand::Delete { station_id } => {
            let s = require(txn, cache, &station_id).await?;
            store::stations::delete(txn, &s.id).await?;
            cache.removed(&s.id);
            store::audit::append(txn, now, AuditEntry::success("station", "delete", None, &s.id)).await?;
            let frame = outbound::render(&StationRef { cleared: false, device_id: &s.id, seq }, None);
            let logged = Logged {
                table_name: "stations".to_owned(),
                record_id: s.id.clone(),
                operation: "delete",
                data: None,
                version: Some(s.version + 1),
                frame,
                reply: None,
                notify: None,
            };
            // The station as it was.
            Ok((logged, s))
        }
        StationCommand::Reset { station_id } => {
            let mut s = require(txn, cache, &station_id).await?;
            s.reset();
            store::stations::save(txn, &mut s, now).await?;
            store::stations::clear_orders(txn, &s.id).await?;
            let frame = outbound::render(&StationRef { cleared: true, device_id: &s.id, seq }, None);
            cache.wrote(&s);
            Ok(logged_station(s, "update", frame))
        }
    }
}

/// `device_created` / `device_updated`: the whole station state.
fn state_frame(created: bool, s: &Station, seq: u64) -> Frame {
    outbound::render(&StationState { created, device_id: &s.id, data: StationData::of(s), seq }, None)
}

/// A change to one station, logged with its state after the change.
fn logged_station(s: Station, operation: &'static str, frame: Frame) -> (Logged, Station) {
    let logged = Logged {
        table_name: "stations".to_owned(),
        record_id: s.id.clone(),
        operation,
        data: serde_json::to_string(&StationData::of(&s)).ok(),
        version: Some(s.version),
        frame,
        reply: None,
        notify: None,
    };
    (logged, s)
}

/// The station, or `DEVICE_NOT_FOUND`.
async fn require(txn: &DatabaseTransaction, cache: &StationCache, id: &str) -> Result<Station, ApplyError> {
    cache.get(txn, id).await?.ok_or_else(|| StationError::NotFound(id.to_owned()).into())
}
