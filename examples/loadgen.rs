//! A load generator for IRC servers: many plain RFC 1459/2812 clients in one process, bounded in
//! time and message count, loopback only.
//!
//! It speaks only what every IRC server understands (NICK/USER, wait for 001, JOIN and wait for
//! 366, PRIVMSG, PONG to any PING at any time, QUIT), so the same run can be pointed at chatnode
//! and at a reference server such as ngIRCd and the figures compared.
//!
//! # Usage
//!
//! ```text
//! cargo run --release --example loadgen -- SCENARIO [OPTIONS]
//!
//! cargo run --release --example loadgen -- connect --clients 1000 --server-pid $(pidof chatnode)
//! cargo run --release --example loadgen -- fanout --clients 100 --senders 10 --messages 5000
//! cargo run --release --example loadgen -- fanout --clients 1000 --senders 1 --rate 200 --json
//! cargo run --release --example loadgen -- pairs --clients 200 --messages 2000
//! cargo run --release --example loadgen -- fanout --server 127.0.0.1:6697 --tls cert.pem
//! ```
//!
//! Run `loadgen --help` for every option. The human table goes to stdout; with `--json` a single
//! JSON line with every figure goes to stdout instead. Progress (runs over 3 s) and errors go to
//! stderr. Exit code: 0 when everything expected happened, 1 when messages or clients were lost or
//! the `--duration` deadline was hit, 2 on a usage error.
//!
//! # TLS
//!
//! `--tls CERT.pem` speaks TLS (rustls with ring, the node's own provider) to a `--listen-tls`
//! port. The clients trust exactly that certificate, pinned byte for byte (the node's
//! self-signed one, or the one it was given): no name or chain is checked, which is right for a
//! loopback benchmark and works with any self-signed certificate. The handshake is part of
//! setup, not of the measured phase; the clients share one rustls config, so later connections
//! may resume the first one's session. The same scenarios then measure what TLS costs on the
//! message path: record encryption on the node for every delivered line, and the decryption on
//! the load generator's side (which shares the CPU; compare `server_cpu_us_per_msg`).
//! Needs the `tls` feature (in the default features).
//!
//! # Scenarios
//!
//! - `connect`: N clients connect and register, at most `--connect-concurrency` at a time
//!   (default 8: ngIRCd's listen backlog is 10, and a deeper burst would measure SYN retries, not
//!   the server). Reports connections/s (N over first connect to last 001), registration latency
//!   (TCP connect start to 001) p50/p99/max, and with `--server-pid` the server's RSS before
//!   connecting and with N idle clients (read 200 ms after the last 001, so the welcome burst has
//!   been written), and the difference per client. The clients stay for `--hold` seconds, then
//!   QUIT.
//! - `fanout`: N clients join one channel; clients 0..S are the senders and send M messages each,
//!   `PRIVMSG #bench :<sender> <seq> <send-ns-since-run-start> <padding to --size bytes>`.
//!   Each sender keeps at most `--window` messages unacknowledged, where "acknowledged" means
//!   seen by one designated receiver (client S, the first non-sender); `--rate R` additionally
//!   paces each sender to R messages/s. Every client (senders too, for the other senders'
//!   messages) parses every PRIVMSG and records the latency (receive time minus the embedded
//!   timestamp; one process, one clock) and per-sender sequence order. Expected deliveries are
//!   M*S*(N-1) (a server does not echo a PRIVMSG to its sender).
//! - `pairs`: N/2 pairs (clients 2k and 2k+1) play direct-message ping-pong: the even client sends
//!   `PRIVMSG <peer> :<seq> <ts>`, the odd one echoes the body back, M round trips per pair.
//!   Reports round trips/s and round-trip time p50/p99/max.
//!
//! # Measurements and their caveats
//!
//! - The measured phase starts when every client is set up (the first send) and ends at the last
//!   delivery (or at the deadline). Rates are over that phase only; setup is excluded.
//! - Latency includes time a message waits in the load generator's own send buffer (messages are
//!   timestamped when queued, then written in batches) and the time until its reader task runs.
//!   The receive time is taken once per 64 KiB read, so every line of one read shares it.
//! - Everything runs on one thread (a `LocalExecutor`, driven as the main future of our own
//!   runtime at one thread, so its sockets and timers are on chatnode's reactor: one
//!   edge-triggered registration per socket, no reactor thread. On async-io, whose one-shot
//!   registration is re-armed after every event, it needed a third to 40 % more CPU for the
//!   same work, and set the pace of `pairs` at `--threads 1`: docs/executor.md, decision 16),
//!   and on a 2-core machine it competes with the server for CPU. Rates and latencies therefore depend on both processes; the fairest
//!   server figure is its own CPU time per delivered message, read from `/proc/PID/stat`
//!   (`--server-pid`). `loadgen_cpu_pct` near 100 means the load generator was probably the
//!   bottleneck.
//! - CPU times come in clock ticks (10 ms): a measured phase under a few seconds gives coarse
//!   per-message figures, and repeated short runs vary; raise `--messages` for stable numbers.
//! - Without `--rate`, throughput is bounded by the window as much as by the server: about
//!   S * W * (N-1) deliveries are in flight, so rate ~ that / latency. Compare servers at the
//!   same window; the CPU per delivered message does not depend on it much.
//! - Lost = expected - delivered at the end. A server that drops a slow client ("SendQ
//!   exceeded") shows up as lost messages plus a disconnect. Reordered = a sequence number lower
//!   than the highest already seen from that sender (a late duplicate counts here too); a repeat
//!   of the highest is counted as a duplicate and not as delivered.
//! - Percentiles are nearest-rank over every sample (a `Vec<u32>` of microseconds, sorted once).
//!   Besides p50/p99/max the report has p90 and p99.9, and `--json` adds the distribution:
//!   `cdf_pct` lists percentiles once and `latency_cdf_us` (fanout), `rtt_cdf_us` (pairs) or
//!   `reg_latency_cdf_us` (connect) the values at them, for charts (`examples/compare.rs`).
//! - Server RSS is `VmRSS` of `/proc/PID/status`; the per-client difference includes whatever the
//!   allocator keeps, so it is a rough figure; compare servers at the same N.
//! - `server_ctx_switches` is the server's context switches over the measured phase, summed
//!   over its threads (`/proc/PID/task/*/status`): a proxy for how often it went to sleep and
//!   was woken up again. Threads that exit during the phase take their counts with them.
//! - Setup (connect, register and, for fanout, JOIN until 366) runs at most
//!   `--connect-concurrency` clients at a time and is not part of the measured phase. Each client
//!   gets its reader task as soon as it is set up, so the JOIN and welcome traffic the server
//!   sends to earlier clients is drained and never piles up in the server's send queues.
//! - Every wait has a deadline: `--duration` bounds the whole run; after it, the clients QUIT
//!   and get at most one more second to be closed before the report is printed.
//!   A client disconnected by the server during the measured phase ends that phase at once
//!   (what it was owed can never arrive), so a lossy run fails fast instead of at the deadline.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use std::sync::OnceLock;

use async_executor::{LocalExecutor, Task};
use chatnode::rt::smol::SmolRuntime;
use chatnode::rt::timer::Sleep;
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Our runtime, for its reactor: the load generator's sockets and timers live there. Its one
/// thread is `main`'s (see `main`).
fn rt() -> &'static SmolRuntime {
    static RT: OnceLock<SmolRuntime> = OnceLock::new();
    RT.get_or_init(SmolRuntime::new)
}

/// Timers on our reactor, spelled as async-io's.
struct Timer;

impl Timer {
    fn at(deadline: Instant) -> Sleep {
        rt().sleep_until(deadline)
    }

    fn after(d: Duration) -> Sleep {
        rt().sleep_until(Instant::now() + d)
    }
}

const USAGE: &str = "\
loadgen: IRC load generator (loopback only)

USAGE: cargo run --release --example loadgen -- SCENARIO [OPTIONS]

SCENARIOS:
  connect   N clients connect and register; connections/s, registration latency, server RSS
  fanout    N clients in one channel, S of them send M messages each; delivery rate and latency
  pairs     N/2 pairs play direct-message ping-pong, M round trips each; round trips/s and RTT

COMMON OPTIONS:
  --server ADDR               server address, loopback only (default 127.0.0.1:6667); repeat it
                              to spread the clients over several linked nodes (client i uses
                              the (i mod count)-th address)
  --settle SECS               wait this long between setup and the measured phase (default 0;
                              linked nodes need a moment to learn each other's joins)
  --clients N                 number of clients (default 100)
  --duration SECS             hard upper bound for the whole run (default 30)
  --json                      print one JSON line with every figure instead of the table
  --server-pid PID            read the server's RSS and CPU time from /proc/PID
  --prefix NAME               nick prefix; nicks are NAME0, NAME1, ... (default lg)
  --connect-concurrency N     clients connecting/registering at once (default 8)
  --tls CERT.pem              speak TLS to a --listen-tls port, trusting exactly this certificate

connect:
  --hold SECS                 keep the clients connected this long before QUIT (default 0)

fanout:
  --channel NAME              channel to join (default #bench)
  --senders S                 clients that send, clients 0..S (default 1)
  --messages M                messages per sender (default 1000)
  --rate R                    messages/s per sender (default: as fast as the window allows)
  --window W                  unacknowledged messages per sender (default 100)
  --size BYTES                PRIVMSG body size, padded with 'x' (default 64, at most 400)

pairs:
  --messages M                round trips per pair (default 1000)

Exit code: 0 all delivered, 1 lost messages/clients or deadline hit, 2 usage error.
";

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    Connect,
    Fanout,
    Pairs,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Connect => "connect",
            Scenario::Fanout => "fanout",
            Scenario::Pairs => "pairs",
        }
    }
}

#[derive(Debug)]
struct Opts {
    scenario: Scenario,
    server: SocketAddr,
    /// Every `--server`, in order (the first is `server`).
    servers: Vec<SocketAddr>,
    settle: Duration,
    clients: usize,
    duration: Duration,
    json: bool,
    server_pid: Option<u32>,
    prefix: String,
    concurrency: usize,
    hold: Duration,
    channel: String,
    senders: usize,
    messages: u64,
    rate: Option<f64>,
    window: u64,
    size: usize,
    /// `--tls`: the certificate (PEM) the node presents, trusted as is.
    tls_cert: Option<String>,
}

/// `Ok(None)` means `--help` was asked for.
fn parse_args() -> Result<Option<Opts>, String> {
    use lexopt::prelude::*;
    let err = |e: lexopt::Error| e.to_string();
    let mut p = lexopt::Parser::from_env();
    let mut scenario = None;
    let mut server: SocketAddr = "127.0.0.1:6667".parse().unwrap();
    let mut o = Opts {
        scenario: Scenario::Connect,
        server,
        servers: Vec::new(),
        settle: Duration::ZERO,
        clients: 100,
        duration: Duration::from_secs(30),
        json: false,
        server_pid: None,
        prefix: "lg".into(),
        concurrency: 8,
        hold: Duration::ZERO,
        channel: "#bench".into(),
        senders: 1,
        messages: 1000,
        rate: None,
        window: 100,
        size: 64,
        tls_cert: None,
    };
    while let Some(arg) = p.next().map_err(err)? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("server") => {
                let v = p.value().map_err(err)?.string().map_err(err)?;
                server = parse_server(&v)?;
                o.servers.push(server);
            }
            Long("settle") => o.settle = secs(p.value().map_err(err)?.parse().map_err(err)?)?,
            Long("clients") => o.clients = p.value().map_err(err)?.parse().map_err(err)?,
            Long("duration") => o.duration = secs(p.value().map_err(err)?.parse().map_err(err)?)?,
            Long("json") => o.json = true,
            Long("server-pid") => {
                o.server_pid = Some(p.value().map_err(err)?.parse().map_err(err)?)
            }
            Long("prefix") => o.prefix = p.value().map_err(err)?.string().map_err(err)?,
            Long("connect-concurrency") => {
                o.concurrency = p.value().map_err(err)?.parse().map_err(err)?
            }
            Long("hold") => o.hold = secs(p.value().map_err(err)?.parse().map_err(err)?)?,
            Long("channel") => o.channel = p.value().map_err(err)?.string().map_err(err)?,
            Long("senders") => o.senders = p.value().map_err(err)?.parse().map_err(err)?,
            Long("messages") => o.messages = p.value().map_err(err)?.parse().map_err(err)?,
            Long("rate") => o.rate = Some(p.value().map_err(err)?.parse().map_err(err)?),
            Long("window") => o.window = p.value().map_err(err)?.parse().map_err(err)?,
            Long("size") => o.size = p.value().map_err(err)?.parse().map_err(err)?,
            Long("tls") => o.tls_cert = Some(p.value().map_err(err)?.string().map_err(err)?),
            Value(v) if scenario.is_none() => {
                scenario = Some(match v.string().map_err(err)?.as_str() {
                    "connect" => Scenario::Connect,
                    "fanout" => Scenario::Fanout,
                    "pairs" => Scenario::Pairs,
                    other => return Err(format!("unknown scenario '{other}'")),
                })
            }
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    o.scenario = scenario.ok_or("missing SCENARIO (connect, fanout or pairs)")?;
    o.server = o.servers.first().copied().unwrap_or(server);
    if o.servers.is_empty() {
        o.servers.push(server);
    }
    validate(&o)?;
    Ok(Some(o))
}

fn secs(v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v).map_err(|_| format!("invalid number of seconds: {v}"))
}

/// Only literal loopback addresses: this tool floods whatever it is pointed at, so it must not
/// be pointable at another machine (and a name would need a resolver we cannot vouch for).
fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s.parse().map_err(|_| {
        format!("--server {s}: expected IP:PORT, for example 127.0.0.1:6667 or [::1]:6667")
    })?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--server {s}: refusing a non-loopback address (only 127.0.0.0/8 and ::1 are allowed)"
        ));
    }
    Ok(addr)
}

fn validate(o: &Opts) -> Result<(), String> {
    if o.duration.is_zero() {
        return Err("--duration must be more than 0".into());
    }
    if o.concurrency == 0 {
        return Err("--connect-concurrency must be at least 1".into());
    }
    // RFC 2812 nick: a letter or special first, then letters, digits, specials or '-'.
    let special = |c: char| "[]\\`_^{|}".contains(c);
    let mut chars = o.prefix.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || special(c) => {}
        _ => return Err("--prefix must start with a letter or one of []\\`_^{|}".into()),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || special(c) || c == '-') {
        return Err("--prefix may hold only letters, digits, '-' and []\\`_^{|}".into());
    }
    match o.scenario {
        Scenario::Connect => {
            if o.clients == 0 {
                return Err("--clients must be at least 1".into());
            }
        }
        Scenario::Fanout => {
            if o.clients < 2 {
                return Err("fanout needs --clients 2 or more".into());
            }
            if o.senders == 0 || o.senders > o.clients {
                return Err("--senders must be between 1 and --clients".into());
            }
            if o.window == 0 {
                return Err("--window must be at least 1".into());
            }
            if o.size > 400 {
                // The server prefixes ":nick!user@host " to the line and cuts at 512 bytes.
                return Err("--size must be at most 400 (IRC lines are at most 512 bytes)".into());
            }
            if !o.channel.starts_with(['#', '&']) || o.channel.contains([' ', ',', '\x07']) {
                return Err("--channel must start with # or & and hold no space or comma".into());
            }
            if o.messages == 0 || o.messages >= u64::from(u32::MAX) {
                return Err("--messages must be between 1 and 2^32-2".into());
            }
        }
        Scenario::Pairs => {
            if o.clients < 2 {
                return Err("pairs needs --clients 2 or more".into());
            }
            if o.messages == 0 {
                return Err("--messages must be at least 1".into());
            }
        }
    }
    if let Some(r) = o.rate {
        if !(r > 0.0 && r.is_finite()) {
            return Err("--rate must be a positive number of messages/s".into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Small single-threaded building blocks

/// A one-waiter wake-up flag. Everything lives on one thread, so a `Cell` is all it takes, and it
/// is far cheaper than a channel on the per-message ack path.
#[derive(Default)]
struct Notify {
    set: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Notify {
    fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    async fn wait(&self) {
        future::poll_fn(|cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// A client's outgoing bytes. Everyone (sender task, PONG, echo, QUIT) appends here and one
/// writer task per connection flushes it: two tasks must never interleave partial writes on
/// one socket, and batching many lines into one `write` keeps the load generator cheap.
#[derive(Default)]
struct Outbox {
    buf: RefCell<Vec<u8>>,
    notify: Notify,
    /// Set after QUIT: the writer flushes what is left, shuts down its half and stops.
    closing: Cell<bool>,
}

impl Outbox {
    fn push_with(&self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.buf.borrow_mut());
        self.notify.notify();
    }

    fn push(&self, parts: &[&[u8]]) {
        self.push_with(|b| {
            for p in parts {
                b.extend_from_slice(p);
            }
        });
    }
}

/// The read half of a client's connection: the TCP socket, or the TLS stream's half.
type Reader = Box<dyn AsyncRead + Unpin>;
/// The write half; closing it shuts down the TCP write side (after TLS's close_notify).
type Writer = Box<dyn AsyncWrite + Unpin>;

/// A connection's two halves as one stream, for the TLS handshake (which wants one).
struct Joined(chatnode::rt::net::Reader, chatnode::rt::net::Writer);

impl AsyncRead for Joined {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Joined {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.1).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.1).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.1).poll_close(cx)
    }
}

async fn writer_task(mut stream: Writer, ob: Rc<Outbox>, run: Rc<Run>, i: usize) {
    let mut spare = Vec::with_capacity(4096);
    loop {
        if ob.buf.borrow().is_empty() {
            if ob.closing.get() {
                let _ = stream.close().await;
                return;
            }
            ob.notify.wait().await;
            continue;
        }
        // Swap buffers so the queue is free for new lines while this batch is written.
        std::mem::swap(&mut *ob.buf.borrow_mut(), &mut spare);
        // TLS holds records until flushed; on TCP the flush is free.
        let written = async {
            stream.write_all(&spare).await?;
            stream.flush().await
        };
        if let Err(e) = written.await {
            if !run.quitting.get() {
                run.error(format!("{}: write: {e}", run.nick(i)));
            }
            return;
        }
        spare.clear();
    }
}

const READ_BUF: usize = 64 * 1024;

/// Reads in 64 KiB chunks and hands out lines in place (no allocation per line): under fanout
/// each client gets hundreds of thousands of lines, so the reader must stay cheap.
struct LineReader {
    stream: Reader,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl LineReader {
    fn new(stream: Reader) -> Self {
        LineReader {
            stream,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The next complete line in the buffer without its line ending, `None` if more must be read.
    fn next_line(&mut self) -> Option<&[u8]> {
        let n = self.buf[self.start..self.end]
            .iter()
            .position(|&b| b == b'\n')?;
        let line = &self.buf[self.start..self.start + n];
        self.start += n + 1;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }

    /// Reads more; `Ok(0)` at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < 4096 {
            if self.start == 0 {
                // 60 KiB without a newline is not IRC; drop it rather than stall forever.
                self.end = 0;
            } else {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

/// Splits a line into (command, parameters), skipping message tags and the source prefix.
fn split_command(line: &[u8]) -> (&[u8], &[u8]) {
    fn after_space(l: &[u8]) -> &[u8] {
        l.iter()
            .position(|&b| b == b' ')
            .map_or(&[], |p| &l[p + 1..])
    }
    let mut l = line;
    if l.first() == Some(&b'@') {
        l = after_space(l);
    }
    if l.first() == Some(&b':') {
        l = after_space(l);
    }
    match l.iter().position(|&b| b == b' ') {
        Some(p) => (&l[..p], &l[p + 1..]),
        None => (l, &[]),
    }
}

/// The text of a PRIVMSG, given its parameters `target :text`.
fn privmsg_text(params: &[u8]) -> &[u8] {
    let p = params
        .iter()
        .position(|&b| b == b' ')
        .map_or(params.len(), |p| p + 1);
    let t = &params[p..];
    t.strip_prefix(b":").unwrap_or(t)
}

/// Parses a decimal number and the space after it off the front of `s`.
fn take_u64(s: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    let mut n = 0;
    while let Some(&b) = s.get(n) {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        n += 1;
    }
    if n == 0 {
        return None;
    }
    *s = &s[n..];
    if let Some(rest) = s.strip_prefix(b" ") {
        *s = rest;
    }
    Some(v)
}

fn push_u64(b: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.extend_from_slice(&tmp[i..]);
}

/// ERROR, or a 4xx/5xx numeric: fatal while we wait for 001 or 366.
fn is_error_reply(cmd: &[u8]) -> bool {
    cmd == b"ERROR"
        || (cmd.len() == 3 && matches!(cmd[0], b'4' | b'5') && cmd.iter().all(u8::is_ascii_digit))
}

/// Whether a numeric reply's subject (the parameter after our nick) is `chan`.
fn about_channel(line: &[u8], chan: &[u8]) -> bool {
    let (_, params) = split_command(line);
    params
        .split(|&b| b == b' ')
        .nth(1)
        .is_some_and(|p| p.eq_ignore_ascii_case(chan))
}

// ---------------------------------------------------------------------------------------------
// /proc

#[path = "shared/procfs.rs"]
#[allow(dead_code)]
mod procfs;
use procfs::{clock_ticks, open_files_limit, ProcSnap};

/// Waits until the measured phase is done (`true`) or the run's deadline passes (`false`).
async fn done_before_deadline(run: &Run) -> bool {
    future::or(
        async {
            run.done.wait().await;
            true
        },
        async {
            Timer::at(run.deadline).await;
            false
        },
    )
    .await
}

/// `pid` is a number or "self"; context switches included.
fn proc_snap(pid: &str) -> Option<ProcSnap> {
    procfs::snap(pid, true)
}

// ---------------------------------------------------------------------------------------------
// The run's shared state

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    Measure,
    Hold,
    Quit,
}

struct Client {
    ob: Rc<Outbox>,
    _writer: Task<()>,
    _reader: Task<()>,
}

/// Everything the tasks share. Single-threaded, so plain `Cell`s: no atomics on the hot path.
struct Run {
    opts: Opts,
    /// `--tls`: how clients wrap their sockets.
    tls: Option<tls_client::TlsClient>,
    t0: Instant,
    deadline: Instant,
    phase: Cell<Phase>,
    clients: RefCell<Vec<Option<Client>>>,
    /// Nicks as bytes, built once.
    nicks: Vec<Vec<u8>>,
    // Setup.
    next_client: Cell<usize>,
    ready: Cell<usize>,
    failed: Cell<usize>,
    reg_latency_us: RefCell<Vec<u32>>,
    first_connect_ns: Cell<u64>,
    last_registered_ns: Cell<u64>,
    // Health.
    errors: Cell<u64>,
    first_errors: RefCell<Vec<String>>,
    disconnects: Cell<u64>,
    live: Cell<usize>,
    all_closed: Notify,
    quitting: Cell<bool>,
    // Measured phase (fanout deliveries or pairs round trips).
    expected: Cell<u64>,
    delivered: Cell<u64>,
    reordered: Cell<u64>,
    duplicates: Cell<u64>,
    unexpected: Cell<u64>,
    samples_us: RefCell<Vec<u32>>,
    first_send_ns: Cell<u64>,
    last_recv_ns: Cell<u64>,
    done: Notify,
    /// Fanout: per sender, the highest seq + 1 seen by its designated receiver.
    acked: Vec<Cell<u64>>,
    ack_notify: Vec<Notify>,
    progress_shown: Cell<bool>,
}

impl Run {
    fn new(opts: Opts, tls: Option<tls_client::TlsClient>) -> Run {
        let t0 = Instant::now();
        let n = opts.clients;
        let senders = if opts.scenario == Scenario::Fanout {
            opts.senders
        } else {
            0
        };
        Run {
            deadline: t0 + opts.duration,
            t0,
            phase: Cell::new(Phase::Setup),
            clients: RefCell::new((0..n).map(|_| None).collect()),
            nicks: (0..n)
                .map(|i| format!("{}{i}", opts.prefix).into_bytes())
                .collect(),
            next_client: Cell::new(0),
            ready: Cell::new(0),
            failed: Cell::new(0),
            reg_latency_us: RefCell::new(Vec::with_capacity(n)),
            first_connect_ns: Cell::new(u64::MAX),
            last_registered_ns: Cell::new(0),
            errors: Cell::new(0),
            first_errors: RefCell::new(Vec::new()),
            disconnects: Cell::new(0),
            live: Cell::new(0),
            all_closed: Notify::default(),
            quitting: Cell::new(false),
            expected: Cell::new(0),
            delivered: Cell::new(0),
            reordered: Cell::new(0),
            duplicates: Cell::new(0),
            unexpected: Cell::new(0),
            samples_us: RefCell::new(Vec::new()),
            first_send_ns: Cell::new(u64::MAX),
            last_recv_ns: Cell::new(0),
            done: Notify::default(),
            acked: (0..senders).map(|_| Cell::new(0)).collect(),
            ack_notify: (0..senders).map(|_| Notify::default()).collect(),
            progress_shown: Cell::new(false),
            opts,
            tls,
        }
    }

    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    fn nick(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.nicks[i]).into_owned()
    }

    /// Counts an error and keeps the first few for the report; printed to stderr as they come
    /// (the first 5 only, so a collapsing server does not bury the report).
    fn error(&self, msg: String) {
        self.errors.set(self.errors.get() + 1);
        let mut first = self.first_errors.borrow_mut();
        if first.len() < 5 {
            self.clear_progress();
            eprintln!("loadgen: {msg}");
            first.push(msg);
        }
    }

    fn clear_progress(&self) {
        if self.progress_shown.replace(false) {
            eprint!("\r{:79}\r", "");
        }
    }

    /// Fanout: which client acknowledges sender `s`'s messages (the first non-sender; when every
    /// client sends, the next client).
    fn ack_receiver(&self, s: usize) -> usize {
        if self.opts.senders < self.opts.clients {
            self.opts.senders
        } else {
            (s + 1) % self.opts.clients
        }
    }

    fn record_delivery(&self, now: u64, ts: u64) {
        let lat_us = (now.saturating_sub(ts) / 1000).min(u64::from(u32::MAX)) as u32;
        self.samples_us.borrow_mut().push(lat_us);
        self.last_recv_ns.set(now);
        let d = self.delivered.get() + 1;
        self.delivered.set(d);
        if d == self.expected.get() {
            self.done.notify();
        }
    }

    fn progress_line(&self) -> String {
        let t = self.t0.elapsed().as_secs_f64();
        let n = self.opts.clients;
        let name = self.opts.scenario.name();
        match (self.phase.get(), self.opts.scenario) {
            (Phase::Setup, _) => {
                format!("{name}: {}/{n} clients ready, {t:.1} s", self.ready.get())
            }
            (Phase::Measure, Scenario::Fanout) => format!(
                "{name}: {}/{} delivered, {t:.1} s",
                si(self.delivered.get()),
                si(self.expected.get())
            ),
            (Phase::Measure, _) => format!(
                "{name}: {}/{} round trips, {t:.1} s",
                si(self.delivered.get()),
                si(self.expected.get())
            ),
            (Phase::Hold, _) => format!("{name}: holding {} clients, {t:.1} s", self.ready.get()),
            (Phase::Quit, _) => format!("{name}: quitting, {t:.1} s"),
        }
    }
}

fn si(v: u64) -> String {
    match v {
        0..=9_999 => v.to_string(),
        10_000..=999_999 => format!("{:.1}k", v as f64 / 1e3),
        _ => format!("{:.2}M", v as f64 / 1e6),
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

/// What a client does with the lines it gets once it is set up.
enum Role {
    /// connect: only PING (handled for everyone) matters.
    Idle,
    /// fanout: every client receives; `next[s]` is the highest seq + 1 seen from sender s.
    Fan { idx: usize, next: Vec<u64> },
    /// pairs, even client: measures the round trip and sends the next ping.
    PairInit { peer: usize },
    /// pairs, odd client: echoes every PRIVMSG body to its peer.
    PairEcho { peer: usize },
}

fn role_for(run: &Run, i: usize) -> Role {
    match run.opts.scenario {
        Scenario::Connect => Role::Idle,
        Scenario::Fanout => Role::Fan {
            idx: i,
            next: vec![0; run.opts.senders],
        },
        Scenario::Pairs if i + 1 == run.opts.clients && i % 2 == 0 => Role::Idle,
        Scenario::Pairs if i % 2 == 0 => Role::PairInit { peer: i + 1 },
        Scenario::Pairs => Role::PairEcho { peer: i - 1 },
    }
}

impl Role {
    fn on_line(&mut self, run: &Run, ob: &Outbox, cmd: &[u8], params: &[u8], now: u64) {
        if cmd != b"PRIVMSG" {
            return;
        }
        let text = privmsg_text(params);
        match self {
            Role::Idle => {}
            Role::Fan { idx, next } => {
                let mut t = text;
                let (Some(s), Some(seq), Some(ts)) =
                    (take_u64(&mut t), take_u64(&mut t), take_u64(&mut t))
                else {
                    run.unexpected.set(run.unexpected.get() + 1);
                    return;
                };
                let s = s as usize;
                if s >= next.len() || s == *idx || seq >= run.opts.messages {
                    run.unexpected.set(run.unexpected.get() + 1);
                    return;
                }
                let hi = &mut next[s];
                if seq + 1 > *hi {
                    *hi = seq + 1;
                } else if seq + 1 == *hi {
                    run.duplicates.set(run.duplicates.get() + 1);
                    return;
                } else {
                    run.reordered.set(run.reordered.get() + 1);
                }
                run.record_delivery(now, ts);
                if *idx == run.ack_receiver(s) && seq + 1 > run.acked[s].get() {
                    run.acked[s].set(seq + 1);
                    run.ack_notify[s].notify();
                }
            }
            Role::PairInit { peer } => {
                let mut t = text;
                let (Some(seq), Some(ts)) = (take_u64(&mut t), take_u64(&mut t)) else {
                    run.unexpected.set(run.unexpected.get() + 1);
                    return;
                };
                run.record_delivery(now, ts);
                if seq + 1 < run.opts.messages && !run.quitting.get() {
                    send_ping(run, ob, *peer, seq + 1);
                }
            }
            Role::PairEcho { peer } => {
                ob.push(&[b"PRIVMSG ", &run.nicks[*peer], b" :", text, b"\r\n"]);
            }
        }
    }
}

fn send_ping(run: &Run, ob: &Outbox, peer: usize, seq: u64) {
    let ts = run.now_ns();
    ob.push_with(|b| {
        b.extend_from_slice(b"PRIVMSG ");
        b.extend_from_slice(&run.nicks[peer]);
        b.extend_from_slice(b" :");
        push_u64(b, seq);
        b.push(b' ');
        push_u64(b, ts);
        b.extend_from_slice(b"\r\n");
    });
}

/// Reads until `f` decides; answers PING meanwhile. Used while waiting for 001 and 366.
async fn wait_for(
    rd: &mut LineReader,
    ob: &Outbox,
    mut f: impl FnMut(&[u8], &[u8]) -> Option<Result<(), String>>,
) -> Result<(), String> {
    loop {
        while let Some(line) = rd.next_line() {
            let (cmd, params) = split_command(line);
            if cmd == b"PING" {
                ob.push(&[b"PONG ", params, b"\r\n"]);
                continue;
            }
            if let Some(r) = f(cmd, line) {
                return r;
            }
        }
        match rd.fill().await {
            Ok(0) => return Err("connection closed by the server".into()),
            Err(e) => return Err(format!("read: {e}")),
            Ok(_) => {}
        }
    }
}

/// Connects, registers and (for fanout) joins client `i`, then leaves a reader task running.
async fn setup_client<'a>(
    ex: &'a LocalExecutor<'a>,
    run: &Rc<Run>,
    i: usize,
) -> Result<Client, String> {
    let start = Instant::now();
    if run.first_connect_ns.get() == u64::MAX {
        run.first_connect_ns.set(run.now_ns());
    }
    let server = run.opts.servers[i % run.opts.servers.len()];
    let (rd, wr) = rt().connect_to(server).await.map_err(|e| {
        if e.raw_os_error() == Some(24) {
            format!("connect: {e} (raise the open-files limit: ulimit -n)")
        } else {
            format!("connect: {e}")
        }
    })?;
    // Nagle is off already (rt::net::connect): lines are batched by the writer.
    let (reader, writer): (Reader, Writer) = match &run.tls {
        Some(tls) => tls
            .connect(server, Joined(rd, wr))
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?,
        None => (Box::new(rd), Box::new(wr)),
    };
    let ob = Rc::new(Outbox::default());
    let writer = ex.spawn(writer_task(writer, ob.clone(), run.clone(), i));
    let nick = &run.nicks[i];
    ob.push(&[
        b"NICK ",
        nick,
        b"\r\nUSER ",
        nick,
        b" 0 * :chatnode loadgen\r\n",
    ]);
    let mut rd = LineReader::new(reader);
    let lossy = |line: &[u8]| String::from_utf8_lossy(line).into_owned();
    wait_for(&mut rd, &ob, |cmd, line| match cmd {
        b"001" => Some(Ok(())),
        c if is_error_reply(c) => Some(Err(lossy(line))),
        _ => None,
    })
    .await?;
    let lat = start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
    run.reg_latency_us.borrow_mut().push(lat);
    run.last_registered_ns.set(run.now_ns());
    if run.opts.scenario == Scenario::Fanout {
        let chan = run.opts.channel.as_bytes();
        ob.push(&[b"JOIN ", chan, b"\r\n"]);
        // Only errors about our channel: a 422 (no MOTD) or the like may still arrive here.
        wait_for(&mut rd, &ob, |cmd, line| match cmd {
            b"366" => Some(Ok(())),
            b"ERROR" => Some(Err(lossy(line))),
            c if is_error_reply(c) && about_channel(line, chan) => Some(Err(lossy(line))),
            _ => None,
        })
        .await?;
    }
    run.live.set(run.live.get() + 1);
    let reader = ex.spawn(reader_task(
        run.clone(),
        rd,
        ob.clone(),
        role_for(run, i),
        i,
    ));
    Ok(Client {
        ob,
        _writer: writer,
        _reader: reader,
    })
}

async fn reader_task(run: Rc<Run>, mut rd: LineReader, ob: Rc<Outbox>, mut role: Role, i: usize) {
    let mut now = run.now_ns();
    let end = loop {
        while let Some(line) = rd.next_line() {
            let (cmd, params) = split_command(line);
            match cmd {
                b"PING" => ob.push(&[b"PONG ", params, b"\r\n"]),
                b"ERROR" if !run.quitting.get() => run.error(format!(
                    "{}: {}",
                    run.nick(i),
                    String::from_utf8_lossy(line)
                )),
                _ => role.on_line(&run, &ob, cmd, params, now),
            }
        }
        match rd.fill().await {
            // One timestamp per read: every line in it arrived at the same moment for us.
            Ok(n) if n > 0 => now = run.now_ns(),
            Ok(_) => break None,
            Err(e) => break Some(e),
        }
    };
    if !run.quitting.get() {
        run.disconnects.set(run.disconnects.get() + 1);
        let why = end.map_or("connection closed by the server".to_string(), |e| {
            e.to_string()
        });
        run.error(format!("{}: {why}", run.nick(i)));
        // A lost client can never get what it was owed: end the measured phase now rather
        // than wait for the deadline (the report counts the loss and exits 1).
        if run.phase.get() == Phase::Measure {
            run.done.notify();
        }
    }
    run.live.set(run.live.get() - 1);
    if run.live.get() == 0 {
        run.all_closed.notify();
    }
}

/// One of `--connect-concurrency` workers: takes the next client index until none are left.
async fn setup_worker<'a>(ex: &'a LocalExecutor<'a>, run: Rc<Run>) {
    loop {
        // connect reports how many registered; the others need every client, so stop early.
        if run.failed.get() > 0 && run.opts.scenario != Scenario::Connect {
            return;
        }
        let i = run.next_client.get();
        if i >= run.opts.clients {
            return;
        }
        run.next_client.set(i + 1);
        match setup_client(ex, &run, i).await {
            Ok(c) => {
                run.clients.borrow_mut()[i] = Some(c);
                run.ready.set(run.ready.get() + 1);
            }
            Err(e) => {
                run.failed.set(run.failed.get() + 1);
                run.error(format!("{}: {e}", run.nick(i)));
            }
        }
    }
}

/// Sets up every client; false if one failed or the deadline came first.
async fn setup_all<'a>(ex: &'a LocalExecutor<'a>, run: &Rc<Run>) -> bool {
    let workers: Vec<Task<()>> = (0..run.opts.concurrency.min(run.opts.clients))
        .map(|_| ex.spawn(setup_worker(ex, run.clone())))
        .collect();
    let all = async {
        for w in workers {
            w.await;
        }
        true
    };
    // On the deadline the workers are dropped, which cancels them mid-connect.
    let ok = future::or(all, async {
        Timer::at(run.deadline).await;
        false
    })
    .await;
    if !ok {
        let (ready, n) = (run.ready.get(), run.opts.clients);
        run.error(format!(
            "deadline hit during setup: {ready}/{n} clients ready"
        ));
    }
    ok && run.ready.get() == run.opts.clients
}

/// fanout: sender `s` sends its M messages, within its window and at its rate.
async fn sender_task(run: Rc<Run>, ob: Rc<Outbox>, s: usize, start_ns: u64) {
    let o = &run.opts;
    let chan = o.channel.as_bytes();
    for seq in 0..o.messages {
        while seq - run.acked[s].get() >= o.window {
            run.ack_notify[s].wait().await;
        }
        if let Some(rate) = o.rate {
            let due = start_ns + (seq as f64 * 1e9 / rate) as u64;
            let now = run.now_ns();
            if due > now {
                Timer::after(Duration::from_nanos(due - now)).await;
            }
        }
        let ts = run.now_ns();
        if run.first_send_ns.get() == u64::MAX {
            run.first_send_ns.set(ts);
        }
        ob.push_with(|b| {
            b.extend_from_slice(b"PRIVMSG ");
            b.extend_from_slice(chan);
            b.extend_from_slice(b" :");
            let body = b.len();
            push_u64(b, s as u64);
            b.push(b' ');
            push_u64(b, seq);
            b.push(b' ');
            push_u64(b, ts);
            b.push(b' ');
            if b.len() - body < o.size {
                b.resize(body + o.size, b'x');
            }
            b.extend_from_slice(b"\r\n");
        });
        // A huge window would otherwise let one sender queue everything before anyone reads.
        if seq % 64 == 63 {
            future::yield_now().await;
        }
    }
}

async fn progress_task(run: Rc<Run>) {
    loop {
        Timer::after(Duration::from_secs(1)).await;
        if run.t0.elapsed() >= Duration::from_secs(3) {
            eprint!("\r{:79}", run.progress_line());
            run.progress_shown.set(true);
        }
    }
}

/// QUIT everyone, then give the server up to a second to close the connections.
async fn quit_all(run: &Run) {
    run.quitting.set(true);
    run.phase.set(Phase::Quit);
    for c in run.clients.borrow().iter().flatten() {
        c.ob.push(&[b"QUIT :loadgen done\r\n"]);
        c.ob.closing.set(true);
        c.ob.notify.notify();
    }
    let closed = async {
        while run.live.get() > 0 {
            run.all_closed.wait().await;
        }
    };
    future::or(closed, async {
        Timer::after(Duration::from_secs(1)).await;
    })
    .await;
}

/// Sleeps until `until` or the run's deadline; true if the deadline cut it short.
async fn sleep_until(run: &Run, until: Instant) -> bool {
    Timer::at(until.min(run.deadline)).await;
    until > run.deadline
}

// ---------------------------------------------------------------------------------------------
// Report

enum Val {
    Int(u64),
    Num(f64, usize),
    Str(String),
    Bool(bool),
    /// A list of numbers: JSON only (the table leaves it out).
    List(Vec<f64>),
    Null,
}

/// The percentiles `--json` reports as a distribution (`*_cdf_us`, at `cdf_pct`): fine steps in
/// the tails, where servers differ, and every 5% in between. Enough for a CDF chart.
const CDF_PCT: [f64; 31] = [
    0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0,
    65.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.8, 99.9, 99.95, 99.99, 100.0,
];

#[derive(Default)]
struct Report {
    rows: Vec<(&'static str, Val)>,
}

impl Report {
    fn add(&mut self, k: &'static str, v: Val) {
        self.rows.push((k, v));
    }
    fn int(&mut self, k: &'static str, v: u64) {
        self.add(k, Val::Int(v));
    }
    fn num(&mut self, k: &'static str, v: f64, decimals: usize) {
        self.add(
            k,
            if v.is_finite() {
                Val::Num(v, decimals)
            } else {
                Val::Null
            },
        );
    }
    /// Adds p50, p99 and max under `keys`, then p90 and p99.9 as `<prefix>_p90_us` and
    /// `<prefix>_p999_us`, and the whole distribution as `<prefix>_cdf_us` (the values at the
    /// percentiles listed once per report in `cdf_pct`).
    fn percentiles(&mut self, keys: [&'static str; 3], samples: &mut [u32]) {
        samples.sort_unstable();
        // Nearest rank: the smallest sample with at least p% of samples at or below it.
        let value = |p: f64| -> Option<u32> {
            if samples.is_empty() {
                return None;
            }
            let r = ((p / 100.0 * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            Some(samples[r - 1])
        };
        let rank = |p: f64| value(p).map_or(Val::Null, |v| Val::Int(u64::from(v)));
        let prefix = keys[0].strip_suffix("_p50_us").unwrap_or(keys[0]);
        let more: Option<[&'static str; 3]> = match prefix {
            "latency" => Some(["latency_p90_us", "latency_p999_us", "latency_cdf_us"]),
            "rtt" => Some(["rtt_p90_us", "rtt_p999_us", "rtt_cdf_us"]),
            "reg_latency" => Some([
                "reg_latency_p90_us",
                "reg_latency_p999_us",
                "reg_latency_cdf_us",
            ]),
            _ => None,
        };
        // In rising order, so the table reads p50, p90, p99, p99.9, max.
        self.add(keys[0], rank(50.0));
        if let Some([p90, _, _]) = more {
            self.add(p90, rank(90.0));
        }
        self.add(keys[1], rank(99.0));
        if let Some([_, p999, _]) = more {
            self.add(p999, rank(99.9));
        }
        self.add(keys[2], rank(100.0));
        let Some([_, _, cdf]) = more else {
            return;
        };
        if !self.rows.iter().any(|(k, _)| *k == "cdf_pct") {
            self.add("cdf_pct", Val::List(CDF_PCT.to_vec()));
        }
        let values: Vec<f64> = if samples.is_empty() {
            Vec::new()
        } else {
            CDF_PCT
                .iter()
                .filter_map(|&p| value(p).map(f64::from))
                .collect()
        };
        self.add(cdf, Val::List(values));
    }

    fn table(&self) -> String {
        let w = self
            .rows
            .iter()
            .map(|(k, _)| k.len())
            .max()
            .unwrap_or(0)
            .max(6);
        let mut s = format!("{:w$}  value\n", "metric");
        for (k, v) in &self.rows {
            let v = match v {
                Val::List(_) => continue,
                Val::Int(i) => i.to_string(),
                Val::Num(x, d) => format!("{x:.d$}"),
                Val::Str(t) => t.clone(),
                Val::Bool(b) => b.to_string(),
                Val::Null => "-".into(),
            };
            let _ = writeln!(s, "{k:w$}  {v}");
        }
        s
    }

    fn json(&self) -> String {
        let mut s = String::from("{");
        for (n, (k, v)) in self.rows.iter().enumerate() {
            if n > 0 {
                s.push(',');
            }
            let _ = write!(s, "\"{k}\":");
            match v {
                Val::Int(i) => {
                    let _ = write!(s, "{i}");
                }
                Val::Num(x, d) => {
                    let _ = write!(s, "{x:.d$}");
                }
                Val::Str(t) => json_str(&mut s, t),
                Val::Bool(b) => {
                    let _ = write!(s, "{b}");
                }
                Val::List(xs) => {
                    s.push('[');
                    for (i, x) in xs.iter().enumerate() {
                        if i > 0 {
                            s.push(',');
                        }
                        let _ = write!(s, "{x}");
                    }
                    s.push(']');
                }
                Val::Null => s.push_str("null"),
            }
        }
        s.push('}');
        s
    }
}

fn json_str(out: &mut String, t: &str) {
    out.push('"');
    for c in t.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Server and load generator CPU/RSS over a phase.
struct ProcSpan {
    server_before: Option<ProcSnap>,
    server_after: Option<ProcSnap>,
    self_before: Option<ProcSnap>,
    self_after: Option<ProcSnap>,
    wall: Duration,
    start: Instant,
}

impl ProcSpan {
    fn begin(run: &Run) -> ProcSpan {
        ProcSpan {
            server_before: run.opts.server_pid.and_then(|p| proc_snap(&p.to_string())),
            server_after: None,
            self_before: proc_snap("self"),
            self_after: None,
            wall: Duration::ZERO,
            start: Instant::now(),
        }
    }

    fn end(&mut self, run: &Run) {
        self.server_after = run.opts.server_pid.and_then(|p| proc_snap(&p.to_string()));
        self.self_after = proc_snap("self");
        self.wall = self.start.elapsed();
    }

    fn cpu_s(before: Option<ProcSnap>, after: Option<ProcSnap>, tck: f64) -> Option<f64> {
        Some((after?.cpu_ticks.saturating_sub(before?.cpu_ticks)) as f64 / tck)
    }

    /// Adds server CPU (and per-unit µs if `per` > 0), server RSS, and our own CPU share.
    fn report(&self, r: &mut Report, tck: f64, per_key: &'static str, per: u64) {
        if let Some(cpu) = Self::cpu_s(self.server_before, self.server_after, tck) {
            r.num("server_cpu_s", cpu, 2);
            if !per_key.is_empty() {
                r.num(
                    per_key,
                    if per > 0 {
                        cpu * 1e6 / per as f64
                    } else {
                        f64::NAN
                    },
                    2,
                );
            }
        }
        if let (Some(b), Some(a)) = (self.server_before, self.server_after) {
            r.int("server_rss_before_kib", b.rss_kib);
            r.int("server_rss_after_kib", a.rss_kib);
            r.int(
                "server_ctx_switches",
                a.ctx_switches.saturating_sub(b.ctx_switches),
            );
        }
        if let Some(cpu) = Self::cpu_s(self.self_before, self.self_after, tck) {
            r.num("loadgen_cpu_s", cpu, 2);
            // /proc counts CPU time in ticks of 10 ms: over a phase shorter than half a second a
            // percentage is noise (206 % over 5 ms was seen), so it is left out (null, "-").
            let wall = self.wall.as_secs_f64();
            let pct = if wall >= MIN_WALL_FOR_CPU_PCT {
                100.0 * cpu / wall
            } else {
                f64::NAN
            };
            r.num("loadgen_cpu_pct", pct, 0);
        }
    }
}

/// Shortest phase (seconds) whose CPU time is reported as a percentage.
const MIN_WALL_FOR_CPU_PCT: f64 = 0.5;

fn common_rows(run: &Run, r: &mut Report) {
    let o = &run.opts;
    r.add("scenario", Val::Str(o.scenario.name().into()));
    let servers: Vec<String> = o.servers.iter().map(|s| s.to_string()).collect();
    r.add("server", Val::Str(servers.join(",")));
    let transport = if run.tls.is_some() { "tls" } else { "tcp" };
    r.add("transport", Val::Str(transport.into()));
    r.int("clients", o.clients as u64);
}

fn health_rows(run: &Run, r: &mut Report, deadline_hit: bool) {
    r.int("errors", run.errors.get());
    r.int("disconnects", run.disconnects.get());
    r.add("deadline_hit", Val::Bool(deadline_hit));
    r.num("elapsed_s", run.t0.elapsed().as_secs_f64(), 2);
    let first = run.first_errors.borrow().first().cloned();
    r.add("first_error", first.map_or(Val::Null, Val::Str));
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn scenario_connect<'a>(
    ex: &'a LocalExecutor<'a>,
    run: &Rc<Run>,
    tck: f64,
) -> (Report, bool) {
    let mut span = ProcSpan::begin(run);
    let all_ok = setup_all(ex, run).await;
    let regs_done = run.last_registered_ns.get();
    // Let the server finish writing the welcome bursts before reading its idle RSS.
    let mut deadline_hit = sleep_until(run, Instant::now() + Duration::from_millis(200)).await;
    span.end(run);
    if run.opts.hold > Duration::ZERO && !deadline_hit {
        run.phase.set(Phase::Hold);
        deadline_hit = sleep_until(run, Instant::now() + run.opts.hold).await;
    }
    deadline_hit |= Instant::now() >= run.deadline;
    quit_all(run).await;

    let mut r = Report::default();
    common_rows(run, &mut r);
    let ready = run.ready.get() as u64;
    r.int("registered", ready);
    r.int("failed", run.failed.get() as u64);
    let span_s = regs_done.saturating_sub(run.first_connect_ns.get()) as f64 / 1e9;
    r.num("connect_s", span_s, 3);
    r.num("connections_per_s", ready as f64 / span_s, 1);
    let mut lat = run.reg_latency_us.take();
    r.percentiles(
        [
            "reg_latency_p50_us",
            "reg_latency_p99_us",
            "reg_latency_max_us",
        ],
        &mut lat,
    );
    span.report(&mut r, tck, "server_cpu_us_per_client", ready);
    if let (Some(b), Some(a)) = (span.server_before, span.server_after) {
        let per = (a.rss_kib as f64 - b.rss_kib as f64) * 1024.0 / ready.max(1) as f64;
        r.num("server_rss_per_client_bytes", per, 0);
    }
    health_rows(run, &mut r, deadline_hit);
    let ok = all_ok && !deadline_hit && run.disconnects.get() == 0;
    (r, ok)
}

async fn scenario_fanout<'a>(ex: &'a LocalExecutor<'a>, run: &Rc<Run>, tck: f64) -> (Report, bool) {
    let o = &run.opts;
    let (n, s, m) = (o.clients as u64, o.senders as u64, o.messages);
    run.expected.set(m * s * (n - 1));
    let setup_ok = setup_all(ex, run).await;
    if !o.settle.is_zero() {
        Timer::after(o.settle).await;
    }
    let mut span = ProcSpan::begin(run);
    let mut deadline_hit = false;
    if setup_ok {
        // 20 MB for 5M samples: cheaper than regrowing while the measurement runs.
        run.samples_us
            .borrow_mut()
            .reserve(run.expected.get().min(64 << 20) as usize);
        run.phase.set(Phase::Measure);
        let start_ns = run.now_ns();
        let senders: Vec<Task<()>> = (0..o.senders)
            .map(|i| {
                let ob = run.clients.borrow()[i].as_ref().unwrap().ob.clone();
                ex.spawn(sender_task(run.clone(), ob, i, start_ns))
            })
            .collect();
        deadline_hit = !done_before_deadline(run).await;
        drop(senders);
    } else {
        deadline_hit |= Instant::now() >= run.deadline;
    }
    span.end(run);
    quit_all(run).await;

    let mut r = Report::default();
    common_rows(run, &mut r);
    r.int("senders", s);
    r.int("messages", m);
    r.add("rate", o.rate.map_or(Val::Null, |x| Val::Num(x, 1)));
    r.int("window", o.window);
    r.int("size", o.size as u64);
    r.int("ready", run.ready.get() as u64);
    let (exp, del) = (run.expected.get(), run.delivered.get());
    r.int("expected", exp);
    r.int("delivered", del);
    r.int("lost", exp.saturating_sub(del));
    r.int("reordered", run.reordered.get());
    r.int("duplicates", run.duplicates.get());
    r.int("unexpected", run.unexpected.get());
    let first = run.first_send_ns.get();
    let measured = if first == u64::MAX {
        0.0
    } else {
        run.last_recv_ns.get().saturating_sub(first) as f64 / 1e9
    };
    r.num("measured_s", measured, 3);
    r.num("delivered_per_s", del as f64 / measured, 0);
    let mut lat = run.samples_us.take();
    r.percentiles(
        ["latency_p50_us", "latency_p99_us", "latency_max_us"],
        &mut lat,
    );
    span.report(&mut r, tck, "server_cpu_us_per_msg", del);
    health_rows(run, &mut r, deadline_hit);
    let ok = setup_ok && !deadline_hit && del == exp && run.disconnects.get() == 0;
    (r, ok)
}

async fn scenario_pairs<'a>(ex: &'a LocalExecutor<'a>, run: &Rc<Run>, tck: f64) -> (Report, bool) {
    let o = &run.opts;
    let pairs = (o.clients / 2) as u64;
    if o.clients % 2 == 1 {
        eprintln!("loadgen: odd --clients: the last client has no peer and stays idle");
    }
    run.expected.set(pairs * o.messages);
    let setup_ok = setup_all(ex, run).await;
    if !o.settle.is_zero() {
        Timer::after(o.settle).await;
    }
    let mut span = ProcSpan::begin(run);
    let mut deadline_hit = false;
    if setup_ok {
        run.samples_us
            .borrow_mut()
            .reserve(run.expected.get().min(64 << 20) as usize);
        run.phase.set(Phase::Measure);
        run.first_send_ns.set(run.now_ns());
        for p in 0..pairs as usize {
            let ob = run.clients.borrow()[2 * p].as_ref().unwrap().ob.clone();
            send_ping(run, &ob, 2 * p + 1, 0);
        }
        deadline_hit = !done_before_deadline(run).await;
    } else {
        deadline_hit |= Instant::now() >= run.deadline;
    }
    span.end(run);
    quit_all(run).await;

    let mut r = Report::default();
    common_rows(run, &mut r);
    r.int("pairs", pairs);
    r.int("messages", o.messages);
    r.int("ready", run.ready.get() as u64);
    let (exp, del) = (run.expected.get(), run.delivered.get());
    r.int("round_trips_expected", exp);
    r.int("round_trips", del);
    r.int("unexpected", run.unexpected.get());
    let first = run.first_send_ns.get();
    let measured = if first == u64::MAX {
        0.0
    } else {
        run.last_recv_ns.get().saturating_sub(first) as f64 / 1e9
    };
    r.num("measured_s", measured, 3);
    r.num("round_trips_per_s", del as f64 / measured, 0);
    let mut lat = run.samples_us.take();
    r.percentiles(["rtt_p50_us", "rtt_p99_us", "rtt_max_us"], &mut lat);
    // Each round trip is two PRIVMSGs delivered by the server.
    span.report(&mut r, tck, "server_cpu_us_per_msg", 2 * del);
    health_rows(run, &mut r, deadline_hit);
    let ok = setup_ok && !deadline_hit && del == exp && run.disconnects.get() == 0;
    (r, ok)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadgen: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    if let Some(pid) = opts.server_pid {
        if proc_snap(&pid.to_string()).is_none() {
            eprintln!("loadgen: --server-pid {pid}: cannot read /proc/{pid}/status and stat");
            return ExitCode::from(2);
        }
    }
    let longest = opts.prefix.len() + (opts.clients.saturating_sub(1)).to_string().len();
    if longest > 9 {
        eprintln!("loadgen: warning: nicks up to {longest} characters; RFC 1459 servers allow 9");
    }
    if let Some(limit) = open_files_limit() {
        if (opts.clients as u64) + 32 > limit {
            eprintln!(
                "loadgen: warning: {} clients but only {limit} open files allowed (ulimit -n)",
                opts.clients
            );
        }
    }
    let tls = match opts.tls_cert.as_deref().map(tls_client::TlsClient::load) {
        None => None,
        Some(Ok(tls)) => Some(tls),
        Some(Err(e)) => {
            eprintln!("loadgen: --tls: {e}");
            return ExitCode::from(2);
        }
    };
    let tck = clock_ticks();
    let scenario = opts.scenario;
    let json = opts.json;
    let run = Rc::new(Run::new(opts, tls));
    // Leaked so it is `'static`: tasks that spawn tasks need `&'a LocalExecutor<'a>`, which a
    // local executor (it has a destructor) cannot lend. It lives as long as the process anyway.
    let ex: &'static LocalExecutor<'static> = Box::leak(Box::new(LocalExecutor::new()));
    // The executor runs as the main future of our runtime, on this thread alone: between its
    // polls the thread collects the reactor's events (without blocking while it is busy).
    let (report, ok) = rt().block_on(
        1,
        ex.run(async {
            let progress = ex.spawn(progress_task(run.clone()));
            let out = match scenario {
                Scenario::Connect => scenario_connect(ex, &run, tck).await,
                Scenario::Fanout => scenario_fanout(ex, &run, tck).await,
                Scenario::Pairs => scenario_pairs(ex, &run, tck).await,
            };
            drop(progress);
            out
        }),
    );
    run.clear_progress();
    // The client tasks hold `run`; drop them before the executor goes.
    run.clients.borrow_mut().clear();
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------------------------
// TLS (`--tls`)

/// TLS clients for `--tls`: rustls (ring, as in the node), trusting one pinned certificate.
#[cfg(feature = "tls")]
mod tls_client {
    use std::io;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use futures_rustls::rustls::client::danger::{
        HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
    };
    use futures_rustls::rustls::crypto::{self, CryptoProvider};
    use futures_rustls::rustls::pki_types::pem::PemObject;
    use futures_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use futures_rustls::rustls::{self, DigitallySignedStruct, SignatureScheme};

    use super::{Joined, Reader, Writer};

    /// A connector shared by every client (one rustls config, so sessions may resume).
    pub struct TlsClient(futures_rustls::TlsConnector);

    impl TlsClient {
        /// Reads the first certificate in the PEM file `path`: the only one trusted.
        pub fn load(path: &str) -> Result<TlsClient, String> {
            let cert = CertificateDer::from_pem_file(path).map_err(|e| format!("{path}: {e}"))?;
            let provider = Arc::new(crypto::ring::default_provider());
            let verifier = Pinned {
                cert,
                provider: provider.clone(),
            };
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            Ok(TlsClient(Arc::new(config).into()))
        }

        /// The handshake over `tcp`, then the stream's halves.
        pub async fn connect(
            &self,
            server: SocketAddr,
            tcp: Joined,
        ) -> io::Result<(Reader, Writer)> {
            // An IP address as the name: rustls sends no SNI for it, and the pinned
            // certificate is checked whatever its names are.
            let name = ServerName::IpAddress(server.ip().into());
            let tls = self.0.connect(name, tcp).await?;
            let (r, w) = futures_lite::io::split(tls);
            Ok((Box::new(r), Box::new(w)))
        }
    }

    /// Accepts exactly one certificate, and checks that the handshake was signed with its key.
    #[derive(Debug)]
    struct Pinned {
        cert: CertificateDer<'static>,
        provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for Pinned {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            if end_entity.as_ref() == self.cert.as_ref() {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General(
                    "the server's certificate is not the one given with --tls".into(),
                ))
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.provider.signature_verification_algorithms;
            crypto::verify_tls12_signature(message, cert, dss, algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.provider.signature_verification_algorithms;
            crypto::verify_tls13_signature(message, cert, dss, algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}

/// Without the `tls` feature `--tls` is refused at start.
#[cfg(not(feature = "tls"))]
mod tls_client {
    use std::io;
    use std::net::SocketAddr;

    use super::{Joined, Reader, Writer};

    /// Never made: [`TlsClient::load`] always fails in this build.
    pub enum TlsClient {}

    impl TlsClient {
        pub fn load(_path: &str) -> Result<TlsClient, String> {
            Err("this loadgen was built without the `tls` feature".into())
        }

        pub async fn connect(
            &self,
            _server: SocketAddr,
            _tcp: Joined,
        ) -> io::Result<(Reader, Writer)> {
            match *self {}
        }
    }
}
