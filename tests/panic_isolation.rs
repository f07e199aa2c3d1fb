//! A panic inside one connection's task ends that connection only.
//!
//! The node is run in-process on a runtime that wraps our executor and whose socket reader
//! panics when a client sends `BOOM!`: a stand-in for any bug in the connection code. The panic
//! is caught by the task wrapper (`rt::task::instrument`), the server tells the broker, the
//! broker tells the victim's channel peers (`QUIT :Internal error`) and frees its nick, and
//! everyone else carries on.

use std::future::Future;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chatnode::rt::smol::SmolRuntime;
use chatnode::rt::{Accepted, Runtime, TaskName};
use chatnode::server::{self, shutdown_channel, ServerConfig};
use futures_lite::io::AsyncRead;

/// Our executor, with a reader that panics on `BOOM!`.
#[derive(Clone)]
struct Panicky(SmolRuntime);

struct PanickyReader(<SmolRuntime as Runtime>::Reader);

impl AsyncRead for PanickyReader {
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

impl Runtime for Panicky {
    type Listener = <SmolRuntime as Runtime>::Listener;
    type Reader = PanickyReader;
    type Writer = <SmolRuntime as Runtime>::Writer;
    type Task<T: Send + 'static> = <SmolRuntime as Runtime>::Task<T>;

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

/// A blocking line client with deadlines.
struct Client {
    out: TcpStream,
    lines: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr, nick: &str) -> Client {
        let out = TcpStream::connect(addr).unwrap();
        out.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut c = Client {
            lines: BufReader::new(out.try_clone().unwrap()),
            out,
        };
        c.send(&format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}"));
        c.expect(|l| l.contains(" 422 ") || l.contains(" 376 "));
        c
    }

    fn send(&mut self, line: &str) {
        self.out
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    /// Reads lines until one matches, for at most 10 s.
    fn expect(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let mut line = String::new();
            match self.lines.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) if pred(line.trim_end()) => return line.trim_end().to_string(),
                Ok(_) => seen.push(line.trim_end().to_string()),
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

#[test]
fn a_panicking_connection_ends_alone() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, signal) = shutdown_channel();
    let node = std::thread::spawn(move || {
        let smol = SmolRuntime::new();
        smol.block_on(1, {
            let rt = Panicky(smol.clone());
            server::run(rt, vec![listener], ServerConfig::default(), signal)
        })
    });

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

    shutdown.fire();
    alice.expect(|l| l == "ERROR :Server shutting down");
    node.join().unwrap().unwrap();

    let conn = chatnode::rt::stats::snapshot()
        .into_iter()
        .find(|k| k.kind == "conn")
        .expect("connection tasks are counted");
    assert_eq!(conn.panics, 1, "{conn:?}");
}
