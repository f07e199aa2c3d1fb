//! How many history records one writer stores per second, through the node's own writer
//! (`store::writer::run`: batches by count and time, each commit a blocking-pool job), on our
//! executor and, with `--features tokio`, on Tokio; and how many blocking-pool threads it used.
//!
//! ```sh
//! cargo run --release --example store_bench                    # our executor
//! cargo run --release --example store_bench --features tokio   # then Tokio too
//! ```
//!
//! Each run pushes RECORDS channel messages (64-byte texts, as loadgen's fanout sends) into a
//! queue big enough to hold them all, lets the writer drain it with the node's default batch
//! and interval (500 ms), and times from the first push to the last commit. The writer takes
//! whatever waits when it commits, so here the batches are large: the figure is SQLite's
//! insert rate with few commits. The database is
//! a fresh file in the system's temporary directory (so the figure is that disk's, with WAL and
//! `synchronous=NORMAL`), removed afterwards. Everything stops by itself.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatnode::broker::history::{HistorySink, Record, RecordKind};
use chatnode::rt::Runtime;
use chatnode::store::{writer, Store};

const RECORDS: usize = 200_000;

fn records() -> Vec<Record> {
    let text = "x".repeat(64);
    (0..RECORDS)
        .map(|i| {
            let line: chatnode::broker::Line = Arc::from(
                format!(
                    ":sender{}!s@127.0.0.1 PRIVMSG #bench :{i:08} {text}\r\n",
                    i % 10
                )
                .into_bytes(),
            );
            Record::new("#bench", "#bench", RecordKind::Message, &line)
        })
        .collect()
}

/// Threads of this process now, from /proc.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |tasks| tasks.count())
}

/// Runs the writer on `rt` over a fresh file; returns (records/s, commits, seconds, threads
/// the run added: the blocking pool's, as the runtime's own threads exist before).
async fn bench<R: Runtime>(rt: R, label: &str) -> (f64, u64, f64, usize) {
    let before = threads();
    let dir = std::env::temp_dir().join(format!(
        "chatnode-store-bench-{label}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("history.sqlite3");
    let store = rt
        .unblock(move || Store::open(&path))
        .await
        .expect("open the database");
    let (sink, queue) = HistorySink::bounded(RECORDS);
    let sink = sink.commit_at(writer::WriterConfig::default().batch_max);
    let counters = sink.counters().clone();
    let batch = records();
    let task = rt.spawn(
        "history-writer".into(),
        writer::run(
            rt.clone(),
            store,
            queue,
            writer::WriterConfig::default(),
            counters.clone(),
        ),
    );
    let start = Instant::now();
    for r in batch {
        sink.record(r);
    }
    drop(sink); // closes the queue: the writer stores the rest and ends
    let _ = task.await;
    let secs = start.elapsed().as_secs_f64();
    // Idle blocking threads linger (smol's for 500 ms, Tokio's for 10 s): still countable here.
    let pool = threads().saturating_sub(before);
    let _ = std::fs::remove_dir_all(&dir);
    let written = counters.written.load(Ordering::Relaxed);
    assert_eq!(written as usize, RECORDS, "every record stored");
    (
        written as f64 / secs,
        counters.commits.load(Ordering::Relaxed),
        secs,
        pool,
    )
}

fn report(runtime: &str, (rate, commits, secs, pool_threads): (f64, u64, f64, usize)) {
    println!(
        "{runtime:<8} {RECORDS} records in {secs:.2} s: {rate:>9.0} records/s, {commits} commits \
         ({:.0} records each), {pool_threads} blocking-pool thread(s) started",
        RECORDS as f64 / commits as f64
    );
}

/// CPU time this thread has used, from /proc/thread-self/schedstat (nanoseconds, precise).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// `Store::write` called directly on this thread, `batch` records per transaction: the CPU
/// one stored record costs, whatever else the machine is doing (wall time would count the
/// other processes' turns too).
fn direct(batch: usize) {
    let dir = std::env::temp_dir().join(format!(
        "chatnode-store-bench-direct-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut store = Store::open(&dir.join("history.sqlite3")).expect("open the database");
    let records = records();
    let cpu = thread_cpu();
    for chunk in records.chunks(batch) {
        store.write(chunk).expect("write");
    }
    let used = thread_cpu() - cpu;
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "direct   {RECORDS} records, {batch:>4} per transaction: {:.2} µs CPU per record",
        used.as_secs_f64() * 1e6 / RECORDS as f64
    );
}

fn main() {
    for batch in [256, 1024, 4096] {
        direct(batch);
    }
    let batch = writer::WriterConfig::default().batch_max;
    println!("one writer, a commit per {batch} waiting records or 500 ms, WAL, synchronous=NORMAL, temp dir:");
    let smol = chatnode::rt::smol::SmolRuntime::new();
    let result = smol.block_on(1, bench(smol.clone(), "smol"));
    report("smol", result);
    #[cfg(feature = "tokio")]
    {
        use chatnode::rt::tokio::TokioRuntime;
        let runtime = TokioRuntime::build(1, None).expect("tokio runtime");
        let rt = TokioRuntime::new(runtime.handle().clone());
        let result = runtime.block_on(bench(rt, "tokio"));
        report("tokio", result);
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
}
