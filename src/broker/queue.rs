//! Each client's outbound queue: the broker pushes serialized lines, the client's writer drains
//! them.
//!
//! A [`Line`] is one serialized IRC line, CRLF included, behind an `Arc`: a channel message is
//! serialized once and every member's queue gets a clone of the same bytes, never a copy.
//!
//! **When it fills.** The queue is bounded in bytes (IRC operators know this limit as the
//! SendQ). A push that would take the queued bytes past the limit is refused with
//! [`PushError::Full`], and the broker disconnects that client (`ERROR :SendQ exceeded`): the
//! broker never waits on one slow client. The final `ERROR` line alone may go past the limit
//! ([`SendQueue::push_final`]), so a client always learns why it was dropped. The writer takes
//! everything queued at once ([`Outbound::take_all`]), so at any moment a client holds at most
//! the limit in the queue plus the batch its writer is writing.
//!
//! **When it closes.** When the last [`SendQueue`] handle is dropped, [`Outbound::take_all`]
//! still yields what was queued and then reports the end, so the writer flushes the last lines
//! (the `ERROR`) before it closes the socket. When the [`Outbound`] is dropped (the connection
//! ended), pushes fail with [`PushError::Closed`].
//!
//! Why not async-channel: a bounded async-channel allocates its whole capacity up front, and an
//! unbounded one keeps a block of 31 slots once used, both paid by every idle client. This
//! queue holds no memory while empty, takes one uncontended lock per push, wakes the writer
//! once per batch rather than once per line, and hands the writer the whole batch in one swap.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// One serialized line, shared among its recipients.
pub type Line = Arc<[u8]>;

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The client has its limit queued already: it is too slow, or not reading at all.
    Full,
    /// The writer is gone (the connection ended).
    Closed,
}

#[derive(Default)]
struct State {
    lines: VecDeque<Line>,
    bytes: usize,
    /// The writer, when it waits for lines.
    waker: Option<Waker>,
    /// Live [`SendQueue`] handles; at zero the queue is finished once drained.
    senders: usize,
    /// The [`Outbound`] was dropped.
    receiver_gone: bool,
}

struct Shared {
    state: Mutex<State>,
    limit: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, but if something ever did, the queue's state
        // (a deque and counters) is still consistent: carry on rather than spread the panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The broker's end of one client's queue. Clones push into the same queue.
///
/// ```
/// use std::collections::VecDeque;
/// use chatnode::broker::{send_queue, PushError};
/// let (queue, outbound) = send_queue(10);
/// queue.push(b"PING :x\r\n"[..].into()).unwrap();
/// assert_eq!(queue.push(b"PING :y\r\n"[..].into()), Err(PushError::Full));
/// queue.push_final(b"ERROR :SendQ exceeded\r\n"[..].into()).unwrap();
/// drop(queue);
/// let mut batch = VecDeque::new();
/// assert!(futures_lite::future::block_on(outbound.take_all(&mut batch)));
/// assert_eq!(batch.len(), 2);
/// assert_eq!(&*batch[1], b"ERROR :SendQ exceeded\r\n");
/// batch.clear();
/// assert!(!futures_lite::future::block_on(outbound.take_all(&mut batch)));
/// ```
pub struct SendQueue {
    shared: Arc<Shared>,
}

/// The writer's end of one client's queue.
pub struct Outbound {
    shared: Arc<Shared>,
}

/// Creates a queue that holds at most `limit_bytes` of lines (plus one final line).
pub fn send_queue(limit_bytes: usize) -> (SendQueue, Outbound) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            senders: 1,
            ..State::default()
        }),
        limit: limit_bytes,
    });
    (
        SendQueue {
            shared: shared.clone(),
        },
        Outbound { shared },
    )
}

impl SendQueue {
    /// Queues `line` unless that would put more than the limit in the queue.
    pub fn push(&self, line: Line) -> Result<(), PushError> {
        self.push_inner(line, true)
    }

    /// Queues `line` whatever the limit: only for the last line a client gets (its `ERROR`).
    pub fn push_final(&self, line: Line) -> Result<(), PushError> {
        self.push_inner(line, false)
    }

    fn push_inner(&self, line: Line, limited: bool) -> Result<(), PushError> {
        let waker = {
            let mut state = self.shared.lock();
            if state.receiver_gone {
                return Err(PushError::Closed);
            }
            if limited && state.bytes + line.len() > self.shared.limit {
                return Err(PushError::Full);
            }
            state.bytes += line.len();
            state.lines.push_back(line);
            // Taking the waker means later pushes in the same burst wake nobody: the writer
            // will find them all when it runs.
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Bytes waiting in the queue (not counting the batch the writer is writing).
    pub fn queued_bytes(&self) -> usize {
        self.shared.lock().bytes
    }
}

impl Clone for SendQueue {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        SendQueue {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for SendQueue {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            if state.senders > 0 {
                return;
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl std::fmt::Debug for SendQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendQueue")
            .field("queued_bytes", &self.queued_bytes())
            .field("limit", &self.shared.limit)
            .finish()
    }
}

impl Outbound {
    /// Waits until lines are queued and moves them all to the back of `batch`: `true`. Returns
    /// `false` once the queue is empty and every [`SendQueue`] is gone.
    ///
    /// Cancel-safe: lines are moved only in the poll that returns `true`.
    pub async fn take_all(&self, batch: &mut VecDeque<Line>) -> bool {
        poll_fn(|cx| self.poll_take_all(cx, batch)).await
    }

    /// Poll form of [`Outbound::take_all`], for hand-written futures.
    pub fn poll_take_all(&self, cx: &mut Context<'_>, batch: &mut VecDeque<Line>) -> Poll<bool> {
        let mut state = self.shared.lock();
        if !state.lines.is_empty() {
            if batch.is_empty() {
                std::mem::swap(&mut state.lines, batch);
            } else {
                batch.append(&mut state.lines);
            }
            state.bytes = 0;
            Poll::Ready(true)
        } else if state.senders == 0 {
            Poll::Ready(false)
        } else {
            match &mut state.waker {
                Some(w) => w.clone_from(cx.waker()),
                None => state.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        }
    }

    /// Whether nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.shared.lock().lines.is_empty()
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        // Free the lines now rather than when the broker lets go of its handles.
        state.lines = VecDeque::new();
        state.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    fn line(s: &str) -> Line {
        Arc::from(s.as_bytes())
    }

    #[test]
    fn limit_counts_bytes_and_resets_when_taken() {
        let (q, out) = send_queue(20);
        q.push(line("0123456789")).unwrap();
        q.push(line("0123456789")).unwrap();
        assert_eq!(q.push(line("x")), Err(PushError::Full));
        let mut batch = VecDeque::new();
        assert!(block_on(out.take_all(&mut batch)));
        assert_eq!(batch.len(), 2);
        assert_eq!(q.queued_bytes(), 0);
        q.push(line("x")).unwrap();
    }

    #[test]
    fn waits_and_is_woken_by_a_push() {
        let (q, out) = send_queue(100);
        let mut batch = VecDeque::new();
        let mut fut = Box::pin(out.take_all(&mut batch));
        assert_eq!(block_on(poll_once(fut.as_mut())), None);
        q.push(line("a")).unwrap();
        assert!(block_on(fut));
    }

    #[test]
    fn ends_only_after_the_last_clone_is_dropped_and_drained() {
        let (q, out) = send_queue(100);
        let q2 = q.clone();
        q.push(line("a")).unwrap();
        drop(q);
        let mut batch = VecDeque::new();
        assert!(block_on(out.take_all(&mut batch)));
        assert!(block_on(poll_once(out.take_all(&mut batch))).is_none());
        drop(q2);
        assert!(!block_on(out.take_all(&mut batch)));
    }

    #[test]
    fn push_after_the_writer_is_gone_fails() {
        let (q, out) = send_queue(100);
        drop(out);
        assert_eq!(q.push(line("a")), Err(PushError::Closed));
        assert_eq!(q.push_final(line("a")), Err(PushError::Closed));
    }
}
