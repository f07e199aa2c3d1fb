//! A deterministic, seedable fuzzer for the parser and the broker (stable Rust, no extra
//! dependencies).
//!
//! ```text
//! cargo run --release --example fuzz -- --cases 1000000 --seed 1
//! cargo run --release --example fuzz -- --cases 1 --seed 1 --from 4242   # replay case 4242
//! ```
//!
//! Two cases in three feed random bytes through the node's framing and parser (and serialize
//! every parsed message again); one in three drives the broker, through the in-process harness,
//! with a random sequence of commands from 2 to 4 clients, checking after every step that the
//! nick table and the channel member lists agree, that every line written is at most 512 bytes
//! plus tags and ends in CRLF with no CR, LF or NUL inside, and that no client got a channel's
//! traffic without being in the channel. A panic is a failure. The first failure is shrunk and
//! printed with its seed and case number; the exit code is then 1.
//!
//! The engine is `examples/shared/fuzz.rs`; `tests/fuzz_slice.rs` runs a fixed-seed slice in CI.

#[path = "shared/fuzz.rs"]
mod fuzz;

use std::time::{Duration, Instant};

const USAGE: &str = "usage: fuzz [--cases N] [--seed S] [--from K]
  --cases N   cases to run (default 100000)
  --seed S    the run's seed (default 1); case K of a seed is the same on every machine
  --from K    first case number (default 0), to replay one case: --from K --cases 1
  --max-seconds T   stop after T seconds even if fewer cases ran (the summary says how many)";

fn main() {
    let (mut cases, mut seed, mut from) = (100_000u64, 1u64, 0u64);
    let mut max_seconds = u64::MAX;
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
            "--cases" => cases = value("--cases"),
            "--seed" => seed = value("--seed"),
            "--from" => from = value("--from"),
            "--max-seconds" => max_seconds = value("--max-seconds"),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("fuzz: unknown argument '{other}'\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    // Panics are caught and reported as failures; the default hook would print each one,
    // many times over while a failure is shrunk.
    std::panic::set_hook(Box::new(|_| {}));
    let start = Instant::now();
    let mut report = fuzz::Report::default();
    let mut next_progress = start + Duration::from_secs(10);
    let mut n = from;
    let stop_at = start + Duration::from_secs(max_seconds.min(100 * 365 * 86400));
    while n < from + cases && report.failure.is_none() && Instant::now() < stop_at {
        let to = (n + 1_000).min(from + cases);
        fuzz::run(seed, n, to, &mut report);
        n = to;
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(10);
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "fuzz: {} cases in {secs:.0} s ({:.0}/s), {} command shapes",
                report.cases,
                report.cases as f64 / secs,
                report.shapes.len()
            );
        }
    }
    let _ = std::panic::take_hook();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fuzz: seed {seed}, cases {from}..{}: {} cases ({} broker sequences, {} parser inputs) in \
         {secs:.1} s ({:.0} cases/s); {} distinct command shapes (command, parameter count)",
        from + report.cases,
        report.cases,
        report.broker_cases,
        report.proto_cases,
        report.cases as f64 / secs.max(1e-9),
        report.shapes.len()
    );
    if let Some(failure) = report.failure {
        println!("FAILED: {failure}");
        std::process::exit(1);
    }
    println!("no failures");
}
