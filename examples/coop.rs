//! Cooperative scheduling: a task that never yields stalls its thread, on every runtime.
//!
//! ```text
//! cargo run --example coop                    # our executor (async-executor)
//! cargo run --example coop --features tokio   # the same, then on Tokio's current-thread runtime
//! ```
//!
//! A ticker task wants to run every 10 ms. Beside it, on a one-thread executor, a "hog" task loops
//! for 300 ms in one of several ways. The ticker records the time between its wake-ups; its worst
//! gap says how long the hog kept the thread. The hog is spawned through [`Runtime::spawn`], so it
//! is instrumented: the watchdog (`chatnode::rt::stats`) names it while it holds the thread, and
//! the per-kind stats count its polls (one poll = the hog never gave the thread back).
//!
//! See docs/scheduling.md for the explanation and the figures measured on this machine.

use std::time::{Duration, Instant};

use chatnode::rt::smol::SmolRuntime;
use chatnode::rt::{stats, Runtime};

/// How often the ticker wants to run.
pub const TICK: Duration = Duration::from_millis(10);
/// How long each hog loops (bounded by time, so every case stops by itself).
pub const HOG_FOR: Duration = Duration::from_millis(300);
/// The yielding hog yields after this many items (the broker's EVENTS_PER_YIELD is also 128).
pub const YIELD_EVERY: u64 = 128;
/// Slow-poll threshold the example sets for the watchdog.
pub const SLOW_POLL: Duration = Duration::from_millis(50);

/// How the hog loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hog {
    /// Pure CPU, no `.await` at all.
    Spin,
    /// Awaits `recv()` on an async-channel that always has an item: every await is `Ready`.
    AsyncChannel,
    /// The same async-channel loop, plus `futures_lite::future::yield_now()` every
    /// [`YIELD_EVERY`] items.
    Yielding,
    /// Awaits `recv()` on a Tokio mpsc channel that always has an item: a Tokio resource, so
    /// each `recv` is charged to Tokio's coop budget (when running inside a Tokio runtime).
    #[cfg(feature = "tokio")]
    TokioMpsc,
}

impl Hog {
    /// What the loop does, for the table.
    pub fn describe(self) -> &'static str {
        match self {
            Hog::Spin => "no await (pure CPU)",
            Hog::AsyncChannel => "await async-channel recv, always ready",
            Hog::Yielding => "same, yield_now() every 128 items",
            #[cfg(feature = "tokio")]
            Hog::TokioMpsc => "await tokio mpsc recv, always ready",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Hog::Spin => "spin",
            Hog::AsyncChannel => "async-channel",
            Hog::Yielding => "yielding",
            #[cfg(feature = "tokio")]
            Hog::TokioMpsc => "tokio-mpsc",
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// "smol, 1 thread", "tokio, current_thread", ...
    pub runtime: String,
    /// The loop.
    pub hog: Hog,
    /// The hog task's name, as the watchdog prints it.
    pub task: String,
    /// Loop iterations done in [`HOG_FOR`].
    pub iterations: u64,
    /// Polls of the hog task (1 = it never gave its thread back).
    pub hog_polls: u64,
    /// Intervals between the ticker's wake-ups.
    pub gaps: Vec<Duration>,
    /// Times the ticker ran while the hog was running (between its first poll and its end).
    pub ticks_during_hog: usize,
}

impl Outcome {
    /// The ticker's worst interval.
    pub fn max_gap(&self) -> Duration {
        self.gaps.iter().copied().max().unwrap_or_default()
    }
}

/// What the hog did: iterations, and when it started and ended.
#[derive(Clone, Copy, Debug)]
pub struct HogRun {
    /// Loop iterations.
    pub iterations: u64,
    /// Its first poll.
    pub started: Instant,
    /// Its end.
    pub ended: Instant,
}

/// The hog: loops in the chosen way until `run_for` has passed.
pub async fn hog(kind: Hog, run_for: Duration) -> HogRun {
    let started = Instant::now();
    let iterations = hog_loop(kind, started + run_for).await;
    HogRun {
        iterations,
        started,
        ended: Instant::now(),
    }
}

/// The loop itself, until `deadline`; returns its iteration count.
async fn hog_loop(kind: Hog, deadline: Instant) -> u64 {
    let mut i: u64 = 0;
    match kind {
        Hog::Spin => {
            let mut x: u64 = 1;
            loop {
                // Some arithmetic the optimiser cannot remove; check the clock every 1024 rounds.
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                i += 1;
                if i % 1024 == 0 && Instant::now() >= deadline {
                    return i;
                }
            }
        }
        Hog::AsyncChannel | Hog::Yielding => {
            let (tx, rx) = async_channel::unbounded::<u64>();
            loop {
                let _ = tx.try_send(i);
                // Always an item waiting: this await is always Ready, never Pending.
                let _ = rx.recv().await;
                i += 1;
                if kind == Hog::Yielding && i % YIELD_EVERY == 0 {
                    futures_lite::future::yield_now().await;
                }
                if i % 1024 == 0 && Instant::now() >= deadline {
                    return i;
                }
            }
        }
        #[cfg(feature = "tokio")]
        Hog::TokioMpsc => {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            loop {
                let _ = tx.send(i);
                // Always ready too, but inside a Tokio runtime each recv spends budget; once it is
                // spent, recv returns Pending (and wakes the task) so the task yields.
                let _ = rx.recv().await;
                i += 1;
                if i % 1024 == 0 && Instant::now() >= deadline {
                    return i;
                }
            }
        }
    }
}

/// The ticker: sleeps [`TICK`] over and over for `run_for`; returns its start and every
/// wake-up time.
pub async fn ticker<R: Runtime>(rt: R, run_for: Duration) -> Vec<Instant> {
    let start = Instant::now();
    let mut times = vec![start];
    while start.elapsed() < run_for {
        rt.sleep(TICK).await;
        times.push(Instant::now());
    }
    times
}

/// One case on runtime `rt`: ticker for 450 ms, the hog spawned (as `task`) 50 ms in.
/// Returns the hog's run and the ticker's wake-up times.
pub async fn scenario<R: Runtime>(rt: R, kind: Hog, task: String) -> (HogRun, Vec<Instant>) {
    let ticker = rt.spawn(
        "ticker".into(),
        ticker(rt.clone(), HOG_FOR + Duration::from_millis(150)),
    );
    rt.sleep(Duration::from_millis(50)).await;
    let run = rt.spawn(task.into(), hog(kind, HOG_FOR)).await;
    let times = ticker.await.unwrap_or_default();
    let now = Instant::now();
    let run = run.unwrap_or(HogRun {
        iterations: 0,
        started: now,
        ended: now,
    });
    (run, times)
}

/// Builds an [`Outcome`] from what [`scenario`] returned.
fn outcome(
    runtime: String,
    hog: Hog,
    task: String,
    polls: u64,
    run: HogRun,
    times: Vec<Instant>,
) -> Outcome {
    Outcome {
        runtime,
        hog,
        task,
        iterations: run.iterations,
        hog_polls: polls,
        gaps: times.windows(2).map(|w| w[1] - w[0]).collect(),
        ticks_during_hog: times
            .iter()
            .filter(|&&t| t > run.started && t < run.ended)
            .count(),
    }
}

fn polls_of(kind: &str) -> u64 {
    stats::snapshot()
        .into_iter()
        .find(|k| k.kind == kind)
        .map_or(0, |k| k.polls)
}

/// Runs one case on our executor with `threads` threads.
pub fn run_smol(threads: usize, kind: Hog) -> Outcome {
    let task = format!("hog-{}-smol{threads}", kind.short());
    let before = polls_of(&task);
    let rt = SmolRuntime::new();
    let (run, times) = rt.block_on(threads, scenario(rt.clone(), kind, task.clone()));
    let runtime = format!(
        "smol, {threads} thread{}",
        if threads == 1 { "" } else { "s" }
    );
    let polls = polls_of(&task) - before;
    outcome(runtime, kind, task, polls, run, times)
}

/// Runs one case on Tokio's current-thread runtime.
#[cfg(feature = "tokio")]
pub fn run_tokio(kind: Hog) -> Outcome {
    use chatnode::rt::tokio::TokioRuntime;
    let task = format!("hog-{}-tokio", kind.short());
    let before = polls_of(&task);
    let runtime = TokioRuntime::build(1, None).expect("tokio runtime");
    let rt = TokioRuntime::new(runtime.handle().clone());
    let (run, times) = runtime.block_on(scenario(rt, kind, task.clone()));
    let polls = polls_of(&task) - before;
    outcome(
        "tokio, current_thread".into(),
        kind,
        task,
        polls,
        run,
        times,
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn print_row(o: &Outcome) {
    let verdict = if o.ticks_during_hog == 0 {
        "STALLED"
    } else {
        "kept ticking"
    };
    println!(
        "{:<22} {:<40} {:>6} {:>10} {:>6} {:>9}  {}",
        o.runtime,
        o.hog.describe(),
        o.hog_polls,
        o.iterations,
        o.ticks_during_hog,
        ms(o.max_gap()),
        verdict
    );
}

#[path = "shared/args.rs"]
mod args;

const NAME: &str = "coop";

/// `--help`: what the example shows and how to read its output.
const HELP: &str = "\
coop: cooperative scheduling. A task that never gives its thread back stalls every
other task on that thread, on every runtime.

USAGE: cargo run --example coop [--features tokio]

A ticker task wants to run every 10 ms. Beside it, on a one-thread executor, a hog
task loops for 300 ms: without any await; awaiting an async-channel that is always
ready; the same with yield_now() every 128 items; the spinning hog again with 2
threads. With --features tokio: the same loops on Tokio's current-thread runtime,
and a loop on a Tokio mpsc channel (which Tokio's coop budget can interrupt).

Reading the output:
- one 'ran ...' line per case as it finishes, with the ticker's worst gap;
- between them, on stderr, the watchdog (threshold 50 ms): 'watchdog: task hog-...
  has held thread main for N ms' is printed while the hog still runs, 'slow poll:
  task hog-... held its thread for N ms' once its poll returns. Each kind of task is
  warned about at most once a second, so every hog is named;
- the table: polls = polls of the hog task (1: it never gave the thread back);
  iterations = loop turns in 300 ms; ticks = ticker wake-ups while the hog ran
  (0: the ticker was stalled); max gap = the ticker's worst interval (10 ms when
  nothing is in its way, about 300 ms when stalled); then the verdict.
docs/scheduling.md explains the figures.
";

fn main() {
    args::help_or_run(NAME, HELP);
    chatnode::logging::init();
    stats::set_slow_poll_threshold(SLOW_POLL);
    let _watchdog = stats::Watchdog::start();

    println!(
        "A ticker wants to run every {} ms; beside it a hog task loops for {} ms.",
        TICK.as_millis(),
        HOG_FOR.as_millis()
    );
    println!(
        "Watchdog on, slow-poll threshold {} ms (its warnings go to stderr).\n",
        SLOW_POLL.as_millis()
    );

    let mut cases: Vec<Box<dyn Fn() -> Outcome>> = vec![
        Box::new(|| run_smol(1, Hog::Spin)),
        Box::new(|| run_smol(1, Hog::AsyncChannel)),
        Box::new(|| run_smol(1, Hog::Yielding)),
        Box::new(|| run_smol(2, Hog::Spin)),
    ];
    #[cfg(feature = "tokio")]
    {
        cases.push(Box::new(|| run_smol(1, Hog::TokioMpsc)));
        cases.push(Box::new(|| run_tokio(Hog::Spin)));
        cases.push(Box::new(|| run_tokio(Hog::AsyncChannel)));
        cases.push(Box::new(|| run_tokio(Hog::Yielding)));
        cases.push(Box::new(|| run_tokio(Hog::TokioMpsc)));
    }
    let mut outcomes = Vec::new();
    for case in &mut cases {
        let o = case();
        // Stdout is flushed per line; the watchdog's stderr lines land between the rows.
        println!(
            "ran {:<22} {:<40} -> ticker max gap {}",
            o.runtime,
            o.hog.describe(),
            ms(o.max_gap())
        );
        outcomes.push(o);
    }

    println!();
    println!(
        "{:<22} {:<40} {:>6} {:>10} {:>6} {:>9}",
        "runtime", "hog loop", "polls", "iterations", "ticks", "max gap"
    );
    for o in &outcomes {
        print_row(o);
    }
    println!("(polls: of the hog task; ticks: ticker wake-ups while the hog ran; max gap: the");
    println!("ticker's worst interval, 10 ms when nothing is in its way)");
    println!();
    println!("What happened:");
    println!(
        "- smol has no budget: a hog that never returns Pending keeps the only thread for its"
    );
    println!("  whole run (1 poll), so the ticker waits ~300 ms; awaiting always-ready futures is");
    println!("  no different from not awaiting at all. The watchdog named the hog while it ran.");
    println!(
        "- yield_now() every 128 items gives the thread back: many short polls, ticks on time."
    );
    println!("- With 2 threads the spinning hog takes one thread; the ticker runs on the other.");
    #[cfg(feature = "tokio")]
    {
        println!(
            "- Tokio's budget (128 operations on Tokio resources per poll) makes the tokio mpsc"
        );
        println!(
            "  loop return Pending now and then, so the ticker keeps ticking on current_thread."
        );
        println!(
            "  The same mpsc loop on smol is not preempted: the budget is the runtime's, not the"
        );
        println!(
            "  channel's. async-channel and the pure-CPU loop are not preempted on Tokio either:"
        );
        println!(
            "  the budget only works through Tokio's own resources, and nothing preempts a poll."
        );
    }
    #[cfg(not(feature = "tokio"))]
    println!("- Run with --features tokio to see what Tokio's coop budget does and does not save.");
}
