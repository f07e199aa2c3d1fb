//! QUIT, disconnects, client limits, listeners and graceful shutdown.

use crate::common::*;
use std::time::{Duration, Instant};

fn is_quit(m: &Msg, nick: &str) -> bool {
    m.is_from("QUIT", nick)
}

#[test]
fn quit_gets_error_and_close_and_peers_see_reason() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        let mut carol = node.register("carol");
        alice.join("#a");
        bob.join("#a");
        alice.sync();
        alice.send("QUIT :bye now");
        let lines = alice.expect_closed();
        assert!(
            lines.iter().any(|m| m.is("ERROR")),
            "the quitter gets ERROR before close: {lines:?}"
        );
        let m = bob.expect(|m| is_quit(m, "alice"));
        assert!(m.last().contains("bye now"), "QUIT reason: {m}");
        let src = m.source.as_deref().unwrap_or("");
        assert!(src.starts_with("alice!") && src.contains('@'), "{m}");
        bob.assert_no_line_matching(|m| m.is("QUIT"));
        carol.assert_no_line_matching(|m| m.is("QUIT"));
        // The nick is free again.
        node.register("alice");
    });
}

#[test]
fn abrupt_disconnect_is_seen_as_quit_and_frees_the_nick() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        alice.join("#a");
        bob.join("#a");
        alice.sync();
        alice.disconnect_abruptly();
        bob.expect(|m| is_quit(m, "alice"));
        let _again = node.register("alice");
        bob.assert_alive();
    });
}

fn mentions_limit(text: &str) -> bool {
    let t = text.to_lowercase();
    ["too many", "full", "limit", "max"]
        .iter()
        .any(|w| t.contains(w))
}

#[test]
fn max_clients_rejects_then_accepts_after_a_leave() {
    for_each_build(|b| {
        let node = Node::start(b, &["--max-clients", "2"]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        alice.join("#a");
        bob.join("#a");

        let mut third = node.connect("third");
        let lines = third.expect_closed();
        let err = lines
            .iter()
            .find(|m| m.is("ERROR"))
            .unwrap_or_else(|| panic!("third connection gets ERROR: {lines:?}"));
        assert!(
            mentions_limit(err.last()),
            "ERROR mentions the limit: {err}"
        );
        alice.assert_alive();
        bob.assert_alive();

        alice.send("QUIT :making room");
        alice.expect_closed();
        bob.expect(|m| is_quit(m, "alice"));
        drop(alice);

        // The slot is freed once the server has dropped alice. The server may
        // release it a moment after the QUIT is relayed, so a rejected attempt
        // (ERROR + close) is retried until the deadline: this waits for the
        // event "slot is free", it does not sleep.
        let deadline = Instant::now() + DEADLINE;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut c = node.connect("newcomer");
            c.send("NICK newcomer");
            c.send("USER newcomer 0 * :New Comer");
            let (m, _) = c.expect_one_of(&["001", "ERROR"]);
            if m.command == "001" {
                c.expect(|m| m.command == "376" || m.command == "422");
                c.assert_alive();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a new connection is still refused {DEADLINE:?} after a client left ({attempts} attempts): {m}"
            );
        }
        bob.assert_alive();
    });
}

#[test]
fn two_listen_addresses_both_accept() {
    for_each_build(|b| {
        let node = Node::start(b, &["--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"]);
        assert_eq!(node.addrs.len(), 2, "{:?}", node.addrs);
        assert_ne!(node.addrs[0], node.addrs[1]);
        let mut alice = Client::connect_labeled(node.addrs[0], &format!("{}:alice", b.name));
        alice.register_as("alice");
        let mut bob = Client::connect_labeled(node.addrs[1], &format!("{}:bob", b.name));
        bob.register_as("bob");
        alice.send("PRIVMSG bob :across listeners");
        let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
        assert_eq!(m.last(), "across listeners");
    });
}

#[test]
fn ipv6_loopback_listener() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        report_skip(
            "ipv6_loopback_listener",
            "IPv6 loopback [::1] is not available",
        );
        return;
    }
    for_each_build(|b| {
        let node = Node::start(b, &["--listen", "[::1]:0"]);
        assert!(node.addr().is_ipv6(), "{:?}", node.addrs);
        let mut c = Client::connect_labeled(node.addr(), &format!("{}:v6", b.name));
        c.register_as("sixer");
        c.join("#v6");
        c.assert_alive();
    });
}

/// `grace_arg` is the --shutdown-grace value, 2 seconds in either syntax.
fn graceful_shutdown(b: &Build, grace_arg: &str, extra: &[&str]) {
    let grace = 2.0;
    let mut args = vec!["--shutdown-grace", grace_arg];
    args.extend_from_slice(extra);
    let mut node = Node::start(b, &args);
    let mut alice = node.register("alice");
    let mut bob = node.register("bob");
    let mut carol = node.register("carol");
    let mut unregistered = node.connect("unregistered");
    alice.join("#a");
    bob.join("#a");
    carol.join("#c");
    unregistered.send("NICK halfway");
    unregistered.assert_alive();
    alice.sync();
    bob.sync();

    let start = Instant::now();
    node.sigterm();
    for c in [&mut alice, &mut bob, &mut carol] {
        let lines = c.expect_closed_within(Duration::from_secs(5));
        let err = lines
            .iter()
            .find(|m| m.is("ERROR"))
            .unwrap_or_else(|| panic!("[{}] ERROR before close on shutdown: {lines:?}", c.label));
        assert_eq!(err.last(), "Server shutting down", "[{}] {err}", c.label);
    }
    unregistered.expect_closed();
    let st = node.wait_exit(Duration::from_secs_f64(grace + 5.0));
    assert!(
        st.success(),
        "exit status 0 after SIGTERM, got {st}; logs: {:?}",
        node.logs()
    );
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs_f64(grace + 5.0),
        "exit took {took:?}"
    );
}

#[test]
fn sigterm_graceful_shutdown() {
    for_each_build(|b| graceful_shutdown(b, "2", &[]));
}

#[test]
fn sigterm_graceful_shutdown_threads_1() {
    for_each_build(|b| graceful_shutdown(b, "2s", &["--threads", "1"]));
}

/// `--shutdown-grace` exercised: a client that never reads, with a full queue, holds the node
/// for the grace period and no longer. A message sent just before SIGTERM still reaches its
/// peer before the `ERROR`.
#[test]
fn sigterm_waits_the_grace_for_a_stuck_client_then_exits() {
    for_each_build(|b| {
        let grace = Duration::from_secs(2);
        // The server's socket send buffer can grow to tcp_wmem's maximum (4 MiB here) and
        // absorb that much of stuck's backlog: send more than that, and a SendQ that holds it.
        let text = "s".repeat(380);
        let lines = (tcp_wmem_max() + (2 << 20)) / (text.len() + 30);
        let sendq = (4 * lines * (text.len() + 60)).to_string();
        let mut node = Node::start(b, &["--shutdown-grace", "2", "--sendq", &sendq]);
        // A 4 KiB receive buffer and no reading: its queue cannot drain.
        let mut stuck =
            Client::connect_with_small_rcvbuf(node.addr(), &format!("{}:stuck", b.name), 4096);
        stuck.register_as("stuck");
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        let mut batch = Vec::new();
        for i in 0..lines {
            batch.extend_from_slice(format!("PRIVMSG stuck :{i:06} {text}\r\n").as_bytes());
        }
        alice.send_raw(&batch);
        alice.send("PRIVMSG bob :last words");
        // The fence: the server has handled all of alice's lines (queued them for stuck). A
        // generous deadline: megabytes to relay on a loaded machine.
        alice.send("PING :all-queued");
        alice.expect_within(Duration::from_secs(60), |m| {
            m.is("PONG") && m.last() == "all-queued"
        });

        let start = Instant::now();
        node.sigterm();
        let m = bob.expect_next_command("PRIVMSG");
        assert_eq!(m.last(), "last words", "{m}");
        let after = bob.expect_closed();
        assert!(
            after.iter().any(|m| m.is("ERROR")),
            "ERROR after the last message: {after:?}"
        );
        alice.expect_closed();
        let st = node.wait_exit(grace + Duration::from_secs(10));
        let took = start.elapsed();
        assert!(st.success(), "exit status 0 after SIGTERM, got {st}");
        assert!(
            took >= grace,
            "the node exited after {took:?}, before its {grace:?} grace: the stuck client's \
             queue was not waited for"
        );
        assert!(
            took <= grace + Duration::from_secs(5),
            "the node exited only after {took:?}: the {grace:?} grace was not applied"
        );
        assert!(
            node.logs()
                .iter()
                .any(|l| l.contains("did not close within the grace period")),
            "the node says it cancelled the stuck connection: {:?}",
            node.logs()
        );
        // Proof the queue really was full: stuck never got all of it.
        let got = stuck
            .expect_closed_within(Duration::from_secs(10))
            .iter()
            .filter(|m| m.is("PRIVMSG"))
            .count();
        assert!(
            got < lines,
            "stuck got all {got} lines: nothing was held up"
        );
        eprintln!(
            "[{}] exit after {took:?}; stuck got {got} of {lines} lines",
            b.name
        );
    });
}
