//! Starting the history store: open and check the database on the blocking pool, spawn the
//! writer, and hand the broker its two ends ([`HistoryHooks`]).
//!
//! Without the `history` feature this only says, once, that a configured history is ignored.

use std::io;

use super::HistoryConfig;
use crate::broker::HistoryHooks;
use crate::rt::Runtime;

/// The broker's hooks and the writer's task (await it after the broker ends: it commits what
/// is left). `(None, None)` when history is off. An unusable database is an error naming the
/// file and what to do.
#[cfg(feature = "history")]
pub(super) async fn start<R: Runtime>(
    rt: &R,
    config: &HistoryConfig,
) -> io::Result<(Option<HistoryHooks>, Option<R::Task<crate::store::Store>>)> {
    use crate::broker::history::HistorySink;
    use crate::store::{writer, Reader, Store};

    let Some(path) = config.path.clone() else {
        return Ok((None, None));
    };
    let opened = rt
        .unblock(move || Store::open(&path).and_then(|s| Ok((Reader::open(s.path())?, s))))
        .await;
    let (reader, store) = opened.map_err(io::Error::from)?;
    let (count, store) = rt
        .unblock(move || (store.count().unwrap_or(0), store))
        .await;
    log::info!(
        "history: {} ({count} records, schema version {}); commits every {} records or {:?}",
        store.path().display(),
        crate::store::SCHEMA_VERSION,
        config.batch_max,
        config.interval
    );
    let (sink, queue) = HistorySink::bounded(config.queue);
    let sink = sink.commit_at(config.batch_max);
    let writer_config = writer::WriterConfig {
        batch_max: config.batch_max,
        interval: config.interval,
        max_age: config.max_age,
        max_bytes: config.max_bytes,
        commit_delay: config.commit_delay,
        ..writer::WriterConfig::default()
    };
    let counters = sink.counters().clone();
    let task = rt.spawn(
        "history-writer".into(),
        writer::run(rt.clone(), store, queue, writer_config, counters),
    );
    let hooks = HistoryHooks {
        sink,
        reader: std::sync::Arc::new(reader),
    };
    Ok((Some(hooks), Some(task)))
}

/// Without the `history` feature: nothing to start.
#[cfg(not(feature = "history"))]
pub(super) async fn start<R: Runtime>(
    _rt: &R,
    config: &HistoryConfig,
) -> io::Result<(Option<HistoryHooks>, Option<R::Task<()>>)> {
    if let Some(path) = &config.path {
        log::warn!(
            "history: this build has no history (feature `history` off); {} is not used",
            path.display()
        );
    }
    Ok((None, None))
}
