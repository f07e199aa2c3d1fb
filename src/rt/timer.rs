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
    /// The waker the entry holds. A connection polls its timers on every wake-up, so a poll
    /// with the same waker must not touch the reactor's shared timer map (and its lock, which
    /// the other executor threads contend for): in a `perf` profile of `loadgen fanout
    /// --clients 1000` at `--threads 2`, `update_timer` had the most samples of any function
    /// the Tokio build does not run (1.7 % of the node's CPU).
    waker: Option<Waker>,
}

impl Sleep {
    /// A timer for `deadline` on `reactor`; it registers when first polled.
    pub fn at(reactor: Arc<Reactor>, deadline: Instant) -> Sleep {
        Sleep {
            reactor,
            deadline,
            id: None,
            waker: None,
        }
    }

    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if Instant::now() >= this.deadline {
            if let Some(id) = this.id.take() {
                this.reactor.remove_timer(this.deadline, id);
            }
            return Poll::Ready(());
        }
        // The entry is still pending: it is removed only when it fires, and then the
        // deadline has passed, which the check above sees.
        if this.id.is_some() && this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        match this.id {
            Some(id) if this.reactor.update_timer(this.deadline, id, cx.waker()) => {}
            _ => {
                this.id = Some(this.reactor.insert_timer(this.deadline, cx.waker().clone()));
            }
        }
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
