//! Linking nodes into one chat network through NATS (`--link nats://HOST:PORT`, feature
//! `link`). The design, and what it costs, is in docs/network.md.
//!
//! The link is an adapter at the edge, like storage: one task ([`adapter`]) between the broker
//! and a NATS server. The broker hands it [`LinkOut`](crate::broker::link::LinkOut) records on
//! a bounded queue and never waits on it; the adapter publishes them, and delivers what other
//! nodes publish to the broker as [`Event::Link`](crate::broker::Event::Link) events through a
//! RecvQ of its own, so the broker serves the network in turns like any connection and TCP
//! pushes back on the NATS connection when the broker is busy.
//!
//! - [`nats`]: the NATS client protocol, written here (sans-IO parser and writers, a handshake
//!   and a reader on futures-io, TLS through the listener's rustls stack), so both builds use
//!   the same code and no Tokio enters the smol build.
//! - [`wire`]: what nodes say to each other (IRC-syntax lines).
//! - [`adapter`]: the task: connects and reconnects, subscribes, heartbeats, detects dead
//!   nodes, claims nicks in a JetStream KV bucket.

pub mod adapter;
pub mod nats;
pub mod wire;

pub use adapter::{start, LinkConfig};
