//! NAMES, LIST, WHO, WHOIS.

use crate::common::*;

/// alice (op) and bob in #a with topic "topic of a"; bob alone in #b.
fn setup(node: &Node) -> (Client, Client) {
    let mut alice = node.register("alice");
    let mut bob = node.register("bob");
    alice.join("#a");
    bob.join("#a");
    bob.join("#b");
    alice.send("TOPIC #a :topic of a");
    alice.expect(|m| m.is("TOPIC"));
    bob.expect(|m| m.is("TOPIC"));
    (alice, bob)
}

#[test]
fn names_lists_members_with_prefixes() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, _bob) = setup(&node);
        alice.send("NAMES #a");
        let (end, lines) = alice.expect_one_of(&["366"]);
        assert!(end.param(1).eq_ignore_ascii_case("#a"), "{end}");
        let mut names: Vec<String> = lines
            .iter()
            .filter(|m| m.command == "353")
            .inspect(|m| assert!(m.param(2).eq_ignore_ascii_case("#a"), "{m}"))
            .flat_map(names_of)
            .collect();
        names.sort();
        assert_eq!(names, vec!["@alice".to_string(), "bob".to_string()]);
    });
}

#[test]
fn list_shows_channels_with_counts_and_topics() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, _bob) = setup(&node);
        alice.send("LIST");
        let (end, lines) = alice.expect_one_of(&["323"]);
        assert_eq!(end.param(0), "alice");
        let mut entries: Vec<(String, String, String)> = lines
            .iter()
            .filter(|m| m.command == "322")
            .map(|m| {
                (
                    m.param(1).to_lowercase(),
                    m.param(2).to_string(),
                    m.last().to_string(),
                )
            })
            .collect();
        entries.sort();
        assert_eq!(entries.len(), 2, "one 322 per channel: {lines:?}");
        assert_eq!(entries[0].0, "#a");
        assert_eq!(entries[0].1, "2", "member count of #a");
        assert!(
            entries[0].2.contains("topic of a"),
            "topic of #a: {entries:?}"
        );
        assert_eq!(entries[1].0, "#b");
        assert_eq!(entries[1].1, "1", "member count of #b");
        assert!(
            lines
                .iter()
                .all(|m| ["321", "322"].contains(&m.command.as_str())),
            "only 321/322 before 323: {lines:?}"
        );
    });
}

#[test]
fn who_channel_and_who_nick() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, _bob) = setup(&node);
        alice.send("WHO #a");
        let (end, lines) = alice.expect_one_of(&["315"]);
        assert!(end.param(1).eq_ignore_ascii_case("#a"), "{end}");
        let replies: Vec<&Msg> = lines.iter().filter(|m| m.command == "352").collect();
        assert_eq!(replies.len(), 2, "one 352 per member: {lines:?}");
        // 352 <client> <channel> <user> <host> <server> <nick> <flags> :<hop> <real>
        for r in &replies {
            assert!(r.param(1).eq_ignore_ascii_case("#a"), "{r}");
            let nick = r.param(5);
            assert!(nick == "alice" || nick == "bob", "{r}");
            assert!(r.param(2).trim_start_matches('~') == nick, "username: {r}");
            assert!(r.param(6).starts_with('H'), "here flag: {r}");
            assert_eq!(r.param(6).contains('@'), nick == "alice", "op flag: {r}");
            assert!(r.last().ends_with(&format!("Real {nick}")), "realname: {r}");
        }

        alice.send("WHO bob");
        let (end, lines) = alice.expect_one_of(&["315"]);
        assert_eq!(end.param(1), "bob", "{end}");
        let replies: Vec<&Msg> = lines.iter().filter(|m| m.command == "352").collect();
        assert_eq!(replies.len(), 1, "{lines:?}");
        assert_eq!(replies[0].param(5), "bob");
    });
}

#[test]
fn whois_known_and_unknown() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let (mut alice, _bob) = setup(&node);
        alice.send("WHOIS bob");
        let (end, lines) = alice.expect_one_of(&["318"]);
        assert_eq!(end.param(1), "bob");
        let get = |code: &str| {
            lines
                .iter()
                .find(|m| m.command == code)
                .unwrap_or_else(|| panic!("WHOIS lacks {code}: {lines:?}"))
        };
        let m311 = get("311");
        assert_eq!(m311.param(1), "bob", "{m311}");
        assert_eq!(m311.param(2).trim_start_matches('~'), "bob", "{m311}");
        assert!(!m311.param(3).is_empty(), "{m311}");
        assert_eq!(m311.param(4), "*", "{m311}");
        assert_eq!(m311.last(), "Real bob", "{m311}");
        let m312 = get("312");
        assert_eq!(m312.param(1), "bob");
        assert_eq!(m312.param(2), "chatnode.local", "{m312}");
        let m319 = get("319");
        let mut chans: Vec<&str> = m319.last().split_whitespace().collect();
        chans.sort();
        assert_eq!(chans, vec!["#a", "@#b"], "bob is op of #b only: {m319}");

        alice.send("WHOIS nobody");
        let m = alice.expect(|m| m.is_numeric());
        assert_eq!(m.command, "401", "{m}");
        let m = alice.next_msg();
        assert_eq!(m.command, "318", "318 follows 401: {m}");
    });
}
