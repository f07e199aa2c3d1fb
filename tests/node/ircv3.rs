//! IRCv3 over the wire, on both builds: CAP 302 negotiation, message tags up to their limit,
//! echo-message, server-time, msgid, labeled-response with batch.

use crate::common::*;

/// The raw value of tag `key` of `m`.
fn tag<'a>(m: &'a Msg, key: &str) -> Option<&'a str> {
    m.tags.as_deref()?.split(';').find_map(|t| {
        let (k, v) = t.split_once('=').unwrap_or((t, ""));
        (k == key).then_some(v)
    })
}

/// Connects, negotiates `caps` with CAP LS 302 / REQ / END, registers `nick`.
fn connect_with_caps(node: &Node, nick: &str, caps: &str) -> Client {
    let mut c = node.connect(nick);
    c.send("CAP LS 302");
    let ls = c.expect_command("CAP");
    assert_eq!(ls.param(1), "LS", "{ls}");
    c.send(&format!("CAP REQ :{caps}"));
    let ack = c.expect_command("CAP");
    assert_eq!((ack.param(1), ack.last()), ("ACK", caps), "{ack}");
    c.send(&format!("NICK {nick}"));
    c.send(&format!("USER {nick} 0 * :Real {nick}"));
    c.send("CAP END");
    c.finish_registration(nick);
    c
}

#[test]
fn cap_302_negotiation_lists_acks_and_naks() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = node.connect("capper");
        c.send("CAP LS 302");
        let ls = c.expect_command("CAP");
        let offered: Vec<&str> = ls.last().split(' ').collect();
        for cap in [
            "cap-notify",
            "message-tags",
            "server-time",
            "echo-message",
            "multi-prefix",
            "away-notify",
            "extended-join",
            "userhost-in-names",
            "invite-notify",
            "setname",
            "batch",
            "labeled-response",
        ] {
            assert!(offered.contains(&cap), "{cap} not offered: {ls}");
        }
        c.send("CAP REQ :server-time no-such-cap");
        let nak = c.expect_command("CAP");
        assert_eq!(
            (nak.param(1), nak.last()),
            ("NAK", "server-time no-such-cap")
        );
        c.send("CAP REQ :server-time echo-message");
        let ack = c.expect_command("CAP");
        assert_eq!(
            (ack.param(1), ack.last()),
            ("ACK", "server-time echo-message")
        );
        c.send("CAP LIST");
        let list = c.expect_command("CAP");
        assert_eq!(list.last(), "echo-message server-time", "{list}");
        c.send("NICK capper");
        c.send("USER capper 0 * :Cap");
        c.assert_no_line_matching(|m| m.command == "001");
        c.send("CAP END");
        c.finish_registration("capper");
    });
}

#[test]
fn client_tags_relayed_up_to_their_limit_and_time_and_msgid_added() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = connect_with_caps(&node, "alice", "message-tags");
        let mut bob = connect_with_caps(&node, "bob", "message-tags");
        let mut carol = node.register("carol");
        // Tag data of exactly 4094 bytes: the client limit.
        let value = "v".repeat(4094 - "+big=".len());
        alice.send(&format!("@+big={value} PRIVMSG bob :big"));
        let m = bob.expect_next_command("PRIVMSG");
        assert_eq!(tag(&m, "+big"), Some(value.as_str()));
        assert!(tag(&m, "msgid").is_some_and(|id| !id.is_empty()), "{m}");
        assert!(tag(&m, "time").is_some_and(|t| t.ends_with('Z')), "{m}");
        alice.send(&format!("@+big={value}x PRIVMSG bob :too big"));
        alice.expect_next_numeric("417");
        bob.assert_no_line_matching(|m| m.is("PRIVMSG"));
        // In tiny writes, and TAGMSG only to message-tags clients.
        alice.join("#t");
        bob.join("#t");
        carol.join("#t");
        alice.drain();
        alice.send_in_tiny_writes(b"@+typing=active TAGMSG #t\r\n");
        let m = bob.expect_command("TAGMSG");
        assert_eq!(tag(&m, "+typing"), Some("active"), "{m}");
        carol.assert_no_line_matching(|m| m.is("TAGMSG"));
    });
}

#[test]
fn echo_message_and_server_time() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = connect_with_caps(&node, "alice", "echo-message message-tags");
        let mut bob = connect_with_caps(&node, "bob", "server-time");
        alice.send("PRIVMSG bob :hello");
        let echo = alice.expect_next_command("PRIVMSG");
        assert_eq!(echo.nick(), Some("alice"));
        assert_eq!((echo.param(0), echo.last()), ("bob", "hello"));
        assert!(tag(&echo, "msgid").is_some(), "{echo}");
        let got = bob.expect_next_command("PRIVMSG");
        let time = tag(&got, "time").expect("server-time tag");
        assert_eq!(time.len(), "2026-01-01T00:00:00.000Z".len(), "{got}");
        assert_eq!(
            tag(&got, "msgid"),
            None,
            "msgid only with message-tags: {got}"
        );
    });
}

#[test]
fn labeled_response_single_ack_and_batch() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = connect_with_caps(&node, "lab", "labeled-response batch");
        c.send("@label=one PRIVMSG nobody :x");
        let m = c.expect_next_numeric("401");
        assert_eq!(tag(&m, "label"), Some("one"));
        c.send("@label=two PONG :nothing");
        let m = c.expect_next_command("ACK");
        assert_eq!(tag(&m, "label"), Some("two"));
        c.send("@label=three WHOIS lab");
        let start = c.expect_next_command("BATCH");
        assert_eq!(tag(&start, "label"), Some("three"));
        assert_eq!(start.param(1), "labeled-response", "{start}");
        let reference = start.param(0).trim_start_matches('+').to_string();
        let mut inner = Vec::new();
        loop {
            let m = c.next_msg();
            if m.is("BATCH") {
                assert_eq!(m.param(0), format!("-{reference}"));
                break;
            }
            assert_eq!(tag(&m, "batch"), Some(reference.as_str()), "{m}");
            inner.push(m.command.clone());
        }
        assert_eq!(inner.first().map(String::as_str), Some("311"));
        assert_eq!(inner.last().map(String::as_str), Some("318"));
    });
}

#[test]
fn history_caps_are_not_offered_with_history_off() {
    for_each_build(|b| {
        let node = Node::start(b, &["--history", "off"]);
        let mut c = node.connect("nohist");
        c.send("CAP LS 302");
        let ls = c.expect_command("CAP");
        assert!(!ls.last().contains("chathistory"), "{ls}");
        assert!(!ls.last().contains("event-playback"), "{ls}");
        assert!(ls.last().contains("batch"), "{ls}");
        c.send("CAP REQ :draft/chathistory");
        let nak = c.expect_command("CAP");
        assert_eq!(nak.param(1), "NAK", "{nak}");
        c.send("NICK nohist");
        c.send("USER nohist 0 * :No History");
        c.send("CAP END");
        let burst = c.finish_registration("nohist");
        assert!(
            !burst
                .iter()
                .any(|m| m.params.iter().any(|p| p.starts_with("CHATHISTORY="))),
            "no CHATHISTORY token in ISUPPORT"
        );
        c.send("CHATHISTORY LATEST #x * 10");
        let fail = c.expect_command("FAIL");
        assert_eq!(
            (fail.param(0), fail.param(1)),
            ("CHATHISTORY", "MESSAGE_ERROR")
        );
    });
}
