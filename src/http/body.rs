//! Reading request bodies: bounded by `limits.max_message_bytes` (413 past it), JSON (400 if
//! not), and within the protocol's bounds.

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::Value;

use super::error::ApiError;
use crate::protocol::inbound;
use crate::protocol::{ErrorCode, WireError};

/// A JSON body: its bytes as sent and its value.
pub struct JsonBody {
    pub raw: Bytes,
    pub value: Value,
}

/// Reads the whole body, up to `limit` bytes, and parses it as JSON.
pub async fn read_json(mut payload: web::Payload, limit: usize) -> Result<JsonBody, ApiError> {
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
