//! Executor instrumentation: what each kind of task costs, and a watchdog for polls that hold a
//! thread too long.
//!
//! Every task spawned through [`super::task::instrument`] counts towards its *kind*: the part of
//! its name before the first `#` or space (`conn#7 127.0.0.1:50312` is a `conn`), so the figures
//! stay a short table however many connections come and go. Per kind: tasks spawned and alive,
//! polls, busy time (time inside `poll`), polls slower than the threshold, the slowest poll and
//! panics. [`snapshot`] reads them; `STATS t` shows them to operators.
//!
//! **The cooperative-scheduling hazard, made visible.** Neither async-executor nor Tokio can take
//! a thread back from a poll that does not return. One poll that runs long stalls every task
//! queued behind it on that thread. Two checks catch it:
//! - after the fact: a poll longer than [`slow_poll_threshold`] (default 50 ms, `--slow-poll-ms`)
//!   is logged at warn level with the task's name when it returns;
//! - while it happens: the [`Watchdog`] thread looks at every executor thread a few times per
//!   threshold and warns about a poll that is *still* running past it, naming the task, so even a
//!   loop that never yields is named.
//!
//! The watchdog also serves our scheduler: a poll that has held its thread for
//! [`HAND_OVER_AFTER`] calls the thread's [`HandOver`], and the scheduler wakes an idle thread to
//! take the tasks queued behind it (docs/executor.md, decision 14). No other thread looks at a
//! poll in progress, so with `--task-stats off` (no watchdog) those tasks wait for the poll to end.
//!
//! Both measure wall-clock time, so on a machine short of CPU a poll that was merely preempted
//! is reported too; each is rate-limited to one line a second per kind of task, so one busy kind
//! cannot hide another (two hogs in a row on one thread are both named).
//!
//! Cost per poll: two clock reads (one inside a batch of polls, [`batch_begins`]), two stores
//! (the task's id, then the poll's stamp with a full fence) and a few plain stores to this
//! thread's counts (`ThreadCounts`). The task's *name* is registered once, at spawn
//! (`task::name_of`), not published per poll. Measured with the load generator, on and off
//! (`--task-stats off`), in docs/scheduling.md and docs/executor.md ("Speed").

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::{lock, TaskName};

/// Counters of one kind of task. All figures only grow (except `alive`).
#[derive(Debug, Default)]
pub struct KindStats {
    kind: String,
    /// Its place in `KINDS`, which is also its place in each thread's `COUNTS`.
    index: usize,
    spawned: AtomicU64,
    finished: AtomicU64,
    /// Polls, busy time and the slowest poll, one set per thread that polled a task of this
    /// kind; `snapshot` adds them up.
    per_thread: Mutex<Vec<Arc<ThreadCounts>>>,
    slow_polls: AtomicU64,
    panics: AtomicU64,
    /// Nanoseconds (since [`epoch`]) of the last slow-poll warning, to keep the log readable.
    last_warning_ns: AtomicU64,
    /// The same for the watchdog's warnings about this kind.
    last_watchdog_ns: AtomicU64,
}

/// One thread's per-poll counts for one kind of task.
///
/// Only the thread they belong to writes them, so it adds with a load and a store instead of a
/// read-modify-write: an atomic add costs about 9 ns on our 2-core VM, and three per poll, at
/// three polls per relayed message, were a measurable part of the node's user time. Readers
/// (`snapshot`, another thread) see each value whole (the fields are atomics), at worst one
/// poll behind.
#[derive(Debug, Default)]
struct ThreadCounts {
    polls: AtomicU64,
    busy_ns: AtomicU64,
    max_poll_ns: AtomicU64,
}

impl ThreadCounts {
    /// Counts one poll of `ns` nanoseconds. Must be called only by the owning thread.
    fn count(&self, ns: u64) {
        let add = |counter: &AtomicU64, n: u64| {
            counter.store(
                counter.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        };
        add(&self.polls, 1);
        add(&self.busy_ns, ns);
        if ns > self.max_poll_ns.load(Ordering::Relaxed) {
            self.max_poll_ns.store(ns, Ordering::Relaxed);
        }
    }
}

thread_local! {
    /// This thread's counts, by kind index (`KindStats::index`); registered with the kind on
    /// the thread's first poll of it, and kept there after the thread ends.
    static COUNTS: std::cell::RefCell<Vec<Option<Arc<ThreadCounts>>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Counts one poll of a task of kind `stats` on this thread.
fn count_poll(stats: &KindStats, ns: u64) {
    COUNTS.with(|counts| {
        let Ok(mut counts) = counts.try_borrow_mut() else {
            return; // not reached: nothing in here polls a task
        };
        if counts.len() <= stats.index {
            counts.resize(stats.index + 1, None);
        }
        let Some(mine) = counts.get_mut(stats.index) else {
            return;
        };
        let mine = mine.get_or_insert_with(|| {
            let fresh = Arc::new(ThreadCounts::default());
            lock(&stats.per_thread).push(fresh.clone());
            fresh
        });
        mine.count(ns);
    });
}

/// A copy of one kind's counters, as [`snapshot`] returns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindSnapshot {
    /// The kind: `broker`, `conn`, `accept`, ...
    pub kind: String,
    /// Tasks of this kind ever spawned.
    pub spawned: u64,
    /// Tasks of this kind alive now.
    pub alive: u64,
    /// Polls, all tasks of this kind together.
    pub polls: u64,
    /// Time spent inside their polls.
    pub busy: Duration,
    /// Polls longer than the slow-poll threshold.
    pub slow_polls: u64,
    /// The longest single poll.
    pub max_poll: Duration,
    /// Tasks of this kind that panicked (and were ended).
    pub panics: u64,
}

static KINDS: Mutex<Vec<Arc<KindStats>>> = Mutex::new(Vec::new());
static ENABLED: AtomicBool = AtomicBool::new(true);
static SLOW_POLL_NS: AtomicU64 = AtomicU64::new(50_000_000);
static THREADS: Mutex<Vec<Weak<ThreadSlot>>> = Mutex::new(Vec::new());

/// The instant all nanosecond stamps here count from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// The kind of a task name: everything before the first `#` or space.
///
/// ```
/// assert_eq!(chatnode::rt::stats::kind_of("conn#7 127.0.0.1:5000"), "conn");
/// assert_eq!(chatnode::rt::stats::kind_of("broker"), "broker");
/// ```
pub fn kind_of(name: &str) -> &str {
    name.split(['#', ' ']).next().unwrap_or(name)
}

/// The counters for `kind`, created on first use.
pub fn kind_stats(kind: &str) -> Arc<KindStats> {
    let mut kinds = lock(&KINDS);
    if let Some(k) = kinds.iter().find(|k| k.kind == kind) {
        return k.clone();
    }
    let k = Arc::new(KindStats {
        kind: kind.to_string(),
        index: kinds.len(),
        ..KindStats::default()
    });
    kinds.push(k.clone());
    k
}

/// Every kind's counters, sorted by busy time, busiest first.
pub fn snapshot() -> Vec<KindSnapshot> {
    let kinds = lock(&KINDS);
    let mut out: Vec<KindSnapshot> = kinds
        .iter()
        .map(|k| {
            let spawned = k.spawned.load(Ordering::Relaxed);
            let (mut polls, mut busy_ns, mut max_poll_ns) = (0u64, 0u64, 0u64);
            for t in lock(&k.per_thread).iter() {
                polls = polls.wrapping_add(t.polls.load(Ordering::Relaxed));
                busy_ns = busy_ns.wrapping_add(t.busy_ns.load(Ordering::Relaxed));
                max_poll_ns = max_poll_ns.max(t.max_poll_ns.load(Ordering::Relaxed));
            }
            KindSnapshot {
                kind: k.kind.clone(),
                spawned,
                alive: spawned.saturating_sub(k.finished.load(Ordering::Relaxed)),
                polls,
                busy: Duration::from_nanos(busy_ns),
                slow_polls: k.slow_polls.load(Ordering::Relaxed),
                max_poll: Duration::from_nanos(max_poll_ns),
                panics: k.panics.load(Ordering::Relaxed),
            }
        })
        .collect();
    // Kinds are unique, so no two entries compare equal: the cheaper unstable sort gives the
    // same order (and is smaller on a board than the stable one).
    out.sort_unstable_by(|a, b| b.busy.cmp(&a.busy).then_with(|| a.kind.cmp(&b.kind)));
    out
}

/// Turns the per-poll figures and the watchdog's view on or off (`--task-stats off`), for
/// measuring what they cost. Task names and panic isolation stay on either way.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether per-poll figures are being collected.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Sets the slow-poll threshold (`--slow-poll-ms`) for every task, now.
pub fn set_slow_poll_threshold(threshold: Duration) {
    SLOW_POLL_NS.store(threshold.as_nanos().max(1) as u64, Ordering::Relaxed);
}

/// The slow-poll threshold.
pub fn slow_poll_threshold() -> Duration {
    Duration::from_nanos(SLOW_POLL_NS.load(Ordering::Relaxed))
}

/// How long one poll may hold its thread before the watchdog calls the thread's [`HandOver`]:
/// the time limit of one of the scheduler's batches (a poll longer than a whole batch is when
/// the tasks behind it go to another thread). The watchdog looks every [`HAND_OVER_AFTER`] / 2
/// while polls run, so queued tasks wait at most about 1.5 × this behind a poll that does not
/// end, if a thread is idle to take them.
pub const HAND_OVER_AFTER: Duration = Duration::from_millis(10);

/// What the watchdog calls for a thread whose poll has run past [`HAND_OVER_AFTER`] (again every
/// look while it keeps running). Set by the executor that drives the thread; it must be cheap
/// and must not block.
pub type HandOver = Arc<dyn Fn() + Send + Sync>;

/// Sets the calling thread's [`HandOver`] (`None`: none), returning the one it replaces.
///
/// ```
/// use std::sync::Arc;
/// let previous = chatnode::rt::stats::set_hand_over(Some(Arc::new(|| {})));
/// assert!(previous.is_none());
/// chatnode::rt::stats::set_hand_over(previous);
/// ```
pub fn set_hand_over(hand_over: Option<HandOver>) -> Option<HandOver> {
    SLOT.with(|slot| std::mem::replace(&mut *lock(&slot.hand_over), hand_over))
}

/// What one thread is polling, for the watchdog.
struct ThreadSlot {
    thread: String,
    /// When the current poll started ([`now_ns`]); 0 when the thread is not polling a task.
    poll_started_ns: AtomicU64,
    /// The id of the task being polled (see `task::name_of`), stored before the poll's stamp.
    task_id: AtomicU64,
    /// The watchdog already looked at the current poll (and warned, or chose not to).
    reported: AtomicBool,
    /// What to call when a poll runs past [`HAND_OVER_AFTER`].
    hand_over: Mutex<Option<HandOver>>,
}

thread_local! {
    static SLOT: Arc<ThreadSlot> = {
        let slot = Arc::new(ThreadSlot {
            thread: std::thread::current().name().unwrap_or("unnamed").to_string(),
            poll_started_ns: AtomicU64::new(0),
            task_id: AtomicU64::new(0),
            reported: AtomicBool::new(false),
            hand_over: Mutex::new(None),
        });
        let mut threads = lock(&THREADS);
        threads.retain(|t| t.strong_count() > 0);
        threads.push(Arc::downgrade(&slot));
        slot
    };
}

impl KindStats {
    /// A task of this kind was spawned; returns what counts it finished when dropped.
    pub(crate) fn spawned(self: &Arc<Self>) -> AliveGuard {
        self.spawned.fetch_add(1, Ordering::Relaxed);
        AliveGuard(self.clone())
    }

    pub(crate) fn panicked(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a task as finished when dropped (completed, cancelled or panicked alike).
#[derive(Debug)]
pub(crate) struct AliveGuard(Arc<KindStats>);

impl AliveGuard {
    pub(crate) fn stats(&self) -> &Arc<KindStats> {
        &self.0
    }
}

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Relaxed);
    }
}

thread_local! {
    /// Inside a batch ([`batch_begins`]): when the previous poll ended, which is when the next
    /// one starts. One clock read per poll instead of two.
    static LAST_END: Cell<Option<PollTime>> = const { Cell::new(None) };
    /// Between [`batch_begins`] and [`batch_ends`] on this thread.
    static IN_BATCH: Cell<bool> = const { Cell::new(false) };
    /// When the poll in progress on this thread started.
    static POLL_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The executor starts a batch of polls run back to back on this thread: from now on a poll's
/// end is also the next poll's start, so each poll reads the clock once. The few instructions
/// of scheduling between two polls count towards the second one's busy time.
///
/// ```
/// use chatnode::rt::stats;
/// stats::batch_begins();
/// assert_eq!(stats::last_poll_end(), None); // no poll has ended in this batch yet
/// stats::batch_ends();
/// ```
pub fn batch_begins() {
    IN_BATCH.set(true);
    LAST_END.set(None);
}

/// The batch is over: the thread may now wait or park, and that time must not count as the
/// next poll's (the next batch's first poll reads the clock itself).
pub fn batch_ends() {
    IN_BATCH.set(false);
    LAST_END.set(None);
}

/// The next poll must read the clock at its start rather than reuse the previous poll's end:
/// its task may have been woken, on another thread, after that end (see [`poll_start`]).
pub(crate) fn fresh_start() {
    LAST_END.set(None);
}

/// When the last poll of the current batch ended (`None` before the first, outside a batch, or
/// with figures off): the executor's batch time checks use it instead of reading the clock.
pub fn last_poll_end() -> Option<Instant> {
    LAST_END.get().map(|t| t.at)
}

/// A recent time, without reading the clock when this thread read it moments ago: inside a
/// poll, when that poll started; just after a poll of a batch, when it ended; otherwise now.
/// For bookkeeping that needs no more precision than one poll (a connection's time of last
/// input, for its idle timeout).
///
/// ```
/// let t = chatnode::rt::stats::recent_now();
/// assert!(t <= std::time::Instant::now());
/// ```
pub fn recent_now() -> Instant {
    POLL_STARTED
        .get()
        .or_else(last_poll_end)
        .unwrap_or_else(Instant::now)
}

/// When the poll in progress on this thread started, if task figures are on and this runs
/// inside an instrumented task's poll: a time already read, for checks that need no clock read
/// of their own (a connection's "is my timer due yet").
///
/// It may be the previous poll's end (see [`batch_begins`]), but never earlier than the wake-up
/// that scheduled this poll: a task the executor takes from a queue other threads push to (the
/// injector, or a steal) gets a fresh clock read ([`fresh_start`]). So a timer whose deadline
/// is later than this time had not fired when its task was woken for this poll.
///
/// ```
/// // Outside a task's poll there is no poll start.
/// assert!(chatnode::rt::stats::poll_start().is_none());
/// ```
pub fn poll_start() -> Option<Instant> {
    POLL_STARTED.get()
}

/// A clock reading of the instrumentation, with its offset from [`epoch`] worked out once: a
/// poll's end is the next one's start, and the watchdog's stamp and the busy time both need the
/// offset (`Instant` arithmetic was 2 % of a relayed message's instructions).
#[derive(Clone, Copy)]
pub(crate) struct PollTime {
    at: Instant,
    ns: u64,
}

impl PollTime {
    fn now() -> PollTime {
        let at = Instant::now();
        PollTime {
            at,
            ns: at.saturating_duration_since(epoch()).as_nanos() as u64,
        }
    }
}

/// Marks the start of a poll of task `name` on this thread; `None` when figures are off.
pub(crate) fn poll_begin(task_id: u64) -> Option<PollTime> {
    if !enabled() {
        return None;
    }
    // One clock read serves both the busy time and the watchdog's stamp; in a batch, the
    // previous poll's end serves.
    let started = LAST_END.take().unwrap_or_else(PollTime::now);
    POLL_STARTED.set(Some(started.at));
    let stamp = started.ns;
    SLOT.with(|slot| {
        // Seen by a watchdog that sees the stamp below (a SeqCst store is also a release).
        slot.task_id.store(task_id, Ordering::Relaxed);
        slot.reported.store(false, Ordering::Relaxed);
        // SeqCst, with the flag below: a watchdog about to park sees this poll, or we see that
        // it parked and wake it.
        slot.poll_started_ns.store(stamp.max(1), Ordering::SeqCst);
    });
    wake_watchdogs();
    Some(started)
}

/// Marks the end of a poll that started at `started`, counting it for `stats`.
pub(crate) fn poll_end(stats: &KindStats, name: &TaskName, started: Option<PollTime>) {
    let Some(started) = started else { return };
    let ended = PollTime::now();
    POLL_STARTED.set(None);
    if IN_BATCH.get() {
        LAST_END.set(Some(ended));
    }
    let ns = ended.ns.saturating_sub(started.ns);
    SLOT.with(|slot| slot.poll_started_ns.store(0, Ordering::Release));
    count_poll(stats, ns);
    if ns > SLOW_POLL_NS.load(Ordering::Relaxed) {
        stats.slow_polls.fetch_add(1, Ordering::Relaxed);
        // At most one warning per kind per second: a busy node must not drown its log.
        let now = now_ns();
        let last = stats.last_warning_ns.load(Ordering::Relaxed);
        if last == 0 || now.saturating_sub(last) >= 1_000_000_000 {
            stats.last_warning_ns.store(now, Ordering::Relaxed);
            log::warn!(
                "slow poll: task {name} held its thread for {} ms in one poll (threshold {} ms)",
                crate::decimal::Fixed::new(u128::from(ns), 1_000_000, 1),
                slow_poll_threshold().as_millis()
            );
        }
    }
}

/// A thread that warns, while it happens, about a poll holding its thread past the threshold.
///
/// It stops when dropped. Start one per process ([`crate::server::run`] does).
///
/// ```
/// let watchdog = chatnode::rt::stats::Watchdog::start();
/// drop(watchdog); // stops and joins the thread
/// ```
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Set by a watchdog about to park because no thread is polling; the next poll to begin
/// clears it and wakes the watchdogs. An idle node then costs the watchdog no wake-ups at all.
static WATCHDOG_PARKED: AtomicBool = AtomicBool::new(false);
/// The watchdog threads, for waking them (normally one; tests may run several).
static WATCHDOGS: Mutex<Vec<std::thread::Thread>> = Mutex::new(Vec::new());

/// Wakes the parked watchdogs: a poll has begun.
fn wake_watchdogs() {
    if WATCHDOG_PARKED.load(Ordering::SeqCst) && WATCHDOG_PARKED.swap(false, Ordering::SeqCst) {
        for t in lock(&WATCHDOGS).iter() {
            t.unpark();
        }
    }
}

impl Watchdog {
    /// Starts the watchdog thread (`chatnode-watchdog`).
    pub fn start() -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("chatnode-watchdog".into())
            .spawn(move || {
                lock(&WATCHDOGS).push(std::thread::current());
                while !stopping.load(Ordering::SeqCst) {
                    if check_threads() {
                        // A poll is running: look again a few times per threshold and twice
                        // per hand-over time, but not more than every millisecond.
                        let period = (slow_poll_threshold() / 4)
                            .min(HAND_OVER_AFTER / 2)
                            .max(Duration::from_millis(1));
                        std::thread::park_timeout(period);
                        continue;
                    }
                    // Nothing is being polled: sleep until a poll begins. Announce it first,
                    // then look once more, so a poll that began in between is not missed.
                    WATCHDOG_PARKED.store(true, Ordering::SeqCst);
                    if check_threads() {
                        WATCHDOG_PARKED.store(false, Ordering::SeqCst);
                        continue;
                    }
                    std::thread::park();
                }
                let me = std::thread::current().id();
                lock(&WATCHDOGS).retain(|t| t.id() != me);
            })
            .ok();
        Watchdog { stop, thread }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Warns about polls running past the threshold and asks for hand-overs behind polls running
/// past [`HAND_OVER_AFTER`]; returns whether any poll is running at all.
fn check_threads() -> bool {
    let threshold = SLOW_POLL_NS.load(Ordering::Relaxed);
    let hand_over_ns = HAND_OVER_AFTER.as_nanos() as u64;
    let now = now_ns();
    let mut hand_overs = Vec::new();
    let mut polling = false;
    let threads = lock(&THREADS);
    for slot in threads.iter().filter_map(Weak::upgrade) {
        let started = slot.poll_started_ns.load(Ordering::SeqCst);
        polling |= started != 0;
        if started != 0 && now.saturating_sub(started) >= hand_over_ns {
            hand_overs.extend(lock(&slot.hand_over).clone());
        }
        if started == 0 || now.saturating_sub(started) <= threshold {
            continue;
        }
        if slot.reported.swap(true, Ordering::Relaxed) {
            continue;
        }
        let task = super::task::name_of(slot.task_id.load(Ordering::Relaxed))
            .map_or_else(|| "?".to_string(), |t| t.to_string());
        // A busy (or preempted) node must not drown its log: one line a second per kind.
        let kind = kind_stats(kind_of(&task));
        let last = kind.last_watchdog_ns.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < 1_000_000_000 {
            continue;
        }
        kind.last_watchdog_ns.store(now, Ordering::Relaxed);
        log::warn!(
            "watchdog: task {task} has held thread {} for {} ms without yielding; \
             every task queued on that thread is waiting",
            slot.thread,
            (now - started) / 1_000_000
        );
    }
    // Outside every lock of ours: a hand-over takes the scheduler's.
    drop(threads);
    for hand_over in hand_overs {
        hand_over();
    }
    polling
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_of(kind: &str) -> KindSnapshot {
        snapshot().into_iter().find(|k| k.kind == kind).unwrap()
    }

    #[test]
    fn kinds_are_shared_and_counted() {
        let a = kind_stats("test-kind-a");
        let b = kind_stats("test-kind-a");
        assert!(Arc::ptr_eq(&a, &b));
        let guard = a.spawned();
        let name = TaskName::from("test-kind-a#1");
        let started = poll_begin(0);
        poll_end(&a, &name, started);
        let snap = snapshot_of("test-kind-a");
        assert_eq!((snap.spawned, snap.alive, snap.polls), (1, 1, 1));
        drop(guard);
        let snap = snapshot_of("test-kind-a");
        assert_eq!(snap.alive, 0);
    }

    #[test]
    fn polls_on_several_threads_add_up() {
        let kind = kind_stats("test-kind-threads");
        let name = TaskName::from("test-kind-threads#1");
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    for _ in 0..10 {
                        let started = poll_begin(0);
                        poll_end(&kind, &name, started);
                    }
                });
            }
        });
        let snap = snapshot_of("test-kind-threads");
        assert_eq!(snap.polls, 30);
        assert!(snap.max_poll <= snap.busy);
    }

    #[test]
    fn a_poll_start_is_never_before_the_wake_up_of_a_task_from_elsewhere() {
        let kind = kind_stats("test-kind-fresh");
        let name = TaskName::from("test-kind-fresh#1");
        batch_begins();
        let first = poll_begin(1);
        poll_end(&kind, &name, first);
        let ended = last_poll_end().expect("in a batch, a poll's end is kept");
        // A task of this thread's own queue: its poll starts at the previous poll's end.
        let reused = poll_begin(2);
        assert_eq!(reused.map(|t| t.at), Some(ended));
        assert_eq!(poll_start(), Some(ended));
        poll_end(&kind, &name, reused);
        // A task woken on another thread after that end: the executor asks for a fresh read.
        let woken = Instant::now();
        fresh_start();
        let fresh = poll_begin(3);
        assert!(poll_start().is_some_and(|t| t >= woken));
        poll_end(&kind, &name, fresh);
        batch_ends();
        assert_eq!(poll_start(), None); // outside a poll
    }
}
