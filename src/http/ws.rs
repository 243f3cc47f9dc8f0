//! `GET /ws`: the upgrade into a Session actor, behind the device token and the connection
//! limit. The session's actor stream is driven by its own pump (see `actors::outbox`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;

use super::auth::Access;
use super::error::ApiError;
use crate::actors::outbox::{self, Outbox};
use crate::actors::session::Session;
use crate::protocol::{ErrorCode, WireError};
use crate::state::AppState;

/// Admission of WebSocket sessions: at most `limits.max_connections` at once.
#[derive(Debug)]
pub struct ConnectionSlots {
    open: AtomicUsize,
    max: usize,
}

/// One admitted session; frees its slot when dropped (with the session).
#[derive(Debug)]
pub struct ConnectionSlot(Arc<ConnectionSlots>);

impl ConnectionSlots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { open: AtomicUsize::new(0), max })
    }

    /// Takes a slot, or `None` when all are taken.
    pub fn try_acquire(self: &Arc<Self>) -> Option<ConnectionSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1))
            .ok()
            .map(|_| ConnectionSlot(Arc::clone(self)))
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Upgrades the request into a session.
pub async fn upgrade(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    app.tokens.check(&req, Access::Device, true)?;
    let Some(slot) = app.slots.try_acquire() else {
        tracing::warn!(max = app.settings.limits.max_connections, "connection limit reached");
        let error = WireError::new(
            ErrorCode::ServerError,
            format!("The server is at its connection limit ({})", app.settings.limits.max_connections),
        );
        return Err(ApiError::with_status(error, StatusCode::SERVICE_UNAVAILABLE));
    };
    let mut response = ws::handshake(&req).map_err(|err| {
        ApiError::from(WireError::invalid(None, None, format!("not a WebSocket upgrade: {err}")))
    })?;
    let outbox = Outbox::new();
    let session = Session::new(app.get_ref().clone(), outbox.clone(), slot);
    let codec = actix_http::ws::Codec::new().max_size(app.settings.limits.max_message_bytes);
    let stream = ws::WebsocketContext::with_codec(session, payload, codec);
    Ok(response.streaming(outbox::drive(stream, outbox)))
}
