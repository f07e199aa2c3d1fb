//! IRC over WebSocket (the IRCv3 WebSocket spec), and the chat page, on one listener.
//!
//! A connection starts with an HTTP request, which we read and parse ourselves (httparse):
//! `GET /` (and the page's two assets) is answered with the chat page compiled into the binary
//! and the socket is closed; a WebSocket upgrade is checked (version, key, `Origin` against the
//! allowed list), answered with `101`, and the socket becomes a [`WsLines`] stream: one
//! WebSocket message per IRC line, `\r\n` added on the way in and removed on the way out, so the
//! connection code reads and writes lines exactly as on TCP. Framing and masking are
//! async-tungstenite's, on the futures-io stream, so both builds share this file.
//!
//! Subprotocols: the client lists `binary.ircv3.net` and/or `text.ircv3.net` in its order of
//! preference and we take the first we know (both). With `text.ircv3.net` every message we send
//! is valid UTF-8 (invalid bytes become U+FFFD, as the spec allows). A client that asks for
//! neither (older web clients) gets text messages and may send either kind.
//!
//! Limits: the request head is at most [`MAX_REQUEST_HEAD`] bytes; an incoming message is at
//! most [`MAX_MESSAGE`] bytes (a tagged line's worth) or the connection ends with an error, and a
//! message longer than an IRC line but within that bound reaches the line framing, which answers
//! 417 as it does on TCP. The handshake runs under the registration deadline like any other.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::tungstenite::{self, Message};
use async_tungstenite::WebSocketStream;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_lite::{ready, Stream};
use futures_sink::Sink;

use super::{page, Transport, Upgraded};

/// The longest HTTP request head we read before answering 431.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// The longest WebSocket message we accept: a line with the largest tags section.
pub const MAX_MESSAGE: usize = crate::proto::MAX_LINE_LEN + crate::proto::MAX_TAGS_LEN;

/// The subprotocol for binary messages.
pub const BINARY_PROTOCOL: &str = "binary.ircv3.net";
/// The subprotocol for text (UTF-8) messages.
pub const TEXT_PROTOCOL: &str = "text.ircv3.net";

/// How a WebSocket listener behaves.
#[derive(Clone, Debug, Default)]
pub struct WsSettings {
    /// Origins (`scheme://host[:port]`) allowed to open a WebSocket. Empty: only the page's own
    /// origin (the request's `Host`). `*` allows any. Requests without `Origin` (not from a
    /// browser) are always allowed.
    pub origins: Vec<String>,
    /// Serve the chat page on `GET /`.
    pub serve_page: bool,
    /// Speak TLS first (`wss://`).
    #[cfg(feature = "tls")]
    pub tls: Option<super::tls::TlsAcceptor>,
}

impl WsSettings {
    /// `ws` or `wss`.
    pub fn transport(&self) -> Transport {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return Transport::SecureWebSocket;
        }
        Transport::WebSocket
    }

    fn origin_allowed(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true; // not a browser: no cross-site request to guard against
        };
        if self.origins.is_empty() {
            let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
            return host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host));
        }
        self.origins
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    }
}

/// Serves one connection of a WebSocket listener: TLS first if configured, then the request.
pub(super) async fn accept<S>(
    settings: &WsSettings,
    stream: S,
    peer: std::net::SocketAddr,
) -> io::Result<Upgraded>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &settings.tls {
        let stream = acceptor.accept(stream).await?;
        return serve(settings, stream, peer).await;
    }
    serve(settings, stream, peer).await
}

/// What the request asked for.
enum Request {
    /// A file of the chat page (or 404 for any other path).
    Page(String),
    /// A WebSocket upgrade, checked: the accept key and the subprotocol we chose.
    Upgrade {
        accept: String,
        protocol: Option<&'static str>,
    },
    /// Refused with this status line and text.
    Refuse(&'static str, &'static str),
}

async fn serve<S>(
    settings: &WsSettings,
    mut stream: S,
    peer: std::net::SocketAddr,
) -> io::Result<Upgraded>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (head, rest) = read_head(&mut stream).await?;
    let request = match head {
        Some(head) => parse_request(settings, &head),
        None => Request::Refuse("431 Request Header Fields Too Large", "request too large"),
    };
    match request {
        Request::Page(path) if settings.serve_page => {
            let response = page::response(&path);
            log::debug!("{peer}: GET {path}");
            stream.write_all(&response).await?;
            stream.close().await?;
            Ok(Upgraded::Answered)
        }
        Request::Page(_) => refuse(stream, "404 Not Found", "no page here").await,
        Request::Refuse(status, why) => {
            log::info!("{peer}: WebSocket request refused: {status} ({why})");
            refuse(stream, status, why).await
        }
        Request::Upgrade { accept, protocol } => {
            let mut response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {accept}\r\n"
            );
            if let Some(p) = protocol {
                response.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
            }
            response.push_str("\r\n");
            stream.write_all(response.as_bytes()).await?;
            stream.flush().await?;
            log::debug!(
                "{peer}: WebSocket open, subprotocol {}",
                protocol.unwrap_or("none")
            );
            let stream = Prefixed {
                rest,
                pos: 0,
                inner: stream,
            };
            let ws =
                WebSocketStream::from_raw_socket(stream, Role::Server, Some(ws_config())).await;
            let lines = WsLines::new(ws, protocol);
            let (r, w) = futures_lite::io::split(lines);
            Ok(Upgraded::Irc(Box::new(r), Box::new(w)))
        }
    }
}

/// Small buffers: tungstenite's defaults (128 KiB each way) would cost every idle client far
/// more than its IRC state. Writes go out at once (the connection batches lines itself).
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(crate::server::WRITE_BATCH_BYTES * 2)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

async fn refuse<S: AsyncWrite + Unpin>(
    mut stream: S,
    status: &str,
    why: &str,
) -> io::Result<Upgraded> {
    stream.write_all(&http_response(status, why)).await?;
    stream.close().await?;
    Ok(Upgraded::Answered)
}

/// A plain-text HTTP response with status line `status` (`"503 Service Unavailable"`) and the
/// body `why`, after which the connection closes.
pub(super) fn http_response(status: &str, why: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{why}\n",
        why.len() + 1
    )
    .into_bytes()
}

/// Reads up to the blank line that ends the request head. `None` if it is longer than
/// [`MAX_REQUEST_HEAD`]; the bytes after the head (a client may send frames at once) come back
/// too.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<(Option<Vec<u8>>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the request ended",
            ));
        }
        let searched_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf[searched_from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
        {
            let end = searched_from + end + 4;
            let rest = buf.split_off(end);
            return Ok((Some(buf), rest));
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Ok((None, Vec::new()));
        }
    }
}

fn parse_request(settings: &WsSettings, head: &[u8]) -> Request {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Request::Refuse("400 Bad Request", "malformed request"),
    }
    if req.method != Some("GET") {
        return Request::Refuse("405 Method Not Allowed", "only GET");
    }
    let path = req.path.unwrap_or("/").to_string();
    let header = |name: &str| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .collect::<Vec<_>>()
    };
    let has_token = |name: &str, token: &str| {
        header(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token("upgrade", "websocket") {
        return Request::Page(path);
    }
    if !has_token("connection", "upgrade") {
        return Request::Refuse("400 Bad Request", "Connection: Upgrade missing");
    }
    if header("sec-websocket-version").first().map(|v| v.trim()) != Some("13") {
        return Request::Refuse("426 Upgrade Required", "WebSocket version 13 only");
    }
    let Some(key) = header("sec-websocket-key")
        .first()
        .map(|k| k.trim().to_string())
    else {
        return Request::Refuse("400 Bad Request", "Sec-WebSocket-Key missing");
    };
    let origin = header("origin").first().map(|o| o.trim().to_string());
    let host = header("host").first().map(|h| h.trim().to_string());
    if !settings.origin_allowed(origin.as_deref(), host.as_deref()) {
        return Request::Refuse("403 Forbidden", "origin not allowed");
    }
    let protocol = header("sec-websocket-protocol")
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| match p {
            BINARY_PROTOCOL => Some(BINARY_PROTOCOL),
            TEXT_PROTOCOL => Some(TEXT_PROTOCOL),
            _ => None,
        });
    Request::Upgrade {
        accept: derive_accept_key(key.as_bytes()),
        protocol,
    }
}

/// Copies what fits of `src[*pos..]` into `buf`, advancing `pos`; returns the count.
fn copy_out(src: &[u8], pos: &mut usize, buf: &mut [u8]) -> usize {
    let n = buf.len().min(src.len() - *pos);
    buf[..n].copy_from_slice(&src[*pos..*pos + n]);
    *pos += n;
    n
}

/// A stream that yields `rest` before reading from `inner`: bytes read past the request head.
struct Prefixed<S> {
    rest: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pos < this.rest.len() {
            let n = copy_out(&this.rest, &mut this.pos, buf);
            if this.pos == this.rest.len() {
                this.rest = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// A WebSocket seen as a byte stream of IRC lines: each message read comes out followed by
/// `\r\n`; each line written (up to its `\n`) goes out as one message without its `\r\n`.
pub struct WsLines<S> {
    ws: WebSocketStream<S>,
    /// Send text messages (text subprotocol, or none negotiated) rather than binary ones.
    text: bool,
    /// The message being read out, and how far.
    incoming: Vec<u8>,
    read_pos: usize,
    /// The start of a line written without its end yet.
    partial: Vec<u8>,
}

impl<S> WsLines<S> {
    fn new(ws: WebSocketStream<S>, protocol: Option<&'static str>) -> Self {
        WsLines {
            ws,
            text: protocol != Some(BINARY_PROTOCOL),
            incoming: Vec::new(),
            read_pos: 0,
            partial: Vec::new(),
        }
    }

    fn message(&self, line: &[u8]) -> Message {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.text {
            Message::text(String::from_utf8_lossy(line).into_owned())
        } else {
            Message::binary(line.to_vec())
        }
    }
}

fn ws_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket closed")
        }
        other => io::Error::new(io::ErrorKind::InvalidData, format!("WebSocket: {other}")),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsLines<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if this.read_pos < this.incoming.len() {
                return Poll::Ready(Ok(copy_out(&this.incoming, &mut this.read_pos, buf)));
            }
            let payload: Vec<u8> = match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(0)),
                Some(Err(e)) => return Poll::Ready(Err(ws_error(e))),
                Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                Some(Ok(Message::Binary(b))) => b.to_vec(),
                // Pings are answered by tungstenite itself; pongs and raw frames carry no line.
                Some(Ok(_)) => continue,
            };
            this.incoming = payload;
            this.incoming.extend_from_slice(b"\r\n");
            this.read_pos = 0;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsLines<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut taken = 0;
        while taken < buf.len() {
            let rest = &buf[taken..];
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                // No line end yet: keep the start of the line for the next write.
                this.partial.extend_from_slice(rest);
                return Poll::Ready(Ok(buf.len()));
            };
            match Pin::new(&mut this.ws).poll_ready(cx) {
                Poll::Pending if taken > 0 => return Poll::Ready(Ok(taken)),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(ws_error(e))),
                Poll::Ready(Ok(())) => {}
            }
            let message = if this.partial.is_empty() {
                this.message(&rest[..=end])
            } else {
                let mut line = std::mem::take(&mut this.partial);
                line.extend_from_slice(&rest[..=end]);
                this.message(&line)
            };
            Pin::new(&mut this.ws)
                .start_send(message)
                .map_err(ws_error)?;
            taken += end + 1;
        }
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_flush(cx)
            .map_err(ws_error)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Sends a Close frame, flushes, and waits for the peer's (tungstenite's protocol).
        match ready!(Pin::new(&mut self.get_mut().ws).poll_close(cx)) {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(ws_error(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(origins: &[&str]) -> WsSettings {
        WsSettings {
            origins: origins.iter().map(|s| s.to_string()).collect(),
            ..WsSettings::default()
        }
    }

    #[test]
    fn origins() {
        let same = settings(&[]);
        assert!(same.origin_allowed(None, Some("board.local:8080")));
        assert!(same.origin_allowed(Some("http://board.local:8080"), Some("board.local:8080")));
        assert!(!same.origin_allowed(Some("http://evil.example"), Some("board.local:8080")));
        let listed = settings(&["https://chat.example.org"]);
        assert!(listed.origin_allowed(Some("https://chat.example.org"), Some("x")));
        assert!(!listed.origin_allowed(Some("http://chat.example.org"), Some("x")));
        assert!(settings(&["*"]).origin_allowed(Some("http://any"), None));
    }

    fn request(protocols: &str) -> Request {
        let head = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: {protocols}\r\n\r\n"
        );
        parse_request(&settings(&[]), head.as_bytes())
    }

    #[test]
    fn subprotocol_follows_the_clients_preference() {
        for (asked, chosen) in [
            ("text.ircv3.net, binary.ircv3.net", Some(TEXT_PROTOCOL)),
            ("binary.ircv3.net, text.ircv3.net", Some(BINARY_PROTOCOL)),
            ("chat, binary.ircv3.net", Some(BINARY_PROTOCOL)),
            ("chat", None),
        ] {
            match request(asked) {
                Request::Upgrade { accept, protocol } => {
                    // RFC 6455's own example key and answer.
                    assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
                    assert_eq!(protocol, chosen, "{asked}");
                }
                _ => panic!("not an upgrade"),
            }
        }
    }
}
