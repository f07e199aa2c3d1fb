//! Registration timeout and keep-alive PINGs (short durations).

use crate::common::*;

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
            let mut silent = node.connect("silent");
            let mut partial = node.connect("partial");
            partial.send("NICK partial");
            for c in [&mut silent, &mut partial] {
                let lines = c.expect_closed();
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
            let mut alice = node.register("alice");
            for round in 0..3 {
                let ping = alice.expect(|m| m.is("PING") || m.is("ERROR"));
                assert!(
                    ping.is("PING"),
                    "--ping-interval {dur}: PING #{round} expected: {ping}"
                );
                let tok = ping.last().to_string();
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
        alice.join("#a");
        bob.expect(|m| m.is_from("JOIN", "alice"));

        let lines = alice.expect_closed();
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
