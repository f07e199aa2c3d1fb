//! PRIVMSG, NOTICE and AWAY.

use crate::common::*;

/// alice, bob in #a; carol registered but not in #a. All JOINs consumed.
fn three(node: &Node) -> (Client, Client, Client) {
    let mut alice = node.register("alice");
    let mut bob = node.register("bob");
    let carol = node.register("carol");
    alice.join("#a");
    bob.join("#a");
    alice.expect(|m| m.is_from("JOIN", "bob"));
    (alice, bob, carol)
}

fn channel_message_reaches_members_once(node: &Node, cmd: &str) {
    let mut alice = node.register("alice");
    let mut bob = node.register("bob");
    let mut dave = node.register("dave");
    let mut carol = node.register("carol");
    for c in [&mut alice, &mut bob, &mut dave] {
        c.join("#a");
    }
    alice.sync();
    bob.sync();
    let text = format!("{cmd} to the channel");
    alice.send(&format!("{cmd} #a :{text}"));
    for c in [&mut bob, &mut dave] {
        let m = c.expect(|m| m.is_from(cmd, "alice"));
        assert!(m.param(0).eq_ignore_ascii_case("#a"), "{m}");
        assert_eq!(m.last(), text, "{m}");
        let src = m.source.as_deref().unwrap_or("");
        assert!(src.starts_with("alice!") && src.contains('@'), "{m}");
    }
    alice.sync();
    alice.assert_no_line_matching(|m| m.is(cmd));
    bob.assert_no_line_matching(|m| m.is(cmd));
    dave.assert_no_line_matching(|m| m.is(cmd));
    carol.assert_no_line_matching(|m| m.is(cmd));
}

#[test]
fn privmsg_to_channel_reaches_every_other_member_once() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        channel_message_reaches_members_once(&node, "PRIVMSG");
    });
}

#[test]
fn notice_to_channel_reaches_every_other_member_once() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        channel_message_reaches_members_once(&node, "NOTICE");
    });
}

#[test]
fn channel_message_with_threads_1_and_2() {
    for_each_build(|b| {
        for threads in ["1", "2"] {
            let node = Node::start(b, &["--threads", threads]);
            channel_message_reaches_members_once(&node, "PRIVMSG");
        }
    });
}

#[test]
fn private_message_reaches_only_the_target() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob, mut carol) = three(&node);
        carol.join("#a");
        alice.sync();
        bob.sync();
        alice.send("PRIVMSG bob :just for you");
        let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
        assert_eq!(m.param(0), "bob", "{m}");
        assert_eq!(m.last(), "just for you");
        alice.send("NOTICE BOB :notice for you");
        let m = bob.expect(|m| m.is_from("NOTICE", "alice"));
        assert_eq!(m.last(), "notice for you");
        alice.sync();
        bob.assert_no_line_matching(|m| m.is("PRIVMSG") || m.is("NOTICE"));
        carol.assert_no_line_matching(|m| m.is("PRIVMSG") || m.is("NOTICE"));
        alice.assert_no_line_matching(|m| m.is("PRIVMSG") || m.is("NOTICE"));
    });
}

#[test]
fn privmsg_errors() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob, mut carol) = three(&node);
        let cases: [(&str, &[&str]); 5] = [
            ("PRIVMSG", &["411"]),
            ("PRIVMSG bob", &["412"]),
            ("PRIVMSG nobody :hi", &["401"]),
            ("PRIVMSG #nochan :hi", &["401", "403"]),
            ("PRIVMSG #a :from outside", &["404"]),
        ];
        for (line, codes) in cases {
            carol.send(line);
            let m = carol.expect(|m| m.is_numeric());
            assert!(
                codes.contains(&m.command.as_str()),
                "{line} -> {codes:?}, got {m}"
            );
        }
        carol.sync();
        alice.assert_no_line_matching(|m| m.is("PRIVMSG"));
        bob.assert_no_line_matching(|m| m.is("PRIVMSG"));
    });
}

#[test]
fn notice_never_gets_error_replies() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob, mut carol) = three(&node);
        for line in [
            "NOTICE",
            "NOTICE bob",
            "NOTICE nobody :hi",
            "NOTICE #nochan :hi",
            "NOTICE #a :from outside",
        ] {
            carol.send(line);
        }
        carol.assert_no_line_matching(|m| m.is_numeric());
        alice.assert_no_line_matching(|m| m.is("NOTICE"));
        bob.assert_no_line_matching(|m| m.is("NOTICE"));
    });
}

#[test]
fn text_arrives_intact() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob, _carol) = three(&node);
        let texts = [
            "  leading and  repeated   spaces",
            ":starts with a colon",
            "ends: with :colons:",
            "héllo wörld ✓ 日本語 🎉",
            "x",
        ];
        for t in texts {
            alice.send(&format!("PRIVMSG bob :{t}"));
            let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
            assert_eq!(m.last(), t, "private text intact: {m}");
            alice.send(&format!("PRIVMSG #a :{t}"));
            let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
            assert_eq!(m.last(), t, "channel text intact: {m}");
        }
        // A single-word text without a colon.
        alice.send("PRIVMSG bob word");
        let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
        assert_eq!(m.last(), "word");
    });
}

#[test]
fn invalid_utf8_arrives_as_replacement_character() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob, _carol) = three(&node);
        alice.send_raw(b"PRIVMSG bob :bad \xff\xfe bytes \xc3(\r\n");
        let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
        let raw = &m.raw;
        assert!(
            std::str::from_utf8(raw).is_ok(),
            "the relayed line must be valid UTF-8: {raw:?}"
        );
        let text = m.last();
        assert!(text.starts_with("bad "), "{m}");
        assert!(text.ends_with(" bytes \u{FFFD}("), "{m}");
        assert!(text.contains('\u{FFFD}'), "{m}");
        assert!(!text.contains("\u{FFFD}\u{FFFD}\u{FFFD}"), "{m}");
        alice.assert_alive();
        bob.assert_alive();
    });
}

#[test]
fn away_sets_301_306_305_and_whois() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, mut bob, _carol) = three(&node);
        bob.send("AWAY :gone fishing");
        bob.expect_numeric("306");

        alice.send("PRIVMSG bob :are you there?");
        let m = alice.expect_numeric("301");
        assert_eq!(m.param(1), "bob", "{m}");
        assert_eq!(m.last(), "gone fishing", "{m}");
        let m = bob.expect(|m| m.is_from("PRIVMSG", "alice"));
        assert_eq!(m.last(), "are you there?", "still delivered");

        alice.send("WHOIS bob");
        let (end, lines) = alice.expect_one_of(&["318"]);
        assert_eq!(end.param(1), "bob");
        let away = lines
            .iter()
            .find(|m| m.command == "301")
            .unwrap_or_else(|| panic!("WHOIS shows 301: {lines:?}"));
        assert_eq!(away.last(), "gone fishing");

        bob.send("AWAY");
        bob.expect_numeric("305");
        alice.send("PRIVMSG bob :back?");
        bob.expect(|m| m.is_from("PRIVMSG", "alice"));
        alice.assert_no_line_matching(|m| m.command == "301");
    });
}
