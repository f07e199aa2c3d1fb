//! Cancellation: what dropping a task handle or a future does, and which reads and writes survive it.
//!
//! ```text
//! cargo run --example cancel                    # our executor (async-executor)
//! cargo run --example cancel --features tokio   # the same, then on Tokio
//! ```
//!
//! 1. Dropping a smol `Task` cancels the task: its future is dropped (destructors run) and never
//!    polled again. Dropping a Tokio `JoinHandle` detaches the task: it runs on until `abort()`.
//!    Our `AbortOnDrop` (src/rt/tokio.rs) gives Tokio the smol contract.
//! 2. A timeout built with `futures_lite::future::or` (or `tokio::time::timeout`) drops the losing
//!    future, and with it everything it owned.
//! 3. Cancellation safety over a real loopback TCP pair: `read_line` raced against a timer loses a
//!    half-received line; a read into a buffer that lives outside the future (the node's
//!    `LineBuffer`) loses nothing. On the write side, `write_all` raced against a timer and retried
//!    tears and duplicates lines; writing from an offset the caller owns (as the node's writer
//!    does) sends every byte once.
//!
//! See docs/cancellation.md for the explanation and the output on this machine.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatnode::proto::{Frame, LineBuffer};
use chatnode::rt::smol::SmolRuntime;
use chatnode::rt::Runtime;
use futures_lite::future::or;
use futures_lite::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// How long each worker step sleeps.
pub const STEP: Duration = Duration::from_millis(20);
/// The read and write timeouts raced against the I/O in part 3.
pub const IO_TIMEOUT: Duration = Duration::from_millis(100);

/// A timestamped record of what happened, printed as it happens and kept for the tests.
pub struct Events {
    start: Instant,
    lines: Mutex<Vec<String>>,
    quiet: bool,
}

impl Events {
    /// A new record; `quiet` records without printing (tests).
    pub fn new(quiet: bool) -> Arc<Events> {
        Arc::new(Events {
            start: Instant::now(),
            lines: Mutex::new(Vec::new()),
            quiet,
        })
    }

    /// Records (and prints) `msg`.
    pub fn say(&self, msg: impl Into<String>) {
        let msg = msg.into();
        if !self.quiet {
            println!(
                "  [+{:>4} ms] {msg}",
                self.start.elapsed().as_millis().min(9999)
            );
        }
        self.lines.lock().unwrap().push(msg);
    }

    /// Everything recorded so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Index of the first record containing `needle`.
    pub fn position(&self, needle: &str) -> Option<usize> {
        self.lines().iter().position(|l| l.contains(needle))
    }

    /// How many records contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }
}

/// Says so when dropped: proof that a future's destructors ran.
pub struct Guard {
    name: String,
    events: Arc<Events>,
}

impl Guard {
    /// A guard that reports `name` when dropped.
    pub fn new(name: &str, events: &Arc<Events>) -> Guard {
        Guard {
            name: name.to_string(),
            events: events.clone(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.events
            .say(format!("{}: destructor ran (guard dropped)", self.name));
    }
}

/// A task body: holds a [`Guard`], sleeps [`STEP`] `steps` times, saying so after each.
pub async fn worker<R: Runtime>(rt: R, name: String, events: Arc<Events>, steps: u32) -> u32 {
    let _guard = Guard::new(&name, &events);
    for step in 1..=steps {
        rt.sleep(STEP).await;
        events.say(format!("{name}: step {step}"));
    }
    events.say(format!("{name}: finished all {steps} steps"));
    steps
}

// ---------------------------------------------------------------------------------------------
// Part 1 and 2: task handles and timeouts.

/// smol: spawn a worker, drop its `Task` after ~2 steps, wait, see it stopped.
pub fn smol_drop_task(events: &Arc<Events>) {
    let rt = SmolRuntime::new();
    rt.block_on(1, {
        let rt = rt.clone();
        let events = events.clone();
        async move {
            let task = rt.spawn(
                "worker".into(),
                worker(rt.clone(), "smol worker".into(), events.clone(), 10),
            );
            rt.sleep(STEP * 2 + STEP / 2).await;
            drop(task);
            events.say("main: dropped the smol Task");
            rt.sleep(STEP * 4).await;
            events.say("main: waited 4 more steps");
        }
    });
}

/// smol and futures-lite: a timeout built with `or` drops the slow future when the timer wins.
pub fn smol_timeout_or(events: &Arc<Events>) {
    let rt = SmolRuntime::new();
    rt.block_on(1, {
        let rt = rt.clone();
        let events = events.clone();
        async move {
            let slow = {
                let rt = rt.clone();
                let events = events.clone();
                async move {
                    let _guard = Guard::new("slow request", &events);
                    rt.sleep(Duration::from_secs(2)).await;
                    "answer"
                }
            };
            let got = or(async { Some(slow.await) }, async {
                rt.sleep(STEP * 2).await;
                None
            })
            .await;
            events.say(format!("main: or() returned {got:?} (the timer won)"));
        }
    });
}

/// Tokio: drop a plain `JoinHandle` (the task runs on), then `abort()` it through its
/// `AbortHandle`; then drop our `AbortOnDrop` (the task stops).
#[cfg(feature = "tokio")]
pub fn tokio_drop_handles(events: &Arc<Events>) {
    use chatnode::rt::tokio::TokioRuntime;
    let runtime = TokioRuntime::build(1, None).expect("tokio runtime");
    let rt = TokioRuntime::new(runtime.handle().clone());
    let events = events.clone();
    runtime.block_on(async move {
        let handle: tokio::task::JoinHandle<u32> = tokio::spawn(worker(
            rt.clone(),
            "tokio detached worker".into(),
            events.clone(),
            10,
        ));
        let abort = handle.abort_handle();
        rt.sleep(STEP * 2 + STEP / 2).await;
        drop(handle);
        events.say("main: dropped the tokio JoinHandle");
        rt.sleep(STEP * 3).await;
        abort.abort();
        events.say("main: called abort() on its AbortHandle");
        rt.sleep(STEP * 3).await;
        events.say("main: waited 3 more steps");

        let owned = rt.spawn(
            "worker".into(),
            worker(
                rt.clone(),
                "tokio AbortOnDrop worker".into(),
                events.clone(),
                10,
            ),
        );
        rt.sleep(STEP * 2 + STEP / 2).await;
        drop(owned);
        events.say("main: dropped the AbortOnDrop handle (chatnode::rt::tokio)");
        rt.sleep(STEP * 4).await;
        events.say("main: waited 4 more steps");
    });
}

/// Tokio: `tokio::time::timeout` drops the slow future when the timer wins, as `or` does.
#[cfg(feature = "tokio")]
pub fn tokio_timeout(events: &Arc<Events>) {
    use chatnode::rt::tokio::TokioRuntime;
    let runtime = TokioRuntime::build(1, None).expect("tokio runtime");
    let events = events.clone();
    runtime.block_on(async move {
        let slow = {
            let events = events.clone();
            async move {
                let _guard = Guard::new("slow request", &events);
                tokio::time::sleep(Duration::from_secs(2)).await;
                "answer"
            }
        };
        let got = tokio::time::timeout(STEP * 2, slow).await;
        events.say(format!(
            "main: tokio::time::timeout returned {got:?} (the timer won)"
        ));
    });
}

// ---------------------------------------------------------------------------------------------
// Part 3: cancellation safety of reads and writes, over real loopback TCP.

/// How the reader reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStyle {
    /// `BufReader::read_line`, a new future after each timeout: not cancel-safe.
    ReadLine,
    /// One `read` into `LineBuffer::spare()`, frames taken out after: cancel-safe.
    LineBuffer,
}

/// What the reader got.
#[derive(Clone, Debug, Default)]
pub struct ReadOutcome {
    /// Complete lines, in order.
    pub lines: Vec<String>,
    /// Times the timer won and the read future was dropped.
    pub timeouts: usize,
}

/// The peer: sends half a line, says so, waits until told (the reader's timeout fired), sends
/// the rest and one more line, then closes.
fn half_line_peer(
    addr: SocketAddr,
    half_sent: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.write_all(b"PRIVMSG #chat :hel")?;
    let _ = half_sent.send(());
    let _ = go.recv_timeout(Duration::from_secs(5));
    s.write_all(b"lo world\r\nPING :after\r\n")?;
    Ok(())
}

/// Reads lines from a peer that pauses mid-line, with a timeout around each read.
pub async fn read_with_timeouts<R: Runtime>(
    rt: R,
    style: ReadStyle,
    events: &Arc<Events>,
) -> std::io::Result<ReadOutcome> {
    let std_listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = std_listener.local_addr()?;
    // As src/server does: Tokio refuses to adopt a blocking socket.
    std_listener.set_nonblocking(true)?;
    let listener = rt.listener(std_listener)?;
    let (go_tx, go_rx) = mpsc::channel();
    let (half_tx, half_rx) = mpsc::channel();
    let peer = std::thread::spawn(move || half_line_peer(addr, half_tx, go_rx));
    let conn = rt.accept(&listener).await?;
    // Start reading only once the first half is in our socket's receive buffer, so the read
    // below surely takes it in before its timer fires (polled: this is an async task).
    let waiting = Instant::now();
    while half_rx.try_recv().is_err() && waiting.elapsed() < Duration::from_secs(5) {
        rt.sleep(Duration::from_millis(1)).await;
    }
    let mut out = ReadOutcome::default();
    let what = match style {
        ReadStyle::ReadLine => "read_line",
        ReadStyle::LineBuffer => "LineBuffer",
    };
    let timed_out = |out: &mut ReadOutcome| {
        out.timeouts += 1;
        events.say(format!(
            "{what}: timeout #{}, the read future was dropped; peer, send the rest",
            out.timeouts
        ));
        let _ = go_tx.send(());
    };
    match style {
        ReadStyle::ReadLine => {
            let mut reader = BufReader::new(conn.reader);
            loop {
                let mut line = String::new();
                let got = or(async { Some(reader.read_line(&mut line).await) }, async {
                    rt.sleep(IO_TIMEOUT).await;
                    None
                })
                .await;
                match got {
                    None => timed_out(&mut out),
                    Some(Ok(0)) | Some(Err(_)) => break,
                    Some(Ok(_)) => {
                        let line = line.trim_end().to_string();
                        events.say(format!("{what}: got line {line:?}"));
                        out.lines.push(line);
                    }
                }
            }
        }
        ReadStyle::LineBuffer => {
            let mut reader = conn.reader;
            let mut buf = LineBuffer::new();
            loop {
                // The future borrows the buffer; the bytes it reads land in the buffer, which
                // outlives the future. A dropped read has read nothing.
                let got = or(async { Some(reader.read(buf.spare()).await) }, async {
                    rt.sleep(IO_TIMEOUT).await;
                    None
                })
                .await;
                match got {
                    None => timed_out(&mut out),
                    Some(Ok(0)) | Some(Err(_)) => break,
                    Some(Ok(n)) => {
                        buf.filled(n);
                        while let Some(frame) = buf.next_frame() {
                            if let Frame::Line(l) = frame {
                                let line = String::from_utf8_lossy(l).into_owned();
                                events.say(format!("{what}: got line {line:?}"));
                                out.lines.push(line);
                            }
                        }
                    }
                }
            }
        }
    }
    let _ = peer.join();
    Ok(out)
}

/// Lines in the write test's payload.
pub const PAYLOAD_LINES: usize = 160_000;
/// Bytes per payload line, CRLF included. Not a divisor of 4096, so a cut made by a socket
/// buffer boundary lands inside a line.
pub const LINE_LEN: usize = 100;

/// The payload: `PAYLOAD_LINES` numbered IRC lines of `LINE_LEN` bytes (16 MB, more than the
/// socket buffers of a peer that is not reading can take).
pub fn payload() -> Vec<u8> {
    let mut out = Vec::with_capacity(PAYLOAD_LINES * LINE_LEN);
    for i in 0..PAYLOAD_LINES {
        let line = format!("PRIVMSG #chat :line {i:08} ");
        out.extend_from_slice(line.as_bytes());
        out.resize(out.len() + LINE_LEN - 2 - line.len(), b'x');
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What the receiving peer found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Bytes the writer had written when its timer fired (known only to the owned-offset writer).
    pub written_at_timeout: Option<usize>,
    /// Times the timer won and the write future was dropped.
    pub timeouts: usize,
    /// Bytes the peer received.
    pub received: usize,
    /// Well-formed lines received.
    pub lines: usize,
    /// Malformed (torn) lines.
    pub torn: usize,
    /// Lines received more than once.
    pub duplicated: usize,
    /// Lines never received.
    pub missing: usize,
}

/// How the writer writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStyle {
    /// `write_all(&payload)` raced against a timer; after the timeout, `write_all` again.
    RetryWriteAll,
    /// `write(&payload[offset..])` raced against a timer, the offset kept by the caller.
    OwnedOffset,
}

/// The receiving peer: waits until told, then reads to EOF and checks every line.
fn receiving_peer(addr: SocketAddr, go: mpsc::Receiver<()>) -> std::io::Result<WriteOutcome> {
    let mut s = TcpStream::connect(addr)?;
    let _ = go.recv_timeout(Duration::from_secs(5));
    let mut data = Vec::new();
    s.read_to_end(&mut data)?;
    let mut seen = vec![0u32; PAYLOAD_LINES];
    let mut out = WriteOutcome {
        received: data.len(),
        ..WriteOutcome::default()
    };
    for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let n = std::str::from_utf8(line)
            .ok()
            .filter(|l| l.len() == LINE_LEN - 1 && l.ends_with('\r'))
            .and_then(|l| l.strip_prefix("PRIVMSG #chat :line "))
            .and_then(|l| l.get(..8))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n < PAYLOAD_LINES);
        match n {
            Some(n) => {
                out.lines += 1;
                seen[n] += 1;
            }
            None => out.torn += 1,
        }
    }
    out.duplicated = seen.iter().filter(|&&c| c > 1).count();
    out.missing = seen.iter().filter(|&&c| c == 0).count();
    Ok(out)
}

/// Writes [`payload`] to a peer that starts reading only after the writer's first timeout.
pub async fn write_with_timeouts<R: Runtime>(
    rt: R,
    style: WriteStyle,
    events: &Arc<Events>,
) -> std::io::Result<WriteOutcome> {
    let data = payload();
    let std_listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = std_listener.local_addr()?;
    // As src/server does: Tokio refuses to adopt a blocking socket.
    std_listener.set_nonblocking(true)?;
    let listener = rt.listener(std_listener)?;
    let (go_tx, go_rx) = mpsc::channel();
    let peer = std::thread::spawn(move || receiving_peer(addr, go_rx));
    let conn = rt.accept(&listener).await?;
    let mut writer = conn.writer;
    let mut written_at_timeout = None;
    let mut timeouts = 0;
    match style {
        WriteStyle::RetryWriteAll => {
            let mut attempt = 1;
            loop {
                let got = or(async { Some(writer.write_all(&data).await) }, async {
                    rt.sleep(IO_TIMEOUT).await;
                    None
                })
                .await;
                match got {
                    Some(r) => {
                        r?;
                        events.say(format!("write_all: attempt {attempt} completed"));
                        break;
                    }
                    None => {
                        events.say(format!(
                            "write_all: attempt {attempt} timed out after writing an unknown \
                             part of the payload; retrying write_all from the start"
                        ));
                        attempt += 1;
                        timeouts += 1;
                        let _ = go_tx.send(());
                    }
                }
            }
        }
        WriteStyle::OwnedOffset => {
            let mut offset = 0;
            while offset < data.len() {
                let got = or(async { Some(writer.write(&data[offset..]).await) }, async {
                    rt.sleep(IO_TIMEOUT).await;
                    None
                })
                .await;
                match got {
                    Some(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Some(Ok(n)) => offset += n,
                    Some(Err(e)) => return Err(e),
                    None => {
                        events.say(format!(
                            "owned offset: timed out at byte {offset} of {}; carrying on from there",
                            data.len()
                        ));
                        written_at_timeout.get_or_insert(offset);
                        timeouts += 1;
                        let _ = go_tx.send(());
                    }
                }
            }
            events.say("owned offset: every byte written");
        }
    }
    writer.close().await?;
    drop(writer);
    drop(conn.reader);
    let mut out = peer
        .join()
        .map_err(|_| std::io::Error::other("peer panicked"))??;
    out.written_at_timeout = written_at_timeout;
    out.timeouts = timeouts;
    Ok(out)
}

fn report_read(rt: &str, style: ReadStyle, out: &std::io::Result<ReadOutcome>) {
    match out {
        Ok(o) => println!(
            "=> {rt} {style:?}: {} timeout(s), lines {:?}",
            o.timeouts, o.lines
        ),
        Err(e) => println!("=> {rt} {style:?}: error {e}"),
    }
}

fn report_write(rt: &str, style: WriteStyle, out: &std::io::Result<WriteOutcome>) {
    match out {
        Ok(o) => {
            // Each line counted once: copies of a line already received are not "intact" lines.
            let intact = PAYLOAD_LINES - o.missing;
            println!(
                "=> {rt} {style:?}: sent {} bytes, peer received {} bytes: {intact} of \
                 {PAYLOAD_LINES} lines intact, {} extra copies ({} lines received twice or \
                 more), {} torn, {} missing",
                PAYLOAD_LINES * LINE_LEN,
                o.received,
                o.lines - intact,
                o.duplicated,
                o.torn,
                o.missing
            )
        }
        Err(e) => println!("=> {rt} {style:?}: error {e}"),
    }
}

#[path = "shared/args.rs"]
mod args;

const NAME: &str = "cancel";

/// `--help`: what the example shows and how to read its output.
const HELP: &str = "\
cancel: what dropping a task handle or a future does, and which reads and writes
survive it.

USAGE: cargo run --example cancel [--features tokio]

Four parts, each on our executor ('smol') and, with --features tokio, on Tokio:
1. a worker task whose handle is dropped: smol's Task cancels it, Tokio's JoinHandle
   detaches it (it runs on);
2. a timeout: the losing future is dropped, and its guard with it;
3. reading a line from a real loopback socket with a 100 ms timeout, while the peer
   sends half a line, waits for the timeout, then sends the rest: read_line loses the
   half it had taken; reading into a buffer that outlives the future loses nothing;
4. writing 16 MB to a peer that starts reading only after the first write timeout:
   retrying write_all duplicates and tears lines; writing from an offset the caller
   keeps sends every byte once.

Reading the output: '-- smol' and '-- tokio' head each runtime's lines. '[+ N ms]'
lines are events as they happen, N ms after the part started. '=>' lines are
results; in part 4, 'N of 160000 lines intact' counts each line once, 'extra copies'
are lines received again, 'torn' are broken lines, 'missing' never arrived.
docs/cancellation.md explains the figures.
";

fn main() {
    args::help_or_run(NAME, HELP);
    let smol = SmolRuntime::new();

    println!("1. Dropping a task's handle");
    println!("-- smol: a worker (10 steps of 20 ms) whose Task is dropped after ~2 steps");
    let events = Events::new(false);
    smol_drop_task(&events);
    #[cfg(feature = "tokio")]
    {
        println!("-- tokio: the same worker, spawned with tokio::spawn; its JoinHandle dropped");
        let events = Events::new(false);
        tokio_drop_handles(&events);
    }
    println!("=> smol: dropping the Task cancelled the worker; its destructor ran right away and");
    println!(
        "   no step came after. Tokio: after the JoinHandle was dropped the worker kept going"
    );
    println!(
        "   until abort(); AbortOnDrop (what chatnode's Tokio build spawns with) cancels on drop."
    );
    #[cfg(not(feature = "tokio"))]
    println!("   (run with --features tokio for the Tokio half)");

    println!();
    println!("2. A timeout drops the losing future");
    println!("-- smol: or(slow request (2 s), timer (40 ms))");
    smol_timeout_or(&Events::new(false));
    #[cfg(feature = "tokio")]
    {
        println!("-- tokio: tokio::time::timeout(40 ms, slow request (2 s))");
        tokio_timeout(&Events::new(false));
    }
    println!("=> the slow future was dropped, guard and all, before the timeout's caller went on.");

    println!();
    println!("3. Cancellation safety: the peer sends \"PRIVMSG #chat :hel\", waits for our read");
    println!("   timeout (100 ms) to fire, then sends \"lo world\\r\\nPING :after\\r\\n\"");
    println!("-- smol: read_line, then a read into LineBuffer");
    for style in [ReadStyle::ReadLine, ReadStyle::LineBuffer] {
        let events = Events::new(false);
        let out = smol.block_on(1, read_with_timeouts(smol.clone(), style, &events));
        report_read("smol", style, &out);
    }
    #[cfg(feature = "tokio")]
    println!("-- tokio: read_line, then a read into LineBuffer");
    #[cfg(feature = "tokio")]
    for style in [ReadStyle::ReadLine, ReadStyle::LineBuffer] {
        use chatnode::rt::tokio::TokioRuntime;
        let runtime = TokioRuntime::build(1, None).expect("tokio runtime");
        let rt = TokioRuntime::new(runtime.handle().clone());
        let events = Events::new(false);
        let out = runtime.block_on(read_with_timeouts(rt, style, &events));
        report_read("tokio", style, &out);
    }
    println!(
        "=> read_line keeps the bytes it has taken from the socket inside its own future; the"
    );
    println!(
        "   timeout dropped it, so \"PRIVMSG #chat :hel\" was lost and the next line came out torn"
    );
    println!(
        "   as \"lo world\". A read into LineBuffer::spare() either read nothing (dropped while"
    );
    println!(
        "   Pending) or its bytes are already in the buffer, which outlives the future: nothing"
    );
    println!("   lost. The node's reader (src/server/connection.rs) reads this way.");

    println!();
    println!(
        "4. The write side: {} bytes ({PAYLOAD_LINES} lines) to a peer that reads only after",
        PAYLOAD_LINES * LINE_LEN
    );
    println!("   our first write timeout (100 ms)");
    println!("-- smol: write_all retried after each timeout, then writing from an owned offset");
    for style in [WriteStyle::RetryWriteAll, WriteStyle::OwnedOffset] {
        let events = Events::new(false);
        let out = smol.block_on(1, write_with_timeouts(smol.clone(), style, &events));
        report_write("smol", style, &out);
    }
    #[cfg(feature = "tokio")]
    println!("-- tokio: write_all retried after each timeout, then writing from an owned offset");
    #[cfg(feature = "tokio")]
    for style in [WriteStyle::RetryWriteAll, WriteStyle::OwnedOffset] {
        use chatnode::rt::tokio::TokioRuntime;
        let runtime = TokioRuntime::build(1, None).expect("tokio runtime");
        let rt = TokioRuntime::new(runtime.handle().clone());
        let events = Events::new(false);
        let out = runtime.block_on(write_with_timeouts(rt, style, &events));
        report_write("tokio", style, &out);
    }
    println!(
        "=> a dropped write_all does not say how much it wrote: retrying it sent a prefix twice"
    );
    println!("   and left a torn line where the first attempt stopped. Writing from an offset the");
    println!(
        "   caller owns loses and repeats nothing. The node's writer keeps its batch and offset"
    );
    println!(
        "   in the connection (Writing::Batch(offset)); lines still queued stay in the SendQueue."
    );
}
