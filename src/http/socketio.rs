//! `/socket.io/`: Engine.IO 4's handshake into a Session actor that speaks Socket.IO (PROTOCOL.md
//! section 10), beside `/ws` on the same port.
//!
//! The websocket transport is served: a client that connects with it straight away (a Flutter
//! app with `setTransports(['websocket'])`, python-socketio with `transports=['websocket']`) gets
//! a full session. The token may come with the handshake (`?token=`, `Authorization`) or in the
//! namespace CONNECT's payload; it is checked at the CONNECT. Handshake errors answer as the
//! reference server does: HTTP 400 with `{"code", "message"}`.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::auth::Access;
use super::error::ApiError;
use super::query::Query;
use super::ws;
use crate::actors::session::{SocketIoWire, TokenCheck, Wire};
use crate::http::state::AppState;
use crate::protocol::socketio::ENGINE_IO_VERSION;

/// Registers `/socket.io/`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/socket.io/", web::get().to(handshake)).route("/socket.io", web::get().to(handshake));
}

/// Engine.IO's error body.
#[derive(Serialize)]
struct EngineError<'a> {
    code: u8,
    message: &'a str,
}

fn refuse(code: u8, message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(EngineError { code, message })
}

async fn handshake(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    if query.text("EIO") != Some(ENGINE_IO_VERSION) {
        return Ok(refuse(5, "Unsupported protocol version: this server speaks Engine.IO 4 (EIO=4)"));
    }
    if query.text("sid").is_some() {
        // Sessions are made by a websocket handshake without one; none is resumed by id.
        return Ok(refuse(1, "Session ID unknown"));
    }
    match query.text("transport") {
        Some("websocket") => {}
        Some("polling") => {
            return Ok(refuse(0, "Long-polling is not served yet: connect with the websocket transport"));
        }
        _ => return Ok(refuse(0, "Transport unknown")),
    }
    let authorized = app.tokens.check(&req, Access::Device, true).is_ok();
    let tokens = app.tokens.clone();
    let check_token: TokenCheck = Arc::new(move |token| tokens.opens_session(token));
    let socketio = &app.settings.socketio;
    let wire = SocketIoWire::new(authorized, check_token, socketio.ping_interval(), socketio.ping_timeout());
    ws::start(&req, payload, &app, Wire::SocketIo(Box::new(wire)))
}
