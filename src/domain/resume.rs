//! Whether a client resuming from `last_seq` can be sent exactly what it missed.

/// What to do with a client that resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Send every change after this `seq`.
    Replay { after: u64 },
    /// The history it needs is not here: say so (`resync_required`), it does a full sync.
    Resync { reason: &'static str },
}

/// Decides how to resume a client at `last_seq` of `client_epoch` against a log of
/// `server_epoch` whose changes `log_floor + 1 ..= head` are kept.
pub fn decide(
    client_epoch: Option<&str>,
    last_seq: u64,
    server_epoch: &str,
    log_floor: u64,
    head: u64,
) -> Resume {
    match client_epoch {
        Some(epoch) if epoch != server_epoch => Resume::Resync { reason: "epoch_mismatch" },
        _ if last_seq > head => Resume::Resync { reason: "ahead_of_log" },
        _ if trimmed(last_seq, log_floor) => Resume::Resync { reason: "history_trimmed" },
        _ => Resume::Replay { after: last_seq },
    }
}

/// Whether resuming after `last_seq` needs a change retention pruned: the changes up to
/// `log_floor` are gone, so `last_seq + 1` must be above it.
pub fn trimmed(last_seq: u64, log_floor: u64) -> bool {
    last_seq < log_floor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_of_this_epoch_is_replayed_what_it_missed() {
        assert_eq!(decide(Some("e1"), 5, "e1", 0, 9), Resume::Replay { after: 5 });
        assert_eq!(decide(None, 9, "e1", 0, 9), Resume::Replay { after: 9 });
    }

    #[test]
    fn another_epoch_needs_a_full_sync() {
        assert_eq!(decide(Some("e0"), 5, "e1", 0, 9), Resume::Resync { reason: "epoch_mismatch" });
    }

    #[test]
    fn a_position_beyond_the_log_needs_a_full_sync() {
        assert_eq!(decide(None, 10, "e1", 0, 9), Resume::Resync { reason: "ahead_of_log" });
    }

    #[test]
    fn a_position_before_the_kept_history_needs_a_full_sync() {
        assert_eq!(decide(Some("e1"), 3, "e1", 4, 9), Resume::Resync { reason: "history_trimmed" });
        assert_eq!(decide(Some("e1"), 4, "e1", 4, 9), Resume::Replay { after: 4 });
    }
}
