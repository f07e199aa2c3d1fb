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
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::{lock, stats};

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
    /// The task being polled on this thread, if any. Its name is moved here from the task for
    /// the poll and moved back after it, so naming a poll costs no reference count.
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

/// The names of the live tasks, for the watchdog: a poll publishes only its task's id (one
/// relaxed store, see [`stats`]), and the watchdog looks the name up here in the rare case it
/// has something to say about a poll on another thread. Publishing the name itself on every
/// poll (a lock, and a reference count up and down) had cost about 40 ns per poll on our 2-core
/// VM, and a relayed message takes three polls. Filled only while figures are on
/// ([`stats::enabled`]).
///
/// A slab: an id is a slot's index and the slot's generation, so a slot freed and taken again
/// never answers for its previous task. Every operation is O(1); about 28 bytes per slot, and
/// the slab keeps as many slots as tasks were ever alive at once. (A `BTreeMap` did the same
/// in 6 KB more of the minimal binary, whose budget is 1 MB.)
static NAMES: Mutex<Names> = Mutex::new(Names {
    slots: Vec::new(),
    free: Vec::new(),
});

struct Names {
    /// Per slot: its generation (never 0 once used) and the name of the task holding it.
    slots: Vec<(u32, Option<TaskName>)>,
    /// Slots without a task.
    free: Vec<u32>,
}

impl Names {
    fn insert(&mut self, name: TaskName) -> u64 {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push((0, None));
            (self.slots.len() - 1) as u32
        });
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return 0; // not reached: the index was just taken from the slab
        };
        slot.0 = slot.0.wrapping_add(1).max(1);
        slot.1 = Some(name);
        (u64::from(slot.0) << 32) | u64::from(index)
    }

    fn slot(&mut self, id: u64) -> Option<&mut (u32, Option<TaskName>)> {
        let (generation, index) = ((id >> 32) as u32, id as u32);
        self.slots
            .get_mut(index as usize)
            .filter(|slot| slot.0 == generation && generation != 0)
    }

    fn remove(&mut self, id: u64) {
        if let Some(slot) = self.slot(id) {
            if slot.1.take().is_some() {
                self.free.push(id as u32);
            }
        }
    }
}

/// The name of the live task `id`, if it is registered.
pub(crate) fn name_of(id: u64) -> Option<TaskName> {
    lock(&NAMES).slot(id).and_then(|slot| slot.1.clone())
}

/// A task's entry in [`NAMES`] (id 0: none), removed when the task is dropped.
#[derive(Debug)]
struct Registered(u64);

impl Registered {
    fn new(name: &TaskName) -> Registered {
        if !stats::enabled() {
            return Registered(0);
        }
        Registered(lock(&NAMES).insert(name.clone()))
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if self.0 != 0 {
            lock(&NAMES).remove(self.0);
        }
    }
}

/// One poll of a task, also one that ends by unwinding: the task's name is in [`CURRENT`] until
/// it ends; then the poll is counted in its kind's figures and the name goes back to the task.
struct PollGuard<'a> {
    /// The task's name field: empty during the poll.
    name: &'a mut Option<TaskName>,
    /// What [`CURRENT`] held before (a task polling another inline).
    previous: Option<TaskName>,
    started: Option<stats::PollTime>,
    stats: &'a Arc<stats::KindStats>,
}

impl<'a> PollGuard<'a> {
    fn begin(
        name: &'a mut Option<TaskName>,
        id: u64,
        stats: &'a Arc<stats::KindStats>,
    ) -> PollGuard<'a> {
        let previous = CURRENT.with(|c| c.replace(name.take()));
        PollGuard {
            name,
            previous,
            started: stats::poll_begin(id),
            stats,
        }
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        let mine = CURRENT.with(|c| c.replace(self.previous.take()));
        // A slow-poll warning names the task in its text.
        if let Some(name) = &mine {
            stats::poll_end(self.stats, name, self.started);
        }
        *self.name = mine;
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
        registered: Registered::new(&name),
        name: Some(name),
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
        // Empty only during a poll, when it is in `CURRENT`.
        name: Option<TaskName>,
        registered: Registered,
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
        let guard = PollGuard::begin(this.name, this.registered.0, this.alive.stats());
        let fut = this.fut;
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Some(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                *this.done = true;
                report_panic(guard, payload.as_ref());
                Poll::Ready(None)
            }
        }
    }
}

/// Counts and logs a panic that ended a task's poll, once its poll has ended. Not generic, so
/// the code exists once rather than in every kind of task (about 1.5 KB of the board binary).
#[cold]
#[inline(never)]
fn report_panic(guard: PollGuard<'_>, payload: &(dyn std::any::Any + Send)) {
    guard.stats.panicked();
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)");
    let name = with_current_name(|name| name.map_or_else(|| "?".into(), TaskName::to_string));
    drop(guard); // the poll is over: counted, and the name back in the task
    log::error!("task {name} panicked and was ended: {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_named_for_the_watchdog_while_it_lives() {
        let task = instrument("name-test#1 peer".into(), std::future::pending::<()>());
        let id = task.registered.0;
        assert_ne!(id, 0, "figures are on by default");
        assert_eq!(
            name_of(id).map(|n| n.to_string()).as_deref(),
            Some("name-test#1 peer")
        );
        drop(task);
        assert!(name_of(id).is_none(), "a dropped task leaves no entry");
    }

    #[test]
    fn a_freed_slot_does_not_answer_for_its_previous_task() {
        let first = instrument("slot-test#1".into(), std::future::pending::<()>());
        let old = first.registered.0;
        drop(first);
        // Tests run in parallel, so the next task may or may not take the same slot; either
        // way the old id must not name it.
        let second = instrument("slot-test#2".into(), std::future::pending::<()>());
        assert_ne!(second.registered.0, old);
        assert!(name_of(old).is_none());
        assert_eq!(
            name_of(second.registered.0)
                .map(|n| n.to_string())
                .as_deref(),
            Some("slot-test#2")
        );
    }

    #[test]
    fn the_name_is_current_during_a_poll_and_back_in_the_task_after_it() {
        let mut task = Box::pin(instrument("name-test#2".into(), async {
            with_current_name(|n| n.map(TaskName::to_string))
        }));
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        let mut cx = Context::from_waker(&waker);
        let out = task.as_mut().poll(&mut cx);
        assert!(matches!(out, Poll::Ready(Some(Some(ref n))) if n == "name-test#2"));
        assert!(
            with_current_name(|n| n.is_none()),
            "restored after the poll"
        );
        assert_eq!(
            task.name.as_ref().map(TaskName::as_str),
            Some("name-test#2")
        );
    }
}
