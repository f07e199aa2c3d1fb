//! The NATS client protocol, sans I/O: a parser for what the server sends and writers for what
//! the client sends. No sockets, no async: bytes in, [`ServerOp`]s out, so every case is unit
//! tested without a server.
//!
//! The protocol is text lines ending in CRLF; `MSG` and `HMSG` are followed by a payload of the
//! byte length they announce (and a CRLF). Reference: "Client Protocol" in the NATS docs.
//!
//! Invariants: [`Parser::next_op`] never panics on any input; a line or payload longer than the
//! parser's limit is a [`ProtoError`] (the caller drops the connection), so one bad or hostile
//! server cannot make the parser buffer without bound.

use std::fmt;

/// Something the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerOp {
    /// `INFO {json}`: the server's description (sent first, and again on cluster changes).
    Info(String),
    /// `MSG` or `HMSG`: a message for one of our subscriptions.
    Msg(Delivery),
    /// `PING`: answer with `PONG` or be disconnected.
    Ping,
    /// `PONG`: the answer to our `PING`.
    Pong,
    /// `+OK` (only in verbose mode, which we do not ask for).
    Ok,
    /// `-ERR 'text'`: a protocol or authorization error; most end the connection.
    Err(String),
}

/// One delivered message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Delivery {
    /// The subject it was published to.
    pub subject: String,
    /// The subscription it matched.
    pub sid: u64,
    /// Where to send an answer, if the publisher asked for one.
    pub reply: Option<String>,
    /// The raw header block (`NATS/1.0 ...\r\nKey: Value\r\n\r\n`), for `HMSG`.
    pub headers: Option<Vec<u8>>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Delivery {
    /// The status code of the header block's first line (`NATS/1.0 404 Message Not Found`):
    /// 404 no message, 408 timeout, 503 no responders. `None` without a status.
    pub fn status(&self) -> Option<u16> {
        let headers = self.headers.as_deref()?;
        let first = headers.split(|&b| b == b'\n').next()?;
        let first = std::str::from_utf8(first).ok()?.trim_end();
        first
            .strip_prefix("NATS/1.0")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        let headers = std::str::from_utf8(self.headers.as_deref()?).ok()?;
        headers.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// The server broke the protocol (or exceeded our limits): drop the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtoError(
    /// What was wrong.
    pub String,
);

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NATS protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtoError {}

/// Longest control line accepted (an `INFO` with a long list of cluster URLs still fits).
const MAX_LINE: usize = 64 * 1024;

/// The incremental parser: feed it bytes as they come, take ops out.
///
/// ```
/// use chatnode::link::nats::proto::{Parser, ServerOp};
/// let mut p = Parser::new(1 << 20);
/// p.feed(b"PING\r\nMSG a.b 7 5\r\nhel");
/// assert_eq!(p.next_op().unwrap(), Some(ServerOp::Ping));
/// assert_eq!(p.next_op().unwrap(), None); // the payload is not complete yet
/// p.feed(b"lo\r\n");
/// let Some(ServerOp::Msg(m)) = p.next_op().unwrap() else { panic!() };
/// assert_eq!((m.subject.as_str(), m.sid, &m.payload[..]), ("a.b", 7, &b"hello"[..]));
/// ```
pub struct Parser {
    buf: Vec<u8>,
    /// Where unparsed bytes start in `buf` (consumed bytes are compacted away lazily).
    start: usize,
    max_payload: usize,
}

impl Parser {
    /// A parser that refuses payloads over `max_payload` bytes.
    pub fn new(max_payload: usize) -> Parser {
        Parser {
            buf: Vec::new(),
            start: 0,
            max_payload,
        }
    }

    /// Appends bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// How many bytes were fed and not parsed yet.
    ///
    /// ```
    /// let mut p = chatnode::link::nats::proto::Parser::new(1024);
    /// p.feed(b"PING\r\nPO");
    /// p.next_op().unwrap();
    /// assert_eq!(p.buffered(), 2);
    /// ```
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete op, `None` if more bytes are needed.
    pub fn next_op(&mut self) -> Result<Option<ServerOp>, ProtoError> {
        let rest = &self.buf[self.start..];
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            if rest.len() > MAX_LINE {
                return Err(ProtoError("control line too long".into()));
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&rest[..eol])
            .map_err(|_| ProtoError("control line is not UTF-8".into()))?;
        let (verb, args) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        let args = args.trim();
        let after_line = self.start + eol + 2;
        let op = match verb.to_ascii_uppercase().as_str() {
            "MSG" | "HMSG" => {
                let header = parse_msg_args(args, verb.eq_ignore_ascii_case("HMSG"))?;
                if header.total > self.max_payload {
                    return Err(ProtoError(format!("payload of {} bytes", header.total)));
                }
                let end = after_line + header.total;
                if self.buf.len() < end + 2 {
                    return Ok(None);
                }
                if &self.buf[end..end + 2] != b"\r\n" {
                    return Err(ProtoError("payload not followed by CRLF".into()));
                }
                let body = &self.buf[after_line..end];
                let (headers, payload) = body.split_at(header.header_len);
                let delivery = Delivery {
                    subject: header.subject,
                    sid: header.sid,
                    reply: header.reply,
                    headers: header.has_headers.then(|| headers.to_vec()),
                    payload: payload.to_vec(),
                };
                self.start = end + 2;
                return Ok(Some(ServerOp::Msg(delivery)));
            }
            "INFO" => ServerOp::Info(args.to_string()),
            "PING" => ServerOp::Ping,
            "PONG" => ServerOp::Pong,
            "+OK" => ServerOp::Ok,
            "-ERR" => ServerOp::Err(args.trim_matches('\'').to_string()),
            other => return Err(ProtoError(format!("unknown op {other:?}"))),
        };
        self.start = after_line;
        Ok(Some(op))
    }
}

struct MsgArgs {
    subject: String,
    sid: u64,
    reply: Option<String>,
    has_headers: bool,
    header_len: usize,
    total: usize,
}

/// `MSG <subject> <sid> [reply] <bytes>` or `HMSG <subject> <sid> [reply] <hdr> <total>`.
fn parse_msg_args(args: &str, headers: bool) -> Result<MsgArgs, ProtoError> {
    let parts: Vec<&str> = args.split_whitespace().collect();
    let bad = || ProtoError(format!("bad MSG arguments {args:?}"));
    let sizes = if headers { 2 } else { 1 };
    if parts.len() < 2 + sizes || parts.len() > 3 + sizes {
        return Err(bad());
    }
    let number = |s: &str| s.parse::<usize>().map_err(|_| bad());
    let reply = (parts.len() == 3 + sizes).then(|| parts[2].to_string());
    let total = number(parts[parts.len() - 1])?;
    let header_len = if headers {
        number(parts[parts.len() - 2])?
    } else {
        0
    };
    if header_len > total {
        return Err(bad());
    }
    Ok(MsgArgs {
        subject: parts[0].to_string(),
        sid: parts[1].parse().map_err(|_| bad())?,
        reply,
        has_headers: headers,
        header_len,
        total,
    })
}

/// How to log in, sent in `CONNECT`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `auth_token`.
    pub token: Option<String>,
    /// `user` (with `pass`).
    pub user: Option<String>,
    /// `pass`.
    pub pass: Option<String>,
}

/// Writes `CONNECT {...}`: no verbose `+OK`s, no echo of our own messages (a node never wants
/// back what it published), headers on (KV compare-and-set needs them), no-responders on.
pub fn write_connect(out: &mut Vec<u8>, name: &str, creds: &Credentials) {
    out.extend_from_slice(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"rust\"");
    out.extend_from_slice(b",\"version\":\"");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(
        b"\",\"protocol\":1,\"echo\":false,\"headers\":true,\"no_responders\":true",
    );
    let mut field = |key: &str, value: &Option<String>| {
        if let Some(v) = value {
            out.extend_from_slice(format!(",\"{key}\":").as_bytes());
            super::json::write_string(out, v);
        }
    };
    field("name", &Some(name.to_string()));
    field("auth_token", &creds.token);
    field("user", &creds.user);
    field("pass", &creds.pass);
    out.extend_from_slice(b"}\r\n");
}

/// Writes `PUB subject [reply] len\r\npayload\r\n`.
///
/// ```
/// let mut out = Vec::new();
/// chatnode::link::nats::proto::write_pub(&mut out, "a.b", None, b"hi");
/// assert_eq!(out, b"PUB a.b 2\r\nhi\r\n");
/// ```
pub fn write_pub(out: &mut Vec<u8>, subject: &str, reply: Option<&str>, payload: &[u8]) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject.as_bytes());
    if let Some(reply) = reply {
        out.push(b' ');
        out.extend_from_slice(reply.as_bytes());
    }
    out.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// Writes `HPUB subject [reply] hdr_len total_len\r\nNATS/1.0\r\nK: V\r\n\r\npayload\r\n`.
///
/// ```
/// let mut out = Vec::new();
/// let headers = [("Nats-Expected-Last-Subject-Sequence", "0")];
/// chatnode::link::nats::proto::write_hpub(&mut out, "k", Some("r"), &headers, b"v");
/// let head = "NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: 0\r\n\r\n";
/// assert_eq!(out, format!("HPUB k r {} {}\r\n{head}v\r\n", head.len(), head.len() + 1).into_bytes());
/// ```
pub fn write_hpub(
    out: &mut Vec<u8>,
    subject: &str,
    reply: Option<&str>,
    headers: &[(&str, &str)],
    payload: &[u8],
) {
    let mut head = String::from("NATS/1.0\r\n");
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(b"HPUB ");
    out.extend_from_slice(subject.as_bytes());
    if let Some(reply) = reply {
        out.push(b' ');
        out.extend_from_slice(reply.as_bytes());
    }
    let total = head.len() + payload.len();
    out.extend_from_slice(format!(" {} {total}\r\n", head.len()).as_bytes());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// Writes `SUB subject sid\r\n`.
pub fn write_sub(out: &mut Vec<u8>, subject: &str, sid: u64) {
    out.extend_from_slice(format!("SUB {subject} {sid}\r\n").as_bytes());
}

/// Writes `UNSUB sid\r\n`.
pub fn write_unsub(out: &mut Vec<u8>, sid: u64) {
    out.extend_from_slice(format!("UNSUB {sid}\r\n").as_bytes());
}

/// Whether `token` can stand as one subject token we build (letters, digits, `-`, `_`, `=`):
/// no `.`, `*`, `>` or spaces, which would change the subject's meaning.
pub fn is_safe_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(p: &mut Parser) -> Vec<ServerOp> {
        let mut v = Vec::new();
        while let Some(op) = p.next_op().unwrap() {
            v.push(op);
        }
        v
    }

    #[test]
    fn control_lines() {
        let mut p = Parser::new(1024);
        p.feed(b"INFO {\"server_id\":\"x\"}\r\nPING\r\nPONG\r\n+OK\r\n-ERR 'Authorization Violation'\r\n");
        assert_eq!(
            ops(&mut p),
            [
                ServerOp::Info("{\"server_id\":\"x\"}".into()),
                ServerOp::Ping,
                ServerOp::Pong,
                ServerOp::Ok,
                ServerOp::Err("Authorization Violation".into()),
            ]
        );
    }

    #[test]
    fn msg_with_reply_split_anywhere() {
        let wire = b"MSG cn.x 3 _INBOX.a.1 11\r\nhello\r\nworl\r\n";
        // Every split point gives the same single message.
        for cut in 0..wire.len() {
            let mut p = Parser::new(1024);
            p.feed(&wire[..cut]);
            let mut got = ops(&mut p);
            p.feed(&wire[cut..]);
            got.extend(ops(&mut p));
            let want = Delivery {
                subject: "cn.x".into(),
                sid: 3,
                reply: Some("_INBOX.a.1".into()),
                headers: None,
                payload: b"hello\r\nworl".to_vec(),
            };
            assert_eq!(got, [ServerOp::Msg(want)], "cut at {cut}");
        }
    }

    #[test]
    fn hmsg_headers_and_status() {
        let head = "NATS/1.0 404 Message Not Found\r\n\r\n";
        let wire = format!(
            "HMSG _INBOX.a.2 1 {} {}\r\n{head}\r\n",
            head.len(),
            head.len()
        );
        let mut p = Parser::new(1024);
        p.feed(wire.as_bytes());
        let Some(ServerOp::Msg(m)) = p.next_op().unwrap() else {
            panic!("no message")
        };
        assert_eq!(m.status(), Some(404));
        assert!(m.payload.is_empty());

        let head = "NATS/1.0\r\nNats-Sequence: 42\r\nNats-Subject: $KV.b.k\r\n\r\n";
        let wire = format!(
            "HMSG s 1 {} {}\r\n{head}val\r\n",
            head.len(),
            head.len() + 3
        );
        p.feed(wire.as_bytes());
        let Some(ServerOp::Msg(m)) = p.next_op().unwrap() else {
            panic!("no message")
        };
        assert_eq!(m.status(), None);
        assert_eq!(m.header("nats-sequence"), Some("42"));
        assert_eq!(m.payload, b"val");
    }

    #[test]
    fn limits_and_garbage_are_errors_not_panics() {
        let mut p = Parser::new(4);
        p.feed(b"MSG a 1 5\r\nhello\r\n");
        assert!(p.next_op().is_err(), "payload over the limit");
        for bad in [
            &b"MSG a\r\n"[..],
            b"MSG a x 1\r\nx\r\n",
            b"HMSG a 1 5 2\r\nxx\r\n",
            b"MSG a 1 1\r\nxyz",
            b"BOGUS\r\n",
            b"\xff\xfe\r\n",
        ] {
            let mut p = Parser::new(1024);
            p.feed(bad);
            assert!(p.next_op().is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut p = Parser::new(1024);
        p.feed(&vec![b'x'; MAX_LINE + 1]);
        assert!(p.next_op().is_err(), "a line without end past the limit");
    }

    #[test]
    fn connect_carries_credentials_escaped() {
        let mut out = Vec::new();
        let creds = Credentials {
            token: None,
            user: Some("u\"1".into()),
            pass: Some("p\\w".into()),
        };
        write_connect(&mut out, "node", &creds);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("CONNECT {") && s.ends_with("}\r\n"), "{s}");
        assert!(s.contains(r#""user":"u\"1","pass":"p\\w""#), "{s}");
        assert!(s.contains(r#""echo":false"#) && s.contains(r#""headers":true"#));
        assert!(!s.contains("auth_token"));
    }

    #[test]
    fn safe_tokens() {
        assert!(is_safe_token("abc-1_2="));
        for bad in ["", "a.b", "*", ">", "a b", "é"] {
            assert!(!is_safe_token(bad), "{bad}");
        }
    }
}
