//! Settings: the built-in defaults (this repository's `settings.toml`, compiled in), then the
//! settings file, then `DEVICE_SYNC__SECTION__KEY` environment variables, into typed sections.
//!
//! Read once at start by `main` (or by a test's `spawn_app`) and shared read-only afterwards.

use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};

/// The defaults, identical to the `settings.toml` at the root of the repository.
pub const DEFAULTS: &str = include_str!("../settings.toml");

/// Everything the server can be told, by section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub heartbeat: HeartbeatSettings,
    pub election: ElectionSettings,
    pub sync: SyncSettings,
    pub limits: LimitSettings,
    pub socketio: SocketIoSettings,
    pub cluster: ClusterSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// How long a connection whose answer went out before its request body was read to the end
    /// (an early 401 or 413) goes on reading that body before it is closed, so the client sees
    /// the answer rather than a reset.
    #[serde(default = "linger_s")]
    pub linger_s: f64,
    /// Origins (`https://till.example:8443`) whose web pages may use the server besides its own
    /// (`"*"`: any, which gives up the cross-site defence). A request from any other page is
    /// refused with 403 (docs/SECURITY.md).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// A PEM certificate chain and its key: with both, the port serves `https://` and `wss://`
    /// only. Read again on SIGHUP.
    #[serde(default)]
    pub tls_cert: PathBuf,
    #[serde(default)]
    pub tls_key: PathBuf,
}

fn linger_s() -> f64 {
    1.0
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub durability: Durability,
}

impl DatabaseSettings {
    /// The URL as it may be shown: its password (in the user part or a `password=` parameter)
    /// redacted.
    pub fn shown_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// `url` with any password in it redacted.
pub fn redact_url(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some(start) = url.find("://").map(|i| i + 3) {
        // The last `@` ends the user part, whatever a password left unencoded holds (`/`, `?`).
        if let Some(at) = url[start..].rfind('@').map(|i| start + i)
            && let Some(colon) = url[start..at].find(':').map(|i| start + i)
        {
            shown = format!("{}<redacted>{}", &url[..=colon], &url[at..]);
        }
    }
    match shown.find('?') {
        None => shown,
        Some(q) => {
            let (base, query) = shown.split_at(q + 1);
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=<redacted>"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}{}", query.join("&"))
        }
    }
}

impl std::fmt::Debug for DatabaseSettings {
    // A password in the URL never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.shown_url())
            .field("durability", &self.durability)
            .finish()
    }
}

impl Serialize for DatabaseSettings {
    // Serialized only to be shown (`check-config`): the password is redacted.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut database = serializer.serialize_struct("DatabaseSettings", 2)?;
        database.serialize_field("url", &self.shown_url())?;
        database.serialize_field("durability", &self.durability)?;
        database.end()
    }
}

/// What a commit survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every commit is on stable storage before it is acknowledged (SQLite `synchronous=FULL`):
    /// it survives a power cut.
    Full,
    /// A commit survives a crash of the server process, not of the machine
    /// (SQLite `synchronous=NORMAL` in WAL mode).
    Normal,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub admin_token: String,
    /// More admin tokens, each with a name its actions are recorded under (the audit log);
    /// `admin_token`'s name is `admin`.
    #[serde(default)]
    pub admin_tokens: Vec<NamedToken>,
    /// The fleet token: it may speak for any device. Empty: none.
    pub device_token: String,
    /// Sessions and device endpoints need a token even without a fleet token: then only
    /// devices' own tokens (and the admin token) open them.
    #[serde(default)]
    pub require_device_token: bool,
    /// Listen beyond loopback with no device authentication (no fleet token, none required):
    /// refused at start unless this says so.
    #[serde(default)]
    pub allow_open_network: bool,
    /// Devices' JWTs signed with this HMAC secret (HS256) are taken; empty: none.
    #[serde(default)]
    pub jwt_secret: String,
    /// A JWKS file of public keys (RSA: RS256, EC P-256: ES256) devices' JWTs may be signed
    /// with; empty: none.
    #[serde(default)]
    pub jwt_jwks_file: PathBuf,
    /// The `iss` and `aud` a JWT must carry, when set.
    #[serde(default)]
    pub jwt_issuer: String,
    #[serde(default)]
    pub jwt_audience: String,
    /// How long past its token's `exp` a session may stay open to send a new one (`refresh`)
    /// before it is closed (4012).
    #[serde(default = "jwt_refresh_s")]
    pub jwt_refresh_s: f64,
}

fn jwt_refresh_s() -> f64 {
    30.0
}

/// An admin token with the name its actions are recorded under.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedToken {
    pub name: String,
    pub token: String,
}

impl std::fmt::Debug for NamedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedToken").field("name", &self.name).field("token", &redacted(&self.token)).finish()
    }
}

impl Serialize for NamedToken {
    // Shown (`check-config`) with the token redacted.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut named = serializer.serialize_struct("NamedToken", 2)?;
        named.serialize_field("name", &self.name)?;
        named.serialize_field("token", redacted(&self.token))?;
        named.end()
    }
}

impl AuthSettings {
    /// No token of any kind (tests start from it).
    pub fn open() -> Self {
        Self {
            admin_token: String::new(),
            admin_tokens: Vec::new(),
            device_token: String::new(),
            require_device_token: false,
            allow_open_network: false,
            jwt_secret: String::new(),
            jwt_jwks_file: PathBuf::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_refresh_s: jwt_refresh_s(),
        }
    }

    /// Whether devices' JWTs are taken.
    pub fn jwt(&self) -> bool {
        !self.jwt_secret.is_empty() || !self.jwt_jwks_file.as_os_str().is_empty()
    }

    pub fn jwt_refresh(&self) -> Duration {
        seconds(self.jwt_refresh_s)
    }
}

/// How a token is shown: never its value.
fn redacted(token: &str) -> &'static str {
    if token.is_empty() { "" } else { "<redacted>" }
}

impl std::fmt::Debug for AuthSettings {
    // Tokens never reach a log line, not even through a debug print of the settings.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("admin_token", &redacted(&self.admin_token))
            .field("admin_tokens", &self.admin_tokens)
            .field("device_token", &redacted(&self.device_token))
            .field("require_device_token", &self.require_device_token)
            .field("allow_open_network", &self.allow_open_network)
            .field("jwt_secret", &redacted(&self.jwt_secret))
            .field("jwt_jwks_file", &self.jwt_jwks_file)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("jwt_refresh_s", &self.jwt_refresh_s)
            .finish()
    }
}

impl Serialize for AuthSettings {
    // Serialized only to be shown (`check-config`): the tokens are redacted.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut auth = serializer.serialize_struct("AuthSettings", 10)?;
        auth.serialize_field("admin_token", redacted(&self.admin_token))?;
        auth.serialize_field("admin_tokens", &self.admin_tokens)?;
        auth.serialize_field("device_token", redacted(&self.device_token))?;
        auth.serialize_field("require_device_token", &self.require_device_token)?;
        auth.serialize_field("allow_open_network", &self.allow_open_network)?;
        auth.serialize_field("jwt_secret", redacted(&self.jwt_secret))?;
        auth.serialize_field("jwt_jwks_file", &self.jwt_jwks_file)?;
        auth.serialize_field("jwt_issuer", &self.jwt_issuer)?;
        auth.serialize_field("jwt_audience", &self.jwt_audience)?;
        auth.serialize_field("jwt_refresh_s", &self.jwt_refresh_s)?;
        auth.end()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSettings {
    pub interval_s: f64,
    pub timeout_s: f64,
}

/// Several nodes over one Postgres database (PROTOCOL.md section 11); unused on SQLite.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// This node's name among the nodes; empty: the host name and the process id.
    pub node_id: String,
    /// How long a node counts as alive after it last renewed its lease, and how long the
    /// election lease lasts unless renewed.
    pub lease_ttl_s: f64,
}

impl ClusterSettings {
    pub fn lease_ttl(&self) -> Duration {
        seconds(self.lease_ttl_s)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ElectionSettings {
    pub ack_timeout_s: f64,
    pub max_retries: u32,
    pub backoff_ms: Vec<u64>,
    pub reconnect_grace_s: f64,
    pub preempt: bool,
    pub manual_min_priority: i64,
    /// A device (not the master) neither connected nor seen for this many days is retired: its
    /// record, role and sync state go (0: kept).
    #[serde(default = "device_keep_days")]
    pub device_keep_days: f64,
}

fn device_keep_days() -> f64 {
    90.0
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSettings {
    pub conflict_policy: ConflictPolicy,
    pub max_retries: u32,
    pub interval_s: f64,
    /// Changes older than this many days are pruned from the log (0: no age limit).
    pub log_keep_days: f64,
    /// Only the newest this many changes are kept (0: no count limit).
    pub log_keep_changes: u64,
    pub prune_interval_s: f64,
    /// A write's receipt is kept this many days longer than the change it names stays in the
    /// log, so that a device's write in doubt sent again meanwhile is still applied once.
    #[serde(default = "receipt_margin_days")]
    pub receipt_margin_days: f64,
    /// Audit and election log entries older than this many days are pruned (0: kept).
    #[serde(default = "history_keep_days")]
    pub history_keep_days: f64,
}

fn receipt_margin_days() -> f64 {
    7.0
}

fn history_keep_days() -> f64 {
    90.0
}

pub use crate::domain::records::ConflictPolicy;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_message_bytes: usize,
    pub max_connections: usize,
    pub idle_timeout_s: f64,
    pub session_queue: usize,
    /// Bytes a session may fall behind before it is closed (4008).
    pub session_queue_bytes: usize,
    pub messages_per_second: u32,
    /// Bytes every session's queue may hold together; past it the largest are closed (4008)
    /// first.
    #[serde(default = "total_queue_bytes")]
    pub total_queue_bytes: usize,
    /// Socket.IO sessions whose client has not yet joined with a token, at once: they hold no
    /// slot of `max_connections` until they join.
    #[serde(default = "max_anonymous")]
    pub max_anonymous: usize,
    /// Of those, at most this many from one client address (loopback aside unless
    /// `rate_limit_loopback`).
    #[serde(default = "max_anonymous_per_address")]
    pub max_anonymous_per_address: usize,
    /// Requests (REST calls and upgrades) a second from one address, and the burst above it
    /// (429 with Retry-After past them).
    #[serde(default = "requests_per_second_per_address")]
    pub requests_per_second_per_address: u32,
    #[serde(default = "request_burst_per_address")]
    pub request_burst_per_address: u32,
    /// Whether loopback (tools and a reverse proxy on this machine) is rate-limited too.
    #[serde(default)]
    pub rate_limit_loopback: bool,
}

fn connect_timeout_s() -> f64 {
    10.0
}

fn max_anonymous() -> usize {
    256
}

fn max_anonymous_per_address() -> usize {
    16
}

fn requests_per_second_per_address() -> u32 {
    50
}

fn request_burst_per_address() -> u32 {
    200
}

fn total_queue_bytes() -> usize {
    1 << 30
}

/// Socket.IO (PROTOCOL.md section 10).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SocketIoSettings {
    /// `/socket.io/` is served; `false`: it answers 404 and only `/ws` is open.
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub ping_interval_s: f64,
    pub ping_timeout_s: f64,
    /// How long a new session may take to join the namespace (its CONNECT, with the token).
    #[serde(default = "connect_timeout_s")]
    pub connect_timeout_s: f64,
    /// Before `server.allowed_origins`, the origins allowed to long-poll: still read, and
    /// allowed everywhere as if listed there.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Socket.IO sessions run the protocol test suite's handlers instead of the fleet's
    /// (`device-sync conformance`); never for a shop.
    #[serde(default)]
    pub conformance: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("settings: {key} {problem}")]
    Invalid { key: &'static str, problem: String },
}

impl Settings {
    /// The effective settings as TOML, tokens redacted (`device-sync check-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|err| format!("# the settings could not be shown: {err}\n"))
    }
}

impl Settings {
    /// Loads the settings: defaults, then `file` (which must exist when given; when `None`,
    /// `./settings.toml` is read if present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        builder = match file {
            Some(path) => builder.add_source(File::from(path).format(FileFormat::Toml).required(true)),
            None => builder.add_source(File::with_name("settings.toml").required(false)),
        };
        let settings: Settings = builder
            .add_source(
                Environment::with_prefix("DEVICE_SYNC")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("election.backoff_ms")
                    .with_list_parse_key("server.allowed_origins")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The built-in defaults alone, as the binary has them.
    pub fn defaults() -> Result<Self, SettingsError> {
        let settings: Settings = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Whether these settings would open the device side to the network: a host beyond
    /// loopback, no device token required, and `auth.allow_open_network` not set.
    pub fn opens_the_network(&self) -> bool {
        let auth = &self.auth;
        !self.server.on_loopback()
            && auth.device_token.is_empty()
            && !auth.require_device_token
            && !auth.jwt()
            && !auth.allow_open_network
    }

    fn validate(&self) -> Result<(), SettingsError> {
        for named in &self.auth.admin_tokens {
            if named.name.is_empty() || named.name.len() > 64 || named.token.len() < 16 {
                return Err(SettingsError::Invalid {
                    key: "auth.admin_tokens",
                    problem: format!(
                        "each needs a name of 1 to 64 characters and a token of 16 or more (not {:?})",
                        named.name
                    ),
                });
            }
        }
        let (cert, key) = (&self.server.tls_cert, &self.server.tls_key);
        if cert.as_os_str().is_empty() != key.as_os_str().is_empty() {
            return Err(SettingsError::Invalid {
                key: "server.tls_cert",
                problem: "and server.tls_key go together: name both files, or neither".into(),
            });
        }
        if self.opens_the_network() {
            return Err(SettingsError::Invalid {
                key: "auth.device_token",
                problem: format!(
                    "is empty and server.host {} is reachable from the network: anyone there could act as any \
                     device. Set auth.device_token (the fleet token), or auth.require_device_token = true and \
                     issue devices their own tokens (device-sync token issue DEVICE), or listen on 127.0.0.1; \
                     or, knowingly, set auth.allow_open_network = true",
                    self.server.host
                ),
            });
        }
        let durations = [
            ("server.linger_s", self.server.linger_s),
            ("auth.jwt_refresh_s", self.auth.jwt_refresh_s),
            ("heartbeat.interval_s", self.heartbeat.interval_s),
            ("heartbeat.timeout_s", self.heartbeat.timeout_s),
            ("election.ack_timeout_s", self.election.ack_timeout_s),
            ("election.reconnect_grace_s", self.election.reconnect_grace_s),
            ("sync.interval_s", self.sync.interval_s),
            ("sync.prune_interval_s", self.sync.prune_interval_s),
            ("limits.idle_timeout_s", self.limits.idle_timeout_s),
            ("socketio.ping_interval_s", self.socketio.ping_interval_s),
            ("socketio.ping_timeout_s", self.socketio.ping_timeout_s),
            ("socketio.connect_timeout_s", self.socketio.connect_timeout_s),
            ("cluster.lease_ttl_s", self.cluster.lease_ttl_s),
        ];
        for (key, value) in durations {
            if !(value.is_finite() && value > 0.0 && value < 1e9) {
                return Err(SettingsError::Invalid {
                    key,
                    problem: format!("must be a positive number of seconds, not {value}"),
                });
            }
        }
        let days = [
            ("sync.log_keep_days", self.sync.log_keep_days),
            ("sync.receipt_margin_days", self.sync.receipt_margin_days),
            ("sync.history_keep_days", self.sync.history_keep_days),
            ("election.device_keep_days", self.election.device_keep_days),
        ];
        for (key, days) in days {
            if !(days.is_finite() && (0.0..1e7).contains(&days)) {
                return Err(SettingsError::Invalid {
                    key,
                    problem: format!("must be a number of days, 0 or more, not {days}"),
                });
            }
        }
        let positive = [
            ("limits.max_message_bytes", self.limits.max_message_bytes),
            ("limits.max_connections", self.limits.max_connections),
            ("limits.session_queue", self.limits.session_queue),
            ("limits.session_queue_bytes", self.limits.session_queue_bytes),
            ("limits.messages_per_second", self.limits.messages_per_second as usize),
            ("limits.total_queue_bytes", self.limits.total_queue_bytes),
            ("limits.max_anonymous", self.limits.max_anonymous),
            ("limits.max_anonymous_per_address", self.limits.max_anonymous_per_address),
            ("limits.requests_per_second_per_address", self.limits.requests_per_second_per_address as usize),
            ("limits.request_burst_per_address", self.limits.request_burst_per_address as usize),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(SettingsError::Invalid { key, problem: "must be at least 1".into() });
            }
        }
        if self.limits.requests_per_second_per_address > 1_000_000 {
            return Err(SettingsError::Invalid {
                key: "limits.requests_per_second_per_address",
                problem: "must be at most 1000000".into(),
            });
        }
        if !self.auth.jwt_secret.is_empty() && self.auth.jwt_secret.len() < 32 {
            return Err(SettingsError::Invalid {
                key: "auth.jwt_secret",
                problem:
                    "must be at least 32 characters: a shorter HMAC secret can be guessed from any token"
                        .into(),
            });
        }
        if self.election.backoff_ms.is_empty() {
            return Err(SettingsError::Invalid {
                key: "election.backoff_ms",
                problem: "needs at least one delay".into(),
            });
        }
        if !(0..=100).contains(&self.election.manual_min_priority) {
            return Err(SettingsError::Invalid {
                key: "election.manual_min_priority",
                problem: "must be within 0..=100".into(),
            });
        }
        let url = &self.database.url;
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|scheme| url.starts_with(scheme)) {
            return Err(SettingsError::Invalid {
                key: "database.url",
                problem: format!("must be a sqlite: or postgres:// URL, not {url:?}"),
            });
        }
        if !is_log_filter(&self.log.level) {
            return Err(SettingsError::Invalid {
                key: "log.level",
                problem: format!(
                    "must be trace, debug, info, warn, error or off, or directives like \"info,device_sync=debug\"; not {:?}",
                    self.log.level
                ),
            });
        }
        Ok(())
    }
}

/// A level, or comma-separated `target=level` directives (the part of `RUST_LOG`'s syntax the
/// settings accept; the filter itself would take a typo as a target name).
fn is_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    let target =
        |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    !filter.trim().is_empty()
        && filter.split(',').all(|directive| match directive.split_once('=') {
            Some((t, l)) => target(t.trim()) && level(l),
            None => level(directive),
        })
}

/// Converts a settings value in seconds (validated positive and finite) to a `Duration`.
fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value)
}

impl HeartbeatSettings {
    pub fn interval(&self) -> Duration {
        seconds(self.interval_s)
    }
    pub fn timeout(&self) -> Duration {
        seconds(self.timeout_s)
    }
}

impl ElectionSettings {
    pub fn ack_timeout(&self) -> Duration {
        seconds(self.ack_timeout_s)
    }

    /// How long a device unseen is kept, if there is a limit.
    pub fn device_keep_for(&self) -> Option<Duration> {
        (self.device_keep_days > 0.0).then(|| seconds(self.device_keep_days * 86_400.0))
    }
    pub fn reconnect_grace(&self) -> Duration {
        seconds(self.reconnect_grace_s)
    }
    /// The wait before retry `attempt` (0-based); the last delay repeats.
    pub fn backoff(&self, attempt: usize) -> Duration {
        let ms = self.backoff_ms.get(attempt).or(self.backoff_ms.last()).copied().unwrap_or(0);
        Duration::from_millis(ms)
    }
}

impl SyncSettings {
    pub fn interval(&self) -> Duration {
        seconds(self.interval_s)
    }

    pub fn prune_interval(&self) -> Duration {
        seconds(self.prune_interval_s)
    }

    /// How long a change is kept, if there is an age limit.
    pub fn keep_for(&self) -> Option<Duration> {
        (self.log_keep_days > 0.0).then(|| seconds(self.log_keep_days * 86_400.0))
    }

    /// How many changes are kept, if there is a count limit.
    pub fn keep_changes(&self) -> Option<u64> {
        (self.log_keep_changes > 0).then_some(self.log_keep_changes)
    }

    /// How much longer a write's receipt is kept than the change it names.
    pub fn receipt_margin(&self) -> Duration {
        seconds(self.receipt_margin_days * 86_400.0)
    }

    /// How long audit and election log entries are kept, if there is a limit.
    pub fn history_keep_for(&self) -> Option<Duration> {
        (self.history_keep_days > 0.0).then(|| seconds(self.history_keep_days * 86_400.0))
    }
}

impl LimitSettings {
    pub fn idle_timeout(&self) -> Duration {
        seconds(self.idle_timeout_s)
    }
}

fn enabled() -> bool {
    true
}

impl SocketIoSettings {
    pub fn ping_interval(&self) -> Duration {
        seconds(self.ping_interval_s)
    }

    pub fn ping_timeout(&self) -> Duration {
        seconds(self.ping_timeout_s)
    }

    pub fn connect_timeout(&self) -> Duration {
        seconds(self.connect_timeout_s)
    }
}

impl ServerSettings {
    /// The address to bind, `host:port`.
    pub fn bind_address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn linger(&self) -> Duration {
        seconds(self.linger_s)
    }

    /// Whether TLS is on (both files named).
    pub fn tls(&self) -> Option<(&Path, &Path)> {
        let named = |p: &PathBuf| !p.as_os_str().is_empty();
        (named(&self.tls_cert) && named(&self.tls_key))
            .then_some((self.tls_cert.as_path(), self.tls_key.as_path()))
    }

    /// Whether the server listens on loopback only (`127.0.0.1`, `::1`, `localhost`): nothing
    /// else on the network can reach it.
    pub fn on_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl DatabaseSettings {
    /// Whether the URL names an SQLite database.
    pub fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }

    /// The SQLite file the URL names, if it names one (not `:memory:`).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.url.strip_prefix("sqlite://").or_else(|| self.url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        if path.is_empty() || path == ":memory:" { None } else { Some(PathBuf::from(path)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_is_never_shown() {
        let cases = [
            ("postgres://shop:hunter2@db:5432/shop", "postgres://shop:<redacted>@db:5432/shop"),
            (
                "postgres://shop:p%40ss@db/shop?sslmode=require",
                "postgres://shop:<redacted>@db/shop?sslmode=require",
            ),
            (
                "postgres://db/shop?user=shop&password=hunter2",
                "postgres://db/shop?user=shop&password=<redacted>",
            ),
            ("postgres://shop@db/shop", "postgres://shop@db/shop"),
            ("postgres://shop:hunter2/x?y@db/shop", "postgres://shop:<redacted>@db/shop"),
            ("sqlite://data/device-sync.db?mode=rwc", "sqlite://data/device-sync.db?mode=rwc"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown);
            let settings = DatabaseSettings { url: url.into(), durability: Durability::Full };
            assert!(!format!("{settings:?}").contains("hunter2"));
        }
    }

    #[test]
    fn built_in_defaults_are_those_of_the_protocol() {
        let s = Settings::defaults().expect("defaults parse");
        assert_eq!(s.server.host, "127.0.0.1");
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.database.durability, Durability::Full);
        assert_eq!(s.heartbeat.interval(), Duration::from_secs(30));
        assert_eq!(s.heartbeat.timeout(), Duration::from_secs(90));
        assert_eq!(s.election.backoff_ms, vec![1000, 2000, 4000]);
        assert_eq!(s.election.max_retries, 3);
        assert_eq!(s.election.manual_min_priority, 80);
        assert!(!s.election.preempt);
        assert_eq!(s.sync.conflict_policy, ConflictPolicy::ServerWins);
        assert_eq!(s.limits.max_message_bytes, 1_048_576);
        assert_eq!(s.limits.max_connections, 10_000);
        assert_eq!(s.limits.session_queue, 1024);
        assert_eq!(s.limits.session_queue_bytes, 16 * 1024 * 1024);
        assert_eq!(s.limits.messages_per_second, 100);
        assert_eq!(s.limits.idle_timeout(), Duration::from_secs(300));
        assert_eq!(s.log.format, LogFormat::Text);
    }

    #[test]
    fn log_levels_and_directives_are_accepted_and_typos_are_not() {
        for good in ["info", "DEBUG", "warn,device_sync=debug", "device_sync::actors=trace", "off"] {
            assert!(is_log_filter(good), "{good}");
        }
        for bad in ["", "loud", "info,", "device_sync=loud", "inf o", "=debug"] {
            assert!(!is_log_filter(bad), "{bad}");
        }
    }

    #[test]
    fn the_shown_settings_never_carry_a_token_and_read_back_the_same() {
        let mut s = Settings::defaults().expect("defaults parse");
        s.auth.admin_token = "secret-admin".into();
        let shown = s.to_toml();
        assert!(!shown.contains("secret-admin"), "{shown}");
        assert!(shown.contains("admin_token = \"<redacted>\""), "{shown}");
        let back: toml::Value = toml::from_str(&shown).expect("the shown settings are TOML");
        assert_eq!(back["limits"]["session_queue"].as_integer(), Some(1024));
    }

    #[test]
    fn backoff_repeats_its_last_delay() {
        let s = Settings::defaults().expect("defaults parse");
        assert_eq!(s.election.backoff(0), Duration::from_millis(1000));
        assert_eq!(s.election.backoff(2), Duration::from_millis(4000));
        assert_eq!(s.election.backoff(7), Duration::from_millis(4000));
    }

    #[test]
    fn a_partial_file_is_completed_by_the_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("partial.toml");
        std::fs::write(&path, "[heartbeat]\ninterval_s = 0.2\n").expect("write");
        let s = Settings::load(Some(&path)).expect("load");
        assert_eq!(s.heartbeat.interval(), Duration::from_millis(200));
        assert_eq!(s.heartbeat.timeout(), Duration::from_secs(90));
        assert_eq!(s.server.port, 8080);
    }

    #[test]
    fn every_key_of_section_9_is_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("socketio.toml");
        std::fs::write(&path, "[socketio]\nenabled = false\n").expect("write");
        let s = Settings::load(Some(&path)).expect("load");
        assert!(!s.socketio.enabled);
        assert!(Settings::defaults().expect("defaults parse").socketio.enabled);
    }

    #[test]
    fn a_missing_named_file_is_an_error() {
        assert!(Settings::load(Some(Path::new("/nonexistent/device-sync.toml"))).is_err());
    }

    #[test]
    fn a_zero_duration_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[limits]\nidle_timeout_s = 0\n").expect("write");
        assert!(matches!(
            Settings::load(Some(&path)),
            Err(SettingsError::Invalid { key: "limits.idle_timeout_s", .. })
        ));
    }

    #[test]
    fn the_sqlite_path_is_read_from_the_url() {
        let db = DatabaseSettings {
            url: "sqlite://data/device-sync.db?mode=rwc".into(),
            durability: Durability::Full,
        };
        assert_eq!(db.sqlite_path(), Some(PathBuf::from("data/device-sync.db")));
        let pg = DatabaseSettings { url: "postgres://u@h/db".into(), durability: Durability::Full };
        assert_eq!(pg.sqlite_path(), None);
    }

    #[test]
    fn tokens_are_not_shown_by_debug() {
        let auth = AuthSettings {
            admin_token: "s3cret".into(),
            device_token: String::new(),
            ..AuthSettings::open()
        };
        let shown = format!("{auth:?}");
        assert!(!shown.contains("s3cret"));
    }
}
