//! Named tasks: the wrapper every spawn goes through, on either runtime.
//!
//! [`instrument`] wraps a future so that, while it is being polled, the thread knows the task's
//! name ([`with_current_name`], which the log format prints on every line), and so that a panic inside
//! one poll ends only that task: it is caught, logged with the task's name, and the task finishes
//! with `None`. The rest of the node keeps running.
//!
//! It also counts each poll in [`stats`] (polls, busy time, slow polls) for `STATS t` and the
//! watchdog.
//!
//! The wrapper is runtime-agnostic: the smol executor and the Tokio build both spawn
//! `instrument(name, fut)`, so a task looks and fails the same way on both.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::stats;

/// A task's name, cheap to clone: `"broker"`, `"conn#7 127.0.0.1:50312"`, `"accept 127.0.0.1:6667"`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TaskName(Arc<str>);

impl TaskName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for TaskName {
    fn from(s: &str) -> Self {
        TaskName(Arc::from(s))
    }
}

impl From<String> for TaskName {
    fn from(s: String) -> Self {
        TaskName(Arc::from(s))
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

thread_local! {
    /// The task being polled on this thread, if any.
    static CURRENT: RefCell<Option<TaskName>> = const { RefCell::new(None) };
}

/// Calls `f` with the name of the task this thread is polling right now (`None` outside tasks).
///
/// ```
/// assert!(chatnode::rt::task::with_current_name(|n| n.is_none()));
/// ```
pub fn with_current_name<R>(f: impl FnOnce(Option<&TaskName>) -> R) -> R {
    CURRENT.with(|c| f(c.borrow().as_ref()))
}

/// Ends a poll, also one that ends by unwinding: restores the previous task name and counts
/// the poll in its kind's figures.
struct PollGuard<'a> {
    previous: Option<TaskName>,
    started: Option<std::time::Instant>,
    name: &'a TaskName,
    stats: &'a Arc<stats::KindStats>,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        stats::poll_end(self.stats, self.name, self.started);
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Wraps `fut` as the task `name`: names its polls and contains its panics.
///
/// The returned future yields `Some(output)`, or `None` if a poll panicked; the panic is logged
/// at error level with the task's name and is not propagated.
///
/// ```
/// use chatnode::rt::task::{instrument, with_current_name};
/// let out = futures_lite::future::block_on(instrument("demo".into(), async {
///     with_current_name(|n| n.unwrap().to_string())
/// }));
/// assert_eq!(out.as_deref(), Some("demo"));
///
/// let failed = futures_lite::future::block_on(instrument("boom".into(), async {
///     if true { panic!("deliberate") }
/// }));
/// assert_eq!(failed, None);
/// ```
pub fn instrument<F: Future>(name: TaskName, fut: F) -> Instrumented<F> {
    let alive = stats::kind_stats(stats::kind_of(name.as_str())).spawned();
    Instrumented {
        fut,
        name,
        done: false,
        alive,
    }
}

pin_project_lite::pin_project! {
    /// A future wrapped by [`instrument`].
    ///
    /// A plain struct rather than an `async fn`: an `async fn` taking the future by value would
    /// store it twice (as its argument and as its pinned local), and every connection pays
    /// for the size of its task.
    pub struct Instrumented<F> {
        #[pin]
        fut: F,
        name: TaskName,
        done: bool,
        // Counts the task in its kind's figures while it exists.
        alive: stats::AliveGuard,
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if *this.done {
            // Polled again after a panic: stay finished rather than touch a broken future.
            return Poll::Ready(None);
        }
        let _guard = PollGuard {
            previous: CURRENT.with(|c| c.replace(Some(this.name.clone()))),
            started: stats::poll_begin(this.name),
            name: this.name,
            stats: this.alive.stats(),
        };
        let fut = this.fut;
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Some(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                *this.done = true;
                _guard.stats.panicked();
                let msg = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(non-string panic payload)");
                log::error!("task {} panicked and was ended: {msg}", this.name);
                Poll::Ready(None)
            }
        }
    }
}
