//! Re-reading the configuration on a running node (REHASH, SIGHUP): what the server needs to
//! know to do it, and how a signal asks for it.
//!
//! The server does not know where the configuration comes from: the binary gives it a
//! [`ReloadFn`] (built from the command line and the config file by [`crate::config`]) in
//! [`ServerConfig::reload`](super::ServerConfig::reload). The broker runs it on the blocking
//! pool when an operator sends REHASH, or when [`RehashTrigger::request`] is called (the
//! binaries call it on SIGHUP). The server applies its own live parts (`max_clients`, the
//! slow-poll threshold) and hands the broker the rest.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::ServerConfig;

/// A configuration read again, with its MOTD and a line per changed setting.
#[derive(Clone, Debug)]
pub struct Reloaded {
    /// The new configuration; the running node takes the parts that can change live.
    pub config: ServerConfig,
    /// The MOTD file's lines, read again (`None`: no MOTD).
    pub motd: Option<Vec<String>>,
    /// One line per changed setting, saying whether it was applied or needs a restart.
    pub changes: Vec<String>,
    /// What was read, for 382 RPL_REHASHING: the config file's path.
    pub source: String,
}

/// Reads the configuration again. Blocking (it reads files): the node calls it on the blocking
/// pool. `Err` says why the new configuration is refused; the running one then stays.
pub type ReloadFn = dyn Fn() -> Result<Reloaded, String> + Send + Sync;

/// How a running node re-reads its configuration: the function, and the requests (SIGHUP).
#[derive(Clone)]
pub struct Reload {
    /// Reads the configuration again.
    pub reload: Arc<ReloadFn>,
    /// Requests to re-read it that come from outside IRC (SIGHUP).
    pub requests: RehashRequests,
}

impl fmt::Debug for Reload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reload")
    }
}

/// Asks the running node to re-read its configuration, as REHASH does.
///
/// ```
/// use chatnode::server::rehash_channel;
/// let (trigger, requests) = rehash_channel();
/// trigger.request();
/// trigger.request(); // coalesced with the first: one re-read is enough
/// assert_eq!(requests.pending(), 1);
/// ```
#[derive(Clone)]
pub struct RehashTrigger {
    tx: async_channel::Sender<()>,
}

/// Where the requests of a [`RehashTrigger`] arrive.
#[derive(Clone)]
pub struct RehashRequests {
    rx: async_channel::Receiver<()>,
}

/// A linked trigger and receiver.
pub fn rehash_channel() -> (RehashTrigger, RehashRequests) {
    // One slot: requests made while one waits add nothing (it will read the newest file).
    let (tx, rx) = async_channel::bounded(1);
    (RehashTrigger { tx }, RehashRequests { rx })
}

impl RehashTrigger {
    /// Asks for a re-read; does nothing if one is already asked for and not yet started.
    /// Never blocks (safe in a signal watcher).
    pub fn request(&self) {
        let _ = self.tx.try_send(());
    }
}

impl RehashRequests {
    /// Waits for the next request; `None` once every trigger is gone.
    pub async fn next(&self) -> Option<()> {
        self.rx.recv().await.ok()
    }

    /// Requests waiting (0 or 1).
    pub fn pending(&self) -> usize {
        self.rx.len()
    }
}

/// Reads a MOTD file into lines, with an error that names the setting and the file.
/// Blocking: call it on the blocking pool, or at start.
pub fn read_motd(path: &Path) -> Result<Vec<String>, String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_string).collect())
        .map_err(|e| format!("motd (--motd): cannot read {}: {e}", path.display()))
}
