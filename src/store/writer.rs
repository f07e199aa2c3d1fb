//! The history writer: one task that drains the broker's queue of records and commits them in
//! batches, each commit a job on the blocking pool.
//!
//! A batch is committed when it holds [`WriterConfig::batch_max`] records, or when
//! [`WriterConfig::interval`] has passed since its first record arrived, whichever comes first.
//! So a record relayed at time t is on disk by t + interval + one commit: that is what
//! `kill -9` can lose. While one commit runs, new records wait in the queue (bounded: the broker
//! counts what does not fit, see [`crate::broker::history::HistorySink`]).
//!
//! The task ends when the queue is closed and empty (the broker is gone: shutdown). It commits
//! what it holds first, so after SIGTERM every record the broker queued is on disk. Dropping the
//! task (cancelling it) loses the batch being gathered; the server never does that, it awaits
//! the task after the broker stops.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;

use super::Store;
use crate::broker::history::{HistoryCounters, Record, WriterEnd};
use crate::rt::Runtime;

/// How the writer batches and prunes.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Commit as soon as this many records wait (the sink asks, see
    /// [`crate::broker::history::HistorySink::commit_at`]).
    pub batch_max: usize,
    /// Commit at most this long after a batch's first record arrived.
    pub interval: Duration,
    /// Delete records older than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest records while the database holds more than this many bytes.
    pub max_bytes: Option<u64>,
    /// How often retention runs (and once at start).
    pub prune_every: Duration,
    /// Sleep this long in every commit: plays a slow SD card in tests. Zero on a real node.
    pub commit_delay: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_max: 256,
            interval: Duration::from_millis(500),
            max_age: None,
            max_bytes: None,
            prune_every: Duration::from_secs(3600),
            commit_delay: Duration::ZERO,
        }
    }
}

/// Drains `records` into `store` until the queue is closed and empty; returns the store.
pub async fn run<R: Runtime>(
    rt: R,
    mut store: Store,
    queue: WriterEnd,
    config: WriterConfig,
    counters: Arc<HistoryCounters>,
) -> Store {
    let mut next_prune = Instant::now();
    loop {
        if Instant::now() >= next_prune && (config.max_age.is_some() || config.max_bytes.is_some())
        {
            store = prune(&rt, store, &config, &counters).await;
            next_prune = Instant::now() + config.prune_every;
        }
        let Some(batch) = gather(&rt, &queue, &config).await else {
            break;
        };
        store = commit(&rt, store, batch, &config, &counters).await;
    }
    // The queue is closed and empty: leave a complete main file behind.
    let (store, result) = rt
        .unblock(move || {
            let r = store.checkpoint();
            (store, r)
        })
        .await;
    if let Err(e) = result {
        log::warn!(
            "history: final checkpoint of {} failed: {e}",
            store.path().display()
        );
    }
    store
}

/// Waits for a first record, then for the end of the interval since it arrived, a request
/// to commit now (a token on `flush`: a read waits, or [`WriterConfig::batch_max`] records
/// do), or the broker's end (`flush` closed); then takes everything queued. `None`: the queue
/// is closed and empty.
///
/// Records are not received one by one while the batch gathers: a record queued meanwhile
/// wakes nobody (it is one push on the queue), so the writer wakes about twice per batch,
/// not once per message.
async fn gather<R: Runtime>(
    rt: &R,
    queue: &WriterEnd,
    config: &WriterConfig,
) -> Option<Vec<Record>> {
    let records = &queue.records;
    let first = records.recv().await.ok()?;
    if records.len() + 1 < config.batch_max {
        let interval = rt.sleep(config.interval);
        let asked = async {
            let _ = queue.flush.recv().await;
        };
        future::or(interval, asked).await;
    }
    // Tokens first, then records: a token sent after this drain stays for the next batch,
    // and every record queued before a drained token is taken below.
    while queue.flush.try_recv().is_ok() {}
    let mut batch = Vec::with_capacity(records.len() + 1);
    batch.push(first);
    batch.extend(std::iter::from_fn(|| records.try_recv().ok()));
    Some(batch)
}

/// Commits `batch` on the blocking pool. A failed commit loses the batch: counted and logged.
async fn commit<R: Runtime>(
    rt: &R,
    mut store: Store,
    batch: Vec<Record>,
    config: &WriterConfig,
    counters: &HistoryCounters,
) -> Store {
    let n = batch.len() as u64;
    let delay = config.commit_delay;
    let (store, result) = rt
        .unblock(move || {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            let r = store.write(&batch);
            (store, r)
        })
        .await;
    match result {
        Ok(()) => {
            counters.written.fetch_add(n, Ordering::Relaxed);
            counters.commits.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            let failed = counters.failed.fetch_add(n, Ordering::Relaxed) + n;
            log::error!(
                "history: {n} records not stored in {} ({failed} so far): {e}",
                store.path().display()
            );
        }
    }
    counters.mark_processed(n);
    store
}

/// Runs retention on the blocking pool.
async fn prune<R: Runtime>(
    rt: &R,
    mut store: Store,
    config: &WriterConfig,
    counters: &HistoryCounters,
) -> Store {
    let (age, bytes) = (config.max_age, config.max_bytes);
    let (store, result) = rt
        .unblock(move || {
            let r = store.prune(age, bytes);
            (store, r)
        })
        .await;
    match result {
        Ok(0) => {}
        Ok(n) => {
            counters.pruned.fetch_add(n, Ordering::Relaxed);
            log::info!("history: retention deleted {n} records");
        }
        Err(e) => log::warn!("history: retention failed: {e}"),
    }
    store
}
