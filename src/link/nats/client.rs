//! The NATS connection on any futures-io byte stream: the handshake and a reader of server
//! ops. Runtime-neutral (futures-io traits only), so the smol and Tokio builds share it; the
//! socket comes from [`crate::rt::Runtime::connect`].
//!
//! [`open`] is the order NATS sets: `INFO` in plain text, then TLS on the same socket if
//! either side requires it ([`Security`]), then `CONNECT` and a `PING` inside it. It never
//! falls back to plain text when TLS was asked for.
//!
//! The writing side is plain bytes: the link adapter builds frames with [`super::proto`]'s
//! writers into one buffer and writes it at once.

use std::io;

use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::json;
use super::proto::{write_connect, Credentials, Parser, ServerOp};
use super::tls::TlsClient;
use crate::server::transport::{BoxReader, BoxWriter};

/// Reads [`ServerOp`]s from the read half of a NATS connection.
pub struct OpReader<R> {
    io: R,
    parser: Parser,
    buf: Box<[u8]>,
}

impl<R: AsyncRead + Unpin> OpReader<R> {
    /// A reader refusing payloads over `max_payload` bytes.
    pub fn new(io: R, max_payload: usize) -> OpReader<R> {
        OpReader {
            io,
            parser: Parser::new(max_payload),
            buf: vec![0; 16 * 1024].into_boxed_slice(),
        }
    }

    /// The byte stream back, to start TLS on it after `INFO`. An error if the server sent
    /// more than was parsed: those bytes would be lost (a server waits for the client's TLS
    /// handshake after `INFO`, so there are none).
    pub fn into_inner(self) -> io::Result<R> {
        match self.parser.buffered() {
            0 => Ok(self.io),
            n => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("NATS server sent {n} byte(s) after INFO, before the TLS handshake"),
            )),
        }
    }

    /// The next op. An error (EOF, a reset, a protocol violation) ends the connection.
    ///
    /// Cancel-safe: bytes read are kept in the parser, so dropping the future loses nothing.
    pub async fn next(&mut self) -> io::Result<ServerOp> {
        loop {
            if let Some(op) = self.parser.next_op().map_err(io::Error::other)? {
                return Ok(op);
            }
            let n = self.io.read(&mut self.buf).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "NATS server closed the connection",
                ));
            }
            self.parser.feed(&self.buf[..n]);
        }
    }
}

/// What the server said about itself in `INFO`.
#[derive(Clone, Debug, Default)]
pub struct ServerInfo {
    /// `server_id`.
    pub server_id: String,
    /// `version`.
    pub version: String,
    /// `max_payload`: the largest message the server takes.
    pub max_payload: usize,
    /// `jetstream`: JetStream is enabled.
    pub jetstream: bool,
    /// `tls_required`: the server takes clients over TLS only (its config has a `tls {}` block).
    pub tls_required: bool,
    /// `tls_available`: the server takes TLS, and plain clients too (`allow_non_tls`).
    pub tls_available: bool,
}

impl ServerInfo {
    fn parse(doc: &str) -> ServerInfo {
        ServerInfo {
            server_id: json::string(doc, "server_id").unwrap_or_default(),
            version: json::string(doc, "version").unwrap_or_default(),
            max_payload: json::number(doc, "max_payload").map_or(1 << 20, |n| n as usize),
            jetstream: json::boolean(doc, "jetstream").unwrap_or(false),
            tls_required: json::boolean(doc, "tls_required").unwrap_or(false),
            tls_available: json::boolean(doc, "tls_available").unwrap_or(false),
        }
    }
}

/// How the link secures its connection to NATS.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// `tls://` was asked for: a server that does not offer TLS is refused, never spoken to in
    /// plain text.
    pub require_tls: bool,
    /// The host of `--link`: the name the server's certificate must carry.
    pub host: String,
    /// What TLS trusts (`--link-ca`) and shows (`--link-cert`); `None`: TLS is not configured,
    /// and a server that requires it is refused.
    pub tls: Option<TlsClient>,
}

impl Security {
    /// The TLS client to run on a connection whose server sent `info`: `None` for plain text.
    /// An error when the two sides do not agree (we require TLS and the server does not offer
    /// it, or the server requires it and we have no CA to check it with).
    fn choose(&self, info: &ServerInfo) -> io::Result<Option<&TlsClient>> {
        let offered = info.tls_required || info.tls_available;
        if self.require_tls && !offered {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the link asks for TLS (tls://) but the NATS server does not offer it \
                 (no tls {} block in its configuration?); not sending anything in plain text",
            ));
        }
        if !(self.require_tls || info.tls_required) {
            return Ok(None);
        }
        match &self.tls {
            Some(tls) => Ok(Some(tls)),
            None if cfg!(feature = "tls") => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the NATS server requires TLS: give --link-ca FILE (the CA that signed its \
                 certificate), and preferably link with tls://",
            )),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the NATS server requires TLS, and {}", super::tls::NO_TLS),
            )),
        }
    }
}

/// A logged-in NATS connection: ops to read, a stream to write, what the server said.
pub struct Session {
    /// The server's ops.
    pub reader: OpReader<BoxReader>,
    /// Where frames go.
    pub writer: BoxWriter,
    /// The server's `INFO`.
    pub info: ServerInfo,
    /// Whether the connection is encrypted.
    pub tls: bool,
}

/// Opens a session on a fresh connection: reads `INFO` (always plain text), runs the TLS
/// handshake on the same socket if `security` or the server asks for it, then logs in inside
/// it (see [`login`]). Reconnecting means calling this again: every connection has its own
/// handshake.
pub async fn open<Rd, Wr>(
    reader: Rd,
    writer: Wr,
    security: &Security,
    name: &str,
    creds: &Credentials,
    max_payload: usize,
) -> io::Result<Session>
where
    Rd: AsyncRead + Unpin + Send + 'static,
    Wr: AsyncWrite + Unpin + Send + 'static,
{
    let mut reader = OpReader::new(Box::new(reader) as BoxReader, max_payload);
    let info = read_info(&mut reader).await?;
    let (mut reader, mut writer, tls) = match security.choose(&info)? {
        Some(tls) => {
            let raw = reader.into_inner()?;
            let (r, w) = tls.connect(&security.host, raw, writer).await?;
            (OpReader::new(r, max_payload), w, true)
        }
        None => (reader, Box::new(writer) as BoxWriter, false),
    };
    login(&mut reader, &mut writer, name, creds)
        .await
        .map_err(|e| match e.kind() {
            // rustls' errors: with TLS 1.3 the server checks our certificate after our side
            // of the handshake is done, so its refusal arrives here, as an alert.
            io::ErrorKind::InvalidData if tls => io::Error::new(
                e.kind(),
                format!(
                    "the NATS server ended the TLS session: {e} (does it want a client \
                     certificate its CA signed? --link-cert, --link-key)"
                ),
            ),
            _ => e,
        })?;
    Ok(Session {
        reader,
        writer,
        info,
        tls,
    })
}

/// Reads the server's first op, which must be `INFO`.
pub async fn read_info<R: AsyncRead + Unpin>(reader: &mut OpReader<R>) -> io::Result<ServerInfo> {
    match reader.next().await? {
        ServerOp::Info(doc) => Ok(ServerInfo::parse(&doc)),
        other => Err(io::Error::other(format!(
            "NATS server sent {other:?} before INFO"
        ))),
    }
}

/// Logs in: sends `CONNECT` and a `PING`, and waits for the `PONG` that proves the server
/// accepted us (a refused login gets `-ERR` and a close instead).
pub async fn login<R, W>(
    reader: &mut OpReader<R>,
    writer: &mut W,
    name: &str,
    creds: &Credentials,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = Vec::new();
    write_connect(&mut out, name, creds);
    out.extend_from_slice(b"PING\r\n");
    writer.write_all(&out).await?;
    writer.flush().await?;
    loop {
        match reader.next().await? {
            ServerOp::Pong => return Ok(()),
            ServerOp::Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("NATS server refused the connection: {e}"),
                ))
            }
            ServerOp::Ping => {
                writer.write_all(b"PONG\r\n").await?;
                writer.flush().await?;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    fn plain_open(server: &'static [u8], security: &Security) -> io::Result<Session> {
        block_on(open(
            server,
            Vec::<u8>::new(),
            security,
            "n",
            &Credentials::default(),
            1024,
        ))
    }

    /// A scripted server: what it "sends" is read from a slice; what we write is collected.
    #[test]
    fn login_sends_connect_and_waits_for_pong() {
        let server = b"INFO {\"server_id\":\"S1\",\"version\":\"2.9.20\",\"max_payload\":1048576,\"jetstream\":true}\r\nPONG\r\n";
        let mut reader = OpReader::new(&server[..], 1 << 20);
        let mut written = Vec::new();
        let creds = Credentials {
            token: Some("s3cret".into()),
            ..Credentials::default()
        };
        let info = block_on(read_info(&mut reader)).unwrap();
        block_on(login(&mut reader, &mut written, "n1", &creds)).unwrap();
        assert_eq!(info.server_id, "S1");
        assert!(info.jetstream);
        assert!(!info.tls_required);
        assert_eq!(info.max_payload, 1 << 20);
        let text = String::from_utf8(written).unwrap();
        assert!(text.starts_with("CONNECT {"), "{text}");
        assert!(text.contains("\"auth_token\":\"s3cret\""), "{text}");
        assert!(text.ends_with("PING\r\n"), "{text}");
        let session = plain_open(server, &Security::default()).unwrap();
        assert!(!session.tls);
    }

    #[test]
    fn refused_login_and_eof_are_errors() {
        let server = b"INFO {}\r\n-ERR 'Authorization Violation'\r\n";
        let err = plain_open(server, &Security::default()).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("Authorization Violation"));

        let err = plain_open(b"INFO {}\r\n", &Security::default())
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// TLS is never skipped silently: a server that requires it is refused without a CA to
    /// check it with, and a tls:// link refuses a server that does not offer it, before
    /// sending anything.
    #[test]
    fn tls_mismatches_are_errors() {
        let err = plain_open(b"INFO {\"tls_required\":true}\r\n", &Security::default())
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(err.to_string().contains("requires TLS"), "{err}");

        let wants_tls = Security {
            require_tls: true,
            host: "127.0.0.1".into(),
            tls: None,
        };
        let err = plain_open(b"INFO {}\r\nPONG\r\n", &wants_tls)
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(err.to_string().contains("does not offer it"), "{err}");
    }

    #[test]
    fn bytes_after_info_are_not_lost_silently() {
        let mut reader = OpReader::new(&b"INFO {}\r\nPING\r\n"[..], 1024);
        block_on(read_info(&mut reader)).unwrap();
        let err = reader.into_inner().err().unwrap();
        assert!(err.to_string().contains("after INFO"), "{err}");
    }
}
