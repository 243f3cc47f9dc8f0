//! The protocol's error codes and the one error body every reply uses, over WebSocket (an
//! `error` frame) and over REST (a JSON body with `success: false`).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

/// Every error code the server sends (PROTOCOL.md section 2, plus the REST-only codes noted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidPayload,
    UnknownEvent,
    MessageTooLarge,
    NotRegistered,
    InsufficientPermissions,
    Unauthorized,
    DeviceNotFound,
    /// Creating a station whose id is taken (an addition to the contract's table).
    DeviceExists,
    DeviceBusy,
    OrderNotFound,
    RecordNotFound,
    SyncConflict,
    DeviceNotActive,
    NoCandidates,
    ElectionFailed,
    RateLimited,
    SessionReplaced,
    ServerError,
    DatabaseUnavailable,
    /// REST only: no endpoint at that path.
    NotFound,
    /// REST only: the path exists, the method does not.
    MethodNotAllowed,
}

impl ErrorCode {
    /// The code as it appears in `code` and `error_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPayload => "INVALID_PAYLOAD",
            Self::UnknownEvent => "UNKNOWN_EVENT",
            Self::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Self::NotRegistered => "NOT_REGISTERED",
            Self::InsufficientPermissions => "INSUFFICIENT_PERMISSIONS",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::DeviceNotFound => "DEVICE_NOT_FOUND",
            Self::DeviceExists => "DEVICE_EXISTS",
            Self::DeviceBusy => "DEVICE_BUSY",
            Self::OrderNotFound => "ORDER_NOT_FOUND",
            Self::RecordNotFound => "RECORD_NOT_FOUND",
            Self::SyncConflict => "SYNC_CONFLICT",
            Self::DeviceNotActive => "DEVICE_NOT_ACTIVE",
            Self::NoCandidates => "NO_CANDIDATES",
            Self::ElectionFailed => "ELECTION_FAILED",
            Self::RateLimited => "RATE_LIMITED",
            Self::SessionReplaced => "SESSION_REPLACED",
            Self::ServerError => "SERVER_ERROR",
            Self::DatabaseUnavailable => "DATABASE_UNAVAILABLE",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
        }
    }

    /// Document 001's numeric code, where it has one.
    pub fn numeric(self) -> Option<u16> {
        match self {
            Self::InvalidPayload => Some(2004),
            Self::NotRegistered | Self::DeviceNotFound => Some(3004),
            Self::InsufficientPermissions => Some(3003),
            Self::Unauthorized => Some(3001),
            Self::SyncConflict => Some(2002),
            Self::DeviceNotActive => Some(4004),
            Self::NoCandidates | Self::ElectionFailed => Some(4003),
            Self::ServerError => Some(5002),
            Self::DatabaseUnavailable => Some(5001),
            _ => None,
        }
    }

    /// The HTTP status a REST answer with this code carries.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidPayload | Self::UnknownEvent => 400,
            Self::Unauthorized => 401,
            Self::NotRegistered | Self::InsufficientPermissions => 403,
            Self::DeviceNotFound | Self::OrderNotFound | Self::RecordNotFound | Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::DeviceExists
            | Self::DeviceBusy
            | Self::SyncConflict
            | Self::DeviceNotActive
            | Self::NoCandidates
            | Self::SessionReplaced => 409,
            Self::MessageTooLarge => 413,
            Self::RateLimited => 429,
            Self::ServerError => 500,
            Self::ElectionFailed | Self::DatabaseUnavailable => 503,
        }
    }
}

/// An error as the protocol reports it: a code, a human message and optional details
/// (for `INVALID_PAYLOAD`, which field and why).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct WireError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    pub details: Option<Value>,
}

impl WireError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self { code, message: message.into(), details: None }
    }

    /// `INVALID_PAYLOAD` naming the top-level `field` (and the full `path` to the bad value).
    pub fn invalid(field: Option<&str>, path: Option<&str>, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let message = match path.or(field) {
            Some(at) => format!("invalid {at}: {reason}"),
            None => format!("invalid message: {reason}"),
        };
        Self {
            code: ErrorCode::InvalidPayload,
            message: message.into(),
            details: Some(serde_json::json!({
                "field": field,
                "path": path.or(field),
                "reason": reason,
            })),
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The body shared by the WebSocket frame and the REST answer: every seed's field names.
    pub fn body<'a>(&'a self, reply_to: Option<&'a str>) -> ErrorBody<'a> {
        ErrorBody {
            status: "error",
            code: self.code.as_str(),
            error_code: self.code.as_str(),
            numeric_code: self.code.numeric(),
            message: &self.message,
            error: &self.message,
            error_message: &self.message,
            error_details: self.details.as_ref(),
            reply_to,
        }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// The fields of an error, serialized beside `type` (WebSocket) or `success` (REST).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// Always `error`.
    pub status: &'static str,
    /// The error code (section 2), e.g. `INVALID_PAYLOAD`.
    pub code: &'static str,
    /// The same code, under the name document 001 uses.
    pub error_code: &'static str,
    /// Document 001's numeric code, where it has one.
    pub numeric_code: Option<u16>,
    pub message: &'a str,
    pub error: &'a str,
    pub error_message: &'a str,
    /// What went wrong in detail: for `INVALID_PAYLOAD`, the `field`.
    #[schema(value_type = Option<Object>)]
    pub error_details: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serializes_as_its_name() {
        for code in [ErrorCode::InvalidPayload, ErrorCode::DatabaseUnavailable, ErrorCode::DeviceExists] {
            let json = serde_json::to_value(code).expect("serialize");
            assert_eq!(json, Value::String(code.as_str().to_owned()));
        }
    }

    #[test]
    fn the_error_body_carries_the_field_names_of_all_seeds() {
        let err = WireError::new(ErrorCode::DeviceNotFound, "Device pc1 does not exist");
        let json = serde_json::to_value(err.body(Some("c-17"))).expect("serialize");
        assert_eq!(json["code"], "DEVICE_NOT_FOUND");
        assert_eq!(json["error_code"], "DEVICE_NOT_FOUND");
        assert_eq!(json["numeric_code"], 3004);
        assert_eq!(json["message"], "Device pc1 does not exist");
        assert_eq!(json["error"], "Device pc1 does not exist");
        assert_eq!(json["error_message"], "Device pc1 does not exist");
        assert_eq!(json["status"], "error");
        assert_eq!(json["reply_to"], "c-17");
        assert!(json["error_details"].is_null());
    }

    #[test]
    fn invalid_payload_names_the_field() {
        let err = WireError::invalid(Some("data"), Some("data.elapsedSeconds"), "must be >= 0");
        assert_eq!(err.code, ErrorCode::InvalidPayload);
        let details = err.details.expect("details");
        assert_eq!(details["field"], "data");
        assert_eq!(details["path"], "data.elapsedSeconds");
    }
}
