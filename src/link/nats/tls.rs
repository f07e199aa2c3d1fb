//! TLS to NATS: the client side, with the rustls stack the node's own TLS listener uses
//! (futures-rustls, ring), so it adds no dependency and works on any futures-io stream: the
//! smol and the Tokio build share it.
//!
//! **How NATS starts TLS.** A nats-server whose configuration has a `tls {}` block (2.9, as in
//! Debian) sends its `INFO` in plain text with `"tls_required":true`; the client then runs the
//! TLS handshake on the same socket and sends `CONNECT` inside it. So the handshake runs after
//! the first line, not at connect time (see [`super::client::open`]).
//!
//! **What is verified.** The server's certificate chain must lead to a certificate of the CA
//! file (`--link-ca`): nothing else is trusted (no system roots are loaded; give the system's
//! bundle, e.g. `/etc/ssl/certs/ca-certificates.crt`, to trust those). The certificate must
//! name the host of `--link` (a DNS name, or an IP address in its subjectAltName), and be
//! valid now. With `--link-cert` and `--link-key` the link also shows a client certificate,
//! for a server whose `tls {}` block says `verify: true`.
//!
//! Without the `tls` feature, [`TlsClient::load`] refuses, so a `tls://` link, or a
//! `--link-ca`, is refused at start with a clear error.

use std::io;
use std::path::Path;

use crate::server::transport::{BoxReader, BoxWriter};

/// The TLS settings of the link: the CA it trusts, and the client certificate it shows, if any.
/// Cheap to clone (shared).
///
/// ```no_run
/// use chatnode::link::nats::tls::TlsClient;
/// let tls = TlsClient::load("/etc/chatnode/nats-ca.pem".as_ref(), None)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsClient {
    #[cfg(feature = "tls")]
    config: std::sync::Arc<futures_rustls::rustls::ClientConfig>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

/// What a build without the `tls` feature says when asked for TLS to NATS.
pub const NO_TLS: &str =
    "this build has no TLS (built without the `tls` feature): tls:// links and --link-ca need it";

impl TlsClient {
    /// Reads the CA certificates to trust (PEM, one or more) and, for mutual TLS, a client
    /// certificate chain and its key (PEM). Blocking file reads: at start, on the blocking pool.
    /// Errors name the file at fault.
    pub fn load(ca: &Path, identity: Option<(&Path, &Path)>) -> io::Result<TlsClient> {
        #[cfg(feature = "tls")]
        {
            imp::load(ca, identity)
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (ca, identity);
            Err(io::Error::other(NO_TLS))
        }
    }

    /// Runs the client side of a TLS handshake over `reader` and `writer` (a NATS connection
    /// whose `INFO` has been read), checking that the server's certificate names `host`.
    /// Returns the halves of the encrypted stream.
    pub async fn connect<Rd, Wr>(
        &self,
        host: &str,
        reader: Rd,
        writer: Wr,
    ) -> io::Result<(BoxReader, BoxWriter)>
    where
        Rd: futures_lite::io::AsyncRead + Unpin + Send + 'static,
        Wr: futures_lite::io::AsyncWrite + Unpin + Send + 'static,
    {
        #[cfg(feature = "tls")]
        {
            imp::connect(&self.config, host, reader, writer).await
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (host, reader, writer);
            Err(io::Error::other(NO_TLS))
        }
    }
}

/// Whether `host` (from `--link`) is a name a certificate can be checked against: a DNS name
/// or an IP address. Without the `tls` feature every host passes (TLS is refused elsewhere).
///
/// ```
/// use chatnode::link::nats::tls::check_server_name;
/// assert!(check_server_name("nats.example.org").is_ok());
/// assert!(check_server_name("127.0.0.1").is_ok());
/// ```
pub fn check_server_name(host: &str) -> Result<(), String> {
    #[cfg(feature = "tls")]
    {
        imp::server_name(host).map(drop).map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = host;
        Ok(())
    }
}

#[cfg(feature = "tls")]
mod imp {
    use std::io;
    use std::path::Path;
    use std::sync::Arc;

    use futures_lite::io::{AsyncRead, AsyncWrite};
    use futures_rustls::rustls::pki_types::ServerName;
    use futures_rustls::rustls::{ClientConfig, RootCertStore};

    use super::{BoxReader, BoxWriter, TlsClient};
    use crate::server::transport::tls::{crypto_provider, read_certificates, read_private_key};
    use crate::server::transport::Joined;

    pub(super) fn load(ca: &Path, identity: Option<(&Path, &Path)>) -> io::Result<TlsClient> {
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(read_certificates(ca)?);
        if added == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: none of its {ignored} certificate(s) can be a trust anchor",
                    ca.display()
                ),
            ));
        }
        let invalid = |e: &dyn std::fmt::Display| {
            io::Error::new(io::ErrorKind::InvalidData, format!("--link-ca: {e}"))
        };
        let builder = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(&e))?
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(read_certificates(cert)?, read_private_key(key)?)
                .map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: does not fit the certificate: {e}", key.display()),
                    )
                })?,
        };
        Ok(TlsClient {
            config: Arc::new(config),
        })
    }

    pub(super) fn server_name(host: &str) -> io::Result<ServerName<'static>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(bare.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{host} is not a name a certificate can carry: {e}"),
            )
        })
    }

    pub(super) async fn connect<Rd, Wr>(
        config: &Arc<ClientConfig>,
        host: &str,
        reader: Rd,
        writer: Wr,
    ) -> io::Result<(BoxReader, BoxWriter)>
    where
        Rd: AsyncRead + Unpin + Send + 'static,
        Wr: AsyncWrite + Unpin + Send + 'static,
    {
        let name = server_name(host)?;
        let stream = futures_rustls::TlsConnector::from(config.clone())
            .connect(name, Joined { reader, writer })
            .await
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("TLS handshake with the NATS server failed: {e}"),
                )
            })?;
        let (r, w) = futures_lite::io::split(stream);
        Ok((Box::new(r), Box::new(w)))
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    /// A scratch directory for one test (removed at the end).
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("chatnode-natstls-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn write(&self, file: &str, text: &str) -> std::path::PathBuf {
            let path = self.0.join(file);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Bad files stop the start with an error naming the file; a good CA, and a certificate
    /// with its own key, load.
    #[test]
    fn files_are_checked_at_load() {
        let dir = Scratch::new("load");
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let ca = dir.write("ca.pem", &made.cert.pem());
        let key = dir.write("key.pem", &made.signing_key.serialize_pem());
        let other_key = dir.write("other-key.pem", &other.signing_key.serialize_pem());
        let garbage = dir.write("garbage.pem", "not a certificate\n");
        let missing = dir.0.join("missing.pem");

        assert!(TlsClient::load(&ca, None).is_ok());
        assert!(TlsClient::load(&ca, Some((&ca, &key))).is_ok());
        for (path, why) in [(&garbage, "no certificate"), (&missing, "missing.pem")] {
            let err = TlsClient::load(path, None).unwrap_err().to_string();
            assert!(err.contains(&*path.display().to_string()), "{err}");
            assert!(err.contains(why), "{err}");
        }
        let err = TlsClient::load(&ca, Some((&ca, &other_key)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn server_names() {
        assert!(check_server_name("nats.school.lan").is_ok());
        assert!(check_server_name("[::1]").is_ok());
        assert!(check_server_name("no spaces allowed").is_err());
    }
}
