//! Transports: how a client's bytes reach its connection.
//!
//! Every listener yields the same thing: a byte stream (futures-io `AsyncRead` + `AsyncWrite`),
//! the peer's address and the transport's name. Plain TCP hands the runtime's socket halves to
//! [`Connection`](super::Connection) unchanged. TLS and WebSocket first run a handshake, in the
//! connection's own task and under its registration deadline, and then hand over halves of the
//! wrapped stream; from there on the connection logic, the limits, the timeouts and the queues
//! are the same, and the broker cannot tell the transports apart (it only learns, for WHOIS 671,
//! whether the transport is encrypted).
//!
//! Invariants:
//! - a handshake never runs in an accept loop: a client that stalls it stalls only itself;
//! - the broker hears of a client only once its handshake is done, so a failed handshake or a
//!   page load costs the broker nothing;
//! - TLS and WebSocket live behind the `tls` and `websocket` features; without them this module
//!   is plain TCP only.

use std::io;
use std::pin::Pin;
#[cfg(feature = "websocket")]
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};

#[cfg(feature = "websocket")]
pub mod page;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "websocket")]
pub mod ws;

/// Which protocol a connection speaks under IRC. Its name shows in logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// IRC over plain TCP.
    Plain,
    /// IRC over TLS.
    Tls,
    /// IRC over WebSocket (`ws://`).
    WebSocket,
    /// IRC over WebSocket over TLS (`wss://`).
    SecureWebSocket,
}

impl Transport {
    /// The name used in logs: `tcp`, `tls`, `ws`, `wss`.
    ///
    /// ```
    /// use chatnode::server::transport::Transport;
    /// assert_eq!(Transport::SecureWebSocket.name(), "wss");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Transport::Plain => "tcp",
            Transport::Tls => "tls",
            Transport::WebSocket => "ws",
            Transport::SecureWebSocket => "wss",
        }
    }

    /// Whether the bytes are encrypted on the wire (WHOIS 671).
    pub fn is_secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::SecureWebSocket)
    }
}

/// What a listener does with an accepted socket before IRC starts.
#[derive(Clone)]
pub enum ListenerKind {
    /// Nothing: IRC over plain TCP.
    Plain,
    /// A TLS handshake with the certificate the acceptor holds now.
    #[cfg(feature = "tls")]
    Tls(tls::TlsAcceptor),
    /// An HTTP request: the chat page, or an upgrade to WebSocket (over TLS if it has an acceptor).
    #[cfg(feature = "websocket")]
    WebSocket(Arc<ws::WsSettings>),
}

impl ListenerKind {
    /// The transport of the connections this listener accepts.
    pub fn transport(&self) -> Transport {
        match self {
            ListenerKind::Plain => Transport::Plain,
            #[cfg(feature = "tls")]
            ListenerKind::Tls(_) => Transport::Tls,
            #[cfg(feature = "websocket")]
            ListenerKind::WebSocket(settings) => settings.transport(),
        }
    }
}

/// A bound socket and what to do with its connections.
///
/// A bare `std::net::TcpListener` converts into a plain one:
///
/// ```
/// use chatnode::server::transport::{Listener, Transport};
/// let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let listener = Listener::from(socket);
/// assert_eq!(listener.kind.transport(), Transport::Plain);
/// ```
pub struct Listener {
    /// The bound socket (the caller binds, so tests can use port 0).
    pub socket: std::net::TcpListener,
    /// What its connections speak.
    pub kind: ListenerKind,
}

impl From<std::net::TcpListener> for Listener {
    fn from(socket: std::net::TcpListener) -> Self {
        Listener {
            socket,
            kind: ListenerKind::Plain,
        }
    }
}

/// The read half of a wrapped (TLS or WebSocket) stream.
pub type BoxReader = Box<dyn AsyncRead + Unpin + Send>;
/// The write half of a wrapped (TLS or WebSocket) stream.
pub type BoxWriter = Box<dyn AsyncWrite + Unpin + Send>;

/// The result of a handshake: IRC halves, or nothing more to do (a page was served).
pub enum Upgraded {
    /// Speak IRC over these halves.
    Irc(BoxReader, BoxWriter),
    /// The request was answered (the chat page, a refusal); close without telling the broker.
    Answered,
}

/// Runs `kind`'s handshake over the socket halves. The caller bounds it by the registration
/// deadline; dropping the future abandons the handshake and closes the socket.
#[allow(unused_variables)]
pub async fn upgrade<Rd, Wr>(
    kind: &ListenerKind,
    reader: Rd,
    writer: Wr,
    peer: std::net::SocketAddr,
) -> io::Result<Upgraded>
where
    Rd: AsyncRead + Unpin + Send + 'static,
    Wr: AsyncWrite + Unpin + Send + 'static,
{
    let stream = Joined { reader, writer };
    match kind {
        ListenerKind::Plain => {
            let (r, w) = futures_lite::io::split(stream);
            Ok(Upgraded::Irc(Box::new(r), Box::new(w)))
        }
        #[cfg(feature = "tls")]
        ListenerKind::Tls(acceptor) => {
            let tls = acceptor.accept(stream).await?;
            let (r, w) = futures_lite::io::split(tls);
            Ok(Upgraded::Irc(Box::new(r), Box::new(w)))
        }
        #[cfg(feature = "websocket")]
        ListenerKind::WebSocket(settings) => ws::accept(settings, stream, peer).await,
    }
}

/// Two halves joined back into one stream, for libraries that want one (rustls, tungstenite).
///
/// ```
/// use chatnode::server::transport::Joined;
/// use futures_lite::io::{AsyncReadExt, Cursor};
/// let mut joined = Joined { reader: Cursor::new(b"hi".to_vec()), writer: Vec::<u8>::new() };
/// let mut text = String::new();
/// futures_lite::future::block_on(joined.read_to_string(&mut text)).unwrap();
/// assert_eq!(text, "hi");
/// ```
pub struct Joined<Rd, Wr> {
    /// Where reads go.
    pub reader: Rd,
    /// Where writes go.
    pub writer: Wr,
}

impl<Rd: AsyncRead + Unpin, Wr: Unpin> AsyncRead for Joined<Rd, Wr> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl<Rd: Unpin, Wr: AsyncWrite + Unpin> AsyncWrite for Joined<Rd, Wr> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_close(cx)
    }
}

/// A fatal TLS alert record, `access_denied`: what a client refused on a TLS listener gets.
///
/// Content type 21 (alert), record version 3.3 (TLS 1.2, the legacy version every TLS 1.3
/// record carries), length 2, level 2 (fatal), description 49 (`access_denied`).
pub const TLS_ACCESS_DENIED: [u8; 7] = [21, 3, 3, 0, 2, 2, 49];

/// What a client refused at admission (a limit) is sent before the close, in the protocol its
/// listener speaks: the IRC `error_line` on plain TCP; on TLS and `wss` listeners a fatal TLS
/// alert ([`TLS_ACCESS_DENIED`]), since a TLS client would read an IRC line as a corrupt record;
/// on a `ws` listener, whose clients speak HTTP first, a `503` response carrying the line.
///
/// No TLS handshake is run just to say why: a handshake is CPU work that a flood of refused
/// connections could ask for at will. The reason is in the node's log.
///
/// ```
/// use chatnode::server::transport::{refusal, ListenerKind};
/// let line = "ERROR :Closing Link: 127.0.0.1 (Too many connections)\r\n";
/// assert_eq!(refusal(&ListenerKind::Plain, line), line.as_bytes());
/// ```
pub fn refusal(kind: &ListenerKind, error_line: &str) -> Vec<u8> {
    match kind {
        ListenerKind::Plain => error_line.as_bytes().to_vec(),
        #[cfg(feature = "tls")]
        ListenerKind::Tls(_) => TLS_ACCESS_DENIED.to_vec(),
        #[cfg(feature = "websocket")]
        ListenerKind::WebSocket(settings) => {
            if settings.transport().is_secure() {
                return TLS_ACCESS_DENIED.to_vec();
            }
            ws::http_response("503 Service Unavailable", error_line.trim_end())
        }
    }
}

/// Re-reads the certificate of every TLS listener in `kinds` (SIGHUP, REHASH), once per
/// certificate (a TLS and a wss listener share one). A listener whose files cannot be read or
/// do not match keeps its current certificate, and the error says so. Connections already open
/// keep the session they have: nobody is dropped.
///
/// Blocking file reads: call it on the blocking pool.
pub fn reload_certificates(kinds: &[ListenerKind]) -> Vec<io::Result<String>> {
    #[cfg(feature = "tls")]
    {
        let mut acceptors: Vec<&tls::TlsAcceptor> = Vec::new();
        for kind in kinds {
            let acceptor = match kind {
                ListenerKind::Tls(acceptor) => Some(acceptor),
                #[cfg(feature = "websocket")]
                ListenerKind::WebSocket(settings) => settings.tls.as_ref(),
                _ => None,
            };
            if let Some(acceptor) = acceptor.filter(|a| !acceptors.iter().any(|b| b.same_as(a))) {
                acceptors.push(acceptor);
            }
        }
        acceptors.iter().map(|a| a.reload()).collect()
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = kinds;
        Vec::new()
    }
}
