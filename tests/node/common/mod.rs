//! Std-only harness: starts `chatnode` builds as child processes and drives
//! them with real TCP clients on loopback.
//!
//! Synchronisation rule: nothing here sleeps to wait for the server. Every
//! wait is "read until this line / event arrives, or panic at a deadline".
//! The only polling loops with a short pause are for files written by a
//! third-party program (ii), where there is no event to block on.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe, Location};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default deadline for every wait.
pub const DEADLINE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Builds
// ---------------------------------------------------------------------------

/// One build of the server under test.
#[derive(Clone, Debug)]
pub struct Build {
    pub name: &'static str,
    pub path: &'static str,
}

/// Every build of the server that this test binary was compiled with:
/// `chatnode` always, `chatnode-tokio` under the `tokio` feature.
pub fn builds() -> Vec<Build> {
    #[allow(unused_mut)]
    let mut v = vec![Build {
        name: "chatnode",
        path: env!("CARGO_BIN_EXE_chatnode"),
    }];
    #[cfg(feature = "tokio")]
    v.push(Build {
        name: "chatnode-tokio",
        path: env!("CARGO_BIN_EXE_chatnode-tokio"),
    });
    v
}

/// Runs `f` once per build. A failure for one build does not stop the other
/// builds from being tried; at the end the test panics naming every build
/// that failed and its message.
pub fn for_each_build(f: impl Fn(&Build)) {
    let mut failures = Vec::new();
    for b in builds() {
        eprintln!("=== build {} ===", b.name);
        if let Err(e) = panic::catch_unwind(AssertUnwindSafe(|| f(&b))) {
            let msg = if let Some(s) = e.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = e.downcast_ref::<String>() {
                s.clone()
            } else {
                "non-string panic".to_string()
            };
            failures.push(format!("[build {}] {}", b.name, msg));
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} build(s) failed:\n{}",
            failures.len(),
            failures.join("\n---\n")
        );
    }
}

// ---------------------------------------------------------------------------
// Temporary directories (std-only)
// ---------------------------------------------------------------------------

static UNIQUE: AtomicU64 = AtomicU64::new(0);

pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "chatnode-test-{}-{}-{}-{}",
            prefix,
            std::process::id(),
            UNIQUE.fetch_add(1, Ordering::SeqCst),
            nanos
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Node: the server process
// ---------------------------------------------------------------------------

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    eof: bool,
}

pub struct Node {
    pub build: &'static str,
    child: Child,
    pub addrs: Vec<SocketAddr>,
    log: Arc<(Mutex<LogState>, Condvar)>,
    exited: Option<ExitStatus>,
    /// The node's default data dir (`$STATE_DIRECTORY`), so no test writes to $HOME and no
    /// two nodes share a history file unless a test gives them one `--data-dir`.
    _state: TempDir,
}

impl Node {
    /// Starts the build with `args`, with loopback exempt from the per-address limits and
    /// flood control (`--exempt 127.0.0.0/8 --exempt ::1`, unless `args` has an `--exempt`):
    /// most tests open many connections from one address and send fast, and say so here
    /// explicitly rather than weakening the node's defaults. Tests of the protections
    /// themselves use [`Node::start_with_defaults`].
    ///
    /// When `args` has no `--listen`, a `--listen 127.0.0.1:0` is added. Waits (10 s) for one
    /// `listening on ADDR` log line per listen address (of every kind: `addrs` lists
    /// them in the order the node logs them: plain, TLS, ws, wss).
    pub fn start(build: &Build, args: &[&str]) -> Node {
        let mut args: Vec<&str> = args.to_vec();
        if !args.contains(&"--exempt") {
            args.extend(["--exempt", "127.0.0.0/8", "--exempt", "::1"]);
        }
        Node::start_with_defaults(build, &args)
    }

    /// Starts the build with `args` and the node's default protections (nothing exempt).
    pub fn start_with_defaults(build: &Build, args: &[&str]) -> Node {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if !args.iter().any(|a| a == "--listen") {
            args.push("--listen".into());
            args.push("127.0.0.1:0".into());
        }
        // Every listener logs one `listening on ADDR` line: --listen, --listen-tls, --listen-ws...
        let listens = args.iter().filter(|a| a.starts_with("--listen")).count();
        let state = TempDir::new("state");
        let mut child = Command::new(build.path)
            .args(&args)
            .env("STATE_DIRECTORY", &state.path)
            .env("RUST_LOG", "info")
            .env("RUST_LOG_STYLE", "never")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("[{}] cannot spawn {}: {e}", build.name, build.path));

        let log: Arc<(Mutex<LogState>, Condvar)> = Arc::default();
        let stderr = child.stderr.take().expect("stderr piped");
        let log2 = log.clone();
        thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                        let (m, cv) = &*log2;
                        m.lock().unwrap().lines.push(line);
                        cv.notify_all();
                    }
                }
            }
            let (m, cv) = &*log2;
            m.lock().unwrap().eof = true;
            cv.notify_all();
        });
        // Drain stdout so that the pipe never fills.
        let mut stdout = child.stdout.take().expect("stdout piped");
        thread::spawn(move || {
            let mut sink = [0u8; 4096];
            while matches!(stdout.read(&mut sink), Ok(n) if n > 0) {}
        });

        let mut node = Node {
            build: build.name,
            child,
            addrs: Vec::new(),
            log,
            exited: None,
            _state: state,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let (m, cv) = &*node.log;
        let mut st = m.lock().unwrap();
        loop {
            let addrs: Vec<SocketAddr> =
                st.lines.iter().filter_map(|l| parse_listening(l)).collect();
            if addrs.len() >= listens {
                node.addrs = addrs;
                break;
            }
            let now = Instant::now();
            if st.eof || now >= deadline {
                let why = if st.eof {
                    "the process closed stderr (exited?)"
                } else {
                    "timed out after 10 s"
                };
                let lines = st.lines.join("\n  ");
                drop(st);
                panic!(
                    "[{}] waiting for {listens} 'listening on' line(s) with args {args:?}: {why}; stderr so far:\n  {lines}",
                    build.name
                );
            }
            st = cv.wait_timeout(st, deadline - now).unwrap().0;
        }
        drop(st);
        node
    }

    /// The first listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A copy of the stderr lines logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.log.0.lock().unwrap().lines.clone()
    }

    /// A new raw connection, labelled with the build.
    pub fn connect(&self, label: &str) -> Client {
        Client::connect_labeled(self.addr(), &format!("{}:{}", self.build, label))
    }

    /// Connects and registers `nick` (NICK + USER, waits for the whole burst).
    pub fn register(&self, nick: &str) -> Client {
        let mut c = self.connect(nick);
        c.register_as(nick);
        c
    }

    /// Sends SIGTERM via `kill -TERM PID`.
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Kills the process with SIGKILL (`kill -9`): no shutdown, no flush.
    pub fn kill9(&self) {
        self.signal("KILL");
    }

    /// Waits (up to `within`) for a log line after the first `skip` lines that contains
    /// `needle`, and returns it. Blocks on the log's condition variable: no polling.
    #[track_caller]
    pub fn wait_log(&self, skip: usize, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let (m, cv) = &*self.log;
        let mut st = m.lock().unwrap();
        loop {
            if let Some(line) = st.lines.iter().skip(skip).find(|l| l.contains(needle)) {
                return line.clone();
            }
            let now = Instant::now();
            if st.eof || now >= deadline {
                let lines = st.lines.join("\n  ");
                drop(st);
                panic!(
                    "[{}] no log line with {needle:?} (eof: {}); stderr:\n  {lines}",
                    self.build,
                    now < deadline
                );
            }
            st = cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// How many log lines there are so far (to wait for a later one with [`Node::wait_log`]).
    pub fn log_len(&self) -> usize {
        self.log.0.lock().unwrap().lines.len()
    }

    /// Waits for the process to exit, within `within`. Blocks on the
    /// stderr pipe closing (an event), then reaps.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        if let Some(st) = self.exited {
            return st;
        }
        let deadline = Instant::now() + within;
        {
            let (m, cv) = &*self.log;
            let mut st = m.lock().unwrap();
            while !st.eof {
                let now = Instant::now();
                if now >= deadline {
                    let lines = st.lines.join("\n  ");
                    drop(st);
                    panic!(
                        "[{}] process did not exit within {within:?}; stderr:\n  {lines}",
                        self.build
                    );
                }
                st = cv.wait_timeout(st, deadline - now).unwrap().0;
            }
        }
        // stderr is closed: the process is exiting. Reap it (bounded).
        loop {
            match self.child.try_wait().expect("try_wait") {
                Some(st) => {
                    self.exited = Some(st);
                    return st;
                }
                None if Instant::now() >= deadline => panic!(
                    "[{}] process closed stderr but did not exit within {within:?}",
                    self.build
                ),
                None => thread::yield_now(),
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if thread::panicking() {
            let logs = self.logs();
            let from = logs.len().saturating_sub(60);
            eprintln!(
                "[{}] node stderr (last {} of {} lines):\n  {}",
                self.build,
                logs.len() - from,
                logs.len(),
                logs[from..].join("\n  ")
            );
        }
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parses the address out of a log line containing `listening on ADDR`.
fn parse_listening(line: &str) -> Option<SocketAddr> {
    let i = line.find("listening on ")?;
    let rest = &line[i + "listening on ".len()..];
    let tok = rest.split_whitespace().next()?;
    let tok = tok.trim_end_matches([',', '.', ';', ')']);
    tok.parse().ok()
}

// ---------------------------------------------------------------------------
// Message parser (independent of the server's code)
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
pub struct Msg {
    /// The raw bytes of the line, without CR/LF.
    pub raw: Vec<u8>,
    pub tags: Option<String>,
    pub source: Option<String>,
    pub command: String,
    pub params: Vec<String>,
}

impl Msg {
    pub fn parse(raw: &[u8]) -> Msg {
        let line = String::from_utf8_lossy(raw).into_owned();
        let mut rest = line.as_str();
        let mut tags = None;
        let mut source = None;
        if let Some(r) = rest.strip_prefix('@') {
            let (t, r) = r.split_once(' ').unwrap_or((r, ""));
            tags = Some(t.to_string());
            rest = r;
        }
        rest = rest.trim_start_matches(' ');
        if let Some(r) = rest.strip_prefix(':') {
            let (s, r) = r.split_once(' ').unwrap_or((r, ""));
            source = Some(s.to_string());
            rest = r;
        }
        rest = rest.trim_start_matches(' ');
        let (cmd, r) = rest.split_once(' ').unwrap_or((rest, ""));
        let command = cmd.to_string();
        rest = r;
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing.to_string());
                break;
            }
            let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
            params.push(p.to_string());
            rest = r;
        }
        Msg {
            raw: raw.to_vec(),
            tags,
            source,
            command,
            params,
        }
    }

    /// The lossy text of the whole line.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The nick part of the source (`nick!user@host` -> `nick`).
    pub fn nick(&self) -> Option<&str> {
        self.source
            .as_deref()
            .map(|s| s.split(['!', '@']).next().unwrap_or(s))
    }

    pub fn is(&self, cmd: &str) -> bool {
        self.command.eq_ignore_ascii_case(cmd)
    }

    /// Parameter `i`, or "" when absent.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map(|s| s.as_str()).unwrap_or("")
    }

    /// The last parameter, or "" when there are none.
    pub fn last(&self) -> &str {
        self.params.last().map(|s| s.as_str()).unwrap_or("")
    }

    pub fn is_numeric(&self) -> bool {
        self.command.len() == 3 && self.command.bytes().all(|b| b.is_ascii_digit())
    }

    /// An error numeric (4xx or 5xx).
    pub fn is_error_numeric(&self) -> bool {
        self.is_numeric() && (self.command.starts_with('4') || self.command.starts_with('5'))
    }

    /// `:nick!... CMD first-param ...` from `nick` (case-insensitive).
    pub fn is_from(&self, cmd: &str, nick: &str) -> bool {
        self.is(cmd) && self.nick().is_some_and(|n| n.eq_ignore_ascii_case(nick))
    }
}

impl std::fmt::Display for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.text())
    }
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

enum Event {
    Line(Vec<u8>),
    Closed(String),
}

enum Source {
    /// Reads on the caller's thread with `set_read_timeout`.
    Direct { buf: Vec<u8> },
    /// A reader thread (used when PINGs must be answered automatically).
    Thread(Receiver<Event>),
}

enum ReadEnd {
    Timeout,
    Closed(String),
}

const HISTORY: usize = 400;

pub struct Client {
    pub label: String,
    pub nick: String,
    stream: TcpStream,
    writer: Arc<Mutex<TcpStream>>,
    source: Source,
    /// Lines put back (by `sync`), read before the socket.
    pending: VecDeque<Vec<u8>>,
    history: VecDeque<String>,
    total_lines: u64,
    fence_n: u32,
    closed: Option<String>,
}

static FENCE: AtomicU64 = AtomicU64::new(0);

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::connect_labeled(addr, &addr.to_string())
    }

    pub fn connect_labeled(addr: SocketAddr, label: &str) -> Client {
        let stream = TcpStream::connect_timeout(&addr, DEADLINE)
            .unwrap_or_else(|e| panic!("[{label}] connect to {addr}: {e}"));
        Client::from_stream(stream, label)
    }

    /// Connects with a receive buffer of about `bytes` (SO_RCVBUF, set before the handshake so
    /// the advertised window stays small): a client that stops reading fills up after a few
    /// KiB whatever the host's TCP buffer defaults are.
    pub fn connect_with_small_rcvbuf(addr: SocketAddr, label: &str, bytes: usize) -> Client {
        use rustix::net::{self as net, sockopt, AddressFamily, SocketType};
        let family = if addr.is_ipv4() {
            AddressFamily::INET
        } else {
            AddressFamily::INET6
        };
        let fd = net::socket(family, SocketType::STREAM, None)
            .unwrap_or_else(|e| panic!("[{label}] socket: {e}"));
        sockopt::set_socket_recv_buffer_size(&fd, bytes)
            .unwrap_or_else(|e| panic!("[{label}] SO_RCVBUF: {e}"));
        net::connect(&fd, &addr).unwrap_or_else(|e| panic!("[{label}] connect to {addr}: {e}"));
        Client::from_stream(TcpStream::from(fd), label)
    }

    fn from_stream(stream: TcpStream, label: &str) -> Client {
        stream.set_nodelay(true).ok();
        stream.set_write_timeout(Some(Duration::from_secs(20))).ok();
        let writer = Arc::new(Mutex::new(stream.try_clone().expect("clone stream")));
        Client {
            label: label.to_string(),
            nick: String::new(),
            stream,
            writer,
            source: Source::Direct { buf: Vec::new() },
            pending: VecDeque::new(),
            history: VecDeque::new(),
            total_lines: 0,
            fence_n: 0,
            closed: None,
        }
    }

    // ----- writing -----

    /// Sends `line` followed by CRLF.
    #[track_caller]
    pub fn send(&mut self, line: &str) {
        let mut v = line.as_bytes().to_vec();
        v.extend_from_slice(b"\r\n");
        self.send_raw(&v);
    }

    /// Sends bytes as they are.
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.try_send_raw(bytes) {
            panic!(
                "[{}] write failed: {e}\n{}",
                self.label,
                self.history_text()
            );
        }
    }

    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut w = self.writer.lock().unwrap();
        w.write_all(bytes)?;
        w.flush()
    }

    /// Sends one byte per write (TCP_NODELAY is set).
    #[track_caller]
    pub fn send_in_tiny_writes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.send_raw(std::slice::from_ref(b));
        }
    }

    /// A clone of the socket for a writer thread.
    pub fn writer_clone(&self) -> TcpStream {
        self.stream.try_clone().expect("clone stream")
    }

    /// Drops the connection without QUIT.
    pub fn disconnect_abruptly(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    // ----- reading -----

    /// From now on a reader thread answers every server `PING` with a
    /// `PONG` (the PING lines are still delivered to the test).
    pub fn enable_auto_pong(&mut self) {
        let buf = match &mut self.source {
            Source::Direct { buf } => std::mem::take(buf),
            Source::Thread(_) => return,
        };
        let (tx, rx) = mpsc::channel();
        let mut reader = self.stream.try_clone().expect("clone stream");
        reader.set_read_timeout(None).ok();
        let writer = self.writer.clone();
        thread::spawn(move || {
            let mut buf = buf;
            let mut chunk = vec![0u8; 16384];
            loop {
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let mut line: Vec<u8> = buf.drain(..=pos).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    let m = Msg::parse(&line);
                    if m.is("PING") {
                        let reply = format!("PONG :{}\r\n", m.last());
                        let _ = writer.lock().unwrap().write_all(reply.as_bytes());
                    }
                    if tx.send(Event::Line(line)).is_err() {
                        return;
                    }
                }
                match reader.read(&mut chunk) {
                    Ok(0) => {
                        if !buf.is_empty() {
                            let _ = tx.send(Event::Line(std::mem::take(&mut buf)));
                        }
                        let _ = tx.send(Event::Closed("EOF".into()));
                        return;
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Event::Closed(format!("read error: {e}")));
                        return;
                    }
                }
            }
        });
        self.source = Source::Thread(rx);
    }

    fn record(&mut self, line: &[u8]) {
        self.total_lines += 1;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history
            .push_back(String::from_utf8_lossy(line).into_owned());
    }

    /// The lines received so far (the last few hundred), for panic messages.
    pub fn history_text(&self) -> String {
        let skipped = self.total_lines as usize - self.history.len();
        let mut s = format!("lines received so far ({} in all", self.total_lines);
        if skipped > 0 {
            s.push_str(&format!(", first {skipped} not shown"));
        }
        s.push_str("):");
        for l in &self.history {
            s.push_str("\n    ");
            s.push_str(l);
        }
        if let Some(c) = &self.closed {
            s.push_str(&format!("\n    <connection closed: {c}>"));
        }
        s
    }

    fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadEnd> {
        if let Some(l) = self.pending.pop_front() {
            return Ok(l);
        }
        if let Some(c) = &self.closed {
            return Err(ReadEnd::Closed(c.clone()));
        }
        let res = match &mut self.source {
            Source::Thread(rx) => {
                let now = Instant::now();
                let wait = deadline.saturating_duration_since(now);
                match rx.recv_timeout(wait) {
                    Ok(Event::Line(l)) => Ok(l),
                    Ok(Event::Closed(why)) => Err(ReadEnd::Closed(why)),
                    Err(RecvTimeoutError::Timeout) => Err(ReadEnd::Timeout),
                    Err(RecvTimeoutError::Disconnected) => {
                        Err(ReadEnd::Closed("reader thread ended".into()))
                    }
                }
            }
            Source::Direct { buf } => loop {
                if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let mut line: Vec<u8> = buf.drain(..=pos).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    break Ok(line);
                }
                let now = Instant::now();
                if now >= deadline {
                    break Err(ReadEnd::Timeout);
                }
                let wait = (deadline - now).max(Duration::from_millis(1));
                self.stream.set_read_timeout(Some(wait)).ok();
                let mut chunk = [0u8; 16384];
                match self.stream.read(&mut chunk) {
                    Ok(0) => {
                        if !buf.is_empty() {
                            // A last line without a line ending.
                            let l = std::mem::take(buf);
                            self.closed = Some("EOF".into());
                            break Ok(l);
                        }
                        break Err(ReadEnd::Closed("EOF".into()));
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => break Err(ReadEnd::Closed(format!("read error: {e}"))),
                }
            },
        };
        match res {
            Ok(l) => {
                self.record(&l);
                Ok(l)
            }
            Err(ReadEnd::Closed(why)) => {
                self.closed = Some(why.clone());
                Err(ReadEnd::Closed(why))
            }
            Err(e) => Err(e),
        }
    }

    /// The next line, whatever it is (to assert a line exactly).
    #[track_caller]
    pub fn next_msg(&mut self) -> Msg {
        let loc = Location::caller();
        let deadline = Instant::now() + DEADLINE;
        match self.read_line(deadline) {
            Ok(l) => Msg::parse(&l),
            Err(ReadEnd::Timeout) => panic!(
                "[{}] timed out after {DEADLINE:?} waiting for the next line (at {loc}); {}",
                self.label,
                self.history_text()
            ),
            Err(ReadEnd::Closed(why)) => panic!(
                "[{}] connection closed ({why}) while waiting for the next line (at {loc}); {}",
                self.label,
                self.history_text()
            ),
        }
    }

    /// Skips lines until one matches `pred` (default deadline).
    #[track_caller]
    pub fn expect(&mut self, pred: impl Fn(&Msg) -> bool) -> Msg {
        self.expect_within(DEADLINE, pred)
    }

    #[track_caller]
    pub fn expect_within(&mut self, within: Duration, pred: impl Fn(&Msg) -> bool) -> Msg {
        let loc = Location::caller();
        self.expect_inner(
            within,
            pred,
            &format!("a line matching the predicate at {loc}"),
            false,
        )
        .0
    }

    /// Skips lines until one matches; returns it and the lines skipped.
    fn expect_collect(
        &mut self,
        within: Duration,
        pred: impl Fn(&Msg) -> bool,
        what: &str,
    ) -> (Msg, Vec<Msg>) {
        self.expect_inner(within, pred, what, true)
    }

    fn expect_inner(
        &mut self,
        within: Duration,
        pred: impl Fn(&Msg) -> bool,
        what: &str,
        keep: bool,
    ) -> (Msg, Vec<Msg>) {
        let deadline = Instant::now() + within;
        let mut skipped = Vec::new();
        loop {
            match self.read_line(deadline) {
                Ok(l) => {
                    let m = Msg::parse(&l);
                    if pred(&m) {
                        return (m, skipped);
                    }
                    if keep {
                        skipped.push(m);
                    }
                }
                Err(ReadEnd::Timeout) => panic!(
                    "[{}] timed out after {within:?} waiting for {what}; {}",
                    self.label,
                    self.history_text()
                ),
                Err(ReadEnd::Closed(why)) => panic!(
                    "[{}] connection closed ({why}) while waiting for {what}; {}",
                    self.label,
                    self.history_text()
                ),
            }
        }
    }

    /// Waits for numeric `code` (e.g. "433").
    #[track_caller]
    pub fn expect_numeric(&mut self, code: &str) -> Msg {
        let loc = Location::caller();
        self.expect_collect(
            DEADLINE,
            |m| m.command == code,
            &format!("numeric {code} (at {loc})"),
        )
        .0
    }

    /// The next line must be numeric `code`: unlike [`Client::expect_numeric`], nothing may
    /// come in between (a spurious extra reply fails the test).
    #[track_caller]
    pub fn expect_next_numeric(&mut self, code: &str) -> Msg {
        let m = self.next_msg();
        if m.command != code {
            panic!(
                "[{}] expected numeric {code} as the very next line (at {}), got: {m}\n{}",
                self.label,
                Location::caller(),
                self.history_text()
            );
        }
        m
    }

    /// The next line must be command `cmd` (case-insensitive); nothing may come in between.
    #[track_caller]
    pub fn expect_next_command(&mut self, cmd: &str) -> Msg {
        let m = self.next_msg();
        if !m.is(cmd) {
            panic!(
                "[{}] expected {cmd} as the very next line (at {}), got: {m}\n{}",
                self.label,
                Location::caller(),
                self.history_text()
            );
        }
        m
    }

    /// Sends `line` and asserts its whole answer, fenced by PING/PONG: exactly the commands
    /// (or numerics) in `want`, in order, and nothing else. Returns the lines.
    #[track_caller]
    pub fn ask_exactly(&mut self, line: &str, want: &[&str]) -> Vec<Msg> {
        self.send(line);
        let got = self.fence();
        let cmds: Vec<&str> = got.iter().map(|m| m.command.as_str()).collect();
        if cmds.len() != want.len()
            || cmds
                .iter()
                .zip(want)
                .any(|(g, w)| !g.eq_ignore_ascii_case(w))
        {
            panic!(
                "[{}] `{line}` (at {}): expected exactly {want:?}, got {cmds:?}\n{}",
                self.label,
                Location::caller(),
                self.history_text()
            );
        }
        got
    }

    /// Waits for command `cmd` (case-insensitive).
    #[track_caller]
    pub fn expect_command(&mut self, cmd: &str) -> Msg {
        let loc = Location::caller();
        self.expect_collect(DEADLINE, |m| m.is(cmd), &format!("{cmd} (at {loc})"))
            .0
    }

    /// Waits for the first line whose command is one of `codes`; returns it
    /// with the lines skipped before it.
    #[track_caller]
    pub fn expect_one_of(&mut self, codes: &[&str]) -> (Msg, Vec<Msg>) {
        let loc = Location::caller();
        self.expect_collect(
            DEADLINE,
            |m| codes.iter().any(|c| m.is(c)),
            &format!("one of {codes:?} (at {loc})"),
        )
    }

    /// Reads until the server closes the connection (default deadline);
    /// returns every line seen.
    #[track_caller]
    pub fn expect_closed(&mut self) -> Vec<Msg> {
        self.expect_closed_within(DEADLINE)
    }

    #[track_caller]
    pub fn expect_closed_within(&mut self, within: Duration) -> Vec<Msg> {
        let loc = Location::caller();
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            match self.read_line(deadline) {
                Ok(l) => seen.push(Msg::parse(&l)),
                Err(ReadEnd::Closed(_)) => return seen,
                Err(ReadEnd::Timeout) => panic!(
                    "[{}] expected the server to close the connection within {within:?} (at {loc}), it did not; {}",
                    self.label,
                    self.history_text()
                ),
            }
        }
    }

    /// Sends `PING :fence-N` and reads up to the matching PONG. Returns the
    /// lines that arrived before the PONG. Since the server handles one
    /// connection's lines in order and queues its output in order, anything
    /// the server meant to send this client before handling the PING has
    /// arrived by then.
    #[track_caller]
    fn fence(&mut self) -> Vec<Msg> {
        let loc = Location::caller();
        self.fence_n += 1;
        let tok = format!(
            "fence-{}-{}",
            self.fence_n,
            FENCE.fetch_add(1, Ordering::SeqCst)
        );
        self.send(&format!("PING :{tok}"));
        let (_pong, before) = self.expect_collect(
            DEADLINE,
            |m| m.is("PONG") && m.last() == tok,
            &format!("PONG :{tok} (fence at {loc})"),
        );
        before
    }

    /// A fence that keeps the lines it read for later `expect`s.
    #[track_caller]
    pub fn sync(&mut self) {
        let before = self.fence();
        for m in before.into_iter().rev() {
            self.pending.push_front(m.raw);
        }
    }

    /// A fence that discards the lines read before the PONG.
    #[track_caller]
    pub fn drain(&mut self) -> Vec<Msg> {
        self.fence()
    }

    /// Proves, with a PING/PONG fence, that no line matching `pred` arrives
    /// before the server has handled everything sent so far.
    #[track_caller]
    pub fn assert_no_line_matching(&mut self, pred: impl Fn(&Msg) -> bool) {
        let loc = Location::caller();
        let before = self.fence();
        if let Some(bad) = before.iter().find(|m| pred(m)) {
            panic!(
                "[{}] got an unexpected line (assertion at {loc}): {bad}\n{}",
                self.label,
                self.history_text()
            );
        }
        for m in before.into_iter().rev() {
            self.pending.push_front(m.raw);
        }
    }

    /// Asserts the connection is alive and usable: PING gets its PONG.
    #[track_caller]
    pub fn assert_alive(&mut self) {
        let _ = self.fence();
    }

    // ----- IRC helpers -----

    /// NICK + USER, waits for 001 then the end of the burst (376 or 422).
    /// Returns the whole burst.
    #[track_caller]
    pub fn register_as(&mut self, nick: &str) -> Vec<Msg> {
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {nick} 0 * :Real {nick}"));
        self.finish_registration(nick)
    }

    /// Waits for 001 and the end of the burst, after registration commands
    /// were sent by the test.
    #[track_caller]
    pub fn finish_registration(&mut self, nick: &str) -> Vec<Msg> {
        let loc = Location::caller();
        let (welcome, _) =
            self.expect_collect(DEADLINE, |m| m.command == "001", &format!("001 (at {loc})"));
        let (end, mut burst) = self.expect_collect(
            DEADLINE,
            |m| m.command == "376" || m.command == "422",
            &format!("376 or 422 ending the burst (at {loc})"),
        );
        self.nick = nick.to_string();
        burst.insert(0, welcome);
        burst.push(end);
        burst
    }

    /// JOIN `chan`, waits for its 366. Returns the lines up to and
    /// including the 366.
    #[track_caller]
    pub fn join(&mut self, chan: &str) -> Vec<Msg> {
        let loc = Location::caller();
        self.send(&format!("JOIN {chan}"));
        let (end, mut lines) = self.expect_collect(
            DEADLINE,
            |m| m.command == "366" && m.param(1).eq_ignore_ascii_case(chan),
            &format!("366 for {chan} (at {loc})"),
        );
        lines.push(end);
        lines
    }

    /// `STATS <query>` (the client must be an operator): the texts of the 249 lines, up to the
    /// 219 that ends them. Any other line in between fails the test.
    #[track_caller]
    pub fn stats(&mut self, query: &str) -> Vec<String> {
        self.send(&format!("STATS {query}"));
        let mut lines = Vec::new();
        loop {
            let m = self.next_msg();
            match m.command.as_str() {
                "249" => lines.push(m.last().to_string()),
                "219" if m.param(1) == query => return lines,
                _ => panic!(
                    "[{}] STATS {query}: unexpected line {m}\n{}",
                    self.label,
                    self.history_text()
                ),
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Ends the reader thread, if any.
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

// ---------------------------------------------------------------------------
// Misc helpers
// ---------------------------------------------------------------------------

/// Nicks in a 353 reply, with their prefixes.
pub fn names_of(m: &Msg) -> Vec<String> {
    m.last().split_whitespace().map(|s| s.to_string()).collect()
}

/// Reports a skipped test where it cannot be missed. The test harness captures `println!` and
/// `eprintln!` of passing tests, so this writes to the process's stderr directly: the line
/// shows in every `cargo test` run, and `.ci/run` counts the `SKIPPED:` lines in its summary.
pub fn report_skip(test: &str, why: &str) {
    let _ = writeln!(io::stderr(), "SKIPPED: {test}: {why}");
}

/// Looks `prog` up on PATH.
pub fn find_on_path(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Polls `cond` every 20 ms until it holds or `within` passes. Only for
/// files written by third-party programs (no event to block on).
pub fn poll_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

pub fn file_contains(path: &Path, needle: &str) -> bool {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).contains(needle))
        .unwrap_or(false)
}

/// An Argon2id PHC hash of `pw` with `m_kib` KiB of memory and `t` passes (cheap ones keep
/// tests fast), for `[[operator]]` tables.
pub fn argon2_hash(pw: &str, m_kib: u32, t: u32) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(m_kib, t, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"test-salt-16byte").unwrap();
    argon
        .hash_password(pw.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// The most a TCP socket's send buffer may grow to (the third figure of tcp_wmem; 4 MiB when
/// unknown): a client that stops reading only stalls the server's writes once the server has
/// queued more than this for it.
pub fn tcp_wmem_max() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
        .unwrap_or(4 << 20)
}

impl Node {
    /// Sends `signal` (a `kill` name: TERM, INT, ...) to the node.
    pub fn signal(&self, signal: &str) {
        let st = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "[{}] kill -{signal} failed: {st}", self.build);
    }
}
