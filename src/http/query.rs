//! Query strings: read leniently as text, then checked, so that a bad value is a 400 naming
//! the parameter.

use std::collections::HashMap;

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};

use super::error::ApiError;
use crate::protocol::{WireError, inbound, time};

/// The most a `limit` may ask for.
pub const MAX_LIMIT: u64 = 10_000;

/// The largest number a query may give: the largest the database stores (a signed 64-bit
/// integer), as for every number in a body (`inbound::MAX_NUMBER`).
pub const MAX_NUMBER: u64 = crate::protocol::inbound::MAX_NUMBER;

/// A request's query parameters.
pub struct Query(HashMap<String, String>);

impl Query {
    /// The parameters; one given twice is refused (which one would count is a guess).
    pub fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(req.query_string()).map_err(
            |err| ApiError::from(WireError::invalid(None, None, format!("bad query string: {err}"))),
        )?;
        let mut map = HashMap::new();
        for (name, value) in pairs.into_inner() {
            if map.contains_key(&name) {
                return Err(invalid(&name, "is given more than once"));
            }
            map.insert(name, value);
        }
        Ok(Self(map))
    }

    /// A text parameter; one given empty is as absent.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.given(name).filter(|v| !v.is_empty())
    }

    /// A parameter as given (empty if given empty): a number, a time or an id given empty is
    /// wrong, not absent.
    fn given(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// An id parameter: 1 to 128 characters.
    pub fn id(&self, name: &str) -> Result<Option<&str>, ApiError> {
        self.given(name)
            .map(|id| inbound::check_id(name, id).map(|()| id).map_err(ApiError::from))
            .transpose()
    }

    /// A non-negative integer parameter, at most `MAX_NUMBER` (what the database can hold).
    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.given(name)
            .map(|v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n <= MAX_NUMBER)
                    .ok_or_else(|| invalid(name, "must be an integer within 0..=9223372036854775807"))
            })
            .transpose()
    }

    /// `limit` (1..=10000, `default` when absent) and `offset` (>= 0).
    pub fn page(&self, default: u64) -> Result<(u64, u64), ApiError> {
        let limit = self.number("limit")?.unwrap_or(default);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid("limit", "must be within 1..=10000"));
        }
        Ok((limit, self.number("offset")?.unwrap_or(0)))
    }

    /// An RFC 3339 time parameter.
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.given(name)
            .map(|v| time::parse(v).ok_or_else(|| invalid(name, "must be an RFC 3339 time with an offset")))
            .transpose()
    }
}

fn invalid(name: &str, reason: &str) -> ApiError {
    WireError::invalid(Some(name), None, reason).into()
}
