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

#[test]
fn oper_then_stats() {
    for_each_build(|b| {
        let dir = TempDir::new("oper");
        let config = config_with_operator(&dir, "opensesame", 4096, 1);
        let node = Node::start(b, &["--config", &config]);
        let mut alice = node.register("alice");
        alice.join("#a");

        alice.send("STATS t");
        alice.expect_numeric("481");
        alice.send("OPER nobody opensesame");
        alice.expect_numeric("491");
        alice.send("OPER admin wrong");
        alice.expect_numeric("464");
        alice.send("OPER admin opensesame");
        alice.expect_numeric("381");
        let mode = alice.expect_command("MODE");
        assert_eq!(mode.last(), "+o", "{mode}");

        alice.send("STATS t");
        let mut tasks = Vec::new();
        loop {
            let m = alice.expect(|m| m.is("249") || m.is("219"));
            if m.is("219") {
                assert_eq!(m.param(1), "t", "{m}");
                break;
            }
            tasks.push(m.last().to_string());
        }
        for kind in ["task broker:", "task conn:", "task accept:"] {
            assert!(
                tasks.iter().any(|t| t.starts_with(kind)),
                "no `{kind}` line in STATS t: {tasks:?}"
            );
        }
        let conn = tasks.iter().find(|t| t.starts_with("task conn:")).unwrap();
        assert!(conn.contains("alive 1"), "{conn}");

        alice.send("STATS e");
        let mut lines = Vec::new();
        loop {
            let m = alice.expect(|m| m.is("249") || m.is("219"));
            if m.is("219") {
                break;
            }
            lines.push(m.last().to_string());
        }
        assert!(lines.iter().any(|l| l.starts_with("runtime:")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("broker:")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("OS threads")), "{lines:?}");

        let mut bob = node.register("bob");
        bob.send("WHOIS alice");
        bob.expect_numeric("313");
        bob.send("STATS t");
        bob.expect_numeric("481");
    });
}

/// The check takes a noticeable time (a deliberately heavy hash) and runs on the blocking pool.
/// Meanwhile the one-thread node keeps answering other clients, while the asking client's later
/// commands wait: its PING sent right after OPER is answered after the OPER result, so replies
/// keep the order of the commands (clients and bots use PING as a barrier).
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
        alice.expect(|m| m.is("PONG") && m.last() == "right-after-oper");
    });
}
