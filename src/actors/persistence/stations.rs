//! Logged changes to stations and the catalogue (document 002), applied inside a batch.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{catalogue, order, station};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{ApplyError, Logged, audit};
use crate::domain::catalogue::CatalogueKind;
use crate::domain::fleet::AuditEntry;
use crate::domain::station::{Order, Station, StationCommand, StationError, transfer};
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
    catalogue::Entity::insert(catalogue::ActiveModel {
        name: Set(kind.name().to_owned()),
        body: Set(body.clone()),
        updated_at: Set(now),
        version: Set(1),
    })
    .on_conflict(
        OnConflict::column(catalogue::Column::Name)
            .update_columns([catalogue::Column::Body, catalogue::Column::UpdatedAt])
            .value(
                catalogue::Column::Version,
                Expr::col((catalogue::Entity, catalogue::Column::Version)).add(1),
            )
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    let version = store::catalogue::version(txn, kind).await?;
    audit(txn, now, AuditEntry::success("catalogue", "update", None, kind.name())).await?;
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
            station::Entity::insert(station::ActiveModel { created_at: Set(now), ..station_row(&s, now) })
                .exec_without_returning(txn)
                .await?;
            cache.wrote(&s);
            audit(txn, now, AuditEntry::success("station", "create", None, &s.id)).await?;
            let frame = state_frame(true, &s, seq);
            Ok(logged_station(s, "insert", frame))
        }
        StationCommand::Update { station_id, patch } => {
            let mut s = require(txn, cache, &station_id).await?;
            s.apply(patch);
            save(txn, &mut s, now).await?;
            let frame = state_frame(false, &s, seq);
            cache.wrote(&s);
            Ok(logged_station(s, "update", frame))
        }
        StationCommand::PlaceOrders { station_id, orders } => {
            let mut s = require(txn, cache, &station_id).await?;
            let added = s.place_orders(orders, now, || Uuid::now_v7().to_string());
            save(txn, &mut s, now).await?;
            let rows = added.clone().map(|i| order_row(&s.id, i, &s.orders[i]));
            order::Entity::insert_many(rows).exec_without_returning(txn).await?;
            let views = added.map(|i| OrderView::of(i, &s.orders[i])).collect();
            let frame = outbound::render(&OrdersAdded { device_id: &s.id, orders: views, seq }, None);
            cache.wrote(&s);
            Ok(logged_station(s, "update", frame))
        }
        StationCommand::UpdateOrder { station_id, target, patch } => {
            let mut s = require(txn, cache, &station_id).await?;
            let index = s.update_order(&target, patch)?;
            save(txn, &mut s, now).await?;
            let o = &s.orders[index];
            order::Entity::update_many()
                .set(order::ActiveModel { order_id: NotSet, ..order_row(&s.id, index, o) })
                .filter(order::Column::OrderId.eq(o.id.as_str()))
                .exec(txn)
                .await?;
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
            save(txn, &mut s, now).await?;
            order::Entity::delete_by_id(removed.id.clone()).exec(txn).await?;
            order::Entity::update_many()
                .col_expr(order::Column::Position, Expr::col(order::Column::Position).sub(1))
                .filter(order::Column::StationId.eq(s.id.as_str()))
                .filter(order::Column::Position.gt(position(index)))
                .exec(txn)
                .await?;
            let body = OrderRemoved { device_id: &s.id, order_index: index, order_id: &removed.id, seq };
            let frame = outbound::render(&body, None);
            cache.wrote(&s);
            Ok(logged_station(s, "update", frame))
        }
        StationCommand::Transfer { from, to } => {
            let mut source = require(txn, cache, &from).await?;
            let mut target = require(txn, cache, &to).await?;
            transfer(&mut source, &mut target)?;
            save(txn, &mut source, now).await?;
            save(txn, &mut target, now).await?;
            order::Entity::update_many()
                .col_expr(order::Column::StationId, Expr::value(target.id.clone()))
                .filter(order::Column::StationId.eq(source.id.as_str()))
                .exec(txn)
                .await?;
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
            order::Entity::delete_many().filter(order::Column::StationId.eq(s.id.as_str())).exec(txn).await?;
            station::Entity::delete_by_id(s.id.clone()).exec(txn).await?;
            cache.removed(&s.id);
            audit(txn, now, AuditEntry::success("station", "delete", None, &s.id)).await?;
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
            save(txn, &mut s, now).await?;
            order::Entity::delete_many().filter(order::Column::StationId.eq(s.id.as_str())).exec(txn).await?;
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

/// Writes the station's row with its version moved on by one. The station's orders are the
/// caller's to write, before it notes the station in the cache.
async fn save(txn: &DatabaseTransaction, s: &mut Station, now: DateTime<Utc>) -> Result<(), DbErr> {
    s.version += 1;
    station::Entity::update_many()
        .set(station::ActiveModel { station_id: NotSet, ..station_row(s, now) })
        .filter(station::Column::StationId.eq(s.id.as_str()))
        .exec(txn)
        .await?;
    Ok(())
}

fn station_row(s: &Station, now: DateTime<Utc>) -> station::ActiveModel {
    station::ActiveModel {
        station_id: Set(s.id.clone()),
        name: Set(s.name.clone()),
        is_running: Set(s.is_running),
        elapsed_seconds: Set(s.elapsed_seconds),
        mode: Set(s.mode.clone()),
        customer_count: Set(s.customer_count),
        notes: Set(s.notes.clone()),
        version: Set(s.version),
        created_at: NotSet,
        updated_at: Set(now),
    }
}

fn order_row(station_id: &str, index: usize, o: &Order) -> order::ActiveModel {
    order::ActiveModel {
        order_id: Set(o.id.clone()),
        station_id: Set(station_id.to_owned()),
        position: Set(position(index)),
        name: Set(o.name.clone()),
        price: Set(o.price),
        quantity: Set(o.quantity),
        notes: Set(o.notes.clone()),
        first_order_time: Set(o.first_order_time),
        last_order_time: Set(o.last_order_time),
    }
}

/// An order index as stored. Lists are bounded far below `i32::MAX` by the frame size.
fn position(index: usize) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}
