//! End-to-end tests of the chatnode IRC server: every test starts its own
//! node(s) of every available build and talks to them over loopback TCP.
//!
//! `cargo test --all-features` (or `cargo nextest run --all-features`) also
//! runs everything against `chatnode-tokio`.

mod common;

// The page's scroll-back check needs history.
#[cfg(all(feature = "websocket", feature = "history"))]
mod browser;
mod channels;
mod fairness;
mod flags;
mod history;
mod interop;
mod ircv3;
mod lifecycle;
mod messaging;
mod moderation;
#[cfg(feature = "link")]
mod network;
mod operators;
mod protections;
mod queries;
#[cfg(all(feature = "tls", feature = "websocket"))]
mod reach;
mod registration;
mod rehash;
mod robustness;
mod sendq;
mod startup;
mod timeouts;
