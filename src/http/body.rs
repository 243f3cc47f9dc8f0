//! Reading request bodies: declared JSON (`Content-Type: application/json`, 415 if not: a web
//! page on another site can send a `text/plain` POST without asking, never a JSON one), bounded
//! by `limits.max_message_bytes` (413 past it), JSON (400 if not), and within the protocol's
//! bounds. `JsonBody` is an extractor: a handler that takes one
//! gets a body that passed all three.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpMessage, HttpRequest, mime};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use super::error::ApiError;
use crate::http::state::AppState;
use crate::protocol::inbound;
use crate::protocol::{ErrorCode, WireError};

/// A JSON body: its bytes as sent and its value.
pub struct JsonBody {
    pub raw: Bytes,
    pub value: Value,
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<web::Data<AppState>>().map(|app| app.settings.limits.max_message_bytes);
        let declared = declared_json(req);
        let payload = payload.take();
        Box::pin(async move {
            declared?;
            let limit =
                limit.ok_or_else(|| WireError::new(ErrorCode::ServerError, "no application state"))?;
            read_json(payload, limit).await
        })
    }
}

/// Whether the request says its body is JSON (`application/json`, or a `+json` type), or 415.
fn declared_json(req: &HttpRequest) -> Result<(), ApiError> {
    let declared = req.mime_type().ok().flatten();
    let json = declared.as_ref().is_some_and(|mime| {
        mime.type_() == mime::APPLICATION
            && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
    });
    // No body at all needs no type (`POST /master-election` takes an empty one).
    let empty = declared.is_none()
        && req.headers().get(actix_web::http::header::CONTENT_LENGTH).is_some_and(|length| length == "0");
    if json || empty {
        return Ok(());
    }
    let named = declared.map_or_else(|| "none".to_owned(), |mime| mime.essence_str().to_owned());
    let error = WireError::invalid(
        None,
        None,
        format!("A body must be sent as Content-Type: application/json (this one: {named})"),
    );
    Err(ApiError::with_status(error, StatusCode::UNSUPPORTED_MEDIA_TYPE))
}

/// Reads the whole body, up to `limit` bytes, and parses it as JSON.
async fn read_json(payload: Payload, limit: usize) -> Result<JsonBody, ApiError> {
    let mut payload = std::pin::pin!(payload);
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|err| ApiError::from(WireError::invalid(None, None, format!("body: {err}"))))?;
        if buf.len() + chunk.len() > limit {
            let error =
                WireError::new(ErrorCode::MessageTooLarge, format!("A body is limited to {limit} bytes"));
            return Err(ApiError::with_status(error, StatusCode::PAYLOAD_TOO_LARGE));
        }
        buf.extend_from_slice(&chunk);
    }
    let value: Value = serde_json::from_slice(&buf).map_err(|err| {
        ApiError::from(WireError::invalid(None, None, format!("the body is not valid JSON ({err})")))
    })?;
    inbound::check_body_bounds(&value)?;
    Ok(JsonBody { raw: buf.freeze(), value })
}
