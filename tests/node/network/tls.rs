//! TLS to NATS (`--link tls://HOST:PORT --link-ca FILE`, docs/network.md "TLS to NATS").
//!
//! Each test makes its own CA and certificates at run time (rcgen, as tests/node/reach.rs
//! makes its own), and starts its own nats-server with a `tls {}` block: the server then sends
//! `INFO` in plain text and the node runs the TLS handshake on the same socket.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::*;

/// A certificate authority made for one test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// Writes the CA's certificate (what `--link-ca` trusts) as `{stem}.pem` in `dir`.
    fn write(&self, dir: &TempDir, stem: &str) -> PathBuf {
        let path = dir.join(&format!("{stem}.pem"));
        std::fs::write(&path, self.issuer.pem()).unwrap();
        path
    }

    /// Signs a certificate for `names` (DNS names or IP addresses) and `usage`; writes it and
    /// its key as `{stem}.pem` and `{stem}-key.pem` in `dir`.
    fn sign(
        &self,
        dir: &TempDir,
        stem: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> (PathBuf, PathBuf) {
        self.sign_with(dir, stem, names, |params| {
            params.extended_key_usages = vec![usage]
        })
    }

    /// [`Ca::sign`] with `adjust` applied to the parameters (validity dates).
    fn sign_with(
        &self,
        dir: &TempDir,
        stem: &str,
        names: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, stem);
        adjust(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &*self.issuer).unwrap();
        let (cert_path, key_path) = (
            dir.join(&format!("{stem}.pem")),
            dir.join(&format!("{stem}-key.pem")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

/// Writes a nats-server configuration whose `tls {}` block makes every client speak TLS with
/// `cert`; with `verify_with`, clients must show a certificate signed by that CA too.
fn tls_conf(path: &Path, cert: &Path, key: &Path, verify_with: Option<&Path>) {
    let mut text = format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  timeout: 5\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    if let Some(ca) = verify_with {
        text.push_str(&format!(
            "  ca_file: {:?}\n  verify: true\n",
            ca.display().to_string()
        ));
    }
    text.push_str("}\n");
    std::fs::write(path, text).unwrap();
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

/// Waits for a warning from the link containing `needle`, after log line `skip`.
#[track_caller]
fn expect_warning(node: &Node, skip: usize, needle: &str) -> String {
    let line = node.wait_log(skip, needle, LINK_DEADLINE);
    assert!(
        line.contains("WARN") && line.contains("link: cannot connect to NATS"),
        "[{}] a warning from the link: {line}",
        node.build
    );
    eprintln!("[{}] {line}", node.build);
    line
}

/// Two nodes linked over TLS (one with `tls://` through a relay, one with `nats://localhost`
/// and a CA, which makes TLS required and checks the DNS name): chat and nick uniqueness
/// across them; a connection cut and restored is made again with a new TLS handshake.
#[test]
fn nodes_linked_over_tls_chat_as_one_server() {
    if !Nats::available("nodes_linked_over_tls_chat_as_one_server") {
        return;
    }
    for_each_build(|build| {
        let dir = TempDir::new("nats-tls");
        let ca = Ca::new("chatnode test CA");
        let ca_pem = arg(&ca.write(&dir, "ca"));
        let (cert, key) = ca.sign(
            &dir,
            "server",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let conf = dir.join("nats.conf");
        tls_conf(&conf, &cert, &key, None);
        let nats = Nats::start_with(Some(conf));
        let relay = Relay::start(nats.addr());
        let a = linked_with(
            build,
            &format!("tls://{}", relay.addr),
            "a.test",
            &["--link-ca", &ca_pem],
        );
        let b = linked_with(
            build,
            &format!("nats://localhost:{}", nats.port),
            "b.test",
            &["--link-ca", &ca_pem],
        );
        for node in [&a, &b] {
            let line = node.wait_log(0, "link: connected to NATS", LINK_DEADLINE);
            assert!(line.contains(", TLS,"), "[{}] {line}", build.name);
        }

        let mut alice = a.register("alice");
        let mut bob = b.register("bob");
        alice.join("#tls");
        bob.join("#tls");
        alice.expect(|m| is_join_of(m, "bob", "#tls"));
        alice.send("PRIVMSG #tls :over TLS");
        bob.expect(|m| is_privmsg(m, "alice", "#tls", "over TLS"));
        bob.send("PRIVMSG alice :and back");
        alice.expect(|m| is_privmsg(m, "bob", "alice", "and back"));
        // Nicks stay unique across the nodes (the JetStream KV bucket, inside TLS).
        let mut imposter = a.connect("imposter");
        imposter.send("NICK bob");
        imposter.send("USER i 0 * :i");
        imposter.expect_numeric("433");

        // Cut a's connection: it reconnects with a new TCP connection and a new handshake.
        let (log_a, log_b) = (a.log_len(), b.log_len());
        relay.cut();
        a.wait_log(log_a, "link: lost NATS", LINK_DEADLINE);
        alice.expect_within(SPLIT_DEADLINE, |m| m.is_from("QUIT", "bob"));
        bob.expect_within(SPLIT_DEADLINE, |m| m.is_from("QUIT", "alice"));
        relay.restore();
        let line = a.wait_log(log_a, "link: connected to NATS", LINK_DEADLINE);
        assert!(line.contains(", TLS,"), "[{}] {line}", build.name);
        wait_burst(&a, log_a, "b.test");
        wait_burst(&b, log_b, "a.test");
        alice.expect(|m| is_join_of(m, "bob", "#tls"));
        bob.expect(|m| is_join_of(m, "alice", "#tls"));
        bob.send("PRIVMSG #tls :welcome back");
        alice.expect(|m| is_privmsg(m, "bob", "#tls", "welcome back"));
        alice.send("PRIVMSG #tls :thanks");
        bob.expect(|m| is_privmsg(m, "alice", "#tls", "thanks"));
    });
}

/// A `tls://` link that cannot trust its server: a server without TLS, then one whose
/// certificate comes from another CA, then one whose certificate names another host, then an
/// expired one. Each is
/// a warning that says why; the link keeps retrying with its backoff, and the node's own users
/// chat all along. When the server gets a right certificate, the link connects by itself.
#[test]
fn a_link_that_cannot_verify_nats_warns_retries_and_serves_local_users() {
    if !Nats::available("a_link_that_cannot_verify_nats_warns_retries_and_serves_local_users") {
        return;
    }
    for_each_build(|build| {
        let dir = TempDir::new("nats-tls");
        let good = Ca::new("the CA the node trusts");
        let other = Ca::new("another CA");
        let ca_pem = arg(&good.write(&dir, "ca"));
        let server = ExtendedKeyUsagePurpose::ServerAuth;
        let wrong_ca = other.sign(&dir, "wrong-ca", &["127.0.0.1"], server.clone());
        let misnamed = good.sign(&dir, "misnamed", &["nats.invalid"], server.clone());
        let expired = good.sign_with(&dir, "expired", &["127.0.0.1"], |params| {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        });
        let right = good.sign(&dir, "right", &["127.0.0.1"], server);
        let conf = dir.join("nats.conf");
        std::fs::write(&conf, "# no tls block: plain text only\n").unwrap();
        let mut nats = Nats::start_with(Some(conf.clone()));
        let url = format!("tls://127.0.0.1:{}", nats.port);
        let node = Node::start(build, &["--link", &url, "--link-ca", &ca_pem]);

        // A server without TLS: refused before anything is sent in plain text.
        expect_warning(&node, 0, "does not offer it");
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        alice.join("#local");
        bob.join("#local");
        let mut chat = |text: &str| {
            alice.send(&format!("PRIVMSG #local :{text}"));
            bob.expect(|m| is_privmsg(m, "alice", "#local", text));
        };
        chat("no NATS, still chatting");

        // The wrong CA.
        let skip = node.log_len();
        nats.stop();
        tls_conf(&conf, &wrong_ca.0, &wrong_ca.1, None);
        nats.launch();
        let line = expect_warning(&node, skip, "UnknownIssuer");
        assert!(line.contains("TLS handshake"), "[{}] {line}", build.name);
        chat("a wrong CA, still chatting");

        // The right CA, the wrong name.
        let skip = node.log_len();
        nats.stop();
        tls_conf(&conf, &misnamed.0, &misnamed.1, None);
        nats.launch();
        expect_warning(&node, skip, "not valid for name");
        chat("a wrong name, still chatting");

        // The right CA and name, out of date.
        let skip = node.log_len();
        nats.stop();
        tls_conf(&conf, &expired.0, &expired.1, None);
        nats.launch();
        expect_warning(&node, skip, "certificate expired");
        chat("an expired certificate, still chatting");

        // A right certificate: the link connects by itself.
        let skip = node.log_len();
        nats.stop();
        tls_conf(&conf, &right.0, &right.1, None);
        nats.launch();
        let line = node.wait_log(skip, "link: connected to NATS", LINK_DEADLINE);
        assert!(line.contains(", TLS,"), "[{}] {line}", build.name);
        chat("linked at last");
    });
}

/// Mutual TLS: a server whose `tls {}` block says `verify: true` takes the node that shows a
/// certificate from its CA (`--link-cert`, `--link-key`) and refuses one that shows none.
#[test]
fn mutual_tls_to_nats() {
    if !Nats::available("mutual_tls_to_nats") {
        return;
    }
    for_each_build(|build| {
        let dir = TempDir::new("nats-mtls");
        let ca = Ca::new("chatnode test CA");
        let ca_path = ca.write(&dir, "ca");
        let ca_pem = arg(&ca_path);
        let (cert, key) = ca.sign(
            &dir,
            "server",
            &["127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = ca.sign(
            &dir,
            "node",
            &["a.test"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let conf = dir.join("nats.conf");
        tls_conf(&conf, &cert, &key, Some(&ca_path));
        let nats = Nats::start_with(Some(conf));
        let url = format!("tls://127.0.0.1:{}", nats.port);
        let (client_cert, client_key) = (arg(&client_cert), arg(&client_key));
        let a = linked_with(
            build,
            &url,
            "a.test",
            &[
                "--link-ca",
                &ca_pem,
                "--link-cert",
                &client_cert,
                "--link-key",
                &client_key,
            ],
        );
        let mut alice = a.register("alice");
        alice.send("OPER admin pw");
        alice.expect_numeric("381");
        alice.expect_command("MODE");
        let health = alice.stats("l");
        assert!(health[0].contains(" over TLS "), "{health:?}");

        let anonymous = Node::start(build, &["--link", &url, "--link-ca", &ca_pem]);
        expect_warning(&anonymous, 0, "--link-cert");
        assert!(
            !anonymous
                .logs()
                .iter()
                .any(|l| l.contains("link: connected to NATS")),
            "[{}] a node without a client certificate got in",
            build.name
        );
    });
}
