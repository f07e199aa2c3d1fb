//! End-to-end tests of the example programs `examples/bot.rs`, `examples/client.rs` and
//! `examples/loadgen.rs` (on our reactor since it dropped async-io), run as
//! child processes against a real `chatnode` on 127.0.0.1, with std-only raw IRC clients as
//! witnesses.
//!
//! `cargo test` builds the examples but does not run them; the tests find their binaries next to
//! this test's executable (`target/<profile>/deps/example_clients-<hash>` ->
//! `target/<profile>/examples/<name>`). `cargo test --test example_clients` alone does not build
//! the examples: run `cargo build --examples` first (a missing or stale binary fails with that
//! hint).
//!
//! Synchronisation: nothing sleeps to wait for a process; every wait is "until this line arrives
//! (on a socket, or in a child's output), or fail at a deadline". Every child is killed when its
//! guard is dropped, on failure too, and a failing test prints the children's output.

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Deadline for each ordinary wait.
const DEADLINE: Duration = Duration::from_secs(5);
/// Deadline for the bot to come back after a node restart (its back-off is 0.5 s, 1 s, 2 s, ...).
const RECONNECT_DEADLINE: Duration = Duration::from_secs(15);

// ------------------------------------------------------------------------------------------------
// Child processes

/// The lines a child writes to one of its pipes, collected by a thread.
#[derive(Default)]
struct Output {
    /// The lines so far (raw text, escape sequences kept) and whether the pipe is closed.
    state: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl Output {
    fn collect(pipe: impl Read + Send + 'static) -> Arc<Output> {
        let out = Arc::new(Output::default());
        let out2 = out.clone();
        thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\r', '\n']).to_string();
                        out2.state.lock().unwrap().0.push(line);
                        out2.changed.notify_all();
                    }
                }
            }
            out2.state.lock().unwrap().1 = true;
            out2.changed.notify_all();
        });
        out
    }

    /// The first line matching `pred`, waiting up to `limit`; an error at the deadline or when
    /// the pipe closes first.
    fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        let mut st = self.state.lock().unwrap();
        loop {
            if let Some(line) = st.0.iter().find(|l| pred(l)) {
                return Ok(line.clone());
            }
            if st.1 {
                return Err(format!("output closed before {what}"));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("no {what} within {limit:?}"));
            }
            st = self.changed.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// Waits until the pipe is closed (the process exited), up to `limit`.
    fn wait_closed(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut st = self.state.lock().unwrap();
        while !st.1 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self.changed.wait_timeout(st, deadline - now).unwrap().0;
        }
        true
    }

    fn text(&self) -> String {
        self.state.lock().unwrap().0.join("\n")
    }
}

/// A child process, killed (and its output printed, if the test is failing) when dropped.
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Output>,
    stderr: Arc<Output>,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            stdin: child.stdin.take(),
            stdout: Output::collect(child.stdout.take().unwrap()),
            stderr: Output::collect(child.stderr.take().unwrap()),
            child,
        }
    }

    /// Writes one line to the child's stdin.
    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to the child's stdin");
        stdin.flush().unwrap();
    }

    /// Sends SIGTERM.
    fn terminate(&self) {
        unsafe extern "C" {
            fn kill(pid: i32, sig: i32) -> i32;
        }
        const SIGTERM: i32 = 15;
        let pid = i32::try_from(self.child.id()).expect("pid fits in pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child, not
        // yet reaped (we hold its `Child`), so it cannot name another process.
        let rc = unsafe { kill(pid, SIGTERM) };
        assert_eq!(rc, 0, "kill({pid}, SIGTERM) failed");
    }

    /// Waits for the process to exit by itself (its stderr closes), up to `limit`.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        assert!(
            self.stderr.wait_closed(limit),
            "{} did not exit within {limit:?}",
            self.name
        );
        self.child.wait().expect("wait for child")
    }

    /// Kills the process (SIGKILL) and reaps it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "----- {} stdout -----\n{}\n----- {} stderr -----\n{}\n-----",
                self.name,
                self.stdout.text(),
                self.name,
                self.stderr.text()
            );
        }
    }
}

/// One build of the node: `chatnode`, and `chatnode-tokio` under `--features tokio`.
struct Build {
    name: &'static str,
    path: &'static str,
}

/// Runs `f` once per build of the node (the examples are the same binaries for both).
fn for_each_build(f: impl Fn(&Build)) {
    #[allow(unused_mut)]
    let mut builds = vec![Build {
        name: "chatnode",
        path: env!("CARGO_BIN_EXE_chatnode"),
    }];
    #[cfg(feature = "tokio")]
    builds.push(Build {
        name: "chatnode-tokio",
        path: env!("CARGO_BIN_EXE_chatnode-tokio"),
    });
    for b in &builds {
        eprintln!("=== build {} ===", b.name);
        f(b);
    }
}

/// Starts a node listening on `listen` and returns it with its address, from its log line
/// `listening on ADDR`. An error if it exits first (e.g. the address is in use).
fn try_start_node(build: &Build, listen: &str) -> Result<(Proc, SocketAddr), String> {
    try_start_node_with(build, listen, &[])
}

/// [`try_start_node`] with more command-line arguments.
fn try_start_node_with(
    build: &Build,
    listen: &str,
    extra: &[&str],
) -> Result<(Proc, SocketAddr), String> {
    let node = Proc::spawn(
        build.name,
        Command::new(build.path)
            // Not about history: keep nothing in the user's data dir.
            .args(["--listen", listen, "--history", "off"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("RUST_LOG_STYLE", "never"),
    );
    let line = node
        .stderr
        .wait_for("`listening on` log line", Duration::from_secs(10), |l| {
            l.contains("listening on ")
        });
    let line = match line {
        Ok(line) => line,
        Err(e) => return Err(format!("{e}; node log:\n{}", node.stderr.text())),
    };
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse the address in {line:?}"));
    Ok((node, addr))
}

fn start_node(build: &Build) -> (Proc, SocketAddr) {
    try_start_node(build, "127.0.0.1:0").unwrap_or_else(|e| panic!("node did not start: {e}"))
}

/// A node on a free port *outside* the kernel's ephemeral range, for a test that restarts it on
/// the same port: no other test's outgoing connection can be given that port in between (an
/// ephemeral `:0` port could be).
fn start_node_on_a_fixed_port(build: &Build) -> (Proc, SocketAddr) {
    let (low, _) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|v| v.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    // Below the range, starting at a place that differs per process and per build.
    let span = low.saturating_sub(10_000).max(1);
    let seed = (std::process::id() as u16).wrapping_mul(31) ^ build.name.len() as u16;
    for i in 0..span {
        let port = 10_000 + (seed.wrapping_add(i) % span);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if std::net::TcpListener::bind(addr).is_err() {
            continue;
        }
        if let Ok(started) = try_start_node(build, &addr.to_string()) {
            return started;
        }
    }
    panic!("no free port below the ephemeral range ({low})");
}

/// Starts a node on exactly `addr` (a port outside the ephemeral range), retrying for a while
/// if the old listener's port is still held.
fn restart_node_on(build: &Build, addr: SocketAddr) -> Proc {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match try_start_node(build, &addr.to_string()) {
            Ok((node, _)) => return node,
            Err(e) if Instant::now() >= deadline => panic!("node did not restart on {addr}: {e}"),
            // A retry pause, not synchronisation: the kernel may hold the port for a moment.
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The path of an example's binary, built by `cargo test` next to this test's directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let built = fs::metadata(&bin).and_then(|m| m.modified());
    let built = built.unwrap_or_else(|e| {
        panic!(
            "example `{name}` not found at {} ({e}): `cargo test` builds the examples; \
             with `--test example_clients` alone, run `cargo build --examples` first",
            bin.display()
        )
    });
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.rs"));
    if let Ok(edited) = fs::metadata(&src).and_then(|m| m.modified()) {
        assert!(
            edited <= built,
            "{} is older than {}: run `cargo test` (or `cargo build --examples`) to rebuild it",
            bin.display(),
            src.display()
        );
    }
    bin
}

fn start_bot(addr: SocketAddr, nick: Option<&str>, channels: &[&str]) -> Proc {
    let mut cmd = Command::new(example("bot"));
    cmd.args(["--server", &addr.to_string(), "--max-runtime", "60"])
        .env("RUST_LOG", "info")
        .env("RUST_LOG_STYLE", "never");
    if let Some(nick) = nick {
        cmd.args(["--nick", nick]);
    }
    for c in channels {
        cmd.args(["--channel", c]);
    }
    Proc::spawn("bot", &mut cmd)
}

fn start_client(addr: SocketAddr, nick: &str, channel: &str) -> Proc {
    Proc::spawn(
        "client",
        Command::new(example("client")).args([
            "--server",
            &addr.to_string(),
            "--nick",
            nick,
            "--channel",
            channel,
        ]),
    )
}

// ------------------------------------------------------------------------------------------------
// A raw IRC client (std::net)

struct Irc {
    nick: String,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// Bytes of a line whose end has not arrived yet (kept across read timeouts).
    partial: Vec<u8>,
}

impl Irc {
    /// Connects and registers as `nick` (waits for 001).
    fn connect(addr: SocketAddr, nick: &str) -> Irc {
        let stream = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect to the node");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut irc = Irc {
            nick: nick.to_string(),
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
            partial: Vec::new(),
        };
        irc.send(&format!("NICK {nick}"));
        irc.send(&format!("USER {nick} 0 * :raw test client"));
        irc.expect("001", |l| command(l) == "001");
        irc
    }

    fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write to the node");
    }

    /// The next line, or `None` at the deadline. Answers PING on the way. Panics at EOF.
    fn next_line(&mut self, deadline: Instant) -> Option<String> {
        loop {
            if Instant::now() >= deadline {
                return None;
            }
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) => panic!("[{}] the node closed the connection", self.nick),
                Ok(_) if self.partial.ends_with(b"\n") => {
                    let line = String::from_utf8_lossy(&self.partial)
                        .trim_end_matches(['\r', '\n'])
                        .to_string();
                    self.partial.clear();
                    if let Some(token) = line.strip_prefix("PING ") {
                        self.send(&format!("PONG {token}"));
                        continue;
                    }
                    return Some(line);
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("[{}] read error: {e}", self.nick),
            }
        }
    }

    /// Reads lines until one matches `pred`; returns it. Panics at the deadline.
    fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.expect_within(DEADLINE, what, pred)
    }

    fn expect_within(
        &mut self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(line) = self.next_line(deadline) {
            if pred(&line) {
                return line;
            }
            seen.push(line);
        }
        panic!(
            "[{}] no {what} within {limit:?}; saw:\n{}",
            self.nick,
            seen.join("\n")
        );
    }

    /// Joins `channel`; returns the lines up to the end of NAMES (366).
    fn join(&mut self, channel: &str) -> Vec<String> {
        self.send(&format!("JOIN {channel}"));
        let deadline = Instant::now() + DEADLINE;
        let mut lines = Vec::new();
        while let Some(line) = self.next_line(deadline) {
            let end = command(&line) == "366";
            lines.push(line);
            if end {
                return lines;
            }
        }
        panic!(
            "[{}] JOIN {channel}: no 366; saw:\n{}",
            self.nick,
            lines.join("\n")
        );
    }

    /// Joins `channel` and waits until `nick` is in it: listed in the NAMES reply already, or
    /// seen joining later. Returns whether it was seen joining.
    fn join_and_wait_for(&mut self, channel: &str, nick: &str, limit: Duration) -> bool {
        let names = self.join(channel);
        let listed = names.iter().any(|l| {
            command(l) == "353"
                && trailing(l)
                    .split(' ')
                    .any(|n| n.trim_start_matches(['@', '+']) == nick)
        });
        if listed {
            return false;
        }
        self.expect_within(limit, &format!("{nick} joining {channel}"), |l| {
            source_nick(l) == nick && command(l) == "JOIN"
        });
        true
    }

    /// Says `text` in `target` and returns the first PRIVMSG from `from` that comes back.
    fn ask(&mut self, target: &str, text: &str, from: &str) -> String {
        self.send(&format!("PRIVMSG {target} :{text}"));
        let line = self.expect(&format!("an answer from {from} to {text}"), |l| {
            source_nick(l) == from && command(l) == "PRIVMSG"
        });
        trailing(&line).to_string()
    }
}

/// The command of a raw line (`:src CMD ...` or `CMD ...`).
fn command(line: &str) -> &str {
    let rest = match line.strip_prefix(':') {
        Some(r) => r.split_once(' ').map_or("", |(_, r)| r),
        None => line,
    };
    rest.split(' ').next().unwrap_or("")
}

/// The nick of a raw line's source (`:nick!user@host ...`).
fn source_nick(line: &str) -> &str {
    line.strip_prefix(':')
        .and_then(|r| r.split([' ', '!']).next())
        .unwrap_or("")
}

/// The trailing parameter of a raw line (after ` :`), or "".
fn trailing(line: &str) -> &str {
    let body = line
        .strip_prefix(':')
        .map_or(line, |r| r.split_once(' ').map_or("", |x| x.1));
    body.split_once(" :").map_or("", |x| x.1)
}

/// The params of a raw line before the trailing one (first = target of a PRIVMSG).
fn first_param(line: &str) -> &str {
    let body = line
        .strip_prefix(':')
        .map_or(line, |r| r.split_once(' ').map_or("", |x| x.1));
    body.split(' ').nth(1).unwrap_or("")
}

// ------------------------------------------------------------------------------------------------
// The bot

#[test]
fn bot_answers_commands_and_quits_on_sigterm() {
    for_each_build(bot_answers_commands_and_quits_on_sigterm_on);
}

fn bot_answers_commands_and_quits_on_sigterm_on(build: &Build) {
    let (_node, addr) = start_node(build);
    let mut bot = start_bot(addr, Some("testbot"), &["#test"]);
    let mut raw = Irc::connect(addr, "watcher");
    raw.join_and_wait_for("#test", "testbot", DEADLINE);

    assert_eq!(raw.ask("#test", "!ping", "testbot"), "pong");
    let help = raw.ask("#test", "!help", "testbot");
    for cmd in ["!ping", "!uptime", "!help"] {
        assert!(help.contains(cmd), "!help lacks {cmd}: {help:?}");
    }
    let uptime = raw.ask("#test", "!uptime", "testbot");
    assert!(
        uptime.starts_with("up ") && uptime.contains("connected"),
        "!uptime answer: {uptime:?}"
    );
    // A private question gets a private answer.
    raw.send("PRIVMSG testbot :!ping");
    let line = raw.expect("a private pong", |l| {
        source_nick(l) == "testbot" && command(l) == "PRIVMSG"
    });
    assert_eq!(
        first_param(&line),
        "watcher",
        "answer not private: {line:?}"
    );
    assert_eq!(trailing(&line), "pong");
    // Other text gets no answer: the next answer seen is the one to the next !ping.
    raw.send("PRIVMSG #test :hello bot");
    assert_eq!(raw.ask("#test", "!ping", "testbot"), "pong");

    // SIGTERM: the bot sends QUIT and exits 0.
    bot.terminate();
    raw.expect("the bot's QUIT", |l| {
        source_nick(l) == "testbot" && command(l) == "QUIT"
    });
    let status = bot.wait_exit(DEADLINE);
    assert!(status.success(), "bot exit status after SIGTERM: {status}");
}

#[test]
fn bot_reconnects_and_rejoins_after_node_restart() {
    for_each_build(bot_reconnects_and_rejoins_after_node_restart_on);
}

fn bot_reconnects_and_rejoins_after_node_restart_on(build: &Build) {
    let (mut node, addr) = start_node_on_a_fixed_port(build);
    let bot = start_bot(addr, Some("rbot"), &["#test", "#more"]);
    let mut raw = Irc::connect(addr, "watcher");
    raw.join_and_wait_for("#test", "rbot", DEADLINE);
    assert_eq!(raw.ask("#test", "!ping", "rbot"), "pong");

    // SIGKILL the node: no goodbye to anyone. Then a new node on the same port.
    node.kill();
    drop(raw);
    let _node2 = restart_node_on(build, addr);
    let mut raw = Irc::connect(addr, "watcher2");
    let saw_join = raw.join_and_wait_for("#test", "rbot", RECONNECT_DEADLINE);
    eprintln!(
        "the bot came back {}",
        if saw_join {
            "and was seen joining"
        } else {
            "before the watcher joined (listed in NAMES)"
        }
    );
    assert_eq!(raw.ask("#test", "!ping", "rbot"), "pong");
    // Both channels were rejoined.
    raw.join_and_wait_for("#more", "rbot", DEADLINE);
    let uptime = raw.ask("#more", "!uptime", "rbot");
    assert!(uptime.contains("reconnected 1 time"), "!uptime: {uptime:?}");
    assert!(
        bot.stderr.text().contains("reconnecting in"),
        "the bot's log does not mention reconnecting"
    );
}

#[test]
fn bot_takes_nick_with_underscore_when_its_nick_is_in_use() {
    for_each_build(bot_takes_nick_with_underscore_when_its_nick_is_in_use_on);
}

fn bot_takes_nick_with_underscore_when_its_nick_is_in_use_on(build: &Build) {
    let (_node, addr) = start_node(build);
    let mut raw = Irc::connect(addr, "chatbot");
    let _bot = start_bot(addr, None, &["#n"]);
    raw.join_and_wait_for("#n", "chatbot_", DEADLINE);
    assert_eq!(raw.ask("#n", "!ping", "chatbot_"), "pong");
}

// ------------------------------------------------------------------------------------------------
// The client

/// A line of the client's output like `[#t] 12:34:56 <watcher> text`.
fn is_channel_line(line: &str, channel: &str, nick: &str, text: &str) -> bool {
    let Some(rest) = line.strip_prefix(&format!("[{channel}] ")) else {
        return false;
    };
    let (time, rest) = rest.split_at_checked(8).unwrap_or(("", ""));
    let time_ok = time.len() == 8
        && time.bytes().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        });
    time_ok && rest == format!(" <{nick}> {text}")
}

#[test]
fn client_example_driven_through_stdin() {
    for_each_build(client_example_driven_through_stdin_on);
}

fn client_example_driven_through_stdin_on(build: &Build) {
    let (_node, addr) = start_node(build);
    let mut raw = Irc::connect(addr, "watcher");
    raw.join("#t");
    let mut client = start_client(addr, "cli", "#t");
    raw.expect("cli joining #t", |l| {
        source_nick(l) == "cli" && command(l) == "JOIN"
    });

    // A plain line is said in the current channel.
    client.type_line("hello from stdin");
    let line = raw.expect("cli's message", |l| {
        source_nick(l) == "cli" && command(l) == "PRIVMSG"
    });
    assert_eq!(first_param(&line), "#t");
    assert_eq!(trailing(&line), "hello from stdin");

    // Others' messages are printed with the channel, a timestamp and the nick, and (stdout
    // being a pipe) without escape sequences.
    raw.send("PRIVMSG #t :hi there, cli");
    client
        .stdout
        .wait_for("the watcher's message on stdout", DEADLINE, |l| {
            is_channel_line(l, "#t", "watcher", "hi there, cli")
        })
        .unwrap();

    // /me is a CTCP ACTION.
    client.type_line("/me waves");
    let line = raw.expect("cli's ACTION", |l| {
        source_nick(l) == "cli" && command(l) == "PRIVMSG"
    });
    assert_eq!(trailing(&line), "\x01ACTION waves\x01");

    // /msg goes to one nick.
    client.type_line("/msg watcher just for you");
    let line = raw.expect("cli's private message", |l| {
        source_nick(l) == "cli" && command(l) == "PRIVMSG"
    });
    assert_eq!(first_param(&line), "watcher");
    assert_eq!(trailing(&line), "just for you");

    // /quit sends QUIT with the reason, and the client exits 0.
    client.type_line("/quit bye");
    let line = raw.expect("cli's QUIT", |l| {
        source_nick(l) == "cli" && command(l) == "QUIT"
    });
    assert!(trailing(&line).contains("bye"), "QUIT reason: {line:?}");
    let status = client.wait_exit(DEADLINE);
    assert!(status.success(), "client exit status after /quit: {status}");
    let out = client.stdout.text();
    assert!(!out.contains('\x1b'), "escape sequences on a pipe:\n{out}");
    assert!(out.contains("* cli waves"), "own action not shown:\n{out}");
    // Common numerics are rendered as sentences, not raw (`004 cli chatnode.local ...`).
    assert!(
        out.contains("-!- This server was created ") && out.contains(" runs chatnode-"),
        "the welcome burst is not readable:\n{out}"
    );
    assert!(!out.contains("-!- 004 "), "raw 004 shown:\n{out}");
}

#[test]
fn client_example_quits_at_end_of_input() {
    for_each_build(client_example_quits_at_end_of_input_on);
}

fn client_example_quits_at_end_of_input_on(build: &Build) {
    let (_node, addr) = start_node(build);
    let mut raw = Irc::connect(addr, "watcher");
    raw.join("#t");
    let mut client = start_client(addr, "cli", "#t");
    raw.expect("cli joining #t", |l| {
        source_nick(l) == "cli" && command(l) == "JOIN"
    });
    drop(client.stdin.take()); // EOF
    raw.expect("cli's QUIT", |l| {
        source_nick(l) == "cli" && command(l) == "QUIT"
    });
    let status = client.wait_exit(DEADLINE);
    assert!(
        status.success(),
        "client exit status at end of input: {status}"
    );
}

#[test]
fn client_example_exits_nonzero_when_the_server_closes() {
    for_each_build(client_example_exits_nonzero_when_the_server_closes_on);
}

fn client_example_exits_nonzero_when_the_server_closes_on(build: &Build) {
    let (node, addr) = start_node(build);
    let mut raw = Irc::connect(addr, "watcher");
    raw.join("#t");
    let mut client = start_client(addr, "cli", "#t");
    raw.expect("cli joining #t", |l| {
        source_nick(l) == "cli" && command(l) == "JOIN"
    });
    // A graceful shutdown sends every client `ERROR :Server shutting down`.
    node.terminate();
    let status = client.wait_exit(DEADLINE);
    assert!(!status.success(), "client exit status: {status}");
    let out = client.stdout.text();
    assert!(
        out.contains("Server shutting down"),
        "the ERROR reason is not shown:\n{out}"
    );
}

/// Runs loadgen to its end (it stops by itself: `--duration` bounds it) and returns its exit
/// status and its JSON report line.
fn run_loadgen(args: &[&str]) -> (ExitStatus, String) {
    let out = Command::new(example("loadgen"))
        .args(args)
        .args(["--json", "--duration", "60"])
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line from loadgen {args:?}; stderr:\n{stderr}"))
        .to_string();
    (out.status, json)
}

/// The integer `key` of a loadgen JSON report.
fn json_int(json: &str, key: &str) -> u64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {json}"));
    let rest = &json[at + key.len() + 3..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end]
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not an integer in {json}"))
}

#[test]
fn loadgen_runs_its_three_scenarios_to_the_last_message() {
    for_each_build(loadgen_runs_its_three_scenarios_to_the_last_message_on);
}

fn loadgen_runs_its_three_scenarios_to_the_last_message_on(build: &Build) {
    // Exempt from the per-address limits and flood control, as in the benchmarks.
    let (node, addr) = try_start_node_with(build, "127.0.0.1:0", &["--exempt", "127.0.0.0/8"])
        .unwrap_or_else(|e| panic!("node did not start: {e}"));
    let server = addr.to_string();
    let common = ["--server", &server, "--server-pid"];
    let pid = node.child.id().to_string();

    let (status, json) =
        run_loadgen(&[&["connect"], &common[..], &[&pid, "--clients", "50"]].concat());
    assert!(status.success(), "connect: {json}");
    assert_eq!(json_int(&json, "registered"), 50, "{json}");

    let fanout = [
        &["fanout"],
        &common[..],
        &[
            &pid,
            "--clients",
            "40",
            "--senders",
            "2",
            "--messages",
            "200",
        ],
    ]
    .concat();
    let (status, json) = run_loadgen(&fanout);
    assert!(status.success(), "fanout: {json}");
    // Every sender's message reaches the other 39 members.
    assert_eq!(json_int(&json, "expected"), 2 * 200 * 39, "{json}");
    assert_eq!(json_int(&json, "delivered"), 2 * 200 * 39, "{json}");
    assert_eq!(json_int(&json, "lost"), 0, "{json}");

    let pairs = [
        &["pairs"],
        &common[..],
        &[&pid, "--clients", "20", "--messages", "300"],
    ]
    .concat();
    let (status, json) = run_loadgen(&pairs);
    assert!(status.success(), "pairs: {json}");
    assert_eq!(json_int(&json, "round_trips"), 10 * 300, "{json}");
}

#[test]
fn loadgen_reports_a_refused_connection_and_exits_1() {
    // A port that was just free: nobody listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = Command::new(example("loadgen"))
        .args([
            "connect",
            "--server",
            &closed,
            "--clients",
            "3",
            "--duration",
            "20",
        ])
        .output()
        .expect("run loadgen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("connect:") && stderr.to_lowercase().contains("refused"),
        "stderr:\n{stderr}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn loadgen_speaks_tls_over_our_reactor() {
    for_each_build(loadgen_speaks_tls_over_our_reactor_on);
}

/// The `--tls` path: rustls over the two halves of a socket on our reactor (loadgen's `Joined`).
#[cfg(feature = "tls")]
fn loadgen_speaks_tls_over_our_reactor_on(build: &Build) {
    let dir = std::env::temp_dir().join(format!(
        "chatnode-lg-tls-{}-{}",
        std::process::id(),
        build.name
    ));
    fs::create_dir_all(&dir).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    fs::write(&cert, made.cert.pem()).unwrap();
    fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    // Exempt from the per-address limits, as in the benchmarks.
    let extra = [
        "--exempt",
        "127.0.0.0/8",
        "--listen-tls",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    let (node, _) = try_start_node_with(build, "127.0.0.1:0", &extra)
        .unwrap_or_else(|e| panic!("node did not start: {e}"));
    let line = node
        .stderr
        .wait_for("the TLS listener's log line", DEADLINE, |l| {
            l.contains("listening on ") && l.contains("(tls)")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let tls_addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let pairs = [
        "pairs",
        "--server",
        &tls_addr,
        "--tls",
        &cert,
        "--clients",
        "10",
        "--messages",
        "100",
    ];
    let (status, json) = run_loadgen(&pairs);
    let _ = fs::remove_dir_all(&dir);
    assert!(status.success(), "pairs over TLS: {json}");
    assert!(json.contains("\"transport\":\"tls\""), "{json}");
    assert_eq!(json_int(&json, "round_trips"), 5 * 100, "{json}");
}
