//! TLS, IRC over WebSocket and the chat page (issue 12), on every build.
//!
//! Certificates are made at run time (rcgen, self-signed for `localhost`) in a temporary
//! directory; clients trust exactly that certificate. Everything is on 127.0.0.1.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite;
use futures_rustls::rustls;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::common::*;

/// A self-signed certificate for `localhost`, written as `cert.pem` and `key.pem` in `dir`.
/// Returns the certificate, for clients to trust.
fn make_certificate(dir: &TempDir) -> CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    made.cert.der().clone()
}

fn tls_args(dir: &TempDir) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        dir.join("cert.pem").display().to_string(),
        "--tls-key".into(),
        dir.join("key.pem").display().to_string(),
    ]
}

fn start(build: &Build, dir: &TempDir, extra: &[&str]) -> Node {
    let mut args: Vec<String> = vec!["--listen".into(), "127.0.0.1:0".into()];
    args.extend(tls_args(dir));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Node::start(build, &args)
}

/// A line-oriented client over TLS or WebSocket, reading with deadlines.
struct Wire {
    label: String,
    io: Io,
    buf: Vec<u8>,
    seen: Vec<String>,
}

enum Io {
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Ws(Box<tungstenite::WebSocket<TcpStream>>),
}

fn tls_config(trusted: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Connects over TLS and finishes the handshake; `Err` if it fails (say, an untrusted
/// certificate).
fn tls_connect(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
    label: &str,
) -> io::Result<Wire> {
    let tcp = TcpStream::connect_timeout(&addr, DEADLINE)?;
    tcp.set_read_timeout(Some(DEADLINE))?;
    let name = ServerName::try_from("localhost").unwrap();
    let conn =
        rustls::ClientConnection::new(tls_config(trusted), name).map_err(io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(Wire::new(label, Io::Tls(Box::new(stream))))
}

/// Opens a WebSocket asking for `protocols`; returns the client and the protocol the server
/// chose.
fn ws_connect(addr: SocketAddr, protocols: &str, label: &str) -> (Wire, Option<String>) {
    use tungstenite::client::IntoClientRequest;
    let tcp = TcpStream::connect_timeout(&addr, DEADLINE).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut request = format!("ws://{addr}/").into_client_request().unwrap();
    if !protocols.is_empty() {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
    }
    let (ws, response) = tungstenite::client(request, tcp)
        .unwrap_or_else(|e| panic!("[{label}] WebSocket handshake: {e}"));
    let chosen = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().unwrap().to_string());
    (Wire::new(label, Io::Ws(Box::new(ws))), chosen)
}

impl Wire {
    fn new(label: &str, io: Io) -> Wire {
        Wire {
            label: label.to_string(),
            io,
            buf: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn send(&mut self, line: &str) {
        match &mut self.io {
            Io::Tls(s) => {
                s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
                s.flush().unwrap();
            }
            Io::Ws(ws) => ws
                .send(tungstenite::Message::text(line.to_string()))
                .unwrap(),
        }
    }

    /// The next line, or `None` when the connection closed; panics at the deadline.
    fn next_line(&mut self, deadline: Instant) -> Option<String> {
        loop {
            if let Io::Tls(_) = self.io {
                if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=pos).collect();
                    let line = String::from_utf8_lossy(&line).trim_end().to_string();
                    self.seen.push(line.clone());
                    return Some(line);
                }
            }
            assert!(
                Instant::now() < deadline,
                "[{}] timed out; lines so far:\n  {}",
                self.label,
                self.seen.join("\n  ")
            );
            match &mut self.io {
                Io::Tls(s) => {
                    let mut chunk = [0u8; 4096];
                    match s.read(&mut chunk) {
                        Ok(0) => return None,
                        Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                        Err(e) if is_timeout(&e) => {}
                        Err(_) => return None,
                    }
                }
                Io::Ws(ws) => match ws.read() {
                    Ok(tungstenite::Message::Text(t)) => {
                        assert!(!t.ends_with('\n'), "a message carries no line ending");
                        self.seen.push(t.to_string());
                        return Some(t.to_string());
                    }
                    Ok(tungstenite::Message::Binary(b)) => {
                        let line = String::from_utf8_lossy(&b).to_string();
                        self.seen.push(format!("(binary) {line}"));
                        return Some(line);
                    }
                    Ok(tungstenite::Message::Close(_)) => return None,
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
                    Err(_) => return None,
                },
            }
        }
    }

    /// Skips lines until one contains `needle`.
    #[track_caller]
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.next_line(deadline) {
                Some(line) if line.contains(needle) => return line,
                Some(_) => {}
                None => panic!(
                    "[{}] closed while waiting for {needle:?}; lines:\n  {}",
                    self.label,
                    self.seen.join("\n  ")
                ),
            }
        }
    }

    /// Reads until the server closes; panics if it does not within `within`.
    #[track_caller]
    fn expect_closed(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.next_line(deadline).is_some() {}
    }

    fn register(&mut self, nick: &str) {
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {nick} 0 * :{nick}"));
        self.expect(" 001 ");
        self.expect(" 422 "); // end of the burst: no MOTD
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[test]
fn tls_client_registers_and_chats_with_a_plain_client() {
    for_each_build(|b| {
        let dir = TempDir::new("tls-chat");
        let cert = make_certificate(&dir);
        let node = start(b, &dir, &["--listen-tls", "127.0.0.1:0"]);
        let (plain_addr, tls_addr) = (node.addrs[0], node.addrs[1]);
        let mut secure = tls_connect(tls_addr, &cert, "secure").unwrap();
        secure.register("alice");
        let mut plain = Client::connect_labeled(plain_addr, "plain");
        plain.register_as("bob");
        secure.send("JOIN #c");
        secure.expect("JOIN");
        plain.join("#c");
        secure.send("PRIVMSG #c :hello over tls");
        plain.expect(|m| m.is("PRIVMSG") && m.last() == "hello over tls");
        plain.send("PRIVMSG #c :hello in the clear");
        secure.expect("hello in the clear");
        // WHOIS 671 for the TLS client only.
        plain.send("WHOIS alice");
        plain.expect_numeric("671");
        plain.expect_numeric("318");
        secure.send("WHOIS bob");
        let end = secure.expect(" 318 ");
        assert!(
            !secure.seen.iter().any(|l| l.contains(" 671 ")),
            "671 for a plain client: {end}"
        );
    });
}

#[test]
fn sts_advertises_the_tls_port_on_plain_connections() {
    for_each_build(|b| {
        let dir = TempDir::new("tls-sts");
        let cert = make_certificate(&dir);
        let node = start(b, &dir, &["--listen-tls", "127.0.0.1:0"]);
        let tls_port = node.addrs[1].port();
        let mut plain = node.connect("plain");
        plain.send("CAP LS 302");
        let ls = plain.expect(|m| m.is("CAP"));
        let sts = format!("sts=port={tls_port}");
        assert!(ls.last().split(' ').any(|c| c == sts), "{ls}");
        let mut secure = tls_connect(node.addrs[1], &cert, "secure").unwrap();
        secure.send("CAP LS 302");
        let ls = secure.expect("CAP");
        assert!(ls.contains("sts=duration="), "{ls}");
    });
}

#[test]
fn a_stalled_tls_handshake_is_cut_at_the_registration_deadline() {
    for_each_build(|b| {
        let dir = TempDir::new("tls-stall");
        make_certificate(&dir);
        let node = start(
            b,
            &dir,
            &["--listen-tls", "127.0.0.1:0", "--register-timeout", "1"],
        );
        // Connects and says nothing: the handshake never starts.
        let mut silent = TcpStream::connect(node.addrs[1]).unwrap();
        silent.set_read_timeout(Some(DEADLINE * 2)).unwrap();
        let started = Instant::now();
        let mut sink = [0u8; 64];
        let n = silent.read(&mut sink).unwrap_or(0);
        assert_eq!(n, 0, "the node closes a silent TLS client");
        assert!(started.elapsed() < DEADLINE * 2);
        node.wait_log(
            0,
            "handshake not done within the registration deadline",
            DEADLINE,
        );
        // A client that sent half a handshake (a truncated ClientHello) is cut the same way.
        let mut half = TcpStream::connect(node.addrs[1]).unwrap();
        half.set_read_timeout(Some(DEADLINE * 2)).unwrap();
        half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .unwrap();
        assert_eq!(half.read(&mut sink).unwrap_or(0), 0);
        // The node serves others all along.
        node.register("after");
    });
}

#[test]
fn a_garbage_tls_record_ends_that_connection_only() {
    for_each_build(|b| {
        let dir = TempDir::new("tls-garbage");
        let cert = make_certificate(&dir);
        let node = start(b, &dir, &["--listen-tls", "127.0.0.1:0"]);
        let mut garbage = TcpStream::connect(node.addrs[1]).unwrap();
        garbage.set_read_timeout(Some(DEADLINE)).unwrap();
        garbage
            .write_all(b"NICK plaintext\r\nUSER x 0 * :x\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = garbage.read_to_end(&mut answer);
        // At most a TLS alert record (content type 21), never IRC.
        assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
        node.wait_log(0, "tls handshake failed", DEADLINE);
        let mut ok = tls_connect(node.addrs[1], &cert, "ok").unwrap();
        ok.register("fine");
    });
}

#[test]
fn certificates_reload_on_sighup_without_dropping_anyone() {
    for_each_build(|b| {
        let dir = TempDir::new("tls-reload");
        let old = make_certificate(&dir);
        let node = start(b, &dir, &["--listen-tls", "127.0.0.1:0"]);
        let mut early = tls_connect(node.addrs[1], &old, "early").unwrap();
        early.register("early");
        let new = make_certificate(&dir); // overwrites the files, as an ACME client would
        let mark = node.log_len();
        node.signal("HUP");
        node.wait_log(mark, "TLS certificate reloaded", DEADLINE);
        // New handshakes present the new certificate...
        let mut late = tls_connect(node.addrs[1], &new, "late").unwrap();
        late.register("late");
        assert!(tls_connect(node.addrs[1], &old, "stale").is_err());
        // ...and the early client is still connected and talking.
        early.send("PRIVMSG late :still here");
        late.expect("still here");
        // A broken file keeps the current certificate.
        std::fs::write(dir.join("cert.pem"), "not a certificate").unwrap();
        let mark = node.log_len();
        node.signal("HUP");
        node.wait_log(mark, "not reloaded, keeping the old one", DEADLINE);
        tls_connect(node.addrs[1], &new, "after-bad")
            .unwrap()
            .register("third");
    });
}

#[test]
fn websocket_subprotocols_and_chat_with_a_plain_client() {
    for_each_build(|b| {
        let node = Node::start(
            b,
            &["--listen", "127.0.0.1:0", "--listen-ws", "127.0.0.1:0"],
        );
        let ws_addr = node.addrs[1];
        let (mut text, chosen) = ws_connect(ws_addr, "text.ircv3.net, binary.ircv3.net", "text");
        assert_eq!(chosen.as_deref(), Some("text.ircv3.net"));
        let (mut binary, chosen) = ws_connect(ws_addr, "binary.ircv3.net, text.ircv3.net", "bin");
        assert_eq!(chosen.as_deref(), Some("binary.ircv3.net"));
        let (mut legacy, chosen) = ws_connect(ws_addr, "", "legacy");
        assert_eq!(chosen, None);
        text.register("webt");
        binary.register("webb");
        legacy.register("webl");
        assert!(binary.seen.iter().all(|l| l.starts_with("(binary) ")));
        assert!(text.seen.iter().all(|l| !l.starts_with("(binary) ")));
        let mut plain = node.register("plain");
        for w in [&mut text, &mut binary, &mut legacy] {
            w.send("JOIN #web");
            w.expect("JOIN");
        }
        plain.join("#web");
        text.send("PRIVMSG #web :from a browser");
        plain.expect(|m| m.is("PRIVMSG") && m.last() == "from a browser");
        binary.expect("from a browser");
        plain.send("PRIVMSG #web :from irssi");
        text.expect("from irssi");
        legacy.expect("from irssi");
        // The broker treats them as any client: WHOIS has no 671 over ws://.
        plain.send("WHOIS webt");
        plain.expect_numeric("318");
    });
}

#[test]
fn a_websocket_message_over_the_line_limit() {
    for_each_build(|b| {
        let node = Node::start(
            b,
            &["--listen", "127.0.0.1:0", "--listen-ws", "127.0.0.1:0"],
        );
        let (mut ws, _) = ws_connect(node.addrs[1], "text.ircv3.net", "long");
        ws.register("long");
        // Longer than a line: 417, as over TCP, and the client stays.
        ws.send(&format!("PRIVMSG long :{}", "x".repeat(600)));
        ws.expect(" 417 ");
        ws.send("PING :alive");
        ws.expect("PONG");
        // Longer than any tagged line: the WebSocket layer refuses it and the client is closed.
        ws.send(&format!("PRIVMSG long :{}", "y".repeat(20_000)));
        ws.expect_closed(DEADLINE);
        node.register("others-fine");
    });
}

#[test]
fn the_chat_page_and_origin_checks_over_http() {
    for_each_build(|b| {
        let node = Node::start(
            b,
            &["--listen", "127.0.0.1:0", "--listen-ws", "127.0.0.1:0"],
        );
        let addr = node.addrs[1];
        let get = |path: &str, headers: &str| -> String {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n").unwrap();
            // Until the server closes, or (after a 101) the head has arrived.
            let mut response = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = s.read(&mut chunk) {
                response.extend_from_slice(&chunk[..n]);
                if response.starts_with(b"HTTP/1.1 101") && response.ends_with(b"\r\n\r\n") {
                    break;
                }
            }
            String::from_utf8_lossy(&response).into_owned()
        };
        let page = get("/", "");
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(
            page.contains("text/html") && page.contains("app.js"),
            "{page}"
        );
        assert!(get("/app.js", "").contains("WebSocket"));
        assert!(get("/style.css", "").starts_with("HTTP/1.1 200"));
        assert!(get("/secret", "").starts_with("HTTP/1.1 404"));
        let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let foreign = get(
            "/",
            &format!("{upgrade}Origin: http://elsewhere.example\r\n"),
        );
        assert!(foreign.starts_with("HTTP/1.1 403"), "{foreign}");
        let same = get("/", &format!("{upgrade}Origin: http://{addr}\r\n"));
        assert!(same.starts_with("HTTP/1.1 101"), "{same}");
    });
}

#[test]
fn a_client_refused_on_a_tls_or_websocket_listener_is_told_in_its_own_protocol() {
    for_each_build(|b| {
        let dir = TempDir::new("tls-refused");
        let cert = make_certificate(&dir);
        let node = start(
            b,
            &dir,
            &[
                "--listen-tls",
                "127.0.0.1:0",
                "--listen-ws",
                "127.0.0.1:0",
                "--listen-wss",
                "127.0.0.1:0",
                "--max-clients",
                "1",
            ],
        );
        let (tls_addr, ws_addr, wss_addr) = (node.addrs[1], node.addrs[2], node.addrs[3]);
        let mut first = node.register("first"); // takes the only place
                                                // TLS and wss: a fatal access_denied alert. A plaintext ERROR line would reach the
                                                // client's TLS layer as a corrupt record, and the error would say so instead.
        let mark = node.log_len();
        for (addr, label) in [(tls_addr, "tls"), (wss_addr, "wss")] {
            match tls_connect(addr, &cert, label) {
                Ok(_) => panic!("[{label}] a client past --max-clients got through"),
                Err(e) => assert!(
                    e.to_string().contains("AccessDenied"),
                    "[{label}] expected the access_denied alert, got: {e}"
                ),
            }
        }
        // (Refusals are logged at most once a second, so one line for both.)
        node.wait_log(mark, "Too many connections", DEADLINE);
        // ws: its clients speak HTTP first, so an HTTP 503 carrying the reason.
        let mut http = TcpStream::connect(ws_addr).unwrap();
        http.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(http, "GET / HTTP/1.1\r\nHost: {ws_addr}\r\n\r\n").unwrap();
        let mut response = String::new();
        let _ = http.read_to_string(&mut response);
        assert!(response.starts_with("HTTP/1.1 503 "), "{response}");
        assert!(response.contains("Too many connections"), "{response}");
        // The client that holds the place was not disturbed.
        first.send("PING :still");
        first.expect(|m| m.is("PONG"));
    });
}

#[test]
fn a_stalled_tls_handshake_holds_its_place_in_the_per_address_limit() {
    for_each_build(|b| {
        let dir = TempDir::new("tls-per-address");
        let cert = make_certificate(&dir);
        // The node's default protections: loopback is not exempt here.
        let mut args = vec!["--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0"];
        let tls = tls_args(&dir);
        args.extend(tls.iter().map(String::as_str));
        args.extend(["--max-per-address", "1"]);
        let node = Node::start_with_defaults(b, &args);
        // Connects to the TLS port and never starts the handshake: it holds 127.0.0.1's place.
        let mark = node.log_len();
        let silent = TcpStream::connect(node.addrs[1]).unwrap();
        node.wait_log(mark, "(tls)", DEADLINE); // accepted and admitted
        match tls_connect(node.addrs[1], &cert, "second") {
            Ok(_) => panic!("a second client from the address got through"),
            Err(e) => assert!(e.to_string().contains("AccessDenied"), "{e}"),
        }
        node.wait_log(mark, "Too many connections from your address", DEADLINE);
        // Once the stalled one is gone, the address is served again.
        drop(silent);
        node.wait_log(mark, "tls handshake failed", DEADLINE);
        // Its place is released when its task has ended, just after that line: retry until then.
        let deadline = Instant::now() + DEADLINE;
        loop {
            match tls_connect(node.addrs[1], &cert, "third") {
                Ok(mut third) => {
                    third.register("third");
                    break;
                }
                Err(e) => assert!(Instant::now() < deadline, "never admitted again: {e}"),
            }
        }
    });
}
