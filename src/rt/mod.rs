//! The seam between runtimes, and our own executor.
//!
//! The connection logic in [`crate::server`] is written once, against [`Runtime`]: spawn a named
//! task whose handle cancels it when dropped, sleep, run a closure on the blocking pool, accept
//! TCP connections. [`smol::SmolRuntime`] implements it on async-task with our own scheduler
//! ([`sched`]: a queue per thread, stealing) and our own reactor
//! ([`reactor`]: sockets registered once, edge-triggered, in the `polling` crate's epoll; timers
//! in the same wait; no reactor thread), with little glue for tasks, because smol's `Task`
//! already cancels on drop and `blocking::unblock` already exists. The Tokio build (feature `tokio`) has to do more work for the same contract; the
//! places where the two differ are the project's three contrasts, and are commented as such.
//!
//! Invariant: every task is owned. A [`Runtime::Task`] handle cancels its task when dropped, so a
//! task lives only as long as whoever holds its handle; nothing is detached and forgotten.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::io::{AsyncRead, AsyncWrite};

pub mod cores;
pub mod net;
pub mod reactor;
pub mod sched;
pub mod signal;
pub mod smol;
pub mod stats;
pub mod task;
pub mod timer;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use task::TaskName;

/// An accepted TCP connection, split into halves the reader and writer can own separately.
pub struct Accepted<R, W> {
    /// The read half.
    pub reader: R,
    /// The write half.
    pub writer: W,
    /// The peer's address.
    pub peer: SocketAddr,
}

/// What the server needs from a runtime.
///
/// Implementations: [`smol::SmolRuntime`] (default) and the Tokio build behind the `tokio` feature.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A bound TCP listener.
    type Listener: Send + Sync + 'static;
    /// The read half of a connection.
    type Reader: AsyncRead + Unpin + Send + 'static;
    /// The write half of a connection.
    type Writer: AsyncWrite + Unpin + Send + 'static;
    /// Handle to a spawned task. Awaiting it gives `Some(output)`, or `None` if the task panicked.
    /// **Dropping it cancels the task** at its next suspension point, on every runtime.
    type Task<T: Send + 'static>: Future<Output = Option<T>> + Send + 'static;

    /// Spawns `fut` as the task `name` (see [`task::instrument`]).
    fn spawn<T, F>(&self, name: TaskName, fut: F) -> Self::Task<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static;

    /// Completes after `dur`.
    fn sleep(&self, dur: Duration) -> impl Future<Output = ()> + Send + 'static;

    /// Runs blocking or CPU-heavy `f` on the blocking pool, off the executor's threads.
    fn unblock<T, F>(&self, f: F) -> impl Future<Output = T> + Send + 'static
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;

    /// Runs `job` on the blocking pool and does not wait for it. Only for short, bounded jobs
    /// whose result travels some other way: the broker's OPER check, which sends its answer to
    /// the broker's inbox. It is the one piece of work the node does not own through a handle,
    /// because the broker must never wait on anything but its inbox.
    fn offload(&self, job: Box<dyn FnOnce() + Send>);

    /// One line about the runtime, for `STATS e`.
    fn describe(&self) -> String;

    /// Adopts a bound std listener (the caller binds, so tests can use port 0).
    fn listener(&self, listener: std::net::TcpListener) -> io::Result<Self::Listener>;

    /// Opens a TCP connection to `addr` (`HOST:PORT`), for the adapters that dial out (the
    /// NATS link). Resolving the name may block, so it never runs on an executor thread.
    fn connect(
        &self,
        addr: String,
    ) -> impl Future<Output = io::Result<(Self::Reader, Self::Writer)>> + Send + 'static;

    /// Accepts one connection. Cancel-safe: dropping the future loses no connection.
    fn accept<'a>(
        &'a self,
        listener: &'a Self::Listener,
    ) -> impl Future<Output = io::Result<Accepted<Self::Reader, Self::Writer>>> + Send + 'a;
}

/// Locks `m`; a poisoned lock (a panic elsewhere while holding it) is still usable in the
/// runtime, because every critical section of ours leaves its data consistent. One helper for
/// the reactor, the scheduler and the statistics.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
