//! History tags, caps, `*` and labels, with a store played by a fake reader: which caps are
//! offered, what a record holds, which tags a replayed line carries for which caps, the `*`
//! target and labels. The store itself is tested in `src/store/tests.rs`, end to end in
//! `tests/node/history.rs`. Runs without the `history` feature too: no SQLite here.

use std::sync::{Arc, Mutex};

use chatnode::broker::harness::Harness;
use chatnode::broker::history::{
    msgid_text, Found, HistoryReader, HistorySink, Query, Record, RecordKind, Scope, Select,
    Stored, WriterEnd,
};
use chatnode::broker::{BrokerConfig, ClientId, HistoryHooks};

use super::{register_with_caps, tag, untagged};

/// A store that answers every conversation read with its `lines`, and remembers the questions.
#[derive(Default)]
struct FakeStore {
    lines: Vec<Stored>,
    asked: Mutex<Vec<Query>>,
}

impl HistoryReader for FakeStore {
    fn read(&self, query: &Query) -> Result<Found, String> {
        self.asked.lock().unwrap().push(query.clone());
        Ok(match query.select {
            Select::Targets { .. } => Found::Targets(Vec::new()),
            _ => Found::Records(self.lines.clone()),
        })
    }
}

/// A harness whose broker keeps history in `store`; the writer's end is the test's.
struct Node {
    h: Harness,
    writer: WriterEnd,
    sink: HistorySink,
    store: Arc<FakeStore>,
}

impl Node {
    fn new(lines: Vec<Stored>) -> Node {
        let (sink, writer) = HistorySink::bounded(64);
        let store = Arc::new(FakeStore {
            lines,
            ..FakeStore::default()
        });
        let mut config = BrokerConfig::default();
        config.hooks.history = Some(HistoryHooks {
            sink: sink.clone(),
            reader: store.clone(),
        });
        Node {
            h: Harness::new(config),
            writer,
            sink,
            store,
        }
    }

    /// The records queued so far, marked as stored (a read waits for that).
    fn records(&mut self) -> Vec<Record> {
        let records: Vec<Record> =
            std::iter::from_fn(|| self.writer.records.try_recv().ok()).collect();
        self.sink.counters().mark_processed(records.len() as u64);
        records
    }

    /// Sends `line` from `id`, lets the offloaded read run, and returns what `id` got.
    fn ask(&mut self, id: ClientId, line: &str) -> Vec<String> {
        self.records();
        self.h.send(id, line);
        self.h.run_offloaded();
        self.h.take(id)
    }
}

/// One stored message with a client-only tag.
fn one_line() -> Stored {
    Stored {
        msgid: "m1".into(),
        time_ms: 1_700_000_000_123,
        kind: RecordKind::Message,
        line: b":bob!b@h PRIVMSG #c :hi".to_vec(),
        client_tags: Some("+draft/react=x".into()),
    }
}

#[test]
fn history_caps_are_offered_only_by_a_node_that_keeps_history() {
    let mut with = Node::new(Vec::new());
    let c = with.h.connect();
    with.h.send(c, "CAP LS 302");
    let ls = with.h.take(c).join("\n");
    assert!(
        ls.contains("draft/chathistory") && ls.contains("draft/event-playback"),
        "{ls}"
    );

    let mut without = Harness::new(BrokerConfig::default());
    let c = without.connect();
    without.send(c, "CAP LS 302");
    let ls = without.take(c).join("\n");
    assert!(
        !ls.contains("chathistory") && !ls.contains("event-playback"),
        "{ls}"
    );
    without.send(c, "CAP REQ :batch draft/chathistory");
    assert_eq!(
        without.take(c),
        [":chatnode.local CAP * NAK :batch draft/chathistory"]
    );
    without.send(c, "CAP REQ :draft/event-playback");
    assert!(without.take(c)[0].contains(" NAK "));
    // Registered, a client that asks anyway is told why nothing comes.
    without.send(c, "CAP END");
    without.send(c, "NICK n");
    without.send(c, "USER n 0 * :N");
    without.take(c);
    without.send(c, "CHATHISTORY LATEST #c * 10");
    assert_eq!(
        without.take(c),
        [":chatnode.local FAIL CHATHISTORY MESSAGE_ERROR * * :History is off on this node"]
    );
}

#[test]
fn a_relayed_message_is_recorded_with_its_msgid_client_tags_and_the_shared_bytes() {
    let mut node = Node::new(Vec::new());
    let alice = register_with_caps(&mut node.h, "alice", "message-tags");
    let bob = node.h.register("bob");
    let carol = register_with_caps(&mut node.h, "carol", "message-tags");
    for id in [alice, bob, carol] {
        node.h.send(id, "JOIN #c");
    }
    node.records(); // the JOINs
    node.h.take(bob);
    node.h.take(carol);
    node.h.send(alice, "@+draft/react=x;+a PRIVMSG #c :hey");
    let got = node.h.take_raw(bob);
    let tagged = node.h.take(carol);
    let records = node.records();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r.kind, RecordKind::Message);
    assert_eq!((r.target.as_str(), r.name.as_str()), ("#c", "#c"));
    assert_eq!(r.client_tags.as_deref(), Some("+draft/react=x;+a"));
    assert_eq!(tag(&tagged[0], "msgid"), Some(msgid_text(r.msgid).as_str()));
    assert!(
        Arc::ptr_eq(&r.line, &got[0]),
        "the record shares the bytes bob got, no copy"
    );
    assert_eq!(r.bare_line(), b":alice!alice@127.0.0.1 PRIVMSG #c :hey");
}

#[test]
fn replayed_lines_carry_only_the_tags_the_client_negotiated() {
    let cases: [(&str, &[&str]); 5] = [
        ("draft/chathistory", &[":bob!b@h PRIVMSG #c :hi"]),
        (
            "draft/chathistory batch",
            &[
                ":chatnode.local BATCH +h1 chathistory #c",
                "@batch=h1 :bob!b@h PRIVMSG #c :hi",
                ":chatnode.local BATCH -h1",
            ],
        ),
        (
            "draft/chathistory batch server-time",
            &[
                ":chatnode.local BATCH +h1 chathistory #c",
                "@batch=h1;time=2023-11-14T22:13:20.123Z :bob!b@h PRIVMSG #c :hi",
                ":chatnode.local BATCH -h1",
            ],
        ),
        (
            "draft/chathistory batch message-tags",
            &[
                ":chatnode.local BATCH +h1 chathistory #c",
                "@batch=h1;time=2023-11-14T22:13:20.123Z;msgid=m1;+draft/react=x \
                 :bob!b@h PRIVMSG #c :hi",
                ":chatnode.local BATCH -h1",
            ],
        ),
        (
            "draft/chathistory message-tags",
            &["@time=2023-11-14T22:13:20.123Z;msgid=m1;+draft/react=x :bob!b@h PRIVMSG #c :hi"],
        ),
    ];
    for (caps, expected) in cases {
        let mut node = Node::new(vec![one_line()]);
        let reader = register_with_caps(&mut node.h, "reader", caps);
        node.h.send(reader, "JOIN #c");
        node.h.take(reader);
        let got = node.ask(reader, "CHATHISTORY LATEST #c * 10");
        assert_eq!(got, expected, "{caps}");
    }
}

#[test]
fn a_labeled_chathistory_has_its_label_on_the_batch() {
    let mut node = Node::new(vec![one_line()]);
    let caps = "draft/chathistory batch labeled-response";
    let reader = register_with_caps(&mut node.h, "reader", caps);
    node.h.send(reader, "JOIN #c");
    node.h.take(reader);
    let got = node.ask(reader, "@label=q1 CHATHISTORY LATEST #c * 10");
    assert_eq!(
        got,
        [
            "@label=q1 :chatnode.local BATCH +h1 chathistory #c",
            "@batch=h1 :bob!b@h PRIVMSG #c :hi",
            ":chatnode.local BATCH -h1",
        ]
    );
    // A FAIL is one line: labeled itself.
    let got = node.ask(reader, "@label=q2 CHATHISTORY LATEST #c * zero");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(tag(&got[0], "label"), Some("q2"));
    assert!(untagged(&got[0]).contains(" FAIL CHATHISTORY INVALID_PARAMS "));
    // TARGETS: its own batch type, labeled the same way.
    let got = node.ask(
        reader,
        "@label=q3 CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z \
         timestamp=2100-01-01T00:00:00Z 5",
    );
    assert_eq!(
        got,
        [
            "@label=q3 :chatnode.local BATCH +h2 draft/chathistory-targets",
            ":chatnode.local BATCH -h2",
        ]
    );
}

#[test]
fn the_star_target_asks_for_every_private_conversation_of_the_client() {
    let mut node = Node::new(vec![one_line()]);
    let reader = register_with_caps(&mut node.h, "Reader", "draft/chathistory batch");
    let got = node.ask(reader, "CHATHISTORY LATEST * * 10");
    assert_eq!(got[0], ":chatnode.local BATCH +h1 chathistory *");
    assert_eq!(got.len(), 3, "{got:?}");
    let got = node.ask(reader, &format!("CHATHISTORY BEFORE * msgid={} 5", "abc"));
    assert_eq!(got.len(), 3, "{got:?}");
    let asked = node.store.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2);
    for q in &asked {
        assert_eq!(q.scope, Scope::Direct("reader".into()), "casefolded nick");
        assert!(q.since > 0, "only since the client signed on");
    }
    assert!(matches!(asked[0].select, Select::Latest(None)));
    assert!(matches!(&asked[1].select, Select::Before(_)));
    // `*` is not a channel: a bad reference is still a FAIL.
    let got = node.ask(reader, "CHATHISTORY BEFORE * yesterday 5");
    assert!(
        got[0].contains("FAIL CHATHISTORY INVALID_PARAMS"),
        "{got:?}"
    );
}
