//! Each client's outbound queue: the broker pushes serialized lines, the client's writer drains them.
//!
//! A [`Line`] is one serialized IRC line, CRLF included, behind an `Arc`: a channel message is
//! serialized once and every member's queue gets a clone of the same bytes, never a copy.
//!
//! The queue is bounded in **bytes** (IRC operators know this limit as the SendQ). When a push
//! would take a client past its limit, [`SendQueue::push`] refuses with [`PushError::Full`]
//! and the broker disconnects that client (`ERROR :SendQ exceeded`): the broker never waits on
//! one slow client, and memory per client never grows past the limit. The final `ERROR` line
//! alone may go past the limit ([`SendQueue::push_final`]), so a client always learns why it
//! was dropped.
//!
//! Closing: when every [`SendQueue`] for a client is dropped, [`Outbound::recv`] still yields
//! what was queued and then `None`, so the writer flushes the last lines (the `ERROR`) before it
//! closes the socket.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One serialized line, shared among its recipients.
pub type Line = Arc<[u8]>;

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The client has more than its limit queued: it is too slow, or not reading at all.
    Full,
    /// The writer is gone (the connection ended).
    Closed,
}

/// The broker's end of one client's queue.
///
/// ```
/// use chatnode::broker::{send_queue, PushError};
/// let (queue, outbound) = send_queue(10);
/// queue.push(b"PING :x\r\n"[..].into()).unwrap();
/// assert_eq!(queue.push(b"PING :y\r\n"[..].into()), Err(PushError::Full));
/// queue.push_final(b"ERROR :SendQ exceeded\r\n"[..].into()).unwrap();
/// drop(queue);
/// assert_eq!(&*outbound.try_recv().unwrap(), b"PING :x\r\n");
/// assert_eq!(&*outbound.try_recv().unwrap(), b"ERROR :SendQ exceeded\r\n");
/// assert!(futures_lite::future::block_on(outbound.recv()).is_none());
/// ```
#[derive(Clone)]
pub struct SendQueue {
    // Unbounded on purpose: a bounded async-channel allocates its whole buffer up front, which
    // an idle client would pay for. The bound is enforced here, in bytes, by `queued`.
    tx: async_channel::Sender<Line>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl std::fmt::Debug for SendQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendQueue")
            .field("queued_bytes", &self.queued_bytes())
            .field("limit", &self.limit)
            .finish()
    }
}

/// The writer's end of one client's queue.
pub struct Outbound {
    rx: async_channel::Receiver<Line>,
    queued: Arc<AtomicUsize>,
}

/// Creates a queue that holds at most `limit_bytes` of lines (plus one final line).
pub fn send_queue(limit_bytes: usize) -> (SendQueue, Outbound) {
    let (tx, rx) = async_channel::unbounded();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        SendQueue {
            tx,
            queued: queued.clone(),
            limit: limit_bytes,
        },
        Outbound { rx, queued },
    )
}

impl SendQueue {
    /// Queues `line` unless the client already has `limit` bytes or more waiting.
    pub fn push(&self, line: Line) -> Result<(), PushError> {
        // Only the broker pushes, so the check and the add cannot race with another push;
        // the writer only ever lowers the count.
        if self.queued.load(Ordering::Relaxed) + line.len() > self.limit {
            return Err(PushError::Full);
        }
        self.push_final(line)
    }

    /// Queues `line` whatever the limit: only for the last line a client gets (its `ERROR`).
    pub fn push_final(&self, line: Line) -> Result<(), PushError> {
        let len = line.len();
        self.queued.fetch_add(len, Ordering::Relaxed);
        self.tx.try_send(line).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            PushError::Closed
        })
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

impl Outbound {
    /// Waits for the next line; `None` once the queue is empty and every [`SendQueue`] is gone.
    /// Cancel-safe: dropping the future loses no line.
    pub async fn recv(&self) -> Option<Line> {
        let line = self.rx.recv().await.ok()?;
        self.queued.fetch_sub(line.len(), Ordering::Relaxed);
        Some(line)
    }

    /// The next line if one is queued now.
    pub fn try_recv(&self) -> Option<Line> {
        let line = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(line.len(), Ordering::Relaxed);
        Some(line)
    }
}
