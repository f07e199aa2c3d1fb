//! Whether the machine has a core to spare for another executor thread: the governor behind
//! `--adaptive-threads` (on by default in the binary; our executor only).
//!
//! **Why.** `--threads N` starts N executor threads, and the scheduler ([`super::sched`]) wakes
//! an idle one for a backlog that lasts. That pays only if the woken thread gets a core of its
//! own. On a board whose other cores are busy (a load generator in our benchmarks; a database,
//! a desktop or a second service on a household Pi) it does not: the kernel time-slices it with
//! the other programs, every hand-over between our threads waits for a slice, and the node does
//! less work with more CPU. Measured with `loadgen pairs --clients 200` on this project's 2-core
//! machine at `--threads 2` (2 Dec 2026): the two executor threads waited 0.85 s and 0.93 s on
//! the kernel's run queue, runnable but not running, during one run (43 % of the 4.1 s they
//! ran), and in alternating runs the node relayed 43k to 55k round trips/s where one thread
//! relayed 46k to 67k.
//!
//! **What it measures**, every [`WINDOW`] while the node is busy (an idle node reads nothing):
//! - how long the executor threads that ran tasks waited on the run queue, against how long
//!   they ran: each busy thread reads its own `/proc/thread-self/schedstat` (the kernel's
//!   `sum_exec_runtime` and `run_delay`) at most once a window;
//! - how much of the whole machine was idle: the `cpu` line of `/proc/stat`.
//!
//! **What it decides** ([`next_limit`]): threads that waited more than [`CROWDED_WAIT_PERMILLE`] of their
//! running time are crowded, and one thread fewer may run tasks at once
//! ([`super::sched::Scheduler::set_active_limit`]); with at least [`SPARE_CORE_MILLI`] of a core idle
//! for [`Governor`]'s current patience (one window at first), one more may. A limit that has to
//! come down again within [`FLAP_WINDOWS`] of going up doubles the patience, up to
//! [`MAX_PATIENCE`] windows (8 s), so a machine where the extra thread never pays off does not
//! flap; a limit that holds for [`FLAP_WINDOWS`] resets it.
//!
//! **What it costs:** one system call (`pread` of a file opened once) per busy thread and
//! window, and one more per window for `/proc/stat`: 12 a second at 2 busy threads, against over
//! 200,000 a second for the messages themselves in pairs. procfs reads do not wait for a disk or a lock held by
//! anyone else, so they do not block an executor thread. Where `/proc` is missing, the governor
//! does nothing and every thread may run, as without it.
//!
//! The Tokio build has no such thing: its workers take any task woken on them, whatever else
//! the machine runs. This is one of the places where our executor does what the project's
//! board needs rather than what a general-purpose runtime must.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::lock;

/// How often the governor decides, and how often each busy thread reads its own figures.
pub const WINDOW: Duration = Duration::from_millis(250);

/// Run-queue wait, in thousandths of running time, above which the active threads are
/// crowded. One thread on a machine with a core to spare waits about 1 % (0.6 % and 1.1 %
/// measured in pairs N=200); two threads sharing one free core with a load generator, 43 %.
/// (Integers throughout: formatting `f64`s in the log line added 15.7 KB to the minimal
/// aarch64 binary, past its 1,000,000-byte budget.)
pub const CROWDED_WAIT_PERMILLE: u64 = 100;

/// Idle share of the whole machine, in thousandths of a core, that lets one more thread run
/// tasks.
pub const SPARE_CORE_MILLI: u64 = 700;

/// A limit raised and lowered again within this many windows is a flap.
pub const FLAP_WINDOWS: u32 = 8;

/// Most windows of spare core the governor waits for after repeated flaps (8 s).
pub const MAX_PATIENCE: u32 = 32;

/// Less running time than this in a window says nothing about crowding.
const MIN_RUN: Duration = Duration::from_millis(10);

/// The figures a thread reads about itself: time on a CPU and time waiting for one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadTimes {
    /// Nanoseconds the thread ran.
    pub run_ns: u64,
    /// Nanoseconds it was runnable but waited on the run queue.
    pub wait_ns: u64,
}

/// Parses `/proc/<tid>/schedstat`: `run_ns wait_ns timeslices`.
///
/// ```
/// use chatnode::rt::cores::{parse_schedstat, ThreadTimes};
/// assert_eq!(
///     parse_schedstat("42484599 1646506 59\n"),
///     Some(ThreadTimes { run_ns: 42484599, wait_ns: 1646506 })
/// );
/// assert_eq!(parse_schedstat("garbage"), None);
/// ```
pub fn parse_schedstat(text: &str) -> Option<ThreadTimes> {
    let mut fields = text.split_ascii_whitespace().map(|f| f.parse::<u64>().ok());
    Some(ThreadTimes {
        run_ns: fields.next()??,
        wait_ns: fields.next()??,
    })
}

/// The whole machine's CPU time from `/proc/stat`, in clock ticks summed over its CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineTimes {
    /// All time: user, nice, system, idle, iowait, irq, softirq, steal.
    pub total: u64,
    /// Time no task wanted a CPU: idle and iowait.
    pub idle: u64,
    /// Online CPUs (the `cpuN` lines).
    pub cpus: u32,
}

/// Parses `/proc/stat`'s aggregate `cpu` line and counts the `cpuN` lines.
///
/// ```
/// use chatnode::rt::cores::{parse_proc_stat, MachineTimes};
/// let text = "cpu  100 0 50 800 10 0 40 0 0 0\ncpu0 50 0 25 400 5 0 20 0 0 0\n\
///             cpu1 50 0 25 400 5 0 20 0 0 0\nintr 1 2\n";
/// assert_eq!(parse_proc_stat(text), Some(MachineTimes { total: 1000, idle: 810, cpus: 2 }));
/// ```
pub fn parse_proc_stat(text: &str) -> Option<MachineTimes> {
    let mut lines = text.lines();
    let first = lines.next()?.strip_prefix("cpu ")?;
    let fields: Vec<u64> = first
        .split_ascii_whitespace()
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 5 {
        return None;
    }
    let cpus = lines
        .take_while(|l| l.starts_with("cpu"))
        .filter(|l| l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Some(MachineTimes {
        total: fields.iter().sum(),
        idle: fields[3] + fields[4],
        cpus: u32::try_from(cpus).ok().filter(|&n| n > 0)?,
    })
}

/// Idle cores between two samples, in thousandths: the idle share of all ticks, times the CPUs.
pub fn idle_millicores(before: MachineTimes, after: MachineTimes) -> u64 {
    let total = after.total.saturating_sub(before.total);
    if total == 0 {
        return 0;
    }
    let idle = after.idle.saturating_sub(before.idle).min(total);
    let milli = u128::from(idle) * 1000 * u128::from(after.cpus) / u128::from(total);
    u64::try_from(milli).unwrap_or(u64::MAX)
}

/// What one window showed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Run-queue wait of the busy threads in thousandths of their running time; `None` if
    /// they ran too little to tell.
    pub wait_permille: Option<u64>,
    /// Idle cores on the whole machine, in thousandths.
    pub idle_millicores: u64,
}

/// The governor's memory between windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patience {
    /// Windows of spare core needed before the limit goes up.
    pub needed: u32,
    /// Windows of spare core seen in a row.
    pub seen: u32,
    /// Windows since the limit last went up (saturating).
    pub since_raise: u32,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            needed: 1,
            seen: 0,
            since_raise: u32::MAX,
        }
    }
}

/// The active limit after `window`, for a scheduler of `threads` threads now allowed `limit`.
///
/// ```
/// use chatnode::rt::cores::{next_limit, Patience, Window};
/// let mut p = Patience::default();
/// // Two threads, both free to run, waited 40 % of their running time: one fewer.
/// let crowded = Window { wait_permille: Some(400), idle_millicores: 100 };
/// assert_eq!(next_limit(2, 2, crowded, &mut p), 1);
/// // One thread runs; a whole core is idle: the second may run again.
/// let spare = Window { wait_permille: Some(10), idle_millicores: 1000 };
/// assert_eq!(next_limit(2, 1, spare, &mut p), 2);
/// ```
pub fn next_limit(threads: usize, limit: usize, window: Window, p: &mut Patience) -> usize {
    let limit = limit.clamp(1, threads.max(1));
    p.since_raise = p.since_raise.saturating_add(1);
    if window
        .wait_permille
        .is_some_and(|w| w > CROWDED_WAIT_PERMILLE)
        && limit > 1
    {
        p.seen = 0;
        if p.since_raise <= FLAP_WINDOWS {
            p.needed = (p.needed * 2).min(MAX_PATIENCE);
        }
        return limit - 1;
    }
    if p.since_raise > FLAP_WINDOWS && p.since_raise != u32::MAX {
        p.needed = 1; // the last raise held
    }
    if window.idle_millicores >= SPARE_CORE_MILLI && limit < threads {
        p.seen += 1;
        if p.seen >= p.needed {
            p.seen = 0;
            p.since_raise = 0;
            return limit + 1;
        }
    } else {
        p.seen = 0;
    }
    limit
}

/// A thread's handle on its own `/proc/thread-self/schedstat`, read at most once a [`WINDOW`].
pub struct ThreadClock {
    file: Option<File>,
    last: Option<ThreadTimes>,
    next: Instant,
}

impl ThreadClock {
    /// Opens the calling thread's figures (`None` inside if `/proc` is missing).
    pub fn for_this_thread() -> ThreadClock {
        ThreadClock {
            file: File::open("/proc/thread-self/schedstat").ok(),
            last: None,
            next: Instant::now(),
        }
    }

    /// What the thread ran and waited since its last sample, if a window has passed since then.
    pub fn sample(&mut self, now: Instant) -> Option<ThreadTimes> {
        if now < self.next {
            return None;
        }
        self.next = now + WINDOW;
        let times = parse_schedstat(&read_at_start(self.file.as_ref()?)?)?;
        let before = self.last.replace(times)?;
        Some(ThreadTimes {
            run_ns: times.run_ns.saturating_sub(before.run_ns),
            wait_ns: times.wait_ns.saturating_sub(before.wait_ns),
        })
    }
}

/// Reads a small procfs file from its start.
fn read_at_start(file: &File) -> Option<String> {
    let mut buf = [0u8; 512];
    let n = file.read_at(&mut buf, 0).ok()?;
    String::from_utf8(buf[..n].to_vec()).ok()
}

/// The governor: the threads' figures summed over a window, and the decision at its end.
pub struct Governor {
    enabled: AtomicBool,
    run_ns: AtomicU64,
    wait_ns: AtomicU64,
    /// The next decision, in nanoseconds since `epoch`.
    next_ns: AtomicU64,
    epoch: Instant,
    state: Mutex<State>,
    /// Times the limit went down and up, for `STATS e`.
    lowered: AtomicU64,
    raised: AtomicU64,
}

struct State {
    machine: Option<File>,
    last: Option<MachineTimes>,
    patience: Patience,
}

impl Governor {
    /// A governor, off until [`Governor::set_enabled`].
    pub fn new() -> Governor {
        Governor {
            enabled: AtomicBool::new(false),
            run_ns: AtomicU64::new(0),
            wait_ns: AtomicU64::new(0),
            next_ns: AtomicU64::new(0),
            epoch: Instant::now(),
            state: Mutex::new(State {
                machine: None,
                last: None,
                patience: Patience::default(),
            }),
            lowered: AtomicU64::new(0),
            raised: AtomicU64::new(0),
        }
    }

    /// Turns the governor on or off (`--adaptive-threads`).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    /// `true` if on.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Adds one busy thread's figures to the window.
    pub fn add(&self, times: ThreadTimes) {
        self.run_ns.fetch_add(times.run_ns, Ordering::Relaxed);
        self.wait_ns.fetch_add(times.wait_ns, Ordering::Relaxed);
    }

    /// If the window is over and no other thread is deciding: the limit for the next one, from
    /// the current `limit` of `threads`. `None` if it is not this thread's turn or nothing can
    /// be read.
    pub fn decide(&self, now: Instant, threads: usize, limit: usize) -> Option<usize> {
        let now_ns = u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).ok()?;
        let next = self.next_ns.load(Ordering::Relaxed);
        if now_ns < next {
            return None;
        }
        let window_ns = u64::try_from(WINDOW.as_nanos()).unwrap_or(u64::MAX);
        self.next_ns
            .compare_exchange(
                next,
                now_ns + window_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .ok()?;
        let mut state = self.state.try_lock().ok()?;
        let state = &mut *state;
        if state.machine.is_none() {
            state.machine = File::open("/proc/stat").ok();
        }
        let machine = parse_proc_stat(&read_at_start(state.machine.as_ref()?)?)?;
        let run = self.run_ns.swap(0, Ordering::Relaxed);
        let wait = self.wait_ns.swap(0, Ordering::Relaxed);
        let Some(before) = state.last.replace(machine) else {
            return None; // the first window only sets the baseline
        };
        let window = Window {
            wait_permille: (Duration::from_nanos(run) >= MIN_RUN).then(|| {
                u64::try_from(u128::from(wait) * 1000 / u128::from(run)).unwrap_or(u64::MAX)
            }),
            idle_millicores: idle_millicores(before, machine),
        };
        let next = next_limit(threads, limit, window, &mut state.patience);
        if next != limit.clamp(1, threads.max(1)) {
            let counter = if next < limit {
                &self.lowered
            } else {
                &self.raised
            };
            counter.fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "executor: {next} of {threads} threads may run tasks (run-queue wait {} % of \
                 running time, {} idle cores, patience {} windows)",
                crate::decimal::Fixed::new(u128::from(window.wait_permille.unwrap_or(0)), 10, 1),
                crate::decimal::Fixed::new(u128::from(window.idle_millicores), 1000, 2),
                state.patience.needed
            );
        }
        Some(next)
    }

    /// One phrase for `STATS e`.
    pub fn describe(&self) -> String {
        if !self.enabled() {
            return "adaptive threads off".into();
        }
        format!(
            "adaptive threads: limit lowered {} and raised {} time(s), patience {} window(s)",
            self.lowered.load(Ordering::Relaxed),
            self.raised.load(Ordering::Relaxed),
            lock(&self.state).patience.needed
        )
    }
}

impl Default for Governor {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window from shares: `wait` of running time, `idle` cores.
    fn window(wait: f64, idle: f64) -> Window {
        Window {
            wait_permille: Some((wait * 1000.0) as u64),
            idle_millicores: (idle * 1000.0) as u64,
        }
    }

    #[test]
    fn crowded_threads_step_down_one_at_a_time_to_one() {
        let mut p = Patience::default();
        let crowded = window(0.3, 0.0);
        assert_eq!(next_limit(4, usize::MAX, crowded, &mut p), 3);
        assert_eq!(next_limit(4, 3, crowded, &mut p), 2);
        assert_eq!(next_limit(4, 2, crowded, &mut p), 1);
        assert_eq!(next_limit(4, 1, crowded, &mut p), 1, "never below one");
    }

    #[test]
    fn a_busy_machine_keeps_the_limit_and_a_quiet_thread_says_nothing() {
        let mut p = Patience::default();
        assert_eq!(next_limit(2, 1, window(0.05, 0.2), &mut p), 1);
        let unknown = Window {
            wait_permille: None,
            idle_millicores: 0,
        };
        assert_eq!(next_limit(2, 2, unknown, &mut p), 2);
        assert_eq!(next_limit(2, 2, window(0.05, 0.0), &mut p), 2);
    }

    #[test]
    fn flapping_doubles_the_patience_and_a_lasting_raise_resets_it() {
        let mut p = Patience::default();
        let (crowded, spare) = (window(0.4, 0.0), window(0.01, 1.0));
        assert_eq!(next_limit(2, 2, crowded, &mut p), 1);
        assert_eq!(
            next_limit(2, 1, spare, &mut p),
            2,
            "first raise after one window"
        );
        assert_eq!(next_limit(2, 2, crowded, &mut p), 1, "a flap");
        assert_eq!(p.needed, 2);
        assert_eq!(next_limit(2, 1, spare, &mut p), 1);
        assert_eq!(
            next_limit(2, 1, spare, &mut p),
            2,
            "raised after two windows"
        );
        assert_eq!(next_limit(2, 2, crowded, &mut p), 1);
        assert_eq!(p.needed, 4);
        for _ in 0..10 {
            next_limit(2, 1, crowded, &mut p);
            next_limit(2, 2, crowded, &mut p);
        }
        assert!(p.needed <= MAX_PATIENCE);
        // Spare windows in a row bring the raise; one busy window in between starts over.
        let mut p = Patience {
            needed: 3,
            seen: 0,
            since_raise: u32::MAX,
        };
        assert_eq!(next_limit(2, 1, spare, &mut p), 1);
        assert_eq!(next_limit(2, 1, window(0.01, 0.2), &mut p), 1);
        assert_eq!(next_limit(2, 1, spare, &mut p), 1);
        assert_eq!(next_limit(2, 1, spare, &mut p), 1);
        assert_eq!(next_limit(2, 1, spare, &mut p), 2);
        // Held for more than FLAP_WINDOWS: the next crowding does not count as a flap.
        for _ in 0..=FLAP_WINDOWS {
            assert_eq!(next_limit(2, 2, window(0.01, 0.0), &mut p), 2);
        }
        assert_eq!(p.needed, 1, "a raise that held resets the patience");
        assert_eq!(next_limit(2, 2, crowded, &mut p), 1);
        assert_eq!(p.needed, 1);
    }

    #[test]
    fn idle_cores_scale_the_idle_share_by_the_cpus() {
        let a = MachineTimes {
            total: 1000,
            idle: 500,
            cpus: 4,
        };
        let b = MachineTimes {
            total: 1400,
            idle: 600,
            cpus: 4,
        };
        assert_eq!(idle_millicores(a, b), 1000);
        assert_eq!(idle_millicores(a, a), 0, "no ticks: no idle core claimed");
        assert_eq!(
            parse_proc_stat("cpu  1 2 3\ncpu0 1 2 3\n"),
            None,
            "too few fields"
        );
        assert_eq!(parse_proc_stat("intr 1\n"), None);
    }

    #[test]
    fn this_machine_has_the_files_the_governor_reads() {
        let mut clock = ThreadClock::for_this_thread();
        let start = Instant::now();
        assert_eq!(
            clock.sample(start),
            None,
            "the first sample is the baseline"
        );
        assert_eq!(clock.sample(start), None, "at most one sample a window");
        // The kernel adds a running thread's time at its clock ticks (every 1 to 10 ms).
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {
            std::hint::spin_loop();
        }
        let times = clock.sample(start + WINDOW).expect("a second sample");
        assert!(times.run_ns > 0, "{times:?}");
        let stat = std::fs::read_to_string("/proc/stat").unwrap();
        let machine = parse_proc_stat(&stat).expect("the cpu line");
        assert!(machine.cpus >= 1 && machine.total >= machine.idle);
    }
}
