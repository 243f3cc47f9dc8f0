//! Stations and their orders: read into domain values here, and written here by the
//! Persistence actor inside its transactions.

use std::ops::Range;

use chrono::{DateTime, Utc};
use entity::{order, station};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use crate::domain::station::{Order, Station};

/// One station with its orders, or `None` when it does not exist.
pub async fn load<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<Station>, DbErr> {
    let Some(row) = station::Entity::find_by_id(id.to_owned()).one(db).await? else {
        return Ok(None);
    };
    let orders = order::Entity::find()
        .filter(order::Column::StationId.eq(id))
        .order_by_asc(order::Column::Position)
        .all(db)
        .await?;
    Ok(Some(to_station(row, orders)))
}

/// Every station with its orders, by id.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<Station>, DbErr> {
    Ok(list_with_times(db).await?.into_iter().map(|(station, _)| station).collect())
}

/// Every station with its orders and the time of its last write, by id.
pub async fn list_with_times<C: ConnectionTrait>(db: &C) -> Result<Vec<(Station, DateTime<Utc>)>, DbErr> {
    let rows = station::Entity::find().order_by_asc(station::Column::StationId).all(db).await?;
    let mut orders = order::Entity::find()
        .order_by_asc(order::Column::StationId)
        .order_by_asc(order::Column::Position)
        .all(db)
        .await?
        .into_iter()
        .peekable();
    let mut stations = Vec::with_capacity(rows.len());
    for row in rows {
        let mut own = Vec::new();
        // Orders of stations that sort before this one cannot exist (foreign key); skip defensively.
        while orders.peek().is_some_and(|o| o.station_id < row.station_id) {
            orders.next();
        }
        while let Some(o) = orders.next_if(|o| o.station_id == row.station_id) {
            own.push(o);
        }
        let updated_at = row.updated_at;
        stations.push((to_station(row, own), updated_at));
    }
    Ok(stations)
}

fn to_station(row: station::Model, orders: Vec<order::Model>) -> Station {
    Station {
        id: row.station_id,
        name: row.name,
        is_running: row.is_running,
        elapsed_seconds: row.elapsed_seconds,
        mode: row.mode,
        customer_count: row.customer_count,
        notes: row.notes,
        version: row.version,
        orders: orders
            .into_iter()
            .map(|o| Order {
                id: o.order_id,
                name: o.name,
                price: o.price,
                quantity: o.quantity,
                notes: o.notes,
                first_order_time: o.first_order_time,
                last_order_time: o.last_order_time,
            })
            .collect(),
    }
}

// ---- writes (the Persistence actor's, inside its transaction) ---------------------------

/// Stores a new station (without orders).
pub async fn insert<C: ConnectionTrait>(txn: &C, s: &Station, now: DateTime<Utc>) -> Result<(), DbErr> {
    station::Entity::insert(station::ActiveModel { created_at: Set(now), ..station_row(s, now) })
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Writes the station's row with its version moved on by one. Its orders are the caller's to
/// write.
pub async fn save<C: ConnectionTrait>(txn: &C, s: &mut Station, now: DateTime<Utc>) -> Result<(), DbErr> {
    s.version += 1;
    station::Entity::update_many()
        .set(station::ActiveModel { station_id: NotSet, ..station_row(s, now) })
        .filter(station::Column::StationId.eq(s.id.as_str()))
        .exec(txn)
        .await?;
    Ok(())
}

/// Stores the station's orders at `added` (new ones, at the end of its list).
pub async fn add_orders<C: ConnectionTrait>(txn: &C, s: &Station, added: Range<usize>) -> Result<(), DbErr> {
    let rows = added.map(|i| order_row(&s.id, i, &s.orders[i]));
    order::Entity::insert_many(rows).exec_without_returning(txn).await?;
    Ok(())
}

/// Writes the station's order at `index` as it is now.
pub async fn update_order<C: ConnectionTrait>(txn: &C, s: &Station, index: usize) -> Result<(), DbErr> {
    let o = &s.orders[index];
    order::Entity::update_many()
        .set(order::ActiveModel { order_id: NotSet, ..order_row(&s.id, index, o) })
        .filter(order::Column::OrderId.eq(o.id.as_str()))
        .exec(txn)
        .await?;
    Ok(())
}

/// Deletes the order that stood at `index`, and moves the ones after it up.
pub async fn remove_order<C: ConnectionTrait>(
    txn: &C,
    station_id: &str,
    index: usize,
    order_id: &str,
) -> Result<(), DbErr> {
    order::Entity::delete_by_id(order_id.to_owned()).exec(txn).await?;
    order::Entity::update_many()
        .col_expr(order::Column::Position, Expr::col(order::Column::Position).sub(1))
        .filter(order::Column::StationId.eq(station_id))
        .filter(order::Column::Position.gt(position(index)))
        .exec(txn)
        .await?;
    Ok(())
}

/// Moves every order of `from` to `to`, keeping their positions.
pub async fn move_orders<C: ConnectionTrait>(txn: &C, from: &str, to: &str) -> Result<(), DbErr> {
    order::Entity::update_many()
        .col_expr(order::Column::StationId, Expr::value(to.to_owned()))
        .filter(order::Column::StationId.eq(from))
        .exec(txn)
        .await?;
    Ok(())
}

/// Deletes every order of the station.
pub async fn clear_orders<C: ConnectionTrait>(txn: &C, station_id: &str) -> Result<(), DbErr> {
    order::Entity::delete_many().filter(order::Column::StationId.eq(station_id)).exec(txn).await?;
    Ok(())
}

/// Deletes the station and its orders.
pub async fn delete<C: ConnectionTrait>(txn: &C, station_id: &str) -> Result<(), DbErr> {
    clear_orders(txn, station_id).await?;
    station::Entity::delete_by_id(station_id.to_owned()).exec(txn).await?;
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
