//! The rules of master election that need no I/O: default priorities, who wins, and when an
//! election gives up.

use std::time::Duration;

/// Highest priority a device may have.
pub const MAX_PRIORITY: i32 = 100;

/// The priority of a device type (document 001), when the device does not give one.
pub fn priority_for_type(device_type: &str) -> Option<i32> {
    match device_type {
        "admin" => Some(100),
        "manager" => Some(80),
        "assistant_manager" => Some(60),
        "inventory_assistant" => Some(40),
        "sales_assistant" => Some(20),
        _ => None,
    }
}

/// A device's role (defined with its column, see `entity::enums`).
pub use entity::enums::Role;

/// Why an election ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A device came online while there was no master (rule 2).
    NoMaster,
    /// The master sent `device_shutdown`.
    Shutdown,
    /// The master sent `device_offline`.
    Offline,
    /// The master's session dropped and it did not come back within the grace period.
    Failure,
    /// The master fell silent for `heartbeat.timeout_s`.
    Timeout,
    /// An admin or an entitled device asked for one.
    Manual,
    /// A higher-priority device arrived and `election.preempt` is on.
    Preempt,
}

impl Reason {
    /// Every reason.
    pub const ALL: [Reason; 7] = [
        Self::NoMaster,
        Self::Shutdown,
        Self::Offline,
        Self::Failure,
        Self::Timeout,
        Self::Manual,
        Self::Preempt,
    ];

    /// The reason or the method of an election named `text`, as this server names it.
    pub fn known_name(text: &str) -> Option<&'static str> {
        Self::ALL.iter().flat_map(|r| [r.as_str(), r.method()]).find(|name| *name == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoMaster => "no_master",
            Self::Shutdown => "shutdown",
            Self::Offline => "offline",
            Self::Failure => "failure",
            Self::Timeout => "timeout",
            Self::Manual => "manual",
            Self::Preempt => "preempt",
        }
    }

    /// How the winner is reported (`election_method`).
    pub fn method(self) -> &'static str {
        match self {
            Self::NoMaster => "automatic",
            Self::Manual => "manual",
            _ => "priority",
        }
    }
}

/// A device that may be elected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub device_id: &'a str,
    pub priority: i32,
}

/// Chooses the master among `candidates`: `preferred` when it is one of them, else the highest
/// priority, ties going to the smallest `device_id` in byte order.
pub fn choose<'a>(candidates: &[Candidate<'a>], preferred: Option<&str>) -> Option<&'a str> {
    if let Some(wanted) = preferred
        && let Some(c) = candidates.iter().find(|c| c.device_id == wanted)
    {
        return Some(c.device_id);
    }
    candidates
        .iter()
        .max_by(|a, b| {
            a.priority.cmp(&b.priority).then_with(|| b.device_id.as_bytes().cmp(a.device_id.as_bytes()))
        })
        .map(|c| c.device_id)
}

/// After `failed` attempts have failed (1 for the first), how long to wait before the next one,
/// or `None` when the election has used up `max_retries` attempts and fails.
pub fn next_attempt(failed: u32, max_retries: u32, backoff_ms: &[u64]) -> Option<Duration> {
    if failed >= max_retries.max(1) {
        return None;
    }
    let index = usize::try_from(failed.saturating_sub(1)).unwrap_or(usize::MAX);
    let ms = backoff_ms.get(index).or(backoff_ms.last()).copied().unwrap_or(0);
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(device_id: &str, priority: i32) -> Candidate<'_> {
        Candidate { device_id, priority }
    }

    #[test]
    fn the_highest_priority_wins() {
        assert_eq!(choose(&[c("till-1", 20), c("office", 80), c("tab", 60)], None), Some("office"));
    }

    #[test]
    fn a_tie_on_priority_goes_to_the_smallest_device_id() {
        assert_eq!(choose(&[c("till-2", 80), c("till-10", 80), c("till-1", 80)], None), Some("till-1"));
        // Byte order, not natural order, and upper case sorts before lower case.
        assert_eq!(choose(&[c("b", 50), c("B", 50), c("a", 50)], None), Some("B"));
    }

    #[test]
    fn an_active_preferred_master_is_chosen_whatever_its_priority() {
        assert_eq!(choose(&[c("office", 100), c("till-1", 0)], Some("till-1")), Some("till-1"));
    }

    #[test]
    fn a_preferred_master_that_is_not_a_candidate_is_ignored() {
        assert_eq!(choose(&[c("office", 100), c("till-1", 0)], Some("gone")), Some("office"));
    }

    #[test]
    fn no_candidates_elects_no_one() {
        assert_eq!(choose(&[], None), None);
        assert_eq!(choose(&[], Some("x")), None);
    }

    #[test]
    fn the_backoff_schedule_follows_the_settings_and_gives_up_after_max_retries() {
        let backoff = [1000, 2000, 4000];
        assert_eq!(next_attempt(1, 3, &backoff), Some(Duration::from_millis(1000)));
        assert_eq!(next_attempt(2, 3, &backoff), Some(Duration::from_millis(2000)));
        assert_eq!(next_attempt(3, 3, &backoff), None);
        assert_eq!(next_attempt(4, 5, &backoff), Some(Duration::from_millis(4000)), "the last delay repeats");
        assert_eq!(next_attempt(1, 1, &backoff), None);
        assert_eq!(next_attempt(1, 0, &backoff), None, "at least one attempt, never a retry");
    }

    #[test]
    fn device_types_have_document_001_priorities() {
        assert_eq!(priority_for_type("admin"), Some(100));
        assert_eq!(priority_for_type("manager"), Some(80));
        assert_eq!(priority_for_type("assistant_manager"), Some(60));
        assert_eq!(priority_for_type("inventory_assistant"), Some(40));
        assert_eq!(priority_for_type("sales_assistant"), Some(20));
        assert_eq!(priority_for_type("kiosk"), None);
    }

    #[test]
    fn reasons_report_their_method() {
        assert_eq!(Reason::NoMaster.method(), "automatic");
        assert_eq!(Reason::Manual.method(), "manual");
        assert_eq!(Reason::Shutdown.method(), "priority");
        assert_eq!(Reason::Timeout.as_str(), "timeout");
    }
}
