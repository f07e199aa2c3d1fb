//! Blocking work: inline, it stalls every task on its thread; on the blocking pool, it does not.
//!
//! ```text
//! cargo run --example blocking                    # our executor (async-executor + blocking)
//! cargo run --example blocking --features tokio   # the same, then on Tokio
//! ```
//!
//! A ticker task wants to run every 10 ms on a one-thread executor. 100 ms in, another task does
//! 300 ms of blocking work (`std::thread::sleep`, standing in for a file read, a DNS lookup or a
//! password hash), either inline or through the runtime's blocking pool (`Runtime::unblock`:
//! `blocking::unblock` on our executor, `spawn_blocking` on Tokio). The ticker's intervals show
//! the difference. Then the pools themselves: 8 jobs of 100 ms on the default pool, and on a
//! pool of 2 threads (`BLOCKING_MAX_THREADS=2` for the `blocking` crate, read once at its first
//! use, so the example runs that part in a child process; `Builder::max_blocking_threads(2)` on
//! Tokio).
//!
//! See docs/blocking.md for the explanation and the figures measured on this machine.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatnode::rt::smol::SmolRuntime;
use chatnode::rt::Runtime;

/// How often the ticker wants to run.
pub const TICK: Duration = Duration::from_millis(10);
/// How long the blocking call blocks.
pub const BLOCK_FOR: Duration = Duration::from_millis(300);
/// Jobs and job length in the pool-size part.
pub const POOL_JOBS: usize = 8;
/// How long each pool job blocks.
pub const POOL_JOB: Duration = Duration::from_millis(100);

/// Where the blocking call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Called directly in the async task: the executor thread blocks.
    Inline,
    /// Handed to the blocking pool with `Runtime::unblock`.
    Unblock,
}

/// What the ticker saw during one run.
#[derive(Clone, Debug)]
pub struct Gaps {
    /// Intervals between the ticker's wake-ups.
    pub gaps: Vec<Duration>,
    /// Times the ticker ran while the blocking call was blocking.
    pub ticks_during_block: usize,
}

impl Gaps {
    /// The `q`-quantile (0.0..=1.0) of the intervals, nearest rank.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut v = self.gaps.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    /// The worst interval.
    pub fn max(&self) -> Duration {
        self.gaps.iter().copied().max().unwrap_or_default()
    }
}

/// Ticks every [`TICK`] for `run_for`; returns its start and every wake-up time.
pub async fn ticker<R: Runtime>(rt: R, run_for: Duration) -> Vec<Instant> {
    let start = Instant::now();
    let mut times = vec![start];
    while start.elapsed() < run_for {
        rt.sleep(TICK).await;
        times.push(Instant::now());
    }
    times
}

/// The blocking call; returns when it started and ended.
fn block() -> (Instant, Instant) {
    let started = Instant::now();
    std::thread::sleep(BLOCK_FOR);
    (started, Instant::now())
}

/// One run: the ticker for 600 ms, the blocking call started 100 ms in.
pub async fn scenario<R: Runtime>(rt: R, mode: Mode) -> Gaps {
    let ticker = rt.spawn(
        "ticker".into(),
        ticker(rt.clone(), BLOCK_FOR + Duration::from_millis(300)),
    );
    rt.sleep(Duration::from_millis(100)).await;
    let worker = {
        let rt = rt.clone();
        rt.clone().spawn("blocker".into(), async move {
            match mode {
                Mode::Inline => block(),
                Mode::Unblock => rt.unblock(block).await,
            }
        })
    };
    let now = Instant::now();
    let (started, ended) = worker.await.unwrap_or((now, now));
    let times = ticker.await.unwrap_or_default();
    Gaps {
        gaps: times.windows(2).map(|w| w[1] - w[0]).collect(),
        ticks_during_block: times.iter().filter(|&&t| t > started && t < ended).count(),
    }
}

/// Runs [`scenario`] on our executor with one thread.
pub fn run_smol(mode: Mode) -> Gaps {
    let rt = SmolRuntime::new();
    rt.block_on(1, scenario(rt.clone(), mode))
}

/// Runs [`scenario`] on Tokio's current-thread runtime.
#[cfg(feature = "tokio")]
pub fn run_tokio(mode: Mode) -> Gaps {
    use chatnode::rt::tokio::TokioRuntime;
    let runtime = TokioRuntime::build(1, None).expect("tokio runtime");
    let rt = TokioRuntime::new(runtime.handle().clone());
    runtime.block_on(scenario(rt, mode))
}

/// What a pool run measured.
#[derive(Clone, Copy, Debug)]
pub struct PoolRun {
    /// Wall time for all jobs.
    pub took: Duration,
    /// Most jobs seen running at the same time (= threads the pool used).
    pub max_concurrent: usize,
}

/// A job that blocks for [`POOL_JOB`], counting how many run at once.
fn pool_job(running: &AtomicUsize, peak: &AtomicUsize) {
    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
    peak.fetch_max(now, Ordering::SeqCst);
    std::thread::sleep(POOL_JOB);
    running.fetch_sub(1, Ordering::SeqCst);
}

/// Starts [`POOL_JOBS`] jobs at once through `rt.unblock` and waits for all of them.
pub async fn pool_scenario<R: Runtime>(rt: R) -> PoolRun {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let jobs: Vec<_> = (0..POOL_JOBS)
        .map(|_| {
            let (running, peak) = (running.clone(), peak.clone());
            rt.unblock(move || pool_job(&running, &peak))
        })
        .collect();
    for job in jobs {
        job.await;
    }
    PoolRun {
        took: start.elapsed(),
        max_concurrent: peak.load(Ordering::SeqCst),
    }
}

/// The pool run on our executor, on the `blocking` crate's process-wide pool as it is configured.
pub fn smol_pool_run() -> PoolRun {
    let rt = SmolRuntime::new();
    rt.block_on(1, pool_scenario(rt.clone()))
}

/// The pool run on a Tokio current-thread runtime with `max_blocking_threads` (None: default).
#[cfg(feature = "tokio")]
pub fn tokio_pool_run(max_blocking_threads: Option<usize>) -> PoolRun {
    use chatnode::rt::tokio::TokioRuntime;
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if let Some(n) = max_blocking_threads {
        builder.max_blocking_threads(n);
    }
    let runtime = builder.build().expect("tokio runtime");
    let rt = TokioRuntime::new(runtime.handle().clone());
    runtime.block_on(pool_scenario(rt))
}

/// Threads of this process whose name starts with `prefix` (Linux: /proc/self/task).
pub fn threads_named(prefix: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn print_gaps(runtime: &str, mode: Mode, g: &Gaps) {
    let what = match mode {
        Mode::Inline => "sleep(300 ms) inline in a task",
        Mode::Unblock => match runtime {
            "smol" => "sleep(300 ms) via blocking::unblock",
            _ => "sleep(300 ms) via spawn_blocking",
        },
    };
    println!(
        "{:<22} {:<38} {:>5} {:>7} {:>9} {:>9} {:>9}",
        if runtime == "smol" {
            "smol, 1 thread"
        } else {
            "tokio, current_thread"
        },
        what,
        g.gaps.len(),
        g.ticks_during_block,
        ms(g.quantile(0.5)),
        ms(g.quantile(0.99)),
        ms(g.max())
    );
}

fn print_pool(label: &str, run: &PoolRun) {
    println!(
        "{label:<58} took {:>9}, at most {} jobs at once",
        ms(run.took),
        run.max_concurrent
    );
}

#[path = "shared/args.rs"]
mod args;

const NAME: &str = "blocking";

/// `--help`: what the example shows and how to read its output.
const HELP: &str = "\
blocking: blocking work done inline stalls every task on its thread; on the blocking
pool it does not. And what the pool's size limit does.

USAGE: cargo run --example blocking [--features tokio]

Part 1: a ticker task wants to run every 10 ms on a one-thread executor; 100 ms in,
another task blocks for 300 ms (a sleep standing in for a file read or a password
hash), inline or through the blocking pool (blocking::unblock on our executor,
spawn_blocking on Tokio). The table: ticks = ticker wake-ups, during = those while
the call blocked (0: stalled), then the ticker's intervals (p50, p99, max; 10 ms
when nothing is in its way).

Part 2: 8 jobs of 100 ms started at once, on the default pool and on a pool of 2
threads ('took' is the time for all 8, 'at most N jobs at once' the parallelism).
The smol pool of 2 runs in a child process (BLOCKING_MAX_THREADS is read once per
process). The 'blocking-N threads' lines are about this process's smol pool only
(the default one): how many threads it started, and how many are still alive after
1.5 s idle.
docs/blocking.md explains the figures.
";

fn main() {
    // The child: report one pool run with whatever BLOCKING_MAX_THREADS the parent set.
    if std::env::args().nth(1).as_deref() == Some("--pool-child") {
        let run = smol_pool_run();
        println!("{} {}", run.took.as_micros(), run.max_concurrent);
        return;
    }
    args::help_or_run(NAME, HELP);

    println!(
        "A ticker wants to run every {} ms on a one-thread executor; 100 ms in, another task",
        TICK.as_millis()
    );
    println!(
        "blocks for {} ms. The ticker's wake-ups (\"during\": while the call blocked) and the\n\
         intervals between them:\n",
        BLOCK_FOR.as_millis()
    );
    println!(
        "{:<22} {:<38} {:>5} {:>7} {:>9} {:>9} {:>9}",
        "runtime", "blocking call", "ticks", "during", "p50", "p99", "max"
    );
    for mode in [Mode::Inline, Mode::Unblock] {
        print_gaps("smol", mode, &run_smol(mode));
    }
    #[cfg(feature = "tokio")]
    for mode in [Mode::Inline, Mode::Unblock] {
        print_gaps("tokio", mode, &run_tokio(mode));
    }
    println!();
    println!("=> inline, the blocking call holds the only executor thread: no task runs, the");
    println!("   ticker's worst interval is the whole call. On the blocking pool the executor");
    println!("   thread stays free and the ticker keeps its 10 ms.");

    println!();
    println!(
        "Pool sizes: {POOL_JOBS} jobs of {} ms each, all started at once",
        POOL_JOB.as_millis()
    );
    let env = std::env::var("BLOCKING_MAX_THREADS").ok();
    let smol_default = smol_pool_run();
    print_pool(
        &format!(
            "smol, blocking pool (BLOCKING_MAX_THREADS {})",
            env.as_deref().unwrap_or("unset: 500")
        ),
        &smol_default,
    );
    println!(
        "{:<58} {} blocking-N threads in this pool right after the jobs",
        "",
        threads_named("blocking-")
    );
    std::thread::sleep(Duration::from_millis(1500));
    println!(
        "{:<58} {} of them still alive after 1.5 s idle",
        "",
        threads_named("blocking-")
    );
    let child = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .arg("--pool-child")
            .env("BLOCKING_MAX_THREADS", "2")
            .output()
    });
    match child.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()) {
        Ok(out) => {
            let mut it = out
                .split_whitespace()
                .map(|v| v.parse::<u64>().unwrap_or(0));
            let (took, peak) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            print_pool(
                "smol, child process with BLOCKING_MAX_THREADS=2",
                &PoolRun {
                    took: Duration::from_micros(took),
                    max_concurrent: peak as usize,
                },
            );
        }
        Err(e) => println!("could not run the child process: {e}"),
    }
    #[cfg(feature = "tokio")]
    {
        print_pool(
            "tokio, default max_blocking_threads (512)",
            &tokio_pool_run(None),
        );
        print_pool(
            "tokio, Builder::max_blocking_threads(2)",
            &tokio_pool_run(Some(2)),
        );
    }
    println!();
    println!("=> a pool of 2 runs 8 jobs of 100 ms in 4 rounds (~400 ms); the default pool runs");
    println!("   them side by side (~100 ms). Jobs past the limit wait in the pool's queue: the");
    println!("   limit bounds threads (memory, on a small board), not work. The blocking crate");
    println!("   (1.7) starts threads on demand and keeps idle ones unless the pool is over its");
    println!("   limit; Tokio lets an idle blocking thread go after thread_keep_alive (10 s).");
}
