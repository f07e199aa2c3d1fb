//! Side-by-side benchmark of the two chatnode builds (our smol-based executor and Tokio), with
//! Debian's ngIRCd as an optional reference, driven by `examples/loadgen.rs`.
//!
//! # Usage
//!
//! ```text
//! cargo build --release && cargo build --release --features tokio && cargo build --release --examples
//! ulimit -n 20000          # connect5000 holds 5,000 sockets in the server and in loadgen
//! cargo run --release --example compare -- --threads 1 --ngircd
//! cargo run --release --example compare -- --threads 2 --rounds 5 --scenario fanout100 --svg t2.svg
//! cargo run --release --example compare -- --quick          # a smoke run, about 20 s
//! ```
//!
//! Run `compare --help` for every option. The tables (Markdown, aligned, so they read in a
//! terminal too) go to stdout; progress, one line per run, goes to stderr.
//!
//! # What it does
//!
//! For each round, for each scenario, for each server (the order of the servers rotates every
//! round, so none always runs first or last): start a fresh server on a free loopback port, wait
//! until it listens (with a deadline), read its idle RSS and thread count from /proc, run
//! `loadgen SCENARIO --json --server-pid PID ...` against it as a child process, sample the
//! server's RSS and thread count every 50 ms meanwhile, parse loadgen's JSON line, then stop the
//! server with SIGTERM (SIGKILL if it has not exited 5 s later). Every server and load generator
//! it starts is owned by a guard that stops it on every path out, errors and panics included;
//! `--timeout` bounds the whole run.
//!
//! The chatnode builds get the same flags: `--listen 127.0.0.1:0 --threads N --max-clients 10000
//! --exempt 127.0.0.0/8`
//! (the port is read from the `listening on` log line). ngIRCd gets a copy of its benchmark
//! config (`--ngircd-config`) with `Ports` set to a free port and its own `PidFile`.
//!
//! The tables show, per scenario, the median over the rounds of each figure (loss and failures
//! are summed instead), and the ratios smol/Tokio, smol/ngIRCd and Tokio/ngIRCd. Binary size is
//! the file size. The SVG shows the latency distributions (every round thin, the per-percentile
//! median bold) of each latency scenario that ran.
//!
//! # Caveats
//!
//! The servers and the load generator share the machine: on 2 cores, a one-thread server and the
//! one-thread load generator each get about a core, and a two-thread server competes with the
//! load generator. `loadgen CPU %` near 100 means the load generator was the bottleneck, and
//! rates then say as much about it as about the server; CPU µs per message is the fairer figure.
//! Throughput in fanout is also bounded by loadgen's window (100 unacknowledged messages per
//! sender), so it is rate = in flight / latency: a server with lower latency shows higher rates.

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
compare: the smol and Tokio builds of chatnode side by side (and ngIRCd as a reference)

USAGE: cargo run --release --example compare -- [OPTIONS]

Build first: cargo build --release && cargo build --release --features tokio \\
             && cargo build --release --examples

OPTIONS:
  --smol PATH            smol build (default $CARGO_TARGET_DIR/release/chatnode, target/ if unset)
  --tokio PATH           Tokio build (default .../release/chatnode-tokio)
  --loadgen PATH         load generator (default .../release/examples/loadgen)
  --ngircd               also run Debian's ngIRCd (apt-get install ngircd) under the same load
  --ngircd-bin PATH      ngIRCd binary (default: ngircd on PATH, then /usr/sbin/ngircd)
  --ngircd-config PATH   its benchmark config (default examples/shared/ngircd-bench.conf, kept
                         in the repository); Ports and PidFile are replaced in a copy
  --threads N            --threads for both chatnode builds (default 1)
  --rounds R             rounds; each runs every scenario on every server (default 3)
  --scenario LIST        fanout100, fanout1000, pairs200, connect5000 or all; comma-separated
                         (default all)
  --svg PATH             latency distribution chart (default target/compare-latency.svg)
  --timeout SECS         upper bound for the whole run (default 1800)
  --quick                small message counts and 1 round unless --rounds: a smoke run
  --raw PATH             also write every run's figures (loadgen's JSON plus ours), one per line
  --keep-logs            keep the servers' logs (kept anyway when a run fails)
  --history on|off       chatnode's message history (default off: ngIRCd keeps none, so the
                         default run compares like with like); on: each server gets a fresh
                         data dir beside its log, so the figures include the SQLite writes
  -h, --help             print this help

Exit code: 0 every run delivered everything, 1 a run failed or lost messages, 2 usage error.
";

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scn {
    Fanout100,
    Fanout1000,
    Pairs200,
    Connect5000,
}

const ALL_SCENARIOS: [Scn; 4] = [
    Scn::Fanout100,
    Scn::Fanout1000,
    Scn::Pairs200,
    Scn::Connect5000,
];

impl Scn {
    fn name(self) -> &'static str {
        match self {
            Scn::Fanout100 => "fanout100",
            Scn::Fanout1000 => "fanout1000",
            Scn::Pairs200 => "pairs200",
            Scn::Connect5000 => "connect5000",
        }
    }

    /// The name shown in progress lines and logs: the scenario's own name, except that
    /// `--quick` runs connect5000 with 500 clients, shown as `connect500`.
    fn label(self, quick: bool) -> &'static str {
        match (self, quick) {
            (Scn::Connect5000, true) => "connect500",
            _ => self.name(),
        }
    }

    fn title(self, quick: bool) -> String {
        let n = self.clients(quick);
        match self {
            Scn::Fanout100 => format!("fanout N={n} S=10"),
            Scn::Fanout1000 => format!("fanout N={n} S=1"),
            Scn::Pairs200 => format!("pairs N={n}"),
            Scn::Connect5000 => format!("connect N={n}"),
        }
    }

    fn clients(self, quick: bool) -> usize {
        match (self, quick) {
            (Scn::Fanout100, _) => 100,
            (Scn::Fanout1000, _) => 1000,
            (Scn::Pairs200, _) => 200,
            (Scn::Connect5000, false) => 5000,
            (Scn::Connect5000, true) => 500,
        }
    }

    /// loadgen's arguments after the scenario's own name, the same for every server.
    fn loadgen_args(self, quick: bool) -> Vec<String> {
        let n = self.clients(quick).to_string();
        let mut a: Vec<String> = match self {
            Scn::Fanout100 => vec!["fanout", "--clients", &n, "--senders", "10", "--messages"],
            Scn::Fanout1000 => vec!["fanout", "--clients", &n, "--senders", "1", "--messages"],
            Scn::Pairs200 => vec!["pairs", "--clients", &n, "--messages"],
            Scn::Connect5000 => vec!["connect", "--clients", &n],
        }
        .into_iter()
        .map(String::from)
        .collect();
        let messages = match (self, quick) {
            (Scn::Fanout100, false) => Some("10000"),
            (Scn::Fanout100, true) => Some("300"),
            (Scn::Fanout1000, false) => Some("5000"),
            (Scn::Fanout1000, true) => Some("100"),
            (Scn::Pairs200, false) => Some("2000"),
            (Scn::Pairs200, true) => Some("100"),
            (Scn::Connect5000, _) => None,
        };
        if let Some(m) = messages {
            a.push(m.into());
        }
        if matches!(self, Scn::Fanout100 | Scn::Fanout1000) {
            a.extend(["--window", "100", "--size", "64"].map(String::from));
        }
        // ngIRCd's listen backlog is 10: the same 8 at a time for every server.
        a.extend(["--connect-concurrency", "8"].map(String::from));
        a
    }

    /// loadgen's `--duration` for one run.
    fn duration(self, quick: bool) -> Duration {
        Duration::from_secs(if quick { 20 } else { 45 })
    }

    fn has_latency(self) -> bool {
        self != Scn::Connect5000
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Smol,
    Tokio,
    Ngircd,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Smol => "smol",
            Kind::Tokio => "tokio",
            Kind::Ngircd => "ngircd",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Kind::Smol => "#1f6fb4",
            Kind::Tokio => "#e0701b",
            Kind::Ngircd => "#5a5a5a",
        }
    }
}

struct Opts {
    smol: PathBuf,
    tokio: PathBuf,
    loadgen: PathBuf,
    ngircd: bool,
    ngircd_bin: Option<PathBuf>,
    ngircd_config: Option<PathBuf>,
    threads: usize,
    rounds: Option<usize>,
    scenarios: Vec<Scn>,
    svg: PathBuf,
    timeout: Duration,
    quick: bool,
    raw: Option<PathBuf>,
    keep_logs: bool,
    history: bool,
}

fn parse_args() -> Result<Option<Opts>, String> {
    use lexopt::prelude::*;
    let err = |e: lexopt::Error| e.to_string();
    let target = PathBuf::from(std::env::var_os("CARGO_TARGET_DIR").unwrap_or("target".into()));
    let release = target.join("release");
    let mut o = Opts {
        smol: release.join("chatnode"),
        tokio: release.join("chatnode-tokio"),
        loadgen: release.join("examples").join("loadgen"),
        ngircd: false,
        ngircd_bin: None,
        ngircd_config: None,
        threads: 1,
        rounds: None,
        scenarios: ALL_SCENARIOS.to_vec(),
        svg: PathBuf::from("target/compare-latency.svg"),
        timeout: Duration::from_secs(1800),
        quick: false,
        raw: None,
        keep_logs: false,
        history: false,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next().map_err(err)? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("smol") => o.smol = p.value().map_err(err)?.into(),
            Long("tokio") => o.tokio = p.value().map_err(err)?.into(),
            Long("loadgen") => o.loadgen = p.value().map_err(err)?.into(),
            Long("ngircd") => o.ngircd = true,
            Long("ngircd-bin") => o.ngircd_bin = Some(p.value().map_err(err)?.into()),
            Long("ngircd-config") => o.ngircd_config = Some(p.value().map_err(err)?.into()),
            Long("threads") => o.threads = p.value().map_err(err)?.parse().map_err(err)?,
            Long("rounds") => o.rounds = Some(p.value().map_err(err)?.parse().map_err(err)?),
            Long("scenario") => {
                let v = p.value().map_err(err)?.string().map_err(err)?;
                o.scenarios = parse_scenarios(&v)?;
            }
            Long("svg") => o.svg = p.value().map_err(err)?.into(),
            Long("timeout") => {
                let s: f64 = p.value().map_err(err)?.parse().map_err(err)?;
                o.timeout = Duration::try_from_secs_f64(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or("--timeout must be a positive number of seconds")?;
            }
            Long("quick") => o.quick = true,
            Long("raw") => o.raw = Some(p.value().map_err(err)?.into()),
            Long("keep-logs") => o.keep_logs = true,
            Long("history") => {
                o.history = match p.value().map_err(err)?.string().map_err(err)?.as_str() {
                    "on" => true,
                    "off" => false,
                    v => return Err(format!("--history: '{v}' is not on or off")),
                }
            }
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    if o.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if o.rounds == Some(0) {
        return Err("--rounds must be at least 1".into());
    }
    Ok(Some(o))
}

fn parse_scenarios(v: &str) -> Result<Vec<Scn>, String> {
    let mut out = Vec::new();
    for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if s == "all" {
            out.extend(ALL_SCENARIOS);
            continue;
        }
        let scn = ALL_SCENARIOS
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                format!(
                    "--scenario: unknown '{s}' (fanout100, fanout1000, pairs200, connect5000, all)"
                )
            })?;
        out.push(scn);
    }
    let mut seen = Vec::new();
    out.retain(|s| {
        let new = !seen.contains(s);
        seen.push(*s);
        new
    });
    if out.is_empty() {
        return Err("--scenario: nothing to run".into());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// /proc

#[path = "shared/procfs.rs"]
#[allow(dead_code)]
mod procfs;
use procfs::{clock_ticks, open_files_limit, ProcSnap as Snap};

/// RSS, threads and CPU of a server (context switches come from loadgen's own reading).
fn snap(pid: u32) -> Option<Snap> {
    procfs::snap(&pid.to_string(), false)
}

// ---------------------------------------------------------------------------------------------
// Child processes, always owned

/// A child process that is stopped when dropped: SIGTERM, then SIGKILL after `grace`.
struct Owned {
    child: Child,
    what: String,
    grace: Duration,
}

impl Owned {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops the process (if it still runs) and returns how it ended.
    fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(st) = self.exited() {
            return Some(st);
        }
        // SIGTERM through kill(1): std can only send SIGKILL, and SIGTERM is the graceful path
        // we want to exercise (and a server that crashes on it is worth seeing).
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        let until = Instant::now() + self.grace;
        while Instant::now() < until {
            if let Some(st) = self.exited() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("compare: {} did not exit on SIGTERM; killing it", self.what);
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

struct Server {
    proc: Owned,
    addr: SocketAddr,
    log: PathBuf,
}

/// What the servers are started with.
struct Setup {
    opts: Opts,
    logs: PathBuf,
    ngircd_bin: PathBuf,
    ngircd_config: String,
    tck: f64,
    deadline: Instant,
}

impl Setup {
    fn start(&self, kind: Kind, tag: &str) -> Result<Server, String> {
        let log = self.logs.join(format!("{tag}.log"));
        let log_file = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let ready_by = Instant::now() + Duration::from_secs(10);
        let mut cmd;
        let mut fixed_addr = None;
        match kind {
            Kind::Smol | Kind::Tokio => {
                let bin = if kind == Kind::Smol {
                    &self.opts.smol
                } else {
                    &self.opts.tokio
                };
                cmd = Command::new(bin);
                cmd.args(server_flags(self.opts.threads))
                    .env("RUST_LOG", "info");
                if self.opts.history {
                    // A fresh database per server start, so no run reads another's rows.
                    let dir = self.logs.join(format!("{tag}-data"));
                    cmd.arg("--history").arg("on").arg("--data-dir").arg(dir);
                } else {
                    cmd.args(["--history", "off"]);
                }
            }
            Kind::Ngircd => {
                let port = free_port()?;
                let conf = self.logs.join(format!("{tag}.conf"));
                let pidfile = self.logs.join(format!("{tag}.pid"));
                let text = ngircd_conf(&self.ngircd_config, port, &pidfile)?;
                fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
                cmd = Command::new(&self.ngircd_bin);
                cmd.arg("--nodaemon").arg("--config").arg(&conf);
                fixed_addr = Some(SocketAddr::from(([127, 0, 0, 1], port)));
            }
        }
        let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("{kind:?}: cannot start {:?}: {e}", cmd.get_program()))?;
        let mut proc = Owned {
            child,
            what: format!("{} (pid {})", kind.name(), 0),
            grace: Duration::from_secs(5),
        };
        proc.what = format!("{} (pid {})", kind.name(), proc.pid());
        let addr = loop {
            if let Some(st) = proc.exited() {
                return Err(format!(
                    "{} exited at start ({st}); its log {}:\n{}",
                    kind.name(),
                    log.display(),
                    tail(&log, 15)
                ));
            }
            if Instant::now() > ready_by {
                return Err(format!(
                    "{} not listening after 10 s; its log {}:\n{}",
                    kind.name(),
                    log.display(),
                    tail(&log, 15)
                ));
            }
            match fixed_addr {
                // ngIRCd: ready when it accepts a connection.
                Some(a) => {
                    if TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok() {
                        break a;
                    }
                }
                // chatnode: its log says where it listens.
                None => {
                    let text = fs::read_to_string(&log).unwrap_or_default();
                    if let Some(a) = text.lines().find_map(|l| {
                        let rest = &l[l.find("listening on ")? + "listening on ".len()..];
                        rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
                    }) {
                        break a;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ok(Server { proc, addr, log })
    }
}

fn server_flags(threads: usize) -> Vec<String> {
    [
        "--listen",
        "127.0.0.1:0",
        "--threads",
        &threads.to_string(),
        "--max-clients",
        "10000",
        // Thousands of clients from one address, sending as fast as they can: lift the
        // per-address limits and flood control for loopback, explicitly.
        "--exempt",
        "127.0.0.0/8",
    ]
    .map(String::from)
    .to_vec()
}

/// The benchmark config with `Ports` and `PidFile` replaced.
fn ngircd_conf(template: &str, port: u16, pidfile: &Path) -> Result<String, String> {
    let mut out = String::new();
    let (mut ports, mut pid) = (false, false);
    for line in template.lines() {
        let key = line.trim_start().split('=').next().unwrap_or("").trim();
        if key.eq_ignore_ascii_case("Ports") {
            let _ = writeln!(out, "\tPorts = {port}");
            ports = true;
        } else if key.eq_ignore_ascii_case("PidFile") {
            let _ = writeln!(out, "\tPidFile = {}", pidfile.display());
            pid = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !ports {
        return Err("the ngIRCd config has no 'Ports =' line to replace".into());
    }
    if !pid {
        out = out.replacen(
            "[Global]\n",
            &format!("[Global]\n\tPidFile = {}\n", pidfile.display()),
            1,
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// One run

struct RunResult {
    kind: Kind,
    scn: Scn,
    ok: bool,
    exit: String,
    json: Json,
    idle: Snap,
    rss_peak_kib: u64,
    threads_peak: u64,
    /// Server CPU from its start to the end of the load, seconds.
    cpu_total_s: f64,
    server_exit: String,
}

impl RunResult {
    fn num(&self, key: &str) -> Option<f64> {
        self.json.get(key).and_then(Json::as_f64)
    }
}

fn run_one(
    setup: &Setup,
    kind: Kind,
    scn: Scn,
    round: usize,
    raw: &mut Option<fs::File>,
) -> Result<RunResult, String> {
    let tag = format!("r{round}-{}-{}", scn.label(setup.opts.quick), kind.name());
    let mut server = setup.start(kind, &tag)?;
    let pid = server.proc.pid();
    // Let the runtime finish starting (lazily spawned threads) before the idle reading.
    std::thread::sleep(Duration::from_millis(300));
    let idle = snap(pid).ok_or("cannot read the server's /proc figures")?;

    let remaining = setup.deadline.saturating_duration_since(Instant::now());
    if remaining < Duration::from_secs(2) {
        return Err("--timeout reached".into());
    }
    let dur = scn.duration(setup.opts.quick).min(remaining);
    let mut args = scn.loadgen_args(setup.opts.quick);
    args.extend([
        "--server".into(),
        server.addr.to_string(),
        "--server-pid".into(),
        pid.to_string(),
        "--duration".into(),
        format!("{:.0}", dur.as_secs_f64().floor().max(1.0)),
        "--json".into(),
    ]);
    let lg_err = setup.logs.join(format!("{tag}.loadgen.err"));
    let child = Command::new(&setup.opts.loadgen)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&lg_err).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", setup.opts.loadgen.display()))?;
    let mut lg = Owned {
        child,
        what: "loadgen".into(),
        grace: Duration::from_secs(2),
    };
    let mut stdout = lg.child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    // loadgen stops itself at --duration (plus a second to close); give it some slack.
    let hard = Instant::now() + dur + Duration::from_secs(10);
    let (mut rss_peak, mut threads_peak) = (idle.rss_kib, idle.threads);
    let mut last = idle;
    let status = loop {
        if let Some(st) = lg.exited() {
            break st;
        }
        if Instant::now() > hard {
            eprintln!("compare: loadgen overran its --duration; stopping it");
            break lg.stop().ok_or("loadgen could not be stopped")?;
        }
        if let Some(s) = snap(pid) {
            rss_peak = rss_peak.max(s.rss_kib);
            threads_peak = threads_peak.max(s.threads);
            last = s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let end = snap(pid);
    if let Some(s) = end {
        rss_peak = rss_peak.max(s.rss_kib);
        threads_peak = threads_peak.max(s.threads);
        last = s;
    }
    let server_alive = end.is_some() && server.proc.exited().is_none();
    let cpu_total_s = last.cpu_ticks as f64 / setup.tck;
    let out = reader.join().unwrap_or_default();
    let server_exit = match server.proc.stop() {
        Some(st) if st.success() => "0".to_string(),
        Some(st) => st.to_string(),
        None => "unknown".into(),
    };
    let line = out.lines().rev().find(|l| l.starts_with('{'));
    let json = match line.map(Json::parse) {
        Some(Ok(j)) => j,
        Some(Err(e)) => return Err(format!("loadgen's JSON: {e}")),
        None => {
            return Err(format!(
                "loadgen printed no JSON ({status}); its stderr:\n{}\nserver log {}:\n{}",
                tail(&lg_err, 10),
                server.log.display(),
                tail(&server.log, 10)
            ))
        }
    };
    if let (Some(f), Some(l)) = (raw.as_mut(), line) {
        use std::io::Write;
        let extra = format!(
            "{{\"compare_server\":\"{}\",\"compare_round\":{round},\"compare_scenario\":\"{}\",\
             \"compare_threads\":{},\"rss_idle_kib\":{},\"threads_idle\":{},\"rss_peak_kib\":{rss_peak},\
             \"threads_peak\":{threads_peak},\"server_cpu_total_s\":{cpu_total_s:.2},\"loadgen\":{l}}}",
            kind.name(),
            scn.label(setup.opts.quick),
            setup.opts.threads,
            idle.rss_kib,
            idle.threads
        );
        let _ = writeln!(f, "{extra}");
    }
    let ok = status.success() && server_alive && server_exit == "0";
    if !server_alive {
        eprintln!(
            "compare: {} died during the run; its log {}:\n{}",
            kind.name(),
            server.log.display(),
            tail(&server.log, 15)
        );
    }
    if !status.success() {
        eprintln!(
            "compare: loadgen against {} reported a failure ({status}): {}",
            kind.name(),
            json.get("first_error")
                .and_then(Json::as_str)
                .unwrap_or("see its JSON")
        );
    }
    Ok(RunResult {
        kind,
        scn,
        ok,
        exit: status.to_string(),
        json,
        idle,
        rss_peak_kib: rss_peak,
        threads_peak,
        cpu_total_s,
        server_exit,
    })
}

fn progress_line(r: &RunResult, quick: bool) -> String {
    let g = |k: &str| r.num(k).map_or("-".into(), |v| format!("{v:.0}"));
    let head = format!("{:<11} {:<6}", r.scn.label(quick), r.kind.name());
    let body = match r.scn {
        Scn::Fanout100 | Scn::Fanout1000 => format!(
            "{} msgs/s, p50 {} µs, p99 {} µs, lost {}, reordered {}, server {} µs/msg",
            g("delivered_per_s"),
            g("latency_p50_us"),
            g("latency_p99_us"),
            g("lost"),
            g("reordered"),
            r.num("server_cpu_us_per_msg")
                .map_or("-".into(), |v| format!("{v:.2}"))
        ),
        Scn::Pairs200 => format!(
            "{} round trips/s, rtt p50 {} µs, p99 {} µs",
            g("round_trips_per_s"),
            g("rtt_p50_us"),
            g("rtt_p99_us")
        ),
        Scn::Connect5000 => format!(
            "{} conn/s, {} registered, RSS {} -> {} KiB",
            g("connections_per_s"),
            g("registered"),
            g("server_rss_before_kib"),
            g("server_rss_after_kib")
        ),
    };
    let status = if r.ok {
        String::new()
    } else {
        format!(
            " FAILED (loadgen {}, server exit {})",
            r.exit, r.server_exit
        )
    };
    format!("{head} {body}{status}")
}

// ---------------------------------------------------------------------------------------------
// Tables

#[derive(Clone, Copy, PartialEq)]
enum Agg {
    Median,
    Sum,
}

struct Metric {
    label: &'static str,
    /// "↑" higher is better, "↓" lower is better, "" neither.
    better: &'static str,
    decimals: usize,
    agg: Agg,
    get: fn(&RunResult) -> Option<f64>,
}

fn m(
    label: &'static str,
    better: &'static str,
    decimals: usize,
    get: fn(&RunResult) -> Option<f64>,
) -> Metric {
    Metric {
        label,
        better,
        decimals,
        agg: Agg::Median,
        get,
    }
}

fn sum(label: &'static str, get: fn(&RunResult) -> Option<f64>) -> Metric {
    Metric {
        label,
        better: "↓",
        decimals: 0,
        agg: Agg::Sum,
        get,
    }
}

fn metrics(scn: Scn) -> Vec<Metric> {
    let mut v = match scn {
        Scn::Fanout100 | Scn::Fanout1000 => vec![
            m("delivered msgs/s", "↑", 0, |r| r.num("delivered_per_s")),
            m("latency p50 µs", "↓", 0, |r| r.num("latency_p50_us")),
            m("latency p90 µs", "↓", 0, |r| r.num("latency_p90_us")),
            m("latency p99 µs", "↓", 0, |r| r.num("latency_p99_us")),
            m("latency p99.9 µs", "↓", 0, |r| r.num("latency_p999_us")),
            m("latency max µs", "↓", 0, |r| r.num("latency_max_us")),
            sum("lost msgs (all rounds)", |r| r.num("lost")),
            sum("reordered msgs (all rounds)", |r| r.num("reordered")),
            m("measured phase s", "", 2, |r| r.num("measured_s")),
            m("server CPU s, measured phase", "↓", 2, |r| {
                r.num("server_cpu_s")
            }),
            m("server CPU µs/msg", "↓", 3, |r| {
                r.num("server_cpu_us_per_msg")
            }),
            m("server ctx switches/1k msgs", "↓", 1, |r| {
                Some(r.num("server_ctx_switches")? * 1000.0 / r.num("delivered")?.max(1.0))
            }),
        ],
        Scn::Pairs200 => vec![
            m("delivered msgs/s (2/round trip)", "↑", 0, |r| {
                Some(2.0 * r.num("round_trips_per_s")?)
            }),
            m("round trips/s", "↑", 0, |r| r.num("round_trips_per_s")),
            m("rtt p50 µs", "↓", 0, |r| r.num("rtt_p50_us")),
            m("rtt p90 µs", "↓", 0, |r| r.num("rtt_p90_us")),
            m("rtt p99 µs", "↓", 0, |r| r.num("rtt_p99_us")),
            m("rtt p99.9 µs", "↓", 0, |r| r.num("rtt_p999_us")),
            sum("lost round trips (all rounds)", |r| {
                Some(r.num("round_trips_expected")? - r.num("round_trips")?)
            }),
            m("measured phase s", "", 2, |r| r.num("measured_s")),
            m("server CPU s, measured phase", "↓", 2, |r| {
                r.num("server_cpu_s")
            }),
            m("server CPU µs/msg", "↓", 3, |r| {
                r.num("server_cpu_us_per_msg")
            }),
            m("server ctx switches/1k msgs", "↓", 1, |r| {
                Some(r.num("server_ctx_switches")? * 500.0 / r.num("round_trips")?.max(1.0))
            }),
        ],
        Scn::Connect5000 => vec![
            m("connections/s", "↑", 0, |r| r.num("connections_per_s")),
            m("registration p50 µs", "↓", 0, |r| {
                r.num("reg_latency_p50_us")
            }),
            m("registration p99 µs", "↓", 0, |r| {
                r.num("reg_latency_p99_us")
            }),
            sum("failed clients (all rounds)", |r| r.num("failed")),
            m("server CPU s, connecting", "↓", 2, |r| {
                r.num("server_cpu_s")
            }),
            m("server CPU µs/client", "↓", 1, |r| {
                r.num("server_cpu_us_per_client")
            }),
            m("server RSS bytes/client", "↓", 0, |r| {
                r.num("server_rss_per_client_bytes")
            }),
        ],
    };
    v.extend([
        m("server CPU s, whole run", "↓", 2, |r| Some(r.cpu_total_s)),
        m("RSS idle KiB", "↓", 0, |r| Some(r.idle.rss_kib as f64)),
        m("RSS at N clients KiB", "↓", 0, |r| {
            r.num("server_rss_after_kib")
        }),
        m("RSS peak KiB", "↓", 0, |r| Some(r.rss_peak_kib as f64)),
        m("OS threads idle", "↓", 0, |r| Some(r.idle.threads as f64)),
        m("OS threads peak", "↓", 0, |r| Some(r.threads_peak as f64)),
        m("loadgen CPU %", "", 0, |r| r.num("loadgen_cpu_pct")),
        sum("failed runs (all rounds)", |r| {
            Some(f64::from(u8::from(!r.ok)))
        }),
    ]);
    v
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

fn fmt_num(v: Option<f64>, decimals: usize) -> String {
    match v {
        None => "-".into(),
        Some(x) if !x.is_finite() => "-".into(),
        Some(x) if decimals == 0 => group(x.round() as i64),
        Some(x) => format!("{x:.decimals$}"),
    }
}

/// 1234567 -> "1,234,567".
fn group(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 && a.is_finite() && b.is_finite() => format!("{:.2}", a / b),
        (Some(a), Some(b)) if a == 0.0 && b == 0.0 => "=".into(),
        _ => "-".into(),
    }
}

/// An aligned Markdown table.
fn md_table(head: &[String], rows: &[Vec<String>]) -> String {
    let cols = head.len();
    let width = |c: usize| {
        rows.iter()
            .map(|r| r[c].chars().count())
            .chain([head[c].chars().count(), 3])
            .max()
            .unwrap_or(3)
    };
    let widths: Vec<usize> = (0..cols).map(width).collect();
    let line = |cells: &[String]| {
        let mut s = String::from("|");
        for (c, cell) in cells.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(s, " {cell}{} |", " ".repeat(pad));
            } else {
                let _ = write!(s, " {}{cell} |", " ".repeat(pad));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(head);
    out.push('|');
    for (c, w) in widths.iter().enumerate() {
        if c == 0 {
            let _ = write!(out, " {} |", "-".repeat(*w));
        } else {
            let _ = write!(out, " {}: |", "-".repeat(*w - 1));
        }
    }
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

fn kinds_of(opts: &Opts) -> Vec<Kind> {
    let mut k = vec![Kind::Smol, Kind::Tokio];
    if opts.ngircd {
        k.push(Kind::Ngircd);
    }
    k
}

fn header(kinds: &[Kind]) -> Vec<String> {
    let mut h: Vec<String> = ["metric", "better", "smol", "tokio", "smol/tokio"]
        .map(String::from)
        .to_vec();
    if kinds.contains(&Kind::Ngircd) {
        h.extend(["ngircd", "smol/ngircd", "tokio/ngircd"].map(String::from));
    }
    h
}

fn scenario_table(scn: Scn, kinds: &[Kind], results: &[RunResult]) -> String {
    let mut rows = Vec::new();
    for metric in metrics(scn) {
        let value = |k: Kind| -> Option<f64> {
            let xs: Vec<f64> = results
                .iter()
                .filter(|r| r.kind == k && r.scn == scn)
                .filter_map(|r| (metric.get)(r))
                .filter(|x| x.is_finite())
                .collect();
            match metric.agg {
                Agg::Median => median(xs),
                Agg::Sum if xs.is_empty() => None,
                Agg::Sum => Some(xs.iter().sum()),
            }
        };
        let (s, t) = (value(Kind::Smol), value(Kind::Tokio));
        let mut row = vec![
            metric.label.to_string(),
            metric.better.to_string(),
            fmt_num(s, metric.decimals),
            fmt_num(t, metric.decimals),
            ratio(s, t),
        ];
        if kinds.contains(&Kind::Ngircd) {
            let n = value(Kind::Ngircd);
            row.extend([fmt_num(n, metric.decimals), ratio(s, n), ratio(t, n)]);
        }
        rows.push(row);
    }
    md_table(&header(kinds), &rows)
}

fn binary_table(opts: &Opts, kinds: &[Kind], ngircd_bin: &Path) -> String {
    let size = |p: &Path| fs::metadata(p).ok().map(|m| m.len() as f64);
    let (s, t) = (size(&opts.smol), size(&opts.tokio));
    let mut row = vec![
        "binary size bytes".to_string(),
        "↓".into(),
        fmt_num(s, 0),
        fmt_num(t, 0),
        ratio(s, t),
    ];
    if kinds.contains(&Kind::Ngircd) {
        let n = size(ngircd_bin);
        row.extend([fmt_num(n, 0), ratio(s, n), ratio(t, n)]);
    }
    md_table(&header(kinds), &[row])
}

// ---------------------------------------------------------------------------------------------
// The chart: latency percentile spectrum (HdrHistogram style), hand-written SVG

fn svg_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// x position of a percentile: log10(1 / (1 - p)), so 90, 99, 99.9 are evenly spaced. The
/// maximum (100%) has no place on this axis and is left out of the chart (it is in the table).
fn pct_x(p: f64) -> f64 {
    let q = (p / 100.0).min(0.9999);
    (1.0 / (1.0 - q)).log10()
}

fn write_svg(
    path: &Path,
    opts: &Opts,
    kinds: &[Kind],
    results: &[RunResult],
) -> Result<(), String> {
    let panels: Vec<Scn> = opts
        .scenarios
        .iter()
        .copied()
        .filter(|s| s.has_latency())
        .filter(|s| results.iter().any(|r| r.scn == *s))
        .collect();
    if panels.is_empty() {
        return Ok(());
    }
    let (w, ph) = (820.0_f64, 380.0_f64);
    let (left, right, top, bottom) = (80.0, 150.0, 44.0, 56.0);
    let head = 36.0;
    let h = head + ph * panels.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">chatnode latency distributions, --threads {}, {} round(s): thin = each round, bold = median per percentile</text>"#,
        w / 2.0,
        opts.threads,
        opts.rounds.unwrap_or(1)
    );
    let x_max = pct_x(99.99);
    for (i, scn) in panels.iter().enumerate() {
        let y0 = head + ph * i as f64;
        let (px0, px1) = (left, w - right);
        let (py0, py1) = (y0 + top, y0 + ph - bottom);
        let key = if *scn == Scn::Pairs200 {
            "rtt_cdf_us"
        } else {
            "latency_cdf_us"
        };
        // Every curve of this panel: (kind, round values, percentiles).
        let mut curves: Vec<(Kind, Vec<(f64, f64)>)> = Vec::new();
        for r in results.iter().filter(|r| r.scn == *scn) {
            let (Some(pcts), Some(vals)) = (
                r.json.get("cdf_pct").and_then(Json::as_f64s),
                r.json.get(key).and_then(Json::as_f64s),
            ) else {
                continue;
            };
            let pts: Vec<(f64, f64)> = pcts
                .into_iter()
                .zip(vals)
                .filter(|(p, _)| *p < 100.0)
                .map(|(p, v)| (p, v.max(1.0)))
                .collect();
            if !pts.is_empty() {
                curves.push((r.kind, pts));
            }
        }
        let all_v = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1));
        let (vmin, vmax) = all_v.fold((f64::MAX, 1.0_f64), |(a, b), v| (a.min(v), b.max(v)));
        if curves.is_empty() {
            continue;
        }
        let lo = 10f64.powf(vmin.log10().floor());
        let hi = 10f64.powf(vmax.log10().ceil()).max(lo * 10.0);
        let sx = |p: f64| px0 + (px1 - px0) * pct_x(p) / x_max;
        let sy = |v: f64| py1 - (py1 - py0) * (v.log10() - lo.log10()) / (hi.log10() - lo.log10());
        let title = if *scn == Scn::Pairs200 {
            format!("{}: round-trip time", scn.title(opts.quick))
        } else {
            format!("{}: delivery latency", scn.title(opts.quick))
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="14" text-anchor="middle" font-weight="bold">{}</text>"#,
            (px0 + px1) / 2.0,
            y0 + 26.0,
            svg_escape(&title)
        );
        // Axes and grid.
        let _ = writeln!(
            s,
            r##"<rect x="{px0}" y="{py0}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
            px1 - px0,
            py1 - py0
        );
        for (p, label) in [
            (0.0, "0%"),
            (50.0, "50%"),
            (90.0, "90%"),
            (99.0, "99%"),
            (99.9, "99.9%"),
            (99.99, "99.99%"),
        ] {
            let x = sx(p);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{py0}" x2="{x:.1}" y2="{py1}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"##,
                py1 + 16.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">percentile (log scale of 1/(1-p))</text>"#,
            (px0 + px1) / 2.0,
            py1 + 36.0
        );
        let mut v = lo;
        while v <= hi * 1.0001 {
            let y = sy(v);
            let label = if v >= 1e6 {
                format!("{} s", v / 1e6)
            } else if v >= 1e3 {
                format!("{} ms", v / 1e3)
            } else {
                format!("{v} µs")
            };
            let _ = writeln!(
                s,
                r##"<line x1="{px0}" y1="{y:.1}" x2="{px1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
                px0 - 6.0,
                y + 4.0
            );
            v *= 10.0;
        }
        let _ = writeln!(
            s,
            r#"<text transform="translate({},{}) rotate(-90)" text-anchor="middle">latency (log scale)</text>"#,
            px0 - 58.0,
            (py0 + py1) / 2.0
        );
        // Thin: every round. Bold: the median at each percentile.
        for (kind, pts) in &curves {
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="1" stroke-opacity="0.4" points="{}"/>"#,
                kind.color(),
                points(pts, &sx, &sy)
            );
        }
        for (li, kind) in kinds.iter().enumerate() {
            let mine: Vec<&Vec<(f64, f64)>> = curves
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, c)| c)
                .collect();
            let Some(first) = mine.first() else {
                continue;
            };
            let med: Vec<(f64, f64)> = (0..first.len())
                .filter_map(|j| {
                    let xs: Vec<f64> = mine.iter().filter_map(|c| c.get(j).map(|p| p.1)).collect();
                    Some((first[j].0, median(xs)?))
                })
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="2.5" points="{}"/>"#,
                kind.color(),
                points(&med, &sx, &sy)
            );
            let ly = py0 + 14.0 + 20.0 * li as f64;
            let p99 = med
                .iter()
                .find(|(p, _)| *p == 99.0)
                .map_or(String::new(), |(_, v)| format!(" p99 {}", fmt_us(*v)));
            let _ = writeln!(
                s,
                r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2.5"/><text x="{}" y="{}">{}{}</text>"#,
                px1 + 10.0,
                px1 + 30.0,
                kind.color(),
                px1 + 35.0,
                ly + 4.0,
                kind.name(),
                p99
            );
        }
    }
    s.push_str("</svg>\n");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    fs::write(path, s).map_err(|e| format!("{}: {e}", path.display()))
}

fn fmt_us(v: f64) -> String {
    if v >= 1e4 {
        format!("{:.0} ms", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1} ms", v / 1e3)
    } else {
        format!("{v:.0} µs")
    }
}

fn points(pts: &[(f64, f64)], sx: &impl Fn(f64) -> f64, sy: &impl Fn(f64) -> f64) -> String {
    let mut out = String::new();
    for (p, v) in pts {
        let _ = write!(out, "{:.1},{:.1} ", sx(*p), sy(*v));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Minimal JSON: loadgen prints one flat object of numbers, strings, booleans, null and arrays.

#[derive(Debug, Clone)]
enum Json {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(s: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            b: s.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(format!("trailing characters at byte {}", p.i));
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(x) => Some(*x),
            Json::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_f64s(&self) -> Option<Vec<f64>> {
        match self {
            Json::Arr(xs) => xs.iter().map(Json::as_f64).collect(),
            _ => None,
        }
    }
}

struct JsonParser<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut kv = Vec::new();
                if self.eat(b'}') {
                    return Ok(Json::Obj(kv));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.expect(b':')?;
                    kv.push((k, self.value()?));
                    if self.eat(b'}') {
                        return Ok(Json::Obj(kv));
                    }
                    self.expect(b',')?;
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut xs = Vec::new();
                if self.eat(b']') {
                    return Ok(Json::Arr(xs));
                }
                loop {
                    xs.push(self.value()?);
                    if self.eat(b']') {
                        return Ok(Json::Arr(xs));
                    }
                    self.expect(b',')?;
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(_) => {
                for (word, v) in [
                    ("true", Json::Bool(true)),
                    ("false", Json::Bool(false)),
                    ("null", Json::Null),
                ] {
                    if self.b[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(v);
                    }
                }
                let start = self.i;
                while self
                    .b
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
                {
                    self.i += 1;
                }
                std::str::from_utf8(&self.b[start..self.i])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .map(Json::Num)
                    .ok_or_else(|| format!("bad value at byte {start}"))
            }
            None => Err("unexpected end".into()),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.b.get(self.i) != Some(&b'"') {
            return Err(format!("expected a string at byte {}", self.i));
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.b.get(self.i) {
                None => return Err("unterminated string".into()),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    let c = *self.b.get(self.i + 1).ok_or("unterminated escape")?;
                    self.i += 2;
                    match c {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4).ok_or("short \\u escape")?;
                            let code = std::str::from_utf8(hex)
                                .ok()
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or("bad \\u escape")?;
                            self.i += 4;
                            let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                Some(&c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

fn find_ngircd(opts: &Opts) -> Result<PathBuf, String> {
    if let Some(p) = &opts.ngircd_bin {
        return Ok(p.clone());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("ngircd"))
        .chain([PathBuf::from("/usr/sbin/ngircd")])
        .find(|p| p.is_file());
    on_path
        .ok_or_else(|| "--ngircd: no ngircd found (apt-get install ngircd, or --ngircd-bin)".into())
}

fn ngircd_config_path(opts: &Opts) -> Result<PathBuf, String> {
    if let Some(p) = &opts.ngircd_config {
        return Ok(p.clone());
    }
    // The benchmark config lives in the repository, next to this example.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shared/ngircd-bench.conf");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "--ngircd: {} is missing; pass --ngircd-config PATH",
            path.display()
        ))
    }
}

fn check_file(path: &Path, how: &str) -> Result<(), String> {
    if path.is_file() {
        Ok(())
    } else {
        Err(format!(
            "{} not found; build it with: {how}",
            path.display()
        ))
    }
}

fn run(mut opts: Opts) -> Result<bool, String> {
    check_file(&opts.smol, "cargo build --release")?;
    check_file(&opts.tokio, "cargo build --release --features tokio")?;
    check_file(&opts.loadgen, "cargo build --release --examples")?;
    let (ngircd_bin, ngircd_config) = if opts.ngircd {
        let bin = find_ngircd(&opts)?;
        let conf = ngircd_config_path(&opts)?;
        let text = fs::read_to_string(&conf).map_err(|e| format!("{}: {e}", conf.display()))?;
        (bin, text)
    } else {
        (PathBuf::new(), String::new())
    };
    if opts.scenarios.contains(&Scn::Connect5000) {
        let need = opts.clients_max() as u64 + 100;
        if let Some(limit) = open_files_limit().filter(|&l| l < need) {
            return Err(format!(
                "connect5000 needs about {need} open files per process, the limit is {limit}: \
                 run `ulimit -n 20000` first (or leave connect5000 out with --scenario)"
            ));
        }
    }
    let rounds = opts.rounds.unwrap_or(if opts.quick { 1 } else { 3 });
    opts.rounds = Some(rounds);
    let logs = std::env::temp_dir().join(format!("chatnode-compare-{}", std::process::id()));
    fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let kinds = kinds_of(&opts);
    let setup = Setup {
        deadline: Instant::now() + opts.timeout,
        opts,
        logs,
        ngircd_bin,
        ngircd_config,
        tck: clock_ticks(),
    };
    let opts = &setup.opts;
    let mut raw = match &opts.raw {
        Some(p) => Some(fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    eprintln!(
        "compare: {} round(s) of {} on {}; chatnode flags: {}; logs in {}",
        rounds,
        opts.scenarios
            .iter()
            .map(|s| s.label(opts.quick))
            .collect::<Vec<_>>()
            .join(", "),
        kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        server_flags(opts.threads).join(" "),
        setup.logs.display()
    );
    let mut results: Vec<RunResult> = Vec::new();
    let mut all_ok = true;
    let mut timed_out = false;
    'rounds: for round in 1..=rounds {
        for &scn in &opts.scenarios {
            // Rotate who goes first each round, so drift in the machine's load spreads evenly.
            let mut order = kinds.clone();
            order.rotate_left((round - 1) % kinds.len());
            for kind in order {
                if Instant::now() + Duration::from_secs(2) > setup.deadline {
                    eprintln!("compare: --timeout reached; reporting what ran");
                    timed_out = true;
                    break 'rounds;
                }
                match run_one(&setup, kind, scn, round, &mut raw) {
                    Ok(r) => {
                        eprintln!("[round {round}/{rounds}] {}", progress_line(&r, opts.quick));
                        all_ok &= r.ok && r.num("lost").unwrap_or(0.0) == 0.0;
                        all_ok &= r.num("reordered").unwrap_or(0.0) == 0.0;
                        results.push(r);
                    }
                    Err(e) => {
                        eprintln!(
                            "[round {round}/{rounds}] {} {}: ERROR {e}",
                            scn.label(opts.quick),
                            kind.name()
                        );
                        all_ok = false;
                    }
                }
            }
        }
    }
    all_ok &= !timed_out;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "## chatnode: smol vs Tokio{}, --threads {}, median of {rounds} round(s){}{}\n",
        if kinds.contains(&Kind::Ngircd) {
            " (ngIRCd as reference)"
        } else {
            ""
        },
        opts.threads,
        if opts.quick { ", --quick" } else { "" },
        if opts.history { ", --history on" } else { "" }
    );
    let _ = writeln!(
        out,
        "Ratios are the left value divided by the right; ↑ higher is better, ↓ lower is better.\n"
    );
    out.push_str("### binaries\n\n");
    out.push_str(&binary_table(opts, &kinds, &setup.ngircd_bin));
    for &scn in &opts.scenarios {
        let _ = writeln!(out, "\n### {}\n", scn.title(opts.quick));
        let _ = writeln!(
            out,
            "`loadgen {}`\n",
            scn.loadgen_args(opts.quick).join(" ")
        );
        out.push_str(&scenario_table(scn, &kinds, &results));
    }
    print!("{out}");
    if let Err(e) = write_svg(&opts.svg, opts, &kinds, &results) {
        eprintln!("compare: chart: {e}");
    } else if opts.scenarios.iter().any(|s| s.has_latency()) {
        eprintln!("compare: latency chart written to {}", opts.svg.display());
    }
    if all_ok && !opts.keep_logs {
        let _ = fs::remove_dir_all(&setup.logs);
    } else {
        eprintln!(
            "compare: server and loadgen logs kept in {}",
            setup.logs.display()
        );
    }
    Ok(all_ok)
}

impl Opts {
    fn clients_max(&self) -> usize {
        self.scenarios
            .iter()
            .map(|s| s.clients(self.quick))
            .max()
            .unwrap_or(0)
    }
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("compare: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    match run(opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("compare: some runs failed or lost messages (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::from(2)
        }
    }
}
