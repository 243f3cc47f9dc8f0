//! The tokens (PROTOCOL.md section 8, docs/SECURITY.md): who may call which endpoint, and who
//! a session speaks as.
//!
//! Admin endpoints need the admin token. Device endpoints and sessions take the fleet token
//! (`auth.device_token`, any device), a device's own token (`dst_…`, issued by an admin: that
//! device only) or the admin token; without a fleet token and with `auth.require_device_token`
//! off they are open to anyone. Tokens are compared in constant time and never logged; of a
//! device's own token only a hash of its secret is stored.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::{LocalBoxFuture, Ready, ready};
use rand::RngCore;
use sea_orm::DatabaseConnection;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::jwt::JwtVerifier;
pub use crate::domain::caller::{self, Caller};
use crate::domain::fleet::IssuedToken;
use crate::http::state::AppState;
use crate::protocol::{ErrorCode, WireError};
use crate::settings::AuthSettings;
use crate::store;

/// The tokens in force.
#[derive(Clone)]
pub struct Tokens {
    admin: String,
    /// The named admin tokens (`auth.admin_tokens`).
    admins: Vec<(String, String)>,
    /// The fleet token (`auth.device_token`): it may speak for any device.
    fleet: Option<String>,
    /// Device endpoints and sessions need a token even without a fleet token (only devices'
    /// own tokens then open them).
    required: bool,
    /// Devices' JWTs, when a key for them is configured.
    jwt: Option<Arc<JwtVerifier>>,
}

/// Where the generated admin token is written, under the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The name the admin token's actions are recorded under.
pub const ADMIN_NAME: &str = "admin";

/// What an endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Admin,
    Device,
}

/// What the settings' tokens make of a presented token, before a device's own is looked up.
enum Settled {
    Known(Caller),
    /// A device's own token, to look up: its id and secret.
    LookUp {
        id: String,
        secret: String,
    },
    Refused(ApiError),
}

impl Tokens {
    /// The tokens of the settings; an empty admin token is replaced by a random one written to
    /// `<data_dir>/admin-token` with mode 0600. Returns the tokens and, when one was made, the
    /// file it went to.
    pub fn from_settings(auth: &AuthSettings, data_dir: &Path) -> std::io::Result<(Self, Option<PathBuf>)> {
        let fleet = (!auth.device_token.is_empty()).then(|| auth.device_token.clone());
        let required = auth.require_device_token;
        let admins = auth.admin_tokens.iter().map(|n| (n.name.clone(), n.token.clone())).collect();
        let jwt =
            JwtVerifier::new(&auth.jwt_secret, &auth.jwt_jwks_file, &auth.jwt_issuer, &auth.jwt_audience)
                .map_err(|err| std::io::Error::other(format!("auth.jwt_jwks_file: {err}")))?
                .map(Arc::new);
        if !auth.admin_token.is_empty() {
            return Ok((Self { admin: auth.admin_token.clone(), admins, fleet, required, jwt }, None));
        }
        let admin = random_hex(32);
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        write_secret(&path, &admin)?;
        Ok((Self { admin, admins, fleet, required, jwt }, Some(path)))
    }

    /// Whether a token is required on `/ws` and the device endpoints.
    pub fn device_required(&self) -> bool {
        self.required || self.fleet.is_some() || self.jwt.is_some()
    }

    /// The name of the admin token `token` is, if it is one (every token is compared).
    fn admin_name(&self, token: &str) -> Option<&str> {
        let mut found = same(token, &self.admin).then_some(ADMIN_NAME);
        for (name, admin) in &self.admins {
            if same(token, admin) {
                found = found.or(Some(name));
            }
        }
        found
    }

    /// Checks the request's token for an admin endpoint and gives the admin token's name: 401
    /// without a valid token, 403 when a device's token (the fleet's or its own) is used on one.
    pub fn check_admin(&self, req: &HttpRequest) -> Result<String, ApiError> {
        let presented = bearer(req);
        if let Some(name) = presented.as_deref().and_then(|t| self.admin_name(t)) {
            return Ok(name.to_owned());
        }
        match presented.as_deref() {
            Some(t) if self.fleet.as_deref().is_some_and(|fleet| same(t, fleet)) => Err(forbidden()),
            Some(t) if DeviceToken::parse(t).is_some() || JwtVerifier::looks_like(t) => Err(forbidden()),
            _ => Err(unauthorized("This endpoint needs the admin token")),
        }
    }

    /// Who the request speaks as on a device endpoint or session: its token (the bearer header,
    /// or `?token=` where `allow_query`), looked up in `db` when it is a device's own.
    pub async fn caller(
        &self,
        db: &DatabaseConnection,
        req: &HttpRequest,
        allow_query: bool,
    ) -> Result<Caller, ApiError> {
        self.caller_of(db, presented(req, allow_query).as_deref()).await
    }

    /// Who a presented token (or none) speaks as.
    pub async fn caller_of(
        &self,
        db: &DatabaseConnection,
        presented: Option<&str>,
    ) -> Result<Caller, ApiError> {
        match self.settle(presented) {
            Settled::Known(caller) => Ok(caller),
            Settled::Refused(error) => Err(error),
            Settled::LookUp { id, secret } => {
                let row = store::tokens::find(db, &id).await.map_err(ApiError::from)?;
                match row {
                    Some(row)
                        if row.revoked_at.is_none() && same(&hash_secret(&secret), &row.secret_hash) =>
                    {
                        Ok(Caller::Device { device_id: row.device_id, token_id: row.id, expires: None })
                    }
                    _ => Err(unauthorized("The token is not valid (unknown, or revoked)")),
                }
            }
        }
    }

    fn settle(&self, presented: Option<&str>) -> Settled {
        let Some(token) = presented else {
            return match self.device_required() {
                true => Settled::Refused(unauthorized("This endpoint needs a device token")),
                false => Settled::Known(Caller::Open),
            };
        };
        if self.admin_name(token).is_some() {
            return Settled::Known(Caller::Admin);
        }
        if self.fleet.as_deref().is_some_and(|fleet| same(token, fleet)) {
            return Settled::Known(Caller::Fleet);
        }
        if let Some(jwt) = self.jwt.as_ref().filter(|_| JwtVerifier::looks_like(token)) {
            return match jwt.verify(token) {
                Ok(verified) => Settled::Known(Caller::Device {
                    device_id: verified.device_id,
                    token_id: caller::JWT.to_owned(),
                    expires: Some(verified.expires),
                }),
                Err(why) => Settled::Refused(
                    WireError::new(ErrorCode::Unauthorized, format!("The token is not valid: {why}")).into(),
                ),
            };
        }
        if let Some(parsed) = DeviceToken::parse(token) {
            return Settled::LookUp { id: parsed.id.to_owned(), secret: parsed.secret.to_owned() };
        }
        match self.device_required() {
            true => Settled::Refused(unauthorized("The token is not valid")),
            false => Settled::Known(Caller::Open),
        }
    }
}

/// A device's own token as written: `dst_<id>_<secret>`.
pub struct DeviceToken<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

impl<'a> DeviceToken<'a> {
    const PREFIX: &'static str = "dst_";

    fn parse(token: &'a str) -> Option<Self> {
        let (id, secret) = token.strip_prefix(Self::PREFIX)?.split_once('_')?;
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(id, 16) && hex(secret, 64)).then_some(Self { id, secret })
    }

    /// A new token for `device_id`: the token to hand over once, and what is stored of it.
    pub fn issue(device_id: &str, issued_by: &str) -> (String, IssuedToken) {
        let (id, secret) = (random_hex(8), random_hex(32));
        let token = format!("{}{id}_{secret}", Self::PREFIX);
        let stored = IssuedToken {
            id,
            device_id: device_id.to_owned(),
            secret_hash: hash_secret(&secret),
            issued_by: issued_by.to_owned(),
        };
        (token, stored)
    }
}

/// SHA-256 of a token's secret part, in hex. The secret is 256 random bits: a fast hash
/// suffices (nothing to guess that a slow one would protect).
fn hash_secret(secret: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// A request that carries an admin token, and that token's name (an extractor: the handler
/// runs only if it does).
pub struct AdminAuth(pub String);

/// A request that may use the device endpoints, and who it speaks as (an extractor).
pub struct DeviceAuth(pub Caller);

fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::from(WireError::new(ErrorCode::ServerError, "no application state")))
}

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(app_state(req).and_then(|app| app.tokens.check_admin(req)).map(Self))
    }
}

impl FromRequest for DeviceAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let app = app_state(&req)?;
            app.tokens.caller(&app.db, &req, false).await.map(Self)
        })
    }
}

impl AdminAuth {
    /// Records an admin action done (its operation, device and details) in the audit log
    /// under the token's name. A failure to record is logged; the action stands.
    pub async fn record(&self, app: &AppState, operation: &str, device_id: Option<&str>, details: &str) {
        use crate::actors::persistence::{self, Origin};
        use crate::domain::fleet::{AuditEntry, FleetWrite};
        let details = format!("by {}: {details}", self.0);
        let entry = AuditEntry::success("admin", operation, device_id, &details);
        if let Err(err) =
            persistence::persist(&app.persistence, vec![FleetWrite::Audit(entry)], Origin::Rest).await
        {
            tracing::error!(%err, operation, "an admin action could not be recorded in the audit log");
        }
    }
}

impl DeviceAuth {
    /// Whether the caller may speak for `device_id` (403 if not).
    pub fn speaks_for(&self, device_id: &str) -> Result<(), ApiError> {
        self.0.speaks_for(device_id).map_err(|error| ApiError::with_status(error, StatusCode::FORBIDDEN))
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

/// The token a request presents: its bearer header, or (where `allow_query`) `?token=`.
pub fn presented(req: &HttpRequest, allow_query: bool) -> Option<String> {
    bearer(req).or_else(|| if allow_query { query_token(req) } else { None })
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

    fn tokens(fleet: Option<&str>) -> Tokens {
        Tokens {
            admin: "admin-secret".into(),
            admins: vec![("alice".into(), "alice-secret-token".into())],
            fleet: fleet.map(str::to_owned),
            required: false,
            jwt: None,
        }
    }

    fn with_bearer(token: &str) -> HttpRequest {
        TestRequest::default().insert_header((AUTHORIZATION, format!("Bearer {token}"))).to_http_request()
    }

    fn settled(t: &Tokens, token: Option<&str>) -> Result<Caller, ErrorCode> {
        match t.settle(token) {
            Settled::Known(caller) => Ok(caller),
            Settled::Refused(error) => Err(error.error.code),
            Settled::LookUp { .. } => panic!("a device's own token"),
        }
    }

    #[test]
    fn the_admin_token_opens_admin_and_device_endpoints() {
        let t = tokens(Some("dev"));
        assert_eq!(t.check_admin(&with_bearer("admin-secret")).ok().as_deref(), Some("admin"));
        assert_eq!(t.check_admin(&with_bearer("alice-secret-token")).ok().as_deref(), Some("alice"));
        assert_eq!(settled(&t, Some("alice-secret-token")), Ok(Caller::Admin));
        assert_eq!(settled(&t, Some("admin-secret")), Ok(Caller::Admin));
    }

    #[test]
    fn a_device_token_on_an_admin_endpoint_is_forbidden() {
        let err = tokens(Some("dev")).check_admin(&with_bearer("dev")).expect_err("refused");
        assert_eq!(err.error.code, ErrorCode::InsufficientPermissions);
        let (own, _) = DeviceToken::issue("till-1", "admin");
        let err = tokens(None).check_admin(&with_bearer(&own)).expect_err("refused");
        assert_eq!(err.error.code, ErrorCode::InsufficientPermissions);
    }

    #[test]
    fn a_wrong_or_missing_token_is_unauthorized() {
        let t = tokens(Some("dev"));
        assert_eq!(settled(&t, Some("nope")), Err(ErrorCode::Unauthorized));
        assert_eq!(settled(&t, None), Err(ErrorCode::Unauthorized));
        let bare = TestRequest::default().to_http_request();
        assert_eq!(t.check_admin(&bare).expect_err("refused").error.code, ErrorCode::Unauthorized);
        let required = Tokens { required: true, ..tokens(None) };
        assert_eq!(settled(&required, None), Err(ErrorCode::Unauthorized));
    }

    #[test]
    fn device_endpoints_are_open_without_a_device_token() {
        assert_eq!(settled(&tokens(None), None), Ok(Caller::Open));
        assert_eq!(settled(&tokens(Some("dev")), Some("dev")), Ok(Caller::Fleet));
    }

    #[test]
    fn a_devices_own_token_is_looked_up_and_speaks_for_its_device_only() {
        let (token, stored) = DeviceToken::issue("till-1", "admin");
        assert!(token.starts_with("dst_"), "{token}");
        assert!(!token.contains(&stored.secret_hash), "only a hash is stored");
        let Settled::LookUp { id, secret } = tokens(None).settle(Some(&token)) else { panic!("looked up") };
        assert_eq!(id, stored.id);
        assert_eq!(hash_secret(&secret), stored.secret_hash);
        let caller = Caller::Device { device_id: "till-1".into(), token_id: id, expires: None };
        assert!(caller.speaks_for("till-1").is_ok());
        assert_eq!(
            caller.speaks_for("till-2").expect_err("refused").code,
            ErrorCode::InsufficientPermissions
        );
        assert!(Caller::Fleet.speaks_for("till-2").is_ok());
        assert!(DeviceToken::parse("dst_1234_abcd").is_none());
    }

    #[test]
    fn a_generated_admin_token_is_written_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = AuthSettings::open();
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
