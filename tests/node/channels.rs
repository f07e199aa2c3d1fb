//! JOIN, PART, TOPIC, MODE on channels.

use crate::common::*;

fn is_join(m: &Msg, nick: &str, chan: &str) -> bool {
    m.is_from("JOIN", nick) && m.param(0).eq_ignore_ascii_case(chan)
}

fn is_part(m: &Msg, nick: &str, chan: &str) -> bool {
    m.is_from("PART", nick) && m.param(0).eq_ignore_ascii_case(chan)
}

#[test]
fn join_echo_names_with_op_prefix_and_end() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");

        let lines = alice.join("#a");
        let echo = lines
            .iter()
            .find(|m| is_join(m, "alice", "#a"))
            .unwrap_or_else(|| panic!("no JOIN echo for alice: {lines:?}"));
        let src = echo.source.as_deref().unwrap_or("");
        assert!(
            src.starts_with("alice!") && src.contains('@'),
            "JOIN source is nick!user@host: {echo}"
        );
        let p_join = lines
            .iter()
            .position(|m| is_join(m, "alice", "#a"))
            .unwrap();
        let p353 = lines
            .iter()
            .position(|m| m.command == "353")
            .unwrap_or_else(|| panic!("no 353: {lines:?}"));
        assert!(p_join < p353, "JOIN echo before 353: {lines:?}");
        let n = &lines[p353];
        assert!(n.param(2).eq_ignore_ascii_case("#a"), "{n}");
        assert_eq!(
            names_of(n),
            vec!["@alice".to_string()],
            "first joiner is op: {n}"
        );

        let lines = bob.join("#a");
        assert!(lines.iter().any(|m| is_join(m, "bob", "#a")), "{lines:?}");
        let names: Vec<String> = lines
            .iter()
            .filter(|m| m.command == "353")
            .flat_map(names_of)
            .collect();
        assert!(names.contains(&"@alice".to_string()), "{names:?}");
        assert!(
            names.contains(&"bob".to_string()),
            "bob without prefix: {names:?}"
        );
        assert_eq!(names.len(), 2, "{names:?}");

        // The existing member sees the new member's JOIN exactly once.
        alice.expect(|m| is_join(m, "bob", "#a"));
        bob.sync();
        alice.assert_no_line_matching(|m| m.is("JOIN"));
    });
}

#[test]
fn join_comma_list_joins_both() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        alice.send("JOIN #a,#b");
        for chan in ["#a", "#b"] {
            alice.expect(|m| is_join(m, "alice", chan));
            alice.expect(|m| m.command == "366" && m.param(1).eq_ignore_ascii_case(chan));
        }
        let mut bob = node.register("bob");
        bob.send("WHOIS alice");
        let m = bob.expect_numeric("319");
        let chans: Vec<&str> = m
            .last()
            .split_whitespace()
            .map(|c| c.trim_start_matches(['@', '+']))
            .collect();
        assert!(chans.contains(&"#a") && chans.contains(&"#b"), "{m}");
        bob.expect_numeric("318");
    });
}

#[test]
fn join_0_parts_all_channels() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        let mut carol = node.register("carol");
        alice.join("#a");
        alice.join("#b");
        bob.join("#a");
        carol.join("#b");
        alice.sync();

        alice.send("JOIN 0");
        bob.expect(|m| is_part(m, "alice", "#a"));
        carol.expect(|m| is_part(m, "alice", "#b"));
        alice.expect(|m| is_part(m, "alice", "#a") || is_part(m, "alice", "#b"));
        alice.expect(|m| is_part(m, "alice", "#a") || is_part(m, "alice", "#b"));
        bob.assert_no_line_matching(|m| is_part(m, "alice", "#b"));

        // alice is no longer a member.
        alice.send("PRIVMSG #a :still here?");
        alice.expect_numeric("404");
        bob.assert_no_line_matching(|m| m.is("PRIVMSG"));
    });
}

#[test]
fn invalid_channel_name_gets_403_or_476() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        for bad in ["nohash", "&amp"] {
            alice.send(&format!("JOIN {bad}"));
            let m = alice.expect(|m| m.is_numeric() || m.is("JOIN"));
            assert!(
                m.command == "403" || m.command == "476",
                "JOIN {bad} -> 403/476, got {m}"
            );
        }
        alice.assert_alive();
    });
}

#[test]
fn channel_names_are_case_insensitive() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        alice.join("#Chan");
        let lines = bob.join("#chan");
        let names: Vec<String> = lines
            .iter()
            .filter(|m| m.command == "353")
            .flat_map(names_of)
            .collect();
        assert!(
            names.contains(&"@alice".to_string()),
            "same channel: {names:?}"
        );
        alice.expect(|m| is_join(m, "bob", "#chan"));
        bob.send("PRIVMSG #CHAN :hello case");
        let m = alice.expect(|m| m.is_from("PRIVMSG", "bob"));
        assert!(m.param(0).eq_ignore_ascii_case("#chan"), "{m}");
        assert_eq!(m.last(), "hello case");
    });
}

#[test]
fn part_is_seen_with_reason_and_errors() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        alice.join("#a");
        bob.join("#a");
        alice.expect(|m| is_join(m, "bob", "#a"));

        bob.send("PART #a :see you later");
        let m = alice.expect(|m| is_part(m, "bob", "#a"));
        assert_eq!(m.last(), "see you later", "{m}");
        bob.expect(|m| is_part(m, "bob", "#a"));

        // Not a member any more: messages to #a do not reach bob.
        alice.send("PRIVMSG #a :after part");
        alice.sync();
        bob.assert_no_line_matching(|m| m.is("PRIVMSG"));

        // PART without a reason.
        bob.join("#a");
        alice.expect(|m| is_join(m, "bob", "#a"));
        bob.send("PART #a");
        alice.expect(|m| is_part(m, "bob", "#a"));

        bob.send("PART #a");
        bob.expect_numeric("442");
        bob.send("PART #nonexistent");
        bob.expect_numeric("403");
        bob.assert_alive();
    });
}

#[test]
fn topic_set_query_and_errors() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        let mut carol = node.register("carol");
        alice.join("#a");
        bob.join("#a");
        alice.expect(|m| is_join(m, "bob", "#a"));

        bob.send("TOPIC #a");
        let m = bob.expect(|m| m.is_numeric());
        assert_eq!(m.command, "331", "no topic yet: {m}");
        assert!(m.param(1).eq_ignore_ascii_case("#a"), "{m}");

        alice.send("TOPIC #a :hello  world: topic");
        for c in [&mut alice, &mut bob] {
            let m = c.expect(|m| m.is_from("TOPIC", "alice"));
            assert!(m.param(0).eq_ignore_ascii_case("#a"), "{m}");
            assert_eq!(m.last(), "hello  world: topic", "{m}");
        }

        bob.send("TOPIC #a");
        let m = bob.expect_numeric("332");
        assert!(m.param(1).eq_ignore_ascii_case("#a"), "{m}");
        assert_eq!(m.last(), "hello  world: topic", "{m}");
        let m = bob.next_msg();
        assert_eq!(m.command, "333", "333 follows 332: {m}");
        assert!(m.param(1).eq_ignore_ascii_case("#a"), "{m}");
        assert!(m.param(2).starts_with("alice"), "setter: {m}");
        assert!(m.param(3).parse::<u64>().is_ok(), "set-at timestamp: {m}");

        // Non-op on a +t channel: 482 and nothing else, and the topic is unchanged.
        bob.ask_exactly("TOPIC #a :hijack", &["482"]);
        alice.assert_no_line_matching(|m| m.is("TOPIC"));
        let lines = bob.ask_exactly("TOPIC #a", &["332", "333"]);
        assert_eq!(lines[0].last(), "hello  world: topic", "{}", lines[0]);

        // Not on the channel.
        carol.ask_exactly("TOPIC #a :outsider", &["442"]);
        alice.assert_no_line_matching(|m| m.is("TOPIC"));
        let lines = alice.ask_exactly("TOPIC #a", &["332", "333"]);
        assert_eq!(lines[0].last(), "hello  world: topic", "{}", lines[0]);
    });
}

#[test]
fn channel_and_user_modes() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        let _bob = node.register("bob");
        alice.join("#a");
        alice.send("MODE #a");
        let m = alice.expect_numeric("324");
        assert!(m.param(1).eq_ignore_ascii_case("#a"), "{m}");
        let modes = m.param(2);
        assert!(modes.starts_with('+'), "{m}");
        let mut chars: Vec<char> = modes[1..].chars().collect();
        chars.sort();
        assert_eq!(chars, vec!['n', 't'], "default modes +nt: {m}");
        alice.expect_next_numeric("329");

        alice.ask_exactly("MODE alice", &["221"]);
        alice.ask_exactly("MODE bob", &["502"]);
        alice.ask_exactly("MODE #a +o bob", &["441"]);
        alice.ask_exactly("MODE #a +q", &["472"]);
        alice.ask_exactly("MODE alice +z", &["501"]);
        let mut bob = _bob;
        bob.join("#a");
        bob.ask_exactly("MODE #a -t", &["482"]);
        alice.drain();
        alice.send("MODE #a +v bob");
        for c in [&mut alice, &mut bob] {
            let m = c.expect_next_command("MODE");
            assert_eq!(m.params, ["#a", "+v", "bob"], "{m}");
        }
        alice.send("MODE #a +o bob");
        for c in [&mut alice, &mut bob] {
            let m = c.expect_next_command("MODE");
            assert_eq!(m.params, ["#a", "+o", "bob"], "{m}");
        }
        bob.ask_exactly("MODE #a -t", &["MODE"]);
        let m = alice.expect_next_command("MODE");
        assert_eq!(m.params, ["#a", "-t"], "{m}");
        alice.send("MODE alice +i");
        let m = alice.expect_next_command("MODE");
        assert_eq!(m.last(), "+i", "{m}");
        alice.ask_exactly("MODE alice", &["221"]);
    });
}
