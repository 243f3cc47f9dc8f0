//! A session's outbound queue, and the pump that keeps the session running whatever its socket
//! does. Not an actor: the plumbing between a Session actor and its HTTP response.
//!
//! actix-web-actors drives a WebSocket actor from inside the response stream, and the HTTP
//! dispatcher polls that stream only while its write buffer has room. Left as is, a peer that
//! stops reading freezes its session: no timers, no heartbeat checks, a mailbox that only grows.
//! Here the actor's stream is polled by a task of its own (the pump), which moves the encoded
//! frames into this queue; the response body takes them from the queue when the socket can.
//! The session counts what it writes and what the socket has taken, so it knows exactly how far
//! behind its client is and closes it (4008) when that passes `limits.session_queue`.
//!
//! Everything here lives on the session's worker thread (`Rc`, no locks).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::Stream;
use futures_util::future::poll_fn;
use tokio::time::{Sleep, sleep};

/// The queue shared by a session, its pump and its response body.
#[derive(Clone, Default)]
pub struct Outbox {
    inner: Rc<RefCell<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// Encoded chunks not yet taken by the socket, each with how many frames it holds.
    chunks: VecDeque<(Bytes, usize)>,
    /// Frames the session has written.
    written: usize,
    /// Frames already counted into `chunks`.
    pumped: usize,
    /// Frames the socket has taken (or that were dropped).
    flushed: usize,
    /// The session's stream has ended: no more chunks will come.
    finished: bool,
    /// The response body was dropped (the connection is gone).
    body_gone: bool,
    body_waker: Option<Waker>,
    pump_waker: Option<Waker>,
    /// Called once when `pending()` falls to `drain_level` or below.
    on_drain: Option<(usize, Box<dyn FnOnce()>)>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// The session wrote one more frame (text, ping, close…).
    pub fn note_written(&self) {
        self.inner.borrow_mut().written += 1;
    }

    /// Frames written by the session and not yet taken by the socket.
    pub fn pending(&self) -> usize {
        let inner = self.inner.borrow();
        inner.written.saturating_sub(inner.flushed)
    }

    /// Drops every frame the socket has not taken yet (a slow consumer's queue).
    pub fn discard_queued(&self) {
        let mut inner = self.inner.borrow_mut();
        let dropped: usize = inner.chunks.drain(..).map(|(_, frames)| frames).sum();
        inner.flushed += dropped;
    }

    /// Calls `f` once, when at most `level` frames are pending (at once if already so).
    pub fn notify_when_drained(&self, level: usize, f: impl FnOnce() + 'static) {
        if self.pending() <= level {
            f();
        } else {
            self.inner.borrow_mut().on_drain = Some((level, Box::new(f)));
        }
    }

    fn push(&self, chunk: Bytes) {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            let frames = inner.written - inner.pumped;
            inner.pumped = inner.written;
            if inner.body_gone {
                // Nobody will send it: the connection is gone.
                inner.flushed += frames;
                return;
            }
            inner.chunks.push_back((chunk, frames));
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

/// How long a session is still driven after its connection is gone, so that it handles the
/// frames that arrived before the end (a client may send and close at once). Its stream
/// normally ends sooner, as soon as it has read them.
const LINGER: Duration = Duration::from_secs(2);

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

impl Stream for OutboxBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let (item, drained) = {
            let mut inner = self.outbox.inner.borrow_mut();
            match inner.chunks.pop_front() {
                Some((chunk, frames)) => {
                    inner.flushed += frames;
                    let pending = inner.written.saturating_sub(inner.flushed);
                    let drained = match &inner.on_drain {
                        Some((level, _)) if pending <= *level => inner.on_drain.take().map(|(_, f)| f),
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
            inner.chunks.clear();
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

    #[test]
    fn pending_counts_frames_until_the_socket_takes_them() {
        let outbox = Outbox::new();
        outbox.note_written();
        outbox.note_written();
        assert_eq!(outbox.pending(), 2);
        outbox.push(Bytes::from_static(b"two frames"));
        assert_eq!(outbox.pending(), 2);
        let mut body = OutboxBody { outbox: outbox.clone() };
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(Pin::new(&mut body).poll_next(&mut cx), Poll::Ready(Some(Ok(_)))));
        assert_eq!(outbox.pending(), 0);
        assert!(Pin::new(&mut body).poll_next(&mut cx).is_pending());
        outbox.finish();
        assert!(matches!(Pin::new(&mut body).poll_next(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn a_discarded_queue_is_no_longer_pending() {
        let outbox = Outbox::new();
        for _ in 0..3 {
            outbox.note_written();
            outbox.push(Bytes::from_static(b"x"));
        }
        assert_eq!(outbox.pending(), 3);
        outbox.discard_queued();
        assert_eq!(outbox.pending(), 0);
    }

    #[test]
    fn the_drain_callback_fires_once_below_the_level() {
        let outbox = Outbox::new();
        for _ in 0..4 {
            outbox.note_written();
            outbox.push(Bytes::from_static(b"x"));
        }
        let fired = Rc::new(RefCell::new(0));
        let seen = Rc::clone(&fired);
        outbox.notify_when_drained(1, move || *seen.borrow_mut() += 1);
        let mut body = OutboxBody { outbox: outbox.clone() };
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..4 {
            let _ = Pin::new(&mut body).poll_next(&mut cx);
        }
        assert_eq!(*fired.borrow(), 1);
    }
}
