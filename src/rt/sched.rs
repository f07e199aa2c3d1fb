//! The scheduler of our executor: which thread runs a woken task, and when an idle thread is
//! woken to help. Built on `async-task` (the task cell smol's executors are made of) and
//! `concurrent-queue` (the queue async-executor uses).
//!
//! **Why not async-executor's `Executor`.** Its schedule function pushes every woken task to one
//! shared queue and wakes a sleeping thread, and every `tick` that finds a task wakes another
//! one "in case running the task takes a long time". At `--threads 2`, a broker turn that wakes
//! 1,000 writer tasks made the two threads wake each other for nearly every task, and both pulled
//! from the one queue: 1.22 × the Tokio build's CPU per delivered message in `compare` fanout
//! N=1000 (docs/executor.md). Here, as in Tokio's scheduler:
//!
//! - **A task woken on an executor thread goes to that thread's own queue** (its cache is warm:
//!   the thread that wrote a connection's SendQueue runs the connection's writer), which holds
//!   at most 256: a push past that moves the older half to the shared injector queue, as
//!   Tokio's does. A task woken anywhere else (the blocking pool, the log thread) goes to the
//!   injector.
//! - **An idle thread is woken to help only for a backlog that lasts**: when a thread's queues
//!   have held tasks without a break for [`HELP_AFTER`] (checked between polls), or when one
//!   poll has held the thread for [`stats::HAND_OVER_AFTER`] with tasks queued behind it (seen
//!   by the watchdog thread, which already watches polls in progress). A burst that the thread
//!   clears in less time wakes nobody: waking a thread costs a system call and moves tasks to
//!   another core's cold cache, and on a machine whose other cores are busy (the load generator,
//!   in our benchmarks) the helper takes CPU from them. Tokio, like this scheduler before
//!   decision 14 of docs/executor.md, wakes one as soon as a second task is queued.
//! - **One idle thread at a time is woken, and only if no thread is already searching for work.**
//!   The woken thread *searches*: it steals half of a busy thread's queue in one go. While it
//!   searches, further wake-ups wake nobody.
//! - **Fairness:** every 61st task (Tokio's `global_queue_interval`) comes from the injector
//!   first, so tasks woken from outside are not starved by a thread whose own queue never
//!   empties.
//!
//! **No lost wake-up.** A thread that runs out of work registers as idle (`num_idle + 1`, under
//! the idle list's lock), issues a `SeqCst` fence and looks at every queue once more before it
//! blocks; a scheduler pushes the task, issues a `SeqCst` fence and then reads `num_idle` (and
//! `searching`). One of the two sees the other: either the idle thread finds the task, or the
//! scheduler sees an idle thread (or a searcher that will look again before it sleeps) and wakes
//! it.
//!
//! **Cancellation and panics** are the task cell's: dropping a task's handle cancels it (a queued
//! `Runnable` of a cancelled task does nothing when run), and [`super::task::instrument`] catches
//! a panic inside a poll, so [`Runnable::run`] never unwinds into the scheduler.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use async_task::Runnable;
use concurrent_queue::ConcurrentQueue;

use super::cores::{Governor, ThreadClock};
use super::lock;
use super::reactor::Reactor;
use super::stats;

/// Tasks one thread runs, while more are always ready, before it looks at the reactor again
/// (without blocking) and takes one task from the injector first: Tokio's `event_interval` and
/// `global_queue_interval` are 61 too.
const TASKS_PER_CHECK: u32 = 61;

/// A thread's own queue holds at most this many tasks; a push that finds it full moves the
/// older half to the injector (Tokio's `LOCAL_QUEUE_CAPACITY` and `push_overflow`). A broker
/// turn wakes up to one writer per member; without the bound, the broker, which re-queues
/// itself at the back when it yields, waited behind all of them, and each writer ran after
/// every turn with only that turn's lines. With it, the broker runs again after at most 256
/// tasks of its own thread's queue (and the few the every-61st rule takes from the injector),
/// and the writers in the injector collect several turns' lines per poll: in fan-out to
/// 1,000 members, 14 % fewer connection polls at `--threads 2` and 27 % less CPU per delivery
/// at `--threads 1` (docs/executor.md, decision 11).
const LOCAL_QUEUE_CAPACITY: usize = 256;

/// ... or this long, whichever comes first: a few slow polls must not keep timers and sockets
/// waiting behind them. (1 ms cost 0.1 `epoll_wait` per message under strace, where every
/// system call is slow: a time limit must stay well above a normal batch.)
const TIME_PER_CHECK: Duration = Duration::from_millis(10);

/// The clock is read every this many tasks of a batch, not after each one: a clock read costs
/// about as much as a short poll's scheduling, and in `perf` of fan-out to 1,000 at one thread
/// our node read the clock twice as often as the Tokio build (1.2 % of its CPU against 0.7 %).
/// A batch of fewer tasks never reads it.
const TASKS_PER_CLOCK_READ: u32 = 4;

/// A thread's queues (its own and the injector) must have held tasks without a break for this
/// long, at the clock reads between its polls, before it wakes an idle thread to help. A
/// helper costs a wake-up (`futex` or the eventfd) and a trip to another core; a backlog the
/// thread clears sooner is cheaper to clear alone. 250 µs is about ten times what waking a
/// thread costs, and a quarter of a millisecond is the longest a queued task waits for a helper
/// that is then due (docs/executor.md, decision 14). A poll that itself runs long is the
/// watchdog's to catch ([`stats::HAND_OVER_AFTER`]): no clock is read during a poll.
const HELP_AFTER: Duration = Duration::from_micros(250);

/// The scheduler shared by the executor threads and every task's schedule function.
///
/// ```
/// use chatnode::rt::smol::SmolRuntime;
/// use chatnode::rt::Runtime;
/// let rt = SmolRuntime::new();
/// // Two threads; the tasks may run on either.
/// let sum = rt.block_on(2, {
///     let rt = rt.clone();
///     async move {
///         let tasks: Vec<_> = (0..100u64).map(|i| rt.spawn("add".into(), async move { i })).collect();
///         let mut sum = 0;
///         for t in tasks {
///             sum += t.await.unwrap();
///         }
///         sum
///     }
/// });
/// assert_eq!(sum, 4950);
/// ```
///
/// A thread's own queue holds at most [`LOCAL_QUEUE_CAPACITY`] tasks: past it, the older half
/// moves to the injector (nothing is dropped). The injector is unbounded on purpose, and bounded
/// in fact: async-task keeps at most one `Runnable` per task, so every queue together holds at
/// most one entry per live task, and the tasks are bounded by the node's own limits
/// (connections, listeners). A bound there could only drop a woken task, which would hang it.
pub struct Scheduler {
    /// Tasks woken outside the executor threads (and a thread's leftovers when it stops).
    injector: ConcurrentQueue<Runnable>,
    /// Each running executor thread's own queue, for stealing.
    locals: RwLock<Vec<Arc<ConcurrentQueue<Runnable>>>>,
    /// Threads with nothing to run (waiting in the reactor or parked), last in first out.
    idle: Mutex<Vec<Arc<ThreadSignal>>>,
    /// `idle.len()`, readable without the lock.
    num_idle: AtomicUsize,
    /// Threads woken for work that have not found any yet (or gone idle again).
    searching: AtomicUsize,
    /// Executor threads inside [`Scheduler::drive`].
    threads: AtomicUsize,
    /// Most threads that may run tasks at once (see [`Scheduler::set_active_limit`]).
    active_limit: AtomicUsize,
    /// Sets `active_limit` from the machine's load, when on (`--adaptive-threads`).
    governor: Governor,
    /// Idle threads woken for work, for `STATS e`.
    wakeups: AtomicU64,
    /// Tasks taken from another thread's queue, for `STATS e`.
    stolen: AtomicU64,
    /// Tasks moved from a full own queue to the injector, for `STATS e`.
    overflowed: AtomicU64,
    /// Idle threads woken for backlogs that lasted [`HELP_AFTER`], for `STATS e`.
    lasting_backlogs: AtomicU64,
    /// Idle threads woken by the watchdog's hand-over behind a long poll, for `STATS e`.
    handovers: AtomicU64,
}

thread_local! {
    /// On an executor thread: its scheduler (by address) and its own queue.
    static LOCAL: RefCell<Option<(usize, Arc<ConcurrentQueue<Runnable>>)>> =
        const { RefCell::new(None) };
}

impl Scheduler {
    /// A scheduler with no threads yet: [`Scheduler::drive`] makes the calling thread one.
    pub fn new() -> Arc<Scheduler> {
        Arc::new(Scheduler {
            injector: ConcurrentQueue::unbounded(),
            locals: RwLock::default(),
            idle: Mutex::default(),
            num_idle: AtomicUsize::new(0),
            searching: AtomicUsize::new(0),
            threads: AtomicUsize::new(0),
            active_limit: AtomicUsize::new(usize::MAX),
            governor: Governor::new(),
            wakeups: AtomicU64::new(0),
            stolen: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
            lasting_backlogs: AtomicU64::new(0),
            handovers: AtomicU64::new(0),
        })
    }

    /// Spawns `fut`; dropping the returned handle cancels it.
    pub fn spawn<T, F>(self: &Arc<Self>, fut: F) -> async_task::Task<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let me = self.clone();
        let (runnable, task) = async_task::spawn(fut, move |r| me.schedule(r));
        runnable.schedule();
        task
    }

    /// Where a woken task goes: see the module documentation.
    fn schedule(&self, runnable: Runnable) {
        let id = self as *const Scheduler as usize;
        // On an executor thread: its own queue. That thread runs the task once its current poll
        // returns; an idle thread is woken only if the backlog lasts (`Worker::check_backlog`)
        // or that poll runs long (the watchdog's hand-over).
        let elsewhere = LOCAL.with(|local| match local.try_borrow().as_deref() {
            Ok(Some((owner, queue))) if *owner == id => {
                // Unbounded, and never closed while the thread runs: the push cannot fail.
                let _ = queue.push(runnable);
                if queue.len() > LOCAL_QUEUE_CAPACITY {
                    self.overflow(queue);
                }
                None
            }
            _ => Some(runnable),
        });
        // Anywhere else: the injector, and an idle thread is woken at once, since no executor
        // thread may be busy to take it.
        if let Some(runnable) = elsewhere {
            // Unbounded and never closed: the push cannot fail.
            let _ = self.injector.push(runnable);
            self.ask_for_help();
        }
    }

    /// Wakes an idle thread to search for work, if one is idle and none is searching already;
    /// `true` if it woke one. Cheap when it does nothing: two loads after a fence.
    fn ask_for_help(&self) -> bool {
        fence(Ordering::SeqCst);
        let idle = self.num_idle.load(Ordering::Relaxed);
        idle != 0 && !self.at_active_limit(idle) && self.wake_idle_if_none_searching()
    }

    /// [`Scheduler::wake_idle`], skipped without its lock while a thread is searching already.
    fn wake_idle_if_none_searching(&self) -> bool {
        self.searching.load(Ordering::Relaxed) == 0 && self.wake_idle()
    }

    /// Sets how many threads may run tasks at once: a thread that goes idle while that many
    /// others are active parks instead of waiting in the reactor, and no idle thread is woken to
    /// help. (A poll held past [`stats::HAND_OVER_AFTER`] still hands its queue over.)
    pub fn set_active_limit(&self, limit: usize) {
        self.active_limit.store(limit.max(1), Ordering::SeqCst);
    }

    /// Turns the governor of [`super::cores`] on or off: on, the active limit follows the
    /// machine's load (one thread fewer when the busy ones wait for a CPU, one more when a core
    /// is idle). Off, the limit stays where [`Scheduler::set_active_limit`] put it.
    pub fn set_adaptive(&self, on: bool) {
        self.governor.set_enabled(on);
        if !on {
            self.active_limit.store(usize::MAX, Ordering::SeqCst);
        }
    }

    /// `true` if the threads not idle (of which `idle` are) have reached the active limit.
    fn at_active_limit(&self, idle: usize) -> bool {
        let threads = self.threads.load(Ordering::Relaxed);
        threads.saturating_sub(idle) >= self.active_limit.load(Ordering::Relaxed)
    }

    /// The watchdog's hand-over: the thread that owns `own` has been inside one poll for
    /// [`stats::HAND_OVER_AFTER`]; if tasks wait behind it, an idle thread comes to take them.
    fn hand_over(&self, own: &ConcurrentQueue<Runnable>) {
        // Not `ask_for_help`: a poll that holds its thread this long gets a helper even at the
        // active limit.
        fence(Ordering::SeqCst);
        if (!own.is_empty() || !self.injector.is_empty())
            && self.num_idle.load(Ordering::Relaxed) != 0
            && self.wake_idle_if_none_searching()
        {
            self.handovers.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Moves the older half of a full own queue to the injector, oldest first.
    fn overflow(&self, queue: &ConcurrentQueue<Runnable>) {
        let mut moved = 0;
        while moved < LOCAL_QUEUE_CAPACITY / 2 {
            let Ok(r) = queue.pop() else { break };
            // Unbounded and never closed: the push cannot fail.
            let _ = self.injector.push(r);
            moved += 1;
        }
        self.overflowed.fetch_add(moved as u64, Ordering::Relaxed);
    }

    /// Wakes one idle thread to search for work, unless one is searching already; `true` if it
    /// woke one.
    fn wake_idle(&self) -> bool {
        let signal = {
            let mut idle = lock(&self.idle);
            if self.searching.load(Ordering::SeqCst) != 0 {
                return false;
            }
            let Some(signal) = idle.pop() else {
                return false;
            };
            self.num_idle.fetch_sub(1, Ordering::SeqCst);
            // Counted for the woken thread, which takes it over when it sees `handoff`.
            self.searching.fetch_add(1, Ordering::SeqCst);
            signal
        };
        self.wakeups.fetch_add(1, Ordering::Relaxed);
        signal.handoff.store(true, Ordering::SeqCst);
        signal.interrupt();
        true
    }

    /// Takes `signal`'s thread off the idle list, if it is still there.
    fn remove_idle(&self, signal: &Arc<ThreadSignal>) {
        let mut idle = lock(&self.idle);
        if let Some(i) = idle.iter().position(|s| Arc::ptr_eq(s, signal)) {
            idle.swap_remove(i);
            self.num_idle.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Tasks waiting in any queue.
    fn has_work(&self, own: &ConcurrentQueue<Runnable>) -> bool {
        !own.is_empty()
            || !self.injector.is_empty()
            || read(&self.locals).iter().any(|q| !q.is_empty())
    }

    /// Takes a task from the injector or another thread's queue; moves up to half of what that
    /// queue held into `own`.
    fn steal(&self, own: &Arc<ConcurrentQueue<Runnable>>) -> Option<Runnable> {
        if let Some(r) = take_half(&self.injector, own) {
            return Some(r);
        }
        let locals = read(&self.locals);
        // A random victim first, so threads do not all rob the same one.
        let start = fastrand::usize(..locals.len().max(1));
        for i in 0..locals.len() {
            let victim = &locals[(start + i) % locals.len()];
            if Arc::ptr_eq(victim, own) {
                continue;
            }
            if let Some(r) = take_half(victim, own) {
                self.stolen
                    .fetch_add(1 + own.len() as u64, Ordering::Relaxed);
                return Some(r);
            }
        }
        None
    }

    /// One line for `STATS e`.
    pub fn describe(&self) -> String {
        format!(
            "scheduler: {} thread(s) idle now, {} idle thread wake-up(s) ({} backlog(s) that \
             lasted {} µs, {} hand-over(s) behind a long poll), {} task(s) stolen, {} moved from \
             a full thread queue to the shared one, {} queued; {} of {} thread(s) may run tasks \
             ({})",
            self.num_idle.load(Ordering::Relaxed),
            self.wakeups.load(Ordering::Relaxed),
            self.lasting_backlogs.load(Ordering::Relaxed),
            HELP_AFTER.as_micros(),
            self.handovers.load(Ordering::Relaxed),
            self.stolen.load(Ordering::Relaxed),
            self.overflowed.load(Ordering::Relaxed),
            self.injector.len() + read(&self.locals).iter().map(|q| q.len()).sum::<usize>(),
            self.active_limit
                .load(Ordering::Relaxed)
                .min(self.threads.load(Ordering::Relaxed)),
            self.threads.load(Ordering::Relaxed),
            self.governor.describe(),
        )
    }

    /// Runs tasks on the calling thread and polls `main` until `main` completes. Between
    /// batches the thread looks at the reactor: without blocking while there are tasks to run,
    /// and otherwise it waits in `epoll_wait` if no other thread does, or parks.
    pub fn drive<T>(self: &Arc<Self>, reactor: &Arc<Reactor>, main: impl Future<Output = T>) -> T {
        let mut worker = Worker::start(self.clone(), reactor.clone());
        let waker = Waker::from(worker.signal.clone());
        let mut cx = Context::from_waker(&waker);
        let mut main = pin!(main);
        worker.signal.notified.store(true, Ordering::SeqCst);
        loop {
            if worker.signal.notified.swap(false, Ordering::SeqCst) {
                if let Poll::Ready(out) = main.as_mut().poll(&mut cx) {
                    return out; // `worker`'s drop hands its queue over
                }
            }
            // Busy if tasks are left, or if `main` woke itself while it ran (a main that yields
            // in a loop): either way, only collect the I/O that is there, so a busy `main` does
            // not starve sockets and timers (at `--threads 1` nothing else would wait on them).
            let busy = worker.run_batch();
            worker.govern();
            if busy || worker.signal.notified.load(Ordering::Relaxed) {
                if let Some(mut state) = reactor.try_wait_lock() {
                    let _ =
                        reactor.wait(&mut state, false, &worker.signal.waiting, || false, || {});
                }
            } else {
                worker.idle();
            }
        }
    }
}

/// One executor thread's state.
struct Worker {
    sched: Arc<Scheduler>,
    reactor: Arc<Reactor>,
    own: Arc<ConcurrentQueue<Runnable>>,
    signal: Arc<ThreadSignal>,
    /// Counted in `Scheduler::searching`.
    searching: bool,
    /// Tasks run, to take every 61st from the injector first.
    ticks: u32,
    /// Since when (at a clock read between polls) the thread's queues have held tasks.
    backlog_since: Option<Instant>,
    /// The thread's watchdog hand-over before this one (a nested `block_on`).
    outer_hand_over: Option<stats::HandOver>,
    /// The thread's queue before this one (a nested `block_on`), put back when this one ends.
    outer: Option<(usize, Arc<ConcurrentQueue<Runnable>>)>,
    /// The thread's run and run-queue times, for the governor (opened at its first use).
    clock: Option<ThreadClock>,
}

impl Worker {
    fn start(sched: Arc<Scheduler>, reactor: Arc<Reactor>) -> Worker {
        let own = Arc::new(ConcurrentQueue::unbounded());
        write(&sched.locals).push(own.clone());
        sched.threads.fetch_add(1, Ordering::SeqCst);
        let id = Arc::as_ptr(&sched) as usize;
        // A `block_on` inside a task of another runtime (tests do it) restores that one's queue.
        let outer = LOCAL.with(|l| l.borrow_mut().replace((id, own.clone())));
        // The watchdog asks for a hand-over when a poll of this thread runs long. A `Weak`: the
        // thread's statistics slot outlives the scheduler.
        let hand_over: stats::HandOver = {
            let (sched, own) = (Arc::downgrade(&sched), own.clone());
            Arc::new(move || {
                if let Some(sched) = sched.upgrade() {
                    sched.hand_over(&own);
                }
            })
        };
        let outer_hand_over = stats::set_hand_over(Some(hand_over));
        let signal = Arc::new(ThreadSignal {
            notified: AtomicBool::new(false),
            handoff: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            thread: std::thread::current(),
            reactor: reactor.clone(),
        });
        Worker {
            sched,
            reactor,
            own,
            signal,
            searching: false,
            ticks: 0,
            backlog_since: None,
            outer_hand_over,
            outer,
            clock: None,
        }
    }

    /// After a batch: at most once a window, this thread's run and run-queue times go to the
    /// governor, and the first thread past the window's end sets the next active limit.
    fn govern(&mut self) {
        let sched = &self.sched;
        // One thread has nothing to govern.
        let threads = sched.threads.load(Ordering::Relaxed);
        if !sched.governor.enabled() || threads < 2 {
            return;
        }
        let now = stats::last_poll_end().unwrap_or_else(Instant::now);
        let clock = self.clock.get_or_insert_with(ThreadClock::for_this_thread);
        let Some(times) = clock.sample(now) else {
            return;
        };
        sched.governor.add(times);
        let limit = sched.active_limit.load(Ordering::Relaxed);
        if let Some(next) = sched.governor.decide(now, threads, limit) {
            sched.active_limit.store(next, Ordering::SeqCst);
        }
    }

    /// Only this thread pushes to its own queue, during a poll or its reactor wait, so a task
    /// taken from there was woken before the previous poll ended. One from the injector or
    /// another thread's queue may have been woken since: its poll reads the clock afresh
    /// ([`stats::poll_start`]'s promise).
    fn next_task(&mut self) -> Option<Runnable> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks % TASKS_PER_CHECK == 0 {
            if let Ok(r) = self.sched.injector.pop() {
                stats::fresh_start();
                return Some(r);
            }
        }
        if let Ok(r) = self.own.pop() {
            return Some(r);
        }
        stats::fresh_start();
        self.sched.steal(&self.own)
    }

    /// Runs up to a batch of tasks; `true` if it stopped with more to run.
    ///
    /// The time limit is counted from the batch's first clock read, after its first
    /// [`TASKS_PER_CLOCK_READ`] tasks, and checked every that many tasks: a batch may run up to
    /// three polls before its [`TIME_PER_CHECK`] starts and three after it ends. (The watchdog
    /// reports any one poll slower than `--slow-poll-ms`.)
    fn run_batch(&mut self) -> bool {
        stats::batch_begins();
        let more = self.run_tasks();
        stats::batch_ends();
        more
    }

    /// [`Worker::run_batch`]'s loop.
    fn run_tasks(&mut self) -> bool {
        let mut started = None;
        let mut ran = 0;
        while let Some(runnable) = self.next_task() {
            if self.searching {
                self.stop_searching();
            }
            runnable.run();
            ran += 1;
            if ran >= TASKS_PER_CHECK {
                return true;
            }
            if ran % TASKS_PER_CLOCK_READ == 0 {
                // The last poll's end, read by the instrumentation anyway.
                let now = stats::last_poll_end().unwrap_or_else(Instant::now);
                self.check_backlog(now);
                if now - *started.get_or_insert(now) >= TIME_PER_CHECK {
                    return true;
                }
            }
            if self.signal.notified.load(Ordering::Relaxed) {
                return true; // `main` was woken: poll it soon
            }
        }
        self.backlog_since = None; // the queues ran dry
        false
    }

    /// At a clock read between polls: asks for help if the queues have held tasks ever since
    /// [`HELP_AFTER`] ago. Each thread asks for itself, so with more threads a backlog that
    /// lasts on the helper too brings the next one.
    fn check_backlog(&mut self, now: Instant) {
        if self.own.is_empty() && self.sched.injector.is_empty() {
            self.backlog_since = None;
            return;
        }
        let since = *self.backlog_since.get_or_insert(now);
        if now - since >= HELP_AFTER {
            self.backlog_since = Some(now); // at most one call per HELP_AFTER
            if self.sched.ask_for_help() {
                self.sched.lasting_backlogs.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Found work: no longer searching.
    fn stop_searching(&mut self) {
        self.searching = false;
        self.sched.searching.fetch_sub(1, Ordering::SeqCst);
    }

    /// Nothing to run: registers as idle, looks once more, then waits in the reactor (if no
    /// other thread does) or parks, until woken.
    fn idle(&mut self) {
        {
            let mut idle = lock(&self.sched.idle);
            if self.searching {
                self.searching = false;
                self.sched.searching.fetch_sub(1, Ordering::SeqCst);
            }
            idle.push(self.signal.clone());
            self.sched.num_idle.fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if self.sched.has_work(&self.own) || self.signal.notified.load(Ordering::SeqCst) {
            self.leave_idle();
            return;
        }
        // At the active limit, another thread runs tasks and looks at the reactor between
        // batches: waiting there too would make this thread a second active one.
        let at_limit = self
            .sched
            .at_active_limit(self.sched.num_idle.load(Ordering::SeqCst));
        // The guard is the match's temporary: gone before `leave_idle` below.
        match (!at_limit).then(|| self.reactor.try_wait_lock()).flatten() {
            Some(mut state) => {
                let (sched, signal) = (&self.sched, &self.signal);
                let interrupted = || {
                    signal.notified.load(Ordering::SeqCst) || signal.handoff.load(Ordering::SeqCst)
                };
                // Off the idle list before the events' tasks are woken: they are scheduled on
                // this thread, and must not wake this thread again.
                let on_return = || sched.remove_idle(signal);
                if let Err(e) =
                    self.reactor
                        .wait(&mut state, true, &signal.waiting, interrupted, on_return)
                {
                    log::error!("epoll_wait failed: {e}");
                }
            }
            None => {
                while !self.signal.notified.load(Ordering::SeqCst)
                    && !self.signal.handoff.load(Ordering::SeqCst)
                {
                    std::thread::park();
                    if self.sched.has_work(&self.own) {
                        break; // work came while parked, and another thread was searching
                    }
                }
            }
        }
        self.leave_idle();
    }

    /// Back from idle: off the idle list, or, if a scheduler took it off to hand it work,
    /// searching on that scheduler's behalf.
    fn leave_idle(&mut self) {
        self.sched.remove_idle(&self.signal);
        if self.signal.handoff.swap(false, Ordering::SeqCst) {
            self.searching = true;
        }
    }
}

impl Drop for Worker {
    /// The thread stops: its queue's tasks go to the injector for the other threads.
    fn drop(&mut self) {
        let outer = self.outer.take();
        LOCAL.with(|l| *l.borrow_mut() = outer);
        stats::set_hand_over(self.outer_hand_over.take());
        write(&self.sched.locals).retain(|q| !Arc::ptr_eq(q, &self.own));
        self.sched.threads.fetch_sub(1, Ordering::SeqCst);
        while let Ok(r) = self.own.pop() {
            let _ = self.sched.injector.push(r);
        }
        if self.searching {
            self.sched.searching.fetch_sub(1, Ordering::SeqCst);
        }
        self.leave_idle();
        if !self.sched.injector.is_empty() && self.sched.num_idle.load(Ordering::SeqCst) != 0 {
            self.sched.wake_idle();
        }
    }
}

/// How a thread inside [`Scheduler::drive`] is woken.
struct ThreadSignal {
    /// Set by the `main` future's waker: poll it again.
    notified: AtomicBool,
    /// Set by [`Scheduler::wake_idle`]: taken off the idle list to search for work.
    handoff: AtomicBool,
    /// Set while the thread blocks in `epoll_wait`: wake it through the reactor's notifier.
    waiting: AtomicBool,
    thread: std::thread::Thread,
    reactor: Arc<Reactor>,
}

impl ThreadSignal {
    /// Makes the thread return from `epoll_wait` or `park` (its flag is already set).
    fn interrupt(&self) {
        // SeqCst pairs with the thread's `waiting` store then flag load: either it sees the
        // flag and does not block, or we see `waiting` and interrupt the wait.
        if self.waiting.load(Ordering::SeqCst) {
            self.reactor.notify();
        } else {
            self.thread.unpark(); // no system call unless the thread is parked
        }
    }
}

impl Wake for ThreadSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::SeqCst) {
            self.interrupt();
        }
    }
}

/// Pops one task from `from` and moves up to half of the rest into `into`.
fn take_half(
    from: &ConcurrentQueue<Runnable>,
    into: &ConcurrentQueue<Runnable>,
) -> Option<Runnable> {
    let first = from.pop().ok()?;
    for _ in 0..from.len() / 2 {
        match from.pop() {
            Ok(r) => {
                let _ = into.push(r);
            }
            Err(_) => break,
        }
    }
    Some(first)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}
