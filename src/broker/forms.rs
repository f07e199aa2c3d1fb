//! One outgoing message in every form its recipients' capabilities ask for, each serialized
//! at most once, lazily.
//!
//! A message has one body (`:source COMMAND params\r\n`), serialized when the [`Forms`] is
//! made. A recipient without tag capabilities gets that body itself (an `Arc` clone, the
//! same as before tags existed). Tagged forms are built the first time a recipient needs
//! one and shared by every later recipient that needs the same one:
//!
//! | recipient has            | gets                                              |
//! |--------------------------|---------------------------------------------------|
//! | neither cap below        | the body                                          |
//! | `server-time` only       | `@time=...` + body                                |
//! | `message-tags`           | `@time=...;msgid=...;+client-tags` + body         |
//!
//! (`message-tags` means "any tag is fine", so those recipients get `time` too.) A message
//! may also carry an alternative body for recipients with one capability (extended-join's
//! JOIN), and a capability a recipient must have to get it at all (TAGMSG needs
//! `message-tags`, AWAY notifications `away-notify`). So one message is serialized at most
//! six times whatever the number of recipients, and never per recipient.
//!
//! The `time` tag is read from the clock once per message, when the first tagged form is
//! built; the msgid is a node-wide counter behind a prefix fixed at start ([`next_msgid`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::caps::Caps;
use super::Line;

/// Capabilities that change which form a recipient gets.
const TAGGING: Caps = Caps::SERVER_TIME.with(Caps::MESSAGE_TAGS);

/// A message and its forms. See the [module docs](self).
pub(crate) struct Forms {
    body: Line,
    /// Recipients lacking any of these get nothing.
    requires: Caps,
    /// Recipients with this capability get `alt` instead of `body`.
    alt_cap: Caps,
    alt: Option<Line>,
    /// For `message-tags` recipients.
    msgid: Option<u64>,
    client_tags: Option<Arc<str>>,
    /// When the message was sent: read from the clock once, the first time it is needed.
    at: Option<SystemTime>,
    time: Option<String>,
    /// Tagged forms: index `alt * 2 + (level - 1)`, level 1 = time only, 2 = all tags.
    built: [Option<Line>; 4],
}

impl Forms {
    /// A server event (JOIN, PART, NICK, ...): tagged with `time` only.
    pub(crate) fn new(body: Line) -> Forms {
        Forms {
            body,
            requires: Caps::NONE,
            alt_cap: Caps::NONE,
            alt: None,
            msgid: None,
            client_tags: None,
            at: None,
            time: None,
            built: Default::default(),
        }
    }

    /// A user message (PRIVMSG, NOTICE, TAGMSG): gets a new msgid and relays `client_tags`.
    pub(crate) fn message(body: Line, client_tags: Option<Arc<str>>) -> Forms {
        Forms {
            msgid: Some(next_msgid()),
            client_tags,
            ..Forms::new(body)
        }
    }

    /// Only recipients with every capability in `caps` get this message.
    pub(crate) fn requiring(mut self, caps: Caps) -> Forms {
        self.requires = caps;
        self
    }

    /// Recipients with `cap` get `alt` as the body instead.
    pub(crate) fn with_alternative(mut self, cap: Caps, alt: Line) -> Forms {
        self.alt_cap = cap;
        self.alt = Some(alt);
        self
    }

    /// The form for a recipient with `caps`, or `None` if it must not get the message.
    #[inline]
    pub(crate) fn line_for(&mut self, caps: Caps) -> Option<&Line> {
        if !caps.has(self.requires) {
            return None;
        }
        if !caps.any(TAGGING.with(self.alt_cap)) {
            return Some(&self.body);
        }
        Some(self.tagged(caps))
    }

    /// The body every form is built from (no tags).
    pub(crate) fn body(&self) -> &Line {
        &self.body
    }

    /// The msgid (sent as [`msgid_text`] in the `msgid` tag), if this is a user message.
    pub(crate) fn msgid(&self) -> Option<u64> {
        self.msgid
    }

    /// The client-only tags relayed with this message, if any.
    pub(crate) fn client_tags(&self) -> Option<&Arc<str>> {
        self.client_tags.as_ref()
    }

    /// The message's time in milliseconds since the Unix epoch (the `time` tag's instant).
    pub(crate) fn time_ms(&mut self) -> i64 {
        let at = *self.at.get_or_insert_with(SystemTime::now);
        at.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    fn tagged(&mut self, caps: Caps) -> &Line {
        let alt = self.alt.is_some() && caps.any(self.alt_cap);
        let level = if caps.any(Caps::MESSAGE_TAGS) {
            2
        } else if caps.any(Caps::SERVER_TIME) {
            1
        } else {
            0
        };
        if level == 0 {
            return if alt {
                self.alt.as_ref().unwrap_or(&self.body)
            } else {
                &self.body
            };
        }
        let slot = usize::from(alt) * 2 + level - 1;
        if self.built[slot].is_none() {
            let tags = self.tag_section(level == 2);
            let body = if alt { self.alt.as_ref() } else { None }.unwrap_or(&self.body);
            self.built[slot] = Some(prepend_tags(&tags, body));
        }
        self.built[slot].as_ref().unwrap_or(&self.body)
    }

    /// `time=...` and, with `all`, `;msgid=...;+client-tags` (server tags first, as the spec
    /// asks, so client tags can never push them past the limit).
    fn tag_section(&mut self, all: bool) -> String {
        // The same instant as `time_ms` (what history stores), whichever is asked first.
        let at = *self.at.get_or_insert_with(SystemTime::now);
        let time = self.time.get_or_insert_with(|| format_time(at));
        let mut tags = format!("time={time}");
        if all {
            if let Some(id) = self.msgid {
                tags.push_str(";msgid=");
                tags.push_str(&msgid_text(id));
            }
            if let Some(client) = &self.client_tags {
                tags.push(';');
                tags.push_str(client);
            }
        }
        tags
    }
}

/// `line` with `tag` (`key=value`, already escaped) added in front of its tag section.
pub(crate) fn add_tag(line: &[u8], tag: &str) -> Line {
    let mut out = Vec::with_capacity(line.len() + tag.len() + 2);
    out.push(b'@');
    out.extend_from_slice(tag.as_bytes());
    match line.strip_prefix(b"@") {
        Some(rest) => {
            out.push(b';');
            out.extend_from_slice(rest);
        }
        None => {
            out.push(b' ');
            out.extend_from_slice(line);
        }
    }
    Arc::from(out)
}

fn prepend_tags(tags: &str, body: &[u8]) -> Line {
    let mut out = Vec::with_capacity(tags.len() + body.len() + 2);
    out.push(b'@');
    out.extend_from_slice(tags.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body);
    Arc::from(out)
}

/// A new message id: unique in this process (a counter), and across restarts of the node:
/// the counter starts at the start time in milliseconds times 2^20 (a million ids per
/// millisecond the node was down), and the history store raises it above every id it holds
/// ([`reserve_msgids_above`]). Cheap: one relaxed atomic increment; formatted only when a
/// recipient asks for tags. Fits in an `i64` (the store's row key) until the year 2248.
pub(crate) fn next_msgid() -> u64 {
    msgid_base() + NEXT_MSGID.fetch_add(1, Ordering::Relaxed)
}

/// Ids handed out so far, above [`msgid_base`].
static NEXT_MSGID: AtomicU64 = AtomicU64::new(0);

fn msgid_base() -> u64 {
    static BASE: OnceLock<u64> = OnceLock::new();
    *BASE.get_or_init(|| {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        ms.min(1 << 42) << 20
    })
}

/// Every later [`next_msgid`] is above `id`.
pub(crate) fn reserve_msgids_above(id: u64) {
    let needed = id.saturating_add(1).saturating_sub(msgid_base());
    NEXT_MSGID.fetch_max(needed, Ordering::Relaxed);
}

/// The wire form of msgid `id`: base 36, lower case. The one msgid format of the node
/// (history replays the same text).
pub(crate) fn msgid_text(id: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; 13]; // 36^13 > 2^64
    let mut at = buf.len();
    let mut n = id;
    loop {
        at -= 1;
        buf[at] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    String::from_utf8_lossy(&buf[at..]).into_owned()
}

/// The id [`msgid_text`] made `text` from; `None` for anything else.
pub(crate) fn parse_msgid(text: &str) -> Option<u64> {
    let ok = !text.is_empty() && text.len() <= 13;
    let lower = text
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
    if !ok || !lower || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    u64::from_str_radix(text, 36).ok()
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` (UTC), as server-time asks.
pub(crate) fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let u = crate::proto::time::Utc::from_unix(d.as_secs());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        u.year,
        u.month,
        u.day,
        u.hour,
        u.minute,
        u.second,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn line(s: &str) -> Line {
        Arc::from(s.as_bytes())
    }

    #[test]
    fn time_format() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(format_time(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(format_time(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn each_form_is_built_once_and_shared() {
        let mut f = Forms::message(line(":a PRIVMSG #x :hi\r\n"), Some("+t=1".into()));
        let plain = f.line_for(Caps::NONE).unwrap().clone();
        assert_eq!(&*plain, b":a PRIVMSG #x :hi\r\n");
        let tagged = f.line_for(Caps::MESSAGE_TAGS).unwrap().clone();
        let text = String::from_utf8_lossy(&tagged).into_owned();
        assert!(text.starts_with("@time="), "{text}");
        assert!(text.contains(";msgid="), "{text}");
        assert!(text.ends_with(";+t=1 :a PRIVMSG #x :hi\r\n"), "{text}");
        let again = f
            .line_for(Caps::MESSAGE_TAGS.with(Caps::ECHO_MESSAGE))
            .unwrap();
        assert!(Arc::ptr_eq(&tagged, again), "shared, not rebuilt");
        let timed = f.line_for(Caps::SERVER_TIME).unwrap();
        let text = String::from_utf8_lossy(timed);
        assert!(!text.contains("msgid") && !text.contains("+t"), "{text}");
    }

    #[test]
    fn required_caps_and_alternative_bodies() {
        let mut f = Forms::new(line(":a TAGMSG #x\r\n")).requiring(Caps::MESSAGE_TAGS);
        assert!(f.line_for(Caps::SERVER_TIME).is_none());
        assert!(f.line_for(Caps::MESSAGE_TAGS).is_some());
        let mut j = Forms::new(line(":a JOIN #x\r\n"))
            .with_alternative(Caps::EXTENDED_JOIN, line(":a JOIN #x * :A\r\n"));
        assert_eq!(&**j.line_for(Caps::NONE).unwrap(), b":a JOIN #x\r\n");
        assert_eq!(
            &**j.line_for(Caps::EXTENDED_JOIN).unwrap(),
            b":a JOIN #x * :A\r\n"
        );
        let both = j.line_for(Caps::EXTENDED_JOIN.with(Caps::SERVER_TIME));
        assert!(both.unwrap().ends_with(b":a JOIN #x * :A\r\n"));
    }

    #[test]
    fn add_tag_merges_into_an_existing_section() {
        assert_eq!(&*add_tag(b":s ACK\r\n", "label=1"), b"@label=1 :s ACK\r\n");
        assert_eq!(
            &*add_tag(b"@time=x :s ACK\r\n", "label=1"),
            b"@label=1;time=x :s ACK\r\n"
        );
    }

    #[test]
    fn msgids_differ_round_trip_and_can_be_reserved() {
        let (a, b) = (next_msgid(), next_msgid());
        assert!(b > a);
        // Unique across restarts: the counter starts at the start time in ms, times 2^20.
        let started_ms = msgid_base() >> 20;
        assert!(started_ms > 1_700_000_000_000, "{started_ms}");
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(started_ms <= now_ms);
        assert_eq!(parse_msgid(&msgid_text(a)), Some(a));
        assert_eq!(msgid_text(0), "0");
        assert_eq!(parse_msgid("0"), Some(0), "a lone 0 is no leading zero");
        assert_eq!(msgid_text(36), "10");
        assert_eq!(parse_msgid(&msgid_text(u64::MAX)), Some(u64::MAX));
        for bad in ["", "A1", "01", "1-2", "zzzzzzzzzzzzzz"] {
            assert_eq!(parse_msgid(bad), None, "{bad}");
        }
        let far = b + 1_000_000;
        reserve_msgids_above(far);
        assert!(next_msgid() > far);
        reserve_msgids_above(1); // never goes back
        assert!(next_msgid() > far);
        assert!(next_msgid() < i64::MAX as u64, "fits the store's row key");
    }
}
