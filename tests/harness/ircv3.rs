//! IRCv3 capabilities: negotiation, tags, forms per recipient, labels.

use chatnode::broker::harness::Harness;
use chatnode::broker::BrokerConfig;

use super::{register_with_caps, tag, untagged};

fn harness() -> Harness {
    Harness::new(BrokerConfig::default())
}

/// What a node without history offers (the history caps: see `history.rs`).
const ALL_CAPS: &str = "away-notify batch cap-notify \
                        echo-message extended-join invite-notify \
                        labeled-response message-tags multi-prefix server-time setname \
                        userhost-in-names";

#[test]
fn cap_ls_302_lists_every_cap_and_holds_registration() {
    let mut h = harness();
    let c = h.connect();
    h.send(c, "CAP LS 302");
    h.send(c, "NICK n");
    h.send(c, "USER n 0 * :N");
    let lines = h.take(c);
    assert_eq!(lines, [format!(":chatnode.local CAP * LS :{ALL_CAPS}")]);
    h.send(c, "CAP LIST");
    assert_eq!(h.take(c), [":chatnode.local CAP n LIST :"]);
    h.send(c, "CAP END");
    assert!(h.take(c)[0].contains(" 001 n "));
    h.send(c, "CAP END");
    assert!(h.take(c).is_empty(), "END after registration is ignored");
}

#[test]
fn cap_req_is_all_or_nothing() {
    let mut h = harness();
    let c = h.connect();
    h.send(c, "CAP REQ :multi-prefix bogus-cap");
    assert_eq!(
        h.take(c),
        [":chatnode.local CAP * NAK :multi-prefix bogus-cap"]
    );
    h.send(c, "CAP LIST");
    assert_eq!(h.take(c), [":chatnode.local CAP * LIST :"]);
    h.send(c, "CAP REQ :multi-prefix server-time ");
    assert_eq!(
        h.take(c),
        [":chatnode.local CAP * ACK :multi-prefix server-time"]
    );
    h.send(c, "CAP REQ -server-time");
    assert_eq!(h.take(c), [":chatnode.local CAP * ACK :-server-time"]);
    h.send(c, "CAP LIST");
    assert_eq!(h.take(c), [":chatnode.local CAP * LIST :multi-prefix"]);
    h.send(c, "CAP FOO");
    assert_eq!(
        h.take(c),
        [":chatnode.local 410 * FOO :Invalid CAP command"]
    );
}

#[test]
fn cap_notify_stays_on_for_302_clients_only() {
    let mut h = harness();
    let old = h.connect();
    h.send(old, "CAP LS");
    h.send(old, "CAP REQ cap-notify");
    h.send(old, "CAP REQ -cap-notify");
    let lines = h.take(old);
    assert_eq!(lines[2], ":chatnode.local CAP * ACK :-cap-notify");
    let new = h.connect();
    h.send(new, "CAP LS 302");
    h.send(new, "CAP LS");
    h.send(new, "CAP REQ cap-notify");
    h.send(new, "CAP REQ -cap-notify");
    let lines = h.take(new);
    assert_eq!(lines[2], ":chatnode.local CAP * ACK :cap-notify");
    assert_eq!(lines[3], ":chatnode.local CAP * NAK :-cap-notify");
}

#[test]
fn caps_can_change_after_registration_and_reach_channel_fanout() {
    let mut h = harness();
    let a = h.register("alice");
    let b = h.register("bob");
    h.send(a, "JOIN #c");
    h.send(b, "JOIN #c");
    h.take(a);
    h.take(b);
    h.send(b, "CAP REQ server-time");
    assert_eq!(h.take(b), [":chatnode.local CAP bob ACK :server-time"]);
    h.send(a, "PRIVMSG #c :hi");
    let got = h.take(b);
    assert!(tag(&got[0], "time").is_some(), "{got:?}");
    assert_eq!(untagged(&got[0]), ":alice!alice@127.0.0.1 PRIVMSG #c :hi");
}

#[test]
fn forms_per_recipient_and_client_only_tags() {
    let mut h = harness();
    let s = register_with_caps(&mut h, "s", "message-tags");
    let tags = register_with_caps(&mut h, "t", "message-tags");
    let time = register_with_caps(&mut h, "u", "server-time");
    let plain = h.register("p");
    for c in [s, tags, time, plain] {
        h.send(c, "JOIN #c");
    }
    for c in [s, tags, time, plain] {
        h.take(c);
    }
    h.send(
        s,
        "@+draft/react=x;+a\\sb;label=1;msgid=forged PRIVMSG #c :hey",
    );
    let full = h.take(tags).remove(0);
    assert!(full.starts_with("@time="), "{full}");
    assert!(tag(&full, "msgid").is_some_and(|m| m != "forged"), "{full}");
    assert_eq!(tag(&full, "+draft/react"), Some("x"));
    assert_eq!(tag(&full, "+a\\sb"), None, "invalid key dropped: {full}");
    assert_eq!(tag(&full, "label"), None);
    assert_eq!(untagged(&full), ":s!s@127.0.0.1 PRIVMSG #c :hey");
    let timed = h.take(time).remove(0);
    assert!(
        timed.starts_with("@time=") && !timed.contains("msgid"),
        "{timed}"
    );
    assert!(!timed.contains("react"), "{timed}");
    assert_eq!(h.take(plain), [":s!s@127.0.0.1 PRIVMSG #c :hey"]);
}

#[test]
fn tagmsg_reaches_only_message_tags_clients() {
    let mut h = harness();
    let s = register_with_caps(&mut h, "s", "message-tags echo-message");
    let t = register_with_caps(&mut h, "t", "message-tags");
    let p = h.register("p");
    for c in [s, t, p] {
        h.send(c, "JOIN #c");
    }
    for c in [s, t, p] {
        h.take(c);
    }
    h.send(s, "@+typing=active TAGMSG #c");
    let got = h.take(t);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(tag(&got[0], "+typing"), Some("active"));
    assert_eq!(untagged(&got[0]), ":s!s@127.0.0.1 TAGMSG #c");
    let echo = h.take(s);
    assert_eq!(tag(&echo[0], "msgid"), tag(&got[0], "msgid"), "{echo:?}");
    assert!(h.take(p).is_empty());
    h.send(s, "@+typing=done TAGMSG p");
    assert!(h.take(p).is_empty());
    assert_eq!(h.take(s).len(), 1, "the sender's echo");
    h.send(s, "TAGMSG nobody");
    assert!(h.take(s)[0].contains(" 401 s nobody "));
}

#[test]
fn tagmsg_leaves_the_idle_time_alone_and_privmsg_resets_it() {
    let mut h = harness();
    let s = register_with_caps(&mut h, "s", "message-tags");
    let w = h.register("w");
    // Idle time (WHOIS 317) is whole seconds of the real clock: the harness's clock drives
    // flood control only. So real time has to pass, and this test sleeps: not to wait for an
    // event, only to make a client two seconds idle. The bounds leave a second of slack.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let idle_of_s = |h: &mut Harness| -> u64 {
        h.send(w, "WHOIS s");
        let lines = h.take(w);
        let line = lines.iter().find(|l| l.contains(" 317 w s ")).expect("317");
        line.split(' ').nth(4).unwrap().parse().unwrap()
    };
    let before = idle_of_s(&mut h);
    assert!(before >= 2, "{before}");
    h.send(s, "@+typing=active TAGMSG w");
    let after_tagmsg = idle_of_s(&mut h);
    assert!(after_tagmsg >= before, "a typing notice is not activity");
    h.send(s, "PRIVMSG w :hi");
    let after_privmsg = idle_of_s(&mut h);
    assert!(after_privmsg <= 1, "a message is: {after_privmsg}");
}

#[test]
fn tag_data_over_4094_bytes_is_refused_with_417() {
    // A line with 4 KiB of tags costs flood control a whole burst (see broker::flood), and the
    // harness's clock stands still: this test is about the bound, not the rate.
    let mut h = Harness::new(BrokerConfig {
        flood: chatnode::broker::FloodConfig::off(),
        ..BrokerConfig::default()
    });
    let s = register_with_caps(&mut h, "s", "message-tags");
    let t = register_with_caps(&mut h, "t", "message-tags");
    let at_limit = format!("+k={}", "v".repeat(4094 - 3));
    h.send(s, &format!("@{at_limit} PRIVMSG t :fits"));
    let got = h.take(t);
    assert!(got[0].ends_with(&format!(";{at_limit} :s!s@127.0.0.1 PRIVMSG t :fits")));
    let over = format!("+k={}", "v".repeat(4094 - 2));
    h.send(s, &format!("@{over} PRIVMSG t :too big"));
    assert_eq!(
        h.take(s),
        [":chatnode.local 417 s :Input line was too long"]
    );
    assert!(h.take(t).is_empty());
}

#[test]
fn echo_message_carries_the_same_msgid_and_msgids_differ() {
    let mut h = harness();
    let s = register_with_caps(&mut h, "s", "echo-message message-tags");
    let t = register_with_caps(&mut h, "t", "message-tags");
    h.send(s, "PRIVMSG t :one");
    h.send(s, "NOTICE t :two");
    let echoes = h.take(s);
    let got = h.take(t);
    assert_eq!(untagged(&echoes[0]), ":s!s@127.0.0.1 PRIVMSG t :one");
    assert_eq!(untagged(&echoes[1]), ":s!s@127.0.0.1 NOTICE t :two");
    assert_eq!(tag(&echoes[0], "msgid"), tag(&got[0], "msgid"));
    assert_ne!(tag(&got[0], "msgid"), tag(&got[1], "msgid"));
    let plain = register_with_caps(&mut h, "e", "echo-message");
    h.send(plain, "PRIVMSG t :three");
    assert_eq!(h.take(plain), [":e!e@127.0.0.1 PRIVMSG t :three"]);
}

#[test]
fn multi_prefix_and_userhost_in_names() {
    let mut h = harness();
    let a = register_with_caps(&mut h, "a", "multi-prefix userhost-in-names");
    let b = h.register("b");
    h.send(a, "JOIN #c");
    h.send(a, "MODE #c +v a");
    h.take(a);
    h.send(a, "NAMES #c");
    assert_eq!(h.take(a)[0], ":chatnode.local 353 a = #c :@+a!a@127.0.0.1");
    h.send(b, "NAMES #c");
    assert_eq!(h.take(b)[0], ":chatnode.local 353 b = #c :@a");
}

#[test]
fn extended_join_and_away_notify() {
    let mut h = harness();
    let watcher = register_with_caps(&mut h, "w", "extended-join away-notify");
    let plain = h.register("p");
    // Tags, but not extended-join: the tagged plain form.
    let timed = register_with_caps(&mut h, "t", "server-time");
    let joiner = h.register("j");
    h.send(watcher, "JOIN #c");
    h.send(plain, "JOIN #c");
    h.send(timed, "JOIN #c");
    h.take(watcher);
    h.take(plain);
    h.take(timed);
    h.send(joiner, "AWAY :lunch");
    h.send(joiner, "JOIN #c");
    assert_eq!(
        h.take(watcher),
        [":j!j@127.0.0.1 JOIN #c * :j", ":j!j@127.0.0.1 AWAY :lunch"]
    );
    assert_eq!(h.take(plain), [":j!j@127.0.0.1 JOIN #c"]);
    let timed_lines = h.take(timed);
    assert_eq!(timed_lines.len(), 1, "{timed_lines:?}");
    assert!(
        timed_lines[0].starts_with("@time=") && timed_lines[0].ends_with(" :j!j@127.0.0.1 JOIN #c"),
        "{timed_lines:?}"
    );
    h.send(joiner, "AWAY");
    assert_eq!(h.take(watcher), [":j!j@127.0.0.1 AWAY"]);
    assert!(h.take(plain).is_empty());
    assert!(h.take(joiner).last().unwrap().contains(" 305 "));
}

#[test]
fn setname_tells_capable_peers_and_checks_the_name() {
    let mut h = harness();
    let a = register_with_caps(&mut h, "a", "setname");
    let b = register_with_caps(&mut h, "b", "setname");
    let p = h.register("p");
    for c in [a, b, p] {
        h.send(c, "JOIN #c");
    }
    for c in [a, b, p] {
        h.take(c);
    }
    h.send(a, "SETNAME :New Name");
    assert_eq!(h.take(a), [":a!a@127.0.0.1 SETNAME :New Name"]);
    assert_eq!(h.take(b), [":a!a@127.0.0.1 SETNAME :New Name"]);
    assert!(h.take(p).is_empty());
    h.send(p, "WHOIS a");
    assert!(h.take(p)[0].ends_with(" * :New Name"));
    h.send(a, &format!("SETNAME :{}", "x".repeat(129)));
    assert_eq!(
        h.take(a),
        [":chatnode.local FAIL SETNAME INVALID_REALNAME :Realname is not valid"]
    );
    h.send(a, "SETNAME :");
    assert!(h.take(a)[0].contains("FAIL SETNAME INVALID_REALNAME"));
}

#[test]
fn empty_realname_is_refused() {
    let mut h = harness();
    let c = h.connect();
    h.send(c, "NICK n");
    h.send(c, "USER n 0 * :");
    assert_eq!(
        h.take(c),
        [":chatnode.local 461 n USER :Not enough parameters"]
    );
    h.send(c, "USER n 0 *");
    assert!(h.take(c)[0].contains(" 461 "));
}

#[test]
fn labeled_response_ack_single_and_batch() {
    let mut h = harness();
    let c = register_with_caps(&mut h, "c", "labeled-response batch");
    h.send(c, "@label=a PONG :x");
    assert_eq!(h.take(c), ["@label=a :chatnode.local ACK"]);
    h.send(c, "@label=b PRIVMSG nobody :hi");
    assert_eq!(
        h.take(c),
        ["@label=b :chatnode.local 401 c nobody :No such nick/channel"]
    );
    h.send(c, "@label=c WHOIS c");
    let lines = h.take(c);
    let start = &lines[0];
    assert!(
        start.starts_with("@label=c :chatnode.local BATCH +"),
        "{lines:?}"
    );
    let reference = start.split(' ').nth(3).unwrap().trim_start_matches('+');
    assert!(start.ends_with(" labeled-response"));
    for line in &lines[1..lines.len() - 1] {
        assert_eq!(tag(line, "batch"), Some(reference), "{lines:?}");
        assert_eq!(tag(line, "label"), None);
    }
    assert_eq!(
        lines.last().unwrap(),
        &format!(":chatnode.local BATCH -{reference}")
    );
    h.send(c, &format!("@label={} PING x", "l".repeat(65)));
    assert!(
        h.take(c)[0].starts_with(":chatnode.local PONG"),
        "overlong label ignored"
    );
}

#[test]
fn labeled_echo_and_message_to_oneself() {
    let mut h = harness();
    let c = register_with_caps(&mut h, "c", "labeled-response batch echo-message");
    h.send(c, "@label=e PRIVMSG c :me");
    let lines = h.take(c);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0], ":c!c@127.0.0.1 PRIVMSG c :me",
        "delivered copy unlabeled"
    );
    assert_eq!(
        lines[1], "@label=e :c!c@127.0.0.1 PRIVMSG c :me",
        "echo labeled"
    );
}

#[test]
fn labeled_oper_is_answered_after_the_offloaded_check() {
    let hash = chatnode::auth::hash_password("pw", b"0123456789abcdef").unwrap();
    let config = BrokerConfig {
        operators: vec![chatnode::broker::Operator {
            name: "admin".into(),
            password_hash: hash,
        }],
        ..BrokerConfig::default()
    };
    let mut h = Harness::new(config);
    let c = register_with_caps(&mut h, "c", "labeled-response batch");
    h.queue(c, "@label=o OPER admin pw");
    h.queue(c, "@label=p PING after");
    h.settle();
    assert!(h.take(c).is_empty());
    h.run_offloaded();
    let lines = h.take(c);
    assert!(
        lines[0].starts_with("@label=o :chatnode.local BATCH +"),
        "{lines:?}"
    );
    assert!(lines[1].contains(" 381 c "), "{lines:?}");
    assert!(lines[3].starts_with(":chatnode.local BATCH -"), "{lines:?}");
    assert_eq!(
        lines[4],
        "@label=p :chatnode.local PONG chatnode.local :after"
    );
}

#[test]
fn invite_notify_tells_capable_members_and_only_operators_on_invite_only_channels() {
    let mut h = harness();
    let op = register_with_caps(&mut h, "op", "invite-notify");
    let member = register_with_caps(&mut h, "member", "invite-notify");
    let plain = h.register("plain");
    let guest = h.register("guest");
    for c in [op, member, plain] {
        h.send(c, "JOIN #c");
    }
    for c in [op, member, plain] {
        h.take(c);
    }
    h.send(op, "INVITE guest #c");
    let to_op = h.take(op);
    assert!(
        to_op.len() == 1 && to_op[0].contains(" 341 op guest "),
        "{to_op:?}"
    );
    assert_eq!(h.take(member), [":op!op@127.0.0.1 INVITE guest #c"]);
    assert!(h.take(plain).is_empty());
    assert_eq!(h.take(guest), [":op!op@127.0.0.1 INVITE guest #c"]);
    let other = h.register("other");
    h.send(op, "MODE #c +i");
    h.take(member);
    h.take(plain);
    h.send(op, "MODE #c +o member");
    h.send(op, "MODE #c -o member");
    h.take(op);
    h.take(member);
    h.send(op, "INVITE other #c");
    assert!(h.take(member).is_empty(), "+i: only operators are told");
    assert!(h.take(other)[0].ends_with(" INVITE other #c"));
}

/// `sts` carries a value, and values are for `CAP LS 302` clients only.
#[test]
fn sts_is_offered_to_302_clients_only() {
    let mut h = Harness::new(BrokerConfig {
        sts_port: Some(6697),
        ..BrokerConfig::default()
    });
    let modern = h.connect();
    h.send(modern, "CAP LS 302");
    let ls = h.take(modern);
    assert!(ls.iter().any(|l| l.contains(" sts=port=6697")), "{ls:?}");
    let old = h.connect();
    h.send(old, "CAP LS");
    let ls = h.take(old);
    assert!(
        !ls.is_empty() && !ls.iter().any(|l| l.contains("sts")),
        "{ls:?}"
    );
}

/// With tags, the extended and the plain JOIN are two forms, each built once: a member with
/// both caps and a member with tags only each get their own.
#[test]
fn tagged_forms_with_and_without_extended_join_stay_apart() {
    let mut h = harness();
    let both = register_with_caps(&mut h, "b", "extended-join server-time");
    let timed = register_with_caps(&mut h, "t", "server-time");
    let joiner = h.register("j");
    h.send(both, "JOIN #c");
    h.send(timed, "JOIN #c");
    h.take(both);
    h.take(timed);
    h.send(joiner, "JOIN #c");
    let (b, t) = (h.take(both), h.take(timed));
    assert!(
        b.len() == 1 && untagged(&b[0]) == ":j!j@127.0.0.1 JOIN #c * :j",
        "{b:?}"
    );
    assert!(
        t.len() == 1 && untagged(&t[0]) == ":j!j@127.0.0.1 JOIN #c",
        "{t:?}"
    );
}

/// A labeled JOIN labels the joiner's own copy; the other members get theirs as usual.
#[test]
fn a_labeled_join_labels_the_joiners_copy_only() {
    let mut h = harness();
    let other = h.register("o");
    h.send(other, "JOIN #c");
    h.take(other);
    let joiner = register_with_caps(&mut h, "j", "labeled-response batch");
    h.send(joiner, "@label=L1 JOIN #c");
    let mine = h.take(joiner);
    assert!(mine[0].starts_with("@label=L1 "), "{mine:?}");
    assert!(
        mine.iter().any(|l| untagged(l) == ":j!j@127.0.0.1 JOIN #c"),
        "{mine:?}"
    );
    assert_eq!(h.take(other), [":j!j@127.0.0.1 JOIN #c"]);
}
