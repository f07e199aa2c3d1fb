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
    /// Commit when a batch has this many records.
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

/// Waits for a first record, then gathers more until the batch is full, the interval since the
/// first one has passed, a read asks for a flush, or the queue is closed. `None`: closed and
/// empty.
async fn gather<R: Runtime>(
    rt: &R,
    queue: &WriterEnd,
    config: &WriterConfig,
) -> Option<Vec<Record>> {
    let records = &queue.records;
    let first = records.recv().await.ok()?;
    let mut batch = Vec::with_capacity(config.batch_max.min(1024));
    batch.push(first);
    let mut deadline = Box::pin(rt.sleep(config.interval));
    loop {
        // Take what is already there without touching the timer.
        while batch.len() < config.batch_max {
            match records.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        if batch.len() >= config.batch_max {
            return Some(batch);
        }
        let next = future::or(
            async { Wake::Record(records.recv().await.ok()) },
            future::or(
                async {
                    (&mut deadline).await;
                    Wake::Interval
                },
                async {
                    let _ = queue.flush.recv().await;
                    Wake::Flush
                },
            ),
        )
        .await;
        match next {
            Wake::Record(Some(r)) => batch.push(r),
            Wake::Record(None) | Wake::Interval => return Some(batch),
            Wake::Flush => {
                // A read waits for everything queued before it asked: take all of it.
                batch.extend(std::iter::from_fn(|| records.try_recv().ok()));
                return Some(batch);
            }
        }
    }
}

/// What ended a wait in [`gather`].
enum Wake {
    /// A record, or `None`: the queue is closed.
    Record(Option<Record>),
    /// The batch's interval passed.
    Interval,
    /// A read asked for a commit now.
    Flush,
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
