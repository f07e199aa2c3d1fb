//! The NATS connection on any futures-io byte stream: the handshake and a reader of server
//! ops. Runtime-neutral (futures-io traits only), so the smol and Tokio builds share it; the
//! socket comes from [`crate::rt::Runtime::connect`].
//!
//! The writing side is plain bytes: the link adapter builds frames with [`super::proto`]'s
//! writers into one buffer and writes it at once.

use std::io;

use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::json;
use super::proto::{write_connect, Credentials, Parser, ServerOp};

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
}

impl ServerInfo {
    fn parse(doc: &str) -> ServerInfo {
        ServerInfo {
            server_id: json::string(doc, "server_id").unwrap_or_default(),
            version: json::string(doc, "version").unwrap_or_default(),
            max_payload: json::number(doc, "max_payload").map_or(1 << 20, |n| n as usize),
            jetstream: json::boolean(doc, "jetstream").unwrap_or(false),
        }
    }
}

/// Logs in: reads `INFO`, sends `CONNECT` and a `PING`, and waits for the `PONG` that proves
/// the server accepted us (a refused login gets `-ERR` and a close instead).
pub async fn handshake<R, W>(
    reader: &mut OpReader<R>,
    writer: &mut W,
    name: &str,
    creds: &Credentials,
) -> io::Result<ServerInfo>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let info = match reader.next().await? {
        ServerOp::Info(doc) => {
            if json::boolean(&doc, "tls_required") == Some(true) {
                return Err(io::Error::other(
                    "the NATS server requires TLS, which the link does not speak yet",
                ));
            }
            ServerInfo::parse(&doc)
        }
        other => {
            return Err(io::Error::other(format!(
                "NATS server sent {other:?} before INFO"
            )))
        }
    };
    let mut out = Vec::new();
    write_connect(&mut out, name, creds);
    out.extend_from_slice(b"PING\r\n");
    writer.write_all(&out).await?;
    writer.flush().await?;
    loop {
        match reader.next().await? {
            ServerOp::Pong => return Ok(info),
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

    /// A scripted server: what it "sends" is read from a slice; what we write is collected.
    #[test]
    fn handshake_sends_connect_and_waits_for_pong() {
        let server = b"INFO {\"server_id\":\"S1\",\"version\":\"2.9.20\",\"max_payload\":1048576,\"jetstream\":true}\r\nPONG\r\n";
        let mut reader = OpReader::new(&server[..], 1 << 20);
        let mut written = Vec::new();
        let creds = Credentials {
            token: Some("s3cret".into()),
            ..Credentials::default()
        };
        let info = block_on(handshake(&mut reader, &mut written, "n1", &creds)).unwrap();
        assert_eq!(info.server_id, "S1");
        assert!(info.jetstream);
        assert_eq!(info.max_payload, 1 << 20);
        let text = String::from_utf8(written).unwrap();
        assert!(text.starts_with("CONNECT {"), "{text}");
        assert!(text.contains("\"auth_token\":\"s3cret\""), "{text}");
        assert!(text.ends_with("PING\r\n"), "{text}");
    }

    #[test]
    fn refused_login_and_eof_are_errors() {
        let server = b"INFO {}\r\n-ERR 'Authorization Violation'\r\n";
        let mut reader = OpReader::new(&server[..], 1024);
        let err = block_on(handshake(
            &mut reader,
            &mut Vec::<u8>::new(),
            "n",
            &Credentials::default(),
        ))
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("Authorization Violation"));

        let mut reader = OpReader::new(&b"INFO {}\r\n"[..], 1024);
        let err = block_on(handshake(
            &mut reader,
            &mut Vec::<u8>::new(),
            "n",
            &Credentials::default(),
        ))
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        let mut reader = OpReader::new(&b"INFO {\"tls_required\":true}\r\n"[..], 1024);
        assert!(block_on(handshake(
            &mut reader,
            &mut Vec::<u8>::new(),
            "n",
            &Credentials::default()
        ))
        .is_err());
    }
}
