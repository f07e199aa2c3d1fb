//! Our client, used the way the link adapter (chatnode's src/link/adapter.rs) uses it: a
//! connection from `Runtime::connect` and `link::nats::client::open`, a reader task that parses
//! ops and hands them over a bounded channel (256, as the adapter's), and frames built with
//! `link::nats::proto`'s writers into one buffer, written once per batch of up to 256 publishes
//! (the adapter's `BATCH`). Generic over chatnode's runtime seam: the smol and Tokio builds run
//! the same code.

use std::io;
use std::time::Instant;

use chatnode::link::nats::client::{open, Security};
use chatnode::link::nats::proto::{write_pub, write_sub, Credentials, ServerOp};
use chatnode::rt::Runtime;
use chatnode::server::transport::BoxWriter;
use futures_lite::future;
use futures_lite::io::AsyncWriteExt;

use crate::{Phase, BATCH, DEADLINE, IDLE};

/// A logged-in connection: where frames go, and the ops its reader task hands over.
struct Conn<R: Runtime> {
    writer: BoxWriter,
    ops: async_channel::Receiver<io::Result<ServerOp>>,
    _reader: R::Task<()>,
    out: Vec<u8>,
}

impl<R: Runtime> Conn<R> {
    async fn connect(rt: &R, addr: &str, name: &str) -> io::Result<Conn<R>> {
        let (reader, writer) = rt.connect(addr.to_string()).await?;
        let session = open(
            reader,
            writer,
            &Security::default(),
            name,
            &Credentials::default(),
            8 << 20,
        )
        .await?;
        let mut reader = session.reader;
        let (tx, rx) = async_channel::bounded(256);
        let task = rt.spawn(format!("{name} reader").into(), async move {
            loop {
                let op = reader.next().await;
                let end = op.is_err();
                if tx.send(op).await.is_err() || end {
                    break;
                }
            }
        });
        Ok(Conn {
            writer: session.writer,
            ops: rx,
            _reader: task,
            out: Vec::new(),
        })
    }

    /// Writes the frames built so far, at once.
    async fn flush(&mut self) -> io::Result<()> {
        self.writer.write_all(&self.out).await?;
        self.writer.flush().await?;
        self.out.clear();
        Ok(())
    }

    /// The next op; an error when the connection ended.
    async fn next(&mut self) -> io::Result<ServerOp> {
        match self.ops.recv().await {
            Ok(op) => op,
            Err(_) => Err(io::Error::other("the reader ended")),
        }
    }

    /// Subscribes, then sends a PING and waits for its PONG: the server has the subscription.
    async fn subscribe(&mut self, subject: &str, sid: u64) -> io::Result<()> {
        write_sub(&mut self.out, subject, sid);
        self.out.extend_from_slice(b"PING\r\n");
        self.flush().await?;
        loop {
            match self.next().await? {
                ServerOp::Pong => return Ok(()),
                ServerOp::Err(e) => return Err(io::Error::other(e)),
                _ => {}
            }
        }
    }
}

/// `fut`, or a timeout error after [`DEADLINE`].
async fn bounded<R: Runtime, T>(
    rt: &R,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let sleep = rt.sleep(DEADLINE);
    future::or(fut, async move {
        sleep.await;
        Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
    })
    .await
}

/// Publish throughput: `n` messages of `payload` on one subject, to a subscriber on another
/// connection of the same process. The phase ends when the subscriber has them all (or at the
/// deadline: the rest count as lost).
pub async fn publish<R: Runtime>(
    rt: R,
    addr: String,
    n: usize,
    payload: Vec<u8>,
) -> io::Result<Phase> {
    let mut sub: Conn<R> = Conn::connect(&rt, &addr, "bench-sub").await?;
    sub.subscribe("bench.chat", 1).await?;
    let mut publ: Conn<R> = Conn::connect(&rt, &addr, "bench-pub").await?;
    let mut phase = Phase::start();
    let idle = rt.clone();
    let counter = rt.spawn("bench counter".into(), async move {
        let (mut got, mut last) = (0usize, Instant::now());
        while got < n {
            let sleep = idle.sleep(IDLE);
            let next = future::or(async { Some(sub.next().await) }, async move {
                sleep.await;
                None
            });
            match next.await {
                Some(Ok(ServerOp::Msg(_))) => {
                    got += 1;
                    last = Instant::now();
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        (got, last)
    });
    let mut sent = 0;
    while sent < n {
        let batch = BATCH.min(n - sent);
        for _ in 0..batch {
            write_pub(&mut publ.out, "bench.chat", None, &payload);
        }
        publ.flush().await?;
        sent += batch;
        // Let the subscriber's tasks run between batches, as the adapter's loop does between
        // steps (its records come from the broker, another task).
        future::yield_now().await;
    }
    let (got, last) = counter.await.unwrap_or((0, Instant::now()));
    phase.end_at(n, got, last);
    Ok(phase)
}

/// Round trips: `n` requests, one at a time, each answered by a responder on another
/// connection; the requester's replies come back through one wildcard inbox subscription (as
/// the adapter's JetStream requests do).
pub async fn round_trips<R: Runtime>(
    rt: R,
    addr: String,
    n: usize,
    payload: Vec<u8>,
) -> io::Result<Phase> {
    let mut responder: Conn<R> = Conn::connect(&rt, &addr, "bench-responder").await?;
    responder.subscribe("bench.ping", 1).await?;
    let answer = payload.clone();
    let _responder = rt.spawn("bench responder".into(), async move {
        while let Ok(op) = responder.next().await {
            if let ServerOp::Msg(m) = op {
                if let Some(reply) = m.reply {
                    write_pub(&mut responder.out, &reply, None, &answer);
                    if responder.flush().await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut requester: Conn<R> = Conn::connect(&rt, &addr, "bench-requester").await?;
    requester.subscribe("_INBOX.bench.*", 1).await?;
    let mut phase = Phase::start();
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let at = Instant::now();
        let inbox = format!("_INBOX.bench.{i}");
        write_pub(&mut requester.out, "bench.ping", Some(&inbox), &payload);
        requester.flush().await?;
        bounded(&rt, async {
            loop {
                if let ServerOp::Msg(m) = requester.next().await? {
                    if m.subject == inbox {
                        return Ok(());
                    }
                }
            }
        })
        .await?;
        latencies.push(at.elapsed());
    }
    phase.end(n, n);
    phase.latencies = latencies;
    Ok(phase)
}
