//! A deterministic, seedable fuzzer for the parser and the broker (stable Rust, no extra
//! dependencies).
//!
//! ```text
//! cargo run --release --example fuzz -- --cases 1000000 --seed 1 --jobs 2
//! cargo run --release --example fuzz -- --cases 1 --seed 1 --from 4242   # replay case 4242
//! ```
//!
//! **What a case is.** Case `K` of seed `S` is one of two things, decided by `K`:
//!
//! - one case in three is a **broker case**: a fresh broker (in the in-process harness) and 2 to
//!   4 simulated clients, which register (mostly) and join a channel (mostly), then send a
//!   random sequence of 4 to 27 steps (commands, several lines at once, random bytes,
//!   reconnects, hang-ups, moves of the clock). After every line handled and every other step,
//!   the fuzzer checks that the nick table and the channel member lists agree, that every line
//!   the node wrote is at most 512 bytes plus tags and ends in CRLF with no CR, LF or NUL inside,
//!   and that no client got a channel's traffic without being in the channel (before or after
//!   that line). A panic is a failure.
//! - the other two are **parser cases**: up to 700 random bytes (or up to 4 generated command
//!   lines) fed in random chunks through the node's line framing and parser; every parsed
//!   message is serialized again and checked for CR, LF and NUL.
//!
//! The first failure is shrunk and printed with its seed and case number; the exit code is
//! then 1.
//!
//! **Jobs.** `--jobs N` runs N threads. They take blocks of case numbers in order from one
//! counter, and case `K`'s input depends only on `(S, K)`, so a run covers exactly the cases
//! `from..to` it reports, whatever N is and however the threads are scheduled, and any case can
//! be replayed alone with `--from K --cases 1`.
//!
//! The engine is `examples/shared/fuzz.rs`; `tests/fuzz_slice.rs` runs a fixed-seed slice in CI.

#[path = "shared/fuzz.rs"]
mod fuzz;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: fuzz [--cases N] [--seed S] [--from K] [--jobs J] [--max-seconds T]
  --cases N   cases to run (default 100000)
  --seed S    the run's seed (default 1); case K of a seed is the same on every machine
  --from K    first case number (default 0), to replay one case: --from K --cases 1
  --jobs J    threads (default 1); the cases run are the same for any J
  --max-seconds T   stop after T seconds even if fewer cases ran (the summary says which)";

/// Cases a thread takes from the counter at a time.
const BLOCK: u64 = 1_000;

struct Args {
    cases: u64,
    seed: u64,
    from: u64,
    jobs: usize,
    max_seconds: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        cases: 100_000,
        seed: 1,
        from: 0,
        jobs: 1,
        max_seconds: 100 * 365 * 86400,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> u64 {
            let v = args.next().unwrap_or_default();
            v.replace('_', "").parse().unwrap_or_else(|_| {
                eprintln!("fuzz: {name} needs a number, got '{v}'\n{USAGE}");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--cases" => a.cases = value("--cases"),
            "--seed" => a.seed = value("--seed"),
            "--from" => a.from = value("--from"),
            "--jobs" => a.jobs = value("--jobs").clamp(1, 64) as usize,
            "--max-seconds" => a.max_seconds = value("--max-seconds").min(a.max_seconds),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => {
                eprintln!("fuzz: unknown argument '{other}'\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    a
}

/// What the threads share: the next case number to hand out, the cases done, and whether to
/// stop.
struct Shared {
    next: AtomicU64,
    end: u64,
    done: AtomicU64,
    stop: AtomicBool,
    stop_at: Instant,
}

impl Shared {
    /// The next block of cases, or `None` when the run is over.
    fn claim(&self) -> Option<(u64, u64)> {
        if self.stop.load(Ordering::Relaxed) || Instant::now() >= self.stop_at {
            return None;
        }
        let from = self.next.fetch_add(BLOCK, Ordering::Relaxed);
        (from < self.end).then(|| (from, (from + BLOCK).min(self.end)))
    }
}

/// One thread: blocks of cases until the run is over (all cases handed out, a failure, or the
/// time limit). Returns what it found.
fn job(seed: u64, shared: &Shared) -> fuzz::Report {
    let mut report = fuzz::Report::default();
    while let Some((from, to)) = shared.claim() {
        let before = report.cases;
        fuzz::run(seed, from, to, &mut report);
        shared
            .done
            .fetch_add(report.cases - before, Ordering::Relaxed);
        if report.failure.is_some() {
            shared.stop.store(true, Ordering::Relaxed);
        }
    }
    report
}

fn main() {
    let args = parse_args();
    // Panics are caught and reported as failures; the default hook would print each one,
    // many times over while a failure is shrunk.
    std::panic::set_hook(Box::new(|_| {}));
    let start = Instant::now();
    let shared = Shared {
        next: AtomicU64::new(args.from),
        end: args.from.saturating_add(args.cases),
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        stop_at: start + Duration::from_secs(args.max_seconds),
    };
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs {
            s.spawn(|| {
                let r = job(args.seed, &shared);
                reports.lock().unwrap().push(r);
            });
        }
        // Progress every 10 s until every job is done.
        let mut next_progress = start + Duration::from_secs(10);
        while reports.lock().unwrap().len() < args.jobs {
            std::thread::sleep(Duration::from_millis(100));
            if Instant::now() >= next_progress {
                next_progress += Duration::from_secs(10);
                let secs = start.elapsed().as_secs_f64();
                let done = shared.done.load(Ordering::Relaxed);
                eprintln!(
                    "fuzz: {done} cases in {secs:.0} s ({:.0}/s)",
                    done as f64 / secs
                );
            }
        }
    });
    let _ = std::panic::take_hook();
    let secs = start.elapsed().as_secs_f64();
    let mut total = fuzz::Report::default();
    let mut failures = Vec::new();
    for r in reports.into_inner().unwrap() {
        total.cases += r.cases;
        total.broker_cases += r.broker_cases;
        total.proto_cases += r.proto_cases;
        total.broker_time += r.broker_time;
        total.proto_time += r.proto_time;
        total.shapes.extend(r.shapes);
        failures.extend(r.failure);
    }
    // Every block handed out was finished, so the cases run are exactly from..to (unless a
    // failure stopped the others mid-way).
    let to = shared.next.load(Ordering::Relaxed).min(shared.end);
    println!(
        "fuzz: seed {}, cases {}..{to}: {} cases ({} broker sequences, {} parser inputs) in \
         {secs:.1} s ({:.0} cases/s, {} jobs); {} distinct command shapes (command, parameter \
         count)",
        args.seed,
        args.from,
        total.cases,
        total.broker_cases,
        total.proto_cases,
        total.cases as f64 / secs.max(1e-9),
        args.jobs,
        total.shapes.len()
    );
    println!(
        "fuzz: {:.1} us per broker sequence, {:.1} us per parser input (wall clock per thread)",
        total.broker_time.as_secs_f64() * 1e6 / total.broker_cases.max(1) as f64,
        total.proto_time.as_secs_f64() * 1e6 / total.proto_cases.max(1) as f64
    );
    if !failures.is_empty() {
        for failure in failures {
            println!("FAILED: {failure}");
        }
        std::process::exit(1);
    }
    println!("no failures");
}
