//! The WebSocket close codes the server sends (RFC 6455 §7.4; 4000–4999 are the application's).

/// Server shutdown.
pub const NORMAL: u16 = 1000;
pub const GOING_AWAY: u16 = 1001;
/// A framing error from the client.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A text frame that is not UTF-8.
pub const INVALID_DATA: u16 = 1007;
/// A message over `limits.max_message_bytes`.
pub const TOO_BIG: u16 = 1009;
/// The server could not go on with this session (e.g. the log could not be read).
pub const INTERNAL_ERROR: u16 = 1011;
/// Silent for `limits.idle_timeout_s`.
pub const IDLE_TIMEOUT: u16 = 4000;
/// A registered device silent for `heartbeat.timeout_s`.
pub const HEARTBEAT_TIMEOUT: u16 = 4001;
/// More than `limits.session_queue` frames (or `session_queue_bytes`) behind.
pub const SLOW_CONSUMER: u16 = 4008;
/// The same device connected again from a newer session.
pub const SESSION_REPLACED: u16 = 4009;
/// The device was retired by an admin (`DELETE /device/{id}`).
pub const RETIRED: u16 = 4010;
/// The device's own token, which opened the session, was revoked.
pub const REVOKED: u16 = 4011;
/// The session's token (a JWT) expired and no new one came within `auth.jwt_refresh_s`.
pub const TOKEN_EXPIRED: u16 = 4012;
