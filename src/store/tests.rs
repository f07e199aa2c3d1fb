//! The store against real SQLite files in a temporary directory.

use super::*;

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

fn record(target: &str, time_ms: i64, n: usize, kind: RecordKind) -> Record {
    Record {
        msgid: format!("m{n}"),
        time_ms,
        target: target.into(),
        name: target.into(),
        kind,
        line: format!(":a!a@h PRIVMSG {target} :{n}"),
    }
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
        target: "#c".into(),
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
    ns.iter().map(|n| format!("m{n}")).collect()
}

#[test]
fn subcommands_select_the_right_records() {
    let dir = Dir::new("select");
    let (_store, r) = filled(&dir);
    let m = |s: &str| Bound::Msgid(s.into());
    assert_eq!(ask(&r, Select::Latest(None), 3, false), ids(&[7, 8, 9]));
    assert_eq!(
        ask(&r, Select::Latest(Some(m("m6"))), 10, false),
        ids(&[7, 8, 9])
    );
    assert_eq!(ask(&r, Select::Before(m("m4")), 2, false), ids(&[2, 3]));
    assert_eq!(
        ask(&r, Select::After(m("m4")), 2, false),
        ids(&[6, 7]),
        "m5 is an event"
    );
    assert_eq!(ask(&r, Select::After(m("m4")), 2, true), ids(&[5, 6]));
    assert_eq!(
        ask(&r, Select::Around(m("m3")), 4, false),
        ids(&[1, 2, 3, 4])
    );
    assert_eq!(
        ask(&r, Select::Between(m("m1"), m("m4")), 10, false),
        ids(&[2, 3])
    );
    assert_eq!(
        ask(&r, Select::Between(m("m8"), m("m1")), 2, false),
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
    assert_eq!(ask(&r, Select::Before(m("nope")), 10, false), ids(&[]));
}

#[test]
fn private_conversations_start_at_since() {
    let dir = Dir::new("since");
    let (_store, r) = filled(&dir);
    let q = Query {
        target: "#c".into(),
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
        target: String::new(),
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
