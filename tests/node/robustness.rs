//! Malformed and awkward input: the connection must stay usable afterwards.

use crate::common::*;

/// alice and bob registered; bob is the receiver of test messages.
fn pair(node: &Node) -> (Client, Client) {
    (node.register("alice"), node.register("bob"))
}

#[test]
fn overlong_line_gets_417_and_next_line_is_handled() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob) = pair(&node);
        let long = format!("PRIVMSG nobody_here :{}", "x".repeat(600 - 21));
        assert_eq!(long.len(), 600);
        alice.send(&long);
        alice.send("PING :after-long");
        let m = alice.expect(|m| m.is_numeric() || m.is("PONG"));
        assert_eq!(m.command, "417", "600-byte line -> 417: {m}");
        let m = alice.expect(|m| m.is_numeric() || m.is("PONG"));
        assert!(
            m.is("PONG") && m.last() == "after-long",
            "next line handled: {m}"
        );
        // Nothing of the tail was taken as a command.
        alice.assert_no_line_matching(|m| m.is_numeric());

        // Same with a long line that would be delivered.
        let long = format!("PRIVMSG bob :{}", "y".repeat(700));
        alice.send(&long);
        alice.send("PRIVMSG bob :short one");
        alice.expect_numeric("417");
        let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
        assert_eq!(m.last(), "short one", "the long line is not delivered: {m}");
        alice.assert_no_line_matching(|m| m.command == "421");
        bob.assert_alive();
    });
}

/// README: "lines with NUL bytes are dropped": not delivered with the NUL removed, not
/// answered, and a `NICK` carrying one leaves the nick alone.
#[test]
fn nul_byte_lines_are_dropped() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob) = pair(&node);
        alice.send_raw(b"PRIVMSG bob :a\0b\r\n");
        alice.send_raw(b"\0\r\n");
        alice.send_raw(b"NICK al\0ice\r\n");
        alice.send_raw(b"NICK bo\0b\r\n");
        // Dropped, not answered: no error numeric, no NICK change.
        alice.assert_no_line_matching(|_| true);
        // What alice sent after the NUL lines arrives; the NUL line never does.
        alice.send("PRIVMSG bob :after");
        let m = bob.expect_next_command("PRIVMSG");
        assert_eq!(m.last(), "after", "the NUL line was delivered: {m}");
        assert_eq!(m.nick(), Some("alice"), "alice's nick is unchanged: {m}");
        bob.assert_no_line_matching(|_| true);
        bob.send("WHOIS alice");
        let m = bob.expect_next_numeric("311");
        assert_eq!(m.param(1), "alice", "{m}");
        let _c = node.register("carol");
    });
}

#[test]
fn invalid_utf8_commands_do_not_crash() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob) = pair(&node);
        alice.send_raw(b"\xff\xfe\xfd\r\n");
        alice.send_raw(b"NICK \xff\xfe\r\n");
        alice.send_raw(b"JOIN #\xff\xfe\r\n");
        alice.send_raw(b"PRIVMSG b\xffob :x\r\n");
        alice.send_raw(b"\xc3\r\n");
        alice.assert_alive();
        bob.assert_alive();
        let _c = node.register("carol");
    });
}

#[test]
fn empty_lines_are_ignored() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, _bob) = pair(&node);
        alice.drain();
        alice.send_raw(b"\r\n\r\n\n\r\n\n\n\r\n");
        alice.assert_no_line_matching(|_| true);
        // Also before registration.
        let mut early = node.connect("early");
        early.drain();
        early.send_raw(b"\r\n\n\r\n");
        early.assert_no_line_matching(|_| true);
        early.register_as("early");
    });
}

#[test]
fn extra_spaces_are_tolerated() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob) = pair(&node);
        alice.send("PRIVMSG   bob   :hi  there");
        let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
        assert_eq!(m.last(), "hi  there", "{m}");
        alice.send("  PRIVMSG bob :leading spaces");
        let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
        assert_eq!(m.last(), "leading spaces", "{m}");
        alice.send("PING tok   ");
        let m = alice.expect_command("PONG");
        assert_eq!(
            m.last(),
            "tok",
            "trailing spaces dropped from middle params: {m}"
        );
        alice.send("JOIN   #spaced   ");
        alice.expect(|m| m.command == "366" && m.param(1) == "#spaced");
        alice.assert_no_line_matching(|m| m.is_error_numeric());
    });
}

#[test]
fn bare_lf_line_endings() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = node.connect("lf");
        c.send_raw(b"NICK lf\nUSER lf 0 * :Bare LF\n");
        c.finish_registration("lf");
        c.send_raw(b"PING :lf-only\n");
        let m = c.expect_command("PONG");
        assert_eq!(m.last(), "lf-only");
        c.send_raw(b"JOIN #lf\n");
        c.expect_numeric("366");
    });
}

#[test]
fn line_split_into_tiny_writes() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob) = pair(&node);
        alice.send_in_tiny_writes(b"PRIVMSG bob :split into many tiny writes\r\n");
        let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
        assert_eq!(m.last(), "split into many tiny writes");
        // Split in the middle of a multi-byte UTF-8 sequence and of the CRLF.
        alice.send_in_tiny_writes("PRIVMSG bob :ünïcödé ✓\r\n".as_bytes());
        let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
        assert_eq!(m.last(), "ünïcödé ✓");
    });
}

#[test]
fn hundred_lines_in_one_write() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob) = pair(&node);
        let mut batch = Vec::new();
        for i in 0..100 {
            batch.extend_from_slice(format!("PRIVMSG bob :line {i}\r\n").as_bytes());
        }
        alice.send_raw(&batch);
        for i in 0..100 {
            let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
            assert_eq!(m.last(), format!("line {i}"), "in order, none lost");
        }
        alice.sync();
        bob.assert_no_line_matching(|m| m.is("PRIVMSG"));
        alice.assert_no_line_matching(|m| m.is_numeric());
    });
}
