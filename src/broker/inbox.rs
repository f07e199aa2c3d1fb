//! How events reach the broker: one bounded queue per connection (its RecvQ), served round-robin.
//!
//! **Why not one shared queue.** With a single bounded channel, whoever finds room first gets
//! it: a client flooding one channel keeps refilling the queue the moment the broker takes an
//! event, and a quiet client's PING waits behind the flood, on a one-thread node for as long as
//! the flood lasts. IRC servers have always kept a receive queue per client and served clients
//! in turns; so does this module.
//!
//! - Each connection pushes its events into its own [`RecvQueue`], bounded in events. When it is
//!   full the connection stops reading its socket ([`RecvQueue::poll_ready`]), and TCP pushes
//!   back on that client alone.
//! - When a queue goes from empty to non-empty, the connection posts it (once) on the broker's
//!   [`Inbox`]. The broker serves the posted queues in turns, at most [`EVENTS_PER_TURN`] events
//!   from one client before it moves to the next, so a quiet client waits behind at most one
//!   turn of each busy client, however long their floods.
//! - Control events (shutdown, a connection that ended abnormally, results of offloaded work)
//!   go on the inbox directly.
//!
//! - A client held back by flood control ([`super::flood`]) has its queue *throttled*: it is
//!   then bounded in bytes (`--recvq`), not in events, so the connection keeps reading; a
//!   client whose unserved input passes that bound is cut (`Excess Flood`) by the queue itself,
//!   which tells the broker at once with a control event.
//!
//! The inbox channel is unbounded, but it holds at most one entry per connection (a queue is
//! posted only when it was not already waiting) plus a handful of control events (at most one
//! `Excess Flood` per connection).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::{ClientId, Event};

/// At most this many events of one client are handled before the broker serves the next.
pub const EVENTS_PER_TURN: usize = 16;

/// What the broker's inbox carries.
///
/// Two words: the control event is boxed. The hot item is `Ready`, one per client turn; an
/// unboxed `Event` made every item as large as the largest event, and async-channel's blocks
/// of 31 items grew past what the allocator keeps in its per-thread cache, so each block cost
/// a trip through `malloc_consolidate` (docs/executor.md, decision 17). A control event is
/// rare (a connect, a disconnect, an offloaded job's result): one allocation for it is cheap.
pub(crate) enum Inbound {
    /// This client's RecvQ has events (posted once, when it became non-empty).
    Ready(Arc<RecvShared>),
    /// An event that belongs to no connection's queue.
    Control(Box<Event>),
}

#[derive(Default)]
struct RecvState {
    events: VecDeque<Event>,
    /// Posted on the inbox (or being served) and not yet found empty by the broker.
    posted: bool,
    /// The connection, waiting for room.
    waker: Option<Waker>,
    /// The broker has forgotten this client: later events are dropped.
    closed: bool,
    /// Bytes of input the queued events stand for (see [`charge`]).
    bytes: usize,
    /// Flood control holds the client back: bounded in bytes, not events.
    throttled: bool,
    /// Cut for `Excess Flood`: later events are dropped, the broker has been told.
    cut: bool,
}

/// Bookkeeping bytes counted for each queued line on top of its text, so that a flood of tiny
/// lines is bounded in memory too (a parsed line costs about this much besides its text).
pub const LINE_OVERHEAD: usize = 64;

/// The bytes an event counts for against `--recvq`: a line's text and CRLF plus
/// [`LINE_OVERHEAD`]; an event that carries no input counts nothing.
fn charge(event: &Event) -> usize {
    match event {
        Event::Line { msg, .. } => {
            let text = msg.command.len()
                + msg.params.iter().map(|p| p.len() + 1).sum::<usize>()
                + msg.tags.as_ref().map_or(0, |t| t.len() + 2)
                + msg.source.as_ref().map_or(0, |s| s.len() + 2);
            LINE_OVERHEAD + text + 2
        }
        Event::LineTooLong { .. } => LINE_OVERHEAD,
        _ => 0,
    }
}

/// The state one connection and the broker share.
pub(crate) struct RecvShared {
    /// The client whose events these are.
    id: ClientId,
    capacity: usize,
    /// Bytes a throttled queue may hold before the client is cut (`--recvq`).
    recvq_bytes: usize,
    state: Mutex<RecvState>,
}

impl RecvShared {
    fn lock(&self) -> MutexGuard<'_, RecvState> {
        // The state stays consistent even if a holder panicked: carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client whose queue this is.
    pub(crate) fn id(&self) -> ClientId {
        self.id
    }

    /// Whether events are waiting.
    pub(crate) fn has_events(&self) -> bool {
        !self.lock().events.is_empty()
    }

    /// Puts events taken but not handled back at the front, in their order: the client was
    /// parked mid-turn. The queue counts as posted again (the broker holds it), so the
    /// connection does not post it twice. May take the queue past its capacity by at most one
    /// turn; the connection is not woken for room until the broker takes them again.
    pub(crate) fn put_back(&self, events: impl DoubleEndedIterator<Item = Event>) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        for event in events.rev() {
            state.bytes += charge(&event);
            state.events.push_front(event);
        }
        if !state.events.is_empty() {
            state.posted = true;
        }
    }

    /// Moves up to `max` events into `out`. Returns whether events remain (then the queue stays
    /// posted and the broker must serve it again).
    pub(crate) fn take(&self, out: &mut Vec<Event>, max: usize) -> bool {
        let (more, waker) = {
            let mut state = self.lock();
            let was_full = state.events.len() >= self.capacity;
            let n = max.min(state.events.len());
            let start = out.len();
            out.extend(state.events.drain(..n));
            let taken: usize = out[start..].iter().map(charge).sum();
            state.bytes = state.bytes.saturating_sub(taken);
            let more = !state.events.is_empty();
            if !more {
                state.posted = false;
                if state.events.capacity() > self.capacity {
                    state.events = VecDeque::new(); // a burst is over: give its memory back
                }
            }
            (more, if was_full { state.waker.take() } else { None })
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        more
    }

    /// Flood control holds the client back (`true`) or lets it go on (`false`). Throttled, the
    /// queue is bounded by `--recvq` bytes rather than by events, so the connection is woken to
    /// read on: either the client slows down or its input passes the bound and it is cut.
    pub(crate) fn set_throttled(&self, throttled: bool) {
        let waker = {
            let mut state = self.lock();
            state.throttled = throttled;
            if throttled {
                state.waker.take()
            } else {
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Bytes of input queued (for tests and STATS).
    pub(crate) fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The broker forgot this client: drop what is queued and whatever comes later, and let
    /// the connection go on (its reads are then simply discarded until it closes).
    pub(crate) fn close(&self) {
        let waker = {
            let mut state = self.lock();
            state.closed = true;
            state.events = VecDeque::new();
            state.bytes = 0;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The sending side of the broker's inbox. Cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    tx: async_channel::Sender<Inbound>,
}

/// The receiving side, owned by the broker.
pub struct InboxReceiver {
    pub(crate) rx: async_channel::Receiver<Inbound>,
}

/// A weak [`Inbox`] that does not keep the broker's inbox open.
#[derive(Clone)]
pub struct WeakInbox {
    tx: async_channel::WeakSender<Inbound>,
}

/// Creates the broker's inbox.
pub fn open() -> (Inbox, InboxReceiver) {
    // Unbounded by type, bounded by construction: see the module docs.
    let (tx, rx) = async_channel::unbounded();
    (Inbox { tx }, InboxReceiver { rx })
}

/// Why an event could not be handed over.
#[derive(Debug)]
pub enum HandOffError {
    /// The queue holds its capacity; the event is handed back. Wait with
    /// [`RecvQueue::poll_ready`], then push it again.
    Full(Box<Event>),
    /// The broker is gone (shutting down).
    Gone,
}

impl Inbox {
    /// A new RecvQ for client `id`, holding at most `capacity` events, or while flood control
    /// throttles the client, at most `recvq_bytes` bytes of input (then the client is cut).
    pub fn recv_queue(&self, id: ClientId, capacity: usize, recvq_bytes: usize) -> RecvQueue {
        RecvQueue {
            shared: Arc::new(RecvShared {
                id,
                capacity: capacity.max(1),
                recvq_bytes,
                state: Mutex::new(RecvState::default()),
            }),
            inbox: self.clone(),
        }
    }

    /// Sends a control event (one that belongs to no connection's queue).
    pub async fn send(&self, event: Event) -> bool {
        self.tx
            .send(Inbound::Control(Box::new(event)))
            .await
            .is_ok()
    }

    /// Sends a control event from a thread that may block (the blocking pool).
    pub fn send_blocking(&self, event: Event) -> bool {
        self.tx
            .send_blocking(Inbound::Control(Box::new(event)))
            .is_ok()
    }

    /// A weak handle, for whoever must not keep the inbox open (the broker's own hooks).
    pub fn downgrade(&self) -> WeakInbox {
        WeakInbox {
            tx: self.tx.downgrade(),
        }
    }
}

impl WeakInbox {
    /// The inbox, if the broker still listens.
    pub fn upgrade(&self) -> Option<Inbox> {
        self.tx.upgrade().map(|tx| Inbox { tx })
    }
}

/// One connection's queue of events for the broker: its RecvQ.
///
/// ```
/// use chatnode::broker::{inbox, Event};
/// let (inbox, _receiver) = inbox::open();
/// let queue = inbox.recv_queue(7, 1, 8192);
/// assert!(queue.try_push(Event::Idle { id: 7 }).is_ok());
/// assert!(queue.try_push(Event::Idle { id: 7 }).is_err()); // full: one event
/// queue.push_final(Event::Disconnected { id: 7, reason: "bye".into() }); // always fits
/// ```
pub struct RecvQueue {
    shared: Arc<RecvShared>,
    inbox: Inbox,
}

impl RecvQueue {
    /// Queues `event` if there is room; posts the queue to the broker if it was idle.
    pub fn try_push(&self, event: Event) -> Result<(), HandOffError> {
        self.push(event, true)
    }

    /// Queues `event` whatever the capacity: for the last event of a connection
    /// ([`Event::Disconnected`]), which must never be lost.
    pub fn push_final(&self, event: Event) {
        let _ = self.push(event, false);
    }

    fn push(&self, event: Event, bounded: bool) -> Result<(), HandOffError> {
        let charge = charge(&event);
        let post = {
            let mut state = self.shared.lock();
            if state.closed || state.cut {
                return Ok(()); // the broker forgot us (or will): nothing to tell it any more
            }
            if bounded && state.throttled {
                if state.bytes + charge > self.shared.recvq_bytes {
                    return self.cut(&mut state);
                }
            } else if bounded && state.events.len() >= self.shared.capacity {
                return Err(HandOffError::Full(Box::new(event)));
            }
            state.bytes += charge;
            state.events.push_back(event);
            !std::mem::replace(&mut state.posted, true)
        };
        if post
            && self
                .inbox
                .tx
                .try_send(Inbound::Ready(self.shared.clone()))
                .is_err()
        {
            return Err(HandOffError::Gone);
        }
        Ok(())
    }

    /// The client's unserved input passed `--recvq` while it was throttled: forget its queued
    /// events and tell the broker at once, on the inbox (its queue is parked, so an event in it
    /// would wait). Later events are dropped; the connection reads on and discards until the
    /// broker closes it.
    fn cut(&self, state: &mut RecvState) -> Result<(), HandOffError> {
        state.cut = true;
        state.events = VecDeque::new();
        state.bytes = 0;
        let id = self.shared.id;
        let reason = "Excess Flood".to_string();
        match self
            .inbox
            .tx
            .try_send(Inbound::Control(Box::new(Event::Disconnected {
                id,
                reason,
            }))) {
            Ok(()) => Ok(()),
            Err(_) => Err(HandOffError::Gone),
        }
    }

    /// `Ready` when the queue has room for an event; otherwise registers the waker, which the
    /// broker wakes when it takes events (or throttles the client).
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock();
        let open = state.closed || state.cut || state.throttled;
        if open || state.events.len() < self.shared.capacity {
            return Poll::Ready(());
        }
        match &mut state.waker {
            Some(w) => w.clone_from(cx.waker()),
            None => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_queue_is_posted_once_until_drained() {
        let (inbox, receiver) = open();
        let q = inbox.recv_queue(1, 8, 1 << 20);
        q.try_push(Event::Idle { id: 1 }).unwrap();
        q.try_push(Event::Idle { id: 1 }).unwrap();
        assert_eq!(receiver.rx.len(), 1, "posted once");
        let Ok(Inbound::Ready(shared)) = receiver.rx.try_recv() else {
            panic!()
        };
        let mut out = Vec::new();
        assert!(shared.take(&mut out, 1), "one left");
        assert!(!shared.take(&mut out, 8), "drained");
        assert_eq!(out.len(), 2);
        q.try_push(Event::Idle { id: 1 }).unwrap();
        assert_eq!(receiver.rx.len(), 1, "posted again once drained");
    }

    #[test]
    fn full_queue_wakes_the_connection_when_the_broker_takes() {
        let (inbox, receiver) = open();
        let q = inbox.recv_queue(1, 1, 1 << 20);
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(Arc::clone(&wakes));
        assert!(
            q.poll_ready(&mut Context::from_waker(&waker)).is_ready(),
            "room"
        );
        q.try_push(Event::Idle { id: 1 }).unwrap();
        assert!(matches!(
            q.try_push(Event::Idle { id: 1 }),
            Err(HandOffError::Full(_))
        ));
        assert!(q.poll_ready(&mut Context::from_waker(&waker)).is_pending());
        let Ok(Inbound::Ready(shared)) = receiver.rx.try_recv() else {
            panic!()
        };
        shared.take(&mut Vec::new(), 16);
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "woken once: there is room"
        );
        assert!(q.poll_ready(&mut Context::from_waker(&waker)).is_ready());
    }

    /// A waker that counts its wake-ups.
    struct CountWakes(AtomicUsize);

    impl std::task::Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn line(id: ClientId, text: &str) -> Event {
        let msg = crate::proto::Message::parse(text.as_bytes()).unwrap();
        Event::Line { id, msg }
    }

    #[test]
    fn a_throttled_queue_is_bounded_in_bytes_and_cuts_past_them() {
        let (inbox, receiver) = open();
        let per_line = charge(&line(1, "PRIVMSG #a :x"));
        assert!(per_line > LINE_OVERHEAD + 12);
        // Exactly full is not over: the fourth line fills the bound and stays.
        let limit = 4 * per_line;
        let q = inbox.recv_queue(1, 2, limit);
        q.try_push(line(1, "PRIVMSG #a :x")).unwrap();
        q.try_push(line(1, "PRIVMSG #a :x")).unwrap();
        assert!(matches!(
            q.try_push(line(1, "PRIVMSG #a :x")),
            Err(HandOffError::Full(_))
        ));
        let Ok(Inbound::Ready(shared)) = receiver.rx.try_recv() else {
            panic!()
        };
        shared.set_throttled(true);
        // Throttled, the connection reads on (its input is bounded in bytes now).
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(q.poll_ready(&mut cx).is_ready());
        // Past the event bound now, up to the byte bound.
        q.try_push(line(1, "PRIVMSG #a :x")).unwrap();
        q.try_push(line(1, "PRIVMSG #a :x")).unwrap();
        assert_eq!(shared.queued_bytes(), 4 * per_line);
        assert!(receiver.rx.is_empty());
        q.try_push(line(1, "PRIVMSG #a :x")).unwrap(); // one too many: cut
        match receiver.rx.try_recv() {
            Ok(Inbound::Control(event)) => match *event {
                Event::Disconnected { id: 1, reason } => assert_eq!(reason, "Excess Flood"),
                _ => panic!("expected the cut on the inbox"),
            },
            _ => panic!("expected the cut on the inbox"),
        }
        q.try_push(line(1, "PRIVMSG #a :x")).unwrap(); // swallowed
        assert!(receiver.rx.is_empty(), "told once");
        let mut out = Vec::new();
        assert!(!shared.take(&mut out, 16));
        assert!(out.is_empty());
    }

    #[test]
    fn a_queue_gives_a_bursts_memory_back_once_drained() {
        let (inbox, receiver) = open();
        let q = inbox.recv_queue(1, 2, 1 << 20);
        q.try_push(line(1, "PRIVMSG #a :x")).unwrap();
        let Ok(Inbound::Ready(shared)) = receiver.rx.try_recv() else {
            panic!()
        };
        // Throttled, the queue takes lines past its 2 events (up to the byte bound).
        shared.set_throttled(true);
        for _ in 0..40 {
            q.try_push(line(1, "PRIVMSG #a :x")).unwrap();
        }
        assert!(shared.lock().events.capacity() > 2);
        let mut out = Vec::new();
        assert!(shared.take(&mut out, 16), "more to come");
        assert!(!shared.take(&mut out, 64));
        assert_eq!(out.len(), 41);
        assert_eq!(
            shared.lock().events.capacity(),
            0,
            "the burst's memory is given back"
        );
    }

    #[test]
    fn a_closed_queue_swallows_events() {
        let (inbox, receiver) = open();
        let q = inbox.recv_queue(1, 1, 1 << 20);
        q.try_push(Event::Idle { id: 1 }).unwrap();
        let Ok(Inbound::Ready(shared)) = receiver.rx.try_recv() else {
            panic!()
        };
        shared.close();
        assert!(q.try_push(Event::Idle { id: 1 }).is_ok());
        assert!(q.try_push(Event::Idle { id: 1 }).is_ok());
        let mut out = Vec::new();
        assert!(!shared.take(&mut out, 16));
        assert!(out.is_empty());
    }

    #[test]
    fn a_weak_inbox_reaches_the_broker_while_it_listens_and_never_keeps_it_open() {
        let (inbox, receiver) = open();
        let weak = inbox.downgrade();
        // What an offloaded job does with its result (server::hooks): upgrade, then send.
        let upgraded = weak.upgrade().expect("the broker listens");
        assert!(upgraded.send_blocking(Event::Idle { id: 3 }));
        assert!(matches!(
            receiver.rx.try_recv(),
            Ok(Inbound::Control(event)) if matches!(*event, Event::Idle { id: 3 })
        ));
        drop(upgraded);
        drop(inbox);
        assert!(weak.upgrade().is_none(), "only weak handles are left");
        assert!(receiver.rx.is_closed(), "so the broker's inbox closes");
    }

    #[test]
    fn a_line_is_charged_its_bytes_as_received_plus_crlf_and_the_overhead() {
        // Without a trailing ':' the parser's view is the wire, byte for byte.
        for text in [
            "PING x",
            "PRIVMSG #a hello",
            ":nick!user@host PRIVMSG #chan word",
            "@label=abc;+draft/react=x PRIVMSG #a yo",
            "@a=b :src NOTICE bob,carol one two three",
        ] {
            let want = LINE_OVERHEAD + text.len() + 2;
            assert_eq!(charge(&line(1, text)), want, "{text}");
        }
        assert_eq!(charge(&Event::LineTooLong { id: 1 }), LINE_OVERHEAD);
        assert_eq!(charge(&Event::Idle { id: 1 }), 0);
    }

    /// The inbox's items stay two words, so async-channel's blocks stay small (see
    /// [`Inbound`]): an `Event` variant put back unboxed would fail here.
    #[test]
    fn an_inbox_item_is_two_words() {
        assert_eq!(
            std::mem::size_of::<Inbound>(),
            2 * std::mem::size_of::<usize>()
        );
    }
}
