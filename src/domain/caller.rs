//! Who a request or a session speaks as, by the token it presented (docs/SECURITY.md, "What
//! each token allows"): `http::auth` finds it, sessions and handlers hold it.

use chrono::{DateTime, Utc};

use crate::protocol::{ErrorCode, WireError};

/// The `token_id` of a session opened with a JWT (never revoked here: its `exp` ends it).
pub const JWT: &str = "jwt";

/// Who a request or a session speaks as (docs/SECURITY.md, "What each token allows").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token: anything.
    Admin,
    /// The fleet token: any device.
    Fleet,
    /// A device's own token (issued here, or a JWT of the shop's identity provider): that
    /// device only, until `expires` (JWTs).
    Device { device_id: String, token_id: String, expires: Option<DateTime<Utc>> },
    /// No device authentication is configured: anyone who reaches the port, as any device.
    Open,
}

impl Caller {
    /// Whether it may speak for `device_id`; `INSUFFICIENT_PERMISSIONS` if not.
    pub fn speaks_for(&self, device_id: &str) -> Result<(), WireError> {
        match self {
            Self::Device { device_id: own, .. } if own != device_id => Err(WireError::new(
                ErrorCode::InsufficientPermissions,
                format!("This token speaks for device {own} only, not {device_id}"),
            )),
            _ => Ok(()),
        }
    }

    /// The device token it presented, if it is one.
    pub fn token_id(&self) -> Option<&str> {
        match self {
            Self::Device { token_id, .. } => Some(token_id),
            _ => None,
        }
    }

    /// When its token expires, if it does.
    pub fn expires(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Device { expires, .. } => *expires,
            _ => None,
        }
    }
}
