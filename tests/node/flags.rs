//! Flags whose effect only shows end to end: `--version`, `--hash-password`, `--write-timeout`,
//! `--slow-poll-ms`, `--task-stats off`, SIGINT, and message tags at their size limit.

use crate::common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the build with `args` and `stdin`, waits (bounded by the child's own exit: these flags
/// print and exit at once) and returns (exit code, stdout, stderr).
fn run_once(b: &Build, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(b.path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_flag_prints_name_version_and_runtime() {
    for_each_build(|b| {
        for flag in ["--version", "-V"] {
            let (code, out, _) = run_once(b, &[flag], b"");
            assert_eq!(code, 0, "{flag}");
            let runtime = if b.name == "chatnode" {
                "our smol executor"
            } else {
                "Tokio"
            };
            assert_eq!(
                out,
                format!(
                    "{} {} (runtime: {runtime})\n",
                    b.name,
                    env!("CARGO_PKG_VERSION")
                ),
                "{flag}"
            );
        }
    });
}

/// The hash `--hash-password` prints is the one OPER accepts, end to end.
#[test]
fn hash_password_output_works_in_the_config() {
    for_each_build(|b| {
        let (code, hash, err) = run_once(b, &["--hash-password"], b"s3cret pass\n");
        assert_eq!(code, 0, "{err}");
        let hash = hash.trim_end();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_eq!(hash.lines().count(), 1, "one line: {hash}");
        let (code, again, _) = run_once(b, &["--hash-password"], b"s3cret pass\n");
        assert_eq!(code, 0);
        assert_ne!(hash, again.trim_end(), "a fresh salt each time");
        let (code, _, err) = run_once(b, &["--hash-password"], b"\n");
        assert_eq!(code, 2, "an empty password is refused: {err}");

        let dir = TempDir::new("hashpw");
        let config = dir.join("chatnode.toml");
        std::fs::write(
            &config,
            format!("[[operator]]\nname = \"admin\"\npassword_hash = \"{hash}\"\n"),
        )
        .unwrap();
        let node = Node::start(b, &["--config", config.to_str().unwrap()]);
        let mut alice = node.register("alice");
        alice.ask_exactly("OPER admin s3cret", &["464"]);
        alice.send("OPER admin :s3cret pass");
        alice.expect_next_numeric("381");
        alice.expect_next_command("MODE");
    });
}

/// A client that stops reading is dropped once a write has made no progress for
/// `--write-timeout`, and not before.
#[test]
fn write_timeout_drops_a_client_whose_writes_stall() {
    for_each_build(|b| {
        let text = "w".repeat(380);
        // More than the server's socket buffer can absorb, less than the SendQ.
        let lines = (tcp_wmem_max() + (2 << 20)) / (text.len() + 30);
        let sendq = (4 * lines * (text.len() + 60)).to_string();
        let node = Node::start(b, &["--write-timeout", "1", "--sendq", &sendq]);
        let mut stuck =
            Client::connect_with_small_rcvbuf(node.addr(), &format!("{}:stuck", b.name), 4096);
        stuck.register_as("stuck");
        stuck.join("#w");
        let mut alice = node.register("alice");
        alice.join("#w");
        let start = Instant::now();
        let mut batch = Vec::new();
        for i in 0..lines {
            batch.extend_from_slice(format!("PRIVMSG stuck :{i:06} {text}\r\n").as_bytes());
        }
        alice.send_raw(&batch);
        // Well before the 30 s default: only the flag can have dropped stuck by then (its SendQ
        // holds the whole flood).
        let quit = alice.expect_within(Duration::from_secs(20), |m| m.is_from("QUIT", "stuck"));
        let took = start.elapsed();
        // The writer reports "Write timeout (1 seconds)"; when the broker pushes another of
        // alice's lines to the finished queue before it reads that report, the QUIT says
        // "Connection closed" instead (a race in how the reason travels, not in the timeout).
        assert!(
            quit.last() == "Write timeout (1 seconds)" || quit.last() == "Connection closed",
            "stuck's QUIT reason: {quit}"
        );
        assert!(
            took >= Duration::from_secs(1),
            "dropped after {took:?}, before the 1 s write timeout"
        );
        alice.assert_alive();
    });
}

/// `--slow-poll-ms` and `--task-stats` reach the runtime's task figures (STATS e, STATS t).
#[test]
fn slow_poll_ms_and_task_stats_off_reach_stats() {
    for_each_build(|b| {
        let dir = TempDir::new("flags-stats");
        let hash = chatnode::auth::hash_password("pw", b"0123456789abcdef").unwrap();
        let config = dir.join("chatnode.toml");
        std::fs::write(
            &config,
            format!("[[operator]]\nname = \"admin\"\npassword_hash = \"{hash}\"\n"),
        )
        .unwrap();
        let config = config.to_str().unwrap();
        for (stats_on, extra) in [
            (true, &["--slow-poll-ms", "250"][..]),
            (false, &["--task-stats", "off"][..]),
        ] {
            let mut args = vec!["--config", config];
            args.extend_from_slice(extra);
            let node = Node::start(b, &args);
            let mut alice = node.register("alice");
            alice.send("OPER admin pw");
            alice.expect_numeric("381");
            alice.expect_next_command("MODE");
            let lines = alice.stats("e");
            let process = lines.iter().find(|l| l.starts_with("process:")).unwrap();
            let threshold = if stats_on { 250 } else { 10 };
            assert!(
                process.contains(&format!("slow-poll threshold {threshold} ms")),
                "{extra:?}: {process}"
            );
            let lines = alice.stats("t");
            let conn = lines.iter().find(|l| l.starts_with("task conn:")).unwrap();
            let polls = conn
                .split_whitespace()
                .skip_while(|w| *w != "polls")
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no polls figure: {conn}"));
            if stats_on {
                assert!(polls > 0, "polls are counted: {conn}");
            } else {
                assert_eq!(polls, 0, "--task-stats off counts no polls: {conn}");
            }
        }
    });
}

/// SIGINT shuts down as gracefully as SIGTERM: everyone gets the ERROR, exit status 0.
#[test]
fn sigint_graceful_shutdown() {
    for_each_build(|b| {
        let mut node = Node::start(b, &["--shutdown-grace", "2"]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        alice.join("#a");
        bob.join("#a");
        alice.send("PRIVMSG #a :before the signal");
        alice.assert_alive();
        node.signal("INT");
        let m = bob.expect_next_command("PRIVMSG");
        assert_eq!(m.last(), "before the signal", "{m}");
        for c in [&mut alice, &mut bob] {
            let lines = c.expect_closed();
            let err = lines
                .iter()
                .find(|m| m.is("ERROR"))
                .unwrap_or_else(|| panic!("[{}] ERROR before close: {lines:?}", c.label));
            assert_eq!(err.last(), "Server shutting down");
        }
        let st = node.wait_exit(Duration::from_secs(10));
        assert!(st.success(), "exit status after SIGINT: {st}");
        assert!(
            node.logs().iter().any(|l| l.contains("received SIGINT")),
            "{:?}",
            node.logs()
        );
    });
}

/// Message tags at their size limit, over real TCP in one write and in tiny writes: client tag
/// data (between '@' and the space) up to 4094 bytes is accepted and the command runs, one byte
/// more gets 417 (message-tags "Size limit"); a client without message-tags gets no tags.
#[test]
fn message_tags_up_to_their_limit_end_to_end() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        let fits = format!("@a={} ", "x".repeat(4094 - 2));
        assert_eq!(fits.len(), 4094 + 2);
        alice.send(&format!("{fits}PRIVMSG bob :tagged"));
        let m = bob.expect_next_command("PRIVMSG");
        assert_eq!(m.last(), "tagged");
        assert_eq!(m.tags, None, "tags are not relayed without message-tags");
        let over = format!("@a={} ", "x".repeat(4094 - 1));
        alice.send(&format!("{over}PRIVMSG bob :too many tags"));
        alice.expect_next_numeric("417");
        alice.send_in_tiny_writes(format!("{fits}PRIVMSG bob :tiny writes\r\n").as_bytes());
        let m = bob.expect_next_command("PRIVMSG");
        assert_eq!(m.last(), "tiny writes");
        bob.assert_no_line_matching(|_| true);
        alice.assert_no_line_matching(|_| true);
    });
}
