//! Rules for generic records that need no I/O: record ids, conflicts, and retry schedules.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// How a write with a stale `base_version` is resolved (`sync.conflict_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    ServerWins,
    LastWriterWins,
}

impl ConflictPolicy {
    /// The name the protocol reports it by (`resolution_method`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerWins => "server_wins",
            Self::LastWriterWins => "last_writer_wins",
        }
    }
}

/// A write that met a stored copy newer than its base: the facts every conflict message is
/// made of, whichever copy the policy keeps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Conflict {
    /// The device that wrote.
    pub device: String,
    pub table: String,
    /// Canonical.
    pub record_id: String,
    /// The version the writer had.
    pub local_version: Option<i64>,
    /// The stored copy's version.
    pub server_version: i64,
    /// What the writer sent (`null` for a delete).
    pub incoming: Value,
    /// The stored copy's data (`null` when it is deleted or absent).
    pub stored: Value,
    pub policy: ConflictPolicy,
    /// When the server judged it.
    pub at: DateTime<Utc>,
    /// The writer reported it itself (`sync_conflict`): it is told only how it was resolved.
    pub reported: bool,
}

/// Tables the server keeps itself: not writable with `data_update`.
pub const RESERVED_TABLES: [&str; 3] = ["stations", "catalogue", "critical_events"];

/// The table of logged critical events.
pub const CRITICAL_EVENTS: &str = "critical_events";

/// What a write does to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `insert` (or `create`); like `update`, it upserts.
    Insert,
    Update,
    /// Leaves a tombstone.
    Delete,
}

impl Operation {
    /// The operation's name as the server sends it (`create` is sent as `insert`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "insert" | "create" => Some(Self::Insert),
            "update" => Some(Self::Update),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// The canonical form of a record id given as a string or an integer: `42` and `"42"` are the
/// same record. `None` for any other JSON value.
pub fn canonical_id(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A record id as the server sends it: a JSON integer when it is a canonical integer (fits
/// `i64`, no leading zeros, no sign but `-`), else a string.
pub fn id_to_json(id: &str) -> Value {
    let digits = id.strip_prefix('-').unwrap_or(id);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && id != "-0";
    match id.parse::<i64>() {
        Ok(n) if canonical => Value::from(n),
        _ => Value::String(id.to_owned()),
    }
}

/// The stored copy a write is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub version: i64,
    /// When the write that made it happened (its client timestamp, or its commit time).
    pub written_at: DateTime<Utc>,
}

/// How a write is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No conflict: apply it.
    Apply,
    /// A conflict, settled by the policy: the incoming write wins (apply it) or the stored copy
    /// stays (write nothing).
    Conflict { incoming_wins: bool },
}

/// Judges a write. It conflicts when its `base_version` is not the stored version (0 for a
/// record that was never written), or always when it is a client's own conflict report.
/// `server_wins` keeps the stored copy; `last_writer_wins` lets the incoming write win when its
/// client timestamp is newer than the stored copy's (without a timestamp the stored copy wins).
pub fn judge(
    policy: ConflictPolicy,
    base_version: Option<i64>,
    stored: Option<Stored>,
    incoming_at: Option<DateTime<Utc>>,
    reported_conflict: bool,
) -> Verdict {
    let stored_version = stored.map_or(0, |s| s.version);
    if !reported_conflict && base_version.is_none_or(|b| b == stored_version) {
        return Verdict::Apply;
    }
    let incoming_wins = match policy {
        ConflictPolicy::ServerWins => false,
        ConflictPolicy::LastWriterWins => {
            incoming_at.is_some_and(|at| stored.is_none_or(|s| at > s.written_at))
        }
    };
    Verdict::Conflict { incoming_wins }
}

/// What a device that reported a sync error is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPlan {
    /// Try again after this long: `min(2^retry_count, 60)` seconds.
    RetryAfter(Duration),
    /// It has retried `sync.max_retries` times: someone must look.
    ManualIntervention,
}

pub fn retry_plan(retry_count: u32, max_retries: u32) -> RetryPlan {
    if retry_count >= max_retries {
        return RetryPlan::ManualIntervention;
    }
    let seconds = 2u64.checked_pow(retry_count).unwrap_or(u64::MAX).min(60);
    RetryPlan::RetryAfter(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn an_integer_and_its_string_are_the_same_record() {
        assert_eq!(canonical_id(&json!(42)), Some("42".into()));
        assert_eq!(canonical_id(&json!("42")), Some("42".into()));
        assert_eq!(canonical_id(&json!(-7)), Some("-7".into()));
        assert_eq!(canonical_id(&json!(1.5)), None);
        assert_eq!(canonical_id(&json!(null)), None);
        assert_eq!(canonical_id(&json!(["42"])), None);
    }

    #[test]
    fn canonical_integers_go_back_as_integers_and_the_rest_as_strings() {
        assert_eq!(id_to_json("42"), json!(42));
        assert_eq!(id_to_json("0"), json!(0));
        assert_eq!(id_to_json("-7"), json!(-7));
        assert_eq!(id_to_json("042"), json!("042"));
        assert_eq!(id_to_json("-0"), json!("-0"));
        assert_eq!(id_to_json("+5"), json!("+5"));
        assert_eq!(id_to_json("9223372036854775808"), json!("9223372036854775808"), "past i64");
        assert_eq!(id_to_json("9223372036854775807"), json!(9_223_372_036_854_775_807_i64));
        assert_eq!(id_to_json("sku-9"), json!("sku-9"));
        assert_eq!(id_to_json(""), json!(""));
    }

    #[test]
    fn create_is_insert() {
        assert_eq!(Operation::parse("create"), Some(Operation::Insert));
        assert_eq!(Operation::parse("insert").map(Operation::as_str), Some("insert"));
        assert_eq!(Operation::parse("upsert"), None);
    }

    #[test]
    fn a_write_without_base_version_or_with_the_stored_one_applies() {
        let stored = Some(Stored { version: 3, written_at: at("2026-01-01T00:00:00Z") });
        assert_eq!(judge(ConflictPolicy::ServerWins, None, stored, None, false), Verdict::Apply);
        assert_eq!(judge(ConflictPolicy::ServerWins, Some(3), stored, None, false), Verdict::Apply);
        assert_eq!(judge(ConflictPolicy::ServerWins, Some(0), None, None, false), Verdict::Apply);
    }

    #[test]
    fn a_stale_base_version_loses_under_server_wins() {
        let stored = Some(Stored { version: 3, written_at: at("2026-01-01T00:00:00Z") });
        let newer = Some(at("2027-01-01T00:00:00Z"));
        assert_eq!(
            judge(ConflictPolicy::ServerWins, Some(2), stored, newer, false),
            Verdict::Conflict { incoming_wins: false }
        );
        assert_eq!(
            judge(ConflictPolicy::ServerWins, Some(1), None, newer, false),
            Verdict::Conflict { incoming_wins: false },
            "a base version for a record never written"
        );
    }

    #[test]
    fn under_last_writer_wins_the_newer_timestamp_wins() {
        let stored = Some(Stored { version: 3, written_at: at("2026-06-01T12:00:00Z") });
        let judged =
            |ts: Option<&str>| judge(ConflictPolicy::LastWriterWins, Some(2), stored, ts.map(at), false);
        assert_eq!(judged(Some("2026-06-01T12:00:01Z")), Verdict::Conflict { incoming_wins: true });
        assert_eq!(
            judged(Some("2026-06-01T12:00:00Z")),
            Verdict::Conflict { incoming_wins: false },
            "a tie keeps the stored copy"
        );
        assert_eq!(judged(Some("2026-06-01T11:00:00Z")), Verdict::Conflict { incoming_wins: false });
        assert_eq!(
            judged(None),
            Verdict::Conflict { incoming_wins: false },
            "without a timestamp the stored copy wins"
        );
    }

    #[test]
    fn a_reported_conflict_is_always_judged() {
        let stored = Some(Stored { version: 3, written_at: at("2026-06-01T12:00:00Z") });
        assert_eq!(
            judge(ConflictPolicy::ServerWins, None, stored, None, true),
            Verdict::Conflict { incoming_wins: false }
        );
        assert_eq!(
            judge(ConflictPolicy::LastWriterWins, None, stored, Some(at("2026-07-01T00:00:00Z")), true),
            Verdict::Conflict { incoming_wins: true }
        );
    }

    #[test]
    fn sync_errors_back_off_exponentially_up_to_a_minute_then_need_a_person() {
        assert_eq!(retry_plan(0, 3), RetryPlan::RetryAfter(Duration::from_secs(1)));
        assert_eq!(retry_plan(1, 3), RetryPlan::RetryAfter(Duration::from_secs(2)));
        assert_eq!(retry_plan(2, 3), RetryPlan::RetryAfter(Duration::from_secs(4)));
        assert_eq!(retry_plan(3, 3), RetryPlan::ManualIntervention);
        assert_eq!(retry_plan(6, 10), RetryPlan::RetryAfter(Duration::from_secs(60)));
        assert_eq!(retry_plan(40, 100), RetryPlan::RetryAfter(Duration::from_secs(60)));
    }
}
