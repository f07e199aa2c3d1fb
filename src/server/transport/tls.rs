//! IRC over TLS: rustls through futures-rustls, on any futures-io stream, so the smol and the
//! Tokio build share this file.
//!
//! **Crypto provider: ring.** rustls needs one. aws-lc-rs (rustls' default) builds AWS-LC, a
//! large C library, with cmake and a C toolchain for the target, and adds several hundred KB to
//! the binary; ring needs only a C compiler for its small C and assembly parts (clang serves
//! every target, which is how scripts/cross-build.sh builds the static aarch64 musl binary) and
//! is the smaller of the two. Both have optimized aarch64 code (AES, GCM, SHA, X25519, P-256).
//!
//! **Reload without dropping anyone.** The acceptor holds the current `rustls::ServerConfig`
//! behind a lock; [`TlsAcceptor::reload`] builds a new one from the files and swaps it in. A
//! handshake takes the config current when it starts; sessions already established keep theirs,
//! so a renewed certificate never needs a restart and no client is disconnected.
//!
//! **Handshakes are CPU work** (one ECDSA or RSA signature, one key exchange). They run in the
//! connection's task, on an executor thread: measured (docs/tls.md) with an ECDSA P-256 key at
//! 0.6 ms of CPU natively and 5 to 6 ms for the aarch64 board build under qemu (an upper bound
//! for a real board), well under the slow-poll threshold, so they do not need the blocking pool,
//! which would add a thread hand-off each way without removing the work.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::{self, ServerConfig};

/// A TLS acceptor whose certificate can be replaced while it runs. Clones share the
/// certificate: reloading one reloads them all.
///
/// ```no_run
/// use chatnode::server::transport::tls::TlsAcceptor;
/// let acceptor = TlsAcceptor::load("/etc/chatnode/cert.pem", "/etc/chatnode/key.pem")?;
/// // ... later, after the ACME client renewed the files:
/// acceptor.reload()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    current: Arc<RwLock<Arc<ServerConfig>>>,
    cert_path: Arc<PathBuf>,
    key_path: Arc<PathBuf>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish()
    }
}

impl TlsAcceptor {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1). Blocking
    /// file reads: at start-up, or on the blocking pool.
    pub fn load(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<TlsAcceptor> {
        let (cert, key) = (cert.as_ref().to_path_buf(), key.as_ref().to_path_buf());
        let config = server_config(&cert, &key)?;
        Ok(TlsAcceptor {
            current: Arc::new(RwLock::new(config)),
            cert_path: Arc::new(cert),
            key_path: Arc::new(key),
        })
    }

    /// Re-reads the files. On success new handshakes use the new certificate; on failure the
    /// old one stays in use. Either way open connections are untouched. Returns a line for the
    /// log. Blocking file reads: run it on the blocking pool.
    pub fn reload(&self) -> io::Result<String> {
        let config = server_config(&self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(format!(
            "TLS certificate reloaded from {}",
            self.cert_path.display()
        ))
    }

    /// Whether `other` is a clone of this acceptor (they share the certificate).
    pub fn same_as(&self, other: &TlsAcceptor) -> bool {
        Arc::ptr_eq(&self.current, &other.current)
    }

    /// Runs the server side of a handshake over `stream`.
    pub async fn accept<S>(&self, stream: S) -> io::Result<futures_rustls::server::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let config = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        futures_rustls::TlsAcceptor::from(config)
            .accept(stream)
            .await
    }
}

/// A rustls server config from PEM files, with an error that names the file at fault.
fn server_config(cert_path: &Path, key_path: &Path) -> io::Result<Arc<ServerConfig>> {
    let certs = read_certificates(cert_path)?;
    let key = read_private_key(key_path)?;
    let config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| named(cert_path, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| named(key_path, &format!("does not fit the certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// The crypto provider of every TLS config the node makes (ring: see the module's docs).
pub(crate) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file (a chain, or a CA bundle); an empty file is an error. The
/// error names the file. Blocking file read.
pub(crate) fn read_certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| named(path, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| named(path, &e))?;
    if certs.is_empty() {
        return Err(named(path, &"no certificate in the file (PEM expected)"));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1). The error names the file.
/// Blocking file read.
pub(crate) fn read_private_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| named(path, &e))
}

/// An error about a file, naming it.
fn named(path: &Path, e: &dyn std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {e}", path.display()),
    )
}
