//! What every event shares: the protocol's bounds (ids, strings, arrays, nesting, `limit`), the
//! field types that enforce them while deserializing (`WireId` is the one id validator), and the
//! typed parse that names the offending field in `INVALID_PAYLOAD`.

use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::super::error::WireError;
use super::super::time;
use crate::domain::election::MAX_PRIORITY;
use crate::domain::records;

/// Longest id (`device_id`, `deviceId`, `clientId`, `table_name`, `record_id`, `id`), in characters.
pub const MAX_ID_CHARS: usize = 128;

/// Longest other string, in characters.
pub const MAX_TEXT_CHARS: usize = 65_536;

/// Most items in `orders`, `record_ids`, `requested_tables`, `events`.
pub const MAX_ITEMS: usize = 1_000;

/// Deepest JSON nesting; the message object is level 1.
pub const MAX_DEPTH: usize = 64;

/// Largest `limit`.
pub const MAX_LIMIT: u64 = 10_000;

/// The largest count, `seq` or index a message, body or query may give: the largest the
/// database stores (a signed 64-bit integer), so none can overflow on its way there. (Numbers
/// inside a record's data or the catalogue are stored as the client sent them.)
pub const MAX_NUMBER: u64 = i64::MAX as u64;

/// A count, `seq` or index field: an integer within 0..=`MAX_NUMBER`.
pub(super) fn number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if n > MAX_NUMBER {
        return Err(D::Error::custom(format!("must be an integer within 0..={MAX_NUMBER}")));
    }
    Ok(n)
}

/// An optional count, `seq` or index field (with `#[serde(default)]`).
pub(super) fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct Bounded(#[serde(deserialize_with = "number")] u64);
    Ok(Option::<Bounded>::deserialize(d)?.map(|Bounded(n)| n))
}

pub(super) fn limit_of(limit: Option<u64>, default: u64) -> Result<u64, WireError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(WireError::invalid(Some("limit"), None, format!("must be within 1..={MAX_LIMIT}"))),
    }
}

/// Checks a REST body against the protocol's bounds (any JSON value).
pub fn check_body_bounds(body: &Value) -> Result<(), WireError> {
    match body {
        Value::Object(map) => check_bounds(map),
        other => check_value(other, 1).map_err(|reason| WireError::invalid(None, None, reason)),
    }
}

/// Parses a REST body into `T`: the protocol's bounds, then the fields, with every error an
/// `INVALID_PAYLOAD` naming the field.
pub fn parse_body<T: DeserializeOwned>(body: &Value) -> Result<T, WireError> {
    check_body_bounds(body)?;
    parse(body)
}

/// Depth and string bounds, checked field by field so the error names the top-level field.
pub(super) fn check_bounds(map: &Map<String, Value>) -> Result<(), WireError> {
    for (key, value) in map {
        if key.len() > MAX_TEXT_CHARS && key.chars().count() > MAX_TEXT_CHARS {
            return Err(WireError::invalid(None, None, "a field name is too long"));
        }
        check_value(value, 2).map_err(|reason| WireError::invalid(Some(key), None, reason))?;
    }
    Ok(())
}

/// Checks `value`, found at nesting `level` (containers count; the message is level 1).
pub(super) fn check_value(value: &Value, level: usize) -> Result<(), String> {
    match value {
        Value::String(s) => check_text(s),
        Value::Array(items) => {
            check_depth(level)?;
            items.iter().try_for_each(|v| check_value(v, level + 1))
        }
        Value::Object(map) => {
            check_depth(level)?;
            map.iter().try_for_each(|(k, v)| {
                check_text(k)?;
                check_value(v, level + 1)
            })
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

pub(super) fn check_depth(level: usize) -> Result<(), String> {
    if level > MAX_DEPTH { Err(format!("nested deeper than {MAX_DEPTH} levels")) } else { Ok(()) }
}

pub(super) fn check_text(s: &str) -> Result<(), String> {
    // A string of at most MAX_TEXT_CHARS bytes has at most that many characters.
    if s.len() > MAX_TEXT_CHARS && s.chars().count() > MAX_TEXT_CHARS {
        Err(format!("a string is longer than {MAX_TEXT_CHARS} characters"))
    } else {
        Ok(())
    }
}

/// Deserializes `value` into `T`, turning a serde error into `INVALID_PAYLOAD` with its path.
pub(super) fn parse<T: DeserializeOwned>(value: &Value) -> Result<T, WireError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let reason = err.inner().to_string();
        let path = err.path().to_string();
        let missing =
            reason.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()).map(str::to_owned);
        let (field, path) = if path == "." || path.is_empty() {
            (missing.clone(), missing)
        } else {
            let top = path.split(['.', '[']).next().map(str::to_owned);
            let full = match &missing {
                Some(name) => Some(format!("{path}.{name}")),
                None => Some(path),
            };
            (top, full)
        };
        WireError::invalid(field.as_deref(), path.as_deref(), reason)
    })
}

/// Whether `id` is an id: a string of 1 to `MAX_ID_CHARS` characters. The one id rule, for
/// events, REST bodies and paths alike.
pub fn is_id(id: &str) -> bool {
    (1..=MAX_ID_CHARS).contains(&id.chars().count())
}

/// What an invalid id is told.
const ID_RULE: &str = "must be a string of 1 to 128 characters";
const _: () = assert!(MAX_ID_CHARS == 128, "ID_RULE names the bound");

/// Checks an id given in `field` (a path segment, a query parameter).
pub fn check_id(field: &str, id: &str) -> Result<(), WireError> {
    if is_id(id) { Ok(()) } else { Err(WireError::invalid(Some(field), None, ID_RULE)) }
}

/// An id field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WireId(pub(super) String);

impl<'de> Deserialize<'de> for WireId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !is_id(&s) {
            return Err(D::Error::custom(ID_RULE));
        }
        Ok(Self(s))
    }
}

/// An integer ≥ `MIN` (never a float).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AtLeast<const MIN: i64>(pub(super) i64);

impl<'de, const MIN: i64> Deserialize<'de> for AtLeast<MIN> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let message = || D::Error::custom(format!("must be an integer >= {MIN}"));
        match Value::deserialize(d)? {
            Value::Number(n) => match n.as_i64() {
                Some(v) if v >= MIN => Ok(Self(v)),
                _ => Err(message()),
            },
            _ => Err(message()),
        }
    }
}

/// A client time: RFC 3339 with an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ClientTime(pub(super) DateTime<Utc>);

impl<'de> Deserialize<'de> for ClientTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        time::parse(&s).map(Self).ok_or_else(|| D::Error::custom("must be an RFC 3339 time with an offset"))
    }
}

/// A priority: an integer within 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Priority(pub(super) i32);

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let message = || D::Error::custom(format!("must be an integer within 0..={MAX_PRIORITY}"));
        match Value::deserialize(d)? {
            Value::Number(n) => match n.as_i64().and_then(|v| i32::try_from(v).ok()) {
                Some(v) if (0..=MAX_PRIORITY).contains(&v) => Ok(Self(v)),
                _ => Err(message()),
            },
            _ => Err(message()),
        }
    }
}

/// A record id in a request: a string of 1 to 128 characters or an integer, canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WireIdOrInt(pub(super) String);

/// The schemas of the field types, as the API description and `docs/asyncapi.yaml` give them.
mod schemas {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    use utoipa::openapi::{RefOr, Schema};
    use utoipa::{PartialSchema, ToSchema};

    use super::{AtLeast, ClientTime, MAX_ID_CHARS, MAX_PRIORITY, Priority, WireId, WireIdOrInt};

    fn id() -> ObjectBuilder {
        ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(MAX_ID_CHARS))
    }

    impl PartialSchema for WireId {
        fn schema() -> RefOr<Schema> {
            id().into()
        }
    }
    impl ToSchema for WireId {}

    impl<const MIN: i64> PartialSchema for AtLeast<MIN> {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(MIN)).into()
        }
    }
    impl<const MIN: i64> ToSchema for AtLeast<MIN> {
        fn name() -> std::borrow::Cow<'static, str> {
            format!("AtLeast{MIN}").into()
        }
    }

    impl PartialSchema for ClientTime {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .into()
        }
    }
    impl ToSchema for ClientTime {}

    impl PartialSchema for Priority {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(MAX_PRIORITY))
                .into()
        }
    }
    impl ToSchema for Priority {}

    impl PartialSchema for WireIdOrInt {
        fn schema() -> RefOr<Schema> {
            OneOfBuilder::new().item(id()).item(ObjectBuilder::new().schema_type(Type::Integer)).into()
        }
    }
    impl ToSchema for WireIdOrInt {}
}

impl<'de> Deserialize<'de> for WireIdOrInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        records::canonical_id(&value)
            .filter(|id| is_id(id))
            .map(Self)
            .ok_or_else(|| D::Error::custom(format!("{ID_RULE}, or an integer")))
    }
}
