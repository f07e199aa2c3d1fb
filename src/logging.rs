//! Log set-up for the binaries: env_logger driven by `RUST_LOG` (default `info`), one line per
//! event, each naming the task it came from (`[conn#7 127.0.0.1:50312]`).
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

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Log lines that may wait for the writer thread before new ones are dropped.
pub const QUEUE_LINES: usize = 128;

enum Message {
    Line(Vec<u8>),
    /// Write out everything before this, then answer.
    Flush(SyncSender<()>),
}

/// The `Write` end env_logger writes records into: each record is one `write_all` and one
/// `flush`, and the flush hands the record to the queue without waiting.
pub struct LogQueue {
    tx: SyncSender<Message>,
    record: Vec<u8>,
    dropped: Arc<AtomicU64>,
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
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        let writer = std::thread::Builder::new()
            .name("chatnode-log".into())
            .spawn(move || write_lines(out, rx, counter))?;
        Ok((
            LogQueue {
                tx,
                record: Vec::new(),
                dropped,
            },
            writer,
        ))
    }

    fn sender(&self) -> SyncSender<Message> {
        self.tx.clone()
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
        match self.tx.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The writer is gone (only at exit): nothing left to do with the line.
            Err(TrySendError::Disconnected(_)) => {}
        }
        Ok(())
    }
}

/// The writer thread: writes each line; once it has caught up with the queue, says how many
/// lines were dropped meanwhile (they were logged after everything it has just written).
fn write_lines<W: Write>(mut out: W, rx: Receiver<Message>, dropped: Arc<AtomicU64>) -> W {
    let report_drops = |out: &mut W| {
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let _ = writeln!(
                out,
                "(chatnode: {lost} log line(s) dropped: the log output was not keeping up)"
            );
        }
    };
    while let Ok(mut message) = rx.recv() {
        loop {
            match message {
                Message::Line(line) => {
                    let _ = out.write_all(&line);
                }
                Message::Flush(done) => {
                    report_drops(&mut out);
                    let _ = out.flush();
                    let _ = done.send(());
                }
            }
            match rx.try_recv() {
                Ok(next) => message = next,
                Err(_) => break,
            }
        }
        report_drops(&mut out);
    }
    let _ = out.flush();
    out
}

/// Where [`flush`] reaches the writer thread.
static WRITER: OnceLock<SyncSender<Message>> = OnceLock::new();

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
static JOURNAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Installs the logger. Call once, first thing in `main`.
pub fn init() {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if stderr_is_journal() {
        JOURNAL.store(true, Ordering::Relaxed);
        builder.format(|buf, record| {
            let priority = syslog_priority(record.level());
            crate::rt::task::with_current_name(|task| match task {
                Some(task) => writeln!(buf, "<{priority}>[{task}] {}", record.args()),
                None => writeln!(buf, "<{priority}>{}", record.args()),
            })
        });
    } else {
        builder.format(|buf, record| {
            let ts = buf.timestamp_millis();
            let level = record.level();
            crate::rt::task::with_current_name(|task| match task {
                Some(task) => writeln!(buf, "{ts} {level:<5} [{task}] {}", record.args()),
                None => writeln!(buf, "{ts} {level:<5} {}", record.args()),
            })
        });
    }
    // The writer thread is detached on purpose: it lives as long as the process, and `flush`
    // is how the binaries make sure it has written everything before they exit.
    match LogQueue::start(std::io::stderr(), QUEUE_LINES) {
        Ok((queue, _writer)) => {
            let _ = WRITER.set(queue.sender());
            builder.target(env_logger::Target::Pipe(Box::new(queue)));
        }
        Err(e) => eprintln!("chatnode: no log thread ({e}); logging straight to stderr"),
    }
    builder.init();
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
    let Some(writer) = WRITER.get() else { return };
    let (done, wait) = mpsc::sync_channel(1);
    // Blocking send: we are exiting, not on an executor thread.
    if writer.send(Message::Flush(done)).is_ok() {
        let _ = wait.recv_timeout(Duration::from_secs(1));
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
    fn a_stuck_output_never_blocks_the_logger_and_drops_are_reported() {
        let gate = Gate::default();
        let (mut queue, writer) = LogQueue::start(gate.clone(), 4).unwrap();
        // The writer thread takes the first line and blocks on it; 4 more fill the queue;
        // everything after is dropped, and none of these calls may block.
        for i in 0..20 {
            writeln!(queue, "line {i}").unwrap();
            queue.flush().unwrap();
        }
        assert!(queue.dropped.load(Ordering::Relaxed) >= 15 - 1);
        {
            let (lock, open) = &*gate.0;
            lock.lock().unwrap().0 = true;
            open.notify_all();
        }
        // Wait until the writer has caught up (and reported the drops), then log once more.
        let (done, wait) = mpsc::sync_channel(1);
        queue.sender().send(Message::Flush(done)).unwrap();
        wait.recv_timeout(Duration::from_secs(10)).unwrap();
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
