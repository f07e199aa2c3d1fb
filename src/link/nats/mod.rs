//! The NATS client protocol, as much of it as the link needs: `INFO`, `CONNECT` (token or
//! user and password), `PUB`, `HPUB`, `SUB`, `UNSUB`, `MSG`, `HMSG`, `PING`/`PONG`, `+OK`,
//! `-ERR`; request/reply through an inbox subscription; and the JetStream API calls behind the
//! nick bucket (stream create, publish with an expected subject sequence, direct get, message
//! delete); TLS started after the server's plain-text `INFO`, as nats-server does it
//! ([`tls`], feature `tls`).
//!
//! Why our own: the Rust NATS client (async-nats) is built on Tokio; in the smol build it
//! would bring a second runtime with its own reactor thread. The protocol is small text; this
//! module is about 600 lines with its tests and adds no dependency (see docs/network.md for
//! what it adds to the binary).

pub mod client;
pub mod json;
pub mod proto;
pub mod tls;
