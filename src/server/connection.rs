//! One client connection: a reader and a writer running side by side in one task.
//!
//! The **reader** owns a [`LineBuffer`] that outlives every read future, so a read that loses a
//! race (to the idle timer, or to shutdown cancelling the task) never loses half a line: the
//! bytes are either still in the socket or already in the buffer. It splits lines, parses them
//! and sends [`Event`]s to the broker, awaiting the broker's bounded inbox, which is how a busy
//! broker slows readers down and TCP slows the clients. It also keeps the time: it reports
//! silence ([`Event::Idle`]) and the registration deadline; the broker decides what they mean.
//!
//! The **writer** waits for the first queued line, then takes whatever else is queued (up to
//! [`WRITE_BATCH_BYTES`]) and writes it in one call, so under load thousands of lines become a
//! handful of syscalls, and idle it costs one write per line. A write that stalls past the
//! write timeout ends the connection.
//!
//! The task ends when the writer ends: the broker forgot the client (queue closed; the writer
//! flushed the last lines and closed the socket), or a write failed. The reader ending (EOF,
//! error) only tells the broker, which then closes the queue.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_lite::future::{self, or};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};

use crate::broker::{ClientId, Event, Outbound};
use crate::proto::{Frame, LineBuffer, Message};
use crate::rt::Runtime;

/// The writer gathers at most this many bytes into one write.
pub const WRITE_BATCH_BYTES: usize = 32 * 1024;

/// A writer keeps a gather buffer up to this size between bursts; a larger one is freed once the
/// queue runs dry, so an idle client does not keep a burst's memory.
const KEEP_BATCH_BYTES: usize = 4 * 1024;

/// Time limits of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// From accept to the end of registration.
    pub register: Duration,
    /// Silence before the broker pings, and again before it gives up.
    pub ping_interval: Duration,
    /// How long one write may stall.
    pub write: Duration,
}

/// Everything one connection task needs.
pub struct Connection<R: Runtime> {
    /// The runtime, for timers.
    pub rt: R,
    /// This connection's id at the broker.
    pub id: ClientId,
    /// The broker's inbox.
    pub inbox: async_channel::Sender<Event>,
    /// Read half of the socket.
    pub reader: R::Reader,
    /// Write half of the socket.
    pub writer: R::Writer,
    /// Lines the broker queued for this client.
    pub outbound: Outbound,
    /// Time limits.
    pub timeouts: Timeouts,
}

impl<R: Runtime> Connection<R> {
    /// Runs the connection until the broker forgets it or its socket fails.
    pub async fn run(self) {
        let Connection {
            rt,
            id,
            inbox,
            reader,
            writer,
            outbound,
            timeouts,
        } = self;
        let reading = async {
            read_lines(&rt, id, reader, &inbox, timeouts).await;
            // The broker has been told; the writer finishes the connection.
            future::pending::<Result<(), String>>().await
        };
        let writing = write_lines(&rt, writer, &outbound, timeouts.write);
        if let Err(reason) = or(writing, reading).await {
            let _ = inbox.send(Event::Disconnected { id, reason }).await;
        }
    }
}

type Timer = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Reads lines and sends them to the broker until EOF, an error, or the broker is gone.
async fn read_lines<R: Runtime>(
    rt: &R,
    id: ClientId,
    mut reader: R::Reader,
    inbox: &async_channel::Sender<Event>,
    timeouts: Timeouts,
) {
    let mut buf = LineBuffer::new();
    let started = Instant::now();
    let register_deadline = started + timeouts.register;
    let mut deadline_reported = false;
    let mut last_input = started;
    let mut timer: Timer = Box::pin(rt.sleep(timeouts.register.min(timeouts.ping_interval)));
    loop {
        // The timer is polled by reference: it survives reads and is only re-armed when it fires,
        // so a busy connection creates no timers at all.
        let read = async { Some(reader.read(buf.spare()).await) };
        let tick = async {
            timer.as_mut().await;
            None
        };
        let n = match or(read, tick).await {
            Some(Ok(0)) => {
                let _ = inbox.send(disconnected(id, "Connection closed")).await;
                return;
            }
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                let _ = inbox
                    .send(disconnected(id, &format!("Read error: {e}")))
                    .await;
                return;
            }
            None => {
                let now = Instant::now();
                if !deadline_reported && now >= register_deadline {
                    deadline_reported = true;
                    if inbox
                        .send(Event::RegistrationDeadline { id })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if now >= last_input + timeouts.ping_interval {
                    last_input = now;
                    buf.shrink_if_idle();
                    if inbox.send(Event::Idle { id }).await.is_err() {
                        return;
                    }
                }
                let mut next = last_input + timeouts.ping_interval;
                if !deadline_reported {
                    next = next.min(register_deadline);
                }
                timer = Box::pin(rt.sleep(next.saturating_duration_since(now)));
                continue;
            }
        };
        buf.filled(n);
        last_input = Instant::now();
        loop {
            let event = match buf.next_frame() {
                None => break,
                Some(Frame::TooLong) => Event::LineTooLong { id },
                Some(Frame::Line(line)) => match Message::parse(line) {
                    Ok(msg) => Event::Line { id, msg },
                    Err(e) => {
                        log::debug!("client {id}: ignored a malformed line: {e}");
                        continue;
                    }
                },
            };
            if inbox.send(event).await.is_err() {
                return; // the broker is gone: shutting down
            }
        }
    }
}

fn disconnected(id: ClientId, reason: &str) -> Event {
    Event::Disconnected {
        id,
        reason: reason.to_string(),
    }
}

/// Writes queued lines until the queue closes (then flushes and closes the socket) or a write
/// fails or stalls past `write_timeout` (then returns why).
async fn write_lines<R: Runtime>(
    rt: &R,
    mut writer: R::Writer,
    outbound: &Outbound,
    write_timeout: Duration,
) -> Result<(), String> {
    let mut batch: Vec<u8> = Vec::new();
    while let Some(first) = outbound.recv().await {
        let Some(mut next) = outbound.try_recv() else {
            // One line alone goes out as it is: no copy.
            write_all(rt, &mut writer, &first, write_timeout).await?;
            continue;
        };
        batch.clear();
        batch.extend_from_slice(&first);
        loop {
            batch.extend_from_slice(&next);
            if batch.len() >= WRITE_BATCH_BYTES {
                break;
            }
            match outbound.try_recv() {
                Some(line) => next = line,
                None => break,
            }
        }
        write_all(rt, &mut writer, &batch, write_timeout).await?;
        if batch.capacity() > KEEP_BATCH_BYTES {
            batch = Vec::new();
        }
    }
    // The broker forgot this client and everything queued is written: close our side.
    let close = async { writer.close().await.map_err(|e| e.to_string()) };
    let _ = or(close, async {
        rt.sleep(write_timeout).await;
        Err("close timed out".to_string())
    })
    .await;
    Ok(())
}

/// Writes all of `buf`, failing if the socket accepts nothing for `timeout`.
async fn write_all<R: Runtime>(
    rt: &R,
    writer: &mut R::Writer,
    buf: &[u8],
    timeout: Duration,
) -> Result<(), String> {
    // Usually the socket has room and one write takes everything: try that first, without
    // arming a timer (timers cost a trip to the reactor), and fall back to a timed write.
    let written = match future::poll_once(writer.write(buf)).await {
        Some(Ok(n)) => n,
        Some(Err(e)) => return Err(format!("Write error: {e}")),
        None => 0,
    };
    if written == buf.len() {
        return Ok(());
    }
    let rest = async {
        writer
            .write_all(&buf[written..])
            .await
            .map_err(|e| format!("Write error: {e}"))
    };
    or(rest, async {
        rt.sleep(timeout).await;
        Err(format!("Write timeout ({} seconds)", timeout.as_secs_f64()))
    })
    .await
}
