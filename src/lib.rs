//! chatnode: a small IRC chat node for small Linux boards and laptops.
//!
//! The crate is layered; each layer depends only on the ones above it in this list:
//!
//! - [`proto`]: sans-IO IRC messages (parse, serialize, validate, numerics). No async, no I/O.
//! - [`broker`]: the one task that owns users, channels and modes. It hears from connections over
//!   async-channel and answers through each client's bounded [`broker::SendQueue`]. It uses only
//!   async-channel and futures-lite, so any runtime can run it unchanged.
//! - [`rt`]: the seam between runtimes ([`rt::Runtime`]) and our own executor on async-executor
//!   ([`rt::smol`]); the Tokio build ([`rt::tokio`](crate::rt)) lives behind the `tokio` feature.
//! - [`server`]: listeners, per-connection reader and writer, timeouts, limits, graceful shutdown,
//!   written once against [`rt::Runtime`].
//! - [`config`], [`cli`], [`logging`]: flags and the config file, what both binaries in
//!   `src/bin/` do around the runtime, and the log format.
//!
//! - [`store`](crate::store) (feature `history`, on by default): message history in SQLite, an
//!   adapter at the edge reached through [`rt::Runtime::unblock`], never from the broker's loop.
//! - [`link`](crate::link) (feature `link`, on by default): several nodes as one network through
//!   NATS, an adapter at the edge that the broker feeds through a bounded queue.
//!
//! Small runtime-free helpers sit beside them: [`budget`] (the cooperative budget the broker
//! and connections share), [`cidr`] (address ranges and per-address keys), [`rate`] (the token bucket
//! flood control and the connection throttle share) and [`auth`] (operator password hashes), [`decimal`] (decimals in settings and messages
//! without std's float parser and printer).

#![warn(missing_docs)]

pub mod auth;
pub mod broker;
pub mod budget;
pub mod cidr;
pub mod cli;
pub mod config;
pub mod decimal;
#[cfg(feature = "link")]
pub mod link;
pub mod logging;
pub mod proto;
pub mod rate;
pub mod rt;
pub mod server;
#[cfg(feature = "history")]
pub mod store;
