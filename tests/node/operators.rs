//! OPER (Argon2 hashes from the config file, checked on the blocking pool) and STATS.

use crate::common::*;
use std::time::Duration;

/// Writes a config file with one operator `admin` whose password is `pw`, hashed with
/// `params` (memory KiB, passes).
fn config_with_operator(dir: &TempDir, pw: &str, m_kib: u32, t: u32) -> String {
    let hash = argon2_hash(pw, m_kib, t);
    let path = dir.join("chatnode.toml");
    std::fs::write(
        &path,
        format!("[[operator]]\nname = \"admin\"\npassword_hash = \"{hash}\"\n"),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// The number after `name` in a `STATS t` line (`... alive 1 polls ...`), exactly.
fn figure(line: &str, name: &str) -> u64 {
    let mut words = line.split_whitespace();
    words
        .by_ref()
        .find(|w| *w == name)
        .unwrap_or_else(|| panic!("no `{name}` in {line}"));
    let value = words
        .next()
        .unwrap_or_else(|| panic!("no value after `{name}` in {line}"));
    value
        .parse()
        .unwrap_or_else(|e| panic!("`{name} {value}` in {line}: {e}"))
}

#[test]
fn oper_then_stats() {
    for_each_build(|b| {
        let dir = TempDir::new("oper");
        let config = config_with_operator(&dir, "opensesame", 4096, 1);
        let node = Node::start(b, &["--config", &config]);
        let mut alice = node.register("alice");
        alice.join("#a");

        alice.ask_exactly("STATS t", &["481"]);
        alice.ask_exactly("OPER nobody opensesame", &["491"]);
        alice.ask_exactly("OPER admin wrong", &["464"]);
        alice.send("OPER admin opensesame");
        alice.expect_next_numeric("381");
        let mode = alice.expect_next_command("MODE");
        assert_eq!(mode.last(), "+o", "{mode}");

        let tasks = alice.stats("t");
        for kind in ["task broker:", "task conn:", "task accept:"] {
            assert!(
                tasks.iter().any(|t| t.starts_with(kind)),
                "no `{kind}` line in STATS t: {tasks:?}"
            );
        }
        let conn = tasks.iter().find(|t| t.starts_with("task conn:")).unwrap();
        assert_eq!(figure(conn, "alive"), 1, "one connection: {conn}");
        let mut carol = node.register("carol");
        let tasks = alice.stats("t");
        let conn = tasks.iter().find(|t| t.starts_with("task conn:")).unwrap();
        assert_eq!(figure(conn, "alive"), 2, "two connections: {conn}");
        assert!(figure(conn, "spawned") >= 2, "{conn}");
        carol.send("QUIT");
        carol.expect_closed();

        let lines = alice.stats("e");
        assert!(lines.iter().any(|l| l.starts_with("runtime:")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("broker:")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("OS threads")), "{lines:?}");

        let mut bob = node.register("bob");
        bob.send("WHOIS alice");
        bob.expect_numeric("313");
        bob.drain();
        bob.ask_exactly("STATS t", &["481"]);
    });
}

/// The check takes a noticeable time (a deliberately heavy hash) and runs on the blocking pool.
/// The asking client's later commands wait: its PING sent right after OPER is answered after
/// the OPER result, so replies keep the order of the commands (clients and bots use PING as a
/// barrier). Bob's PINGs are answered meanwhile; that they are answered *while* the check runs
/// (not merely after) is asserted without timing in tests/broker_commands.rs
/// (`oper_check_pending_does_not_hold_back_other_clients`), where the harness holds the check.
#[test]
fn slow_oper_check_keeps_reply_order_and_serves_others() {
    for_each_build(|b| {
        let dir = TempDir::new("oper-slow");
        // About 0.3-1 s of hashing: 8 MiB, 40 passes.
        let config = config_with_operator(&dir, "pw", 8192, 40);
        let node = Node::start(b, &["--config", &config, "--threads", "1"]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");

        alice.send("OPER admin pw");
        alice.send("PING :right-after-oper");
        for i in 0..5 {
            bob.send(&format!("PING :bob-{i}"));
            bob.expect(|m| m.is("PONG") && m.last() == format!("bob-{i}"));
        }
        let first = alice.expect_within(Duration::from_secs(30), |m| {
            m.is("PONG") || m.is("381") || m.is("464")
        });
        assert!(
            first.is("381"),
            "alice's PING was answered before her OPER: got {first} first"
        );
        alice.expect_next_command("MODE");
        let pong = alice.expect_next_command("PONG");
        assert_eq!(pong.last(), "right-after-oper");
    });
}

/// `--blocking-threads` as each build wires it: the smol build through BLOCKING_MAX_THREADS (read
/// by the `blocking` crate), the Tokio build through `Builder::max_blocking_threads`. STATS e
/// shows the pool's cap as the runtime was given it; without the flag, each crate's default. (That
/// the same value reaches Tokio's Builder is counted in threads by tests/contrasts.rs,
/// `tokio_blocking_threads_reach_the_builder`.)
#[test]
fn blocking_threads_flag_reaches_the_runtime() {
    for_each_build(|b| {
        let dir = TempDir::new("oper-pool");
        let config = config_with_operator(&dir, "pw", 4096, 1);
        for (args, cap) in [
            (&["--blocking-threads", "3"][..], "3"),
            (&[][..], if b.name == "chatnode" { "500" } else { "512" }),
        ] {
            let mut all = vec!["--config", config.as_str()];
            all.extend_from_slice(args);
            let node = Node::start(b, &all);
            let mut alice = node.register("alice");
            alice.send("OPER admin pw");
            alice.expect_numeric("381");
            alice.expect_next_command("MODE");
            let lines = alice.stats("e");
            let runtime = lines.iter().find(|l| l.starts_with("runtime:")).unwrap();
            assert!(
                runtime.contains(&format!("blocking pool of at most {cap} threads")),
                "{args:?}: {runtime}"
            );
            if b.name == "chatnode" {
                // The reactor's counters are read at each query, not once at start: the
                // STATS line just read was an event of its own.
                let later = alice.stats("e");
                let again = later.iter().find(|l| l.starts_with("runtime:")).unwrap();
                assert_ne!(runtime, again, "STATS e's counters did not move");
            }
        }
    });
}
