//! `/socket.io/`: Engine.IO 4 into a Session actor that speaks Socket.IO (PROTOCOL.md section
//! 10), beside `/ws` on the same port.
//!
//! Both transports are served: `websocket` from the start (a Flutter app with
//! `setTransports(['websocket'])`), and HTTP long-polling with the upgrade to websocket (the
//! JavaScript and Flutter-web default), see `polling` and `upgrade`. The token may come with the
//! handshake (`?token=`, `Authorization`) or in the namespace CONNECT's payload; it is checked at
//! the CONNECT. Handshake errors answer as the reference server does: HTTP 400 with
//! `{"code", "message"}`.

mod polling;
mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws as actix_ws;
use serde::Serialize;
use tokio_stream_shim::receiver_stream;

pub use self::polling::PollingSessions;
use self::polling::{Bridge, Taken};
use super::auth;
use super::error::ApiError;
use super::query::Query;
use super::ws;
use crate::actors::outbox::{self, Outbox};
use crate::actors::session::{ConnectionSlot, SocketIoWire, Wire};
use crate::http::state::AppState;
use crate::protocol::socketio::{ENGINE_IO_VERSION, RECORD_SEPARATOR};

/// Registers `/socket.io/`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for path in ["/socket.io/", "/socket.io"] {
        cfg.route(path, web::get().to(get))
            .route(path, web::post().to(post))
            // A browser's preflight is answered by the CORS middleware (`http::origin`).
            .route(path, web::method(actix_web::http::Method::OPTIONS).to(HttpResponse::NoContent))
            .route(path, web::to(|| async { refuse(2, "Bad handshake method") }));
    }
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

/// What a request names: the version checked, the transport, the session.
struct Target {
    websocket: bool,
    sid: Option<String>,
}

/// The request's target, or Engine.IO's error code and message.
fn target(query: &Query) -> Result<Target, (u8, &'static str)> {
    if query.text("EIO") != Some(ENGINE_IO_VERSION) {
        return Err((5, "Unsupported protocol version: this server speaks Engine.IO 4 (EIO=4)"));
    }
    let websocket = match query.text("transport") {
        Some("websocket") => true,
        Some("polling") => false,
        _ => return Err((0, "Transport unknown")),
    };
    Ok(Target { websocket, sid: query.text("sid").map(str::to_owned) })
}

/// A new session's Socket.IO state, and its admission. A handshake whose token opens a session
/// takes a device's slot at once; any other waits for its CONNECT in one of the few slots kept
/// for sessions not yet joined (`limits.max_anonymous`, and per address), and takes a device's
/// slot on joining. Either way the token is checked again when the client joins.
async fn admitted(
    req: &HttpRequest,
    app: &AppState,
    sid: String,
    upgrades: bool,
) -> Result<(Wire, ConnectionSlot), ApiError> {
    let token = auth::presented(req, true);
    let opens = match &token {
        Some(token) => app.tokens.caller_of(&app.db, Some(token)).await.is_ok(),
        None => false,
    };
    let socketio = &app.settings.socketio;
    let wire = SocketIoWire::new(sid, upgrades, token, socketio.ping_interval(), socketio.ping_timeout());
    let (wire, slot) = match opens {
        true => (wire.joining_within(socketio.connect_timeout(), None), ws::admit(app)?),
        false => (
            wire.joining_within(socketio.connect_timeout(), Some(Arc::clone(&app.slots))),
            ws::admit_anonymous(app, req)?,
        ),
    };
    let wire = if socketio.conformance { wire.for_conformance() } else { wire };
    Ok((Wire::SocketIo(Box::new(wire)), slot))
}

fn new_sid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn get(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let target = match target(&query) {
        Ok(target) => target,
        Err((code, message)) => return Ok(refuse(code, message)),
    };
    match (target.websocket, target.sid) {
        (true, None) => {
            let (wire, slot) = admitted(&req, &app, new_sid(), false).await?;
            ws::start(&req, payload, &app, wire, None, slot)
        }
        (true, Some(sid)) => {
            let Some(bridge) = app.polling.get(&sid) else { return Ok(refuse(1, "Session ID unknown")) };
            let mut response = actix_ws::handshake(&req).map_err(|err| {
                ApiError::from(crate::protocol::WireError::invalid(
                    None,
                    None,
                    format!("not a WebSocket upgrade: {err}"),
                ))
            })?;
            let outbox = Outbox::on(req.conn_data::<outbox::Connection>().copied());
            let socket = if bridge.claim_upgrade() {
                upgrade::Upgrade::new(bridge, outbox.clone(), app.settings.limits.session_queue)
            } else {
                // Another websocket has the session: this one opens and is closed at once.
                upgrade::Upgrade::refused(bridge, outbox.clone())
            };
            let codec = actix_http::ws::Codec::new().max_size(app.settings.limits.max_message_bytes);
            let stream = actix_ws::WebsocketContext::with_codec(socket, payload, codec);
            Ok(response.streaming(outbox::drive(stream, outbox)))
        }
        (false, None) => handshake(&req, &app).await,
        (false, Some(sid)) => {
            let Some(bridge) = app.polling.get(&sid) else { return Ok(refuse(1, "Session ID unknown")) };
            if bridge.upgraded() {
                return Ok(refuse(3, "Bad request: the session has upgraded to websocket"));
            }
            let wait = app.settings.socketio.ping_interval() + Duration::from_secs(1);
            Ok(answer_poll(&app, &sid, bridge.poll(wait).await))
        }
    }
}

/// A long-polling handshake: a new session, and its open packet as the first poll's answer.
async fn handshake(req: &HttpRequest, app: &AppState) -> Result<HttpResponse, ApiError> {
    let sid = new_sid();
    let (wire, slot) = admitted(req, app, sid.clone(), true).await?;
    let (input, frames) = tokio::sync::mpsc::unbounded_channel();
    let body = ws::spawn(app, wire, None, slot, receiver_stream(frames), None);
    let socketio = &app.settings.socketio;
    let bridge = Bridge::start(
        input,
        body,
        app.settings.limits.max_message_bytes,
        socketio.ping_interval() + socketio.ping_timeout(),
        Arc::clone(&app.polling),
        sid.clone(),
    );
    app.polling.insert(sid.clone(), Arc::clone(&bridge));
    Ok(answer_poll(app, &sid, bridge.poll(Duration::from_secs(5)).await))
}

fn answer_poll(app: &AppState, sid: &str, taken: Option<Taken>) -> HttpResponse {
    let body = match taken {
        // Engine.IO allows one GET at a time: a second one is a protocol error.
        None => return refuse(3, "Bad request: a poll is already waiting"),
        Some(Taken::Packets(packets)) => packets.join(&RECORD_SEPARATOR.to_string()),
        Some(Taken::Closed) => {
            app.polling.remove(sid);
            crate::protocol::socketio::NOOP.to_owned()
        }
        Some(Taken::Gone) => {
            app.polling.remove(sid);
            return refuse(1, "Session ID unknown");
        }
        Some(Taken::Upgraded) => return refuse(3, "Bad request: the session has upgraded to websocket"),
    };
    HttpResponse::Ok().content_type("text/plain; charset=UTF-8").body(body)
}

async fn post(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let target = match target(&query) {
        Ok(target) => target,
        Err((code, message)) => return Ok(refuse(code, message)),
    };
    let (false, Some(sid)) = (target.websocket, target.sid) else {
        return Ok(refuse(3, "Bad request: a POST needs a polling session's sid"));
    };
    let Some(bridge) = app.polling.get(&sid) else { return Ok(refuse(1, "Session ID unknown")) };
    if bridge.upgraded() {
        return Ok(refuse(3, "Bad request: the session has upgraded to websocket"));
    }
    // Read up to `maxPayload` (the whole body, as Engine.IO counts it), and no further.
    let Some(body) = read_body(payload, app.settings.limits.max_message_bytes).await else {
        return Ok(HttpResponse::PayloadTooLarge()
            .json(EngineError { code: 3, message: "The body exceeds maxPayload" }));
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return Ok(refuse(3, "Bad request: the body is not UTF-8"));
    };
    if !bridge.send(text) {
        app.polling.remove(&sid);
        return Ok(refuse(1, "Session ID unknown"));
    }
    Ok(HttpResponse::Ok().content_type("text/html").body("ok"))
}

/// The request's body, or `None` past `limit` bytes (or when the connection fails).
async fn read_body(payload: web::Payload, limit: usize) -> Option<web::BytesMut> {
    use futures_util::StreamExt;
    let mut payload = std::pin::pin!(payload);
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > limit {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

mod tokio_stream_shim {
    //! A channel's receiving end as the byte stream a Session actor reads.

    use actix_http::error::PayloadError;
    use actix_web::web::Bytes;
    use futures_util::Stream;
    use tokio::sync::mpsc::UnboundedReceiver;

    pub fn receiver_stream(
        frames: UnboundedReceiver<Bytes>,
    ) -> impl Stream<Item = Result<Bytes, PayloadError>> {
        futures_util::stream::unfold(frames, |mut frames| async move {
            frames.recv().await.map(|frame| (Ok(frame), frames))
        })
    }
}
