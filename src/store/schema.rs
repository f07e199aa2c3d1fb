//! The database's schema, as a list of migrations, and the check made before it is used.
//!
//! The schema's version is SQLite's `user_version`. [`MIGRATIONS`]`[n]` takes a database from
//! version `n` to `n + 1`; [`migrate`] runs the missing ones, each in its own transaction that
//! also sets the new version, so a crash mid-migration leaves the old version intact. Never edit
//! a migration that has shipped: add one.

use rusqlite::Connection;

/// Migration `n` takes the schema from version `n` to `n + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: one table of records. `id` (the rowid) breaks ties between records of the same
    // millisecond, so every two records have one order (the spec asks for that).
    "CREATE TABLE history (
         id      INTEGER PRIMARY KEY,
         msgid   TEXT    NOT NULL,
         time_ms INTEGER NOT NULL,
         target  TEXT    NOT NULL,
         name    TEXT    NOT NULL,
         kind    INTEGER NOT NULL,
         line    TEXT    NOT NULL
     );
     CREATE INDEX history_by_target ON history (target, time_ms, id);
     CREATE INDEX history_by_msgid ON history (msgid);",
    // 2: retention deletes the oldest records of every conversation at once.
    "CREATE INDEX history_by_time ON history (time_ms);",
    // 3: the msgid is the row's key (`id`): the node's msgids are numbers (their text is base
    // 36), so a lookup by msgid is a lookup by key and every insert updates one index fewer.
    // Rows stored before keep their text msgid, still found through a partial index that new
    // rows (msgid '') stay out of. Client-only tags are kept, to be replayed.
    "DROP INDEX history_by_msgid;
     CREATE INDEX history_by_old_msgid ON history (msgid) WHERE msgid <> '';
     ALTER TABLE history ADD COLUMN tags TEXT;",
];

/// The version this build writes.
pub const VERSION: usize = MIGRATIONS.len();

/// Brings the database to [`VERSION`]. A database of a newer version (made by a newer
/// chatnode) is refused, not touched.
pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let found = usize::try_from(found).unwrap_or(usize::MAX);
    if found > VERSION {
        return Err(format!(
            "its schema is version {found}, newer than this chatnode knows ({VERSION}): \
             run the newer chatnode, or move the file aside"
        ));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found) {
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", from as i64 + 1))
            .and_then(|()| tx.commit())
            .map_err(|e| format!("migration to version {} failed: {e}", from + 1))?;
        log::info!("history: schema migrated to version {}", from + 1);
    }
    Ok(())
}

/// `PRAGMA quick_check`: the structure of every page and index (not every row against every
/// index, which would read the whole file twice at each start on an SD card).
pub fn check(conn: &Connection) -> Result<(), String> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| e.to_string())?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    let first: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
    Err(format!("the integrity check failed: {}", first.join("; ")))
}
