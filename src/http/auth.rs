//! The admin and device tokens (PROTOCOL.md section 8): who may call which endpoint.
//!
//! Admin endpoints need the admin token. Device endpoints and `/ws` need the device token when
//! one is set (the admin token opens them too); without one they are open. Tokens are compared
//! in constant time and never logged.

use std::io::Write;
use std::path::{Path, PathBuf};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::{Ready, ready};
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::http::state::AppState;
use crate::protocol::{ErrorCode, WireError};
use crate::settings::AuthSettings;

/// The tokens in force.
#[derive(Clone)]
pub struct Tokens {
    admin: String,
    device: Option<String>,
}

/// Where the generated admin token is written, under the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// What an endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Admin,
    Device,
}

impl Tokens {
    /// The tokens of the settings; an empty admin token is replaced by a random one written to
    /// `<data_dir>/admin-token` with mode 0600. Returns the tokens and, when one was made, the
    /// file it went to.
    pub fn from_settings(auth: &AuthSettings, data_dir: &Path) -> std::io::Result<(Self, Option<PathBuf>)> {
        let device = (!auth.device_token.is_empty()).then(|| auth.device_token.clone());
        if !auth.admin_token.is_empty() {
            return Ok((Self { admin: auth.admin_token.clone(), device }, None));
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let admin: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        write_secret(&path, &admin)?;
        Ok((Self { admin, device }, Some(path)))
    }

    /// Whether `token` opens a session: the device token, or the admin token (any token when no
    /// device token is set).
    pub fn opens_session(&self, token: &str) -> bool {
        same(token, &self.admin) || self.device.as_deref().is_none_or(|device| same(token, device))
    }

    /// Whether a device token is required on `/ws` and the device endpoints.
    pub fn device_required(&self) -> bool {
        self.device.is_some()
    }

    /// Checks the request's token for `access`: 401 without a valid token, 403 when a valid
    /// device token is used on an admin endpoint.
    pub fn check(&self, req: &HttpRequest, access: Access, allow_query: bool) -> Result<(), ApiError> {
        let presented = bearer(req).or_else(|| if allow_query { query_token(req) } else { None });
        let is_admin = presented.as_deref().is_some_and(|t| same(t, &self.admin));
        let is_device = match (&self.device, presented.as_deref()) {
            (Some(device), Some(t)) => same(t, device),
            _ => false,
        };
        match access {
            Access::Admin if is_admin => Ok(()),
            Access::Admin if is_device => Err(forbidden()),
            Access::Admin => Err(unauthorized("This endpoint needs the admin token")),
            Access::Device if self.device.is_none() || is_admin || is_device => Ok(()),
            Access::Device => Err(unauthorized("This endpoint needs the device token")),
        }
    }
}

/// A request that carries the admin token (an extractor: the handler runs only if it does).
pub struct AdminAuth;

/// A request that may use the device endpoints: the device token when one is set, or the admin
/// token (an extractor).
pub struct DeviceAuth;

fn check_access(req: &HttpRequest, access: Access) -> Result<(), ApiError> {
    let app = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::from(WireError::new(ErrorCode::ServerError, "no application state")))?;
    app.tokens.check(req, access, false)
}

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check_access(req, Access::Admin).map(|()| Self))
    }
}

impl FromRequest for DeviceAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check_access(req, Access::Device).map(|()| Self))
    }
}

fn unauthorized(message: &'static str) -> ApiError {
    WireError::new(ErrorCode::Unauthorized, message).into()
}

fn forbidden() -> ApiError {
    WireError::new(ErrorCode::InsufficientPermissions, "This endpoint needs the admin token").into()
}

/// Constant-time comparison (only the lengths may differ in time).
fn same(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

/// The `token` query parameter (malformed query strings yield none).
fn query_token(req: &HttpRequest) -> Option<String> {
    let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(req.query_string()).ok()?;
    pairs.into_inner().into_iter().find(|(key, _)| key == "token").map(|(_, value)| value)
}

/// Writes a secret file readable by its owner only, replacing any earlier one.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn tokens(device: Option<&str>) -> Tokens {
        Tokens { admin: "admin-secret".into(), device: device.map(str::to_owned) }
    }

    fn with_bearer(token: &str) -> HttpRequest {
        TestRequest::default().insert_header((AUTHORIZATION, format!("Bearer {token}"))).to_http_request()
    }

    #[test]
    fn the_admin_token_opens_admin_and_device_endpoints() {
        let t = tokens(Some("dev"));
        assert!(t.check(&with_bearer("admin-secret"), Access::Admin, false).is_ok());
        assert!(t.check(&with_bearer("admin-secret"), Access::Device, false).is_ok());
    }

    #[test]
    fn a_device_token_on_an_admin_endpoint_is_forbidden() {
        let err = tokens(Some("dev")).check(&with_bearer("dev"), Access::Admin, false).expect_err("refused");
        assert_eq!(err.error.code, ErrorCode::InsufficientPermissions);
    }

    #[test]
    fn a_wrong_or_missing_token_is_unauthorized() {
        let t = tokens(Some("dev"));
        let err = t.check(&with_bearer("nope"), Access::Device, false).expect_err("refused");
        assert_eq!(err.error.code, ErrorCode::Unauthorized);
        let bare = TestRequest::default().to_http_request();
        assert_eq!(
            t.check(&bare, Access::Admin, false).expect_err("refused").error.code,
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn device_endpoints_are_open_without_a_device_token() {
        let bare = TestRequest::default().to_http_request();
        assert!(tokens(None).check(&bare, Access::Device, false).is_ok());
    }

    #[test]
    fn the_query_token_is_read_only_where_allowed() {
        let req = TestRequest::default().uri("/ws?token=dev").to_http_request();
        let t = tokens(Some("dev"));
        assert!(t.check(&req, Access::Device, true).is_ok());
        assert!(t.check(&req, Access::Device, false).is_err());
    }

    #[test]
    fn a_generated_admin_token_is_written_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = AuthSettings { admin_token: String::new(), device_token: String::new() };
        let (t, path) = Tokens::from_settings(&auth, dir.path()).expect("tokens");
        let path = path.expect("a file was written");
        let stored = std::fs::read_to_string(&path).expect("read");
        assert_eq!(stored.trim(), t.admin);
        assert_eq!(t.admin.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
