//! Connection registration: NICK/USER, the welcome burst, CAP, PASS, and the
//! errors around them.

use crate::common::*;

fn isupport_tokens(burst: &[Msg]) -> Vec<String> {
    burst
        .iter()
        .filter(|m| m.command == "005")
        .flat_map(|m| {
            // <client> <tokens...> :are supported by this server
            let n = m.params.len();
            m.params[1..n.saturating_sub(1)].to_vec()
        })
        .collect()
}

fn position(burst: &[Msg], code: &str) -> Option<usize> {
    burst.iter().position(|m| m.command == code)
}

#[test]
fn welcome_burst_has_numerics_isupport_lusers_and_no_motd() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = node.connect("alice");
        let burst = c.register_as("alice");
        let numerics: Vec<&str> = burst
            .iter()
            .filter(|m| m.is_numeric())
            .map(|m| m.command.as_str())
            .collect();
        assert!(numerics.len() >= 5, "burst numerics: {numerics:?}");
        assert_eq!(
            &numerics[..4],
            &["001", "002", "003", "004"],
            "burst must start 001..004: {numerics:?}"
        );
        assert_eq!(numerics[4], "005", "005 follows 004: {numerics:?}");
        for m in burst.iter().filter(|m| m.is_numeric()) {
            assert_eq!(m.param(0), "alice", "first param is the nick: {m}");
        }
        // 004: <client> <servername> <version> <umodes> <chanmodes>
        let m004 = &burst[position(&burst, "004").unwrap()];
        assert_eq!(
            m004.param(1),
            "chatnode.local",
            "default server name: {m004}"
        );
        assert_eq!(
            burst[0].source.as_deref(),
            Some("chatnode.local"),
            "numerics come from the server name: {}",
            burst[0]
        );

        let tokens = isupport_tokens(&burst);
        for want in [
            "CASEMAPPING=rfc1459",
            "CHANTYPES=#",
            "PREFIX=(ov)@+",
            "NETWORK=chatnode",
        ] {
            assert!(
                tokens.iter().any(|t| t == want),
                "005 lacks {want}: {tokens:?}"
            );
        }
        for key in ["CHANNELLEN=", "NICKLEN=", "TOPICLEN="] {
            let t = tokens.iter().find(|t| t.starts_with(key));
            let t = t.unwrap_or_else(|| panic!("005 lacks {key}: {tokens:?}"));
            let v = &t[key.len()..];
            assert!(
                v.parse::<u32>().is_ok_and(|n| n > 0),
                "{key} needs a positive number: {t}"
            );
        }

        let p251 = position(&burst, "251").expect("LUSERS 251 in the burst");
        let p255 = position(&burst, "255").expect("LUSERS 255 in the burst");
        let p005 = burst.iter().rposition(|m| m.command == "005").unwrap();
        assert!(p005 < p251 && p251 < p255, "order 005 < 251 < 255");
        let last = burst.last().unwrap();
        assert_eq!(
            last.command, "422",
            "no --motd: burst ends with 422: {last}"
        );
        assert!(p255 < burst.len() - 1);
        c.assert_alive();
    });
}

#[test]
fn server_name_and_network_flags_are_used() {
    for_each_build(|b| {
        let node = Node::start(
            b,
            &["--server-name", "irc.example.test", "--network", "TestNet"],
        );
        let mut c = node.connect("alice");
        let burst = c.register_as("alice");
        assert_eq!(burst[0].source.as_deref(), Some("irc.example.test"));
        let m004 = &burst[position(&burst, "004").unwrap()];
        assert_eq!(m004.param(1), "irc.example.test", "{m004}");
        let tokens = isupport_tokens(&burst);
        assert!(
            tokens.iter().any(|t| t == "NETWORK=TestNet"),
            "NETWORK=TestNet in 005: {tokens:?}"
        );
    });
}

#[test]
fn motd_file_lines_are_sent_in_372() {
    for_each_build(|b| {
        let dir = TempDir::new("motd");
        let path = dir.join("motd.txt");
        let lines = [
            "Welcome to the test node",
            "second line: ünïcödé ✓",
            "third",
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let node = Node::start(b, &["--motd", path.to_str().unwrap()]);
        let mut c = node.connect("alice");
        let burst = c.register_as("alice");
        let p375 = position(&burst, "375").expect("375 starts the MOTD");
        let last = burst.last().unwrap();
        assert_eq!(last.command, "376", "burst ends with 376: {last}");
        let motd: Vec<&Msg> = burst.iter().filter(|m| m.command == "372").collect();
        assert!(
            motd.len() >= lines.len(),
            "one 372 per MOTD line, got {motd:?}"
        );
        let mut from = 0;
        for want in lines {
            let i = motd[from..]
                .iter()
                .position(|m| m.last().contains(want))
                .unwrap_or_else(|| panic!("no 372 with {want:?} (in order): {motd:?}"));
            from += i + 1;
        }
        assert!(p375 < position(&burst, "372").unwrap());
        assert!(position(&burst, "422").is_none());
    });
}

#[test]
fn user_before_nick_registers() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = node.connect("bob");
        c.send("USER bob 0 * :Bob Example");
        c.send("NICK bob");
        let burst = c.finish_registration("bob");
        assert_eq!(burst[0].param(0), "bob");
    });
}

#[test]
fn ping_before_and_after_registration() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = node.connect("pinger");
        c.send("PING :tok-before");
        let m = c.expect_command("PONG");
        assert_eq!(m.last(), "tok-before", "{m}");
        c.register_as("pinger");
        c.send("PING :tok after");
        let m = c.expect_command("PONG");
        assert_eq!(m.last(), "tok after", "{m}");
    });
}

#[test]
fn cap_ls_suspends_registration_until_cap_end() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = node.connect("capper");
        c.send("CAP LS 302");
        c.send("NICK capper");
        c.send("USER capper 0 * :Cap Per");
        let m = c.expect_command("CAP");
        assert_eq!(m.param(0), "*", "CAP reply before registration uses *: {m}");
        assert_eq!(m.param(1), "LS", "{m}");
        c.assert_no_line_matching(|m| m.command == "001");
        c.send("CAP END");
        let burst = c.finish_registration("capper");
        assert_eq!(burst[0].param(0), "capper");
    });
}

#[test]
fn cap_req_nak_list_and_invalid_subcommand() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = node.connect("capper");
        c.send("CAP LS 302");
        let m = c.expect_command("CAP");
        assert_eq!((m.param(0), m.param(1)), ("*", "LS"), "{m}");
        c.send("CAP REQ :foo");
        let m = c.expect_command("CAP");
        assert_eq!((m.param(0), m.param(1)), ("*", "NAK"), "{m}");
        assert_eq!(m.last(), "foo", "{m}");
        c.send("CAP LIST");
        let m = c.expect_command("CAP");
        assert_eq!((m.param(0), m.param(1)), ("*", "LIST"), "{m}");
        assert_eq!(m.params.len(), 3, "CAP * LIST : with an empty list: {m}");
        assert_eq!(m.last(), "", "{m}");
        c.send("CAP FROB");
        let m = c.expect_numeric("410");
        assert!(m.param(1).eq_ignore_ascii_case("FROB"), "{m}");
        // Still suspended, then registers.
        c.send("NICK capper");
        c.send("USER capper 0 * :Cap Per");
        c.assert_no_line_matching(|m| m.command == "001");
        c.send("CAP END");
        c.finish_registration("capper");
    });
}

#[test]
fn cap_ls_without_version_then_registers() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = node.connect("capper");
        c.send("CAP LS");
        c.send("NICK capper");
        c.send("USER capper 0 * :Cap Per");
        c.send("CAP END");
        let m = c.expect_command("CAP");
        assert_eq!(m.param(1), "LS", "{m}");
        c.finish_registration("capper");
    });
}

#[test]
fn correct_password_registers() {
    for_each_build(|b| {
        let node = Node::start(b, &["--password", "secret"]);
        let mut c = node.connect("alice");
        c.send("PASS secret");
        let burst = c.register_as("alice");
        assert_eq!(burst[0].param(0), "alice");
    });
}

fn assert_464_then_error_and_close(c: &mut Client) {
    let lines = c.expect_closed();
    let p464 = lines
        .iter()
        .position(|m| m.command == "464")
        .unwrap_or_else(|| panic!("[{}] no 464 before close: {lines:?}", c.label));
    let perr = lines
        .iter()
        .position(|m| m.is("ERROR"))
        .unwrap_or_else(|| panic!("[{}] no ERROR before close: {lines:?}", c.label));
    assert!(p464 < perr, "464 comes before ERROR: {lines:?}");
    assert!(
        !lines.iter().any(|m| m.command == "001"),
        "must not register: {lines:?}"
    );
}

#[test]
fn wrong_password_gets_464_error_and_close() {
    for_each_build(|b| {
        let node = Node::start(b, &["--password", "secret"]);
        let mut c = node.connect("alice");
        c.send("PASS wrong");
        c.send("NICK alice");
        c.send("USER alice 0 * :Alice");
        assert_464_then_error_and_close(&mut c);
        // The server still accepts the right password.
        let mut ok = node.connect("alice2");
        ok.send("PASS secret");
        ok.register_as("alice");
    });
}

#[test]
fn missing_password_gets_464_error_and_close() {
    for_each_build(|b| {
        let node = Node::start(b, &["--password", "secret"]);
        let mut c = node.connect("alice");
        c.send("NICK alice");
        c.send("USER alice 0 * :Alice");
        assert_464_then_error_and_close(&mut c);
    });
}

#[test]
fn commands_before_registration_get_451() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = node.connect("early");
        for cmd in ["JOIN #a", "PRIVMSG someone :hi", "WHOIS someone", "LIST"] {
            c.send(cmd);
            let m = c.expect(|m| m.is_numeric());
            assert_eq!(m.command, "451", "{cmd} before registration: {m}");
        }
        c.assert_alive();
        c.register_as("early");
    });
}

#[test]
fn user_and_pass_after_registration_get_462() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = node.register("alice");
        c.send("USER again 0 * :Again");
        c.expect_numeric("462");
        c.send("PASS whatever");
        c.expect_numeric("462");
        c.assert_alive();
    });
}

#[test]
fn unknown_command_gets_421_with_command() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut c = node.register("alice");
        c.send("FROBNICATE a b :c");
        let m = c.expect(|m| m.is_numeric());
        assert_eq!(m.command, "421", "{m}");
        assert!(m.param(1).eq_ignore_ascii_case("FROBNICATE"), "{m}");
        c.assert_alive();
    });
}

#[test]
fn missing_parameters_get_461() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut early = node.connect("early");
        early.send("USER a");
        let m = early.expect(|m| m.is_numeric());
        assert_eq!(m.command, "461", "{m}");
        assert!(m.param(1).eq_ignore_ascii_case("USER"), "{m}");

        let mut c = node.register("alice");
        c.send("JOIN");
        let m = c.expect(|m| m.is_numeric());
        assert_eq!(m.command, "461", "{m}");
        assert!(m.param(1).eq_ignore_ascii_case("JOIN"), "{m}");
        c.assert_alive();
    });
}

/// `1abc` gets 432. RFC 2812 forbids a leading digit; the Modern docs allow one but advise
/// servers against it. We keep the RFC rule on purpose: a nick that starts with a digit can
/// look like a numeric or a count to older clients and bots, every client accepts the stricter
/// rule, and loosening it later breaks nobody (tightening it would). See casemap::is_valid_nick.
#[test]
fn nick_errors_431_432() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut early = node.connect("early");
        early.send("NICK");
        let m = early.expect(|m| m.is_numeric());
        assert_eq!(m.command, "431", "NICK alone: {m}");
        for bad in ["1abc", "a,b", "#x"] {
            early.send(&format!("NICK {bad}"));
            let m = early.expect(|m| m.is_numeric());
            assert_eq!(m.command, "432", "NICK {bad}: {m}");
        }
        early.register_as("fine");

        let mut c = node.register("alice");
        c.send("NICK");
        c.expect_numeric("431");
        for bad in ["1abc", "a,b", "#x"] {
            c.send(&format!("NICK {bad}"));
            let m = c.expect(|m| m.is_numeric() || m.is("NICK"));
            assert_eq!(m.command, "432", "NICK {bad} after registration: {m}");
        }
        c.assert_alive();
    });
}

#[test]
fn nick_in_use_433_is_case_insensitive_rfc1459() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let _holder = node.register("Nick[");
        // Before registration.
        let mut c = node.connect("other");
        c.send("NICK nick{");
        let m = c.expect(|m| m.is_numeric());
        assert_eq!(m.command, "433", "nick{{ vs Nick[: {m}");
        c.send("NICK NICK[");
        let m = c.expect(|m| m.is_numeric());
        assert_eq!(m.command, "433", "NICK[ vs Nick[: {m}");
        c.register_as("other");
        // After registration.
        c.send("NICK nick{");
        let m = c.expect(|m| m.is_numeric() || m.is("NICK"));
        assert_eq!(m.command, "433", "{m}");
        c.send("NICK nick[");
        let m = c.expect(|m| m.is_numeric() || m.is("NICK"));
        assert_eq!(m.command, "433", "{m}");
        c.assert_alive();
    });
}

#[test]
fn nick_change_seen_once_by_self_and_channel_peers_only() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        let mut carol = node.register("carol");
        alice.join("#a");
        alice.join("#b");
        bob.join("#a");
        bob.join("#b");
        carol.join("#c");
        alice.sync();

        alice.send("NICK alice2");
        let is_change = |m: &Msg| m.is_from("NICK", "alice") && m.param(0) == "alice2";
        for c in [&mut alice, &mut bob] {
            let m = c.expect(is_change);
            let src = m.source.clone().unwrap_or_default();
            assert!(
                src.starts_with("alice!") && src.contains('@'),
                "[{}] source is old!user@host: {m}",
                c.label
            );
        }
        alice.sync();
        alice.assert_no_line_matching(|m| m.is("NICK"));
        bob.assert_no_line_matching(|m| m.is("NICK"));
        carol.assert_no_line_matching(|m| m.is("NICK"));

        // The old nick is free, the new one is taken.
        let mut d = node.register("alice");
        d.send("NICK alice2");
        d.expect_numeric("433");
    });
}
