//! The reactor: one epoll instance, the sockets registered in it, and the timers.
//!
//! **No reactor thread.** There is no thread of its own here. An executor thread that has run out
//! of tasks takes the reactor's wait lock ([`Reactor::try_wait_lock`]) and blocks in
//! `epoll_wait` itself; the other idle threads park. Readiness found by that wait wakes the tasks
//! directly, on the thread that found it, so with `--threads 1` a message costs no thread hand-off
//! at all. (async-io's reactor is driven by whichever `block_on` holds its lock too, but it keeps a
//! helper thread, `async-io`, that takes over when none does, and hands readiness over with futex
//! wake-ups.)
//!
//! **Registered once, edge-triggered.** A socket is added to epoll once, for reading and writing,
//! in edge-triggered mode (`EPOLLET`, with `EPOLLRDHUP` so a peer's FIN is seen as such), and
//! removed when its owner drops it. The
//! kernel reports each *change* (new data arrived, buffer space freed) and the reactor records it
//! in the socket's [`Source`]: a `ready` flag per direction, plus a tick that counts events. No
//! `epoll_ctl` per event (async-io registers one-shot and re-arms after every event: 1.39
//! `epoll_ctl` per message in issue 10's measurement).
//!
//! **The edge-triggered trap, and the tick.** With edge triggering the kernel will not say again
//! that a socket is readable: the reader must remember it, and forget it only when the socket is
//! really empty. A reader forgets readiness after a read that returned `EAGAIN`, or less than it
//! asked for (the socket was emptied). Data may arrive between that read and the moment the flag
//! is cleared; its event then bumps the tick, and [`Source::clear`] clears only if the tick is
//! still the one seen before the read. A late event is never lost: either it is already counted
//! (and the flag stays set), or it is still queued in the kernel and the next wait delivers it.
//!
//! **Waking the waiter.** A thread blocked in `epoll_wait` is woken through an `eventfd`
//! registered edge-triggered: a write makes it readable, the wait returns, and the counter is
//! never read back (a new write is a new edge). Only a thread whose own waker fires while it
//! waits, or a timer earlier than the wait's deadline, writes to it.
//!
//! **Timers without a timerfd.** Timers are a `BTreeMap` ordered by deadline; the wait's timeout is
//! the earliest deadline, rounded up to the millisecond (epoll's resolution), so a timer never
//! fires early. No `timerfd_settime` per wait (polling 3.11 sets one before every wait, and
//! re-arms its timerfd and notifier with two `epoll_ctl`; that is why the wait here calls
//! `epoll_wait` on the poller's descriptor directly rather than `Poller::wait`).

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rustix::event::{epoll, eventfd, EventfdFlags};

use super::lock;

/// The epoll key of the notifier (polling reserves `usize::MAX`); sockets use their slot index.
const NOTIFY_KEY: usize = usize::MAX - 1;

/// Events taken from the kernel per `epoll_wait`. More stay queued for the next wait.
const EVENTS_PER_WAIT: usize = 256;

/// Reading or writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The socket has data (or EOF, or an error) to read.
    Read,
    /// The socket has room to write (or an error).
    Write,
}

/// What the reactor knows about one direction of one socket.
#[derive(Default)]
struct Readiness {
    /// The kernel said ready, and no read or write has found it empty (full) since.
    ready: bool,
    /// Events seen for this direction; see [`Source::clear`].
    tick: u64,
    /// The peer closed this direction (`EPOLLRDHUP`, `EPOLLHUP`) or the socket failed: it stays
    /// ready for good. Without this, a short read that took the last bytes before a FIN would
    /// forget readiness, and the EOF behind them would never be read: the FIN arrived with the
    /// same edge as the data.
    closed: bool,
    /// The task waiting for this direction.
    waker: Option<Waker>,
}

/// One registered socket's readiness, shared by the reactor and the socket's owner.
pub struct Source {
    slot: usize,
    state: Mutex<[Readiness; 2]>,
}

impl Source {
    fn lock(&self) -> MutexGuard<'_, [Readiness; 2]> {
        lock(&self.state)
    }

    /// `Ready(tick)` if `dir` is ready; otherwise stores the waker and returns `Pending`.
    pub fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<u64> {
        let mut state = self.lock();
        let d = &mut state[dir as usize];
        if d.ready {
            return Poll::Ready(d.tick);
        }
        match &mut d.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The socket was found empty (or full) by an operation that started when the tick was
    /// `tick`: forget readiness, unless an event arrived since, in which case the next operation
    /// must try again.
    pub fn clear(&self, dir: Direction, tick: u64) {
        let mut state = self.lock();
        let d = &mut state[dir as usize];
        if d.tick == tick && !d.closed {
            d.ready = false;
        }
    }

    /// Records an event; returns the wakers to wake once every lock is released.
    fn mark(&self, flags: epoll::EventFlags, wake: &mut Vec<Waker>) {
        use epoll::EventFlags as F;
        let failed = flags.intersects(F::HUP | F::ERR);
        let read = flags.intersects(F::IN | F::PRI | F::RDHUP) || failed;
        let write = flags.intersects(F::OUT) || failed;
        let mut state = self.lock();
        for (dir, hit) in [(Direction::Read, read), (Direction::Write, write)] {
            if hit {
                let d = &mut state[dir as usize];
                d.ready = true;
                d.closed |= failed || (dir == Direction::Read && flags.contains(F::RDHUP));
                d.tick = d.tick.wrapping_add(1);
                wake.extend(d.waker.take());
            }
        }
    }
}

/// The sockets by slot, with a free list. A stale event for a freed (or reused) slot only makes
/// a socket look ready once, which costs one `EAGAIN`.
#[derive(Default)]
struct Slots {
    sources: Vec<Option<Arc<Source>>>,
    free: Vec<usize>,
}

/// A pending timer: the task to wake, and the flag its [`super::timer::Sleep`] reads to learn
/// that it fired without reading the clock.
struct TimerEntry {
    waker: Waker,
    fired: Arc<AtomicBool>,
}

/// Timers by deadline; the `u64` makes keys unique.
#[derive(Default)]
struct Timers {
    by_deadline: BTreeMap<(Instant, u64), TimerEntry>,
    next_id: u64,
    /// While a thread waits: the deadline it waits until (`None`: no timer). An earlier timer
    /// must interrupt that wait.
    waiting_until: Option<Option<Instant>>,
}

/// Counts of what the reactor did, for `STATS e`.
#[derive(Default)]
struct Counters {
    waits: AtomicU64,
    events: AtomicU64,
    notifies: AtomicU64,
}

/// The reactor: see the module documentation.
pub struct Reactor {
    poller: polling::Poller,
    /// Edge-triggered eventfd that interrupts a wait.
    notifier: OwnedFd,
    /// Set when the notifier was written and the waiter has not returned yet: later notifies
    /// are free.
    notify_pending: AtomicBool,
    slots: Mutex<Slots>,
    timers: Mutex<Timers>,
    /// Held by the one thread that waits in `epoll_wait`; holds the event buffer.
    wait: Mutex<WaitState>,
    counters: Counters,
}

/// The waiting thread's buffers, reused from wait to wait.
pub struct WaitState {
    events: EventBuffer,
    wake: Vec<Waker>,
}

/// Events as `epoll_wait` writes them.
struct EventBuffer(Vec<epoll::Event>);

// SAFETY: rustix's `epoll::Event` is not `Send` only because its data field *may* hold a raw
// pointer. Ours only ever holds the integer keys this module registers (slot indexes and
// NOTIFY_KEY), never a pointer, so moving the buffer to another thread shares nothing.
unsafe impl Send for EventBuffer {}

impl Reactor {
    /// A reactor with its epoll instance and notifier.
    pub fn new() -> io::Result<Reactor> {
        let poller = polling::Poller::new()?;
        let notifier = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        // SAFETY: the notifier is owned by the reactor and outlives its registration (the
        // poller, dropped with the reactor, is dropped first: field order).
        unsafe {
            poller.add_with_mode(
                notifier.as_raw_fd(),
                polling::Event::readable(NOTIFY_KEY),
                polling::PollMode::Edge,
            )?;
        }
        Ok(Reactor {
            poller,
            notifier,
            notify_pending: AtomicBool::new(false),
            slots: Mutex::default(),
            timers: Mutex::default(),
            wait: Mutex::new(WaitState {
                events: EventBuffer(Vec::with_capacity(EVENTS_PER_WAIT)),
                wake: Vec::new(),
            }),
            counters: Counters::default(),
        })
    }

    /// Registers `fd` for both directions, edge-triggered. The caller must call
    /// [`Reactor::deregister`] before closing `fd`.
    pub fn register(&self, fd: BorrowedFd<'_>) -> io::Result<Arc<Source>> {
        let source = {
            let mut slots = lock(&self.slots);
            let slot = slots.free.pop().unwrap_or_else(|| {
                slots.sources.push(None);
                slots.sources.len() - 1
            });
            // Optimistic: a fresh socket is tried at once; the first EAGAIN clears the flag.
            let ready = || Readiness {
                ready: true,
                ..Readiness::default()
            };
            let source = Arc::new(Source {
                slot,
                state: Mutex::new([ready(), ready()]),
            });
            slots.sources[slot] = Some(source.clone());
            source
        };
        // Through rustix on the poller's epoll descriptor rather than `Poller::add_with_mode`:
        // polling's interest has no EPOLLRDHUP, and without it a FIN that arrives with the last
        // data cannot be told from data (see `Readiness::closed`). The owner deregisters before
        // closing `fd` (`net::Registered` does so in `Drop`), as epoll requires.
        use epoll::EventFlags as F;
        let interest = F::IN | F::OUT | F::RDHUP | F::PRI | F::ET;
        let data = epoll::EventData::new_u64(source.slot as u64);
        if let Err(e) = epoll::add(self.poller.as_fd(), fd, data, interest) {
            self.free_slot(&source);
            return Err(e.into());
        }
        Ok(source)
    }

    /// Removes `fd` from epoll and forgets its source. Events already taken from the kernel
    /// for it find no source (or a newer one) and are harmless.
    pub fn deregister(&self, source: &Source, fd: BorrowedFd<'_>) {
        let _ = self.poller.delete(fd);
        self.free_slot(source);
    }

    fn free_slot(&self, source: &Source) {
        let mut slots = lock(&self.slots);
        slots.sources[source.slot] = None;
        slots.free.push(source.slot);
    }

    /// Interrupts the thread waiting in `epoll_wait`, if any.
    pub fn notify(&self) {
        if self.notify_pending.swap(true, Ordering::AcqRel) {
            return; // already interrupted, not yet returned
        }
        self.counters.notifies.fetch_add(1, Ordering::Relaxed);
        if rustix::io::write(&self.notifier, &1u64.to_ne_bytes()).is_err() {
            // EAGAIN: the counter is near overflow (after 2^64 writes). Reset it and write again.
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(&self.notifier, &mut buf);
            let _ = rustix::io::write(&self.notifier, &1u64.to_ne_bytes());
        }
    }

    /// The wait lock, if no other thread holds it.
    pub fn try_wait_lock(&self) -> Option<MutexGuard<'_, WaitState>> {
        match self.wait.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Waits for events (with the wait lock held), then wakes the tasks they concern and the
    /// timers that are due. `block: false` only collects what is already there.
    ///
    /// `waiting` is set for exactly the time of the `epoll_wait` call, so a waker that fires
    /// meanwhile knows to [`Reactor::notify`]; if `interrupted()` is already true when the wait
    /// would begin, it does not block. `on_return` runs once the wait has returned, before any
    /// task is woken.
    pub fn wait(
        &self,
        state: &mut WaitState,
        block: bool,
        waiting: &AtomicBool,
        interrupted: impl Fn() -> bool,
        on_return: impl FnOnce(),
    ) -> io::Result<()> {
        let timeout = if block {
            let until = {
                let mut timers = lock(&self.timers);
                let until = timers.by_deadline.keys().next().map(|k| k.0);
                timers.waiting_until = Some(until);
                until
            };
            until.map(|d| d.saturating_duration_since(Instant::now()))
        } else {
            Some(Duration::ZERO)
        };
        // Only a blocking wait needs interrupting; a waker that fires during a non-blocking
        // one finds its thread about to look at its tasks anyway.
        waiting.store(block, Ordering::SeqCst);
        let timeout = if block && interrupted() {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let result = self.epoll_wait(&mut state.events.0, timeout);
        waiting.store(false, Ordering::SeqCst);
        if block {
            lock(&self.timers).waiting_until = None;
        }
        self.notify_pending.store(false, Ordering::Release);
        on_return();
        result?;
        self.dispatch(state);
        self.fire_timers(&mut state.wake);
        for waker in state.wake.drain(..) {
            waker.wake();
        }
        Ok(())
    }

    fn epoll_wait(
        &self,
        events: &mut Vec<epoll::Event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        events.clear();
        // Whole milliseconds, rounded up: epoll's resolution, and a timer must not fire early.
        let timeout = timeout.map(|t| {
            let ms = t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i64;
            rustix::event::Timespec {
                tv_sec: ms / 1000,
                tv_nsec: (ms % 1000) * 1_000_000,
            }
        });
        if timeout
            .as_ref()
            .is_some_and(|t| t.tv_sec != 0 || t.tv_nsec != 0)
            || timeout.is_none()
        {
            self.counters.waits.fetch_add(1, Ordering::Relaxed);
        }
        let fd = self.poller.as_fd();
        let r = epoll::wait(fd, rustix::buffer::spare_capacity(events), timeout.as_ref());
        match r {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Marks the sources of the events just collected; their wakers go to `state.wake`.
    fn dispatch(&self, state: &mut WaitState) {
        let events = &state.events.0;
        if events.is_empty() {
            return;
        }
        self.counters
            .events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        let slots = lock(&self.slots);
        for event in events.iter() {
            let key = event.data.u64() as usize;
            if key == NOTIFY_KEY {
                continue; // its job was to end the wait
            }
            let Some(Some(source)) = slots.sources.get(key) else {
                continue; // deregistered meanwhile
            };
            source.mark(event.flags, &mut state.wake);
        }
    }

    /// Takes the wakers of every timer that is due.
    fn fire_timers(&self, wake: &mut Vec<Waker>) {
        let mut timers = lock(&self.timers);
        if timers.by_deadline.is_empty() {
            return;
        }
        let now = Instant::now();
        while let Some(entry) = timers.by_deadline.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let entry = entry.remove();
            // Release: the task that sees the flag sees a deadline that has passed.
            entry.fired.store(true, Ordering::Release);
            wake.push(entry.waker);
        }
    }

    /// Adds a timer; returns its id for [`Reactor::update_timer`] and [`Reactor::remove_timer`].
    /// When it fires, `fired` is set before `waker` is woken.
    pub fn insert_timer(&self, deadline: Instant, waker: Waker, fired: Arc<AtomicBool>) -> u64 {
        let mut timers = lock(&self.timers);
        let id = timers.next_id;
        timers.next_id += 1;
        timers
            .by_deadline
            .insert((deadline, id), TimerEntry { waker, fired });
        if let Some(until) = timers.waiting_until {
            if until.is_none_or(|until| deadline < until) {
                // A thread waits past this deadline: make it look again.
                timers.waiting_until = Some(Some(deadline));
                drop(timers);
                self.notify();
            }
        }
        id
    }

    /// Replaces a pending timer's waker (the task moved, or was re-polled with a new waker).
    /// `false` if the timer has already fired.
    pub fn update_timer(&self, deadline: Instant, id: u64, waker: &Waker) -> bool {
        match lock(&self.timers).by_deadline.get_mut(&(deadline, id)) {
            Some(entry) => {
                if !entry.waker.will_wake(waker) {
                    entry.waker = waker.clone();
                }
                true
            }
            None => false,
        }
    }

    /// Cancels a timer (a no-op if it has fired).
    pub fn remove_timer(&self, deadline: Instant, id: u64) {
        lock(&self.timers).by_deadline.remove(&(deadline, id));
    }

    /// Sockets registered and timers pending now: both drop back when their owners are dropped.
    pub fn registered(&self) -> (usize, usize) {
        let sockets = {
            let slots = lock(&self.slots);
            slots.sources.len() - slots.free.len()
        };
        (sockets, lock(&self.timers).by_deadline.len())
    }

    /// One line for `STATS e`.
    pub fn describe(&self) -> String {
        let c = &self.counters;
        let (sockets, timers) = self.registered();
        format!(
            "reactor: {sockets} socket(s) registered (edge-triggered), {timers} timer(s), {} \
             blocking wait(s), {} event(s), {} notify write(s)",
            c.waits.load(Ordering::Relaxed),
            c.events.load(Ordering::Relaxed),
            c.notifies.load(Ordering::Relaxed),
        )
    }
}
