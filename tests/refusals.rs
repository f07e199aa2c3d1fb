//! The refusal path's own bound, on both runtimes: at most `MAX_REFUSALS_IN_FLIGHT` refused
//! clients are being told why at once; past it a refused client is closed without its `ERROR`
//! line, and once one of the told clients closes its end, the next refused client is told why
//! again.
//!
//! The node runs in process (like `tests/panic_isolation.rs`) with `max_clients: 0`, so every
//! connection is refused, and with a long `refusal_linger`, so a refused client that keeps its
//! end open holds its refusal for the whole test: the bound is reached by holding, not by racing
//! the clock.

use std::future::Future;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chatnode::rt::smol::SmolRuntime;
use chatnode::rt::Runtime;
use chatnode::server::{
    self, shutdown_channel, ServerConfig, ShutdownSignal, MAX_REFUSALS_IN_FLIGHT,
};

const DEADLINE: Duration = Duration::from_secs(20);

/// What a refused client sees first: an `ERROR` line, or the connection closed without one.
#[derive(Debug, PartialEq)]
enum Seen {
    Error(String),
    Closed,
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, DEADLINE).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    stream
}

/// Reads until a whole line or the end of the stream, within [`DEADLINE`].
fn first(stream: &mut TcpStream) -> Seen {
    let deadline = Instant::now() + DEADLINE;
    let mut buf = Vec::new();
    while Instant::now() < deadline {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            return Seen::Error(String::from_utf8_lossy(&buf[..end]).trim_end().to_string());
        }
        let mut chunk = [0u8; 512];
        match stream.read(&mut chunk) {
            Ok(0) => return Seen::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Seen::Closed, // reset
        }
    }
    panic!("neither a line nor the end within {DEADLINE:?}; got {buf:?}");
}

fn refusing_node<R: Runtime>(
    rt: R,
    listener: std::net::TcpListener,
    signal: ShutdownSignal,
) -> impl Future<Output = io::Result<()>> {
    let config = ServerConfig {
        max_clients: 0,
        refusal_linger: Duration::from_secs(600),
        ..ServerConfig::default()
    };
    server::run(rt, vec![listener], config, signal)
}

fn listen() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Drives the node listening at `addr` through the bound.
fn refusals_in_flight_are_bounded(addr: SocketAddr) {
    let want = "ERROR :Closing Link: 127.0.0.1 (Too many connections, the limit is 0)";
    // Told why, each: the clients keep their ends open, so each refusal stays in flight.
    let mut told: Vec<TcpStream> = Vec::new();
    for n in 0..MAX_REFUSALS_IN_FLIGHT {
        let mut c = connect(addr);
        assert_eq!(
            first(&mut c),
            Seen::Error(want.into()),
            "refused client {n}"
        );
        told.push(c);
    }
    // The bound is reached: the next ones are closed without a word.
    for n in 0..3 {
        let mut c = connect(addr);
        assert_eq!(first(&mut c), Seen::Closed, "client {n} past the bound");
    }
    // One told client closes its end: its refusal ends, and a refused client is told why again
    // (retried: the node may accept the next before it has seen that refusal end).
    drop(told.pop());
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut c = connect(addr);
        match first(&mut c) {
            Seen::Error(line) => {
                assert_eq!(line, want);
                break;
            }
            Seen::Closed => assert!(Instant::now() < deadline, "never told why again"),
        }
    }
}

#[test]
fn refusals_in_flight_are_bounded_smol() {
    let (listener, addr) = listen();
    let (shutdown, signal) = shutdown_channel();
    let node = std::thread::spawn(move || {
        let smol = SmolRuntime::new();
        smol.block_on(1, refusing_node(smol.clone(), listener, signal))
    });
    refusals_in_flight_are_bounded(addr);
    shutdown.fire();
    node.join().unwrap().unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn refusals_in_flight_are_bounded_tokio() {
    use chatnode::rt::tokio::TokioRuntime;
    let (listener, addr) = listen();
    let (shutdown, signal) = shutdown_channel();
    let node = std::thread::spawn(move || {
        let runtime = TokioRuntime::build(1, None).unwrap();
        let rt = TokioRuntime::new(runtime.handle().clone());
        runtime.block_on(refusing_node(rt, listener, signal))
    });
    refusals_in_flight_are_bounded(addr);
    shutdown.fire();
    node.join().unwrap().unwrap();
}
