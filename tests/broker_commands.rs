//! Every command's replies and errors, line for line, on the in-process broker harness
//! (`chatnode::broker::harness`): no sockets, no threads, no timing. Each test asserts the exact
//! lines a client gets, so a spurious extra reply fails as surely as a missing one.
//!
//! The end-to-end suite (tests/node) proves the same node works over TCP on both builds; this
//! file proves the rules. It is also the fast test target of the mutation run (docs/testing.md).

use chatnode::broker::harness::Harness;
use chatnode::broker::{BrokerConfig, ClientId, Limits, Operator};

const S: &str = ":chatnode.local";

fn harness() -> Harness {
    Harness::new(BrokerConfig::default())
}

/// A harness without flood control, for tests of other bounds that send long lines (a long
/// line costs flood control up to 4 tokens, kilobytes of tags a whole burst) while the
/// harness's clock stands still.
fn harness_without_flood_control() -> Harness {
    Harness::new(BrokerConfig {
        flood: chatnode::broker::FloodConfig::off(),
        ..BrokerConfig::default()
    })
}

/// `nick!nick@127.0.0.1`, the mask of a harness client registered as `nick`.
fn mask(nick: &str) -> String {
    format!("{nick}!{nick}@127.0.0.1")
}

/// Registers `nick` and joins `chans` (discarding the JOIN bursts of everyone).
fn member(h: &mut Harness, nick: &str, chans: &[&str]) -> ClientId {
    let id = h.register(nick);
    for c in chans {
        h.send(id, &format!("JOIN {c}"));
    }
    id
}

/// Discards what every client in `ids` got so far.
fn clear(h: &mut Harness, ids: &[ClientId]) {
    for &id in ids {
        h.take(id);
    }
}

fn with_operator(password: &str) -> BrokerConfig {
    let hash = chatnode::auth::hash_password(password, b"0123456789abcdef").unwrap();
    BrokerConfig {
        operators: vec![Operator {
            name: "admin".into(),
            password_hash: hash,
        }],
        ..BrokerConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// MODE on channels

#[test]
fn mode_query_shows_the_default_modes_and_creation_time() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    clear(&mut h, &[a]);
    h.send(a, "MODE #c");
    let lines = h.take(a);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], format!("{S} 324 alice #c :+nt"));
    assert!(
        lines[1].starts_with(&format!("{S} 329 alice #c ")),
        "{lines:?}"
    );
    h.send(a, "MODE #c b");
    assert_eq!(
        h.take(a),
        [format!("{S} 368 alice #c :End of channel ban list")]
    );
    h.send(a, "MODE #nowhere");
    assert_eq!(
        h.take(a),
        [format!("{S} 403 alice #nowhere :No such channel")]
    );
}

#[test]
fn mode_op_and_voice_are_given_taken_and_broadcast() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let b = member(&mut h, "bob", &["#c"]);
    clear(&mut h, &[a, b]);
    for (change, want) in [
        ("+o bob", "+o bob"),
        ("-o bob", "-o bob"),
        ("+v bob", "+v bob"),
        ("-v bob", "-v bob"),
        ("+ov bob bob", "+ov bob bob"),
        ("-vo bob bob", "-vo bob bob"),
    ] {
        h.send(a, &format!("MODE #c {change}"));
        let line = format!(":{} MODE #c {want}", mask("alice"));
        assert_eq!(h.take(a), std::slice::from_ref(&line), "MODE #c {change}");
        assert_eq!(h.take(b), [line], "MODE #c {change}");
    }
    // A change that changes nothing is not broadcast.
    h.send(a, "MODE #c -o bob");
    assert!(h.take(a).is_empty());
    assert!(h.take(b).is_empty());
    // The prefix shows in NAMES: voice, then op.
    h.send(a, "MODE #c +v bob");
    clear(&mut h, &[a, b]);
    assert!(!h.is_closed(a), "alice was dropped too");
    h.send(a, "NAMES #c");
    let names = h.take(a);
    assert!(names[0].contains("+bob"), "{names:?}");
    h.send(a, "MODE #c +o bob");
    clear(&mut h, &[a, b]);
    assert!(!h.is_closed(a), "alice was dropped too");
    h.send(a, "NAMES #c");
    let names = h.take(a);
    assert!(
        names[0].contains("@bob") && !names[0].contains("+bob"),
        "{names:?}"
    );
}

#[test]
fn mode_op_given_lets_the_new_op_change_modes_and_taken_stops_them() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let b = member(&mut h, "bob", &["#c"]);
    clear(&mut h, &[a, b]);
    h.send(b, "MODE #c -t");
    assert_eq!(
        h.take(b),
        [format!("{S} 482 bob #c :You're not channel operator")]
    );
    assert!(h.take(a).is_empty());
    h.send(a, "MODE #c +o bob");
    clear(&mut h, &[a, b]);
    h.send(b, "MODE #c -t");
    assert_eq!(h.take(a), [format!(":{} MODE #c -t", mask("bob"))]);
    h.take(b);
    h.send(b, "MODE #c -o alice");
    assert_eq!(h.take(a), [format!(":{} MODE #c -o alice", mask("bob"))]);
    h.take(b);
    h.send(a, "MODE #c +t");
    assert_eq!(
        h.take(a),
        [format!("{S} 482 alice #c :You're not channel operator")]
    );
    assert!(h.take(b).is_empty());
}

#[test]
fn mode_n_and_t_toggle_and_show_in_the_query() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    clear(&mut h, &[a]);
    h.send(a, "MODE #c -n");
    assert_eq!(h.take(a), [format!(":{} MODE #c -n", mask("alice"))]);
    h.send(a, "MODE #c");
    assert_eq!(h.take(a)[0], format!("{S} 324 alice #c :+t"));
    h.send(a, "MODE #c -t");
    assert_eq!(h.take(a), [format!(":{} MODE #c -t", mask("alice"))]);
    h.send(a, "MODE #c");
    assert_eq!(h.take(a)[0], format!("{S} 324 alice #c :+"));
    h.send(a, "MODE #c +nt");
    assert_eq!(h.take(a), [format!(":{} MODE #c +nt", mask("alice"))]);
    h.send(a, "MODE #c -n+t");
    assert_eq!(h.take(a), [format!(":{} MODE #c -n", mask("alice"))]);
    h.send(a, "MODE #c +n-t+t");
    assert_eq!(h.take(a), [format!(":{} MODE #c +n-t+t", mask("alice"))]);
}

#[test]
fn mode_minus_n_lets_outsiders_speak_plus_n_stops_them() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let out = h.register("outsider");
    clear(&mut h, &[a]);
    h.send(out, "PRIVMSG #c :knock");
    assert_eq!(
        h.take(out),
        [format!("{S} 404 outsider #c :Cannot send to channel")]
    );
    assert!(h.take(a).is_empty());
    h.send(a, "MODE #c -n");
    h.take(a);
    h.send(out, "PRIVMSG #c :knock");
    assert!(h.take(out).is_empty());
    assert_eq!(
        h.take(a),
        [format!(":{} PRIVMSG #c :knock", mask("outsider"))]
    );
    h.send(a, "MODE #c +n");
    h.take(a);
    h.send(out, "NOTICE #c :knock");
    assert!(h.take(out).is_empty(), "NOTICE never gets an error");
    assert!(h.take(a).is_empty());
}

#[test]
fn mode_minus_t_lets_members_set_the_topic_plus_t_stops_them() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let b = member(&mut h, "bob", &["#c"]);
    clear(&mut h, &[a, b]);
    h.send(b, "TOPIC #c :from bob");
    assert_eq!(
        h.take(b),
        [format!("{S} 482 bob #c :You're not channel operator")]
    );
    // The refused topic did not stick.
    h.send(b, "TOPIC #c");
    assert_eq!(h.take(b), [format!("{S} 331 bob #c :No topic is set")]);
    assert!(h.take(a).is_empty());
    h.send(a, "MODE #c -t");
    clear(&mut h, &[a, b]);
    h.send(b, "TOPIC #c :from bob");
    let line = format!(":{} TOPIC #c :from bob", mask("bob"));
    assert_eq!(h.take(a), std::slice::from_ref(&line));
    assert_eq!(h.take(b), [line]);
    h.send(a, "MODE #c +t");
    clear(&mut h, &[a, b]);
    h.send(b, "TOPIC #c :again");
    assert_eq!(
        h.take(b),
        [format!("{S} 482 bob #c :You're not channel operator")]
    );
    h.send(b, "TOPIC #c");
    assert_eq!(h.take(b)[0], format!("{S} 332 bob #c :from bob"));
}

#[test]
fn mode_errors_441_401_472_461() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let _c = member(&mut h, "carol", &["#elsewhere"]);
    clear(&mut h, &[a]);
    h.send(a, "MODE #c +o carol");
    assert_eq!(
        h.take(a),
        [format!(
            "{S} 441 alice carol #c :They aren't on that channel"
        )]
    );
    h.send(a, "MODE #c +v ghost");
    assert_eq!(
        h.take(a),
        [format!("{S} 401 alice ghost :No such nick/channel")]
    );
    h.send(a, "MODE #c +X");
    assert_eq!(
        h.take(a),
        [format!("{S} 472 alice X :is unknown mode char to me")]
    );
    h.send(a, "MODE #c +k");
    assert_eq!(
        h.take(a),
        [format!("{S} 461 alice MODE :Not enough parameters")]
    );
    h.send(a, "MODE #c +o");
    assert_eq!(
        h.take(a),
        [format!("{S} 461 alice MODE :Not enough parameters")]
    );
    // An unknown letter does not stop the known ones around it.
    h.send(a, "MODE #c -nXt");
    assert_eq!(
        h.take(a),
        [
            format!("{S} 472 alice X :is unknown mode char to me"),
            format!(":{} MODE #c -nt", mask("alice")),
        ]
    );
    h.send(a, "MODE");
    assert_eq!(
        h.take(a),
        [format!("{S} 461 alice MODE :Not enough parameters")]
    );
}

#[test]
fn mode_482_for_a_non_member() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let out = h.register("outsider");
    clear(&mut h, &[a]);
    h.send(out, "MODE #c +o outsider");
    assert_eq!(
        h.take(out),
        [format!("{S} 482 outsider #c :You're not channel operator")]
    );
    assert!(h.take(a).is_empty());
    // Anyone may query.
    h.send(out, "MODE #c");
    assert_eq!(h.take(out).len(), 2);
}

// ---------------------------------------------------------------------------------------------
// MODE on users

#[test]
fn user_mode_i_set_cleared_queried_and_501_502() {
    let mut h = harness();
    let a = h.register("alice");
    let _b = h.register("bob");
    h.send(a, "MODE alice");
    assert_eq!(h.take(a), [format!("{S} 221 alice :+")]);
    h.send(a, "MODE alice +i");
    assert_eq!(h.take(a), [format!(":{} MODE alice :+i", mask("alice"))]);
    h.send(a, "MODE alice +i");
    assert!(h.take(a).is_empty(), "no change, no line");
    h.send(a, "MODE alice");
    assert_eq!(h.take(a), [format!("{S} 221 alice :+i")]);
    h.send(a, "LUSERS");
    assert_eq!(
        h.take(a)[0],
        format!("{S} 251 alice :There are 1 users and 1 invisible on 1 servers")
    );
    h.send(a, "MODE alice -i");
    assert_eq!(h.take(a), [format!(":{} MODE alice :-i", mask("alice"))]);
    h.send(a, "MODE alice +x");
    assert_eq!(h.take(a), [format!("{S} 501 alice :Unknown MODE flag")]);
    h.send(a, "MODE alice +xi");
    assert_eq!(
        h.take(a),
        [
            format!("{S} 501 alice :Unknown MODE flag"),
            format!(":{} MODE alice :+i", mask("alice")),
        ]
    );
    h.send(a, "MODE bob +i");
    assert_eq!(
        h.take(a),
        [format!("{S} 502 alice :Cant change mode for other users")]
    );
    h.send(a, "MODE ghost +i");
    assert_eq!(
        h.take(a),
        [format!("{S} 401 alice ghost :No such nick/channel")]
    );
    // +o cannot be taken by MODE.
    h.send(a, "MODE alice +o");
    assert!(h.take(a).is_empty());
    h.send(a, "MODE alice");
    assert_eq!(h.take(a), [format!("{S} 221 alice :+i")]);
}

#[test]
fn user_mode_minus_o_drops_operator_status() {
    let mut h = Harness::new(with_operator("pw"));
    let a = h.register("alice");
    h.send(a, "OPER admin pw");
    h.run_offloaded();
    h.take(a);
    h.send(a, "MODE alice");
    assert_eq!(h.take(a), [format!("{S} 221 alice :+o")]);
    h.send(a, "MODE alice -o");
    assert_eq!(h.take(a), [format!(":{} MODE alice :-o", mask("alice"))]);
    h.send(a, "STATS e");
    assert_eq!(
        h.take(a),
        [format!(
            "{S} 481 alice :Permission Denied- You're not an IRC operator"
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// OPER

#[test]
fn oper_replies_and_try_again_while_a_check_is_pending() {
    let mut h = Harness::new(with_operator("pw"));
    let a = h.register("alice");
    let b = h.register("bob");
    let c = h.register("carol");
    h.send(a, "OPER nobody pw");
    assert_eq!(
        h.take(a),
        [format!("{S} 491 alice :No O-lines for your host")]
    );
    h.send(a, "OPER admin");
    assert_eq!(
        h.take(a),
        [format!("{S} 461 alice OPER :Not enough parameters")]
    );
    // Two checks may run at once; the third asker is told to try again.
    h.send(a, "OPER admin wrong");
    h.send(b, "OPER admin pw");
    h.send(c, "OPER admin pw");
    assert_eq!(h.offloaded(), 2);
    assert_eq!(
        h.take(c),
        [format!(
            "{S} 263 carol OPER :Please wait a while and try again."
        )]
    );
    assert_eq!(h.run_offloaded(), 2);
    assert_eq!(h.take(a), [format!("{S} 464 alice :Password incorrect")]);
    assert_eq!(
        h.take(b),
        [
            format!("{S} 381 bob :You are now an IRC operator"),
            format!(":{} MODE bob :+o", mask("bob")),
        ]
    );
    // Once the checks are done, carol may try again.
    h.send(c, "OPER admin pw");
    assert_eq!(h.run_offloaded(), 1);
    assert_eq!(
        h.take(c)[0],
        format!("{S} 381 carol :You are now an IRC operator")
    );
    h.send(b, "WHOIS carol");
    assert!(h.take(b).iter().any(|l| l.contains(" 313 bob carol ")));
    h.send(a, "LUSERS");
    assert!(h
        .take(a)
        .contains(&format!("{S} 252 alice 2 :operator(s) online")));
}

/// The offload control shows the moment in between: bob is served while alice's check waits,
/// and alice's 381 has not arrived when bob's PONGs have.
#[test]
fn oper_check_pending_does_not_hold_back_other_clients() {
    let mut h = Harness::new(with_operator("pw"));
    let a = h.register("alice");
    let b = h.register("bob");
    h.send(a, "OPER admin pw");
    for i in 0..5 {
        h.send(b, &format!("PING bob-{i}"));
        assert_eq!(h.take(b), [format!("{S} PONG chatnode.local :bob-{i}")]);
    }
    assert!(h.take(a).is_empty(), "alice's 381 waits for the check");
    assert_eq!(h.offloaded(), 1);
    h.run_offloaded();
    assert_eq!(
        h.take(a)[0],
        format!("{S} 381 alice :You are now an IRC operator")
    );
}

// ---------------------------------------------------------------------------------------------
// USERHOST, ISON, VERSION, LUSERS, MOTD

#[test]
fn userhost_marks_opers_and_away_and_skips_unknown_nicks() {
    let mut h = Harness::new(with_operator("pw"));
    let a = h.register("alice");
    let b = h.register("bob");
    h.send(b, "OPER admin pw");
    h.run_offloaded();
    h.send(b, "AWAY :lunch");
    h.take(b);
    h.send(a, "USERHOST alice bob ghost");
    assert_eq!(
        h.take(a),
        [format!(
            "{S} 302 alice :alice=+alice@127.0.0.1 bob*=-bob@127.0.0.1"
        )]
    );
    h.send(a, "USERHOST ghost");
    assert_eq!(h.take(a), [format!("{S} 302 alice :")]);
    // At most five nicks are answered.
    h.send(a, "USERHOST alice alice alice alice alice alice");
    let line = &h.take(a)[0];
    assert_eq!(line.matches("alice=").count(), 5, "{line}");
    h.send(a, "USERHOST");
    assert_eq!(
        h.take(a),
        [format!("{S} 461 alice USERHOST :Not enough parameters")]
    );
}

#[test]
fn ison_answers_the_online_nicks_in_their_own_case() {
    let mut h = harness();
    let a = h.register("alice");
    let _b = h.register("Bob");
    let half = h.connect();
    h.send(half, "NICK halfway");
    h.send(a, "ISON bob ghost ALICE halfway");
    assert_eq!(h.take(a), [format!("{S} 303 alice :Bob alice")]);
    h.send(a, "ISON :bob ghost");
    assert_eq!(h.take(a), [format!("{S} 303 alice :Bob")]);
    h.send(a, "ISON ghost");
    assert_eq!(h.take(a), [format!("{S} 303 alice :")]);
    h.send(a, "ISON");
    assert_eq!(
        h.take(a),
        [format!("{S} 461 alice ISON :Not enough parameters")]
    );
}

#[test]
fn version_answers_351_then_isupport() {
    let mut h = harness();
    let a = h.register("alice");
    h.send(a, "VERSION");
    let lines = h.take(a);
    assert_eq!(lines.len(), 3, "351 and two 005 lines: {lines:?}");
    assert_eq!(
        lines[0],
        format!(
            "{S} 351 alice {} chatnode.local :chatnode IRC node",
            chatnode::broker::VERSION
        )
    );
    assert!(lines[1].starts_with(&format!("{S} 005 alice CASEMAPPING=rfc1459 ")));
}

#[test]
fn lusers_counts_users_unknown_channels_and_max() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#one", "#two"]);
    let b = h.register("bob");
    let _half = h.connect();
    h.send(b, "QUIT");
    h.take(a);
    h.send(a, "LUSERS");
    assert_eq!(
        h.take(a),
        [
            format!("{S} 251 alice :There are 1 users and 0 invisible on 1 servers"),
            format!("{S} 253 alice 1 :unknown connection(s)"),
            format!("{S} 254 alice 2 :channels formed"),
            format!("{S} 255 alice :I have 1 clients and 0 servers"),
            format!("{S} 265 alice 1 2 :Current local users 1, max 2"),
            format!("{S} 266 alice 1 2 :Current global users 1, max 2"),
        ]
    );
}

#[test]
fn motd_as_a_command_with_and_without_a_file() {
    let mut h = harness();
    let a = h.register("alice");
    h.send(a, "MOTD");
    assert_eq!(h.take(a), [format!("{S} 422 alice :MOTD File is missing")]);
    let mut h = Harness::new(BrokerConfig {
        motd: Some(vec!["first".into(), "second".into()]),
        ..BrokerConfig::default()
    });
    let a = h.register("alice");
    h.send(a, "MOTD");
    assert_eq!(
        h.take(a),
        [
            format!("{S} 375 alice :- chatnode.local Message of the day - "),
            format!("{S} 372 alice :- first"),
            format!("{S} 372 alice :- second"),
            format!("{S} 376 alice :End of /MOTD command."),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// ISUPPORT: every token advertised, and enforced

fn isupport(h: &mut Harness, id: ClientId) -> Vec<String> {
    h.send(id, "VERSION");
    let lines = h.take(id);
    let isupport: Vec<&String> = lines.iter().filter(|l| l.contains(" 005 ")).collect();
    assert!(!isupport.is_empty(), "no 005 in {lines:?}");
    let mut tokens = Vec::new();
    for line in isupport {
        let body = line.split(" 005 ").nth(1).unwrap();
        let body = body.split(" :").next().unwrap();
        tokens.extend(body.split(' ').skip(1).map(str::to_string));
    }
    tokens
}

#[test]
fn isupport_advertises_every_limit_from_the_config() {
    let limits = Limits {
        nick_len: 9,
        channel_len: 10,
        topic_len: 11,
        away_len: 12,
        user_len: 5,
        channels_per_client: 2,
        max_targets: 3,
        realname_len: 20,
    };
    let mut h = Harness::new(BrokerConfig {
        limits,
        network: "testnet".into(),
        ..BrokerConfig::default()
    });
    let a = h.register("alice");
    assert_eq!(
        isupport(&mut h, a),
        [
            "CASEMAPPING=rfc1459",
            "CHANTYPES=#",
            "CHANNELLEN=10",
            "NICKLEN=9",
            "TOPICLEN=11",
            "AWAYLEN=12",
            "USERLEN=5",
            "PREFIX=(ov)@+",
            "CHANMODES=beI,k,l,imnst",
            "EXCEPTS=e",
            "INVEX=I",
            "MAXLIST=beI:100",
            "MODES=4",
            "KEYLEN=23",
            "KICKLEN=11",
            "CHANLIMIT=#:2",
            "MAXTARGETS=3",
            "TARGMAX=JOIN:,KICK:3,NAMES:,NOTICE:3,PART:,PRIVMSG:3,TAGMSG:3",
            "NAMELEN=20",
            "NETWORK=testnet",
            "ELIST=CMNTU",
            "WHOX",
        ]
    );
}

fn small_limits() -> Harness {
    Harness::new(BrokerConfig {
        limits: Limits {
            nick_len: 9,
            channel_len: 10,
            topic_len: 11,
            away_len: 12,
            user_len: 5,
            channels_per_client: 2,
            max_targets: 3,
            realname_len: 20,
        },
        ..BrokerConfig::default()
    })
}

#[test]
fn nicklen_is_enforced_at_the_limit() {
    let mut h = small_limits();
    let a = h.register("alice");
    h.send(a, "NICK ninechars");
    assert_eq!(h.take(a), [format!(":{} NICK :ninechars", mask("alice"))]);
    h.send(a, "NICK tencharsxx");
    assert_eq!(
        h.take(a),
        [format!("{S} 432 ninechars tencharsxx :Erroneus nickname")]
    );
}

#[test]
fn channellen_is_enforced_at_the_limit() {
    let mut h = small_limits();
    let a = h.register("alice");
    h.send(a, "JOIN #123456789");
    assert!(h.take(a)[0].ends_with(" JOIN #123456789"));
    h.send(a, "JOIN #1234567890");
    assert_eq!(
        h.take(a),
        [format!("{S} 403 alice #1234567890 :No such channel")]
    );
}

#[test]
fn topiclen_cuts_the_topic_at_the_limit() {
    let mut h = small_limits();
    let a = member(&mut h, "alice", &["#c"]);
    h.take(a);
    h.send(a, "TOPIC #c :0123456789abcdef");
    assert_eq!(
        h.take(a),
        [format!(":{} TOPIC #c :0123456789a", mask("alice"))]
    );
    // Cut on a character boundary: 10 ASCII bytes, then a 2-byte letter that does not fit.
    h.send(a, "TOPIC #c :0123456789é");
    assert_eq!(
        h.take(a),
        [format!(":{} TOPIC #c :0123456789", mask("alice"))]
    );
}

#[test]
fn awaylen_cuts_the_away_text_at_the_limit() {
    let mut h = small_limits();
    let a = h.register("alice");
    let b = h.register("bob");
    h.send(a, "AWAY :0123456789abcdef");
    assert_eq!(
        h.take(a),
        [format!("{S} 306 alice :You have been marked as being away")]
    );
    h.send(b, "PRIVMSG alice :hi");
    assert_eq!(h.take(b), [format!("{S} 301 bob alice :0123456789ab")]);
    h.take(a);
    h.send(a, "AWAY");
    assert_eq!(
        h.take(a),
        [format!(
            "{S} 305 alice :You are no longer marked as being away"
        )]
    );
    h.take(a);
    h.send(b, "PRIVMSG alice :hi again");
    assert!(h.take(b).is_empty(), "no 301 once back");
}

#[test]
fn userlen_cuts_the_username_and_drops_bad_characters() {
    let mut h = small_limits();
    let a = h.connect();
    h.send(a, "NICK alice");
    h.send(a, "USER a!b@cdefghij 0 * :Alice");
    let burst = h.take(a);
    assert_eq!(
        burst[0],
        format!("{S} 001 alice :Welcome to the chatnode IRC Network alice!abcde@127.0.0.1")
    );
    let b = h.connect();
    h.send(b, "NICK bob");
    h.send(b, "USER @! 0 * :Bob");
    assert_eq!(
        h.take(b),
        [format!("{S} 461 bob USER :Not enough parameters")]
    );
}

#[test]
fn chanlimit_is_enforced_at_the_limit() {
    let mut h = small_limits();
    let a = member(&mut h, "alice", &["#a", "#b"]);
    h.take(a);
    h.send(a, "JOIN #c");
    assert_eq!(
        h.take(a),
        [format!(
            "{S} 405 alice #c :You have joined too many channels"
        )]
    );
    // Joining a channel one is in already does not count.
    h.send(a, "JOIN #a");
    assert!(h.take(a).is_empty());
    h.send(a, "PART #b");
    h.take(a);
    h.send(a, "JOIN #c");
    assert!(h.take(a)[0].ends_with(" JOIN #c"));
}

#[test]
fn maxtargets_is_enforced_at_the_limit() {
    let mut h = small_limits();
    let a = h.register("alice");
    let ids: Vec<ClientId> = ["b1", "b2", "b3", "b4"]
        .iter()
        .map(|n| h.register(n))
        .collect();
    h.send(a, "PRIVMSG b1,b2,b3 :three");
    for &id in &ids[..3] {
        assert_eq!(h.take(id).len(), 1);
    }
    assert!(h.take(a).is_empty());
    h.send(a, "PRIVMSG b1,b2,b3,b4 :four");
    assert_eq!(
        h.take(a),
        [format!("{S} 407 alice b4 :Too many recipients")]
    );
    for &id in &ids[..3] {
        assert_eq!(h.take(id).len(), 1);
    }
    assert!(h.take(ids[3]).is_empty(), "the fourth target gets nothing");
    h.send(a, "NOTICE b1,b2,b3,b4 :four");
    assert!(h.take(a).is_empty(), "NOTICE never gets an error");
    assert!(h.take(ids[3]).is_empty());
}

// ---------------------------------------------------------------------------------------------
// PRIVMSG, PART, TOPIC, channel life

#[test]
fn privmsg_to_several_targets_reaches_each_once() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let b = member(&mut h, "bob", &["#c"]);
    let c = h.register("carol");
    clear(&mut h, &[a, b, c]);
    h.send(a, "PRIVMSG #c,carol,ghost :to all");
    assert_eq!(
        h.take(b),
        [format!(":{} PRIVMSG #c :to all", mask("alice"))]
    );
    assert_eq!(
        h.take(c),
        [format!(":{} PRIVMSG carol :to all", mask("alice"))]
    );
    assert_eq!(
        h.take(a),
        [format!("{S} 401 alice ghost :No such nick/channel")]
    );
    h.send(a, "PRIVMSG ,bob, :commas");
    assert_eq!(
        h.take(b),
        [format!(":{} PRIVMSG bob :commas", mask("alice"))]
    );
    assert!(h.take(a).is_empty());
    h.send(a, "PRIVMSG #nowhere :x");
    assert_eq!(
        h.take(a),
        [format!("{S} 403 alice #nowhere :No such channel")]
    );
    h.send(a, "PRIVMSG");
    assert_eq!(h.take(a), [format!("{S} 411 alice :No recipient given")]);
    h.send(a, "PRIVMSG bob");
    assert_eq!(h.take(a), [format!("{S} 412 alice :No text to send")]);
    h.send(a, "PRIVMSG bob :");
    assert_eq!(h.take(a), [format!("{S} 412 alice :No text to send")]);
}

#[test]
fn privmsg_to_an_unregistered_nick_is_401() {
    let mut h = harness();
    let a = h.register("alice");
    let half = h.connect();
    h.send(half, "NICK halfway");
    h.send(a, "PRIVMSG halfway :hello?");
    assert_eq!(
        h.take(a),
        [format!("{S} 401 alice halfway :No such nick/channel")]
    );
    assert!(h.take(half).is_empty());
}

#[test]
fn part_several_channels_with_a_reason() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#a", "#b", "#c"]);
    let b = member(&mut h, "bob", &["#a", "#b"]);
    clear(&mut h, &[a, b]);
    h.send(a, "PART #a,#b,#nowhere,#c :see you");
    let m = mask("alice");
    assert_eq!(
        h.take(a),
        [
            format!(":{m} PART #a :see you"),
            format!(":{m} PART #b :see you"),
            format!("{S} 403 alice #nowhere :No such channel"),
            format!(":{m} PART #c :see you"),
        ]
    );
    assert_eq!(
        h.take(b),
        [
            format!(":{m} PART #a :see you"),
            format!(":{m} PART #b :see you")
        ]
    );
    h.send(a, "PART #a");
    assert_eq!(
        h.take(a),
        [format!("{S} 442 alice #a :You're not on that channel")]
    );
    h.send(b, "PART #b");
    assert_eq!(h.take(b), [format!(":{} PART #b", mask("bob"))]);
    h.send(a, "WHOIS alice");
    assert!(
        !h.take(a).iter().any(|l| l.contains(" 319 ")),
        "in no channel"
    );
}

#[test]
fn join_zero_leaves_every_channel() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#a", "#b"]);
    h.take(a);
    h.send(a, "JOIN 0");
    let mut lines = h.take(a);
    lines.sort();
    let m = mask("alice");
    assert_eq!(lines, [format!(":{m} PART #a"), format!(":{m} PART #b")]);
}

#[test]
fn clearing_a_topic_with_an_empty_text() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let b = member(&mut h, "bob", &["#c"]);
    h.send(a, "TOPIC #c :something");
    clear(&mut h, &[a, b]);
    h.send(a, "TOPIC #c :");
    let line = format!(":{} TOPIC #c :", mask("alice"));
    assert_eq!(h.take(a), std::slice::from_ref(&line));
    assert_eq!(h.take(b), [line]);
    h.send(b, "TOPIC #c");
    assert_eq!(h.take(b), [format!("{S} 331 bob #c :No topic is set")]);
    h.send(a, "LIST #c");
    assert_eq!(h.take(a)[1], format!("{S} 322 alice #c 2 :"));
    // A new joiner gets no 332 either.
    let c = h.register("carol");
    h.send(c, "JOIN #c");
    assert!(!h.take(c).iter().any(|l| l.contains(" 332 ")));
}

#[test]
fn topic_set_is_shown_with_who_and_when() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    h.send(a, "TOPIC #c :hello world");
    h.take(a);
    h.send(a, "TOPIC #c");
    let lines = h.take(a);
    assert_eq!(lines[0], format!("{S} 332 alice #c :hello world"));
    assert!(
        lines[1].starts_with(&format!("{S} 333 alice #c alice ")),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 2);
    let out = h.register("outsider");
    h.send(out, "TOPIC #c");
    assert_eq!(
        h.take(out),
        [format!("{S} 442 outsider #c :You're not on that channel")]
    );
    h.send(out, "TOPIC #nowhere");
    assert_eq!(
        h.take(out),
        [format!("{S} 403 outsider #nowhere :No such channel")]
    );
}

#[test]
fn an_emptied_channel_is_destroyed_and_the_next_joiner_is_op() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let b = member(&mut h, "bob", &["#c"]);
    h.send(a, "TOPIC #c :old topic");
    h.send(a, "MODE #c -n");
    h.send(a, "PART #c");
    h.send(b, "QUIT");
    h.take(a);
    h.send(a, "LIST");
    assert_eq!(
        h.take(a),
        [
            format!("{S} 321 alice Channel :Users  Name"),
            format!("{S} 323 alice :End of /LIST"),
        ]
    );
    let c = h.register("carol");
    h.send(c, "JOIN #C");
    assert_eq!(
        h.take(c),
        [
            format!(":{} JOIN #C", mask("carol")),
            format!("{S} 353 carol = #C :@carol"),
            format!("{S} 366 carol #C :End of /NAMES list"),
        ],
        "a new channel: no old topic, carol is its operator, its name as carol spelled it"
    );
    h.send(c, "MODE #c");
    assert_eq!(
        h.take(c)[0],
        format!("{S} 324 carol #C :+nt"),
        "modes reset"
    );
}

#[test]
fn rfc1459_special_characters_fold_in_channel_names_and_nicks() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#a[b]c\\d~"]);
    let b = h.register("bob");
    h.take(a);
    h.send(b, "JOIN #A{B}C|D^");
    let lines = h.take(b);
    assert_eq!(
        lines[0],
        format!(":{} JOIN #a[b]c\\d~", mask("bob")),
        "{lines:?}"
    );
    assert_eq!(h.take(a), [format!(":{} JOIN #a[b]c\\d~", mask("bob"))]);
    h.send(b, "PRIVMSG #a{b}c|d^ :same channel");
    assert_eq!(
        h.take(a),
        [format!(":{} PRIVMSG #a[b]c\\d~ :same channel", mask("bob"))]
    );
    // Nicks fold the same way.
    let n = h.register("x[y]");
    h.send(b, "PRIVMSG X{Y} :hi");
    assert_eq!(h.take(n), [format!(":{} PRIVMSG x[y] :hi", mask("bob"))]);
    let dup = h.connect();
    h.send(dup, "NICK x{y}");
    assert_eq!(
        h.take(dup),
        [format!("{S} 433 * x{{y}} :Nickname is already in use")]
    );
}

// ---------------------------------------------------------------------------------------------
// WHO

#[test]
fn who_flags_here_gone_and_prefixes() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let b = member(&mut h, "bob", &["#c"]);
    h.send(a, "MODE #c +v bob");
    h.send(b, "AWAY :out");
    clear(&mut h, &[a, b]);
    h.send(a, "WHO #c");
    let mut lines = h.take(a);
    let end = lines.pop().unwrap();
    assert_eq!(end, format!("{S} 315 alice #c :End of WHO list"));
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("{S} 352 alice #c alice 127.0.0.1 chatnode.local alice H@ :0 alice"),
            format!("{S} 352 alice #c bob 127.0.0.1 chatnode.local bob G+ :0 bob"),
        ]
    );
    h.send(b, "AWAY");
    h.send(a, "WHO bob");
    assert_eq!(
        h.take(a),
        [
            format!("{S} 352 alice * bob 127.0.0.1 chatnode.local bob H :0 bob"),
            format!("{S} 315 alice bob :End of WHO list"),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Registration odds and ends

#[test]
fn a_leading_digit_in_a_nick_is_432() {
    // RFC 2812 forbids a leading digit; the Modern docs allow it but advise against it. We keep
    // the RFC rule: every client accepts such nicks, while a nick like `1abc` would be taken for
    // a numeric-looking token by some old clients and bots (see casemap::is_valid_nick).
    let mut h = harness();
    let a = h.connect();
    h.send(a, "NICK 1abc");
    assert_eq!(h.take(a), [format!("{S} 432 * 1abc :Erroneus nickname")]);
    h.send(a, "NICK -abc");
    assert_eq!(h.take(a), [format!("{S} 432 * -abc :Erroneus nickname")]);
    h.send(a, "NICK a1-b");
    h.send(a, "USER a 0 * :A");
    assert!(h.take(a)[0].contains(" 001 a1-b "));
}

#[test]
fn unknown_and_unregistered_commands() {
    let mut h = harness();
    let early = h.connect();
    h.send(early, "JOIN #c");
    assert_eq!(
        h.take(early),
        [format!("{S} 451 * :You have not registered")]
    );
    h.send(early, "FOO");
    assert_eq!(
        h.take(early),
        [format!("{S} 451 * :You have not registered")]
    );
    let a = h.register("alice");
    h.send(a, "FOO bar");
    assert_eq!(h.take(a), [format!("{S} 421 alice FOO :Unknown command")]);
    h.send(a, "USER x 0 * :x");
    assert_eq!(
        h.take(a),
        [format!("{S} 462 alice :You may not reregister")]
    );
    h.send(a, "PASS x");
    assert_eq!(
        h.take(a),
        [format!("{S} 462 alice :You may not reregister")]
    );
    // A second USER before NICK is refused too; the first one stands.
    let b = h.connect();
    h.send(b, "USER first 0 * :First");
    h.send(b, "USER second 0 * :Second");
    assert_eq!(h.take(b), [format!("{S} 462 * :You may not reregister")]);
    h.send(b, "NICK bob");
    assert!(h
        .take(b)
        .iter()
        .any(|l| l.contains(" 001 bob :") && l.contains("bob!first@")));
}

// ---------------------------------------------------------------------------------------------
// Message tags: client tag data up to 4094 bytes accepted (message-tags "Size limit"), one
// byte more is 417; relayed only to clients with message-tags (tests/harness/ircv3.rs)

#[test]
fn tags_up_to_the_limit_are_accepted_one_more_byte_is_417() {
    let mut h = harness_without_flood_control();
    let a = h.register("alice");
    let b = h.register("bob");
    let max = chatnode::proto::tags::MAX_CLIENT_TAG_DATA;
    // Tag data: the bytes between '@' and the space.
    let tags = format!("a={}", "x".repeat(max - 2));
    assert_eq!(tags.len(), max);
    h.send(a, &format!("@{tags} PRIVMSG bob :tagged"));
    assert_eq!(
        h.take(b),
        [format!(":{} PRIVMSG bob :tagged", mask("alice"))]
    );
    assert!(h.take(a).is_empty());
    let tags = format!("a={}", "x".repeat(max - 1));
    h.send(a, &format!("@{tags} PRIVMSG bob :too many tags"));
    assert_eq!(
        h.take(a),
        [format!("{S} 417 alice :Input line was too long")]
    );
    assert!(h.take(b).is_empty());
    // Past the framing bound (8191 with '@' and space) the line never reaches the broker whole.
    let tags = format!("a={}", "x".repeat(chatnode::proto::MAX_TAGS_LEN));
    h.send(a, &format!("@{tags} PRIVMSG bob :way too many"));
    assert_eq!(
        h.take(a),
        [format!("{S} 417 alice :Input line was too long")]
    );
    assert!(h.take(b).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Connection events: silence, registration deadline, disconnects, full queues

use chatnode::broker::Event;

#[test]
fn silence_gets_a_ping_then_a_ping_timeout() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let b = member(&mut h, "bob", &["#c"]);
    clear(&mut h, &[a, b]);
    h.control(Event::Idle { id: a });
    assert_eq!(h.take(a), [format!("{S} PING :chatnode.local")]);
    // Any line from the client counts as an answer.
    h.send(a, "PONG :chatnode.local");
    h.control(Event::Idle { id: a });
    assert_eq!(
        h.take(a),
        [format!("{S} PING :chatnode.local")],
        "a fresh PING, no timeout"
    );
    h.control(Event::Idle { id: a });
    assert!(h.is_closed(a));
    assert_eq!(
        h.take(a),
        ["ERROR :Closing Link: 127.0.0.1 (Ping timeout: 120 seconds)"]
    );
    assert_eq!(
        h.take(b),
        [format!(
            ":{} QUIT :Ping timeout: 120 seconds",
            mask("alice")
        )]
    );
    // An overlong line is an answer too.
    h.control(Event::Idle { id: b });
    h.take(b);
    h.send_raw(b, format!("PRIVMSG #c :{}\r\n", "x".repeat(600)).as_bytes());
    h.control(Event::Idle { id: b });
    assert!(!h.is_closed(b));
}

#[test]
fn idle_before_registration_is_left_to_the_registration_deadline() {
    let mut h = harness();
    let early = h.connect();
    h.send(early, "NICK early");
    h.control(Event::Idle { id: early });
    h.control(Event::Idle { id: early });
    assert!(h.take(early).is_empty());
    assert!(!h.is_closed(early));
    h.control(Event::RegistrationDeadline { id: early });
    assert!(h.is_closed(early));
    assert_eq!(
        h.take(early),
        ["ERROR :Closing Link: 127.0.0.1 (Registration timed out)"]
    );
    // The nick is free again.
    let again = h.register("early");
    // A deadline after registration changes nothing.
    h.control(Event::RegistrationDeadline { id: again });
    assert!(!h.is_closed(again));
    assert!(h.take(again).is_empty());
}

#[test]
fn a_peer_in_two_channels_sees_one_quit_and_one_nick() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#one", "#two"]);
    let b = member(&mut h, "bob", &["#one", "#two"]);
    let c = h.register("carol");
    clear(&mut h, &[a, b, c]);
    h.send(a, "NICK alicia");
    let line = format!(":{} NICK :alicia", mask("alice"));
    assert_eq!(h.take(a), std::slice::from_ref(&line));
    assert_eq!(h.take(b), [line]);
    assert!(h.take(c).is_empty(), "no shared channel");
    // Changing only the case is a change; the same nick is not.
    h.send(a, "NICK alicia");
    assert!(h.take(a).is_empty());
    h.send(a, "NICK Alicia");
    assert_eq!(h.take(b), [":alicia!alice@127.0.0.1 NICK :Alicia"]);
    h.take(a);
    h.hang_up(a, "Connection reset");
    assert_eq!(
        h.take(b),
        [":Alicia!alice@127.0.0.1 QUIT :Connection reset"]
    );
    assert!(h.take(c).is_empty());
    // The old nicks are free.
    let again = h.register("alicia");
    assert!(!h.is_closed(again));
    let again2 = h.register("alice");
    assert!(!h.is_closed(again2));
}

#[test]
fn quit_with_and_without_a_reason() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let b = member(&mut h, "bob", &["#c"]);
    let c = member(&mut h, "carol", &["#c"]);
    clear(&mut h, &[a, b, c]);
    h.send(a, "QUIT :gone fishing");
    assert_eq!(
        h.take(b),
        [format!(":{} QUIT :Quit: gone fishing", mask("alice"))]
    );
    assert_eq!(
        h.take(a),
        ["ERROR :Closing Link: 127.0.0.1 (Quit: gone fishing)"]
    );
    h.take(c);
    h.send(b, "QUIT");
    assert_eq!(h.take(c), [format!(":{} QUIT :Client Quit", mask("bob"))]);
    h.send(c, "NAMES #c");
    assert_eq!(
        h.take(c)[0],
        format!("{S} 353 carol = #c :carol"),
        "no op passed on"
    );
}

#[test]
fn a_full_sendq_drops_only_that_client() {
    use std::net::{Ipv4Addr, SocketAddr};
    let mut h = harness_without_flood_control();
    let a = member(&mut h, "alice", &["#c"]);
    let slow = h.connect_with_sendq(SocketAddr::from((Ipv4Addr::LOCALHOST, 50000)), 2048);
    h.send(slow, "NICK slow");
    h.send(slow, "USER slow 0 * :slow");
    h.send(slow, "JOIN #c");
    h.take(a);
    // The harness empties every queue when the broker settles: queue more than 2 KiB for slow
    // within one settle.
    for i in 0..6 {
        h.queue(a, &format!("PRIVMSG #c :{i:02} {}", "z".repeat(400)));
    }
    h.settle();
    assert!(h.is_closed(slow));
    let seen = h.take(a);
    assert_eq!(
        seen,
        [":slow!slow@127.0.0.1 QUIT :SendQ exceeded"],
        "alice sees slow leave, once"
    );
    assert!(!h.is_closed(a), "alice was dropped too");
    h.send(a, "NAMES #c");
    let names = h.take(a);
    assert_eq!(names[0], format!("{S} 353 alice = #c :@alice"), "{names:?}");
}

// ---------------------------------------------------------------------------------------------
// Registration: CAP, PASS, the welcome burst

#[test]
fn cap_negotiation_holds_registration_until_cap_end() {
    let mut h = harness();
    let a = h.connect();
    h.send(a, "CAP LS 302");
    let ls = h.take(a);
    assert!(
        ls[0].starts_with(&format!("{S} CAP * LS :away-notify ")),
        "{ls:?}"
    );
    h.send(a, "NICK alice");
    h.send(a, "USER alice 0 * :Alice");
    assert!(h.take(a).is_empty(), "registration waits for CAP END");
    h.send(a, "CAP REQ :multi-prefix no-such-cap");
    assert_eq!(
        h.take(a),
        [format!("{S} CAP alice NAK :multi-prefix no-such-cap")]
    );
    h.send(a, "CAP REQ :multi-prefix");
    assert_eq!(h.take(a), [format!("{S} CAP alice ACK :multi-prefix")]);
    h.send(a, "CAP LIST");
    assert_eq!(h.take(a), [format!("{S} CAP alice LIST :multi-prefix")]);
    h.send(a, "CAP BOGUS");
    assert_eq!(
        h.take(a),
        [format!("{S} 410 alice BOGUS :Invalid CAP command")]
    );
    h.send(a, "CAP END");
    assert!(h.take(a)[0].contains(" 001 alice "));
    // After registration, CAP LS does not hold anything.
    h.send(a, "CAP LS");
    assert!(h.take(a)[0].starts_with(&format!("{S} CAP alice LS :")));
    h.send(a, "PING x");
    assert_eq!(h.take(a).len(), 1);
}

#[test]
fn server_password_is_checked_at_registration() {
    let config = || BrokerConfig {
        password: Some("letmein".into()),
        ..BrokerConfig::default()
    };
    let mut h = Harness::new(config());
    let good = h.connect();
    h.send(good, "PASS letmein");
    h.send(good, "NICK good");
    h.send(good, "USER good 0 * :Good");
    assert!(h.take(good)[0].contains(" 001 good "));
    h.send(good, "PASS again");
    assert_eq!(
        h.take(good),
        [format!("{S} 462 good :You may not reregister")]
    );
    let bad = h.connect();
    h.send(bad, "PASS wrong");
    h.send(bad, "NICK bad");
    h.send(bad, "USER bad 0 * :Bad");
    assert!(h.is_closed(bad));
    assert_eq!(
        h.take(bad),
        [
            format!("{S} 464 bad :Password incorrect"),
            "ERROR :Closing Link: 127.0.0.1 (Bad password)".to_string(),
        ]
    );
    let none = h.connect();
    h.send(none, "NICK none");
    h.send(none, "USER none 0 * :None");
    assert!(h.is_closed(none));
    // The refused nicks are free.
    let mut h2 = Harness::new(config());
    let c = h2.connect();
    h2.send(c, "NICK bad");
    assert!(h2.take(c).is_empty());
}

#[test]
fn welcome_burst_line_by_line() {
    let mut h = Harness::new(BrokerConfig {
        network: "testnet".into(),
        ..BrokerConfig::default()
    });
    let other = h.register("other");
    let a = h.connect();
    h.send(a, "USER alice 0 * :Alice Liddell");
    assert!(h.take(a).is_empty(), "USER alone does not register");
    h.send(a, "NICK alice");
    let burst = h.take(a);
    let codes: Vec<&str> = burst.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(
        codes,
        ["001", "002", "003", "004", "005", "005", "251", "254", "255", "265", "266", "422"],
        "{burst:#?}"
    );
    assert_eq!(
        burst[0],
        format!("{S} 001 alice :Welcome to the testnet IRC Network alice!alice@127.0.0.1")
    );
    assert_eq!(
        burst[1],
        format!(
            "{S} 002 alice :Your host is chatnode.local, running version {}",
            chatnode::broker::VERSION
        )
    );
    assert!(burst[2].starts_with(&format!("{S} 003 alice :This server was created ")));
    assert!(
        burst[3].starts_with(&format!(
            "{S} 004 alice chatnode.local {} ",
            chatnode::broker::VERSION
        )),
        "{}",
        burst[3]
    );
    assert_eq!(
        burst[6],
        format!("{S} 251 alice :There are 2 users and 0 invisible on 1 servers")
    );
    h.send(other, "WHOIS alice");
    let whois = h.take(other);
    assert_eq!(
        whois[0],
        format!("{S} 311 other alice alice 127.0.0.1 * :Alice Liddell")
    );
}

// ---------------------------------------------------------------------------------------------
// Queries: WHOIS, NAMES, LIST, STATS

#[test]
fn whois_line_by_line() {
    let mut h = Harness::new(with_operator("pw"));
    let a = member(&mut h, "alice", &["#a", "#b"]);
    let b = member(&mut h, "bob", &["#a"]);
    h.send(a, "OPER admin pw");
    h.run_offloaded();
    h.send(a, "AWAY :brb");
    clear(&mut h, &[a, b]);
    h.send(b, "WHOIS ALICE");
    let lines = h.take(b);
    let codes: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(
        codes,
        ["311", "319", "312", "313", "301", "317", "318"],
        "{lines:#?}"
    );
    assert_eq!(
        lines[0],
        format!("{S} 311 bob alice alice 127.0.0.1 * :alice")
    );
    let mut chans: Vec<&str> = lines[1].rsplit(':').next().unwrap().split(' ').collect();
    chans.sort();
    assert_eq!(chans, ["@#a", "@#b"]);
    assert_eq!(
        lines[2],
        format!(
            "{S} 312 bob alice chatnode.local :{}",
            chatnode::broker::VERSION
        )
    );
    assert_eq!(lines[3], format!("{S} 313 bob alice :is an IRC operator"));
    assert_eq!(lines[4], format!("{S} 301 bob alice :brb"));
    assert!(
        lines[5].starts_with(&format!("{S} 317 bob alice 0 ")),
        "{}",
        lines[5]
    );
    assert_eq!(lines[6], format!("{S} 318 bob alice :End of /WHOIS list"));
    // A plain user: no 319, 313 or 301.
    h.send(a, "WHOIS bob");
    let codes: Vec<String> = h
        .take(a)
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(codes, ["311", "319", "312", "317", "318"]);
    h.send(b, "WHOIS ghost");
    assert_eq!(
        h.take(b),
        [
            format!("{S} 401 bob ghost :No such nick/channel"),
            format!("{S} 318 bob ghost :End of /WHOIS list"),
        ]
    );
    h.send(b, "WHOIS");
    assert_eq!(h.take(b), [format!("{S} 431 bob :No nickname given")]);
}

#[test]
fn names_lists_every_channel_or_one_and_splits_long_lists() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#a"]);
    let _b = member(&mut h, "bob", &["#b"]);
    h.take(a);
    h.send(a, "NAMES");
    let mut lines = h.take(a);
    assert_eq!(
        lines.pop().unwrap(),
        format!("{S} 366 alice * :End of /NAMES list")
    );
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("{S} 353 alice = #a :@alice"),
            format!("{S} 353 alice = #b :@bob"),
        ]
    );
    h.send(a, "NAMES #B");
    assert_eq!(
        h.take(a).last().unwrap(),
        &format!("{S} 366 alice #b :End of /NAMES list"),
        "one channel: its own name"
    );
    h.send(a, "NAMES #nowhere,#B");
    assert_eq!(
        h.take(a),
        [
            format!("{S} 353 alice = #b :@bob"),
            format!("{S} 366 alice #nowhere,#B :End of /NAMES list"),
        ]
    );
    // 60 members of 25-byte nicks: more than one 353, each within 400 bytes of names.
    let mut h = harness();
    let first = member(&mut h, "n00_aaaaaaaaaaaaaaaaaaaaa", &["#big"]);
    for i in 1..60 {
        member(&mut h, &format!("n{i:02}_aaaaaaaaaaaaaaaaaaaaa"), &["#big"]);
    }
    h.take(first);
    h.send(first, "NAMES #big");
    let lines = h.take(first);
    let names: Vec<&String> = lines.iter().filter(|l| l.contains(" 353 ")).collect();
    assert!(names.len() >= 4, "{} lines", names.len());
    let mut all = 0;
    for l in &names {
        let list = l.rsplit(" :").next().unwrap();
        assert!(list.len() <= 400, "{} bytes", list.len());
        all += list.split(' ').count();
    }
    assert_eq!(all, 60);
    // A line takes every nick that fits. The rule keeps a byte for a prefix, so with no
    // prefixes 100 nicks of 3 bytes (399 bytes) fill a line, the 100th exactly at the bound.
    let mut h = harness();
    let first = member(&mut h, "a00", &["#full"]);
    for i in 1..200 {
        let nick = format!("{}{:02}", char::from(b'a' + (i / 100) as u8), i % 100);
        member(&mut h, &nick, &["#full"]);
    }
    h.send(first, "MODE #full -o a00");
    h.take(first);
    h.send(first, "NAMES #full");
    let per_line: Vec<usize> = h
        .take(first)
        .iter()
        .filter(|l| l.contains(" 353 "))
        .map(|l| l.rsplit(" :").next().unwrap().split(' ').count())
        .collect();
    assert_eq!(per_line, [100, 100]);
}

#[test]
fn list_shows_channels_sorted_with_counts_and_topics() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#b", "#a"]);
    let _b = member(&mut h, "bob", &["#a"]);
    h.send(a, "TOPIC #a :the a topic");
    h.take(a);
    h.send(a, "LIST");
    assert_eq!(
        h.take(a),
        [
            format!("{S} 321 alice Channel :Users  Name"),
            format!("{S} 322 alice #a 2 :the a topic"),
            format!("{S} 322 alice #b 1 :"),
            format!("{S} 323 alice :End of /LIST"),
        ]
    );
    h.send(a, "LIST #B,#nowhere");
    assert_eq!(
        h.take(a),
        [
            format!("{S} 321 alice Channel :Users  Name"),
            format!("{S} 322 alice #b 1 :"),
            format!("{S} 323 alice :End of /LIST"),
        ]
    );
}

#[test]
fn stats_e_counts_clients_and_channels() {
    let mut h = Harness::new(with_operator("pw"));
    let a = member(&mut h, "alice", &["#a", "#b"]);
    let _half = h.connect();
    h.send(a, "OPER admin pw");
    h.run_offloaded();
    h.take(a);
    h.send(a, "STATS e");
    assert_eq!(
        h.take(a),
        [
            format!(
                "{S} 249 alice :broker: 2 clients (1 registered), 2 channels, 0 clients waiting for a turn"
            ),
            format!("{S} 219 alice e :End of /STATS report"),
        ]
    );
    h.send(a, "STATS x");
    assert_eq!(
        h.take(a),
        [format!("{S} 219 alice x :End of /STATS report")]
    );
}

// ---------------------------------------------------------------------------------------------
// Channel flags +i, +m, +s (moderation), and small pieces the mutation run found unpinned

#[test]
fn channel_flags_i_m_s_each_do_their_one_thing() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#c"]);
    let b = h.register("bob");
    clear(&mut h, &[a]);
    h.send(a, "MODE #c +i");
    assert_eq!(h.take(a), [format!(":{} MODE #c +i", mask("alice"))]);
    h.send(b, "JOIN #c");
    let lines = h.take(b);
    assert!(
        lines.len() == 1 && lines[0].contains(" 473 bob #c "),
        "+i keeps bob out: {lines:?}"
    );
    h.send(a, "MODE #c -i");
    h.take(a);
    h.send(b, "JOIN #c");
    assert!(h.take(b)[0].ends_with(" JOIN #c"));
    h.take(a);
    h.send(a, "MODE #c +m");
    assert_eq!(h.take(a), [format!(":{} MODE #c +m", mask("alice"))]);
    h.take(b);
    h.send(b, "PRIVMSG #c :may I?");
    let lines = h.take(b);
    assert!(
        lines.len() == 1 && lines[0].contains(" 404 bob #c "),
        "+m silences bob: {lines:?}"
    );
    assert!(h.take(a).is_empty());
    h.send(a, "MODE #c +v bob");
    h.take(a);
    h.take(b);
    h.send(b, "PRIVMSG #c :now I may");
    assert_eq!(
        h.take(a),
        [format!(":{} PRIVMSG #c :now I may", mask("bob"))]
    );
    let c = h.register("carol");
    h.send(c, "LIST");
    assert_eq!(h.take(c).len(), 3, "#c is listed");
    h.send(a, "MODE #c +s");
    assert_eq!(h.take(a), [format!(":{} MODE #c +s", mask("alice"))]);
    h.send(c, "LIST");
    assert_eq!(
        h.take(c).len(),
        2,
        "a secret channel is not listed to outsiders"
    );
}

#[test]
fn hooks_debug_says_which_hooks_are_set() {
    let hooks = BrokerConfig::default().hooks;
    let text = format!("{hooks:?}");
    assert!(
        text.starts_with("Hooks { offload: false, stats: false"),
        "{text}"
    );
}

#[test]
fn send_blocking_reports_whether_the_broker_is_there() {
    let (inbox, receiver) = chatnode::broker::inbox::open();
    assert!(inbox.send_blocking(Event::Shutdown));
    drop(receiver);
    assert!(!inbox.send_blocking(Event::Shutdown));
}

#[test]
fn quit_with_an_empty_reason_is_a_plain_client_quit() {
    let mut h = harness();
    let a = member(&mut h, "alice", &["#q"]);
    let b = member(&mut h, "bob", &["#q"]);
    clear(&mut h, &[a, b]);
    h.send(a, "QUIT :");
    assert_eq!(h.take(b), [format!(":{} QUIT :Client Quit", mask("alice"))]);
}
