//! The cashier REST API (document 002): stations, their orders, the catalogue. It mirrors the
//! WebSocket events so that a client without WebSocket still works; every write goes through
//! the Persistence actor like the event would and is broadcast to every session.
//!
//! Creating and deleting stations and writing the catalogue need the admin token; the rest are
//! device endpoints.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::auth::{AdminAuth, DeviceAuth};
use super::body::JsonBody;
use super::error::answers::{Forbidden, Invalid, Unauthorized, Unavailable};
use super::error::{ApiError, RestError};
use super::routes::Routes;
use crate::actors::persistence::{self, Origin, StationWritten, Write};
use crate::domain::catalogue::{CatalogueKind, CatalogueWrite};
use crate::domain::station::{OrderRef, Station, StationCommand};
use crate::http::state::AppState;
use crate::protocol::inbound;
use crate::protocol::inbound::{
    CreateStationMsg, OrderPatchMsg, OrdersMsg, StationPatchMsg, TransferTargetMsg,
};
use crate::protocol::outbound::{OrderView, StationView};
use crate::protocol::{ErrorCode, WireError};
use crate::store;

/// The stations' part of the API description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    get_one,
    create,
    update,
    remove,
    place_orders,
    update_order,
    delete_order,
    reset,
    transfer,
    get_categories,
    put_categories,
    get_prices,
    put_prices
))]
pub struct Api;

/// Registers the cashier routes.
pub fn routes(r: &mut Routes<'_>) {
    r.at("/cashier/devices", |p| p.get(list).post(create))
        .at("/cashier/devices/{id}", |p| p.get(get_one).patch(update).delete(remove))
        .at("/cashier/devices/{id}/orders", |p| p.post(place_orders))
        .at("/cashier/devices/{id}/orders/{index}", |p| p.patch(update_order).delete(delete_order))
        .at("/cashier/devices/{id}/reset", |p| p.post(reset))
        .at("/cashier/devices/{id}/transfer", |p| p.post(transfer))
        .at("/cashier/categories", |p| p.get(get_categories).put(put_categories))
        .at("/cashier/prices", |p| p.get(get_prices).put(put_prices));
}

/// A station as REST answers it, with the `seq` of the change that produced it.
#[derive(Serialize, utoipa::ToSchema)]
struct StationReply<'a> {
    #[serde(flatten)]
    station: StationView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

/// `GET /cashier/devices`.
#[derive(Serialize, utoipa::ToSchema)]
struct StationList<'a> {
    devices: Vec<StationView<'a>>,
}

/// A station's order list, after a change to it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct OrdersReply<'a> {
    device_id: &'a str,
    orders: Vec<OrderView<'a>>,
    seq: u64,
}

fn station_reply(status: StatusCode, station: &Station, seq: Option<u64>) -> HttpResponse {
    HttpResponse::build(status).json(StationReply { station: StationView::of(station), seq })
}

fn orders_reply(station: &Station, seq: u64) -> HttpResponse {
    let orders = station.orders.iter().enumerate().map(|(i, o)| OrderView::of(i, o)).collect();
    HttpResponse::Ok().json(OrdersReply { device_id: &station.id, orders, seq })
}

async fn persist<W: Write>(app: &AppState, write: W) -> Result<W::Output, ApiError> {
    Ok(persistence::persist(&app.persistence, write, Origin::Rest).await?)
}

async fn persist_station(app: &AppState, command: StationCommand) -> Result<(Station, u64), ApiError> {
    let StationWritten { station, seq } = persist(app, command).await?;
    Ok((station, seq))
}

fn station_id(path: &web::Path<String>) -> Result<String, ApiError> {
    inbound::station_id_param(path.as_str())?;
    Ok(path.as_str().to_owned())
}

#[utoipa::path(
    get,
    path = "/cashier/devices",
    tag = "stations",
    summary = "Every station",
    responses((status = 200, body = StationList), Unauthorized, Unavailable),
    security((), ("device_token" = []))
)]
async fn list(_auth: DeviceAuth, app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let txn = store::snapshot(&app.db).await?;
    let stations = store::stations::list(&txn).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(StationList { devices: stations.iter().map(StationView::of).collect() }))
}

#[utoipa::path(
    get,
    path = "/cashier/devices/{id}",
    tag = "stations",
    summary = "One station",
    params(("id" = String, Path, description = "The station's id")),
    responses((status = 200, body = StationReply), Unauthorized, (status = 404, description = "DEVICE_NOT_FOUND: no such station", body = RestError), Unavailable),
    security((), ("device_token" = []))
)]
async fn get_one(
    _auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = station_id(&path)?;
    let txn = store::snapshot(&app.db).await?;
    let station = store::stations::load(&txn, &id).await?;
    txn.commit().await?;
    match station {
        Some(station) => Ok(station_reply(StatusCode::OK, &station, None)),
        None => Err(WireError::new(ErrorCode::DeviceNotFound, format!("Device {id} does not exist")).into()),
    }
}

#[utoipa::path(
    post,
    path = "/cashier/devices",
    tag = "stations",
    summary = "Create a station",
    request_body = CreateStationMsg,
    responses((status = 201, description = "Created; `seq` is the change's", body = StationReply), Invalid, Unauthorized, Forbidden, (status = 409, description = "DEVICE_EXISTS", body = RestError), Unavailable),
    security(("admin_token" = []))
)]
async fn create(auth: AdminAuth, app: web::Data<AppState>, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let command = inbound::create_station_body(&body.value)?;
    let (station, seq) = persist_station(&app, command).await?;
    auth.record(&app, "create_station", None, &format!("station {}", station.id)).await;
    Ok(station_reply(StatusCode::CREATED, &station, Some(seq)))
}

#[utoipa::path(
    patch,
    path = "/cashier/devices/{id}",
    tag = "stations",
    summary = "Change a station's timer, mode, customers or notes",
    params(("id" = String, Path, description = "The station's id")),
    request_body = StationPatchMsg,
    responses((status = 200, body = StationReply), Invalid, Unauthorized, (status = 404, description = "DEVICE_NOT_FOUND: no such station", body = RestError), Unavailable),
    security((), ("device_token" = []))
)]
async fn update(
    _auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let station_id = station_id(&path)?;
    let patch = inbound::station_patch_body(&body.value)?;
    let (station, seq) = persist_station(&app, StationCommand::Update { station_id, patch }).await?;
    Ok(station_reply(StatusCode::OK, &station, Some(seq)))
}

#[utoipa::path(
    delete,
    path = "/cashier/devices/{id}",
    tag = "stations",
    summary = "Delete a station",
    params(("id" = String, Path, description = "The station's id")),
    responses((status = 204, description = "Deleted"), Unauthorized, Forbidden, (status = 404, description = "DEVICE_NOT_FOUND: no such station", body = RestError), Unavailable),
    security(("admin_token" = []))
)]
async fn remove(
    auth: AdminAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let station_id = station_id(&path)?;
    let details = format!("station {station_id}");
    persist(&app, StationCommand::Delete { station_id }).await?;
    auth.record(&app, "delete_station", None, &details).await;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/cashier/devices/{id}/orders",
    tag = "stations",
    summary = "Add orders to a station",
    params(("id" = String, Path, description = "The station's id")),
    request_body = OrdersMsg,
    responses((status = 200, body = OrdersReply), Invalid, Unauthorized, (status = 404, description = "DEVICE_NOT_FOUND: no such station", body = RestError), Unavailable),
    security((), ("device_token" = []))
)]
async fn place_orders(
    _auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let station_id = station_id(&path)?;
    let orders = inbound::place_orders_body(&body.value)?;
    let (station, seq) = persist_station(&app, StationCommand::PlaceOrders { station_id, orders }).await?;
    Ok(orders_reply(&station, seq))
}

fn order_path(path: &web::Path<(String, String)>) -> Result<(String, usize), ApiError> {
    let (id, index) = path.as_ref();
    inbound::station_id_param(id)?;
    let index = index
        .parse::<u64>()
        .ok()
        .filter(|i| *i <= inbound::MAX_NUMBER)
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| {
            ApiError::from(WireError::invalid(
                Some("orderIndex"),
                None,
                "must be an integer within 0..=9223372036854775807",
            ))
        })?;
    Ok((id.clone(), index))
}

#[utoipa::path(
    patch,
    path = "/cashier/devices/{id}/orders/{index}",
    tag = "stations",
    summary = "Change an order",
    params(("id" = String, Path, description = "The station's id"), ("index" = u64, Path, description = "The order's place in the list, from 0")),
    request_body = OrderPatchMsg,
    responses((status = 200, body = OrdersReply), Invalid, Unauthorized, (status = 404, description = "DEVICE_NOT_FOUND or ORDER_NOT_FOUND", body = RestError), Unavailable),
    security((), ("device_token" = []))
)]
async fn update_order(
    _auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let (station_id, index) = order_path(&path)?;
    let patch = inbound::order_patch_body(&body.value)?;
    let command = StationCommand::UpdateOrder { station_id, target: OrderRef::Index(index), patch };
    let (station, seq) = persist_station(&app, command).await?;
    Ok(orders_reply(&station, seq))
}

#[utoipa::path(
    delete,
    path = "/cashier/devices/{id}/orders/{index}",
    tag = "stations",
    summary = "Remove an order",
    params(("id" = String, Path, description = "The station's id"), ("index" = u64, Path, description = "The order's place in the list, from 0")),
    responses((status = 204, description = "Removed"), Unauthorized, (status = 404, description = "DEVICE_NOT_FOUND or ORDER_NOT_FOUND", body = RestError), Unavailable),
    security((), ("device_token" = []))
)]
async fn delete_order(
    _auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (station_id, index) = order_path(&path)?;
    persist_station(&app, StationCommand::DeleteOrder { station_id, target: OrderRef::Index(index) }).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/cashier/devices/{id}/reset",
    tag = "stations",
    summary = "Reset a station: timer stopped, orders cleared",
    params(("id" = String, Path, description = "The station's id")),
    responses((status = 200, body = StationReply), Unauthorized, (status = 404, description = "DEVICE_NOT_FOUND: no such station", body = RestError), Unavailable),
    security((), ("device_token" = []))
)]
async fn reset(
    _auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let station_id = station_id(&path)?;
    let (station, seq) = persist_station(&app, StationCommand::Reset { station_id }).await?;
    Ok(station_reply(StatusCode::OK, &station, Some(seq)))
}

#[utoipa::path(
    post,
    path = "/cashier/devices/{id}/transfer",
    tag = "stations",
    summary = "Move a station's session and orders to an idle station",
    params(("id" = String, Path, description = "The station's id")),
    request_body = TransferTargetMsg,
    responses((status = 200, description = "The target station after the move", body = StationReply), Invalid, Unauthorized, (status = 404, description = "DEVICE_NOT_FOUND: no such station", body = RestError), (status = 409, description = "DEVICE_BUSY: the target is in use", body = RestError), Unavailable),
    security((), ("device_token" = []))
)]
async fn transfer(
    _auth: DeviceAuth,
    app: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let from = station_id(&path)?;
    let command = inbound::transfer_body(&from, &body.value)?;
    let (target, seq) = persist_station(&app, command).await?;
    Ok(station_reply(StatusCode::OK, &target, Some(seq)))
}

async fn get_catalogue(app: &AppState, kind: CatalogueKind) -> Result<HttpResponse, ApiError> {
    let body = store::catalogue::get(&app.db, kind).await?.unwrap_or_else(|| "null".to_owned());
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}

async fn put_catalogue(
    app: &AppState,
    kind: CatalogueKind,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    // Stored and returned byte for byte as sent. `JsonBody` parsed it, so it is JSON and UTF-8.
    let text = String::from_utf8(body.raw.to_vec())
        .map_err(|_| ApiError::from(WireError::invalid(None, None, "the body is not UTF-8")))?;
    let stored = persist(app, CatalogueWrite { kind, body: text }).await?;
    Ok(HttpResponse::Ok().content_type("application/json").body(stored))
}

#[utoipa::path(
    get,
    path = "/cashier/categories",
    tag = "stations",
    summary = "The categories document, as last stored (`null` before any)",
    responses((status = 200, description = "The document, byte for byte as stored", body = serde_json::Value), Unauthorized, Unavailable),
    security((), ("device_token" = []))
)]
async fn get_categories(_auth: DeviceAuth, app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    get_catalogue(&app, CatalogueKind::Categories).await
}

#[utoipa::path(
    put,
    path = "/cashier/categories",
    tag = "stations",
    summary = "Replace the categories document",
    request_body = serde_json::Value,
    responses((status = 200, description = "The document as stored", body = serde_json::Value), Invalid, Unauthorized, Forbidden, Unavailable),
    security(("admin_token" = []))
)]
async fn put_categories(
    auth: AdminAuth,
    app: web::Data<AppState>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let stored = put_catalogue(&app, CatalogueKind::Categories, body).await?;
    auth.record(&app, "put_catalogue", None, "categories").await;
    Ok(stored)
}

#[utoipa::path(
    get,
    path = "/cashier/prices",
    tag = "stations",
    summary = "The prices document, as last stored (`null` before any)",
    responses((status = 200, description = "The document, byte for byte as stored", body = serde_json::Value), Unauthorized, Unavailable),
    security((), ("device_token" = []))
)]
async fn get_prices(_auth: DeviceAuth, app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    get_catalogue(&app, CatalogueKind::Prices).await
}

#[utoipa::path(
    put,
    path = "/cashier/prices",
    tag = "stations",
    summary = "Replace the prices document",
    request_body = serde_json::Value,
    responses((status = 200, description = "The document as stored", body = serde_json::Value), Invalid, Unauthorized, Forbidden, Unavailable),
    security(("admin_token" = []))
)]
async fn put_prices(
    auth: AdminAuth,
    app: web::Data<AppState>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let stored = put_catalogue(&app, CatalogueKind::Prices, body).await?;
    auth.record(&app, "put_catalogue", None, "prices").await;
    Ok(stored)
}
