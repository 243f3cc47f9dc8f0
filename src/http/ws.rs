//! `GET /ws`: the upgrade into a Session actor, behind the device token and the connection
//! limit. The session's actor stream is driven by its own pump (see `actors::outbox`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use std::sync::Arc;

use super::auth::Access;
use super::error::ApiError;
use crate::actors::outbox::{self, Outbox};
use crate::actors::session::{Session, Wire};
use crate::http::state::AppState;
use crate::protocol::{ErrorCode, WireError};

/// Upgrades the request into a session.
pub async fn upgrade(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    app.tokens.check(&req, Access::Device, true)?;
    start(&req, payload, &app, Wire::Plain)
}

/// Admits a session (the connection limit), completes the WebSocket handshake and starts the
/// Session actor speaking `wire`, driven by its pump.
pub fn start(
    req: &HttpRequest,
    payload: web::Payload,
    app: &AppState,
    wire: Wire,
) -> Result<HttpResponse, ApiError> {
    let Some(slot) = app.slots.try_acquire() else {
        tracing::warn!(max = app.settings.limits.max_connections, "connection limit reached");
        let error = WireError::new(
            ErrorCode::ServerError,
            format!("The server is at its connection limit ({})", app.settings.limits.max_connections),
        );
        return Err(ApiError::with_status(error, StatusCode::SERVICE_UNAVAILABLE));
    };
    let mut response = ws::handshake(req).map_err(|err| {
        ApiError::from(WireError::invalid(None, None, format!("not a WebSocket upgrade: {err}")))
    })?;
    let outbox = Outbox::new();
    let session = Session::new(Arc::clone(&app.sessions), wire, outbox.clone(), slot);
    let codec = actix_http::ws::Codec::new().max_size(app.settings.limits.max_message_bytes);
    let stream = ws::WebsocketContext::with_codec(session, payload, codec);
    Ok(response.streaming(outbox::drive(stream, outbox)))
}
