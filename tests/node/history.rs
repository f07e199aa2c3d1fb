//! History: kept across restarts (clean and `kill -9`), read back with CHATHISTORY.
//!
//! The database is read back directly with rusqlite where the test is about what reached the
//! disk, and with CHATHISTORY where it is about what a client sees. Only in builds with the
//! `history` feature; `ircv3.rs` checks that a node without history does not offer it.

#![cfg(feature = "history")]

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

/// The PRIVMSG texts stored in the database at `dir`, oldest first.
fn stored_texts(dir: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.join("history.sqlite3")).expect("open the db");
    let mut stmt = conn
        .prepare("SELECT line FROM history WHERE kind = 0 ORDER BY time_ms, id")
        .unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|l| l.unwrap().rsplit(" :").next().unwrap().to_string())
        .collect()
}

/// Sends `CHATHISTORY <args>` and returns the batch: its opening line, and its lines.
fn chathistory(c: &mut Client, args: &str) -> (Msg, Vec<Msg>) {
    c.send(&format!("CHATHISTORY {args}"));
    let open = c.expect(|m| m.is("BATCH") || m.is("FAIL"));
    assert!(open.is("BATCH"), "{open}");
    let reference = open.param(0).trim_start_matches('+').to_string();
    let mut lines = Vec::new();
    loop {
        let m = c.next_msg();
        if m.is("BATCH") && m.param(0) == format!("-{reference}") {
            return (open, lines);
        }
        assert!(
            m.tags
                .as_deref()
                .is_some_and(|t| t.contains(&format!("batch={reference}"))),
            "a line in the batch without its tag: {m}"
        );
        lines.push(m);
    }
}

/// The caps a history client asks for.
const HISTORY_CAPS: &str = "batch draft/chathistory message-tags server-time";

/// `nick`, registered with `caps`.
fn client_with(node: &Node, nick: &str, caps: &str) -> Client {
    let mut c = node.connect(nick);
    c.send("CAP LS 302");
    c.send(&format!("CAP REQ :{caps}"));
    c.expect(|m| m.is("CAP") && m.param(1) == "ACK");
    c.send("CAP END");
    c.register_as(nick);
    c
}

/// `nick`, registered with the caps a history client asks for.
fn history_client(node: &Node, nick: &str) -> Client {
    client_with(node, nick, HISTORY_CAPS)
}

fn tag<'a>(m: &'a Msg, key: &str) -> Option<&'a str> {
    m.tags.as_deref()?.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k == key).then_some(v)
    })
}

#[test]
fn restart_keeps_history_and_chathistory_reads_it() {
    for_each_build(|build| {
        let dir = TempDir::new("history-restart");
        let data = dir.path.to_str().unwrap();
        {
            let mut node = Node::start(build, &["--data-dir", data]);
            let mut alice = node.register("alice");
            let mut bob = node.register("bob");
            alice.join("#h");
            bob.join("#h");
            for i in 0..5 {
                alice.send(&format!("PRIVMSG #h :line {i}"));
            }
            bob.expect(|m| m.is("PRIVMSG") && m.last() == "line 4");
            node.sigterm();
            assert!(node.wait_exit(DEADLINE * 2).success());
        }
        let node = Node::start(build, &["--data-dir", data]);
        let mut carol = history_client(&node, "carol");
        carol.join("#h");
        let (open, lines) = chathistory(&mut carol, "LATEST #h * 10");
        assert_eq!(open.param(1), "chathistory", "{open}");
        assert_eq!(open.param(2), "#h", "{open}");
        let texts: Vec<&str> = lines.iter().map(|m| m.last()).collect();
        assert_eq!(texts, ["line 0", "line 1", "line 2", "line 3", "line 4"]);
        for m in &lines {
            assert!(m.is_from("PRIVMSG", "alice"), "{m}");
            assert!(tag(m, "msgid").is_some_and(|v| !v.is_empty()), "{m}");
            assert!(tag(m, "time").is_some_and(|t| t.ends_with('Z')), "{m}");
        }
        // Paging back from a msgid, as clients scroll.
        let third = tag(&lines[2], "msgid").unwrap().to_string();
        let (_, before) = chathistory(&mut carol, &format!("BEFORE #h msgid={third} 10"));
        let texts: Vec<&str> = before.iter().map(|m| m.last()).collect();
        assert_eq!(texts, ["line 0", "line 1"]);
        let (_, after) = chathistory(&mut carol, &format!("AFTER #h msgid={third} 1"));
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].last(), "line 3");
    });
}

#[test]
fn chathistory_limits_bad_arguments_and_order() {
    for_each_build(|build| {
        let node = Node::start(build, &["--history", "on", "--history-per-request", "3"]);
        let mut alice = node.connect("alice");
        let burst = alice.register_as("alice");
        assert!(
            burst
                .iter()
                .any(|m| m.is_numeric() && m.params.iter().any(|p| p == "CHATHISTORY=3")),
            "ISUPPORT announces the limit"
        );
        let mut bob = history_client(&node, "bob");
        alice.join("#h");
        bob.join("#h");
        for i in 0..6 {
            alice.send(&format!("PRIVMSG #h :m{i}"));
        }
        bob.expect(|m| m.is("PRIVMSG") && m.last() == "m5");
        // Asked for 100, limited to 3: the newest three. And a command sent right after the
        // CHATHISTORY is answered after the whole batch.
        bob.send("CHATHISTORY LATEST #h * 100");
        bob.send("PING :after");
        let open = bob.expect(|m| m.is("BATCH"));
        let mut texts = Vec::new();
        loop {
            let m = bob.next_msg();
            assert!(!m.is("PONG"), "PONG inside the batch: {m}");
            if m.is("BATCH") {
                break;
            }
            texts.push(m.last().to_string());
        }
        assert!(open.param(0).starts_with('+'));
        assert_eq!(texts, ["m3", "m4", "m5"]);
        bob.expect(|m| m.is("PONG") && m.last() == "after");

        let fail = |c: &mut Client, line: &str, code: &str| {
            c.send(line);
            let m = c.expect(|m| m.is("FAIL"));
            assert_eq!(m.param(0), "CHATHISTORY", "{m}");
            assert_eq!(m.param(1), code, "{line} -> {m}");
        };
        fail(&mut bob, "CHATHISTORY", "NEED_MORE_PARAMS");
        fail(&mut bob, "CHATHISTORY LATEST #h", "NEED_MORE_PARAMS");
        fail(&mut bob, "CHATHISTORY BETWEEN #h * 10", "NEED_MORE_PARAMS");
        fail(&mut bob, "CHATHISTORY SIDEWAYS #h * 10", "UNKNOWN_COMMAND");
        fail(&mut bob, "CHATHISTORY LATEST #h * ten", "INVALID_PARAMS");
        fail(&mut bob, "CHATHISTORY LATEST #h * 0", "INVALID_PARAMS");
        fail(
            &mut bob,
            "CHATHISTORY BEFORE #h yesterday 10",
            "INVALID_PARAMS",
        );
        fail(
            &mut bob,
            "CHATHISTORY BEFORE #h timestamp=2024-13-01T00:00:00Z 10",
            "INVALID_PARAMS",
        );
        fail(&mut bob, "CHATHISTORY TARGETS * * 10", "INVALID_PARAMS");
        fail(&mut bob, "CHATHISTORY LATEST b@d * 10", "INVALID_TARGET");
        // A channel one is not in: an empty batch, as if it had no history.
        let carol_sees = {
            let mut carol = history_client(&node, "carol");
            chathistory(&mut carol, "LATEST #h * 10").1
        };
        assert!(carol_sees.is_empty(), "{carol_sees:?}");
        // AROUND, BETWEEN and TARGETS.
        let (_, all) = chathistory(&mut bob, "LATEST #h * 3");
        let mid = tag(&all[1], "msgid").unwrap().to_string();
        let (_, around) = chathistory(&mut bob, &format!("AROUND #h msgid={mid} 3"));
        let texts: Vec<&str> = around.iter().map(|m| m.last()).collect();
        assert_eq!(texts, ["m3", "m4", "m5"]);
        let first = tag(&all[0], "msgid").unwrap().to_string();
        let last = tag(&all[2], "msgid").unwrap().to_string();
        let (_, between) = chathistory(
            &mut bob,
            &format!("BETWEEN #h msgid={first} msgid={last} 3"),
        );
        assert_eq!(between.len(), 1);
        assert_eq!(between[0].last(), "m4");
        let (open, targets) = chathistory(
            &mut bob,
            "TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10",
        );
        assert_eq!(open.param(1), "draft/chathistory-targets");
        assert_eq!(targets.len(), 1, "{targets:?}");
        assert_eq!(
            (targets[0].param(0), targets[0].param(1)),
            ("TARGETS", "#h")
        );
    });
}

#[test]
fn private_messages_are_kept_for_both_sides() {
    for_each_build(|build| {
        let node = Node::start(build, &["--history", "on"]);
        let mut alice = history_client(&node, "alice");
        let mut bob = history_client(&node, "bob");
        alice.send("PRIVMSG bob :hi bob");
        bob.expect(|m| m.is("PRIVMSG") && m.last() == "hi bob");
        bob.send("PRIVMSG alice :hi alice");
        alice.expect(|m| m.is("PRIVMSG") && m.last() == "hi alice");
        for (c, other) in [(&mut alice, "bob"), (&mut bob, "alice")] {
            let (open, lines) = chathistory(c, &format!("LATEST {other} * 10"));
            assert_eq!(open.param(2), other);
            let texts: Vec<&str> = lines.iter().map(|m| m.last()).collect();
            assert_eq!(texts, ["hi bob", "hi alice"]);
        }
    });
}

#[test]
fn sigterm_under_load_stores_every_relayed_message() {
    for_each_build(|build| {
        let dir = TempDir::new("history-sigterm");
        let data = dir.path.to_str().unwrap();
        // A commit interval far longer than the test: only the shutdown flush can store them.
        let mut node = Node::start(
            build,
            &[
                "--data-dir",
                data,
                "--history-interval",
                "10m",
                "--history-batch",
                "100000",
            ],
        );
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        alice.join("#load");
        bob.join("#load");
        let n = 2000;
        for i in 0..n {
            alice.send(&format!("PRIVMSG #load :msg {i}"));
        }
        let last = format!("msg {}", n - 1);
        bob.expect(|m| m.is("PRIVMSG") && m.last() == last);
        node.sigterm();
        assert!(node.wait_exit(DEADLINE * 2).success());
        let stored = stored_texts(&dir.path);
        let expected: Vec<String> = (0..n).map(|i| format!("msg {i}")).collect();
        assert_eq!(stored.len(), n, "every relayed message is stored");
        assert_eq!(stored, expected, "in order");
    });
}

#[test]
fn kill9_loses_at_most_the_commit_interval() {
    for_each_build(|build| {
        let dir = TempDir::new("history-kill9");
        let data = dir.path.to_str().unwrap();
        let interval = Duration::from_millis(200);
        let mut node = Node::start(build, &["--data-dir", data, "--history-interval", "200ms"]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        alice.join("#load");
        bob.join("#load");
        // Alice sends steadily from her own thread; bob notes when each message reached him.
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let stop = stop.clone();
            let mut writer = alice.writer_clone();
            thread::spawn(move || {
                use std::io::Write;
                for i in 0..20_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if writer
                        .write_all(format!("PRIVMSG #load :msg {i}\r\n").as_bytes())
                        .is_err()
                    {
                        break;
                    }
                    // Pacing the load (about 1,000 messages a second), not synchronisation.
                    thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let mut received: Vec<(String, Instant)> = Vec::new();
        while received.len() < 1500 {
            let m = bob.expect(|m| m.is("PRIVMSG"));
            received.push((m.last().to_string(), Instant::now()));
        }
        let killed_at = Instant::now();
        node.kill9();
        stop.store(true, Ordering::Relaxed);
        let _ = node.wait_exit(DEADLINE * 2);
        sender.join().unwrap();
        let stored: HashSet<String> = stored_texts(&dir.path).into_iter().collect();
        // Anything relayed more than the interval (plus a commit's time, generously: the
        // machine is shared) before the kill must be on disk.
        let slack = Duration::from_secs(2);
        let must: Vec<&String> = received
            .iter()
            .filter(|(_, at)| *at + interval + slack < killed_at)
            .map(|(t, _)| t)
            .collect();
        let missing: Vec<&&String> = must.iter().filter(|t| !stored.contains(**t)).collect();
        assert!(missing.is_empty(), "lost after kill -9: {missing:?}");
        assert!(
            stored.len() + 1000 >= received.len(),
            "stored {} of {} relayed",
            stored.len(),
            received.len()
        );
    });
}

#[test]
fn a_damaged_database_stops_the_node_with_a_clear_error() {
    for_each_build(|build| {
        let dir = TempDir::new("history-damaged");
        std::fs::write(dir.join("history.sqlite3"), vec![0x42; 4096]).unwrap();
        let out = std::process::Command::new(build.path)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                dir.path.to_str().unwrap(),
            ])
            .env("RUST_LOG", "info")
            .output()
            .expect("run the node");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("history.sqlite3"), "{stderr}");
        assert!(stderr.contains("move the file aside"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(
            std::fs::read(dir.join("history.sqlite3")).unwrap(),
            vec![0x42; 4096]
        );
    });
}

#[test]
fn the_last_lines_on_join_when_asked_for() {
    for_each_build(|build| {
        let node = Node::start(build, &["--history", "on", "--history-on-join", "2"]);
        let mut alice = node.register("alice");
        alice.join("#j");
        for i in 0..3 {
            alice.send(&format!("PRIVMSG #j :said {i}"));
        }
        alice.send("TOPIC #j :a topic"); // an event: not replayed to a client without the cap
        alice.sync();
        let mut bob = node.register("bob");
        bob.send("JOIN #j");
        bob.send("PING :after-join");
        bob.expect_numeric("366");
        let replayed: Vec<String> = (0..2)
            .map(|_| {
                bob.expect(|m| m.is("PRIVMSG") || m.is("PONG"))
                    .last()
                    .to_string()
            })
            .collect();
        assert_eq!(
            replayed,
            ["said 1", "said 2"],
            "the last two, before later replies"
        );
        bob.expect(|m| m.is("PONG") && m.last() == "after-join");
    });
}

#[test]
fn events_only_with_event_playback() {
    for_each_build(|build| {
        let node = Node::start(build, &["--history", "on"]);
        let mut alice = node.register("alice");
        alice.join("#e");
        alice.send("TOPIC #e :the topic");
        alice.send("PRIVMSG #e :a message");
        alice.sync();
        for (caps, expected) in [
            ("batch draft/chathistory", vec!["PRIVMSG"]),
            // alice's JOIN, her TOPIC and message, the first reader's JOIN and QUIT, this
            // reader's JOIN.
            (
                "batch draft/chathistory draft/event-playback",
                vec!["JOIN", "TOPIC", "PRIVMSG", "JOIN", "QUIT", "JOIN"],
            ),
        ] {
            let mut c = client_with(&node, "reader", caps);
            c.join("#e");
            let (_, lines) = chathistory(&mut c, "BEFORE #e timestamp=2100-01-01T00:00:00.000Z 10");
            let commands: Vec<&str> = lines.iter().map(|m| m.command.as_str()).collect();
            assert_eq!(commands, expected, "{caps}");
            c.send("QUIT");
            c.expect_closed();
        }
    });
}

/// The lines `c` gets after sending `line` and a PING, up to the PONG.
fn replies_to(c: &mut Client, line: &str) -> Vec<Msg> {
    c.send(line);
    c.send("PING :done");
    let mut got = Vec::new();
    loop {
        let m = c.next_msg();
        if m.is("PONG") && m.last() == "done" {
            return got;
        }
        got.push(m);
    }
}

#[test]
fn star_target_client_tags_labels_and_tags_per_caps() {
    for_each_build(|build| {
        let node = Node::start(build, &["--history", "on"]);
        let caps = "batch draft/chathistory labeled-response message-tags server-time";
        let mut alice = client_with(&node, "alice", caps);
        let mut bob = client_with(&node, "bob", "message-tags");
        let mut carol = node.register("carol");
        alice.send("@+draft/react=x PRIVMSG bob :psst bob");
        let to_bob = bob.expect(|m| m.is("PRIVMSG") && m.last() == "psst bob");
        alice.send("PRIVMSG carol :hey carol");
        carol.expect(|m| m.is("PRIVMSG") && m.last() == "hey carol");
        bob.send("PRIVMSG carol :not alice's");
        carol.expect(|m| m.is("PRIVMSG") && m.last() == "not alice's");

        // `*`: both of alice's private conversations and nobody else's, in one batch that
        // carries her label; the msgid bob saw, and the client-only tag she sent.
        let got = replies_to(&mut alice, "@label=all CHATHISTORY LATEST * * 10");
        assert!(
            got.len() == 4 && got[0].is("BATCH") && got[3].is("BATCH"),
            "{got:?}"
        );
        assert_eq!(tag(&got[0], "label"), Some("all"), "{}", got[0]);
        assert_eq!((got[0].param(1), got[0].param(2)), ("chathistory", "*"));
        assert_eq!(got[1].last(), "psst bob");
        assert_eq!(got[2].last(), "hey carol");
        assert_eq!(tag(&got[1], "msgid"), tag(&to_bob, "msgid"));
        assert_eq!(tag(&got[1], "+draft/react"), Some("x"), "{}", got[1]);
        assert_eq!(tag(&got[2], "+draft/react"), None, "{}", got[2]);
        assert!(tag(&got[2], "time").is_some());

        // bob has message-tags but not batch: tagged lines, no BATCH.
        let got = replies_to(&mut bob, "CHATHISTORY LATEST alice * 10");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].last(), "psst bob");
        assert_eq!(tag(&got[0], "batch"), None, "{}", got[0]);
        assert_eq!(tag(&got[0], "msgid"), tag(&to_bob, "msgid"));
        assert_eq!(tag(&got[0], "+draft/react"), Some("x"));
        assert!(tag(&got[0], "time").is_some());

        // carol negotiated nothing: the lines alone, no tags at all.
        let got = replies_to(&mut carol, "CHATHISTORY LATEST * * 10");
        let texts: Vec<&str> = got.iter().map(|m| m.last()).collect();
        assert_eq!(texts, ["hey carol", "not alice's"], "{got:?}");
        assert!(got.iter().all(|m| m.tags.is_none()), "{got:?}");
    });
}
