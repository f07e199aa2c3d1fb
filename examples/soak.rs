//! A soak: a mixed population against a node with its DEFAULT protections, on loopback, for a
//! set duration.
//!
//! ```text
//! cargo build --release && cargo run --release --example soak -- --duration 600
//! ```
//!
//! It starts `target/release/chatnode` (or `--node PATH`) with `--listen 127.0.0.1:0`, a data
//! dir of its own (history is on, as by default) and nothing else (plus any `--node-arg ARG`),
//! so every protection is at its default, and runs, each client from its own
//! loopback address (127.0.x.y: the per-address limits see them as different hosts, except the
//! storm, which is one host):
//!
//! - chatty clients in `#soak`, each sending 2 numbered messages a second (under the flood rate);
//! - idle clients that only answer PINGs; joiners and leavers cycling through channels;
//! - slow readers in `#soak` that read a little now and then;
//! - flooders that blast `#soak` (slowed, then cut for Excess Flood, then come back);
//! - garbage senders (random bytes); a reconnect storm from one address;
//! - slow connections from one address that drip a byte every 2 s and never finish a line
//!   (held to the per-address limit, closed at the registration deadline, then back);
//! - a prober on an address of its own that sends `PING` every 200 ms and measures its round
//!   trip: the latency a well-behaved client sees while the rest goes on.
//!
//! Every 5 s a progress line: clients connected, messages delivered per second among the chatty
//! clients, the node's RSS and open descriptors, and clients dropped by cause. At the end the
//! disruptive load stops (chatty and idle clients stay), and the summary says: messages lost
//! among the chatty clients (must be 0), panics in the node's log (must be 0), RSS and
//! descriptors against their values after warm-up (a tenth of the run, 10 to 60 s, under the
//! full load; must be within 10 %: no growth over the run), the node's CPU time over 3 s of
//! idleness (must be under 30 ms), and the prober's round trips under load (median, 99th
//! percentile, worst; reported, not judged: they depend on the machine's load). Exit code 0 only
//! if all of that holds.

#[path = "shared/procfs.rs"]
#[allow(dead_code)]
mod procfs;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const CHATTY: usize = 10;
const IDLE: usize = 20;
const JOINERS: usize = 5;
const SLOW: usize = 3;
const FLOODERS: usize = 2;
const GARBAGE: usize = 2;
const SLOW_SENDERS: usize = 12;

/// Shared counters.
#[derive(Default)]
struct Stats {
    connected: AtomicU64,
    delivered: AtomicU64,
    dropped: Mutex<HashMap<String, u64>>,
    stop_load: AtomicBool,
    stop_all: AtomicBool,
    /// The prober's round trips under load, microseconds.
    rtts: Mutex<Vec<u64>>,
}

impl Stats {
    fn dropped(&self, reason: &str) {
        let key = [
            "Excess Flood",
            "SendQ",
            "Too many",
            "too fast",
            "timed out",
            "Ping",
        ]
        .iter()
        .find(|k| reason.contains(*k))
        .map_or("other", |k| k);
        *self
            .dropped
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_default() += 1;
    }
}

/// A connection from a chosen loopback source address.
fn connect_from(node: SocketAddr, source: Ipv4Addr) -> std::io::Result<TcpStream> {
    use rustix::net::{self as net, AddressFamily, SocketType};
    let fd = net::socket(AddressFamily::INET, SocketType::STREAM, None)?;
    net::bind(&fd, &SocketAddr::new(IpAddr::V4(source), 0))?;
    net::connect(&fd, &node)?;
    let stream = TcpStream::from(fd);
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(stream)
}

/// A line-reading client with a write half.
struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn open(node: SocketAddr, source: Ipv4Addr, nick: &str) -> std::io::Result<Conn> {
        let w = connect_from(node, source)?;
        let r = BufReader::new(w.try_clone()?);
        let mut c = Conn { w, r };
        c.send(&format!("NICK {nick}\r\nUSER {nick} 0 * :soak\r\n"))?;
        Ok(c)
    }

    fn send(&mut self, text: &str) -> std::io::Result<()> {
        self.w.write_all(text.as_bytes())
    }

    /// One line, `Ok(None)` on a read timeout; answers PING itself.
    fn line(&mut self) -> std::io::Result<Option<String>> {
        let mut s = String::new();
        match self.r.read_line(&mut s) {
            Ok(0) => Err(ErrorKind::UnexpectedEof.into()),
            Ok(_) => {
                // `PING :token` or `:server PING :token`.
                let body = match s.strip_prefix(':') {
                    Some(rest) => rest.split_once(' ').map_or("", |(_, b)| b),
                    None => &s,
                };
                if let Some(token) = body.strip_prefix("PING ") {
                    self.send(&format!("PONG {token}"))?;
                }
                Ok(Some(s))
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads until a line containing `needle`, within `within`.
    fn wait_for(&mut self, needle: &str, within: Duration, mut each: impl FnMut(&str)) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match self.line() {
                Ok(Some(l)) => {
                    each(&l);
                    if l.contains(needle) {
                        return true;
                    }
                }
                Ok(None) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

fn addr(role: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, role, (i / 200) as u8, (i % 200) as u8 + 1)
}

/// A chatty client: sends 2 numbered messages a second to #soak until told to stop, counts what
/// it gets from the other chatty clients. Returns (sent, received from chatty peers).
fn chatty(node: SocketAddr, i: usize, stats: Arc<Stats>, ready: Arc<AtomicU64>) -> (u64, u64) {
    let nick = format!("chat{i}");
    let mut c = Conn::open(node, addr(1, i), &nick).expect("chatty connect");
    assert!(
        c.wait_for(" 001 ", Duration::from_secs(10), |_| {}),
        "{nick}: no 001"
    );
    c.send("JOIN #soak\r\n").unwrap();
    assert!(
        c.wait_for(" 366 ", Duration::from_secs(10), |_| {}),
        "{nick}: no JOIN"
    );
    stats.connected.fetch_add(1, Ordering::Relaxed);
    ready.fetch_add(1, Ordering::SeqCst);
    while ready.load(Ordering::SeqCst) < CHATTY as u64 {
        thread::sleep(Duration::from_millis(20));
    }
    let (mut sent, mut got) = (0u64, 0u64);
    let count = |l: &str, got: &mut u64| {
        if l.contains(" PRIVMSG #soak :chatty ") {
            *got += 1;
            stats.delivered.fetch_add(1, Ordering::Relaxed);
        }
    };
    let mut next = Instant::now();
    while !stats.stop_load.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            c.send(&format!("PRIVMSG #soak :chatty {i} {sent}\r\n"))
                .unwrap();
            sent += 1;
            next += Duration::from_millis(500);
        }
        if let Ok(Some(l)) = c.line() {
            count(&l, &mut got);
        }
    }
    // Everyone's last messages are in every queue once every sender's fence came back, and in
    // every socket once our own fence came back after that.
    c.send("PING :sent-all\r\n").unwrap();
    c.wait_for("sent-all", Duration::from_secs(30), |l| count(l, &mut got));
    ready.fetch_sub(1, Ordering::SeqCst);
    while ready.load(Ordering::SeqCst) > 0 {
        if let Ok(Some(l)) = c.line() {
            count(&l, &mut got);
        }
    }
    c.send("PING :received-all\r\n").unwrap();
    c.wait_for("received-all", Duration::from_secs(30), |l| {
        count(l, &mut got)
    });
    // Stay connected (with PONGs) until the end: the node's idle state is measured with us.
    while !stats.stop_all.load(Ordering::Relaxed) {
        let _ = c.line();
    }
    (sent, got)
}

/// Idle clients and joiners/leavers: register, answer PINGs; joiners cycle channels.
fn idle(node: SocketAddr, role: u8, i: usize, cycle: bool, stats: Arc<Stats>) {
    let nick = format!("{}{i}", if cycle { "join" } else { "idle" });
    let Ok(mut c) = Conn::open(node, addr(role, i), &nick) else {
        return;
    };
    if !c.wait_for(" 001 ", Duration::from_secs(10), |_| {}) {
        return;
    }
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let mut n = 0u64;
    let mut next = Instant::now();
    while !stats.stop_all.load(Ordering::Relaxed) {
        if cycle && !stats.stop_load.load(Ordering::Relaxed) && Instant::now() >= next {
            let chan = format!("#room{}", n % 7);
            let _ = c.send(&format!("JOIN {chan}\r\nPART {chan} :bye\r\n"));
            n += 1;
            next += Duration::from_secs(1);
        }
        match c.line() {
            Ok(Some(l)) if l.starts_with("ERROR") => {
                stats.dropped(&l);
                break;
            }
            Err(_) => break,
            _ => {}
        }
    }
    stats.connected.fetch_sub(1, Ordering::Relaxed);
}

/// A slow reader in #soak: reads 200 bytes every 2 s while the load lasts.
fn slow(node: SocketAddr, i: usize, stats: Arc<Stats>) {
    let Ok(mut c) = Conn::open(node, addr(3, i), &format!("slow{i}")) else {
        return;
    };
    if !c.wait_for(" 001 ", Duration::from_secs(10), |_| {}) {
        return;
    }
    let _ = c.send("JOIN #soak\r\n");
    let mut buf = [0u8; 200];
    while !stats.stop_load.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_secs(2));
        match c.r.get_mut().read(&mut buf) {
            Ok(0) => return,
            Ok(n) if String::from_utf8_lossy(&buf[..n]).contains("ERROR") => {
                stats.dropped("SendQ");
                return;
            }
            _ => {}
        }
    }
}

/// A flooder or a garbage sender: blasts until cut, then comes back (within the limits).
fn abuser(node: SocketAddr, i: usize, garbage: bool, stats: Arc<Stats>) {
    let mut seed = 0x1234_5678u64 + i as u64;
    let mut round = 0;
    while !stats.stop_load.load(Ordering::Relaxed) {
        round += 1;
        let role = if garbage { 5 } else { 4 };
        let nick = format!("{}{i}x{round}", if garbage { "junk" } else { "flood" });
        let Ok(mut c) = Conn::open(node, addr(role, i), &nick) else {
            thread::sleep(Duration::from_secs(1));
            continue;
        };
        let _ = c.send("JOIN #soak\r\n");
        let mut w = c.w.try_clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let writer = thread::spawn(move || {
            let mut block = Vec::with_capacity(64 * 1024);
            while !stop2.load(Ordering::Relaxed) {
                block.clear();
                for n in 0..500 {
                    if garbage {
                        for _ in 0..60 {
                            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                            block.push((seed >> 33) as u8);
                        }
                        block.extend_from_slice(b"\r\n");
                    } else {
                        block.extend_from_slice(format!("PRIVMSG #soak :flood {n}\r\n").as_bytes());
                    }
                }
                if w.write_all(&block).is_err() {
                    return;
                }
            }
        });
        let mut cut = false;
        while !stats.stop_load.load(Ordering::Relaxed) {
            match c.line() {
                Ok(Some(l)) if l.starts_with("ERROR") => {
                    stats.dropped(&l);
                    cut = true;
                    break;
                }
                Err(_) => break,
                _ => {}
            }
        }
        stop.store(true, Ordering::Relaxed);
        drop(c);
        let _ = writer.join();
        if !cut {
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A slow connection (slowloris): from one address shared by all of them, drips one byte of a
/// registration every 2 s and never ends a line; reconnects when the node closes it (the
/// per-address limit refuses the surplus, the registration deadline closes the rest).
fn slow_sender(node: SocketAddr, i: usize, stats: Arc<Stats>) {
    let text = format!("NICK drip{i}{}", "x".repeat(60));
    while !stats.stop_load.load(Ordering::Relaxed) {
        let Ok(mut s) = connect_from(node, Ipv4Addr::new(127, 8, 8, 8)) else {
            thread::sleep(Duration::from_secs(1));
            continue;
        };
        let mut buf = [0u8; 512];
        'drip: for b in text.bytes().cycle() {
            if stats.stop_load.load(Ordering::Relaxed) || s.write_all(&[b]).is_err() {
                break;
            }
            // Read for 2 s (in 100 ms timeouts): an ERROR line or the end means closed.
            for _ in 0..20 {
                match s.read(&mut buf) {
                    Ok(0) => break 'drip,
                    Ok(n) => {
                        let text = String::from_utf8_lossy(&buf[..n]);
                        if let Some(error) = text.lines().find(|l| l.starts_with("ERROR")) {
                            stats.dropped(error);
                            break 'drip;
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break 'drip,
                }
            }
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// The prober: a registered client on its own address, a `PING` every 200 ms, each round trip
/// recorded while the load lasts.
fn prober(node: SocketAddr, stats: Arc<Stats>) {
    let Ok(mut c) = Conn::open(node, Ipv4Addr::new(127, 7, 0, 1), "prober") else {
        return;
    };
    if !c.wait_for(" 001 ", Duration::from_secs(10), |_| {}) {
        return;
    }
    let mut n = 0u64;
    while !stats.stop_load.load(Ordering::Relaxed) {
        n += 1;
        let sent = Instant::now();
        if c.send(&format!("PING :probe{n}\r\n")).is_err() {
            return;
        }
        if !c.wait_for(&format!("probe{n}"), Duration::from_secs(30), |_| {}) {
            return;
        }
        let rtt = sent.elapsed().as_micros() as u64;
        stats.rtts.lock().unwrap().push(rtt);
        thread::sleep(Duration::from_millis(200));
    }
    while !stats.stop_all.load(Ordering::Relaxed) {
        let _ = c.line();
    }
}

/// Median, 99th percentile and worst of the prober's round trips, in ms.
fn rtt_summary(stats: &Stats) -> String {
    let mut rtts = stats.rtts.lock().unwrap().clone();
    if rtts.is_empty() {
        return "no round trips".into();
    }
    rtts.sort_unstable();
    let at = |q: f64| rtts[((rtts.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    format!(
        "{} PINGs: median {:.2} ms, p99 {:.2} ms, worst {:.2} ms",
        rtts.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

/// A reconnect storm from one address: connect, read a line, close, as fast as it goes.
fn storm(node: SocketAddr, stats: Arc<Stats>) {
    let mut n = 0;
    while !stats.stop_load.load(Ordering::Relaxed) {
        n += 1;
        let Ok(mut c) = Conn::open(node, Ipv4Addr::new(127, 9, 9, 9), &format!("storm{n}")) else {
            continue;
        };
        if let Ok(Some(l)) = c.line() {
            if l.starts_with("ERROR") {
                stats.dropped(&l);
            }
        }
    }
}

struct Node {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

fn start_node(path: &str, data_dir: &std::path::Path, extra: &[String]) -> Node {
    let mut child = Command::new(path)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {path}: {e} (cargo build --release first)"));
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let log2 = log.clone();
    thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(a) = line.split("listening on ").nth(1) {
                let _ = tx.send(a.trim().parse::<SocketAddr>().unwrap());
            }
            // Keep only what the summary needs: panics and errors.
            if line.contains("panick") || line.contains("ERROR") {
                log2.lock().unwrap().push(line);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("node did not start");
    Node { child, addr, log }
}

/// The node's RSS (KiB), open descriptors and CPU time.
fn node_figures(pid: u32) -> (u64, usize, Duration) {
    let snap = procfs::snap(&pid.to_string(), false).unwrap_or_default();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let cpu = Duration::from_secs_f64(snap.cpu_ticks as f64 / procfs::clock_ticks());
    (snap.rss_kib, fds, cpu)
}

fn main() {
    let mut duration = Duration::from_secs(60);
    let mut node_path = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("chatnode")))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "target/release/chatnode".into());
    let mut node_args: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--duration" => {
                let v = args
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .expect("--duration SECS");
                duration = Duration::from_secs_f64(v);
            }
            "--node" => node_path = args.next().expect("--node PATH"),
            "--node-arg" => node_args.push(args.next().expect("--node-arg ARG")),
            _ => {
                eprintln!("usage: soak [--duration SECS] [--node PATH] [--node-arg ARG]...");
                std::process::exit(2);
            }
        }
    }
    // Its own data dir (history on, as by default), so runs do not share a database.
    let data_dir = std::env::temp_dir().join(format!("chatnode-soak-{}", std::process::id()));
    std::fs::create_dir_all(&data_dir).expect("create the soak's data dir");
    let node = start_node(&node_path, &data_dir, &node_args);
    let (pid, at) = (node.child.id(), node.addr);
    println!(
        "soak: node {node_path} pid {pid} on {at}, defaults{}, for {duration:?}; load average {}",
        if node_args.is_empty() {
            String::new()
        } else {
            format!(" and {}", node_args.join(" "))
        },
        load_average()
    );
    let stats = Arc::new(Stats::default());
    let ready = Arc::new(AtomicU64::new(0));
    let chatty: Vec<_> = (0..CHATTY)
        .map(|i| {
            let (s, r) = (stats.clone(), ready.clone());
            thread::spawn(move || chatty(at, i, s, r))
        })
        .collect();
    let mut others = Vec::new();
    for i in 0..IDLE {
        let s = stats.clone();
        others.push(thread::spawn(move || idle(at, 2, i, false, s)));
    }
    for i in 0..JOINERS {
        let s = stats.clone();
        others.push(thread::spawn(move || idle(at, 6, i, true, s)));
    }
    // The steady population first, then the abusers.
    let settle = Instant::now() + Duration::from_secs(10);
    while Instant::now() < settle
        && stats.connected.load(Ordering::Relaxed) < (CHATTY + IDLE + JOINERS) as u64
    {
        thread::sleep(Duration::from_millis(100));
    }
    for i in 0..SLOW {
        let s = stats.clone();
        others.push(thread::spawn(move || slow(at, i, s)));
    }
    for i in 0..FLOODERS {
        let s = stats.clone();
        others.push(thread::spawn(move || abuser(at, i, false, s)));
    }
    for i in 0..GARBAGE {
        let s = stats.clone();
        others.push(thread::spawn(move || abuser(at, i, true, s)));
    }
    {
        let s = stats.clone();
        others.push(thread::spawn(move || storm(at, s)));
    }
    for i in 0..SLOW_SENDERS {
        let s = stats.clone();
        others.push(thread::spawn(move || slow_sender(at, i, s)));
    }
    {
        let s = stats.clone();
        others.push(thread::spawn(move || prober(at, s)));
    }
    // Warm-up: a tenth of the run (10 to 60 s) under the full load, so the allocator and every
    // table have reached their working size; the baseline is taken then, and the end is
    // compared with it (growth past it would be a leak).
    let warm_up = (duration / 10).clamp(Duration::from_secs(10), Duration::from_secs(60));
    thread::sleep(warm_up);
    let (rss0, fds0, _) = node_figures(pid);
    println!(
        "soak: after {warm_up:?} of warm-up under load: {} steady clients, RSS {rss0} KiB, {fds0} fds",
        stats.connected.load(Ordering::Relaxed)
    );
    let start = Instant::now();
    let mut last = (start, stats.delivered.load(Ordering::Relaxed));
    while start.elapsed() < duration {
        thread::sleep(
            Duration::from_secs(5)
                .min(duration.saturating_sub(start.elapsed()))
                .max(Duration::from_millis(10)),
        );
        let (rss, fds, _) = node_figures(pid);
        let delivered = stats.delivered.load(Ordering::Relaxed);
        let rate = (delivered - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), delivered);
        let dropped = dropped_for_cause(&stats);
        println!(
            "soak: {:>4.0} s: {} steady clients, {rate:.0} msgs/s delivered among chatty, RSS {rss} KiB, {fds} fds, dropped {{{}}}",
            start.elapsed().as_secs_f64(),
            stats.connected.load(Ordering::Relaxed),
            dropped.join(", ")
        );
    }
    stats.stop_load.store(true, Ordering::Relaxed);
    let mut sent = 0;
    let mut got = 0;
    // Join the abusers first (they end when the load stops), then let the chatty ones count.
    let (results, figures_ok): (Vec<(u64, u64)>, bool) = {
        let handles = chatty;
        // Chatty threads only return after stop_all; collect their counts through a side channel
        // instead: wait until each has done its fences (ready back to 0).
        let deadline = Instant::now() + Duration::from_secs(60);
        while ready.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        thread::sleep(Duration::from_secs(5)); // the load's connections close; memory settles
        let (rss1, fds1, cpu_a) = node_figures(pid);
        thread::sleep(Duration::from_secs(3));
        let (_, _, cpu_b) = node_figures(pid);
        stats.stop_all.store(true, Ordering::Relaxed);
        let results: Vec<(u64, u64)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for h in others {
            let _ = h.join();
        }
        let rss_ok = (rss1 as f64) <= rss0 as f64 * 1.10;
        let fds_ok = (fds1 as f64) <= fds0 as f64 * 1.10;
        let idle_cpu = cpu_b.saturating_sub(cpu_a);
        println!(
            "soak: after the load: RSS {rss1} KiB ({:+.1} % vs warm-up, {}), {fds1} fds ({:+.1} %, {}), CPU while idle {} ms over 3 s",
            (rss1 as f64 / rss0 as f64 - 1.0) * 100.0,
            if rss_ok { "ok" } else { "NOT within 10 %" },
            (fds1 as f64 / fds0 as f64 - 1.0) * 100.0,
            if fds_ok { "ok" } else { "NOT within 10 %" },
            idle_cpu.as_millis()
        );
        let ok = rss_ok && fds_ok && idle_cpu < Duration::from_millis(30);
        (results, ok)
    };
    for (s, r) in &results {
        sent += s;
        got += r;
    }
    let expected = sent * (CHATTY as u64 - 1);
    let panics = node
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("panick"))
        .count();
    let mut node = node;
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = node.child.wait();
    let dropped = dropped_for_cause(&stats);
    let _ = std::fs::remove_dir_all(&data_dir);
    println!(
        "soak: the prober's round trips under load: {}",
        rtt_summary(&stats)
    );
    println!(
        "soak: summary: {:?} of load; chatty sent {sent}, expected deliveries {expected}, got {got}, lost {}; panics {panics}; dropped for cause {{{}}}; node exit {status:?}; load average {}",
        duration,
        expected.saturating_sub(got),
        dropped.join(", "),
        load_average()
    );
    if got != expected || panics > 0 || !figures_ok {
        std::process::exit(1);
    }
}

/// The clients the node dropped, by cause, sorted: `["Excess Flood: 3", ...]`.
fn dropped_for_cause(stats: &Stats) -> Vec<String> {
    let mut dropped: Vec<_> = stats
        .dropped
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    dropped.sort();
    dropped
}

/// The machine's load averages (1, 5, 15 minutes), as `uptime` shows them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
