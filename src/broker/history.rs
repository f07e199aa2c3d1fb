//! History as the broker sees it: records handed off, and questions asked of a store.
//!
//! The broker never touches a database. When it relays something worth remembering (a channel
//! message, a private message, a JOIN, PART, QUIT, KICK, TOPIC, NICK or MODE) it builds a
//! [`Record`] around the line it already serialized for the recipients and hands it to
//! [`HistorySink::record`], which is a `try_send` on a bounded channel: it never waits. A writer
//! at the edge of the node (`crate::store`) takes records from that channel and commits them in
//! batches on the blocking pool.
//!
//! Policy at the bound: when the channel is full (the disk is slower than the chat), the record
//! is not written. Chat goes on; the loss is counted ([`HistoryCounters::dropped`]), logged (the
//! first loss, then once per 1,000), and shown in `STATS e`.
//!
//! Reads go the other way: the broker parks the asking client, offloads a closure that calls
//! [`HistoryReader::read`] on the blocking pool, and answers when the result comes back as an
//! [`super::Event::HistoryRead`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Line;
use crate::proto::casemap;

/// One line to remember: a message or an event in one conversation, as the broker hands it
/// to the writer. Cheap to make on the hot path: the line is the `Arc` the recipients got (no
/// copy), the msgid a number (formatted only when replayed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The message id, a number unique across restarts ([`msgid_text`] is its `msgid` tag).
    /// The store keeps it as the row's key.
    pub msgid: u64,
    /// Server time, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The conversation: a casefolded channel name, or a private conversation's key
    /// ([`private_key`]).
    pub target: String,
    /// The target as shown to clients: the channel's display name, or for a private
    /// conversation the two nicks as [`private_key`] has them.
    pub name: String,
    /// A message (PRIVMSG, NOTICE) or an event (JOIN, PART, ...).
    pub kind: RecordKind,
    /// The line as relayed, without tags, CRLF included: `:nick!user@host PRIVMSG #chan :text`.
    /// Shared with the recipients' queues.
    pub line: Line,
    /// The message's client-only tags as relayed (`+draft/react=x;+a`, escaped), if any.
    pub client_tags: Option<Arc<str>>,
}

/// One line read back from the store, for a CHATHISTORY reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The `msgid` tag it was relayed with.
    pub msgid: String,
    /// Server time, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// A message or an event.
    pub kind: RecordKind,
    /// The line without tags and without CRLF.
    pub line: Vec<u8>,
    /// Its client-only tags (`+a=b;+c`, escaped), if it had any.
    pub client_tags: Option<String>,
}

/// What a [`Record`] is, for the `draft/event-playback` filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// PRIVMSG or NOTICE: every CHATHISTORY client gets these.
    Message = 0,
    /// JOIN, PART, QUIT, KICK, TOPIC, NICK, MODE: only clients with `draft/event-playback`.
    Event = 1,
}

impl RecordKind {
    /// From the stored number; anything unknown is an event (never shown without the cap).
    pub fn from_i64(n: i64) -> RecordKind {
        if n == 0 {
            RecordKind::Message
        } else {
            RecordKind::Event
        }
    }
}

impl Record {
    /// A record of `line` (as built for the recipients, CRLF included) in conversation
    /// `target` (`name` as shown), stamped now with a new msgid.
    pub fn new(target: &str, name: &str, kind: RecordKind, line: &Line) -> Record {
        Record {
            msgid: super::forms::next_msgid(),
            time_ms: now_ms(),
            target: target.to_string(),
            name: name.to_string(),
            kind,
            line: line.clone(),
            client_tags: None,
        }
    }

    /// The line without CRLF, as stored.
    pub fn bare_line(&self) -> &[u8] {
        self.line.strip_suffix(b"\r\n").unwrap_or(&self.line)
    }
}

/// The key of the private conversation between two nicks: both casefolded, in order, joined
/// by a space (which no nick contains), so either side finds the same conversation.
pub fn private_key(a: &str, b: &str) -> String {
    let (a, b) = (casemap::casefold(a), casemap::casefold(b));
    if a <= b {
        format!("{a} {b}")
    } else {
        format!("{b} {a}")
    }
}

/// Figures shared by the broker (what it handed off) and the writer (what reached the disk).
#[derive(Debug, Default)]
pub struct HistoryCounters {
    /// Records handed to the writer's queue.
    pub queued: AtomicU64,
    /// Records not written because the queue was full or the writer had stopped.
    pub dropped: AtomicU64,
    /// Records committed to the store.
    pub written: AtomicU64,
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Records lost because a commit failed (disk full, I/O error).
    pub failed: AtomicU64,
    /// Records deleted by retention.
    pub pruned: AtomicU64,
    /// Records the writer has finished with (stored or failed), for [`HistorySink::sync`].
    processed: Mutex<u64>,
    processed_changed: Condvar,
}

impl HistoryCounters {
    /// The writer finished with `n` more records (stored or failed). Wakes waiting reads.
    pub fn mark_processed(&self, n: u64) {
        let mut processed = self.processed.lock().unwrap_or_else(|p| p.into_inner());
        *processed += n;
        self.processed_changed.notify_all();
    }

    /// Whether the writer has finished with `point` records already.
    pub fn processed_at_least(&self, point: u64) -> bool {
        *self.processed.lock().unwrap_or_else(|p| p.into_inner()) >= point
    }

    /// Blocks until the writer has finished with `point` records, or `within` passed.
    /// Returns whether it got there. Blocking: call it on the blocking pool only.
    pub fn wait_processed(&self, point: u64, within: Duration) -> bool {
        let processed = self.processed.lock().unwrap_or_else(|p| p.into_inner());
        let (processed, _) = self
            .processed_changed
            .wait_timeout_while(processed, within, |n| *n < point)
            .unwrap_or_else(|p| p.into_inner());
        *processed >= point
    }

    /// One line for `STATS e`.
    pub fn summary(&self, queue_len: usize, queue_cap: usize) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "history: {} queued, {} stored in {} commits, {} dropped (queue full), {} failed \
             writes, {} pruned; queue {queue_len}/{queue_cap}",
            get(&self.queued),
            get(&self.written),
            get(&self.commits),
            get(&self.dropped),
            get(&self.failed),
            get(&self.pruned),
        )
    }
}

/// The broker's end of the writer's queue. Cloning shares the queue and the counters.
#[derive(Clone, Debug)]
pub struct HistorySink {
    tx: async_channel::Sender<Record>,
    flush: async_channel::Sender<()>,
    /// Ask for a commit once this many records wait (the writer does not wake per record).
    commit_at: usize,
    counters: Arc<HistoryCounters>,
}

/// The writer's end: the records, and requests to commit now rather than at the interval.
#[derive(Debug)]
pub struct WriterEnd {
    /// Records, in the order the broker relayed them.
    pub records: async_channel::Receiver<Record>,
    /// A token here asks the writer to commit what is queued at once: a read is waiting, or a
    /// full batch is. Closed when every sink is gone (the broker ended).
    pub flush: async_channel::Receiver<()>,
}

impl HistorySink {
    /// A sink and the receiver a writer drains, holding at most `capacity` records. The sink
    /// asks for a commit when half the queue is waiting (see [`HistorySink::commit_at`]).
    ///
    /// ```
    /// use chatnode::broker::history::{HistorySink, Record, RecordKind};
    /// let (sink, writer) = HistorySink::bounded(1);
    /// let line = std::sync::Arc::from(&b":a!a@h PRIVMSG #c :hi\r\n"[..]);
    /// sink.record(Record::new("#c", "#c", RecordKind::Message, &line));
    /// sink.record(Record::new("#c", "#c", RecordKind::Message, &line)); // full: counted
    /// assert_eq!(writer.records.len(), 1);
    /// assert_eq!(sink.counters().dropped.load(std::sync::atomic::Ordering::Relaxed), 1);
    /// ```
    pub fn bounded(capacity: usize) -> (HistorySink, WriterEnd) {
        let capacity = capacity.max(1);
        let (tx, records) = async_channel::bounded(capacity);
        let (flush_tx, flush) = async_channel::bounded(1);
        let counters = Arc::new(HistoryCounters::default());
        let sink = HistorySink {
            tx,
            flush: flush_tx,
            commit_at: capacity.div_ceil(2),
            counters,
        };
        (sink, WriterEnd { records, flush })
    }

    /// Asks the writer for a commit as soon as `n` records wait, rather than at the end of its
    /// interval; `n` is at least 1 and at most half the queue, so the queue has room for what
    /// arrives while the commit runs. Until then a record wakes nobody: it is one push on a
    /// queue.
    ///
    /// ```
    /// use chatnode::broker::history::{HistorySink, Record, RecordKind};
    /// let (sink, writer) = HistorySink::bounded(8);
    /// let sink = sink.commit_at(2);
    /// let line = std::sync::Arc::from(&b":a!a@h PRIVMSG #c :hi\r\n"[..]);
    /// sink.record(Record::new("#c", "#c", RecordKind::Message, &line));
    /// assert!(writer.flush.is_empty());
    /// sink.record(Record::new("#c", "#c", RecordKind::Message, &line));
    /// assert_eq!(writer.flush.len(), 1, "two wait: commit now");
    /// ```
    pub fn commit_at(mut self, n: usize) -> HistorySink {
        let half = self.tx.capacity().unwrap_or(1).div_ceil(2);
        self.commit_at = n.clamp(1, half);
        self
    }

    /// For read-your-writes: asks the writer to commit now, and returns the point a read must
    /// wait for ([`HistoryCounters::wait_processed`]) to see every record queued so far.
    pub fn sync(&self) -> u64 {
        let point = self.counters.queued.load(Ordering::Relaxed);
        if !self.counters.processed_at_least(point) {
            let _ = self.flush.try_send(()); // full: a request is already pending
        }
        point
    }

    /// Hands `record` to the writer without waiting. A full queue or a stopped writer loses
    /// the record: counted, and logged on the first loss and every 1,000th after.
    pub fn record(&self, record: Record) {
        match self.tx.try_send(record) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                if self.tx.len() >= self.commit_at {
                    let _ = self.flush.try_send(()); // full: a request is already pending
                }
            }
            Err(e) => {
                let lost = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if loss_worth_logging(lost) {
                    let why = if e.is_full() {
                        "the writer's queue is full (the disk is slower than the chat)"
                    } else {
                        "the writer has stopped"
                    };
                    log::warn!("history: {lost} records not stored so far: {why}");
                }
            }
        }
    }

    /// The figures shared with the writer.
    pub fn counters(&self) -> &Arc<HistoryCounters> {
        &self.counters
    }

    /// Records waiting for the writer, and the most it holds.
    pub fn queue_len(&self) -> (usize, usize) {
        (self.tx.len(), self.tx.capacity().unwrap_or(0))
    }
}

/// Whether the `lost`-th lost record is logged: the first, then every 1,000th, so a disk that
/// stays slow fills the log with one line per thousand losses, not one per message.
fn loss_worth_logging(lost: u64) -> bool {
    lost == 1 || lost % 1000 == 0
}

/// Where a CHATHISTORY selector points: a message by id, or a moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bound {
    /// `msgid=...`
    Msgid(String),
    /// `timestamp=...`, as milliseconds since the Unix epoch.
    Time(i64),
}

/// One CHATHISTORY question, already checked and limited by the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// Whose lines (ignored by [`Select::Targets`]).
    pub scope: Scope,
    /// Which records.
    pub select: Select,
    /// Most records (or conversations) returned.
    pub limit: usize,
    /// Include events (`draft/event-playback`); otherwise only PRIVMSG and NOTICE.
    pub events: bool,
    /// Nothing older than this (ms): a private conversation is shown only from the asking
    /// client's sign-on, since without accounts a nick says nothing about who held it before.
    pub since: i64,
}

/// Which conversations a CHATHISTORY read looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One conversation, by key: a casefolded channel name or a [`private_key`].
    One(String),
    /// Every private conversation of this casefolded nick: the `*` target ("all direct
    /// messages sent to or from the current user, regardless of the other party").
    Direct(String),
}

/// The CHATHISTORY subcommands, as questions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Select {
    /// The newest records, only those after the bound if given (`*` is `None`).
    Latest(Option<Bound>),
    /// The records just before the bound (excluded).
    Before(Bound),
    /// The records just after the bound (excluded).
    After(Bound),
    /// About half before the bound, the rest from it on.
    Around(Bound),
    /// Strictly between two bounds, from the first one's side.
    Between(Bound, Bound),
    /// Conversations with a message between two times, ordered by their latest message.
    Targets {
        /// The channels the asking client is in (keys).
        channels: Vec<String>,
        /// The client's nick, casefolded: private conversations whose key has it count.
        nick: String,
        /// One end of the time range (ms).
        from: i64,
        /// The other end.
        to: i64,
    },
}

/// What the broker asked, kept with the job so the answer can be shaped when it comes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `LATEST`, `BEFORE`, ..., `TARGETS`.
    pub subcommand: String,
    /// The target as the client wrote it (the batch names it).
    pub target: String,
    /// A CHATHISTORY command, or the replay after a JOIN.
    pub replay_on_join: bool,
}

/// A conversation listed by `CHATHISTORY TARGETS`: its key, name and latest message time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSummary {
    /// The conversation key.
    pub target: String,
    /// As shown.
    pub name: String,
    /// The newest message's time, ms.
    pub latest_ms: i64,
}

/// What a read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Lines, oldest first.
    Records(Vec<Stored>),
    /// Conversations (`TARGETS`).
    Targets(Vec<TargetSummary>),
}

/// A store the broker can ask. [`HistoryReader::read`] blocks: the broker only ever calls it
/// inside a job it offloads to the blocking pool.
pub trait HistoryReader: Send + Sync {
    /// Answers `query`; an error is a sentence for the log.
    fn read(&self, query: &Query) -> Result<Found, String>;
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A new message id, from the node's one msgid counter (see `broker::forms`): unique across
/// restarts.
pub fn new_msgid() -> u64 {
    super::forms::next_msgid()
}

/// The `msgid` tag of message id `id`.
///
/// ```
/// use chatnode::broker::history::{msgid_text, new_msgid, parse_msgid};
/// let id = new_msgid();
/// assert_eq!(parse_msgid(&msgid_text(id)), Some(id));
/// assert_eq!(parse_msgid("not-one"), None);
/// ```
pub fn msgid_text(id: u64) -> String {
    super::forms::msgid_text(id)
}

/// The message id a `msgid` tag names, if it is one of this node's form.
pub fn parse_msgid(text: &str) -> Option<u64> {
    super::forms::parse_msgid(text)
}

/// Makes every msgid handed out from now on larger than `id`: the store calls it at start
/// with the largest id it holds, so ids stay unique across restarts even when the clock went
/// back (a board without a real-time clock) and a new id can never collide with a stored row.
pub fn reserve_msgids_above(id: u64) {
    super::forms::reserve_msgids_above(id)
}

/// `2024-05-01T12:34:56.789Z` (the `server-time` format) for `ms` since the epoch.
pub fn format_time(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// Parses the `server-time` format (`YYYY-MM-DDThh:mm:ss[.sss]Z`) into ms since the epoch.
///
/// ```
/// use chatnode::broker::history::{format_time, parse_time};
/// let ms = parse_time("2024-05-01T12:34:56.789Z").unwrap();
/// assert_eq!(format_time(ms), "2024-05-01T12:34:56.789Z");
/// assert_eq!(parse_time("yesterday"), None);
/// ```
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (date.next()??, date.next()??, date.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, sec) = (hms.next()??, hms.next()??, hms.next()??);
    // The fields are parsed as i64, so "-1" would get through a bare upper bound.
    let in_range = (1..=12).contains(&m)
        && (1..=31).contains(&d)
        && (0..=23).contains(&h)
        && (0..=59).contains(&min)
        && (0..=60).contains(&sec);
    if !in_range {
        return None;
    }
    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) || y < 0 {
        return None;
    }
    let milli: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    let days = days_from_civil(y, m, d);
    Some(((days * 24 + h) * 60 + min) * 60_000 + sec * 1000 + milli)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_waits_for_the_writer_to_get_to_its_point() {
        let counters = HistoryCounters::default();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| counters.wait_processed(2, Duration::from_secs(30)));
            // Not needed for the outcome (either order gives `true`): it makes the waiter
            // block before the writer gets there, so the waiting is what is tested.
            std::thread::sleep(Duration::from_millis(50));
            counters.mark_processed(1);
            counters.mark_processed(1);
            assert!(waiter.join().unwrap());
        });
        assert!(!counters.wait_processed(3, Duration::from_millis(1)));
    }

    #[test]
    fn time_round_trips() {
        for ms in [0, 951_782_400_000, 1_714_566_896_789, 4_102_444_800_000] {
            assert_eq!(
                parse_time(&format_time(ms)),
                Some(ms),
                "{}",
                format_time(ms)
            );
        }
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(parse_time("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_time("2024-01-01 00:00:00Z"), None);
        assert_eq!(parse_time("2024-01-01T00:00:00"), None);
    }

    /// Every day from 1890 to 2410 (1900 and 2100 are not leap years, 2000 and 2400 are and
    /// end a 400-year era of the algorithm) against a plain day-by-day count: `format_time`
    /// writes the date and time of day the count says, and `parse_time` reads it back.
    #[test]
    fn calendar_matches_a_day_by_day_count() {
        let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let month_len = |y: i64, m: i64| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        // Day number (since 1970-01-01) of 1890-01-01.
        let mut day: i64 = -(1890..1970)
            .map(|y| if leap(y) { 366 } else { 365 })
            .sum::<i64>();
        let (mut y, mut m, mut d) = (1890, 1, 1);
        while y < 2411 {
            // A time of day that moves through hours, minutes, seconds and millis.
            let tod = (day * 7_919_993).rem_euclid(86_400_000);
            let ms = day * 86_400_000 + tod;
            let text = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                tod / 3_600_000,
                tod / 60_000 % 60,
                tod / 1000 % 60,
                tod % 1000
            );
            assert_eq!(format_time(ms), text, "day {day}");
            assert_eq!(parse_time(&text), Some(ms), "{text}");
            day += 1;
            d += 1;
            if d > month_len(y, m) {
                (d, m) = (1, m + 1);
                if m > 12 {
                    (m, y) = (1, y + 1);
                }
            }
        }
    }

    #[test]
    fn parse_time_takes_each_field_only_in_its_range() {
        let at = |s: &str| parse_time(&format!("2024-{s}Z"));
        assert_eq!(at("01-01T00:00:00.000"), Some(1_704_067_200_000));
        // Year 0 is a year (the proleptic calendar's 1 BC); a minus sign cannot start one.
        assert_eq!(
            parse_time("0000-01-01T00:00:00Z"),
            Some(-62_167_219_200_000)
        );
        assert_eq!(parse_time("-001-01-01T00:00:00Z"), None);
        // The fraction: missing, short and long.
        assert_eq!(at("01-01T00:00:00"), Some(1_704_067_200_000));
        assert_eq!(at("01-01T00:00:00.5"), Some(1_704_067_200_500));
        assert_eq!(at("01-01T00:00:00.12"), Some(1_704_067_200_120));
        assert_eq!(at("01-01T00:00:00.1239"), Some(1_704_067_200_123));
        for bad in ["01-01T00:00:00.", "01-01T00:00:00.1x", "01-01T00:00:00.-1"] {
            assert_eq!(at(bad), None, "{bad}");
        }
        // Each field at its largest and one past it.
        assert_eq!(at("12-31T23:59:59.999"), Some(1_735_689_599_999));
        assert_eq!(
            at("12-31T23:59:60"),
            Some(1_735_689_600_000),
            "a leap second"
        );
        for bad in [
            "00-10T00:00:00",
            "13-10T00:00:00",
            "01-00T00:00:00",
            "01-32T00:00:00",
            "01-01T24:00:00",
            "01-01T23:60:00",
            "01-01T23:59:61",
            "01-01T-1:00:00",
            "01-01T00:-1:00",
            "01-01T00:00:-1",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        assert_eq!(at("01-31T00:00:00"), Some(1_706_659_200_000));
        // Shape: the Z, the T, three date and three time fields.
        for bad in [
            "2024-01-01T00:00:00",
            "2024-01-01 00:00:00Z",
            "2024-01T00:00:00Z",
            "2024-01-01T00:00Z",
            "-2024-01-01T00:00:00Z",
            "",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn record_kinds_from_the_store() {
        assert_eq!(RecordKind::from_i64(0), RecordKind::Message);
        assert_eq!(RecordKind::from_i64(1), RecordKind::Event);
        assert_eq!(
            RecordKind::from_i64(-1),
            RecordKind::Event,
            "unknown: an event"
        );
        let line: Line = Arc::from(&b":a!a@h PRIVMSG #c :hi\r\n"[..]);
        let before = now_ms();
        let r = Record::new("#c", "#C", RecordKind::Message, &line);
        assert!(Arc::ptr_eq(&r.line, &line), "the relayed bytes, shared");
        assert_eq!(r.bare_line(), b":a!a@h PRIVMSG #c :hi");
        assert_eq!((r.target.as_str(), r.name.as_str()), ("#c", "#C"));
        assert!(
            r.time_ms >= before && r.time_ms <= now_ms(),
            "{}",
            r.time_ms
        );
        assert!(before > 1_700_000_000_000, "now_ms is the Unix time in ms");
        assert!(r.msgid > 0 && parse_msgid(&msgid_text(r.msgid)) == Some(r.msgid));
    }

    /// The writer is asked for a commit once `commit_at` records wait, not before (until then
    /// a record wakes nobody) and not only at the end of its interval.
    #[test]
    fn sink_asks_for_a_commit_once_commit_at_records_wait() {
        let line: Line = Arc::from(&b":a!a@h PRIVMSG #c :hi\r\n"[..]);
        let record = || Record::new("#c", "#c", RecordKind::Message, &line);
        let (sink, writer) = HistorySink::bounded(8);
        let sink = sink.commit_at(3);
        sink.record(record());
        sink.record(record());
        assert!(writer.flush.is_empty(), "two wait: no commit yet");
        sink.record(record());
        assert_eq!(writer.flush.len(), 1, "three wait: commit now");
        let _ = writer.flush.try_recv();
        sink.record(record());
        assert_eq!(writer.flush.len(), 1, "still three or more waiting");
    }

    /// The sink counts what it queued and dropped, says how full it is, and asks the writer to
    /// flush only when a read would otherwise wait.
    #[test]
    fn sink_counts_queues_and_asks_for_a_flush_only_when_needed() {
        let line: Line = Arc::from(&b":a!a@h PRIVMSG #c :hi\r\n"[..]);
        let record = || Record::new("#c", "#c", RecordKind::Message, &line);
        let (sink, writer) = HistorySink::bounded(2);
        assert_eq!(sink.queue_len(), (0, 2));
        assert_eq!(sink.sync(), 0);
        assert!(
            writer.flush.try_recv().is_err(),
            "nothing to wait for: no flush"
        );
        sink.record(record());
        sink.record(record());
        sink.record(record()); // full: dropped
        assert_eq!(sink.queue_len(), (2, 2));
        let c = sink.counters();
        assert_eq!(c.queued.load(Ordering::Relaxed), 2);
        assert_eq!(c.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(sink.sync(), 2);
        assert!(
            writer.flush.try_recv().is_ok(),
            "records pending: a flush request"
        );
        assert_eq!(writer.records.len(), 2);
        c.mark_processed(2);
        assert_eq!(sink.sync(), 2);
        assert!(writer.flush.try_recv().is_err(), "all processed: no flush");
        c.written.store(2, Ordering::Relaxed);
        c.commits.store(1, Ordering::Relaxed);
        c.pruned.store(4, Ordering::Relaxed);
        c.failed.store(3, Ordering::Relaxed);
        assert_eq!(
            c.summary(1, 16),
            "history: 2 queued, 2 stored in 1 commits, 1 dropped (queue full), 3 failed writes, \
             4 pruned; queue 1/16"
        );
        // A writer that has stopped: dropped, not queued.
        drop(writer);
        sink.record(record());
        assert_eq!(c.queued.load(Ordering::Relaxed), 2);
        assert_eq!(c.dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn losses_are_logged_first_then_every_thousandth() {
        let logged: Vec<u64> = (1..=3001).filter(|&n| loss_worth_logging(n)).collect();
        assert_eq!(logged, [1, 1000, 2000, 3000]);
    }

    #[test]
    fn private_keys_are_symmetric() {
        assert_eq!(private_key("Alice", "bob"), private_key("BOB", "alice"));
        assert_eq!(private_key("alice", "bob"), "alice bob");
    }

    /// `wait_processed` returns at once when the point is reached, waits for the writer when it
    /// is not, and gives up after `within` otherwise. "At once" without timing: with `within` an
    /// hour, a call that waited for more than the point would not return within the deadline.
    #[test]
    fn wait_processed_returns_when_the_point_is_reached() {
        use std::sync::mpsc;
        const DEADLINE: Duration = Duration::from_secs(20);
        let counters = Arc::new(HistoryCounters::default());
        counters.mark_processed(3);
        let (tx, rx) = mpsc::channel();
        let waiting = counters.clone();
        std::thread::spawn(move || {
            let exact = waiting.wait_processed(3, Duration::from_secs(3600));
            tx.send(exact).unwrap();
            let later = waiting.wait_processed(5, Duration::from_secs(3600));
            tx.send(later).unwrap();
        });
        assert_eq!(rx.recv_timeout(DEADLINE), Ok(true), "exactly at the point");
        // The second wait needs 2 more records: still waiting, until the writer gets there.
        assert!(!counters.processed_at_least(5));
        counters.mark_processed(2);
        assert_eq!(
            rx.recv_timeout(DEADLINE),
            Ok(true),
            "woken by mark_processed"
        );
        assert!(counters.processed_at_least(5));
        assert!(
            !counters.wait_processed(6, Duration::from_millis(1)),
            "gave up"
        );
    }

    #[test]
    fn msgids_differ() {
        assert_ne!(new_msgid(), new_msgid());
    }
}
