//! Faults the tests inject into a running server (`fault-injection` builds only; `make test`
//! builds with it, release builds do not): a session's connection dropped after its write
//! committed and before the write's answer went out, as a network does.

use std::collections::HashSet;
use std::sync::Mutex;

/// The faults armed now, shared by every session.
#[derive(Debug, Default)]
pub struct Faults {
    /// Message ids whose answer is not sent: the connection drops instead.
    drop_before_reply: Mutex<HashSet<String>>,
}

impl Faults {
    /// The next answer to a message with `id` is not sent: the session's connection drops
    /// instead (once).
    pub fn drop_connection_before_reply(&self, id: &str) {
        self.lock().insert(id.to_owned());
    }

    /// Whether the answer to `id` is to be dropped with its connection (the fault is spent).
    pub fn drops_reply(&self, id: &str) -> bool {
        self.lock().remove(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.drop_before_reply.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
