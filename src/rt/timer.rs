//! Timers on our reactor: [`Sleep`] completes at a deadline.
//!
//! A timer costs no system call: it is an entry in the reactor's deadline map, and the thread
//! that waits in `epoll_wait` uses the earliest deadline as the wait's timeout (see
//! [`super::reactor`]). Only a timer earlier than a wait already in progress costs one write to
//! the reactor's notifier, to make that wait look again.
//!
//! Cancellation: dropping a [`Sleep`] removes its entry; nothing is left behind.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::reactor::Reactor;

/// Completes at `deadline`. Created by [`super::smol::SmolRuntime::sleep`].
pub struct Sleep {
    reactor: Arc<Reactor>,
    deadline: Instant,
    /// The entry in the reactor, once polled.
    id: Option<u64>,
    /// Set by the reactor when the entry fires. A connection polls its timers on every
    /// wake-up, so a registered timer answers from this flag, without reading the clock (the
    /// clock reads of our runtime were 1.2 % of the node's CPU in `perf` of fan-out to 1,000
    /// at one thread, the Tokio build's 0.7 %; Tokio's `Sleep` also answers from a flag).
    fired: Option<Arc<AtomicBool>>,
    /// The waker the entry holds. A poll with the same waker must not touch the reactor's
    /// shared timer map (and its lock, which the other executor threads contend for): in a
    /// `perf` profile of `loadgen fanout --clients 1000` at `--threads 2`, `update_timer` had
    /// the most samples of any function the Tokio build does not run (1.7 % of the node's CPU).
    waker: Option<Waker>,
}

impl Sleep {
    /// A timer for `deadline` on `reactor`; it registers when first polled.
    pub fn at(reactor: Arc<Reactor>, deadline: Instant) -> Sleep {
        Sleep {
            reactor,
            deadline,
            id: None,
            fired: None,
            waker: None,
        }
    }

    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Registered: done once the reactor has fired the entry. The entry leaves the reactor's
    /// map only when it fires (or when this `Sleep` removes it), and it fires only once its
    /// deadline has passed, so the flag (or a failed update) is the whole answer.
    fn poll_registered(&mut self, id: u64, waker: &Waker) -> Poll<()> {
        let fired = self
            .fired
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Acquire));
        if fired {
            self.id = None;
            return Poll::Ready(());
        }
        if self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return Poll::Pending;
        }
        if !self.reactor.update_timer(self.deadline, id, waker) {
            self.id = None; // fired between the flag's load and the update
            return Poll::Ready(());
        }
        self.waker = Some(waker.clone());
        Poll::Pending
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if let Some(id) = this.id {
            return this.poll_registered(id, cx.waker());
        }
        if this.fired.is_some() || Instant::now() >= this.deadline {
            return Poll::Ready(()); // fired before, or due at its first poll
        }
        let fired = Arc::new(AtomicBool::new(false));
        let id = this
            .reactor
            .insert_timer(this.deadline, cx.waker().clone(), fired.clone());
        this.id = Some(id);
        this.fired = Some(fired);
        this.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.reactor.remove_timer(self.deadline, id);
        }
    }
}
