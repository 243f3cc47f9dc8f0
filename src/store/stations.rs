//! Stations and their orders, read into domain values.

use chrono::{DateTime, Utc};
use entity::{order, station};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

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
