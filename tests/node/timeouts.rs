//! Registration timeout and keep-alive PINGs (short durations), bounded from both sides.
//!
//! Lower bounds are exact: the server's timer starts after the test's clock does (the test
//! takes its start time before the event the server measures from), so a correct server can
//! never beat it. Upper bounds leave [`SLACK`] for a loaded 2-core machine; that is still less
//! than any plausible wrong reading of the flag (0.5 taken as 5 s, or the 60 s / 120 s defaults).

use crate::common::*;
use std::time::{Duration, Instant};

/// How late a timer may fire on a loaded machine.
const SLACK: Duration = Duration::from_secs(4);
/// The 0.5 s / 500 ms the tests configure.
const HALF_SECOND: Duration = Duration::from_millis(500);

#[track_caller]
fn assert_between(took: Duration, low: Duration, high: Duration, what: &str) {
    assert!(
        took >= low && took <= high,
        "{what}: took {took:?}, expected between {low:?} and {high:?}"
    );
}

fn says_timeout(text: &str) -> bool {
    let t = text.to_lowercase();
    t.contains("timeout") || t.contains("timed out")
}

#[test]
fn unregistered_connection_times_out() {
    for_each_build(|b| {
        for dur in ["0.5", "500ms"] {
            let node = Node::start(b, &["--register-timeout", dur]);
            // Registered before the others connect: it must outlive them.
            let mut alice = node.register("alice");
            let start = Instant::now();
            let mut silent = node.connect("silent");
            let mut partial = node.connect("partial");
            partial.send("NICK partial");
            for c in [&mut silent, &mut partial] {
                let lines = c.expect_closed();
                assert_between(
                    start.elapsed(),
                    HALF_SECOND,
                    HALF_SECOND + SLACK,
                    &format!("[{}] --register-timeout {dur}", c.label),
                );
                let err = lines.iter().find(|m| m.is("ERROR")).unwrap_or_else(|| {
                    panic!(
                        "[{}] --register-timeout {dur}: ERROR before close: {lines:?}",
                        c.label
                    )
                });
                assert!(says_timeout(err.last()), "[{}] {err}", c.label);
                assert!(!lines.iter().any(|m| m.command == "001"), "{lines:?}");
            }
            alice.assert_alive();
        }
    });
}

#[test]
fn answered_pings_keep_the_client() {
    for_each_build(|b| {
        for dur in ["0.5", "500ms"] {
            let node = Node::start(b, &["--ping-interval", dur]);
            let mut alice = node.connect("alice");
            // The server's silence timer starts at alice's last line, after this.
            let mut quiet_since = Instant::now();
            alice.register_as("alice");
            for round in 0..3 {
                let ping = alice.expect_within(HALF_SECOND + SLACK + SLACK, |m| {
                    m.is("PING") || m.is("ERROR")
                });
                assert_between(
                    quiet_since.elapsed(),
                    HALF_SECOND,
                    HALF_SECOND + SLACK,
                    &format!("--ping-interval {dur}: PING #{round} after silence"),
                );
                assert!(
                    ping.is("PING"),
                    "--ping-interval {dur}: PING #{round} expected: {ping}"
                );
                let tok = ping.last().to_string();
                quiet_since = Instant::now();
                alice.send(&format!("PONG :{tok}"));
            }
            alice.assert_alive();
            assert!(!alice.is_closed());
        }
    });
}

#[test]
fn unanswered_ping_times_out_and_peers_see_quit() {
    for_each_build(|b| {
        let node = Node::start(b, &["--ping-interval", "0.5"]);
        let mut bob = node.connect("bob");
        bob.enable_auto_pong();
        bob.register_as("bob");
        bob.join("#a");
        let mut alice = node.register("alice");
        // alice's last line is this JOIN, which the server reads after `quiet_since`: silent
        // from there, she gets a PING after one interval and the timeout after a second one.
        let quiet_since = Instant::now();
        alice.join("#a");
        bob.expect(|m| m.is_from("JOIN", "alice"));

        let lines = alice.expect_closed_within(2 * HALF_SECOND + SLACK + SLACK);
        assert_between(
            quiet_since.elapsed(),
            2 * HALF_SECOND,
            2 * HALF_SECOND + SLACK,
            "ping timeout after two silent intervals",
        );
        assert!(
            lines.iter().any(|m| m.is("PING")),
            "a PING came before the timeout: {lines:?}"
        );
        let err = lines
            .iter()
            .find(|m| m.is("ERROR"))
            .unwrap_or_else(|| panic!("ERROR before close: {lines:?}"));
        assert!(err.last().contains("Ping timeout"), "{err}");

        let quit = bob.expect(|m| m.is_from("QUIT", "alice"));
        assert!(quit.last().contains("Ping timeout"), "{quit}");
        // bob answers its PINGs (reader thread) and stays.
        bob.assert_alive();
        assert!(!bob.is_closed());
    });
}
