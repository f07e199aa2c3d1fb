//! The IRC message model, its parser and its serializer.
//!
//! Wire grammar (Modern IRC): `['@' tags SP] [':' source SP] command params`,
//! where `SP` is one *or more* spaces. Invariants:
//! - [`Message::parse`] never panics, and a parsed message has a valid command
//!   (letters only, uppercased, or exactly three digits) and at most
//!   [`MAX_PARAMS`] parameters.
//! - Serialization never emits CR, LF or NUL except the terminating CRLF, so a
//!   message built from untrusted text cannot smuggle extra lines to a peer.

use std::fmt;

/// Most parameters a parsed message holds (RFC 2812; Modern says not to send more).
pub const MAX_PARAMS: usize = 15;

/// Most spare messages one thread keeps for [`Message::parse`] to refill (see
/// [`Message::recycle`]): more than a broker turn usually handles, and a few KiB per thread.
pub const SPARE_MESSAGES: usize = 32;

/// A message whose strings (and parameter list) hold more bytes than this is freed rather than
/// kept as a spare: a long line's memory is not held after it.
pub const SPARE_BYTES: usize = 1024;

thread_local! {
    /// This thread's spare messages, emptied strings included.
    static SPARE: std::cell::RefCell<Vec<Message>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One IRC message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    /// Raw tag section without the leading '@' (accepted and ignored for now); None when absent.
    pub tags: Option<String>,
    /// Source (prefix) without the leading ':'; None when absent.
    pub source: Option<String>,
    /// Command, ASCII-uppercased when alphabetic ("privmsg" -> "PRIVMSG"); numerics kept as the three digits.
    pub command: String,
    /// Parameters, at most 15; the trailing parameter (after " :") is the last element, its ':' removed.
    pub params: Vec<String>,
}

/// Why a line could not be parsed. The server ignores (or answers) such lines;
/// none of these is fatal for the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The line is empty or only spaces.
    Empty,
    /// The line has tags and/or a source but no command.
    NoCommand,
    /// The command is neither letters only nor exactly three digits.
    InvalidCommand,
    /// The line contains a NUL byte, or a CR or LF (which a framed line cannot
    /// hold, so it was not framed): all are forbidden inside an IRC message.
    ContainsNul,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Empty => "empty line",
            ParseError::NoCommand => "no command",
            ParseError::InvalidCommand => "invalid command",
            ParseError::ContainsNul => "line contains NUL, CR or LF",
        })
    }
}

impl std::error::Error for ParseError {}

impl Message {
    /// Build a message with no tags and no source.
    pub fn new(command: impl Into<String>, params: Vec<String>) -> Message {
        Message {
            tags: None,
            source: None,
            command: command.into(),
            params,
        }
    }

    /// Build a message with a source (e.g. the server name or `nick!user@host`).
    pub fn with_source(
        source: impl Into<String>,
        command: impl Into<String>,
        params: Vec<String>,
    ) -> Message {
        Message {
            source: Some(source.into()),
            ..Message::new(command, params)
        }
    }

    /// Parse one line given WITHOUT its line ending (the framer strips CR/LF).
    ///
    /// - Invalid UTF-8 is decoded lossily (U+FFFD); NUL, CR and LF anywhere give
    ///   [`ParseError::ContainsNul`] so the caller can drop the line.
    /// - Leading spaces and runs of spaces between parts are tolerated, and
    ///   trailing spaces after the last middle parameter are ignored.
    /// - Parameter limit, following RFC 2812 (`14( SPACE middle ) [ SPACE [ ":" ] trailing ]`):
    ///   once 14 parameters are read, the rest of the line (minus one optional
    ///   leading ':') becomes the 15th, spaces included. Modern only asks that
    ///   peers parse "any number", which a server cannot promise its handlers; folding
    ///   keeps every byte the client sent.
    pub fn parse(line: &[u8]) -> Result<Message, ParseError> {
        let mut msg = SPARE
            .with(|spare| spare.borrow_mut().pop())
            .unwrap_or_default();
        match msg.parse_into(line) {
            Ok(()) => Ok(msg),
            Err(e) => {
                msg.recycle();
                Err(e)
            }
        }
    }

    /// [`Message::parse`] into `self`, whose strings' memory is reused.
    fn parse_into(&mut self, line: &[u8]) -> Result<(), ParseError> {
        if has_forbidden(line) {
            return Err(ParseError::ContainsNul);
        }
        // Valid UTF-8 (nearly every line) is checked by std's fast ASCII path and borrowed;
        // only an invalid line pays for the lossy decoder.
        let text = match std::str::from_utf8(line) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(line),
        };
        let mut rest = skip_spaces(&text);
        if rest.is_empty() {
            return Err(ParseError::Empty);
        }
        self.tags = rest.strip_prefix('@').map(|r| {
            let (tags, r) = next_token(r);
            rest = r;
            tags.to_owned()
        });
        self.source = rest.strip_prefix(':').map(|r| {
            let (source, r) = next_token(r);
            rest = r;
            source.to_owned()
        });
        let (command, mut rest) = next_token(rest);
        if command.is_empty() {
            return Err(ParseError::NoCommand);
        }
        normalize_command(command, &mut self.command)?;
        let mut count = 0;
        while !rest.is_empty() {
            let (param, r) = match rest.strip_prefix(':') {
                Some(trailing) => (trailing, ""),
                None if count + 1 == MAX_PARAMS => (rest, ""),
                None => next_token(rest),
            };
            match self.params.get_mut(count) {
                Some(reused) => {
                    reused.clear();
                    reused.push_str(param);
                }
                None => self.params.push(param.to_owned()),
            }
            count += 1;
            rest = r;
        }
        self.params.truncate(count);
        Ok(())
    }

    /// Hands a message that is done with to this thread's stock of spare messages, whose
    /// strings the next [`Message::parse`] on this thread fills instead of allocating new ones
    /// (four allocations and frees per relayed PRIVMSG were 10 % of the node's user-space
    /// instructions under callgrind). The stock holds at most [`SPARE_MESSAGES`]; a message that
    /// does not fit, or whose strings hold more than [`SPARE_BYTES`], is freed as when dropped.
    ///
    /// ```
    /// use chatnode::proto::Message;
    /// Message::parse(b"PRIVMSG bob :hello").unwrap().recycle();
    /// let reused = Message::parse(b"ping x").unwrap(); // the strings above, refilled
    /// assert_eq!((reused.command.as_str(), reused.params.len()), ("PING", 1));
    /// ```
    pub fn recycle(mut self) {
        let held = self.command.capacity()
            + self.params.iter().map(String::capacity).sum::<usize>()
            + self.params.capacity() * std::mem::size_of::<String>();
        if held > SPARE_BYTES {
            return;
        }
        // Tags and sources are rare on a client's lines: not worth keeping.
        self.tags = None;
        self.source = None;
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_MESSAGES {
                spare.push(self);
            }
        });
    }

    /// Append the wire form followed by "\r\n" to `out`. Tags are not written.
    ///
    /// The last parameter gets a ':' prefix when it is empty, contains a space
    /// or starts with ':'. Middle parameters are written as is: the caller must
    /// keep them non-empty, space-free and not starting with ':'. CR, LF and
    /// NUL inside any field are written as spaces (see the module invariants).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write_wire(false, out);
        out.extend_from_slice(b"\r\n");
    }

    /// Like [`Message::write_to`], but always prefixes the last parameter with
    /// ':' (servers conventionally do this for PRIVMSG text, numerics' human
    /// text, QUIT reasons, ...).
    pub fn write_to_trailing(&self, out: &mut Vec<u8>) {
        self.write_wire(true, out);
        out.extend_from_slice(b"\r\n");
    }

    /// The serialized bytes with CRLF (as [`Message::write_to`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire_len_hint());
        self.write_to(&mut out);
        out
    }

    /// Upper bound of the serialized length, to size buffers in one allocation.
    fn wire_len_hint(&self) -> usize {
        let source = self.source.as_ref().map_or(0, |s| s.len() + 2);
        let params: usize = self.params.iter().map(|p| p.len() + 2).sum();
        source + self.command.len() + params + 2
    }

    /// The wire form without CRLF; `force_trailing` always adds the ':'.
    fn write_wire(&self, force_trailing: bool, out: &mut Vec<u8>) {
        let (last, middle) = match self.params.split_last() {
            Some((last, middle)) => (Some(last.as_str()), middle),
            None => (None, &[][..]),
        };
        // Check for forbidden bytes too: they are written as spaces.
        let colon = last.is_some_and(|last| {
            force_trailing
                || last.is_empty()
                || last.starts_with(':')
                || last.bytes().any(|b| b == b' ')
                || has_forbidden(last.as_bytes())
        });
        write_parts(
            out,
            self.source.as_deref(),
            &self.command,
            middle.iter().map(String::as_str),
            last,
            colon,
        );
    }
}

/// Append one line, CRLF included, from borrowed parts: `:source COMMAND middle... :trailing`.
///
/// The serializer for senders that have the parts at hand and no [`Message`] to build (the
/// broker, on its hot path). `middle` parameters must be non-empty, space-free and not start
/// with ':'; `trailing`, when given, always gets its ':'. As everywhere in this module, CR, LF
/// and NUL are written as spaces, so text from one user can never forge a second line.
///
/// ```
/// let mut out = Vec::new();
/// chatnode::proto::message::write_line(&mut out, Some("a!b@c"), "PRIVMSG", &["#x"], Some("hi\r\nQUIT"));
/// assert_eq!(out, b":a!b@c PRIVMSG #x :hi  QUIT\r\n");
/// ```
pub fn write_line(
    out: &mut Vec<u8>,
    source: Option<&str>,
    command: &str,
    middle: &[&str],
    trailing: Option<&str>,
) {
    write_parts(out, source, command, middle.iter().copied(), trailing, true);
    out.extend_from_slice(b"\r\n");
}

/// The one place that writes wire text: everything else calls this.
///
/// The parts are copied as they are and the bytes written are then scrubbed in one pass (CR,
/// LF and NUL become spaces): a check per part had been 8 % of the node's instructions in a
/// direct-message relay (callgrind, `loadgen pairs`), one pass over the line is a few vector
/// instructions.
fn write_parts<'a>(
    out: &mut Vec<u8>,
    source: Option<&str>,
    command: &str,
    middle: impl Iterator<Item = &'a str>,
    last: Option<&str>,
    colon: bool,
) {
    let start = out.len();
    if let Some(source) = source {
        out.push(b':');
        out.extend_from_slice(source.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(command.as_bytes());
    for param in middle {
        out.push(b' ');
        out.extend_from_slice(param.as_bytes());
    }
    if let Some(last) = last {
        out.extend_from_slice(if colon { b" :" } else { b" " });
        out.extend_from_slice(last.as_bytes());
    }
    if let Some(written) = out.get_mut(start..) {
        scrub(written);
    }
}

/// Every CR, LF and NUL in `bytes` becomes a space. The store is unconditional, so the loop
/// has no branch and the compiler turns it into vector compares and blends.
fn scrub(bytes: &mut [u8]) {
    for b in bytes {
        *b = if matches!(*b, b'\0' | b'\r' | b'\n') {
            b' '
        } else {
            *b
        };
    }
}

impl fmt::Display for Message {
    /// The wire form without CRLF (as [`Message::write_to`] writes it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wire = Vec::with_capacity(self.wire_len_hint());
        self.write_wire(false, &mut wire);
        // Valid UTF-8: the parts are `str`s and scrubbing swaps ASCII bytes for spaces.
        f.write_str(&String::from_utf8_lossy(&wire))
    }
}

/// Split off the first space-delimited token; the remainder has its leading
/// spaces removed (separators are runs of spaces).
///
/// Byte by byte: tokens are short (a command, a nick, a channel), shorter than what a `memchr`
/// call costs to set up, and a space is one byte in UTF-8, never part of another character.
fn next_token(s: &str) -> (&str, &str) {
    match s.bytes().position(|b| b == b' ') {
        Some(at) => (&s[..at], skip_spaces(&s[at + 1..])),
        None => (s, ""),
    }
}

/// `s` without its leading spaces.
fn skip_spaces(s: &str) -> &str {
    let spaces = s.bytes().take_while(|&b| b == b' ').count();
    &s[spaces..]
}

/// Whether `bytes` holds a NUL, CR or LF. Written without an early exit so the compiler can
/// test 16 bytes at a time: a line's text is checked in full when it is parsed and each time it
/// is serialized, and a char-by-char search had been 8 % of the node's instructions in a
/// direct-message relay (callgrind, `loadgen pairs`).
fn has_forbidden(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |found, &b| {
        found | matches!(b, b'\0' | b'\r' | b'\n')
    })
}

/// Validate a non-empty command and write it, its case normalized, into `out`.
fn normalize_command(command: &str, out: &mut String) -> Result<(), ParseError> {
    let bytes = command.as_bytes();
    let letters = bytes.iter().all(u8::is_ascii_alphabetic);
    let numeric = bytes.len() == 3 && bytes.iter().all(u8::is_ascii_digit);
    if !(letters || numeric) {
        return Err(ParseError::InvalidCommand);
    }
    out.clear();
    out.push_str(command);
    out.make_ascii_uppercase(); // digits are left as they are
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::test_rng::XorShift;

    fn p(line: &str) -> Result<Message, ParseError> {
        Message::parse(line.as_bytes())
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_recycled_message_parses_like_a_new_one() {
        let lines: [&[u8]; 6] = [
            b"@a=b :nick!u@h PRIVMSG #chan :hello there",
            b"PING",
            b"privmsg bob,carol :x",
            b"001 me :Welcome",
            b"a b c d e f g h i j k l m n o p q r",
            b"JOIN #a",
        ];
        for first in lines {
            for second in lines {
                let Ok(msg) = Message::parse(first) else {
                    continue;
                };
                msg.recycle();
                let mut expected = Message::default(); // fresh strings, no stock involved
                expected.parse_into(second).unwrap();
                assert_eq!(Message::parse(second).unwrap(), expected);
            }
        }
        // A bad line after a recycled message: an error, and the spare is kept for the next.
        Message::parse(b"PRIVMSG a :b").unwrap().recycle();
        assert_eq!(p("12 x"), Err(ParseError::InvalidCommand));
        assert_eq!(p("PONG :x").unwrap().params, strs(&["x"]));
    }

    #[test]
    fn the_spare_stock_is_bounded_in_count_and_bytes() {
        let before = SPARE.with(|s| s.borrow().len());
        assert!(before <= SPARE_MESSAGES);
        let held: Vec<Message> = (0..SPARE_MESSAGES + 5)
            .map(|_| Message::parse(b"PRIVMSG a :b").unwrap())
            .collect();
        held.into_iter().for_each(Message::recycle);
        assert_eq!(SPARE.with(|s| s.borrow().len()), SPARE_MESSAGES);
        // A long line's strings are freed, not kept.
        SPARE.with(|s| s.borrow_mut().clear());
        let long = format!("PRIVMSG a :{}", "x".repeat(SPARE_BYTES));
        Message::parse(long.as_bytes()).unwrap().recycle();
        assert_eq!(SPARE.with(|s| s.borrow().len()), 0);
        // Tags and source are not carried into a spare.
        Message::parse(b"@t :src PRIVMSG a :b").unwrap().recycle();
        let spare = SPARE.with(|s| s.borrow_mut().pop()).unwrap();
        assert_eq!((spare.tags, spare.source), (None, None));
    }

    #[test]
    fn simple_and_case() {
        let m = p("privmsg #x hi").unwrap();
        assert_eq!(m, Message::new("PRIVMSG", strs(&["#x", "hi"])));
        assert_eq!(p("PING").unwrap(), Message::new("PING", vec![]));
        assert_eq!(p("001 me :Welcome").unwrap().command, "001");
    }

    #[test]
    fn tags_and_source() {
        let m = p("@a=b;c :nick!u@h PRIVMSG #x :hi there").unwrap();
        assert_eq!(m.tags.as_deref(), Some("a=b;c"));
        assert_eq!(m.source.as_deref(), Some("nick!u@h"));
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, strs(&["#x", "hi there"]));
    }

    #[test]
    fn trailing_forms() {
        assert_eq!(p("PRIVMSG #x ::)").unwrap().params, strs(&["#x", ":)"]));
        assert_eq!(p("TOPIC #x :").unwrap().params, strs(&["#x", ""]));
        assert_eq!(
            p("TOPIC #x : a  b ").unwrap().params,
            strs(&["#x", " a  b "])
        );
    }

    #[test]
    fn lenient_spaces() {
        let want = Message::new("USER", strs(&["a", "0", "*", "real name"]));
        assert_eq!(p("   USER   a 0  * :real name").unwrap(), want);
        let m = p("  @t   :src   NICK   bob   ").unwrap();
        assert_eq!(m.tags.as_deref(), Some("t"));
        assert_eq!(m.source.as_deref(), Some("src"));
        assert_eq!(m.params, strs(&["bob"]));
    }

    #[test]
    fn fifteen_param_limit() {
        let m = p("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16  17").unwrap();
        assert_eq!(m.params.len(), MAX_PARAMS);
        assert_eq!(m.params[13], "14");
        assert_eq!(m.params[14], "15 16  17");
        // An explicit ':' on the folded 15th parameter is removed once.
        let m = p("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14   ::x y").unwrap();
        assert_eq!(m.params[14], ":x y");
        // Exactly 15 stays 15 separate params.
        let m = p("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15").unwrap();
        assert_eq!(m.params.last().map(String::as_str), Some("15"));
        // Trailing spaces only after 14 params: no 15th.
        let m = p("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14   ").unwrap();
        assert_eq!(m.params.len(), 14);
    }

    #[test]
    fn errors() {
        assert_eq!(p(""), Err(ParseError::Empty));
        assert_eq!(p("    "), Err(ParseError::Empty));
        assert_eq!(p(":src"), Err(ParseError::NoCommand));
        assert_eq!(p(":src   "), Err(ParseError::NoCommand));
        assert_eq!(p("@tags"), Err(ParseError::NoCommand));
        assert_eq!(p("@tags :src"), Err(ParseError::NoCommand));
        assert_eq!(p("12 x"), Err(ParseError::InvalidCommand));
        assert_eq!(p("1234"), Err(ParseError::InvalidCommand));
        assert_eq!(p("PRIV1 x"), Err(ParseError::InvalidCommand));
        assert_eq!(p("PRIVMSG\u{e9} x"), Err(ParseError::InvalidCommand));
        assert_eq!(p("PRIVMSG #x :a\0b"), Err(ParseError::ContainsNul));
        assert_eq!(p("PRIVMSG #x :a\rQUIT"), Err(ParseError::ContainsNul));
        assert_eq!(p("PRIVMSG #x :a\nQUIT"), Err(ParseError::ContainsNul));
        assert!(!ParseError::Empty.to_string().is_empty());
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        let m = Message::parse(b"PRIVMSG #x :caf\xe9 \xff").unwrap();
        assert_eq!(m.params[1], "caf\u{fffd} \u{fffd}");
    }

    #[test]
    fn serialize() {
        let m = Message::with_source("srv", "001", strs(&["bob", "Welcome"]));
        assert_eq!(m.to_bytes(), b":srv 001 bob Welcome\r\n");
        let mut out = Vec::new();
        m.write_to_trailing(&mut out);
        assert_eq!(out, b":srv 001 bob :Welcome\r\n");
        assert_eq!(m.to_string(), ":srv 001 bob Welcome");
        assert_eq!(Message::new("PING", vec![]).to_bytes(), b"PING\r\n");
        let m = Message::new("X", strs(&["a", ""]));
        assert_eq!(m.to_string(), "X a :");
        let m = Message::new("X", strs(&[":)"]));
        assert_eq!(m.to_string(), "X ::)");
        // Tags are never relayed.
        let mut m = Message::new("X", strs(&["a b"]));
        m.tags = Some("t=1".into());
        assert_eq!(m.to_string(), "X :a b");
    }

    #[test]
    fn serialize_never_injects_lines() {
        let m = Message::with_source("s\r\n", "NOTICE", strs(&["a\nb", "x\r\nQUIT"]));
        let bytes = m.to_bytes();
        assert_eq!(bytes, b":s   NOTICE a b :x  QUIT\r\n");
        // A last param made unsafe only by a newline still gets its ':'.
        assert_eq!(Message::new("X", strs(&["a\nb"])).to_string(), "X :a b");
    }

    #[test]
    fn round_trips() {
        let cases = [
            Message::new("PRIVMSG", strs(&["#x", "hello world"])),
            Message::new("TOPIC", strs(&["#x", ""])),
            Message::new("PRIVMSG", strs(&["#x", ":-)"])),
            Message::new("PRIVMSG", strs(&["#x", " lead and trail "])),
            Message::with_source("n!u@h", "JOIN", strs(&["#x"])),
            Message::with_source(
                "srv",
                "005",
                strs(&["me", "CASEMAPPING=rfc1459", "are supported"]),
            ),
            Message::new("QUIT", vec![]),
        ];
        for m in cases {
            let mut out = Vec::new();
            m.write_to(&mut out);
            let line = out.strip_suffix(b"\r\n").unwrap();
            assert_eq!(Message::parse(line).unwrap(), m, "{m}");
            let mut out = Vec::new();
            m.write_to_trailing(&mut out);
            let line = out.strip_suffix(b"\r\n").unwrap();
            assert_eq!(Message::parse(line).unwrap(), m, "{m}");
            if let Some(last) = m.params.last() {
                let want = format!(" :{last}\r\n");
                assert!(out.ends_with(want.as_bytes()));
            }
        }
    }

    /// ircdocs/parser-tests `tests/msg-split.yaml` (tag values kept raw, verbs uppercased).
    #[test]
    fn ircdocs_msg_split() {
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
            &'a [&'a str],
        );
        let cases: &[Case] = &[
            (
                "foo bar baz asdf",
                None,
                None,
                "FOO",
                &["bar", "baz", "asdf"],
            ),
            (
                ":coolguy foo bar baz asdf",
                None,
                Some("coolguy"),
                "FOO",
                &["bar", "baz", "asdf"],
            ),
            (
                "foo bar baz :asdf quux",
                None,
                None,
                "FOO",
                &["bar", "baz", "asdf quux"],
            ),
            ("foo bar baz :", None, None, "FOO", &["bar", "baz", ""]),
            (
                "foo bar baz ::asdf",
                None,
                None,
                "FOO",
                &["bar", "baz", ":asdf"],
            ),
            (
                ":coolguy foo bar baz :asdf quux",
                None,
                Some("coolguy"),
                "FOO",
                &["bar", "baz", "asdf quux"],
            ),
            (
                ":coolguy foo bar baz :  asdf quux ",
                None,
                Some("coolguy"),
                "FOO",
                &["bar", "baz", "  asdf quux "],
            ),
            (
                ":coolguy PRIVMSG bar :lol :) ",
                None,
                Some("coolguy"),
                "PRIVMSG",
                &["bar", "lol :) "],
            ),
            (
                ":coolguy foo bar baz :",
                None,
                Some("coolguy"),
                "FOO",
                &["bar", "baz", ""],
            ),
            (
                ":coolguy foo bar baz :  ",
                None,
                Some("coolguy"),
                "FOO",
                &["bar", "baz", "  "],
            ),
            (
                "@a=b;c=32;k;rt=ql7 foo",
                Some("a=b;c=32;k;rt=ql7"),
                None,
                "FOO",
                &[],
            ),
            (
                r"@a=b\\and\nk;c=72\s45;d=gh\:764 foo",
                Some(r"a=b\\and\nk;c=72\s45;d=gh\:764"),
                None,
                "FOO",
                &[],
            ),
            (
                "@c;h=;a=b :quux ab cd",
                Some("c;h=;a=b"),
                Some("quux"),
                "AB",
                &["cd"],
            ),
            (":src JOIN #chan", None, Some("src"), "JOIN", &["#chan"]),
            (":src JOIN :#chan", None, Some("src"), "JOIN", &["#chan"]),
            (":src AWAY", None, Some("src"), "AWAY", &[]),
            (":src AWAY ", None, Some("src"), "AWAY", &[]),
            (
                ":cool\tguy foo bar baz",
                None,
                Some("cool\tguy"),
                "FOO",
                &["bar", "baz"],
            ),
            (
                ":coolguy!ag@net\x035w\x03ork.admin PRIVMSG foo :bar baz",
                None,
                Some("coolguy!ag@net\x035w\x03ork.admin"),
                "PRIVMSG",
                &["foo", "bar baz"],
            ),
            (
                ":coolguy!~ag@n\x02et\x0305w\x0fork.admin PRIVMSG foo :bar baz",
                None,
                Some("coolguy!~ag@n\x02et\x0305w\x0fork.admin"),
                "PRIVMSG",
                &["foo", "bar baz"],
            ),
            (
                "@tag1=value1;tag2;vendor1/tag3=value2;vendor2/tag4= :irc.example.com COMMAND param1 param2 :param3 param3",
                Some("tag1=value1;tag2;vendor1/tag3=value2;vendor2/tag4="),
                Some("irc.example.com"),
                "COMMAND",
                &["param1", "param2", "param3 param3"],
            ),
            (
                ":irc.example.com COMMAND param1 param2 :param3 param3",
                None,
                Some("irc.example.com"),
                "COMMAND",
                &["param1", "param2", "param3 param3"],
            ),
            (
                "@tag1=value1;tag2;vendor1/tag3=value2;vendor2/tag4 COMMAND param1 param2 :param3 param3",
                Some("tag1=value1;tag2;vendor1/tag3=value2;vendor2/tag4"),
                None,
                "COMMAND",
                &["param1", "param2", "param3 param3"],
            ),
            ("COMMAND", None, None, "COMMAND", &[]),
            (
                r"@foo=\\\\\:\\s\s\r\n COMMAND",
                Some(r"foo=\\\\\:\\s\s\r\n"),
                None,
                "COMMAND",
                &[],
            ),
            (
                ":gravel.mozilla.org 432  #momo :Erroneous Nickname: Illegal characters",
                None,
                Some("gravel.mozilla.org"),
                "432",
                &["#momo", "Erroneous Nickname: Illegal characters"],
            ),
            (
                ":gravel.mozilla.org MODE #tckk +n ",
                None,
                Some("gravel.mozilla.org"),
                "MODE",
                &["#tckk", "+n"],
            ),
            (
                ":services.esper.net MODE #foo-bar +o foobar  ",
                None,
                Some("services.esper.net"),
                "MODE",
                &["#foo-bar", "+o", "foobar"],
            ),
            (
                r"@tag1=value\\ntest COMMAND",
                Some(r"tag1=value\\ntest"),
                None,
                "COMMAND",
                &[],
            ),
            (
                r"@tag1=value\1 COMMAND",
                Some(r"tag1=value\1"),
                None,
                "COMMAND",
                &[],
            ),
            (
                r"@tag1=value1\ COMMAND",
                Some(r"tag1=value1\"),
                None,
                "COMMAND",
                &[],
            ),
            (
                "@tag1=1;tag2=3;tag3=4;tag1=5 COMMAND",
                Some("tag1=1;tag2=3;tag3=4;tag1=5"),
                None,
                "COMMAND",
                &[],
            ),
            (
                ":SomeOp MODE #channel :+i",
                None,
                Some("SomeOp"),
                "MODE",
                &["#channel", "+i"],
            ),
            (
                ":SomeOp MODE #channel +oo SomeUser :AnotherUser",
                None,
                Some("SomeOp"),
                "MODE",
                &["#channel", "+oo", "SomeUser", "AnotherUser"],
            ),
        ];
        for &(input, tags, source, verb, params) in cases {
            let m = p(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(m.tags.as_deref(), tags, "{input:?}");
            assert_eq!(m.source.as_deref(), source, "{input:?}");
            assert_eq!(m.command, verb, "{input:?}");
            assert_eq!(m.params, strs(params), "{input:?}");
        }
    }

    /// Arbitrary bytes never panic, and whatever parses re-parses identically
    /// after serialization (minus the tags, which are not written).
    #[test]
    fn never_panics_and_round_trips() {
        const ALPHABET: &[u8] = b"  ::@@aZ19#!\0\r\n\t\xff\xc3\xa9;=";
        let mut rng = XorShift::new(0x5eed_1234_abcd_0001);
        for _ in 0..20_000 {
            let len = rng.below(64);
            let line: Vec<u8> = (0..len)
                .map(|_| match rng.below(4) {
                    0 => rng.next() as u8,
                    _ => ALPHABET[rng.below(ALPHABET.len())],
                })
                .collect();
            let Ok(m) = Message::parse(&line) else {
                continue;
            };
            assert!(m.params.len() <= MAX_PARAMS);
            assert!(!m.command.is_empty());
            for force in [false, true] {
                let mut out = Vec::new();
                if force {
                    m.write_to_trailing(&mut out);
                } else {
                    m.write_to(&mut out);
                }
                let body = out.strip_suffix(b"\r\n").unwrap();
                let again = Message::parse(body).unwrap();
                assert_eq!(
                    again,
                    Message {
                        tags: None,
                        ..m.clone()
                    },
                    "{line:?}"
                );
            }
        }
    }

    /// The hint sizes `to_bytes`' buffer in one allocation: never short, and exact when the only
    /// parameter needs its ':' (the bound's one byte of slack per parameter is then used).
    #[test]
    fn wire_len_hint_is_a_tight_upper_bound() {
        let m = Message::parse(b":srv PING :x y").unwrap();
        assert_eq!(m.wire_len_hint(), m.to_bytes().len());
        for line in [
            &b"PRIVMSG #c :hello there"[..],
            b":a!b@c JOIN #x",
            b"CAP * LS :",
            b"QUIT",
        ] {
            let m = Message::parse(line).unwrap();
            assert!(m.wire_len_hint() >= m.to_bytes().len(), "{m:?}");
            assert!(
                m.wire_len_hint() <= m.to_bytes().len() + m.params.len(),
                "{m:?}"
            );
        }
    }
}
