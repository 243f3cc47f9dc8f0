//! The REST error answer: the protocol's error body plus `"success": false`, with the HTTP
//! status of its code. Every handler error and every extractor error becomes one.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::actors::persistence::PersistError;
use crate::protocol::error::ErrorBody;
use crate::protocol::{ErrorCode, WireError};

/// An error answered over REST: the protocol error and the HTTP status of its code (or, where
/// the contract names another status for the situation, that one).
#[derive(Debug)]
pub struct ApiError {
    pub error: WireError,
    status: StatusCode,
}

impl ApiError {
    /// The error with a status other than its code's.
    pub fn with_status(error: WireError, status: StatusCode) -> Self {
        Self { error, status }
    }
}

impl From<WireError> for ApiError {
    fn from(error: WireError) -> Self {
        let status =
            StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self { error, status }
    }
}

impl From<PersistError> for ApiError {
    fn from(e: PersistError) -> Self {
        e.to_wire().into()
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        tracing::error!(%err, "database read failed");
        WireError::new(ErrorCode::DatabaseUnavailable, "The database could not be read").into()
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(err: actix::MailboxError) -> Self {
        tracing::error!(%err, "an actor did not answer");
        WireError::new(ErrorCode::ServerError, "The server could not handle the request").into()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// Every REST error's body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RestError<'a> {
    /// Always `false`.
    success: bool,
    #[serde(flatten)]
    body: ErrorBody<'a>,
}

impl<'a> RestError<'a> {
    /// The body of `error`.
    pub fn of(error: &'a WireError) -> Self {
        Self { success: false, body: error.body(None) }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(RestError { success: false, body: self.error.body(None) })
    }
}

/// The error answers most endpoints share, for the API description (`responses(…, Invalid,
/// Unauthorized, …)` in a handler's `#[utoipa::path]`); each is a `RestError`.
pub mod answers {
    use super::RestError;

    /// INVALID_PAYLOAD: the body, a path segment or a query parameter is wrong;
    /// `error_details.field` names it.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 400)]
    pub struct Invalid(pub RestError<'static>);

    /// INVALID_PAYLOAD: the body was not sent as `Content-Type: application/json`.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 415)]
    pub struct NotJson(pub RestError<'static>);

    /// UNAUTHORIZED: the token is missing or wrong.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 401)]
    pub struct Unauthorized(pub RestError<'static>);

    /// INSUFFICIENT_PERMISSIONS: the device token on an admin endpoint.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 403)]
    pub struct Forbidden(pub RestError<'static>);

    /// DATABASE_UNAVAILABLE: the database could not be read or written.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 503)]
    pub struct Unavailable(pub RestError<'static>);
}
