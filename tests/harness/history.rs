//! History through the harness: what the broker hands to the writer, the questions CHATHISTORY
//! asks the store, and the batches it answers with, line for line. The store is a fake that
//! records each `Query` and answers what the test set; the real store (SQLite) has its own tests
//! in src/store, and tests/node/history.rs runs both together end to end.

use std::sync::{Arc, Mutex};

use chatnode::broker::harness::Harness;
use chatnode::broker::history::{
    format_time, msgid_text, now_ms, Bound, Found, HistoryReader, HistorySink, Query, Record,
    RecordKind, Scope, Select, Stored, TargetSummary, WriterEnd,
};
use chatnode::broker::{BrokerConfig, ClientId, FloodConfig, HistoryHooks, HistoryLimits};

use super::register_with_caps;

const S: &str = ":chatnode.local";
/// The caps a CHATHISTORY client takes (no `server-time`: the batch lines carry `time` anyway).
const CAPS: &str = "batch draft/chathistory";

/// A store that remembers what it was asked and answers what the test set (an empty batch
/// unless told otherwise).
#[derive(Default)]
struct FakeStore {
    asked: Mutex<Vec<Query>>,
    answer: Mutex<Option<Result<Found, String>>>,
}

impl HistoryReader for FakeStore {
    fn read(&self, query: &Query) -> Result<Found, String> {
        self.asked.lock().unwrap().push(query.clone());
        let answer = self.answer.lock().unwrap().clone();
        answer.unwrap_or(Ok(Found::Records(Vec::new())))
    }
}

struct History {
    h: Harness,
    store: Arc<FakeStore>,
    sink: HistorySink,
    writer: WriterEnd,
}

impl History {
    fn new(limits: HistoryLimits) -> History {
        let (sink, writer) = HistorySink::bounded(64);
        let store = Arc::new(FakeStore::default());
        let mut config = BrokerConfig {
            history: limits,
            flood: FloodConfig::off(),
            ..BrokerConfig::default()
        };
        config.hooks.history = Some(HistoryHooks {
            sink: sink.clone(),
            reader: store.clone(),
        });
        History {
            h: Harness::new(config),
            store,
            sink,
            writer,
        }
    }

    /// The records handed to the writer since the last call; marks them processed, as the
    /// writer would once they are committed (a read waits for that).
    fn written(&mut self) -> Vec<Record> {
        let records: Vec<Record> =
            std::iter::from_fn(|| self.writer.records.try_recv().ok()).collect();
        self.sink.counters().mark_processed(records.len() as u64);
        records
    }

    fn answer(&self, found: Result<Found, String>) {
        *self.store.answer.lock().unwrap() = Some(found);
    }

    /// What the store was asked since the last call.
    fn asked(&self) -> Vec<Query> {
        std::mem::take(&mut *self.store.asked.lock().unwrap())
    }

    /// Sends `line`, lets the writer catch up, runs the offloaded read, and returns what `id` got.
    fn ask(&mut self, id: ClientId, line: &str) -> Vec<String> {
        self.h.send(id, line);
        self.written();
        self.h.run_offloaded();
        self.h.take(id)
    }
}

/// A stored line of `_target`, as the store answers it.
fn record(_target: &str, time_ms: i64, msgid: &str, line: &str) -> Stored {
    Stored {
        msgid: msgid.into(),
        time_ms,
        kind: RecordKind::Message,
        line: line.as_bytes().to_vec(),
        client_tags: None,
    }
}

/// A record's line as text, without CRLF.
fn text(r: &Record) -> String {
    String::from_utf8_lossy(r.bare_line()).into_owned()
}

const T0: i64 = 1_714_566_896_789; // 2024-05-01T12:34:56.789Z

#[test]
fn what_the_broker_hands_to_the_writer() {
    let mut hi = History::new(HistoryLimits::default());
    let alice = register_with_caps(&mut hi.h, "alice", "message-tags");
    let bob = hi.h.register("bob");
    hi.h.send(alice, "JOIN #Chat");
    hi.h.send(bob, "JOIN #chat");
    hi.h.take(alice);
    hi.h.take(bob);
    let joins: Vec<(String, String, RecordKind, String)> = hi
        .written()
        .into_iter()
        .map(|r| (r.target.clone(), r.name.clone(), r.kind, text(&r)))
        .collect();
    let join = |nick: &str| {
        let line = format!(":{nick}!{nick}@127.0.0.1 JOIN #Chat");
        (
            "#chat".to_string(),
            "#Chat".to_string(),
            RecordKind::Event,
            line,
        )
    };
    assert_eq!(joins, [join("alice"), join("bob")]);
    let before = now_ms();
    hi.h.send(bob, "PRIVMSG #chat :hello");
    hi.h.send(bob, "PRIVMSG alice :psst");
    hi.h.send(alice, "TOPIC #chat :news");
    hi.h.send(alice, "KICK #chat bob :out");
    hi.h.send(alice, "NICK alicia");
    hi.h.send(alice, "PART #chat :bye");
    let got = hi.h.take(alice);
    let records = hi.written();
    let lines: Vec<String> = records.iter().map(text).collect();
    let seen: Vec<(&str, &str, RecordKind, &str)> = records
        .iter()
        .zip(&lines)
        .map(|(r, l)| (r.target.as_str(), r.name.as_str(), r.kind, l.as_str()))
        .collect();
    let msg = RecordKind::Message;
    let event = RecordKind::Event;
    assert_eq!(
        seen,
        [
            (
                "#chat",
                "#Chat",
                msg,
                ":bob!bob@127.0.0.1 PRIVMSG #Chat :hello"
            ),
            (
                "alice bob",
                "alice bob",
                msg,
                ":bob!bob@127.0.0.1 PRIVMSG alice :psst"
            ),
            (
                "#chat",
                "#Chat",
                event,
                ":alice!alice@127.0.0.1 TOPIC #Chat :news"
            ),
            (
                "#chat",
                "#Chat",
                event,
                ":alice!alice@127.0.0.1 KICK #Chat bob :out"
            ),
            (
                "#chat",
                "#Chat",
                event,
                ":alice!alice@127.0.0.1 NICK :alicia"
            ),
            (
                "#chat",
                "#Chat",
                event,
                ":alicia!alice@127.0.0.1 PART #Chat :bye"
            ),
        ]
    );
    // A message is stored with the msgid and time its recipients got.
    let relayed = &got[0];
    assert!(relayed.ends_with(" PRIVMSG #Chat :hello"), "{got:?}");
    assert!(
        relayed.contains(&format!("msgid={};", msgid_text(records[0].msgid)))
            || relayed.contains(&format!("msgid={} ", msgid_text(records[0].msgid))),
        "{relayed} vs {:?}",
        records[0]
    );
    for r in &records {
        assert!(r.time_ms >= before && r.time_ms <= now_ms(), "{r:?}");
    }
    // A JOIN is an event of the channel; a QUIT one of every channel its client was in.
    hi.h.send(bob, "JOIN #chat");
    hi.h.send(bob, "JOIN #other");
    hi.h.send(bob, "QUIT :gone");
    let events: Vec<(String, String)> = hi
        .written()
        .into_iter()
        .inspect(|r| assert_eq!(r.kind, event, "{r:?}"))
        .map(|r| (r.target.clone(), text(&r)))
        .collect();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(
        events[0],
        ("#chat".into(), ":bob!bob@127.0.0.1 JOIN #chat".into())
    );
    assert_eq!(
        events[1],
        ("#other".into(), ":bob!bob@127.0.0.1 JOIN #other".into())
    );
    let mut quits: Vec<&str> = events[2..].iter().map(|(t, _)| t.as_str()).collect();
    quits.sort_unstable();
    assert_eq!(quits, ["#chat", "#other"]);
    assert!(events[2..]
        .iter()
        .all(|(_, l)| l == ":bob!bob@127.0.0.1 QUIT :Quit: gone"));
}

#[test]
fn each_subcommand_asks_the_store_its_own_question() {
    let limits = HistoryLimits {
        max_per_request: 50,
        ..HistoryLimits::default()
    };
    let mut hi = History::new(limits);
    let before = now_ms() / 1000 * 1000 - 1000;
    let bob = register_with_caps(&mut hi.h, "Bob", CAPS);
    hi.h.send(bob, "JOIN #Chat");
    hi.h.take(bob);
    let t = "timestamp=2024-05-01T12:34:56.789Z";
    let m1 = || Bound::Msgid("m1".into());
    let cases: Vec<(String, Select)> = vec![
        ("LATEST #chat * 10".into(), Select::Latest(None)),
        (
            "LATEST #chat msgid=m1 10".into(),
            Select::Latest(Some(m1())),
        ),
        (
            format!("BEFORE #chat {t} 10"),
            Select::Before(Bound::Time(T0)),
        ),
        ("AFTER #chat msgid=m1 10".into(), Select::After(m1())),
        ("AROUND #chat msgid=m1 10".into(), Select::Around(m1())),
        (
            format!("BETWEEN #chat msgid=m1 {t} 10"),
            Select::Between(m1(), Bound::Time(T0)),
        ),
        ("latest #chat * 10".into(), Select::Latest(None)),
    ];
    for (args, select) in cases {
        let lines = hi.ask(bob, &format!("CHATHISTORY {args}"));
        assert_eq!(lines.len(), 2, "{args}: {lines:?}");
        let asked = hi.asked();
        assert_eq!(
            asked,
            [Query {
                scope: Scope::One("#chat".into()),
                select,
                limit: 10,
                events: false,
                since: i64::MIN,
            }],
            "{args}"
        );
    }
    // A limit past CHATHISTORY= is cut to it; event-playback asks for events too.
    hi.ask(bob, "CHATHISTORY LATEST #CHAT * 51");
    assert_eq!(hi.asked()[0].limit, 50);
    hi.ask(bob, "CHATHISTORY LATEST #CHAT * 50");
    assert_eq!(hi.asked()[0].limit, 50);
    hi.h.send(bob, "CAP REQ draft/event-playback");
    hi.h.take(bob);
    hi.ask(bob, "CHATHISTORY LATEST #chat * 1");
    let asked = hi.asked();
    assert_eq!((asked[0].limit, asked[0].events), (1, true));
    // A private conversation: the pair's key, and only from the asker's sign-on on.
    hi.ask(bob, "CHATHISTORY LATEST Alice * 5");
    let asked = hi.asked();
    assert_eq!(asked[0].scope, Scope::One("alice bob".into()));
    assert!(
        asked[0].since >= before && asked[0].since <= now_ms(),
        "since {} (sign-on about {before})",
        asked[0].since
    );
}

#[test]
fn the_batch_carries_each_record_with_its_time_and_msgid() {
    let mut hi = History::new(HistoryLimits::default());
    // `message-tags`: `time` and `msgid` (which tags go with which caps: history_tags.rs).
    let bob = register_with_caps(&mut hi.h, "bob", &format!("{CAPS} message-tags"));
    hi.h.send(bob, "JOIN #chat");
    hi.h.take(bob);
    hi.answer(Ok(Found::Records(vec![
        record("#chat", T0, "m1", ":a!a@h PRIVMSG #chat :one"),
        record("#chat", T0 + 1001, "m2", ":a!a@h PRIVMSG #chat :two"),
    ])));
    assert_eq!(
        hi.ask(bob, "CHATHISTORY LATEST #Chat * 10"),
        [
            format!("{S} BATCH +h1 chathistory #Chat"),
            "@batch=h1;time=2024-05-01T12:34:56.789Z;msgid=m1 :a!a@h PRIVMSG #chat :one".into(),
            "@batch=h1;time=2024-05-01T12:34:57.790Z;msgid=m2 :a!a@h PRIVMSG #chat :two".into(),
            format!("{S} BATCH -h1"),
        ]
    );
    // The next batch has the next reference.
    hi.answer(Ok(Found::Records(Vec::new())));
    assert_eq!(
        hi.ask(bob, "CHATHISTORY LATEST #chat * 10"),
        [
            format!("{S} BATCH +h2 chathistory #chat"),
            format!("{S} BATCH -h2")
        ]
    );
    // A store that fails: a FAIL, and the client goes on.
    hi.answer(Err("disk on fire".into()));
    assert_eq!(
        hi.ask(bob, "CHATHISTORY LATEST #chat * 10"),
        [format!(
            "{S} FAIL CHATHISTORY MESSAGE_ERROR LATEST #chat :Messages could not be retrieved"
        )]
    );
}

/// TARGETS lists channels by name and a private conversation by the *other* party's nick,
/// whichever side of the pair's key the asker is on.
#[test]
fn targets_shows_each_private_conversation_as_the_other_nick() {
    // Sign-on times are whole seconds: the one before now.
    let before = now_ms() / 1000 * 1000 - 1000;
    let mut hi = History::new(HistoryLimits::default());
    let alice = register_with_caps(&mut hi.h, "alice", CAPS);
    let bob = register_with_caps(&mut hi.h, "Bob", CAPS);
    hi.h.send(bob, "JOIN #chat");
    hi.h.take(bob);
    let summary = |target: &str, latest_ms| TargetSummary {
        target: target.into(),
        name: target.into(),
        latest_ms,
    };
    hi.answer(Ok(Found::Targets(vec![
        summary("alice bob", T0),
        summary("#chat", T0 + 1),
        summary("bob carol", T0 + 2),
    ])));
    let range = "timestamp=2024-01-01T00:00:00.000Z timestamp=2025-01-01T00:00:00.000Z";
    let lines = hi.ask(bob, &format!("CHATHISTORY TARGETS {range} 10"));
    let entry = |name: &str, ms| {
        format!(
            "@batch=h1 {S} CHATHISTORY TARGETS {name} {}",
            format_time(ms)
        )
    };
    assert_eq!(
        lines,
        [
            format!("{S} BATCH +h1 draft/chathistory-targets"),
            entry("alice", T0),
            entry("#chat", T0 + 1),
            entry("carol", T0 + 2),
            format!("{S} BATCH -h1"),
        ]
    );
    let asked = hi.asked();
    let Select::Targets {
        channels,
        nick,
        from,
        to,
    } = &asked[0].select
    else {
        panic!("{asked:?}");
    };
    assert_eq!(nick, "bob");
    assert_eq!(channels.iter().collect::<Vec<_>>(), ["#chat"]);
    assert_eq!((*from, *to), (1_704_067_200_000, 1_735_689_600_000));
    assert_eq!((asked[0].limit, asked[0].events), (10, false));
    // Only from the asker's sign-on on (in milliseconds, as every bound).
    assert!(
        asked[0].since >= before && asked[0].since <= now_ms(),
        "since {} (sign-on about {before})",
        asked[0].since
    );
    // From the other side of the same key.
    hi.answer(Ok(Found::Targets(vec![summary("alice bob", T0)])));
    let lines = hi.ask(alice, &format!("CHATHISTORY TARGETS {range} 10"));
    assert_eq!(
        lines[1],
        format!("@batch=h2 {S} CHATHISTORY TARGETS bob {}", format_time(T0))
    );
}

#[test]
fn bad_requests_get_their_standard_reply_and_no_read() {
    let mut hi = History::new(HistoryLimits::default());
    let bob = register_with_caps(&mut hi.h, "bob", CAPS);
    hi.h.send(bob, "JOIN #chat");
    hi.h.take(bob);
    let fail = |rest: &str| format!("{S} FAIL CHATHISTORY {rest}");
    let cases = [
        (
            "CHATHISTORY",
            fail("NEED_MORE_PARAMS * :Missing parameters"),
        ),
        (
            "CHATHISTORY LATEST #chat",
            fail("NEED_MORE_PARAMS LATEST :Missing parameters"),
        ),
        (
            "CHATHISTORY BETWEEN #chat * 10",
            fail("NEED_MORE_PARAMS BETWEEN :Missing parameters"),
        ),
        (
            "CHATHISTORY SIDEWAYS #chat * 10",
            fail("UNKNOWN_COMMAND SIDEWAYS :Unknown command"),
        ),
        (
            "CHATHISTORY LATEST #chat * 0",
            fail("INVALID_PARAMS LATEST 0 :Invalid limit"),
        ),
        (
            "CHATHISTORY LATEST #chat * ten",
            fail("INVALID_PARAMS LATEST ten :Invalid limit"),
        ),
        (
            "CHATHISTORY BEFORE #chat yesterday 10",
            fail("INVALID_PARAMS BEFORE yesterday :Invalid message reference"),
        ),
        (
            "CHATHISTORY AFTER #chat msgid= 10",
            fail("INVALID_PARAMS AFTER msgid= :Invalid message reference"),
        ),
        (
            "CHATHISTORY BETWEEN #chat msgid=a * 10",
            // The two references as two context parameters.
            fail("INVALID_PARAMS BETWEEN msgid=a * :Invalid message reference"),
        ),
        (
            "CHATHISTORY LATEST b@d * 10",
            fail("INVALID_TARGET LATEST b@d :Invalid target"),
        ),
        (
            "CHATHISTORY TARGETS * * 10",
            fail("INVALID_PARAMS TARGETS * * :Invalid timestamp"),
        ),
        (
            "CHATHISTORY TARGETS timestamp=2024-01-01T00:00:00Z x 10",
            fail("INVALID_PARAMS TARGETS timestamp=2024-01-01T00:00:00Z x :Invalid timestamp"),
        ),
    ];
    for (line, reply) in cases {
        assert_eq!(hi.ask(bob, line), [reply], "{line}");
    }
    assert_eq!(hi.asked(), [], "no bad request reached the store");
    // A channel one is not in: an empty batch, and the store is not asked.
    assert_eq!(
        hi.ask(bob, "CHATHISTORY LATEST #secret * 10"),
        [
            format!("{S} BATCH +h1 chathistory #secret"),
            format!("{S} BATCH -h1")
        ]
    );
    assert_eq!(hi.asked(), []);
}

#[test]
fn without_history_chathistory_says_so() {
    let mut h = Harness::new(BrokerConfig::default());
    // The history caps are not offered (history_tags.rs): a client that asks anyway.
    let bob = register_with_caps(&mut h, "bob", "batch");
    h.send(bob, "CHATHISTORY LATEST #chat * 10");
    assert_eq!(
        h.take(bob),
        [format!(
            "{S} FAIL CHATHISTORY MESSAGE_ERROR * * :History is off on this node"
        )]
    );
}

/// The asker waits for its batch (its later commands are answered after it); others do not.
/// Reads at once are bounded node-wide; a finished read frees its place.
#[test]
fn a_read_parks_only_its_client_and_reads_at_once_are_bounded() {
    let limits = HistoryLimits {
        max_reads: 1,
        ..HistoryLimits::default()
    };
    let mut hi = History::new(limits);
    let alice = register_with_caps(&mut hi.h, "alice", CAPS);
    let bob = register_with_caps(&mut hi.h, "bob", CAPS);
    hi.h.send(alice, "CHATHISTORY LATEST bob * 10");
    hi.h.send(alice, "PING :after");
    assert_eq!(
        hi.h.take(alice),
        Vec::<String>::new(),
        "parked until the read is back"
    );
    hi.h.send(bob, "CHATHISTORY LATEST alice * 10");
    hi.h.send(bob, "PING :bob");
    assert_eq!(
        hi.h.take(bob),
        [
            format!("{S} FAIL CHATHISTORY MESSAGE_ERROR LATEST alice :Too many history reads at once, try again"),
            format!("{S} PONG chatnode.local :bob"),
        ]
    );
    assert_eq!(hi.h.run_offloaded(), 1);
    assert_eq!(
        hi.h.take(alice),
        [
            format!("{S} BATCH +h1 chathistory bob"),
            format!("{S} BATCH -h1"),
            format!("{S} PONG chatnode.local :after"),
        ]
    );
    // The place is free again.
    assert_eq!(hi.ask(bob, "CHATHISTORY LATEST alice * 10").len(), 2);
}

/// With `join_lines`, a client without `draft/chathistory` gets the channel's last lines on
/// JOIN, bare (or with `time` if it has server-time); a client with the cap asks itself.
#[test]
fn join_replays_the_last_lines_to_clients_that_do_not_ask_themselves() {
    let limits = HistoryLimits {
        join_lines: 2,
        ..HistoryLimits::default()
    };
    let mut hi = History::new(limits);
    let stored = vec![
        record("#chat", T0, "m1", ":a!a@h PRIVMSG #chat :one"),
        record("#chat", T0 + 1, "m2", ":a!a@h PRIVMSG #chat :two"),
    ];
    hi.answer(Ok(Found::Records(stored)));
    let plain = hi.h.register("plain");
    let lines = hi.ask(plain, "JOIN #Chat");
    assert_eq!(lines.len(), 5, "{lines:?}"); // JOIN, 353, 366, two lines
    assert_eq!(
        lines[3..],
        [":a!a@h PRIVMSG #chat :one", ":a!a@h PRIVMSG #chat :two"]
    );
    assert_eq!(
        hi.asked(),
        [Query {
            scope: Scope::One("#chat".into()),
            select: Select::Latest(None),
            limit: 2,
            events: false,
            since: i64::MIN,
        }]
    );
    let timed = register_with_caps(&mut hi.h, "timed", "server-time");
    let lines = hi.ask(timed, "JOIN #chat");
    assert_eq!(
        lines[lines.len() - 2..],
        [
            "@time=2024-05-01T12:34:56.789Z :a!a@h PRIVMSG #chat :one",
            "@time=2024-05-01T12:34:56.790Z :a!a@h PRIVMSG #chat :two"
        ]
    );
    assert_eq!(hi.asked().len(), 1);
    let asker = register_with_caps(&mut hi.h, "asker", CAPS);
    let lines = hi.ask(asker, "JOIN #chat");
    assert_eq!(lines.len(), 3, "no replay: {lines:?}");
    assert_eq!(hi.asked(), []);
}

#[test]
fn join_replays_nothing_when_join_lines_is_zero() {
    let mut hi = History::new(HistoryLimits::default());
    hi.answer(Ok(Found::Records(vec![record(
        "#chat",
        T0,
        "m1",
        ":a!a@h PRIVMSG #chat :one",
    )])));
    let plain = hi.h.register("plain");
    let lines = hi.ask(plain, "JOIN #chat");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(hi.asked(), []);
}

/// A read whose records the writer has committed answers without the "waited for the writer"
/// warning (which is for a stuck disk only).
#[test]
fn a_read_the_writer_kept_up_with_logs_no_warning() {
    crate::logs::take();
    let mut hi = History::new(HistoryLimits::default());
    let bob = register_with_caps(&mut hi.h, "bob", CAPS);
    let lines = crate::logs::take();
    assert!(
        lines.iter().any(|l| l.starts_with("INFO registered bob!")),
        "the capture sees this thread's lines: {lines:?}"
    );
    hi.h.send(bob, "JOIN #chat");
    hi.h.send(bob, "PRIVMSG #chat :kept");
    hi.h.take(bob);
    hi.answer(Ok(Found::Records(vec![])));
    hi.ask(bob, "CHATHISTORY LATEST #chat * 10");
    assert_eq!(hi.asked().len(), 1, "the read ran");
    let lines = crate::logs::take();
    assert!(!lines.iter().any(|l| l.starts_with("WARN")), "{lines:?}");
}

/// TAGMSG carries no text: nothing to keep, to a channel or to a nick.
#[test]
fn a_tagmsg_is_not_kept() {
    let mut hi = History::new(HistoryLimits::default());
    let bob = register_with_caps(&mut hi.h, "bob", &format!("{CAPS} message-tags"));
    let _alice = register_with_caps(&mut hi.h, "alice", &format!("{CAPS} message-tags"));
    hi.h.send(bob, "JOIN #chat");
    hi.written();
    hi.h.send(bob, "@+typing=active TAGMSG #chat");
    hi.h.send(bob, "@+typing=active TAGMSG alice");
    assert_eq!(hi.written().len(), 0);
    hi.h.send(bob, "PRIVMSG #chat :kept");
    hi.h.send(bob, "PRIVMSG alice :kept too");
    assert_eq!(hi.written().len(), 2);
}
