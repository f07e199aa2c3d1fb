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
    /// The waker the entry holds: a poll with the same waker (the usual case: the task polls
    /// its timer every time it runs) leaves the entry alone and takes no lock.
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
        // Not due, so the entry (if any) has not fired: a timer fires only once its deadline has
        // passed, and `Instant` never goes back.
        match (this.id, &this.waker) {
            (Some(_), Some(w)) if w.will_wake(cx.waker()) => {}
            (Some(id), _) if this.reactor.update_timer(this.deadline, id, cx.waker()) => {
                this.waker = Some(cx.waker().clone());
            }
            _ => {
                this.id = Some(this.reactor.insert_timer(this.deadline, cx.waker().clone()));
                this.waker = Some(cx.waker().clone());
            }
        }
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
