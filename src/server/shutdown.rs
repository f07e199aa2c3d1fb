//! Shutdown as a protocol: one signal that every task can watch.
//!
//! [`shutdown_channel`] returns a [`Shutdown`] trigger and a [`ShutdownSignal`] that can be cloned
//! into any task. Firing is closing a channel, so it reaches every watcher at once, is never
//! lost, and can be observed after the fact ([`ShutdownSignal::is_fired`]).
//!
//! What happens once it fires is [`super::run`]'s business: stop accepting, tell the broker,
//! wait (bounded by the grace period) for every connection to flush and close, cancel the rest.

/// Fires the shutdown. Dropping every `Shutdown` handle fires it too, so a forgotten trigger
/// cannot leave a server running with no way to stop it.
#[derive(Clone)]
pub struct Shutdown {
    tx: async_channel::Sender<()>,
}

/// Watches for the shutdown.
///
/// ```
/// use chatnode::server::shutdown_channel;
/// let (shutdown, signal) = shutdown_channel();
/// assert!(!signal.is_fired());
/// shutdown.fire();
/// futures_lite::future::block_on(signal.wait()); // returns at once
/// assert!(signal.is_fired());
/// ```
#[derive(Clone)]
pub struct ShutdownSignal {
    rx: async_channel::Receiver<()>,
}

/// A linked trigger and signal.
pub fn shutdown_channel() -> (Shutdown, ShutdownSignal) {
    // Nothing is ever sent: closing the channel is the message. Capacity 1 is the smallest.
    let (tx, rx) = async_channel::bounded(1);
    (Shutdown { tx }, ShutdownSignal { rx })
}

impl Shutdown {
    /// Fires the shutdown; later calls do nothing.
    pub fn fire(&self) {
        self.tx.close();
    }
}

impl ShutdownSignal {
    /// Completes once the shutdown has fired (at once if it already has). Cancel-safe.
    pub async fn wait(&self) {
        let _ = self.rx.recv().await;
    }

    /// Whether the shutdown has fired.
    pub fn is_fired(&self) -> bool {
        self.rx.is_closed()
    }
}
