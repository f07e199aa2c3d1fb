//! History in SQLite: an adapter at the edge of the node, never on an executor thread.
//!
//! The broker hands [`Record`]s to a bounded queue ([`crate::broker::history::HistorySink`]);
//! [`writer::run`] drains it, batching records into one transaction by count and by time, and
//! commits each batch on the blocking pool through [`crate::rt::Runtime::unblock`] (which is
//! `blocking::unblock` on our executor and `spawn_blocking` on Tokio: the one line where the two
//! builds differ). CHATHISTORY reads go through [`Reader`], a second connection, also on the
//! blocking pool.
//!
//! Invariants:
//! - Every call into SQLite blocks, so every call here runs on the blocking pool.
//! - One writer connection (owned by the writer task, moved into each blocking job and back) and
//!   one reader connection; WAL lets the reader read while the writer writes.
//! - A database that cannot be opened, is damaged, or was made by a newer chatnode is a
//!   [`StoreError`] that names the file and says what to do. Nothing here panics on bad data,
//!   and nothing is deleted except by retention ([`Store::prune`]).
//!
//! Durability: `synchronous=NORMAL` in WAL mode. A committed transaction survives the process
//! being killed (`kill -9`): it is in the WAL file, which SQLite replays at the next open. A
//! power cut may lose the last commits that the OS had not yet written out; it never corrupts
//! the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use crate::broker::history::{
    msgid_text, parse_msgid, reserve_msgids_above, Bound, Found, HistoryReader, Query, Record,
    RecordKind, Scope, Select, Stored, TargetSummary,
};

mod schema;
pub mod writer;

pub use schema::VERSION as SCHEMA_VERSION;

/// The database's file name inside `--data-dir`.
pub const FILE_NAME: &str = "history.sqlite3";

/// How long a connection waits for the other's lock before giving up (checkpoints, pruning).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite's page cache per connection, KiB (two connections: the writer and the reader).
///
/// SQLite's default is 2000 KiB per connection, and the writer fills it as the history grows:
/// a node that keeps chatting gains up to 2 MiB of RSS over minutes (the soak saw +20 % of the
/// node's memory that way). History is written at the end of its tables and read by index, so a
/// smaller cache costs little, and on a board every MiB counts. A bound, stated in
/// docs/limits.md.
pub const PAGE_CACHE_KIB: i64 = 512;

/// Why the store cannot be used: the file, what went wrong, what to do.
#[derive(Debug)]
pub struct StoreError {
    path: PathBuf,
    what: String,
}

impl StoreError {
    fn new(path: &Path, what: impl fmt::Display) -> StoreError {
        StoreError {
            path: path.to_path_buf(),
            what: what.to_string(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        write!(
            f,
            "history database {p} cannot be used: {}. Nothing was changed. To go on: stop the \
             node and move the file aside (mv {p} {p}.damaged, with its -wal and -shm files) \
             to start an empty history, or restore it from a backup (docs/embedded.md), or \
             run with --history off",
            self.what
        )
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for std::io::Error {
    fn from(e: StoreError) -> Self {
        std::io::Error::other(e.to_string())
    }
}

/// The writer's connection. Blocking: use it on the blocking pool only.
pub struct Store {
    path: PathBuf,
    conn: Connection,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, checks it, and migrates its schema.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("chatnode-doc-{}", std::process::id()));
    /// let store = chatnode::store::Store::open(&dir.join("h.sqlite3")).unwrap();
    /// assert_eq!(store.count().unwrap(), 0);
    /// # std::fs::remove_dir_all(dir).ok();
    /// ```
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::new(path, format!("cannot create its directory: {e}")))?;
        }
        let mut conn = Connection::open(path).map_err(|e| StoreError::new(path, e))?;
        let setup = |conn: &Connection| -> rusqlite::Result<()> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                log::warn!("history: {} is not in WAL mode ({mode})", path.display());
            }
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)
        };
        setup(&conn).map_err(|e| StoreError::new(path, e))?;
        schema::check(&conn).map_err(|e| StoreError::new(path, e))?;
        schema::migrate(&mut conn).map_err(|e| StoreError::new(path, e))?;
        // New msgids are row keys: keep them above every key stored, whatever the clock says.
        let max: Option<i64> = conn
            .query_row("SELECT max(id) FROM history", [], |r| r.get(0))
            .map_err(|e| StoreError::new(path, e))?;
        reserve_msgids_above(max.map_or(0, |m| m.max(0) as u64));
        Ok(Store {
            path: path.to_path_buf(),
            conn,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `batch` in one transaction: all of it or, on error, none of it. Each record's
    /// msgid is its row key; its line is bound straight from the shared bytes.
    pub fn write(&mut self, batch: &[Record]) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO history (id, msgid, time_ms, target, name, kind, line, tags) \
                     VALUES (?1, '', ?2, ?3, ?4, ?5, CAST(?6 AS TEXT), ?7)",
                )
                .map_err(|e| e.to_string())?;
            for r in batch {
                insert
                    .execute(params![
                        r.msgid as i64,
                        r.time_ms,
                        r.target,
                        r.name,
                        r.kind as i64,
                        r.bare_line(),
                        r.client_tags.as_deref(),
                    ])
                    .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())
    }

    /// Records in the database.
    pub fn count(&self) -> Result<u64, String> {
        self.conn
            .query_row("SELECT count(*) FROM history", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| e.to_string())
    }

    /// Deletes records older than `max_age` and, while the live data is larger than
    /// `max_bytes`, the oldest tenth. Returns how many records went. Freed pages are reused by
    /// later writes; the file does not shrink (no VACUUM: that rewrites the whole file).
    pub fn prune(
        &mut self,
        max_age: Option<Duration>,
        max_bytes: Option<u64>,
    ) -> Result<u64, String> {
        let mut deleted = 0u64;
        if let Some(age) = max_age {
            let cutoff = crate::broker::history::now_ms() - age.as_millis() as i64;
            deleted += self
                .conn
                .execute("DELETE FROM history WHERE time_ms < ?1", [cutoff])
                .map_err(|e| e.to_string())? as u64;
        }
        if let Some(max) = max_bytes {
            // Bounded: each round deletes a tenth of what is left.
            for _ in 0..20 {
                if self.live_bytes()? <= max {
                    break;
                }
                let n = self.count()?.div_ceil(10).max(1);
                deleted += self
                    .conn
                    .execute(
                        "DELETE FROM history WHERE id IN \
                         (SELECT id FROM history ORDER BY time_ms, id LIMIT ?1)",
                        [n as i64],
                    )
                    .map_err(|e| e.to_string())? as u64;
            }
        }
        Ok(deleted)
    }

    /// Bytes of pages in use (the file minus its free pages).
    pub fn live_bytes(&self) -> Result<u64, String> {
        let get = |pragma: &str| -> Result<i64, String> {
            self.conn
                .query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
                .map_err(|e| e.to_string())
        };
        let pages = get("page_count")? - get("freelist_count")?;
        Ok((pages.max(0) * get("page_size")?) as u64)
    }

    /// Moves the WAL's content into the main file and empties the WAL (done at shutdown, so a
    /// backup of the main file alone is complete).
    pub fn checkpoint(&self) -> Result<(), String> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| e.to_string())
    }
}

/// The reading connection, shared by every CHATHISTORY job (one at a time).
pub struct Reader {
    conn: Mutex<Connection>,
}

impl Reader {
    /// Opens a read-only connection to the database at `path` (open a [`Store`] first: it
    /// creates and migrates the file).
    pub fn open(path: &Path) -> Result<Reader, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| c.busy_timeout(BUSY_TIMEOUT).map(|()| c))
        .and_then(|c| {
            c.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)
                .map(|()| c)
        })
        .map_err(|e| StoreError::new(path, e))?;
        Ok(Reader {
            conn: Mutex::new(conn),
        })
    }
}

impl HistoryReader for Reader {
    fn read(&self, query: &Query) -> Result<Found, String> {
        // A panic in another job cannot leave the connection half-used: each query is one
        // statement, so a poisoned lock is still a usable connection.
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        read(&conn, query).map_err(|e| e.to_string())
    }
}

/// A position in a conversation's order: (time, id). Bounds by time sit between ids.
type Key = (i64, i64);

const FIRST: Key = (i64::MIN, i64::MIN);
const LAST: Key = (i64::MAX, i64::MAX);

/// Which side of a bound the wanted records are on; decides where a timestamp bound sits.
#[derive(Clone, Copy)]
enum Side {
    /// Wanted records come before the bound: a timestamp bound excludes its own millisecond.
    Before,
    /// Wanted records come after the bound.
    After,
}

fn read(conn: &Connection, q: &Query) -> rusqlite::Result<Found> {
    let page =
        |from: Key, to: Key, newest: bool, limit: usize| page(conn, q, from, to, newest, limit);
    let at = |bound: &Bound, side: Side| key(conn, &q.scope, bound, side);
    let records = match &q.select {
        Select::Latest(None) => page(FIRST, LAST, true, q.limit)?,
        Select::Latest(Some(b)) => match at(b, Side::After)? {
            Some(from) => page(from, LAST, true, q.limit)?,
            None => Vec::new(),
        },
        Select::Before(b) => match at(b, Side::Before)? {
            Some(to) => page(FIRST, to, true, q.limit)?,
            None => Vec::new(),
        },
        Select::After(b) => match at(b, Side::After)? {
            Some(from) => page(from, LAST, false, q.limit)?,
            None => Vec::new(),
        },
        Select::Around(b) => match at(b, Side::Before)? {
            Some(mid) => {
                // Half before; the rest from the bound on (a msgid's own message included:
                // it is the one the client wants context for).
                let mut before = page(FIRST, mid, true, q.limit / 2)?;
                let from = (mid.0, mid.1.saturating_sub(1));
                before.extend(page(from, LAST, false, q.limit - before.len())?);
                before
            }
            None => Vec::new(),
        },
        Select::Between(first, second) => {
            match (at(first, Side::After)?, at(second, Side::After)?) {
                (Some(a), Some(b)) if a <= b => {
                    let to = at(second, Side::Before)?.unwrap_or(b);
                    page(a, to, false, q.limit)?
                }
                (Some(_), Some(b)) => {
                    let to = at(first, Side::Before)?.unwrap_or(b);
                    page(b, to, true, q.limit)?
                }
                _ => Vec::new(),
            }
        }
        Select::Targets {
            channels,
            nick,
            from,
            to,
        } => {
            let found = targets_between(conn, channels, nick, (*from, *to), q.limit, q.since)?;
            return Ok(Found::Targets(found));
        }
    };
    Ok(Found::Records(records))
}

/// The SQL condition selecting the scope's rows, with the key or nick as `?1`, and that
/// parameter. A private conversation's key is two casefolded nicks joined by a space, and a
/// channel key has no space, so "the nick, then a space" at the start or "a space, then the
/// nick" at the end picks out exactly the nick's private conversations.
fn scope_sql(scope: &Scope) -> (&'static str, &str) {
    match scope {
        Scope::One(key) => ("target = ?1", key),
        Scope::Direct(nick) => (
            "(substr(target, 1, length(?1) + 1) = ?1 || ' ' \
             OR substr(target, -length(?1) - 1) = ' ' || ?1)",
            nick,
        ),
    }
}

/// Where `bound` sits, seen from `side`; `None` for a msgid not in the scope.
fn key(
    conn: &Connection,
    scope: &Scope,
    bound: &Bound,
    side: Side,
) -> rusqlite::Result<Option<Key>> {
    let (cond, who) = scope_sql(scope);
    let row = |r: &Row| Ok((r.get(0)?, r.get(1)?));
    match bound {
        Bound::Time(t) => Ok(Some(match side {
            Side::Before => (*t, i64::MIN),
            Side::After => (*t, i64::MAX),
        })),
        // This node's msgids are row keys; older rows keep their text in `msgid`.
        Bound::Msgid(m) => match parse_msgid(m) {
            Some(id) => {
                let sql = format!("SELECT time_ms, id FROM history WHERE id = ?2 AND {cond}");
                conn.query_row(&sql, params![who, id as i64], row)
                    .optional()
            }
            None => {
                let sql = format!(
                    "SELECT time_ms, id FROM history \
                     WHERE msgid = ?2 AND msgid <> '' AND {cond} LIMIT 1"
                );
                conn.query_row(&sql, params![who, m], row).optional()
            }
        },
    }
}

/// Up to `limit` lines of the query's scope strictly between `from` and `to`: the newest ones
/// if `newest`, else the oldest ones. Always returned oldest first.
fn page(
    conn: &Connection,
    q: &Query,
    from: Key,
    to: Key,
    newest: bool,
    limit: usize,
) -> rusqlite::Result<Vec<Stored>> {
    let order = if newest { "DESC" } else { "ASC" };
    let (cond, who) = scope_sql(&q.scope);
    let sql = format!(
        "SELECT id, msgid, time_ms, kind, line, tags FROM history \
         WHERE {cond} AND (time_ms, id) > (?2, ?3) AND (time_ms, id) < (?4, ?5) \
         AND (kind = 0 OR ?6) AND time_ms >= ?7 \
         ORDER BY time_ms {order}, id {order} LIMIT ?8"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            who,
            from.0,
            from.1,
            to.0,
            to.1,
            q.events,
            q.since,
            limit as i64
        ],
        stored,
    )?;
    let mut records: Vec<Stored> = rows.collect::<rusqlite::Result<_>>()?;
    if newest {
        records.reverse();
    }
    Ok(records)
}

/// A row of `SELECT id, msgid, time_ms, kind, line, tags`.
fn stored(r: &Row) -> rusqlite::Result<Stored> {
    let id: i64 = r.get(0)?;
    let old: String = r.get(1)?;
    let msgid = if old.is_empty() {
        msgid_text(id as u64)
    } else {
        old
    };
    // Lines are stored as text; any bytes, as relayed (not necessarily UTF-8).
    let line = match r.get_ref(4)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
        _ => Vec::new(),
    };
    Ok(Stored {
        msgid,
        time_ms: r.get(2)?,
        kind: RecordKind::from_i64(r.get(3)?),
        line,
        client_tags: r.get(5)?,
    })
}

/// Conversations with a message strictly between the two times, among the client's channels
/// and its private conversations (keys containing `nick`, only since `since`), by latest
/// message, oldest first.
fn targets_between(
    conn: &Connection,
    channels: &[String],
    nick: &str,
    (from, to): (i64, i64),
    limit: usize,
    since: i64,
) -> rusqlite::Result<Vec<TargetSummary>> {
    let (lo, hi) = (from.min(to), from.max(to));
    let mut stmt = conn.prepare_cached(
        "SELECT target, name, max(time_ms) AS latest FROM history \
         WHERE kind = 0 AND time_ms > ?1 AND time_ms < ?2 GROUP BY target ORDER BY latest, target",
    )?;
    let rows = stmt.query_map(params![lo, hi], |r| {
        Ok(TargetSummary {
            target: r.get(0)?,
            name: r.get(1)?,
            latest_ms: r.get(2)?,
        })
    })?;
    let mut out = Vec::new();
    for summary in rows {
        let summary = summary?;
        let private = summary.target.split_once(' ');
        let mine = match private {
            Some((a, b)) => (a == nick || b == nick) && summary.latest_ms >= since,
            None => channels.contains(&summary.target),
        };
        if mine {
            out.push(summary);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
