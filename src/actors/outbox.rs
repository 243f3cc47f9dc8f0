//! A session's outbound queue, and the pump that keeps the session running whatever its socket
//! does. Not an actor: the plumbing between a Session actor and its HTTP response.
//!
//! actix-web-actors drives a WebSocket actor from inside the response stream, and the HTTP
//! dispatcher polls that stream only while its write buffer has room. Left as is, a peer that
//! stops reading freezes its session: no timers, no heartbeat checks, a mailbox that only grows.
//! Here the actor's stream is polled by a task of its own (the pump), which moves the encoded
//! frames into this queue; the response body takes them from the queue when the socket can.
//!
//! The session records every frame it writes in a ledger (its exact encoded size, and whether
//! it counts toward the live-traffic bound); frames leave the ledger as the socket takes the
//! chunks that hold them. So the session knows exactly how many frames, and how many bytes of
//! live traffic, its client has not taken, and closes it (4008) past `limits.session_queue` or
//! `limits.session_queue_bytes`.
//!
//! Everything here lives on the session's worker thread (`Rc`, no locks), but for the budget
//! every queue shares (`QueueBudget`): past it, the largest queues are cut off first.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix::Recipient;
use actix_web::web::Bytes;
use futures_util::Stream;
use futures_util::future::poll_fn;
use tokio::time::{Sleep, sleep};
use uuid::Uuid;

use super::broadcast::Outbound;

/// How long a session is still driven after its connection is gone, so that it handles the
/// frames that arrived before the end (a client may send and close at once). Its stream
/// normally ends sooner, as soon as it has read them.
const LINGER: Duration = Duration::from_secs(2);

/// The size of a server (unmasked) WebSocket frame with `payload` bytes.
pub fn encoded_len(payload: usize) -> usize {
    let header = match payload {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    header + payload
}

/// The socket under a WebSocket session's connection (its file descriptor), noted when the
/// connection is accepted.
#[derive(Debug, Clone, Copy)]
pub struct Connection(#[cfg(unix)] pub std::os::fd::RawFd);

/// The server's budget for every session's queue together (`limits.total_queue_bytes`): past it,
/// the largest queues are cut off (4008) first, until what is left fits. Each queue's bytes are
/// counted as they come and go; the largest are looked for only when the budget is exceeded.
pub struct QueueBudget {
    limit: usize,
    total: AtomicUsize,
    queues: Mutex<HashMap<Uuid, Queue>>,
}

struct Queue {
    bytes: Arc<AtomicUsize>,
    /// Told to cut its client off.
    session: Recipient<Outbound>,
    /// Told already.
    cut: bool,
}

impl QueueBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { limit, total: AtomicUsize::new(0), queues: Mutex::new(HashMap::new()) })
    }

    /// Bytes queued for every session together.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Queue>> {
        self.queues.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Over budget: the largest queues not told yet are told to cut their clients off, until
    /// what the others hold fits.
    fn relieve(&self) {
        // One look at a time: another worker looking now does the same.
        let Ok(mut queues) = self.queues.try_lock() else { return };
        let mut left = self.total();
        for queue in queues.values().filter(|q| q.cut) {
            left = left.saturating_sub(queue.bytes.load(Ordering::Acquire));
        }
        while left > self.limit {
            let largest = queues
                .iter_mut()
                .filter(|(_, q)| !q.cut)
                .max_by_key(|(_, q)| q.bytes.load(Ordering::Acquire));
            let Some((id, queue)) = largest else { return };
            let bytes = queue.bytes.load(Ordering::Acquire);
            tracing::warn!(session = %id, bytes, total = left, limit = self.limit, "queue budget exceeded: cutting the largest queue off");
            queue.cut = true;
            queue.session.do_send(Outbound::CutOff);
            left = left.saturating_sub(bytes);
        }
    }
}

/// A queue's part of the budget.
struct Share {
    budget: Arc<QueueBudget>,
    mine: Arc<AtomicUsize>,
}

impl Share {
    fn more(&self, bytes: usize) {
        self.mine.fetch_add(bytes, Ordering::AcqRel);
        let total = self.budget.total.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if total > self.budget.limit {
            self.budget.relieve();
        }
    }

    fn less(&self, bytes: usize) {
        self.mine.fetch_sub(bytes, Ordering::AcqRel);
        self.budget.total.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// The queue shared by a session, its pump and its response body.
#[derive(Clone, Default)]
pub struct Outbox {
    inner: Rc<RefCell<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// Encoded chunks not yet taken by the socket.
    chunks: VecDeque<Bytes>,
    /// Every frame written and not yet taken: its encoded size, and whether it is live traffic
    /// (counted against the byte bound).
    ledger: VecDeque<(usize, bool)>,
    /// Encoded bytes of live frames in the ledger.
    live_bytes: usize,
    /// Encoded bytes of every frame in the ledger.
    bytes: usize,
    /// Its part of the server's budget for every queue together.
    share: Option<Share>,
    /// Bytes taken by the socket beyond the last whole frame (0 when chunks hold whole frames).
    partial: usize,
    /// The session's stream has ended: no more chunks will come.
    finished: bool,
    /// The response body was dropped (the connection is gone).
    body_gone: bool,
    /// The connection's socket, when the session has one (a long-polling session has not).
    connection: Option<Connection>,
    /// The queue was cut off (a slow consumer): its close frame is queued, and nothing the
    /// session produced before or after it goes out.
    cut: bool,
    body_waker: Option<Waker>,
    pump_waker: Option<Waker>,
    /// Called once when `pending()` and `pending_bytes()` fall to these levels or below.
    on_drain: Option<Drain>,
}

/// What waits for a queue to drain: at most this many frames and bytes, then the callback.
type Drain = (usize, usize, Box<dyn FnOnce()>);

impl Inner {
    /// The socket took (or the session dropped) `bytes`: those frames leave the ledger.
    fn take(&mut self, bytes: usize) {
        let mut left = bytes + self.partial;
        while let Some(&(size, live)) = self.ledger.front() {
            if size > left {
                break;
            }
            left -= size;
            if live {
                self.live_bytes -= size;
            }
            self.bytes -= size;
            if let Some(share) = &self.share {
                share.less(size);
            }
            self.ledger.pop_front();
        }
        self.partial = left;
    }
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// The queue of a session on `connection`.
    pub fn on(connection: Option<Connection>) -> Self {
        let outbox = Self::default();
        outbox.inner.borrow_mut().connection = connection;
        outbox
    }

    /// Counts this queue in the server's `budget`, as session `id` (told `Outbound::CutOff`
    /// when its queue is among the largest past the budget).
    pub fn join_budget(&self, budget: &Arc<QueueBudget>, id: Uuid, session: Recipient<Outbound>) {
        let mut inner = self.inner.borrow_mut();
        let mine = Arc::new(AtomicUsize::new(0));
        budget.lock().insert(id, Queue { bytes: Arc::clone(&mine), session, cut: false });
        let share = Share { budget: Arc::clone(budget), mine };
        share.more(inner.bytes);
        inner.share = Some(share);
    }

    /// Stops counting this queue (the session stops): what it still holds leaves the total.
    pub fn leave_budget(&self, id: Uuid) {
        let mut inner = self.inner.borrow_mut();
        if let Some(share) = inner.share.take() {
            share.less(share.mine.load(Ordering::Acquire));
            share.budget.lock().remove(&id);
        }
    }

    /// The close handshake is done: the session reads no more. Ends the reading side of its
    /// socket, so that the connection closes as soon as the close frame is out. Otherwise the
    /// HTTP dispatcher, finding the request (the WebSocket's input) unread at the response's
    /// end, goes on reading for up to a second, waiting for the client to hang up first, while
    /// the client waits for the server to, as RFC 6455 §7.1.1 has it.
    pub fn end_reading(&self) {
        let inner = self.inner.borrow();
        // Once the body is gone, so is the connection, and its descriptor may be another's.
        if inner.body_gone {
            return;
        }
        #[cfg(unix)]
        if let Some(Connection(fd)) = inner.connection {
            // SAFETY: `shutdown` on a descriptor we do not close. While the response body is
            // alive, the dispatcher that polls it holds the socket open: `fd` is this
            // connection's. Both run on this thread, so the body cannot go meanwhile.
            let ended = unsafe { libc::shutdown(fd, libc::SHUT_RD) };
            if ended != 0 {
                tracing::debug!(err = %std::io::Error::last_os_error(), "ending a session's reading side");
            }
        }
    }

    /// The session wrote one more frame of `payload` bytes; `live` for live traffic (counted
    /// against the byte bound), not for paced catch-up and sync answers.
    pub fn note_written(&self, payload: usize, live: bool) {
        let size = encoded_len(payload);
        let mut inner = self.inner.borrow_mut();
        inner.ledger.push_back((size, live));
        if live {
            inner.live_bytes += size;
        }
        inner.bytes += size;
        if let Some(share) = &inner.share {
            share.more(size);
        }
    }

    /// Frames written by the session and not yet taken by the socket.
    pub fn pending(&self) -> usize {
        self.inner.borrow().ledger.len()
    }

    /// Encoded bytes of live frames not yet taken by the socket.
    pub fn pending_live_bytes(&self) -> usize {
        self.inner.borrow().live_bytes
    }

    /// Encoded bytes of every frame not yet taken by the socket (live, catch-up and answers).
    pub fn pending_bytes(&self) -> usize {
        self.inner.borrow().bytes
    }

    /// Cuts a slow consumer off: drops every frame the socket has not taken yet, queues
    /// `close` (an encoded close frame) in their place, and from now on drops whatever else
    /// the session produced, including frames it wrote before this call that the pump had not
    /// moved here yet. What the client receives is a prefix of what it was sent, then the close.
    pub fn cut_off(&self, close: Bytes) {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            if inner.cut {
                return;
            }
            inner.cut = true;
            inner.chunks.clear();
            inner.ledger.clear();
            inner.live_bytes = 0;
            if let Some(share) = &inner.share {
                share.less(inner.bytes);
            }
            inner.bytes = 0;
            inner.partial = 0;
            if !inner.body_gone {
                inner.chunks.push_back(close);
            }
            inner.body_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Calls `f` once, when at most `level` frames and `bytes` bytes are pending (at once if
    /// already so).
    pub fn notify_when_drained(&self, level: usize, bytes: usize, f: impl FnOnce() + 'static) {
        if self.pending() <= level && self.pending_bytes() <= bytes {
            f();
        } else {
            self.inner.borrow_mut().on_drain = Some((level, bytes, Box::new(f)));
        }
    }

    fn push(&self, chunk: Bytes) {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            if inner.cut {
                // Cut off: only the close frame already queued goes out.
                return;
            }
            if inner.body_gone {
                // Nobody will send it: the connection is gone.
                inner.take(chunk.len());
                return;
            }
            inner.chunks.push_back(chunk);
            inner.body_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn finish(&self) {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            inner.finished = true;
            inner.body_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Starts the pump for a session's stream and returns the response body that feeds the socket.
pub fn drive<S>(stream: S, outbox: Outbox) -> OutboxBody
where
    S: Stream<Item = Result<Bytes, actix_web::Error>> + 'static,
{
    let pump_side = outbox.clone();
    actix_web::rt::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut linger: Option<Pin<Box<Sleep>>> = None;
        loop {
            let next = poll_fn(|cx| {
                let gone = {
                    let mut inner = pump_side.inner.borrow_mut();
                    inner.pump_waker = Some(cx.waker().clone());
                    inner.body_gone
                };
                if gone {
                    let deadline = linger.get_or_insert_with(|| Box::pin(sleep(LINGER)));
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(None);
                    }
                }
                stream.as_mut().poll_next(cx)
            })
            .await;
            match next {
                Some(Ok(chunk)) => pump_side.push(chunk),
                Some(Err(err)) => {
                    tracing::debug!(%err, "session stream failed");
                    break;
                }
                None => break,
            }
        }
        // Dropping the stream stops the session actor (if it is still running), which
        // unregisters.
        pump_side.finish();
    });
    OutboxBody { outbox }
}

/// The response body of a WebSocket session: the frames the socket can take, in order.
pub struct OutboxBody {
    outbox: Outbox,
}

impl OutboxBody {
    /// Ready once the session's stream has ended (what it wrote may still be queued). For a
    /// reader that takes frames only when asked: it is woken as `poll_next` would be.
    pub fn poll_finished(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.outbox.inner.borrow_mut();
        if inner.finished {
            return Poll::Ready(());
        }
        inner.body_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Stream for OutboxBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let (item, drained) = {
            let mut inner = self.outbox.inner.borrow_mut();
            match inner.chunks.pop_front() {
                Some(chunk) => {
                    inner.take(chunk.len());
                    let (pending, bytes) = (inner.ledger.len(), inner.bytes);
                    let drained = match &inner.on_drain {
                        Some((level, most, _)) if pending <= *level && bytes <= *most => {
                            inner.on_drain.take().map(|(_, _, f)| f)
                        }
                        _ => None,
                    };
                    (Poll::Ready(Some(Ok(chunk))), drained)
                }
                None if inner.finished => (Poll::Ready(None), None),
                None => {
                    inner.body_waker = Some(cx.waker().clone());
                    (Poll::Pending, None)
                }
            }
        };
        if let Some(f) = drained {
            f();
        }
        item
    }
}

impl Drop for OutboxBody {
    fn drop(&mut self) {
        let waker = {
            let mut inner = self.outbox.inner.borrow_mut();
            inner.body_gone = true;
            let dropped: usize = inner.chunks.drain(..).map(|c| c.len()).sum();
            inner.take(dropped);
            inner.pump_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: usize) -> Bytes {
        Bytes::from(vec![0u8; encoded_len(payload)])
    }

    fn poll(body: &mut OutboxBody) -> Poll<Option<Result<Bytes, Infallible>>> {
        let waker = futures_util::task::noop_waker();
        Pin::new(body).poll_next(&mut Context::from_waker(&waker))
    }

    #[test]
    fn frames_stay_pending_until_the_socket_takes_them() {
        let outbox = Outbox::new();
        outbox.note_written(10, true);
        outbox.note_written(300, true);
        assert_eq!((outbox.pending(), outbox.pending_live_bytes()), (2, 12 + 304));
        // The pump encodes both into one chunk.
        let mut chunk = frame(10).to_vec();
        chunk.extend_from_slice(&frame(300));
        outbox.push(Bytes::from(chunk));
        assert_eq!(outbox.pending(), 2);
        let mut body = OutboxBody { outbox: outbox.clone() };
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert_eq!((outbox.pending(), outbox.pending_live_bytes()), (0, 0));
        assert!(poll(&mut body).is_pending());
        outbox.finish();
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }

    #[test]
    fn paced_frames_count_as_frames_but_not_as_live_bytes() {
        let outbox = Outbox::new();
        outbox.note_written(70_000, false);
        outbox.note_written(5, true);
        assert_eq!((outbox.pending(), outbox.pending_live_bytes()), (2, 7));
        outbox.push(frame(70_000));
        let mut body = OutboxBody { outbox: outbox.clone() };
        let _ = poll(&mut body);
        assert_eq!((outbox.pending(), outbox.pending_live_bytes()), (1, 7));
    }

    #[test]
    fn a_cut_off_queue_sends_what_the_socket_took_then_only_the_close() {
        let outbox = Outbox::new();
        let mut body = OutboxBody { outbox: outbox.clone() };
        let taken = Bytes::from_static(b"taken");
        outbox.note_written(3, true);
        outbox.push(taken.clone());
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(c))) if c == taken));
        for _ in 0..3 {
            outbox.note_written(1, true);
            outbox.push(frame(1));
        }
        outbox.cut_off(Bytes::from_static(b"close"));
        assert_eq!((outbox.pending(), outbox.pending_live_bytes()), (0, 0));
        // What the session had produced before the cut, and anything after it, is dropped.
        outbox.push(frame(1));
        outbox.push(Bytes::from_static(b"its own close"));
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(c))) if c == Bytes::from_static(b"close")));
        assert!(poll(&mut body).is_pending());
        outbox.finish();
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }

    #[test]
    fn the_drain_callback_fires_once_below_the_level() {
        let outbox = Outbox::new();
        for _ in 0..4 {
            outbox.note_written(1, false);
            outbox.push(frame(1));
        }
        let fired = Rc::new(RefCell::new(0));
        let seen = Rc::clone(&fired);
        outbox.notify_when_drained(1, usize::MAX, move || *seen.borrow_mut() += 1);
        let mut body = OutboxBody { outbox: outbox.clone() };
        for _ in 0..4 {
            let _ = poll(&mut body);
        }
        assert_eq!(*fired.borrow(), 1);
    }

    #[test]
    fn frame_sizes_follow_the_websocket_header_lengths() {
        assert_eq!(encoded_len(0), 2);
        assert_eq!(encoded_len(125), 127);
        assert_eq!(encoded_len(126), 130);
        assert_eq!(encoded_len(65_535), 65_539);
        assert_eq!(encoded_len(65_536), 65_546);
    }
}
