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
//! (256) and interval (500 ms), and times from the first push to the last commit. The database is
//! a fresh file in the system's temporary directory (so the figure is that disk's, with WAL and
//! `synchronous=NORMAL`), removed afterwards. Everything stops by itself.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

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

/// Threads of this process whose name starts with `prefix`, from /proc.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

/// Runs the writer on `rt` over a fresh file; returns (records/s, commits, seconds).
async fn bench<R: Runtime>(rt: R, label: &str) -> (f64, u64, f64) {
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
    let _ = std::fs::remove_dir_all(&dir);
    let written = counters.written.load(Ordering::Relaxed);
    assert_eq!(written as usize, RECORDS, "every record stored");
    (
        written as f64 / secs,
        counters.commits.load(Ordering::Relaxed),
        secs,
    )
}

fn report(runtime: &str, (rate, commits, secs): (f64, u64, f64), pool_threads: usize) {
    println!(
        "{runtime:<8} {RECORDS} records in {secs:.2} s: {rate:>9.0} records/s, {commits} commits \
         ({:.0} records each), {pool_threads} blocking-pool thread(s) seen",
        RECORDS as f64 / commits as f64
    );
}

fn main() {
    println!("one writer, batches of 256 or 500 ms, WAL, synchronous=NORMAL, temp dir:");
    let smol = chatnode::rt::smol::SmolRuntime::new();
    let result = smol.block_on(1, bench(smol.clone(), "smol"));
    report("smol", result, threads_named("blocking-"));
    #[cfg(feature = "tokio")]
    {
        use chatnode::rt::tokio::TokioRuntime;
        let runtime = TokioRuntime::build(1, None).expect("tokio runtime");
        let rt = TokioRuntime::new(runtime.handle().clone());
        let result = runtime.block_on(bench(rt, "tokio"));
        // A one-thread Tokio runtime runs on this thread; its blocking threads keep Tokio's
        // default name.
        let pool = threads_named("tokio-runtime");
        report("tokio", result, pool);
        runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    }
}
