//! Faults the tests inject into a running server (`fault-injection` builds only; `make test`
//! builds with it, release builds do not): a session's connection dropped after its write
//! committed and before the write's answer went out, as a network does; a session subscribed
//! to broadcasts late, after its first log read.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// The faults armed now, shared by every session.
#[derive(Debug, Default)]
pub struct Faults {
    /// Message ids whose answer is not sent: the connection drops instead.
    drop_before_reply: Mutex<HashSet<String>>,
    /// How long Broadcast holds up each new subscription.
    subscription_delay: Mutex<Option<Duration>>,
    /// How long Broadcast holds up handing out each batch of committed changes (its own, and
    /// those read from the shared log).
    publish_delay: Mutex<Option<Duration>>,
    /// How long each `sync_request`'s read takes longer.
    sync_read_delay: Mutex<Option<Duration>>,
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

    /// Broadcast subscribes each new session `delay` late: changes published meanwhile reach
    /// it only through the log.
    pub fn delay_subscriptions(&self, delay: Duration) {
        *self.subscription_delay.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(delay);
    }

    /// The delay armed, if any.
    pub fn subscription_delay(&self) -> Option<Duration> {
        *self.subscription_delay.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Broadcast hands out each batch of committed changes `delay` late: the log is ahead of
    /// what this node has published meanwhile.
    pub fn delay_publishing(&self, delay: Duration) {
        *self.publish_delay.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(delay);
    }

    /// The delay armed, if any.
    pub fn publish_delay(&self) -> Option<Duration> {
        *self.publish_delay.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every `sync_request`'s read takes `delay` longer.
    pub fn delay_sync_reads(&self, delay: Duration) {
        *self.sync_read_delay.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(delay);
    }

    /// The delay armed, if any.
    pub fn sync_read_delay(&self) -> Option<Duration> {
        *self.sync_read_delay.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.drop_before_reply.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
