//! `GET /ws`: the upgrade into a Session actor, behind the device token and the connection
//! limit. The session's actor stream is driven by its own pump (see `actors::outbox`).

use actix_http::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use std::sync::Arc;

use super::auth::Caller;
use super::error::ApiError;
use crate::actors::outbox::{self, Connection, Outbox, OutboxBody};
use crate::actors::session::{ConnectionSlot, Session, Wire};
use crate::http::state::AppState;
use crate::protocol::{ErrorCode, WireError};

/// Upgrades the request into a session.
pub async fn upgrade(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = app.tokens.caller(&app.db, &req, true).await?;
    let slot = admit(&app)?;
    start(&req, payload, &app, Wire::Plain, Some(caller), slot)
}

/// Completes the WebSocket handshake and starts the Session actor, admitted with `slot`,
/// speaking `wire` for `caller` (a Socket.IO session learns its caller later), driven by its
/// pump.
pub fn start(
    req: &HttpRequest,
    payload: web::Payload,
    app: &AppState,
    wire: Wire,
    caller: Option<Caller>,
    slot: ConnectionSlot,
) -> Result<HttpResponse, ApiError> {
    let mut response = ws::handshake(req).map_err(|err| {
        ApiError::from(WireError::invalid(None, None, format!("not a WebSocket upgrade: {err}")))
    })?;
    let connection = req.conn_data::<Connection>().copied();
    Ok(response.streaming(spawn(app, wire, caller, slot, payload, connection)))
}

/// A slot for one more Socket.IO session that has not joined with its token yet, or 503 past
/// `limits.max_anonymous`: such sessions cannot take the slots of devices.
pub fn admit_anonymous(app: &AppState, req: &HttpRequest) -> Result<ConnectionSlot, ApiError> {
    let address = req.peer_addr().map(|peer| crate::http::rate::canonical(peer.ip()));
    app.anonymous.try_acquire_for(address).ok_or_else(|| {
        tracing::warn!(max = app.settings.limits.max_anonymous, "too many sessions waiting to join");
        unavailable(format!("Too many sessions are waiting to join ({})", app.settings.limits.max_anonymous))
    })
}

/// A slot for one more session, or 503 at the connection limit.
pub fn admit(app: &AppState) -> Result<ConnectionSlot, ApiError> {
    app.slots.try_acquire().ok_or_else(|| {
        tracing::warn!(max = app.settings.limits.max_connections, "connection limit reached");
        unavailable(format!(
            "The server is at its connection limit ({})",
            app.settings.limits.max_connections
        ))
    })
}

/// A 503 `SERVER_ERROR` saying why no slot was free.
fn unavailable(message: String) -> ApiError {
    ApiError::with_status(WireError::new(ErrorCode::ServerError, message), StatusCode::SERVICE_UNAVAILABLE)
}

/// Starts a Session actor reading WebSocket frames from `input`; returns what it writes.
pub fn spawn<S>(
    app: &AppState,
    wire: Wire,
    caller: Option<Caller>,
    slot: ConnectionSlot,
    input: S,
    connection: Option<Connection>,
) -> OutboxBody
where
    S: futures_util::Stream<Item = Result<Bytes, PayloadError>> + 'static,
{
    let outbox = Outbox::on(connection);
    let session = Session::new(Arc::clone(&app.sessions), wire, outbox.clone(), slot, caller);
    let codec = actix_http::ws::Codec::new().max_size(app.settings.limits.max_message_bytes);
    let stream = ws::WebsocketContext::with_codec(session, input, codec);
    outbox::drive(stream, outbox)
}
