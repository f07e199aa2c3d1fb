//! The store against real SQLite files in a temporary directory.

use super::*;
use crate::broker::history::msgid_text;

/// A fresh directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("chatnode-store-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Dir(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join(FILE_NAME)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Record `n` (its msgid is `n`) in `target` at `time_ms`.
fn record(target: &str, time_ms: i64, n: usize, kind: RecordKind) -> Record {
    let line = format!(":a!a@h PRIVMSG {target} :{n}\r\n");
    Record {
        msgid: n as u64,
        time_ms,
        target: target.into(),
        name: target.into(),
        kind,
        line: std::sync::Arc::from(line.into_bytes()),
        client_tags: None,
    }
}

/// The `msgid` tag of record `n`.
fn m(n: usize) -> Bound {
    Bound::Msgid(msgid_text(n as u64))
}

/// Records m0..m9 in #c at 1000, 2000, ... ms; m5 is a JOIN (an event); m20 in #other.
fn filled(dir: &Dir) -> (Store, Reader) {
    let mut store = Store::open(&dir.file()).unwrap();
    let mut batch: Vec<Record> = (0..10)
        .map(|n| {
            let kind = if n == 5 {
                RecordKind::Event
            } else {
                RecordKind::Message
            };
            record("#c", 1000 * (n as i64 + 1), n, kind)
        })
        .collect();
    batch.push(record("#other", 500, 20, RecordKind::Message));
    store.write(&batch).unwrap();
    let reader = Reader::open(&dir.file()).unwrap();
    (store, reader)
}

fn ask(reader: &Reader, select: Select, limit: usize, events: bool) -> Vec<String> {
    let q = Query {
        scope: Scope::One("#c".into()),
        select,
        limit,
        events,
        since: i64::MIN,
    };
    match reader.read(&q).unwrap() {
        Found::Records(r) => r.into_iter().map(|r| r.msgid).collect(),
        Found::Targets(_) => panic!("records expected"),
    }
}

fn ids(ns: &[usize]) -> Vec<String> {
    ns.iter().map(|&n| msgid_text(n as u64)).collect()
}

#[test]
fn subcommands_select_the_right_records() {
    let dir = Dir::new("select");
    let (_store, r) = filled(&dir);
    assert_eq!(ask(&r, Select::Latest(None), 3, false), ids(&[7, 8, 9]));
    assert_eq!(
        ask(&r, Select::Latest(Some(m(6))), 10, false),
        ids(&[7, 8, 9])
    );
    assert_eq!(ask(&r, Select::Before(m(4)), 2, false), ids(&[2, 3]));
    assert_eq!(
        ask(&r, Select::After(m(4)), 2, false),
        ids(&[6, 7]),
        "m5 is an event"
    );
    assert_eq!(ask(&r, Select::After(m(4)), 2, true), ids(&[5, 6]));
    assert_eq!(ask(&r, Select::Around(m(3)), 4, false), ids(&[1, 2, 3, 4]));
    assert_eq!(
        ask(&r, Select::Between(m(1), m(4)), 10, false),
        ids(&[2, 3])
    );
    assert_eq!(
        ask(&r, Select::Between(m(8), m(1)), 2, false),
        ids(&[6, 7]),
        "backwards: the newest before the first bound, oldest first"
    );
    // Timestamps: m3 is at 4000 ms; bounds exclude their own millisecond.
    assert_eq!(
        ask(&r, Select::Before(Bound::Time(4000)), 10, false),
        ids(&[0, 1, 2])
    );
    assert_eq!(
        ask(&r, Select::After(Bound::Time(8000)), 10, false),
        ids(&[8, 9])
    );
    assert_eq!(
        ask(&r, Select::Before(Bound::Msgid("nope".into())), 10, false),
        ids(&[])
    );
}

#[test]
fn private_conversations_start_at_since() {
    let dir = Dir::new("since");
    let (_store, r) = filled(&dir);
    let q = Query {
        scope: Scope::One("#c".into()),
        select: Select::Latest(None),
        limit: 100,
        events: false,
        since: 8000,
    };
    let Found::Records(found) = r.read(&q).unwrap() else {
        panic!()
    };
    assert_eq!(found.len(), 3);
}

#[test]
fn targets_lists_my_conversations_by_latest_message() {
    let dir = Dir::new("targets");
    let (mut store, r) = filled(&dir);
    store
        .write(&[
            record("alice bob", 3500, 30, RecordKind::Message),
            record("bob carol", 3600, 31, RecordKind::Message),
        ])
        .unwrap();
    let q = Query {
        scope: Scope::One(String::new()),
        select: Select::Targets {
            channels: vec!["#c".into()],
            nick: "alice".into(),
            from: 0,
            to: 100_000,
        },
        limit: 10,
        events: false,
        since: 0,
    };
    let Found::Targets(t) = r.read(&q).unwrap() else {
        panic!()
    };
    let names: Vec<&str> = t.iter().map(|t| t.target.as_str()).collect();
    assert_eq!(names, ["alice bob", "#c"], "not #other, not bob carol");
    assert_eq!(t[1].latest_ms, 10_000);
}

#[test]
fn records_survive_reopening() {
    let dir = Dir::new("reopen");
    drop(filled(&dir));
    let store = Store::open(&dir.file()).unwrap();
    assert_eq!(store.count().unwrap(), 11);
}

#[test]
fn a_damaged_file_is_a_clear_error() {
    let dir = Dir::new("damaged");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.file(), vec![0x5a; 8192]).unwrap();
    let err = Store::open(&dir.file()).unwrap_err().to_string();
    assert!(err.contains(&dir.file().display().to_string()), "{err}");
    assert!(err.contains("move the file aside"), "{err}");
    // Nothing was changed: the bytes are still there for whoever wants to look at them.
    assert_eq!(std::fs::read(dir.file()).unwrap(), vec![0x5a; 8192]);
}

#[test]
fn a_corrupted_page_fails_the_check() {
    let dir = Dir::new("corrupt");
    {
        let (mut store, _r) = filled(&dir);
        let many: Vec<Record> = (100..2000)
            .map(|n| record("#c", 20_000 + n as i64, n, RecordKind::Message))
            .collect();
        store.write(&many).unwrap();
        store.checkpoint().unwrap();
    }
    // Overwrite the middle of the file (index and table pages), keep the header.
    let mut bytes = std::fs::read(dir.file()).unwrap();
    let len = bytes.len();
    assert!(len > 16_384, "{len}");
    for b in &mut bytes[len / 2..len / 2 + 8192] {
        *b = 0xff;
    }
    std::fs::write(dir.file(), bytes).unwrap();
    let err = Store::open(&dir.file()).unwrap_err().to_string();
    assert!(err.contains("cannot be used"), "{err}");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = Dir::new("newer");
    {
        let store = Store::open(&dir.file()).unwrap();
        store.conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = Store::open(&dir.file()).unwrap_err().to_string();
    assert!(err.contains("newer than this chatnode knows"), "{err}");
}

#[test]
fn migrations_run_from_any_older_version() {
    let dir = Dir::new("migrate");
    {
        // A version-1 database, as an older chatnode left it.
        std::fs::create_dir_all(&dir.0).unwrap();
        let conn = Connection::open(dir.file()).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let store = Store::open(&dir.file()).unwrap();
    let version: i64 = store
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version as usize, SCHEMA_VERSION);
    let indexes: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'history_by_time'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 1);
}

#[test]
fn retention_by_age_and_by_size() {
    let dir = Dir::new("prune");
    let (mut store, _r) = filled(&dir);
    // Every record is from 1970: a day of retention deletes them all.
    let gone = store
        .prune(Some(Duration::from_secs(86_400)), None)
        .unwrap();
    assert_eq!(gone, 11);
    let now = crate::broker::history::now_ms();
    let many: Vec<Record> = (0..5000)
        .map(|n| record("#c", now + n as i64, n, RecordKind::Message))
        .collect();
    store.write(&many).unwrap();
    let before = store.live_bytes().unwrap();
    let gone = store.prune(None, Some(before / 2)).unwrap();
    assert!(gone > 0 && store.live_bytes().unwrap() <= before / 2);
    assert_eq!(store.count().unwrap(), 5000 - gone, "the newest are kept");
}

#[test]
fn the_page_cache_of_both_connections_is_bounded() {
    let dir = Dir::new("cache");
    let (store, reader) = filled(&dir);
    let size =
        |c: &Connection| -> i64 { c.query_row("PRAGMA cache_size", [], |r| r.get(0)).unwrap() };
    assert_eq!(size(&store.conn), -PAGE_CACHE_KIB, "the writer's, in KiB");
    assert_eq!(
        size(&reader.conn.lock().unwrap()),
        -PAGE_CACHE_KIB,
        "the reader's"
    );
}

/// What `scope` holds, as msgids, for `select`.
fn ask_scope(reader: &Reader, scope: Scope, select: Select) -> Vec<String> {
    let q = Query {
        scope,
        select,
        limit: 10,
        events: false,
        since: i64::MIN,
    };
    match reader.read(&q).unwrap() {
        Found::Records(r) => r.into_iter().map(|r| r.msgid).collect(),
        Found::Targets(_) => panic!("records expected"),
    }
}

#[test]
fn the_star_target_reads_every_private_conversation_of_the_nick() {
    let dir = Dir::new("direct");
    let (mut store, r) = filled(&dir);
    store
        .write(&[
            record("alice bob", 3500, 30, RecordKind::Message),
            record("bob carol", 3600, 31, RecordKind::Message),
            record("alice carol", 3700, 32, RecordKind::Message),
            record("bob xalice", 3800, 33, RecordKind::Message),
            record("#alice", 3900, 34, RecordKind::Message),
        ])
        .unwrap();
    let direct = |nick: &str| Scope::Direct(nick.into());
    let latest = Select::Latest(None);
    assert_eq!(
        ask_scope(&r, direct("alice"), latest.clone()),
        ids(&[30, 32])
    );
    assert_eq!(
        ask_scope(&r, direct("bob"), latest.clone()),
        ids(&[30, 31, 33])
    );
    assert_eq!(ask_scope(&r, direct("xalice"), latest), ids(&[33]));
    assert_eq!(
        ask_scope(&r, direct("alice"), Select::Before(m(32))),
        ids(&[30])
    );
    assert_eq!(
        ask_scope(&r, direct("alice"), Select::After(m(30))),
        ids(&[32])
    );
    assert_eq!(
        ask_scope(&r, direct("alice"), Select::Before(m(31))),
        ids(&[]),
        "a msgid of someone else's conversation is not a bound"
    );
    assert_eq!(
        ask_scope(&r, direct("alice"), Select::Before(Bound::Time(3650))),
        ids(&[30])
    );
}

#[test]
fn client_tags_and_any_bytes_come_back_as_stored() {
    let dir = Dir::new("bytes");
    let (mut store, r) = filled(&dir);
    let mut tagged = record("#c", 50_000, 40, RecordKind::Message);
    tagged.line = std::sync::Arc::from(&b":a!a@h PRIVMSG #c :caf\xe9 \xff\r\n"[..]);
    tagged.client_tags = Some("+draft/react=x;+a\\sb".into());
    store.write(&[tagged]).unwrap();
    let q = Query {
        scope: Scope::One("#c".into()),
        select: Select::After(m(8)),
        limit: 10,
        events: false,
        since: i64::MIN,
    };
    let Found::Records(found) = r.read(&q).unwrap() else {
        panic!()
    };
    let last = found.last().unwrap();
    assert_eq!(last.msgid, msgid_text(40));
    assert_eq!(
        last.line, b":a!a@h PRIVMSG #c :caf\xe9 \xff",
        "no CRLF, bytes kept"
    );
    assert_eq!(last.client_tags.as_deref(), Some("+draft/react=x;+a\\sb"));
    assert_eq!(found[0].client_tags, None);
}

#[test]
fn opening_reserves_msgids_above_every_stored_one() {
    let dir = Dir::new("reserve");
    let far = crate::broker::history::new_msgid() + 5_000_000;
    {
        let mut store = Store::open(&dir.file()).unwrap();
        let mut r = record("#c", 1000, 0, RecordKind::Message);
        r.msgid = far;
        store.write(&[r]).unwrap();
    }
    let _store = Store::open(&dir.file()).unwrap();
    assert!(crate::broker::history::new_msgid() > far);
}

#[test]
fn rows_stored_before_version_3_keep_their_text_msgids() {
    let dir = Dir::new("legacy");
    {
        // A version-2 database with one row, as the chatnode of the day left it.
        std::fs::create_dir_all(&dir.0).unwrap();
        let conn = Connection::open(dir.file()).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.execute_batch(schema::MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO history (msgid, time_ms, target, name, kind, line) \
             VALUES ('mhd2x0-1', 1000, '#c', '#C', 0, ':a!a@h PRIVMSG #C :old')",
            [],
        )
        .unwrap();
    }
    let mut store = Store::open(&dir.file()).unwrap();
    store
        .write(&[record("#c", 2000, 7, RecordKind::Message)])
        .unwrap();
    let reader = Reader::open(&dir.file()).unwrap();
    let all = ask(&reader, Select::Latest(None), 10, false);
    assert_eq!(all, ["mhd2x0-1".to_string(), msgid_text(7)]);
    let old = Bound::Msgid("mhd2x0-1".into());
    assert_eq!(ask(&reader, Select::After(old), 10, false), ids(&[7]));
    assert_eq!(
        ask(&reader, Select::Before(m(7)), 10, false),
        ["mhd2x0-1".to_string()]
    );
}
