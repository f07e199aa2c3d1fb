//! Log set-up for the binaries: a small logger behind the `log` facade, driven by `RUST_LOG`
//! (default `info`), one line per event, each naming the task it came from
//! (`[conn#7 127.0.0.1:50312]`).
//!
//! **`RUST_LOG`** takes env_logger's syntax, which this module implements itself (env_logger with
//! its timestamp and colour features cost about N KB of the board binary, see docs/embedded.md):
//! comma-separated directives, each `LEVEL` (every target), `TARGET=LEVEL` or `TARGET` (every
//! level of targets starting with `TARGET`; the longest matching one decides), optionally followed
//! by `/TEXT` to keep only messages containing `TEXT`. Levels are `off`, `error`, `warn`, `info`,
//! `debug`, `trace`, in any case. A directive that does not parse is reported on stderr
//! (`warning: invalid logging spec '...', ignoring it`) and skipped. For example
//! `RUST_LOG=warn,chatnode::server=debug`.
//!
//! A line is `2026-11-30T19:20:00.123Z INFO  [task] message`: the time in UTC to the
//! millisecond (RFC 3339), the level padded to five, the task's name when there is one.
//!
//! **Logging never blocks an executor thread.** A log line is formatted where it happens, then
//! handed to a bounded queue; one thread of its own (`chatnode-log`) writes the queue to stderr.
//! Writing to stderr directly would block the logging task, and with it every task on its
//! executor thread, whenever stderr does not keep up: a pipe nobody reads, a journald that is
//! behind. When the queue is full the line is dropped and counted, and the writer says how many
//! were lost as soon as it can write again. [`flush`] writes out what is queued; the binaries
//! call it before they exit.
//!
//! **Under systemd** (stderr is the journal: `JOURNAL_STREAM` names stderr's device and inode),
//! lines carry no timestamp of their own, since the journal adds one, and start with a syslog
//! priority (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), so `journalctl -p warning`
//! filters them.
//!
//! **A fatal error always reaches stderr** ([`fatal`]), even when `RUST_LOG` hides errors: the
//! node must never exit 1 without saying why.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::proto::time::Utc;

/// Log lines that may wait for the writer thread before new ones are dropped.
pub const QUEUE_LINES: usize = 128;

/// The queue between the threads that log and the writer thread: a `VecDeque` under a mutex
/// (std's `mpsc` channels cost about 8 KB of the board binary for this one use).
struct Shared {
    state: Mutex<State>,
    /// A line arrived, a flush was asked for, or the last [`LogQueue`] went.
    arrived: Condvar,
    /// The writer answered a flush.
    flushed: Condvar,
}

struct State {
    lines: VecDeque<Vec<u8>>,
    capacity: usize,
    /// Lines dropped because the queue was full, not reported yet.
    dropped: u64,
    /// [`LogQueue`]s alive: with none left (and the queue empty) the writer ends.
    queues: usize,
    /// Flushes asked for, and answered: the writer answers once it has caught up.
    flushes_asked: u64,
    flushes_done: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent: a panic elsewhere changes nothing.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the writer to write out what is queued and waits for it, at most `limit`.
    fn flush(&self, limit: Duration) {
        let mut state = self.lock();
        state.flushes_asked += 1;
        let asked = state.flushes_asked;
        self.arrived.notify_one();
        let deadline = Instant::now() + limit;
        while state.flushes_done < asked {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .flushed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The sending end of the log thread's queue. The logger hands it each formatted line
/// ([`LogQueue::send`]); as a `Write`r, each record is written, then `flush` hands it to the
/// queue. Neither ever waits for the output: a full queue drops the line and counts it.
pub struct LogQueue {
    shared: Arc<Shared>,
    record: Vec<u8>,
}

impl LogQueue {
    /// Starts the writer thread writing to `out`, and returns the queue that feeds it.
    ///
    /// ```
    /// use std::io::Write;
    /// let (mut queue, writer) = chatnode::logging::LogQueue::start(Vec::new(), 8).unwrap();
    /// queue.write_all(b"hello\n").unwrap();
    /// queue.flush().unwrap();
    /// drop(queue); // the thread ends when every queue handle is gone
    /// assert_eq!(writer.join().unwrap(), b"hello\n");
    /// ```
    pub fn start<W: Write + Send + 'static>(
        out: W,
        capacity: usize,
    ) -> std::io::Result<(LogQueue, std::thread::JoinHandle<W>)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                lines: VecDeque::new(),
                capacity: capacity.max(1),
                dropped: 0,
                queues: 1,
                flushes_asked: 0,
                flushes_done: 0,
            }),
            arrived: Condvar::new(),
            flushed: Condvar::new(),
        });
        let writer_side = shared.clone();
        let writer = std::thread::Builder::new()
            .name("chatnode-log".into())
            .spawn(move || write_lines(out, &writer_side))?;
        Ok((
            LogQueue {
                shared,
                record: Vec::new(),
            },
            writer,
        ))
    }

    /// Hands one line (with its `\n`) to the writer thread without waiting: when the queue is
    /// full the line is dropped and counted, and the writer reports the count later.
    ///
    /// ```
    /// let (queue, writer) = chatnode::logging::LogQueue::start(Vec::new(), 8).unwrap();
    /// queue.send(b"hello\n".to_vec());
    /// drop(queue);
    /// assert_eq!(writer.join().unwrap(), b"hello\n");
    /// ```
    pub fn send(&self, line: Vec<u8>) {
        let mut state = self.shared.lock();
        if state.lines.len() >= state.capacity {
            state.dropped += 1;
            return;
        }
        state.lines.push_back(line);
        drop(state);
        self.shared.arrived.notify_one();
    }
}

impl Drop for LogQueue {
    fn drop(&mut self) {
        self.shared.lock().queues -= 1;
        self.shared.arrived.notify_one();
    }
}

impl Write for LogQueue {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.record.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.record.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.record);
        self.send(line);
        Ok(())
    }
}

/// The writer thread: writes each line; once it has caught up with the queue, says how many
/// lines were dropped meanwhile (they were logged after everything it has just written), and
/// answers the flushes asked for. Ends when no [`LogQueue`] is left and the queue is empty.
fn write_lines<W: Write>(mut out: W, shared: &Shared) -> W {
    let mut state = shared.lock();
    loop {
        if let Some(line) = state.lines.pop_front() {
            drop(state);
            let _ = out.write_all(&line);
            state = shared.lock();
            continue;
        }
        // Caught up.
        let lost = std::mem::take(&mut state.dropped);
        let asked = state.flushes_asked;
        let answer = asked > state.flushes_done;
        let last = state.queues == 0;
        if lost > 0 || answer || last {
            drop(state);
            if lost > 0 {
                let _ = writeln!(
                    out,
                    "(chatnode: {lost} log line(s) dropped: the log output was not keeping up)"
                );
            }
            let _ = out.flush();
            state = shared.lock();
            state.flushes_done = state.flushes_done.max(asked);
            shared.flushed.notify_all();
            if last && state.lines.is_empty() && state.dropped == 0 {
                return out;
            }
            continue;
        }
        state = shared
            .arrived
            .wait(state)
            .unwrap_or_else(|e| e.into_inner());
    }
}

/// Where [`flush`] reaches the writer thread.
static WRITER: OnceLock<Arc<Shared>> = OnceLock::new();

/// Whether stderr is the systemd journal: `JOURNAL_STREAM` is `DEVICE:INODE` of the stream
/// systemd connected, and it only counts if stderr is still that stream (a child whose stderr
/// was redirected inherits the variable but not the stream).
pub fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(stderr).metadata() else {
        return false;
    };
    stream.to_string_lossy() == format!("{}:{}", meta.dev(), meta.ino())
}

/// The syslog priority of a log level, as the journal reads it from a line's `<N>` prefix.
fn syslog_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Set by [`init`]: stderr is the journal.
static JOURNAL: AtomicBool = AtomicBool::new(false);

/// A parsed `RUST_LOG`: directives sorted by the length of their target (the longest match
/// decides), and an optional text a message must contain. The same rules as env_logger's
/// (env_filter's) without its `regex` feature.
struct Filter {
    directives: Vec<Directive>,
    contains: Option<String>,
}

/// `TARGET=LEVEL`, or `LEVEL` for every target (`target: None`).
struct Directive {
    target: Option<String>,
    level: LevelFilter,
}

impl Filter {
    /// Parses a `RUST_LOG` value; returns the filter and what could not be parsed.
    fn parse(spec: &str) -> (Filter, Vec<String>) {
        let mut errors = Vec::new();
        let mut directives: Vec<Directive> = Vec::new();
        let mut contains = None;
        let mut parts = spec.split('/');
        let (targets, text) = (parts.next().unwrap_or(""), parts.next());
        if parts.next().is_some() {
            errors.push(format!("invalid logging spec '{spec}' (too many '/'s)"));
        } else {
            for item in targets.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                match Directive::parse(item) {
                    Ok(d) => match directives.iter_mut().find(|old| old.target == d.target) {
                        Some(old) => *old = d,
                        None => directives.push(d),
                    },
                    Err(e) => errors.push(e),
                }
            }
            contains = text.map(str::to_string);
        }
        if directives.is_empty() {
            directives.push(Directive {
                target: None,
                level: LevelFilter::Error,
            });
        }
        directives.sort_by_key(|d| d.target.as_ref().map_or(0, String::len));
        (
            Filter {
                directives,
                contains,
            },
            errors,
        )
    }

    /// The most verbose level any directive lets through: `log`'s cheap global check.
    fn max_level(&self) -> LevelFilter {
        self.directives
            .iter()
            .map(|d| d.level)
            .max()
            .unwrap_or(LevelFilter::Off)
    }

    /// Whether `level` is logged for `target`: the longest directive whose target is a prefix
    /// of `target` decides.
    fn enabled(&self, level: Level, target: &str) -> bool {
        self.directives
            .iter()
            .rev()
            .find(|d| d.target.as_deref().is_none_or(|t| target.starts_with(t)))
            .is_some_and(|d| level <= d.level)
    }
}

impl Directive {
    fn parse(item: &str) -> Result<Directive, String> {
        let mut parts = item.split('=');
        match (parts.next(), parts.next().map(str::trim), parts.next()) {
            (Some(only), None, None) => Ok(match only.parse() {
                Ok(level) => Directive {
                    target: None,
                    level,
                },
                Err(_) => Directive {
                    target: Some(only.to_string()),
                    level: LevelFilter::max(),
                },
            }),
            (Some(target), Some(""), None) => Ok(Directive {
                target: Some(target.to_string()),
                level: LevelFilter::max(),
            }),
            (Some(target), Some(level), None) => match level.parse() {
                Ok(level) => Ok(Directive {
                    target: Some(target.to_string()),
                    level,
                }),
                Err(_) => Err(format!("invalid logging spec '{level}'")),
            },
            _ => Err(format!("invalid logging spec '{item}'")),
        }
    }
}

/// `2026-11-30T19:20:00.123Z`: RFC 3339 in UTC, to the millisecond.
struct Timestamp(SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let t = Utc::from_unix(since.as_secs());
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            since.subsec_millis()
        )
    }
}

/// The installed logger: filters, formats the line where it happens, and queues it.
struct Logger {
    filter: Filter,
    /// Lines start with a syslog priority and carry no timestamp (the journal adds one).
    journal: bool,
    /// `None` when the log thread could not start: lines go straight to stderr.
    queue: Option<LogQueue>,
}

impl Logger {
    fn line(&self, record: &Record<'_>) -> Vec<u8> {
        let mut line = Vec::with_capacity(128);
        if self.journal {
            let _ = write!(line, "<{}>", syslog_priority(record.level()));
        } else {
            let _ = write!(
                line,
                "{} {:<5} ",
                Timestamp(SystemTime::now()),
                record.level()
            );
        }
        crate::rt::task::with_current_name(|task| {
            if let Some(task) = task {
                let _ = write!(line, "[{task}] ");
            }
        });
        let _ = writeln!(line, "{}", record.args());
        line
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata.level(), metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if let Some(text) = &self.filter.contains {
            if !record.args().to_string().contains(text.as_str()) {
                return;
            }
        }
        let line = self.line(record);
        match &self.queue {
            Some(queue) => queue.send(line),
            None => {
                let _ = std::io::stderr().write_all(&line);
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger. Call once, first thing in `main`; later calls change nothing.
pub fn init() {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string());
    let (filter, errors) = Filter::parse(&spec);
    for error in errors {
        eprintln!("warning: {error}, ignoring it");
    }
    let journal = stderr_is_journal();
    JOURNAL.store(journal, Ordering::Relaxed);
    // The writer thread is detached on purpose: it lives as long as the process, and `flush`
    // is how the binaries make sure it has written everything before they exit.
    let queue = match LogQueue::start(std::io::stderr(), QUEUE_LINES) {
        Ok((queue, _writer)) => {
            let _ = WRITER.set(queue.shared.clone());
            Some(queue)
        }
        Err(e) => {
            eprintln!("chatnode: no log thread ({e}); logging straight to stderr");
            None
        }
    };
    let max_level = filter.max_level();
    let logger = Box::leak(Box::new(Logger {
        filter,
        journal,
        queue,
    }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(max_level);
    }
}

/// Reports an error that stops the node: logged as an error if the log shows errors, written
/// straight to stderr if `RUST_LOG` hides them. Then writes out the log.
pub fn fatal(message: &dyn std::fmt::Display) {
    if log::log_enabled!(log::Level::Error) {
        log::error!("{message}");
    } else if JOURNAL.load(Ordering::Relaxed) {
        eprintln!("<3>chatnode: {message}");
    } else {
        eprintln!("chatnode: {message}");
    }
    flush();
}

/// Waits (at most a second) until every line logged so far is written out.
pub fn flush() {
    if let Some(shared) = WRITER.get() {
        shared.flush(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};

    /// Whether the gate is open, and what went through it.
    type GateState = (Mutex<(bool, Vec<u8>)>, Condvar);

    /// A sink that blocks every write until opened, like a pipe nobody reads.
    #[derive(Clone, Default)]
    struct Gate(Arc<GateState>);

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (lock, open) = &*self.0;
            let mut state = open.wait_while(lock.lock().unwrap(), |s| !s.0).unwrap();
            state.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rust_log_directives_follow_env_loggers_rules() {
        let (f, errors) = Filter::parse("warn,chatnode::server=debug,chatnode::server::conn=off");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(f.max_level(), LevelFilter::Debug);
        assert!(f.enabled(Level::Warn, "chatnode::broker"));
        assert!(!f.enabled(Level::Info, "chatnode::broker"));
        assert!(f.enabled(Level::Debug, "chatnode::server::admission"));
        assert!(!f.enabled(Level::Trace, "chatnode::server"));
        assert!(!f.enabled(Level::Error, "chatnode::server::conn"));
        // A bare target lets every level through; a later directive for the same target wins.
        let (f, _) = Filter::parse("chatnode, chatnode=INFO");
        assert!(f.enabled(Level::Info, "chatnode::rt"));
        assert!(!f.enabled(Level::Debug, "chatnode::rt"));
        assert!(!f.enabled(Level::Error, "polling"));
        let (f, _) = Filter::parse("chatnode=");
        assert!(f.enabled(Level::Trace, "chatnode"));
        // Nothing usable: errors only, as env_logger does.
        let (f, errors) = Filter::parse("");
        assert!(errors.is_empty());
        assert!(f.enabled(Level::Error, "x") && !f.enabled(Level::Warn, "x"));
        let (f, errors) = Filter::parse("off");
        assert!(!f.enabled(Level::Error, "x") && errors.is_empty());
        assert_eq!(f.max_level(), LevelFilter::Off);
        let (f, errors) = Filter::parse("info,a=loud,b=c=d");
        assert_eq!(
            errors,
            [
                "invalid logging spec 'loud'",
                "invalid logging spec 'b=c=d'"
            ]
        );
        assert!(f.enabled(Level::Info, "a"));
        let (f, errors) = Filter::parse("debug/conn#/x");
        assert_eq!(
            errors,
            ["invalid logging spec 'debug/conn#/x' (too many '/'s)"]
        );
        assert!(!f.enabled(Level::Warn, "x"));
        let (f, _) = Filter::parse("info/listening");
        assert_eq!(f.contains.as_deref(), Some("listening"));
    }

    #[test]
    fn lines_carry_an_rfc3339_utc_timestamp_to_the_millisecond() {
        let at = |ms: u64| Timestamp(UNIX_EPOCH + Duration::from_millis(ms)).to_string();
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_796_052_701_042), "2026-11-30T15:31:41.042Z");
        assert_eq!(at(951_868_799_999), "2000-02-29T23:59:59.999Z");
    }

    #[test]
    fn a_line_names_its_level_and_task_or_its_syslog_priority() {
        let logger = |journal| Logger {
            filter: Filter::parse("trace").0,
            journal,
            queue: None,
        };
        let line = logger(false).line(
            &Record::builder()
                .level(Level::Info)
                .args(format_args!("listening on 127.0.0.1:6667"))
                .build(),
        );
        let line = String::from_utf8(line).unwrap();
        let (time, rest) = line.split_at("2026-11-30T15:31:41.042Z".len());
        assert!(
            time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{line:?}"
        );
        assert_eq!(rest, " INFO  listening on 127.0.0.1:6667\n");
        let line = logger(true).line(
            &Record::builder()
                .level(Level::Warn)
                .args(format_args!("listening on 127.0.0.1:6667"))
                .build(),
        );
        let line = String::from_utf8(line).unwrap();
        assert_eq!(line, "<4>listening on 127.0.0.1:6667\n");
    }

    #[test]
    fn a_stuck_output_never_blocks_the_logger_and_drops_are_reported() {
        let gate = Gate::default();
        let (mut queue, writer) = LogQueue::start(gate.clone(), 4).unwrap();
        // The writer thread takes the first line and blocks on it; 4 more fill the queue;
        // everything after is dropped, and none of these calls may block.
        for i in 0..20 {
            writeln!(queue, "line {i}").unwrap();
            queue.flush().unwrap();
        }
        assert!(queue.shared.lock().dropped >= 15 - 1);
        {
            let (lock, open) = &*gate.0;
            lock.lock().unwrap().0 = true;
            open.notify_all();
        }
        // Wait until the writer has caught up (and reported the drops), then log once more.
        queue.shared.flush(Duration::from_secs(10));
        assert_eq!(
            queue.shared.lock().flushes_done,
            1,
            "the writer answered the flush"
        );
        writeln!(queue, "after").unwrap();
        queue.flush().unwrap();
        drop(queue);
        writer.join().unwrap();
        let text = String::from_utf8(gate.0 .0.lock().unwrap().1.clone()).unwrap();
        assert!(text.starts_with("line 0\n"), "{text}");
        assert!(text.contains("log line(s) dropped"), "{text}");
        assert!(text.ends_with("after\n"), "{text}");
    }
}
