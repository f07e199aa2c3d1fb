//! A panic inside one connection's task ends that connection only, on both runtimes.
//!
//! The node is run in-process on a runtime that wraps the real one (our executor, or Tokio
//! under `--features tokio`) and whose socket reader panics when a client sends `BOOM!`: a
//! stand-in for any bug in the connection code. The panic is caught by the task wrapper
//! (`rt::task::instrument`; on Tokio inside the task behind our `AbortOnDrop` handle), the
//! server tells the broker, the broker tells the victim's channel peers (`QUIT :Internal error`)
//! and frees its nick, and everyone else carries on.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chatnode::rt::smol::SmolRuntime;
use chatnode::rt::{Accepted, Runtime, TaskName};
use chatnode::server::{self, shutdown_channel, ServerConfig, ShutdownSignal};
use futures_lite::io::AsyncRead;

/// The runtime `R`, with a reader that panics on `BOOM!`.
#[derive(Clone)]
struct Panicky<R>(R);

struct PanickyReader<T>(T);

impl<T: AsyncRead + Unpin> AsyncRead for PanickyReader<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let read = Pin::new(&mut self.0).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &read {
            if buf[..*n].windows(5).any(|w| w == b"BOOM!") {
                panic!("deliberate panic in a connection's reader (test)");
            }
        }
        read
    }
}

impl<R: Runtime> Runtime for Panicky<R> {
    type Listener = R::Listener;
    type Reader = PanickyReader<R::Reader>;
    type Writer = R::Writer;
    type Task<T: Send + 'static> = R::Task<T>;

    fn spawn<T, F>(&self, name: TaskName, fut: F) -> Self::Task<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.0.spawn(name, fut)
    }

    fn sleep(&self, dur: Duration) -> impl Future<Output = ()> + Send + 'static {
        self.0.sleep(dur)
    }

    fn unblock<T, F>(&self, f: F) -> impl Future<Output = T> + Send + 'static
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.0.unblock(f)
    }

    fn offload(&self, job: Box<dyn FnOnce() + Send>) {
        self.0.offload(job)
    }

    fn describe(&self) -> String {
        self.0.describe()
    }

    fn listener(&self, listener: std::net::TcpListener) -> io::Result<Self::Listener> {
        self.0.listener(listener)
    }

    fn connect(
        &self,
        addr: String,
    ) -> impl Future<Output = io::Result<(Self::Reader, Self::Writer)>> + Send + 'static {
        let connecting = self.0.connect(addr);
        async move {
            let (reader, writer) = connecting.await?;
            Ok((PanickyReader(reader), writer))
        }
    }

    async fn accept(
        &self,
        listener: &Self::Listener,
    ) -> io::Result<Accepted<Self::Reader, Self::Writer>> {
        let a = self.0.accept(listener).await?;
        Ok(Accepted {
            reader: PanickyReader(a.reader),
            writer: a.writer,
            peer: a.peer,
        })
    }
}

/// A blocking line client with deadlines. Bytes read stay in `buf` across read timeouts, so a
/// line split over two reads is never torn (the cancel-safe way: tests/contrasts.rs shows what
/// reading into a fresh `String` per attempt loses).
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr, nick: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut c = Client {
            stream,
            buf: Vec::new(),
        };
        c.send(&format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}"));
        c.expect(|l| l.contains(" 422 ") || l.contains(" 376 "));
        c
    }

    fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    /// Reads lines until one matches, for at most 10 s.
    fn expect(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=end).collect();
                let line = String::from_utf8_lossy(&raw).trim_end().to_string();
                if pred(&line) {
                    return line;
                }
                seen.push(line);
                continue;
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        panic!("no matching line within 10 s; got {seen:#?}");
    }
}

/// The task counters are process-wide: one build at a time, so each sees only its own panic.
static SERIAL: Mutex<()> = Mutex::new(());

fn conn_panics() -> u64 {
    chatnode::rt::stats::snapshot()
        .into_iter()
        .find(|k| k.kind == "conn")
        .map_or(0, |k| k.panics)
}

/// Drives the node (already running on its own thread, listening at `addr`) through the panic.
fn a_panicking_connection_ends_alone(addr: SocketAddr, shutdown: impl FnOnce()) {
    let mut alice = Client::connect(addr, "alice");
    alice.send("JOIN #x");
    alice.expect(|l| l.contains(" 366 "));
    let mut bob = Client::connect(addr, "bob");
    bob.send("JOIN #x");
    bob.expect(|l| l.contains(" 366 "));

    bob.send("PRIVMSG #x :BOOM!");
    let quit = alice.expect(|l| l.starts_with(":bob!") && l.contains(" QUIT "));
    assert!(quit.ends_with(":Internal error"), "{quit}");

    // Everyone else carries on, and bob's nick is free again.
    alice.send("PING :still-here");
    alice.expect(|l| l.contains("PONG") && l.ends_with("still-here"));
    let mut carol = Client::connect(addr, "bob");
    carol.send("JOIN #x");
    carol.expect(|l| l.contains(" 366 "));
    carol.send("PRIVMSG #x :hello again");
    alice.expect(|l| l.ends_with("PRIVMSG #x :hello again"));

    shutdown();
    alice.expect(|l| l == "ERROR :Server shutting down");
}

fn listen() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn run_node<R: Runtime>(
    rt: R,
    listener: std::net::TcpListener,
    signal: ShutdownSignal,
) -> impl Future<Output = io::Result<()>> {
    server::run(Panicky(rt), vec![listener], ServerConfig::default(), signal)
}

#[test]
fn a_panicking_connection_ends_alone_smol() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = conn_panics();
    let (listener, addr) = listen();
    let (shutdown, signal) = shutdown_channel();
    let node = std::thread::spawn(move || {
        let smol = SmolRuntime::new();
        smol.block_on(1, run_node(smol.clone(), listener, signal))
    });
    a_panicking_connection_ends_alone(addr, || shutdown.fire());
    node.join().unwrap().unwrap();
    assert_eq!(conn_panics() - before, 1, "the panic was counted once");
}

#[cfg(feature = "tokio")]
#[test]
fn a_panicking_connection_ends_alone_tokio() {
    use chatnode::rt::tokio::TokioRuntime;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = conn_panics();
    let (listener, addr) = listen();
    let (shutdown, signal) = shutdown_channel();
    let node = std::thread::spawn(move || {
        let runtime = TokioRuntime::build(1, None).unwrap();
        let rt = TokioRuntime::new(runtime.handle().clone());
        runtime.block_on(run_node(rt, listener, signal))
    });
    a_panicking_connection_ends_alone(addr, || shutdown.fire());
    node.join().unwrap().unwrap();
    assert_eq!(conn_panics() - before, 1, "the panic was counted once");
}
