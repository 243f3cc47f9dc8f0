//! Times on the wire: the server sends RFC 3339 in UTC with milliseconds and `Z`; a client's
//! times must be RFC 3339 / ISO 8601 with an offset.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time the way every server message carries it: `2026-02-03T02:25:33.123Z`.
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The current server time, formatted.
pub fn now() -> String {
    format(Utc::now())
}

/// Parses a client's time; it must carry an offset (`Z` or `+03:00`).
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_times_are_utc_with_milliseconds_and_z() {
        let t = parse("2026-02-03T02:25:33+03:00").expect("parse");
        assert_eq!(format(t), "2026-02-02T23:25:33.000Z");
        let shown = now();
        assert!(shown.ends_with('Z') && shown.len() == 24, "{shown}");
    }

    #[test]
    fn a_client_time_without_offset_is_refused() {
        assert!(parse("2026-02-03T02:25:33").is_none());
        assert!(parse("yesterday").is_none());
        assert!(parse("2026-02-03T02:25:33.5Z").is_some());
    }
}
