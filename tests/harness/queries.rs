//! The query commands: WHOWAS, WHO (masks, `o`, WHOX), TIME, INFO, ADMIN, LINKS, HELP,
//! USERS, LIST with ELIST filters.

use chatnode::broker::harness::Harness;
use chatnode::broker::{AdminInfo, BrokerConfig};

use super::register_with_caps;

fn harness() -> Harness {
    Harness::new(BrokerConfig::default())
}

/// The numeric code of each line.
fn codes(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap_or(""))
        .collect()
}

#[test]
fn whowas_remembers_quits_and_nick_changes_newest_first() {
    let mut h = harness();
    let asker = h.register("asker");
    let gone = h.register("gone");
    h.send(gone, "NICK later");
    h.send(gone, "QUIT :bye");
    let again = h.register("gone");
    h.send(again, "QUIT");
    h.send(asker, "WHOWAS gone");
    let lines = h.take(asker);
    assert_eq!(
        codes(&lines),
        ["314", "312", "314", "312", "369"],
        "{lines:?}"
    );
    assert_eq!(
        lines[0],
        ":chatnode.local 314 asker gone gone 127.0.0.1 * :gone"
    );
    assert!(lines[1].starts_with(":chatnode.local 312 asker gone chatnode.local :"));
    assert_eq!(lines[4], ":chatnode.local 369 asker gone :End of WHOWAS");
    h.send(asker, "WHOWAS gone 1");
    assert_eq!(codes(&h.take(asker)), ["314", "312", "369"]);
    // A count of zero or less is no limit (RFC 2812 3.6.3).
    for count in ["0", "-1"] {
        h.send(asker, &format!("WHOWAS gone {count}"));
        let all = ["314", "312", "314", "312", "369"];
        assert_eq!(codes(&h.take(asker)), all, "count {count}");
    }
    h.send(asker, "WHOWAS LATER");
    assert_eq!(codes(&h.take(asker)), ["314", "312", "369"]);
    h.send(asker, "WHOWAS never");
    assert_eq!(
        h.take(asker),
        [
            ":chatnode.local 406 asker never :There was no such nickname",
            ":chatnode.local 369 asker never :End of WHOWAS"
        ]
    );
    h.send(asker, "WHOWAS");
    assert_eq!(codes(&h.take(asker)), ["431"]);
}

#[test]
fn whowas_memory_is_bounded() {
    let mut h = Harness::new(BrokerConfig {
        whowas_entries: 2,
        ..BrokerConfig::default()
    });
    let asker = h.register("asker");
    for nick in ["n1", "n2", "n3"] {
        let c = h.register(nick);
        h.send(c, "QUIT");
    }
    h.send(asker, "WHOWAS n1");
    assert_eq!(codes(&h.take(asker)), ["406", "369"]);
    h.send(asker, "WHOWAS n3,n2");
    assert_eq!(
        codes(&h.take(asker)),
        ["314", "312", "369", "314", "312", "369"]
    );
}

#[test]
fn who_masks_channel_and_oper_flag() {
    let mut h = harness();
    let a = register_with_caps(&mut h, "alice", "multi-prefix");
    let bob = h.register("bob");
    h.send(a, "JOIN #c");
    h.send(bob, "JOIN #c");
    h.send(a, "MODE #c +v alice");
    h.send(bob, "AWAY :out");
    h.take(a);
    h.take(bob);
    h.send(a, "WHO #c");
    let mut lines = h.take(a);
    lines.sort();
    assert_eq!(
        lines,
        [
            ":chatnode.local 315 alice #c :End of WHO list",
            ":chatnode.local 352 alice #c alice 127.0.0.1 chatnode.local alice H@+ :0 Real alice",
            ":chatnode.local 352 alice #c bob 127.0.0.1 chatnode.local bob G :0 bob",
        ]
    );
    h.send(a, "WHO b*");
    assert_eq!(
        h.take(a),
        [
            ":chatnode.local 352 alice * bob 127.0.0.1 chatnode.local bob G :0 bob",
            ":chatnode.local 315 alice b* :End of WHO list"
        ]
    );
    h.send(a, "WHO * o");
    assert_eq!(codes(&h.take(a)), ["315"], "no operators");
    h.send(a, "WHO nobody");
    assert_eq!(codes(&h.take(a)), ["315"]);
}

#[test]
fn a_who_mask_matches_any_one_of_nick_user_host_server_and_realname() {
    let mut h = harness();
    let a = h.register("alice");
    let r = h.connect();
    h.send(r, "NICK rick");
    h.send(r, "USER ustr 0 * :Roger Ramjet");
    let who = |h: &mut Harness, mask: &str| -> Vec<String> {
        h.send(a, &format!("WHO {mask}"));
        let mut nicks: Vec<String> = h
            .take(a)
            .iter()
            .filter(|l| l.contains(" 352 "))
            .map(|l| l.split(' ').nth(7).unwrap().to_string())
            .collect();
        nicks.sort();
        nicks
    };
    assert_eq!(who(&mut h, "rick"), ["rick"], "the nick alone");
    assert_eq!(who(&mut h, "ustr"), ["rick"], "the user alone");
    assert_eq!(who(&mut h, "Roger*"), ["rick"], "the realname alone");
    assert_eq!(who(&mut h, "127.0.0.1"), ["alice", "rick"], "the host");
    assert_eq!(who(&mut h, "chatnode.*"), ["alice", "rick"], "the server");
    assert_eq!(who(&mut h, "nomatch"), Vec::<String>::new());
}

#[test]
fn who_hides_invisible_users_from_strangers() {
    let mut h = harness();
    let a = h.register("alice");
    let hidden = h.register("hidden");
    h.send(hidden, "MODE hidden +i");
    h.take(hidden);
    h.send(a, "WHO hid*");
    assert_eq!(codes(&h.take(a)), ["315"]);
    h.send(a, "JOIN #c");
    h.send(hidden, "JOIN #c");
    h.take(a);
    h.send(a, "WHO hid*");
    assert_eq!(codes(&h.take(a)), ["352", "315"]);
}

#[test]
fn whox_fields_in_fixed_order_with_token() {
    let mut h = harness();
    let a = h.register("alice");
    h.send(a, "JOIN #c");
    h.take(a);
    h.send(a, "WHO #c %nuhcrt,42");
    assert_eq!(
        h.take(a),
        [
            ":chatnode.local 354 alice 42 #c alice 127.0.0.1 alice :alice",
            ":chatnode.local 315 alice #c :End of WHO list"
        ]
    );
    h.send(a, "WHO alice %afnd");
    assert_eq!(h.take(a)[0], ":chatnode.local 354 alice alice H 0 :0");
    // Server, idle seconds (a number: the real clock), op level (none here).
    h.send(a, "WHO alice %ols");
    let line = h.take(a).remove(0);
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(
        fields[..4],
        [":chatnode.local", "354", "alice", "chatnode.local"]
    );
    assert!(fields[4].parse::<u64>().is_ok(), "{line}");
    assert_eq!(fields[5], ":n/a", "{line}");
    // The nick and the realname are two fields (a client whose realname is not its nick).
    let c = h.connect();
    h.send(c, "NICK carol");
    h.send(c, "USER c 0 * :Carol Real");
    h.send(a, "WHO carol %nr");
    assert_eq!(h.take(a)[0], ":chatnode.local 354 alice carol :Carol Real");
}

#[test]
fn server_queries_and_other_servers() {
    let mut h = Harness::new(BrokerConfig {
        admin: AdminInfo {
            location: "Lab".into(),
            description: "Test bench".into(),
            email: "ops@example.org".into(),
        },
        ..BrokerConfig::default()
    });
    let a = h.register("alice");
    h.send(a, "ADMIN");
    assert_eq!(
        h.take(a),
        [
            ":chatnode.local 256 alice chatnode.local :Administrative info",
            ":chatnode.local 257 alice :Lab",
            ":chatnode.local 258 alice :Test bench",
            ":chatnode.local 259 alice :ops@example.org"
        ]
    );
    h.send(a, "TIME");
    let time = h.take(a).remove(0);
    assert!(
        time.starts_with(":chatnode.local 391 alice chatnode.local "),
        "{time}"
    );
    assert!(time.ends_with('Z'), "{time}");
    h.send(a, "TIME elsewhere.example");
    assert_eq!(
        h.take(a),
        [":chatnode.local 402 alice elsewhere.example :No such server"]
    );
    h.send(a, "ADMIN alice");
    assert_eq!(codes(&h.take(a)), ["256", "257", "258", "259"]);
    h.send(a, "INFO");
    let info = h.take(a);
    assert!(
        info.len() > 2 && codes(&info).last() == Some(&"374"),
        "{info:?}"
    );
    h.send(a, "LINKS");
    assert_eq!(
        h.take(a),
        [
            ":chatnode.local 364 alice * chatnode.local :0 chatnode IRC chat node",
            ":chatnode.local 365 alice * :End of /LINKS list"
        ]
    );
    h.send(a, "USERS");
    assert_eq!(
        h.take(a),
        [":chatnode.local 446 alice :USERS has been disabled"]
    );
}

#[test]
fn admin_without_settings_sends_placeholders() {
    let mut h = harness();
    let a = h.register("alice");
    h.send(a, "ADMIN");
    assert_eq!(h.take(a)[1], ":chatnode.local 257 alice :-");
}

#[test]
fn help_per_command_index_and_unknown() {
    let mut h = harness();
    let a = h.register("alice");
    h.send(a, "HELP whowas");
    assert_eq!(
        h.take(a),
        [
            ":chatnode.local 704 alice WHOWAS :** WHOWAS **",
            ":chatnode.local 705 alice WHOWAS :WHOWAS <nick> [<count>]",
            ":chatnode.local 706 alice WHOWAS :Who recently used a nick."
        ]
    );
    h.send(a, "HELP");
    let index = h.take(a);
    assert_eq!(codes(&index).first(), Some(&"704"));
    assert_eq!(codes(&index).last(), Some(&"706"));
    assert!(index.iter().any(|l| l.contains("PRIVMSG")));
    h.send(a, "HELP frobnicate");
    assert_eq!(
        h.take(a),
        [":chatnode.local 524 alice frobnicate :No help available on this topic"]
    );
}

#[test]
fn list_with_elist_filters() {
    let mut h = harness();
    let a = h.register("alice");
    let b = h.register("bob");
    h.send(a, "JOIN #big,#small,#other");
    h.send(b, "JOIN #big");
    h.send(a, "TOPIC #small :hello");
    h.take(a);
    let names = |h: &mut Harness, query: &str| -> Vec<String> {
        h.send(a, query);
        h.take(a)
            .iter()
            .filter(|l| l.split(' ').nth(1) == Some("322"))
            .map(|l| l.split(' ').nth(3).unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&mut h, "LIST"), ["#big", "#other", "#small"]);
    assert_eq!(names(&mut h, "LIST >1"), ["#big"]);
    assert_eq!(names(&mut h, "LIST <2"), ["#other", "#small"]);
    assert_eq!(names(&mut h, "LIST *s*"), ["#small"]);
    assert_eq!(names(&mut h, "LIST !*s*,<2"), ["#other"]);
    assert_eq!(names(&mut h, "LIST T<5"), ["#small"]);
    assert_eq!(names(&mut h, "LIST T>5"), Vec::<String>::new());
    assert_eq!(names(&mut h, "LIST C>5"), Vec::<String>::new());
    assert_eq!(names(&mut h, "LIST C<5,#big"), ["#big"]);
    assert_eq!(names(&mut h, "LIST #BIG,#none"), ["#big"]);
    // The bounds are strict, in whole minutes: everything here is 0 minutes old, which is
    // neither more than 0 nor less than 0 (but less than 1); and 2 users are not more than 2.
    assert_eq!(names(&mut h, "LIST T>0"), Vec::<String>::new());
    assert_eq!(names(&mut h, "LIST T<0"), Vec::<String>::new());
    assert_eq!(names(&mut h, "LIST T<1"), ["#small"]);
    assert_eq!(names(&mut h, "LIST C>0"), Vec::<String>::new());
    assert_eq!(names(&mut h, "LIST C<0"), Vec::<String>::new());
    assert_eq!(names(&mut h, "LIST C<1"), ["#big", "#other", "#small"]);
    assert_eq!(names(&mut h, "LIST >2"), Vec::<String>::new());
    assert_eq!(names(&mut h, "LIST <1"), Vec::<String>::new());
    h.send(a, "LIST");
    let lines = h.take(a);
    assert_eq!(lines[0], ":chatnode.local 321 alice Channel :Users  Name");
    assert_eq!(lines[1], ":chatnode.local 322 alice #big 2 :");
    assert_eq!(lines[4], ":chatnode.local 323 alice :End of /LIST");
}

#[test]
fn isupport_advertises_elist_whox_namelen_within_the_parameter_limit() {
    let mut h = harness();
    let c = h.connect();
    h.send(c, "NICK n");
    h.send(c, "USER n 0 * :n");
    let burst = h.take(c);
    let isupport: Vec<&String> = burst.iter().filter(|l| l.contains(" 005 ")).collect();
    assert!(isupport.len() >= 2, "{isupport:?}");
    let all: String = isupport
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for token in ["ELIST=CMNTU", "WHOX", "NAMELEN=128"] {
        assert!(all.contains(token), "{token}: {isupport:?}");
    }
    for line in isupport {
        let msg = chatnode::proto::Message::parse(line.as_bytes()).unwrap();
        assert!(msg.params.len() <= 15, "{line}");
    }
}

#[test]
fn whox_shows_the_real_ip_only_to_the_user_itself() {
    let mut h = harness();
    let a = h.register("alice");
    let b = h.register("bob");
    h.send(a, "WHO alice %ni");
    assert_eq!(h.take(a)[0], ":chatnode.local 354 alice 127.0.0.1 :alice");
    h.send(b, "WHO alice %ni");
    assert_eq!(
        h.take(b)[0],
        ":chatnode.local 354 bob 255.255.255.255 :alice"
    );
}

/// A store that finds nothing.
struct EmptyStore;

impl chatnode::broker::history::HistoryReader for EmptyStore {
    fn read(
        &self,
        _query: &chatnode::broker::history::Query,
    ) -> Result<chatnode::broker::history::Found, String> {
        Ok(chatnode::broker::history::Found::Records(Vec::new()))
    }
}

/// CHATHISTORY reads run on the blocking pool, at most `HistoryLimits::max_reads` (4) at once
/// node-wide; the next asker is told to try again, and is served once one has finished.
#[test]
fn history_reads_at_once_are_bounded() {
    use chatnode::broker::history::HistorySink;
    let (sink, writer) = HistorySink::bounded(64);
    let mut config = BrokerConfig::default();
    config.hooks.history = Some(chatnode::broker::HistoryHooks {
        sink: sink.clone(),
        reader: std::sync::Arc::new(EmptyStore),
    });
    let mut h = Harness::new(config);
    let readers: Vec<u64> = (0..5)
        .map(|i| {
            let c = h.register(&format!("r{i}"));
            h.send(c, "JOIN #c");
            h.take(c);
            c
        })
        .collect();
    // The (absent) writer has finished with everything queued: reads need not wait for it.
    sink.counters().mark_processed(writer.records.len() as u64);
    for &c in &readers[..4] {
        h.send(c, "CHATHISTORY LATEST #c * 10");
        assert!(h.is_parked(c), "the read runs offloaded");
    }
    assert_eq!(h.offloaded(), 4);
    h.send(readers[4], "CHATHISTORY LATEST #c * 10");
    let told = h.take(readers[4]);
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0]
            .contains(" FAIL CHATHISTORY MESSAGE_ERROR LATEST #c :Too many history reads at once"),
        "{told:?}"
    );
    assert_eq!(h.offloaded(), 4, "no fifth read started");
    assert_eq!(h.run_offloaded(), 4);
    for &c in &readers[..4] {
        assert!(!h.is_parked(c));
    }
    h.send(readers[4], "CHATHISTORY LATEST #c * 10");
    assert_eq!(h.offloaded(), 1, "served once the others finished");
}
