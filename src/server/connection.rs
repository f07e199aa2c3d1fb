//! One client connection: a reader and a writer, driven by one hand-written future.
//!
//! **Why hand-written.** Every connection pays for its task's future, all the time, idle or
//! not. Written as `async fn`s raced with `or`, the reader and writer came to about 2 KB (the
//! compiler keeps every value that lives across any `.await`, and stores futures passed by value
//! twice). As one struct polled by hand it is a few hundred bytes, and the hot path does no work
//! it need not do: no timer is created per read or per write, no future per line.
//!
//! **Reader.** Reads into a [`LineBuffer`] that lives in this struct, so a poll that ends with
//! `Pending`, or a task cancelled at shutdown, never loses half a line: the bytes are either
//! still in the socket or already in the buffer. Splits lines, parses them, and pushes
//! [`Event`]s onto this client's bounded [`RecvQueue`] (its RecvQ, which the broker serves in
//! turns with everyone else's). When the RecvQ is full, the reader parks that one event (boxed:
//! rare, and it would make every connection bigger inline) and reads nothing more until the
//! broker has taken some: a busy broker slows this client alone, and TCP slows it down. The
//! Disconnected event and the timer's events are never refused. The reader also keeps time:
//! it reports silence ([`Event::Idle`]) and the registration deadline; the broker decides what
//! they mean.
//!
//! **Writer.** Takes every queued line at once ([`Outbound::poll_take_all`]) and writes them in as
//! few calls as it can: one line alone is written from the shared bytes without a copy; several
//! are gathered into one buffer of at most [`WRITE_BATCH_BYTES`] and written with one call. (A
//! vectored write straight from the shared lines, which saves the copy, cost 1.3x to 1.4x the
//! node's CPU per delivery in fan-out: docs/executor.md, decision 19.) A write timer is armed only
//! when the socket is full; a write that makes no progress for the write timeout ends the
//! connection. When the broker drops the queue, the writer writes what is left (the final
//! `ERROR`), closes the socket, and the future completes.
//!
//! **Fairness.** One poll does a bounded amount of work on each side ([`READS_PER_POLL`],
//! [`WRITES_PER_POLL`]) and then yields, so one flooding client cannot keep a worker thread from
//! everyone else: our executor, like async-executor, has no budget of its own.
//!
//! **Ending.** The future completes when the writer is done: the broker forgot the client (its
//! queue closed) or a write failed, in which case the broker is told (on the RecvQ) first. The reader ending
//! (EOF, error) only tells the broker, which then closes the queue.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncRead, AsyncWrite};

use crate::broker::inbox::HandOffError;
use crate::broker::{ClientId, Event, Line, Outbound, RecvQueue};
use crate::budget::Budget;
use crate::proto::{Frame, LineBuffer, Message};
use crate::rt::Runtime;

/// The writer gathers at most this many bytes into one write.
pub const WRITE_BATCH_BYTES: usize = 32 * 1024;

/// Reads one poll may do before it yields to other tasks.
pub const READS_PER_POLL: u32 = 8;

/// Writes one poll may do before it yields to other tasks.
pub const WRITES_PER_POLL: u32 = 8;

/// Read buffers this small are freed as soon as they hold no partial line.
const SMALL_READ_BUFFER: usize = crate::proto::MAX_LINE_LEN;

/// Time limits of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// From accept to the first byte: a connection that sends nothing at all is closed
    /// sooner than one that is registering (`--silent-timeout`).
    pub silent: Duration,
    /// From accept to the end of registration.
    pub register: Duration,
    /// Silence before the broker pings, and again before it gives up.
    pub ping_interval: Duration,
    /// How long a write may make no progress.
    pub write: Duration,
}

/// Everything one connection needs. [`Connection::run`] turns it into the connection's future.
///
/// `Rd` and `Wr` are the byte stream's halves: the runtime's socket halves for plain TCP, the
/// boxed halves of a TLS or WebSocket stream otherwise (see [`super::transport`]).
pub struct Connection<R: Runtime, Rd = <R as Runtime>::Reader, Wr = <R as Runtime>::Writer> {
    /// The runtime, for timers.
    pub rt: R,
    /// This connection's id at the broker.
    pub id: ClientId,
    /// This connection's queue of events for the broker (its RecvQ).
    pub recv: RecvQueue,
    /// Read half of the byte stream.
    pub reader: Rd,
    /// Write half of the byte stream.
    pub writer: Wr,
    /// Lines the broker queued for this client.
    pub outbound: Outbound,
    /// Time limits.
    pub timeouts: Timeouts,
    /// When the socket was accepted: the registration deadline counts from here, so a
    /// transport's handshake counts against it.
    pub started: Instant,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the writer is writing now.
enum Writing {
    /// Nothing in flight.
    Idle,
    /// One shared line, from this offset: written without a copy.
    Line(Line, usize),
    /// `batch[offset..]`.
    Batch(usize),
}

/// The connection's future. Completes when the connection is over.
pub struct ConnectionFuture<R: Runtime, Rd = <R as Runtime>::Reader, Wr = <R as Runtime>::Writer> {
    rt: R,
    id: ClientId,
    recv: RecvQueue,
    timeouts: Timeouts,

    reader: Rd,
    buf: LineBuffer,
    /// An event waiting for room in the RecvQ; reading pauses meanwhile. Boxed: it is rare, and
    /// an event inline would make every connection bigger.
    parked: Option<Box<Event>>,
    /// EOF or a read error was reported: the reader is finished.
    read_done: bool,
    started: Instant,
    last_input: Instant,
    deadline_reported: bool,
    /// Some input arrived: the silent deadline no longer applies.
    heard: bool,
    /// Fires at the next registration or idle deadline; checked lazily (see `poll_timer`).
    timer: BoxFuture<()>,
    /// No earlier than when `timer` fires. Before it, a poll of the timer cannot find it ready,
    /// and once polled it wakes the task when it fires: see `poll_timer`.
    timer_due: Instant,
    /// `timer` has been polled, so it holds this task's waker.
    timer_armed: bool,

    writer: Wr,
    outbound: Outbound,
    pending: VecDeque<Line>,
    batch: Vec<u8>,
    writing: Writing,
    /// Armed while a write waits for the socket.
    write_timer: Option<BoxFuture<()>>,
    /// Bytes were written since the last flush. TCP needs no flush, but TLS and WebSocket
    /// streams may keep bytes in their own buffer until flushed.
    unflushed: bool,
    /// The queue closed and was drained: closing the socket.
    closing: bool,
}

impl<R, Rd, Wr> Connection<R, Rd, Wr>
where
    R: Runtime,
    Rd: AsyncRead + Unpin,
    Wr: AsyncWrite + Unpin,
{
    /// The connection's future: runs until the broker forgets the client or its socket fails.
    pub fn run(self) -> ConnectionFuture<R, Rd, Wr> {
        let now = Instant::now();
        // The registration deadline counts from the accept: a TLS or WebSocket handshake has
        // used part of it already.
        let register_left = (self.started + self.timeouts.register).saturating_duration_since(now);
        let first = register_left
            .min(self.timeouts.ping_interval)
            .min(self.timeouts.silent);
        ConnectionFuture {
            timer: Box::pin(self.rt.sleep(first)),
            timer_due: now + first,
            timer_armed: false,
            rt: self.rt,
            id: self.id,
            recv: self.recv,
            timeouts: self.timeouts,
            reader: self.reader,
            buf: LineBuffer::new(),
            parked: None,
            read_done: false,
            started: self.started,
            last_input: now,
            deadline_reported: false,
            heard: false,
            writer: self.writer,
            outbound: self.outbound,
            pending: VecDeque::new(),
            batch: Vec::new(),
            writing: Writing::Idle,
            write_timer: None,
            unflushed: false,
            closing: false,
        }
    }
}

// Nothing in the struct is pinned structurally: timers and sends are boxed, the socket halves
// are `Unpin`, and the runtime handle is only cloned from. So moving it is always fine.
impl<R: Runtime, Rd, Wr> Unpin for ConnectionFuture<R, Rd, Wr> {}

impl<R, Rd, Wr> Future for ConnectionFuture<R, Rd, Wr>
where
    R: Runtime,
    Rd: AsyncRead + Unpin,
    Wr: AsyncWrite + Unpin,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match this.poll_writer(cx) {
            Poll::Ready(Ok(())) => return Poll::Ready(()),
            Poll::Ready(Err(reason)) => {
                let id = this.id;
                this.recv.push_final(Event::Disconnected { id, reason });
                return Poll::Ready(());
            }
            Poll::Pending => {}
        }
        this.poll_reader(cx);
        Poll::Pending
    }
}

impl<R, Rd, Wr> ConnectionFuture<R, Rd, Wr>
where
    R: Runtime,
    Rd: AsyncRead + Unpin,
    Wr: AsyncWrite + Unpin,
{
    /// Hands `event` to the broker. `false` if the RecvQ is full (the event is parked and
    /// reading pauses until the broker takes some) or the broker is gone (the reader is done).
    fn deliver(&mut self, event: Event) -> bool {
        match self.recv.try_push(event) {
            Ok(()) => true,
            Err(HandOffError::Full(event)) => {
                self.parked = Some(event);
                false
            }
            Err(HandOffError::Gone) => {
                self.read_done = true; // shutting down
                false
            }
        }
    }

    fn poll_reader(&mut self, cx: &mut Context<'_>) {
        let mut budget = Budget::new(READS_PER_POLL);
        // The timer is looked at once per poll: it wakes the task when it fires, so looking
        // again after each read (a flag, a waker compare) would only cost time. One that fired
        // was replaced by a new one, which must be polled to be armed: looked at again.
        let mut timer_checked = false;
        loop {
            if self.read_done {
                return;
            }
            if let Some(event) = self.parked.take() {
                if self.recv.poll_ready(cx).is_pending() {
                    self.parked = Some(event);
                    return; // the broker wakes us when it takes events
                }
                self.deliver(*event);
                continue;
            }
            // Hand over every complete line before reading more.
            if !self.deliver_frames() {
                continue; // the RecvQ is full, or the broker is gone
            }
            if !timer_checked {
                timer_checked = true;
                if self.poll_timer(cx) {
                    timer_checked = false;
                    continue;
                }
            }
            if budget.poll_tick(cx).is_pending() {
                return; // a flood: let other tasks run; we are scheduled to come back
            }
            match Pin::new(&mut self.reader).poll_read(cx, self.buf.spare()) {
                Poll::Pending => {
                    if self.buf.capacity() <= SMALL_READ_BUFFER {
                        // A client that sends a line now and then gets a fresh small buffer per
                        // read rather than keeping one while idle. A busy one, whose buffer
                        // grew, keeps it until the idle timer frees it.
                        self.buf.shrink_if_idle();
                    }
                    return;
                }
                Poll::Ready(Ok(0)) => self.finish_reading("Connection closed".into()),
                Poll::Ready(Ok(n)) => {
                    self.buf.filled(n);
                    // This poll's start: close enough for an idle timeout, and no clock read.
                    self.last_input = crate::rt::stats::recent_now();
                    self.heard = true;
                }
                Poll::Ready(Err(e)) => self.finish_reading(format!("Read error: {e}")),
            }
        }
    }

    fn finish_reading(&mut self, reason: String) {
        let id = self.id;
        // Lines read before the EOF are queued ahead of it, and it is never refused.
        self.recv.push_final(Event::Disconnected { id, reason });
        self.read_done = true;
    }

    /// Sends every complete line in the buffer to the broker. `false` if it had to stop.
    fn deliver_frames(&mut self) -> bool {
        let id = self.id;
        loop {
            let event = match self.buf.next_frame() {
                None => return true,
                Some(Frame::TooLong) => Event::LineTooLong { id },
                Some(Frame::Line(line)) => match Message::parse(line) {
                    Ok(msg) => Event::Line { id, msg },
                    Err(e) => {
                        log::debug!("client {id}: ignored a malformed line: {e}");
                        continue;
                    }
                },
            };
            if !self.deliver(event) {
                return false;
            }
        }
    }

    /// Checks the registration and idle deadlines. The timer is not reset on every read:
    /// when it fires, it compares against the time of the last input and re-arms for the
    /// real deadline, so a busy connection creates no timers at all. `true` if it fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        // An armed timer wakes the task when it fires; until its deadline, this poll's start
        // (known without a clock read when task figures are on) proves it has not fired, and the
        // timer, its box and its shared flag stay out of the cache: in `perf` of `loadgen pairs`
        // at one thread, the two cache misses of looking were 1.1 % of the node's CPU.
        if self.timer_armed && crate::rt::stats::poll_start().is_some_and(|t| t < self.timer_due) {
            return false;
        }
        if self.timer.as_mut().poll(cx).is_pending() {
            self.timer_armed = true;
            return false;
        }
        let now = Instant::now();
        let register_deadline = self.started + self.timeouts.register;
        let silent_deadline = self.started + self.timeouts.silent;
        if !self.heard && !self.deadline_reported && now >= silent_deadline {
            // Not a word since accept: close it now rather than hold it for the whole
            // registration timeout (2,000 of these from one host used to stay for 30 s).
            let secs = crate::decimal::Seconds(self.timeouts.silent);
            let reason = format!("Connection timed out: nothing received in {secs} seconds");
            self.finish_reading(reason);
            return true;
        }
        let mut events = Vec::new();
        if !self.deadline_reported && now >= register_deadline {
            self.deadline_reported = true;
            events.push(Event::RegistrationDeadline { id: self.id });
        }
        if now >= self.last_input + self.timeouts.ping_interval {
            self.last_input = now;
            self.buf.shrink_if_idle();
            events.push(Event::Idle { id: self.id });
        }
        let mut next = self.last_input + self.timeouts.ping_interval;
        if !self.deadline_reported {
            next = next.min(register_deadline);
            if !self.heard {
                next = next.min(silent_deadline);
            }
        }
        self.timer = Box::pin(self.rt.sleep(next.saturating_duration_since(now)));
        self.timer_due = next;
        self.timer_armed = false;
        for event in events {
            // At most two per interval, and they must not be lost: past the RecvQ's bound.
            self.recv.push_final(event);
        }
        true
    }

    /// Drives the writer. `Ready(Ok)` when the queue closed and the socket is closed;
    /// `Ready(Err)` when the socket failed; `Pending` otherwise.
    fn poll_writer(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        let mut budget = Budget::new(WRITES_PER_POLL);
        loop {
            if self.closing {
                return match Pin::new(&mut self.writer).poll_close(cx) {
                    Poll::Ready(_) => Poll::Ready(Ok(())),
                    Poll::Pending => self.poll_write_timer(cx, "Close"),
                };
            }
            if matches!(self.writing, Writing::Idle) {
                if self.next_chunk(cx) {
                    continue;
                }
                return self.poll_quiet(cx);
            }
            if budget.poll_tick(cx).is_pending() {
                return Poll::Pending;
            }
            let writer = Pin::new(&mut self.writer);
            let written = match &self.writing {
                Writing::Idle => continue, // taken care of above
                Writing::Line(line, offset) => writer.poll_write(cx, &line[*offset..]),
                Writing::Batch(offset) => writer.poll_write(cx, &self.batch[*offset..]),
            };
            match written {
                Poll::Pending => return self.poll_write_timer(cx, "Write"),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(format!("Write error: {e}"))),
                Poll::Ready(Ok(0)) => return Poll::Ready(Err("Write error: socket closed".into())),
                Poll::Ready(Ok(n)) => {
                    self.write_timer = None; // progress
                    self.unflushed = true;
                    self.advance(n);
                }
            }
        }
    }

    /// Nothing to write: flushes what the stream may hold, and gives back a burst's memory.
    fn poll_quiet(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        if self.unflushed {
            match Pin::new(&mut self.writer).poll_flush(cx) {
                Poll::Pending => return self.poll_write_timer(cx, "Write"),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(format!("Write error: {e}"))),
                Poll::Ready(Ok(())) => self.unflushed = false,
            }
        }
        // A queue of one allocation's minimum (4 lines) is kept: a client that gets a line now
        // and then would otherwise allocate it again for each one. A bigger one is a burst's
        // (the welcome burst of registration: keeping its 32 entries cost every idle client
        // about 290 bytes in `scripts/measure_rss.py`).
        let burst = self.batch.capacity() > 0 || self.pending.capacity() > 4;
        if burst && self.outbound.is_empty() {
            self.pending = VecDeque::new();
            self.batch = Vec::new();
        }
        Poll::Pending
    }

    /// `n` more bytes of what `writing` holds went out.
    fn advance(&mut self, n: usize) {
        self.writing = match std::mem::replace(&mut self.writing, Writing::Idle) {
            Writing::Idle => Writing::Idle,
            Writing::Line(line, offset) if offset + n < line.len() => {
                Writing::Line(line, offset + n)
            }
            Writing::Line(..) => Writing::Idle,
            Writing::Batch(offset) if offset + n < self.batch.len() => Writing::Batch(offset + n),
            Writing::Batch(_) => Writing::Idle,
        };
    }

    /// Sets up the next write from the queue. `false` if there is nothing to write now (the
    /// waker is registered), or the queue closed (then `closing` is set and the caller loops).
    fn next_chunk(&mut self, cx: &mut Context<'_>) -> bool {
        if self.pending.is_empty() {
            match self.outbound.poll_take_all(cx, &mut self.pending) {
                Poll::Ready(true) => {}
                Poll::Ready(false) => {
                    self.closing = true;
                    return true;
                }
                Poll::Pending => return false,
            }
        }
        let Some(first) = self.pending.pop_front() else {
            return false;
        };
        if self.pending.is_empty() {
            self.writing = Writing::Line(first, 0);
            return true;
        }
        self.batch.clear();
        self.batch.extend_from_slice(&first);
        while let Some(line) = self.pending.front() {
            if self.batch.len() + line.len() > WRITE_BATCH_BYTES {
                break;
            }
            self.batch.extend_from_slice(line);
            self.pending.pop_front();
        }
        self.writing = Writing::Batch(0);
        true
    }

    /// The socket is not taking data: wait, but no longer than the write timeout.
    fn poll_write_timer(&mut self, cx: &mut Context<'_>, what: &str) -> Poll<Result<(), String>> {
        let timeout = self.timeouts.write;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(self.rt.sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(format!(
                "{what} timeout ({} seconds)",
                crate::decimal::Seconds(timeout)
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::smol::SmolRuntime;

    /// A reader with nothing to say, ever.
    struct Silent;
    impl AsyncRead for Silent {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Pending
        }
    }

    /// A socket that takes at most `most` bytes per write (every byte at once when `None`).
    #[derive(Default)]
    struct Sink {
        out: Vec<u8>,
        most: Option<usize>,
    }
    impl AsyncWrite for Sink {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.most.unwrap_or(usize::MAX));
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A connection that never reads, writing to `writer`; its queue, to push lines to.
    fn quiet_connection<W: AsyncWrite + Unpin>(
        writer: W,
    ) -> (
        crate::broker::SendQueue,
        ConnectionFuture<SmolRuntime, Silent, W>,
    ) {
        let (inbox, _rx) = crate::broker::inbox::open();
        let (queue, outbound) = crate::broker::send_queue(64 * 1024);
        let minute = Duration::from_secs(60);
        let fut = Connection {
            rt: SmolRuntime::new(),
            id: 1,
            recv: inbox.recv_queue(1, 16, 8192),
            reader: Silent,
            writer,
            outbound,
            timeouts: Timeouts {
                silent: minute,
                register: minute,
                ping_interval: minute,
                write: minute,
            },
            started: Instant::now(),
        }
        .run();
        (queue, fut)
    }

    /// Idle memory is a budget (docs/embedded.md): a writer that has written a burst and found
    /// its queue empty gives the burst's buffers back, and keeps nothing while idle.
    #[test]
    fn an_idle_writer_frees_its_burst_buffers() {
        let (queue, mut fut) = quiet_connection(Sink::default());
        for text in ["PING :a\r\n", "PING :b\r\n", "PING :c\r\n"] {
            queue.push(text.as_bytes().into()).unwrap();
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert_eq!(fut.writer.out, b"PING :a\r\nPING :b\r\nPING :c\r\n");
        assert_eq!((fut.batch.capacity(), fut.pending.capacity()), (0, 0));
        // The queue's own lines are gone too: a line queued now is written at the next poll.
        queue.push(b"PING :d\r\n"[..].into()).unwrap();
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert!(fut.writer.out.ends_with(b"PING :d\r\n"));
    }

    /// Queued lines go out gathered into batches: every byte in order across short writes
    /// that end inside a line or a batch. (With `advance` counting a short write as a whole
    /// batch, the output loses bytes and the first assert fails.)
    #[test]
    fn queued_lines_go_out_in_order_across_short_writes() {
        let (queue, mut fut) = quiet_connection(Sink {
            most: Some(7),
            ..Sink::default()
        });
        let mut expected = Vec::new();
        for i in 0..200 {
            let line = format!(":n!u@h PRIVMSG #c :line {i}{}\r\n", "x".repeat(i % 13));
            expected.extend_from_slice(line.as_bytes());
            queue.push(line.as_bytes().into()).unwrap();
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..10_000 {
            if fut.writer.out.len() == expected.len() {
                break;
            }
            assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        }
        assert!(fut.writer.out == expected, "every byte, in order");
        // Gone quiet: the burst's buffers are given back.
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert_eq!((fut.batch.capacity(), fut.pending.capacity()), (0, 0));
    }

    /// Every connection pays for its future; this guards against it growing unnoticed.
    #[test]
    fn connection_future_stays_small() {
        let size = std::mem::size_of::<ConnectionFuture<SmolRuntime>>();
        assert!(size <= 640, "ConnectionFuture is {size} bytes");
    }
}
