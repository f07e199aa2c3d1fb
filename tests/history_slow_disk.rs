//! A disk slower than the chat, on both runtimes: chat never waits for it, and what cannot be
//! stored is counted and shown in `STATS e`, not lost silently.
//!
//! The node runs in-process (the commit delay that plays a slow SD card is a
//! [`HistoryConfig`] field, not a flag): every commit sleeps 400 ms on the blocking pool, the
//! writer's queue holds 16 records and a batch at most 8. Storing 600 messages at that pace
//! would take 30 s; bob must get all of them within the usual deadline, so a node whose chat
//! waited on the disk fails. Then the queue has overflowed: STATS e must say how many records
//! were dropped, and after shutdown the database must hold exactly the ones queued.

#![cfg(feature = "history")]

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chatnode::broker::Operator;
use chatnode::rt::smol::SmolRuntime;
use chatnode::rt::Runtime;
use chatnode::server::{self, shutdown_channel, HistoryConfig, ServerConfig, ShutdownSignal};

const MESSAGES: usize = 600;
const DEADLINE: Duration = Duration::from_secs(10);

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

    /// Reads lines until one matches, within [`DEADLINE`].
    fn expect(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=end).collect();
                let line = String::from_utf8_lossy(&raw).trim_end().to_string();
                if pred(&line) {
                    return line;
                }
                continue;
            }
            let mut chunk = [0u8; 65536];
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
        panic!("no matching line within {DEADLINE:?}");
    }
}

fn config(dir: &Path) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.broker.flood.rate = 0.0; // alice's burst is the load, not a flood
    config.history = HistoryConfig {
        path: Some(dir.join("history.sqlite3")),
        queue: 16,
        batch_max: 8,
        interval: Duration::from_millis(50),
        commit_delay: Duration::from_millis(400),
        ..HistoryConfig::default()
    };
    let salt = chatnode::auth::random_salt().unwrap();
    config.broker.operators = vec![Operator {
        name: "admin".into(),
        password_hash: chatnode::auth::hash_password("pw", &salt).unwrap(),
    }];
    config
}

/// A number in a STATS line: the word before `label`.
fn figure(line: &str, label: &str) -> u64 {
    let before = &line[..line
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {line}"))];
    before.split_whitespace().last().unwrap().parse().unwrap()
}

/// Drives the node; returns how many records STATS said were queued.
fn chat_outruns_a_slow_disk(addr: SocketAddr, shutdown: impl FnOnce()) -> u64 {
    let mut alice = Client::connect(addr, "alice");
    let mut bob = Client::connect(addr, "bob");
    alice.send("JOIN #s");
    alice.expect(|l| l.contains(" 366 "));
    bob.send("JOIN #s");
    bob.expect(|l| l.contains(" 366 "));
    let started = Instant::now();
    let mut burst = String::new();
    for i in 0..MESSAGES {
        burst.push_str(&format!("PRIVMSG #s :m{i}\r\n"));
    }
    alice.stream.write_all(burst.as_bytes()).unwrap();
    let last = format!("PRIVMSG #s :m{}", MESSAGES - 1);
    bob.expect(|l| l.ends_with(&last));
    eprintln!("{MESSAGES} messages relayed in {:?}", started.elapsed());

    bob.send("OPER admin pw");
    bob.expect(|l| l.contains(" 381 "));
    bob.send("STATS e");
    let stats = bob.expect(|l| l.contains("history:"));
    let (queued, dropped) = (figure(&stats, "queued"), figure(&stats, "dropped"));
    assert!(dropped > 0, "the queue overflowed, and says so: {stats}");
    // Two JOINs and the messages: every record was either queued or counted as dropped.
    assert_eq!(queued + dropped, MESSAGES as u64 + 2, "{stats}");

    shutdown();
    bob.expect(|l| l == "ERROR :Server shutting down");
    queued
}

/// After the node exited: every queued record is in the database.
fn assert_stored(dir: &Path, queued: u64) {
    let conn = rusqlite::Connection::open(dir.join("history.sqlite3")).unwrap();
    let stored: i64 = conn
        .query_row("SELECT count(*) FROM history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        stored as u64, queued,
        "every queued record is stored at shutdown"
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("chatnode-slow-disk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn listen() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn run_node<R: Runtime>(
    rt: R,
    listener: std::net::TcpListener,
    dir: &Path,
    signal: ShutdownSignal,
) -> impl Future<Output = io::Result<()>> {
    server::run(rt, vec![listener], config(dir), signal)
}

#[test]
fn a_slow_disk_never_delays_chat_smol() {
    let dir = temp_dir("smol");
    let (listener, addr) = listen();
    let (shutdown, signal) = shutdown_channel();
    let node_dir = dir.clone();
    let node = std::thread::spawn(move || {
        let smol = SmolRuntime::new();
        smol.block_on(2, run_node(smol.clone(), listener, &node_dir, signal))
    });
    let queued = chat_outruns_a_slow_disk(addr, || shutdown.fire());
    node.join().unwrap().unwrap();
    assert_stored(&dir, queued);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(feature = "tokio")]
#[test]
fn a_slow_disk_never_delays_chat_tokio() {
    use chatnode::rt::tokio::TokioRuntime;
    let dir = temp_dir("tokio");
    let (listener, addr) = listen();
    let (shutdown, signal) = shutdown_channel();
    let node_dir = dir.clone();
    let node = std::thread::spawn(move || {
        let runtime = TokioRuntime::build(2, None).unwrap();
        let rt = TokioRuntime::new(runtime.handle().clone());
        runtime.block_on(run_node(rt, listener, &node_dir, signal))
    });
    let queued = chat_outruns_a_slow_disk(addr, || shutdown.fire());
    node.join().unwrap().unwrap();
    assert_stored(&dir, queued);
    let _ = std::fs::remove_dir_all(dir);
}
