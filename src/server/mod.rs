//! The server: listeners, one task per connection, limits, and shutdown.
//!
//! [`run`] is the whole server, written once against [`Runtime`]; the binaries and the tests call
//! it with listeners they bound themselves and a [`ShutdownSignal`] they control. It owns every
//! task it starts:
//!
//! - the broker task;
//! - one accept task per listener, which hands connections to `run`'s own loop;
//! - one task per connection ([`Connection`]), kept in a map by id. A connection's task tells
//!   `run` when it finishes, and `run` forgets its handle.
//!
//! The connection limit is that map's size: a client past `max_clients` gets an `ERROR` line and
//! is closed at once, as IRC servers do, rather than waiting in a queue. The per-address limits
//! ([`admission`]) are checked at the same place, the same way. A client refused on a TLS or
//! WebSocket listener is told in its own protocol ([`transport::refusal`]): a TLS alert, an
//! HTTP 503.
//!
//! Shutdown protocol, once the signal fires:
//! 1. the accept tasks are dropped, which cancels them and closes the listeners;
//! 2. the broker is told ([`Event::Shutdown`]); it queues `ERROR :Server shutting down` for every
//!    client and drops every queue;
//! 3. each writer flushes its queue and closes its socket, and its task ends;
//! 4. `run` waits for every connection task, up to the grace period, then drops (cancels) the
//!    rest, waits for the broker, and returns.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_lite::future::{self, or};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};

use crate::broker::{self, Broker, BrokerConfig, ClientId, Event};
use crate::rt::{Accepted, Runtime};

pub mod admission;
mod connection;
mod history;
mod reload;
mod shutdown;
pub mod transport;

pub use admission::AddressLimits;
pub use connection::{Connection, Timeouts, WRITE_BATCH_BYTES};
pub use reload::{
    read_motd, rehash_channel, RehashRequests, RehashTrigger, Reload, ReloadFn, Reloaded,
};
pub use shutdown::{shutdown_channel, Shutdown, ShutdownSignal};
pub use transport::{Listener, ListenerKind, Transport};

/// How the server behaves; [`crate::config::Config`] builds it from flags.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// What the broker needs (names, password, limits).
    pub broker: BrokerConfig,
    /// Read the MOTD from this file at start (on the blocking pool).
    pub motd_path: Option<PathBuf>,
    /// Connections beyond this are refused with an ERROR line.
    pub max_clients: usize,
    /// Per-address limits, and the ranges exempt from them and from flood control.
    pub address_limits: AddressLimits,
    /// Host cloaking (`--cloak`): others see a keyed hash of each client's address.
    pub cloak: bool,
    /// The cloaking key (`cloak_key`); without one a random key is made at start.
    pub cloak_key: Option<broker::CloakKey>,
    /// Connection time limits.
    pub timeouts: Timeouts,
    /// Bytes one client may have queued before it is dropped (SendQ).
    pub sendq_bytes: usize,
    /// Events one client's RecvQ holds before the node stops reading that client.
    pub recvq_events: usize,
    /// Bytes of input a client held back by flood control may have waiting before it is cut
    /// with `Excess Flood` (`--recvq`).
    pub recvq_bytes: usize,
    /// How long shutdown waits for connections to flush before cancelling them.
    pub shutdown_grace: Duration,
    /// A poll longer than this is logged as slow, naming its task (see [`crate::rt::stats`]).
    pub slow_poll: Duration,
    /// Per-task poll figures and the watchdog (`--task-stats`); off only to measure their cost.
    pub task_stats: bool,
    /// How to re-read the configuration for REHASH and SIGHUP; `None`: REHASH says there is
    /// nothing to re-read.
    pub reload: Option<Reload>,
    /// Message history (`--history`, `--data-dir`, `--history-*`).
    pub history: HistoryConfig,
    /// How long a refused client is given, after its `ERROR` line, to close its end (1 s; not a
    /// setting: tests lengthen it to hold refusals open and reach their bound,
    /// [`MAX_REFUSALS_IN_FLIGHT`]).
    pub refusal_linger: Duration,
    /// Linking nodes through NATS (`--link`, feature `link`).
    pub link: LinkSettings,
}

/// `--link` and its credentials: with a URL the node joins the network named `--network`
/// through that NATS server (see docs/network.md).
#[derive(Clone, Debug, Default)]
pub struct LinkSettings {
    /// `nats://HOST:PORT` or `tls://HOST:PORT`; `None`: a node on its own.
    pub url: Option<String>,
    /// NATS token (`--link-token`).
    pub token: Option<String>,
    /// NATS user (`--link-user`), with `password`.
    pub user: Option<String>,
    /// NATS password (`--link-password`).
    pub password: Option<String>,
    /// The CA file that TLS to NATS trusts (`--link-ca`); with it the link speaks TLS only.
    pub ca: Option<PathBuf>,
    /// A client certificate chain for mutual TLS (`--link-cert`, with `key`).
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (`--link-key`).
    pub key: Option<PathBuf>,
}

/// Where and how history is stored. `path: None` keeps no history.
#[derive(Clone, Debug)]
pub struct HistoryConfig {
    /// The SQLite file; `None`: history is off.
    pub path: Option<PathBuf>,
    /// Records the writer's queue holds; past it, records are counted as dropped.
    pub queue: usize,
    /// Commit when a batch has this many records.
    pub batch_max: usize,
    /// Commit at most this long after a batch's first record: what `kill -9` can lose.
    pub interval: Duration,
    /// Retention: delete records older than this.
    pub max_age: Option<Duration>,
    /// Retention: keep the database's live data under this many bytes.
    pub max_bytes: Option<u64>,
    /// Sleep this long in every commit: plays a slow SD card in tests. Zero on a real node.
    pub commit_delay: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            path: None,
            queue: 4096,
            batch_max: 256,
            interval: Duration::from_millis(500),
            max_age: None,
            max_bytes: None,
            commit_delay: Duration::ZERO,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            broker: BrokerConfig::default(),
            motd_path: None,
            max_clients: 1024,
            address_limits: AddressLimits::default(),
            cloak: true,
            cloak_key: None,
            timeouts: Timeouts {
                silent: Duration::from_secs(10),
                register: Duration::from_secs(30),
                ping_interval: Duration::from_secs(120),
                write: Duration::from_secs(30),
            },
            sendq_bytes: 512 * 1024,
            recvq_events: 64,
            recvq_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(5),
            slow_poll: Duration::from_millis(50),
            task_stats: true,
            history: HistoryConfig::default(),
            link: LinkSettings::default(),
            reload: None,
            refusal_linger: Duration::from_secs(1),
        }
    }
}

/// What ended a step of `run`'s loop.
enum Step<R: Runtime> {
    Shutdown,
    /// A connection task finished; `clean` is false if it panicked or was cancelled.
    Finished(ClientId, bool),
    Accepted(Accepted<R::Reader, R::Writer>, ListenerKind),
    ListenersGone,
}

/// Tells `run` that a connection task is over, however it ended (even by panicking).
struct FinishGuard {
    id: ClientId,
    clean: bool,
    finished: async_channel::Sender<(ClientId, bool)>,
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        // Unbounded, so this cannot fail for lack of room; its length is bounded by the number
        // of live connections, which `max_clients` bounds.
        let _ = self.finished.try_send((self.id, self.clean));
    }
}

/// A connection's future with its [`FinishGuard`], marked clean when the future completes.
///
/// A struct rather than an `async` block: a block would hold the `Connection` it was given and
/// the future made from it side by side, and every connection pays for its task's size.
struct Guarded<F> {
    fut: F,
    guard: FinishGuard,
}

impl<F: std::future::Future<Output = ()> + Unpin> std::future::Future for Guarded<F> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let this = &mut *self;
        let done = std::pin::Pin::new(&mut this.fut).poll(cx);
        if done.is_ready() {
            this.guard.clean = true;
        }
        done
    }
}

/// Runs the server on `listeners` until `shutdown` fires and the shutdown protocol completes.
/// A bare `std::net::TcpListener` is a plain IRC listener; [`Listener`] names TLS and WebSocket
/// ones.
///
/// Returns an error only if start-up fails (a listener cannot be adopted, the MOTD file cannot
/// be read).
pub async fn run<R: Runtime, L: Into<Listener>>(
    rt: R,
    listeners: impl IntoIterator<Item = L>,
    mut config: ServerConfig,
    shutdown: ShutdownSignal,
) -> io::Result<()> {
    let listeners: Vec<Listener> = listeners.into_iter().map(Into::into).collect();
    if let Some(path) = config.motd_path.clone() {
        let lines = rt.unblock(move || read_motd(&path)).await;
        config.broker.motd = Some(lines.map_err(io::Error::other)?);
    }
    config.broker.ping_interval = config.timeouts.ping_interval;
    config.broker.cloak = cloak_key(&config)?;
    // One exemption list for both: per-address limits here, flood control in the broker.
    config.broker.flood.exempt = config.address_limits.exempt.clone();
    crate::rt::stats::set_slow_poll_threshold(config.slow_poll);
    crate::rt::stats::set_enabled(config.task_stats);
    let _watchdog = config.task_stats.then(crate::rt::stats::Watchdog::start);

    // REHASH may change the connection limit: `run` reads it here for each connection.
    let max_clients = Arc::new(AtomicUsize::new(config.max_clients));
    // ... and the accept path's other settings, taken by `run` at the next accept.
    let accept_update: AcceptUpdate = Arc::default();
    let (inbox, inbox_rx) = broker::inbox::open();
    config.broker.hooks = hooks(&rt, &inbox);
    let link_task = start_link(&rt, &mut config, &inbox).await?;
    let mut _rehash_requests = None;
    if let Some(reload) = config.reload.take() {
        let kinds: Vec<ListenerKind> = listeners.iter().map(|l| l.kind.clone()).collect();
        let live = LiveParts {
            max_clients: max_clients.clone(),
            accept: accept_update.clone(),
        };
        config.broker.hooks.reload = Some(live_reload(reload.reload, live, kinds));
        _rehash_requests = Some(forward_rehash_requests(&rt, reload.requests, &inbox));
    }
    // Only the broker holds the writer's queue, so the writer sees it close when the broker ends.
    let mut broker_config = config.broker.clone();
    let (history_hooks, writer_task) = history::start(&rt, &config.history).await?;
    broker_config.hooks.history = history_hooks;
    let broker_task = rt.spawn("broker".into(), Broker::new(broker_config, inbox_rx).run());

    // Accepted connections pass through a rendezvous-sized channel: an acceptor does not take
    // the next connection from the kernel until `run` has dealt with the previous one.
    raise_open_file_limit(config.max_clients);
    if let Some(first) = listeners.first() {
        reserve_descriptors(config.max_clients, &first.socket);
    }
    let (accepted_tx, accepted) = async_channel::bounded(1);
    let mut acceptors = Vec::new();
    for Listener { socket, kind } in listeners {
        let addr = socket.local_addr()?;
        socket.set_nonblocking(true)?;
        let listener = rt.listener(socket)?;
        match kind.transport() {
            Transport::Plain => log::info!("listening on {addr}"),
            other => log::info!("listening on {addr} ({})", other.name()),
        }
        let (rt2, tx) = (rt.clone(), accepted_tx.clone());
        acceptors.push(rt.spawn(format!("accept {addr}").into(), async move {
            accept_loop(rt2, listener, kind, tx).await
        }));
    }
    drop(accepted_tx);

    let (finished_tx, finished) = async_channel::unbounded();
    // Each connection's task, and the address key it counts against (none if exempt).
    let mut connections: HashMap<ClientId, (R::Task<()>, Option<std::net::IpAddr>)> =
        HashMap::new();
    let mut admission =
        admission::Admission::new(config.address_limits.clone(), config.max_clients);
    let mut swept_at_len = 0;
    // Clients being told they are refused; they do not count against the limit.
    let mut refusals: HashMap<ClientId, R::Task<()>> = HashMap::new();
    let mut next_id: ClientId = 1;
    loop {
        // Order matters: shutdown first, then finished tasks (they free slots), then new ones.
        let step: Step<R> = or(
            async {
                shutdown.wait().await;
                Step::Shutdown
            },
            or(
                async {
                    match finished.recv().await {
                        Ok((id, clean)) => Step::Finished(id, clean),
                        Err(_) => future::pending().await,
                    }
                },
                async {
                    match accepted.recv().await {
                        Ok((conn, kind)) => Step::Accepted(conn, kind),
                        Err(_) => Step::ListenersGone,
                    }
                },
            ),
        )
        .await;
        match step {
            Step::Shutdown => break,
            Step::ListenersGone => {
                log::error!("every listener failed; shutting down");
                break;
            }
            Step::Finished(id, clean) => {
                if refusals.remove(&id).is_some() {
                    continue;
                }
                if let Some((_, Some(key))) = connections.remove(&id) {
                    admission.release(key);
                }
                if !clean {
                    let reason = "Internal error".to_string();
                    let _ = inbox.send(Event::Disconnected { id, reason }).await;
                }
            }
            Step::Accepted(conn, kind) => {
                if let Some(new) = take_update(&accept_update) {
                    new.apply(&mut admission, &mut config);
                }
                let id = next_id;
                next_id += 1;
                let now = std::time::Instant::now();
                let max = max_clients.load(Ordering::Relaxed);
                let admitted = if connections.len() >= max {
                    Err(admission::Refusal::NodeFull(max))
                } else {
                    admission.sweep_if_due(now, &mut swept_at_len);
                    admission.admit(conn.peer.ip(), now)
                };
                // Every refusal is logged through one limiter: a storm writes a line a second.
                let admitted = admitted.map_err(|refusal| {
                    admission.log_refusal(conn.peer, &refusal, now);
                    refusal.reason()
                });
                let key = match admitted {
                    Ok(admission::Admit::Counted(key)) => Some(key),
                    Ok(admission::Admit::Exempt) => None,
                    Err(reason) => {
                        if refusals.len() < MAX_REFUSALS_IN_FLIGHT {
                            let guard = FinishGuard {
                                id,
                                clean: true,
                                finished: finished_tx.clone(),
                            };
                            let rt2 = rt.clone();
                            let linger = config.refusal_linger;
                            let task = rt.spawn(format!("refuse#{id}").into(), async move {
                                let _guard = guard;
                                refuse(&rt2, conn, &kind, &reason, linger).await;
                            });
                            refusals.insert(id, task);
                        } else {
                            log::debug!(
                                "{MAX_REFUSALS_IN_FLIGHT} refusals in flight: {} closed without \
                                 an ERROR line",
                                conn.peer
                            );
                        }
                        continue;
                    }
                };
                let start = Start {
                    rt: rt.clone(),
                    id,
                    recv: inbox.recv_queue(id, config.recvq_events, config.recvq_bytes),
                    queue: broker::send_queue(config.sendq_bytes),
                    timeouts: config.timeouts,
                    started: now,
                    finished: finished_tx.clone(),
                };
                let Some(task) = start.spawn(conn, kind, &shutdown) else {
                    break; // the broker is gone
                };
                connections.insert(id, (task, key));
            }
        }
    }

    // 1. Stop accepting: dropping the accept tasks cancels them and closes the listeners.
    drop(acceptors);
    drop(accepted);
    log::info!(
        "shutting down: {} connections to close (grace {:?})",
        connections.len(),
        config.shutdown_grace
    );
    // 2. The broker says goodbye to everyone and drops every queue.
    let _ = inbox.send(Event::Shutdown).await;
    drop(inbox);
    // 3-4. Wait for the connections, up to the grace period.
    let grace = rt.sleep(config.shutdown_grace);
    let drained = async {
        while !connections.is_empty() {
            match finished.recv().await {
                Ok((id, _)) => {
                    connections.remove(&id);
                }
                Err(_) => break,
            }
        }
        true
    };
    let all_closed = or(drained, async {
        grace.await;
        false
    })
    .await;
    if !all_closed {
        log::warn!(
            "{} connections did not close within the grace period; cancelling them",
            connections.len()
        );
    }
    drop(connections); // cancels whatever is left
    drop(refusals);
    drop(finished_tx);
    broker_task.await;
    if let Some(link) = link_task {
        // The broker is gone, so the link's queue is closed: it sends what is left (the QUITs
        // of our users) and ends; a NATS server that does not take it gets 2 s.
        or(
            async { link.await.unwrap_or(()) },
            rt.sleep(Duration::from_secs(2)),
        )
        .await;
    }
    // The broker is gone, so the writer's queue is closed: it commits what is left and ends.
    if let Some(writer) = writer_task {
        writer.await;
        log::info!("history: every queued record is stored");
    }
    log::info!("shutdown complete");
    Ok(())
}

/// Wraps the binary's [`ReloadFn`] for the broker: re-reads the TLS certificates of `listeners`
/// (first, and whatever the config file says: a renewed certificate must not wait for a valid
/// file), applies the server's own live parts (the connection limit, the slow-poll threshold),
/// hands the broker the rest. Runs on the blocking pool, like the function it wraps.
fn live_reload(
    reload: Arc<ReloadFn>,
    live: LiveParts,
    listeners: Vec<ListenerKind>,
) -> Arc<broker::ReloadFn> {
    Arc::new(move || {
        let mut certificates = Vec::new();
        for result in transport::reload_certificates(&listeners) {
            match result {
                Ok(line) => {
                    log::info!("{line}");
                    certificates.push(line);
                }
                Err(e) => {
                    log::error!("TLS certificate not reloaded, keeping the old one: {e}");
                    certificates.push(format!("TLS certificate not reloaded: {e}"));
                }
            }
        }
        let mut new = reload()?;
        new.changes.extend(certificates);
        let server = new.config;
        if server.max_clients != live.max_clients.swap(server.max_clients, Ordering::Relaxed) {
            raise_open_file_limit(server.max_clients);
        }
        crate::rt::stats::set_slow_poll_threshold(server.slow_poll);
        *live.accept.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(AcceptSettings::of(&server));
        // One exemption list for both, as at start.
        let mut flood = server.broker.flood;
        flood.exempt = server.address_limits.exempt.clone();
        Ok(broker::Reloaded {
            password: server.broker.password,
            motd: new.motd,
            operators: server.broker.operators,
            flood: Some(flood),
            changes: new.changes,
            source: new.source,
        })
    })
}

/// What a REHASH changes outside the broker, shared between the re-read (on the blocking
/// pool) and `run`'s loop.
struct LiveParts {
    /// The connection limit, read at each accept.
    max_clients: Arc<AtomicUsize>,
    /// The accept path's other settings, taken at the next accept.
    accept: AcceptUpdate,
}

/// New accept-path settings from a REHASH, waiting for `run`'s next accept.
type AcceptUpdate = Arc<Mutex<Option<AcceptSettings>>>;

/// The accept path's settings a REHASH applies: the per-address limits (but not the IPv6 prefix,
/// which keys the address table: it needs a restart) and, for connections made after it, the
/// silent deadline and the throttled RecvQ's bytes.
struct AcceptSettings {
    address_limits: AddressLimits,
    max_clients: usize,
    silent: Duration,
    recvq_bytes: usize,
}

impl AcceptSettings {
    fn of(server: &ServerConfig) -> AcceptSettings {
        AcceptSettings {
            address_limits: server.address_limits.clone(),
            max_clients: server.max_clients,
            silent: server.timeouts.silent,
            recvq_bytes: server.recvq_bytes,
        }
    }

    fn apply(self, admission: &mut admission::Admission, config: &mut ServerConfig) {
        admission.set_limits(self.address_limits.clone(), self.max_clients);
        config.address_limits = self.address_limits;
        config.timeouts.silent = self.silent;
        config.recvq_bytes = self.recvq_bytes;
    }
}

/// The settings a REHASH left for the next accept, if any.
fn take_update(update: &AcceptUpdate) -> Option<AcceptSettings> {
    update.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// A task that passes rehash requests (SIGHUP) to the broker until it is dropped.
fn forward_rehash_requests<R: Runtime>(
    rt: &R,
    requests: RehashRequests,
    inbox: &broker::Inbox,
) -> R::Task<()> {
    // Weak, so this task never keeps the broker's inbox open on its own.
    let inbox = inbox.downgrade();
    rt.spawn("rehash requests".into(), async move {
        while requests.next().await.is_some() {
            let Some(inbox) = inbox.upgrade() else {
                return;
            };
            if !inbox.send(Event::Rehash).await {
                return;
            }
        }
    })
}

/// The key hosts are cloaked with: the configured one, or a random one (then hosts change when
/// the node restarts); `None` when cloaking is off.
fn cloak_key(config: &ServerConfig) -> io::Result<Option<broker::CloakKey>> {
    if !config.cloak {
        log::info!("host cloaking is off: every client's address is shown to everyone");
        return Ok(None);
    }
    if let Some(key) = &config.cloak_key {
        return Ok(Some(key.clone()));
    }
    // Read here, not on the blocking pool: 16 bytes of /dev/urandom, once at start, before any
    // client is served, never block (urandom does not wait for entropy). On the pool it started
    // a thread that blocking 1.7 keeps for good, the idle node's 4th thread (8-16 KiB of RSS).
    let random = crate::auth::random_salt()?;
    log::info!(
        "host cloaking with a random key: cloaked hosts change when the node restarts \
         (set cloak_key in the config file to keep them)"
    );
    Ok(Some(broker::CloakKey::new(&random)))
}

/// Starts the NATS link if `--link` asks for one, and plugs it into the broker's hooks. The
/// TLS files (`--link-ca`, `--link-cert`, `--link-key`) are read here, on the blocking pool: a
/// missing or bad file stops the start with an error naming it.
#[cfg(feature = "link")]
async fn start_link<R: Runtime>(
    rt: &R,
    config: &mut ServerConfig,
    inbox: &broker::Inbox,
) -> io::Result<Option<R::Task<()>>> {
    let Some(url) = config.link.url.clone() else {
        return Ok(None);
    };
    let tls = link_tls(rt, &config.link).await?;
    let link_config = crate::link::LinkConfig {
        url,
        network: config.broker.network.clone(),
        server_name: config.broker.server_name.clone(),
        creds: crate::link::nats::proto::Credentials {
            token: config.link.token.clone(),
            user: config.link.user.clone(),
            pass: config.link.password.clone(),
        },
        tls,
    };
    let (hooks, task) = crate::link::start(rt, link_config, inbox).map_err(io::Error::other)?;
    config.broker.hooks.link = Some(hooks);
    Ok(Some(task))
}

/// Loads the link's TLS settings: `None` without `--link-ca`. A client certificate needs both
/// `--link-cert` and `--link-key`, and a CA.
#[cfg(feature = "link")]
async fn link_tls<R: Runtime>(
    rt: &R,
    link: &LinkSettings,
) -> io::Result<Option<crate::link::nats::tls::TlsClient>> {
    let refuse = |text: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            text.to_string(),
        ))
    };
    let identity = match (link.cert.clone(), link.key.clone()) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return refuse("--link-cert and --link-key go together (mutual TLS to NATS)"),
    };
    let Some(ca) = link.ca.clone() else {
        return match identity {
            Some(_) => refuse(
                "--link-cert needs --link-ca (the CA that signed the NATS server's certificate)",
            ),
            None => Ok(None),
        };
    };
    let loaded = rt
        .unblock(move || {
            let identity = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
            crate::link::nats::tls::TlsClient::load(&ca, identity)
        })
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("TLS to NATS: {e}")))?;
    Ok(Some(loaded))
}

/// Without the `link` feature, `--link` is refused at start.
#[cfg(not(feature = "link"))]
async fn start_link<R: Runtime>(
    _rt: &R,
    config: &mut ServerConfig,
    _inbox: &broker::Inbox,
) -> io::Result<Option<R::Task<()>>> {
    match &config.link.url {
        Some(_) => Err(io::Error::other(
            "--link: this build has no NATS link (built without the `link` feature)",
        )),
        None => Ok(None),
    }
}

/// What the broker cannot do itself: run slow work off the executor, and read the executor's
/// figures.
fn hooks<R: Runtime>(rt: &R, inbox: &broker::Inbox) -> broker::Hooks {
    // A weak sender: the broker owns these hooks, and a strong one would keep its own inbox open.
    let weak_inbox = inbox.downgrade();
    let offload_rt = rt.clone();
    let offload = move |job: Box<dyn FnOnce() -> Event + Send>| {
        let weak_inbox = weak_inbox.clone();
        offload_rt.offload(Box::new(move || {
            let event = job();
            if let Some(inbox) = weak_inbox.upgrade() {
                // We are on a blocking-pool thread: waiting for room here is fine.
                inbox.send_blocking(event);
            }
        }));
    };
    // Described at each query: the reactor's and the scheduler's counters move.
    let describe_rt = rt.clone();
    let stats = move |query: char| -> Vec<String> {
        match query {
            't' => crate::rt::stats::snapshot()
                .into_iter()
                .map(|k| {
                    format!(
                        "task {}: spawned {} alive {} polls {} busy {} ms slow {} max {} ms panics {}",
                        k.kind,
                        k.spawned,
                        k.alive,
                        k.polls,
                        crate::decimal::Fixed::new(k.busy.as_nanos(), 1_000_000, 1),
                        k.slow_polls,
                        crate::decimal::Fixed::new(k.max_poll.as_nanos(), 1_000_000, 2),
                        k.panics
                    )
                })
                .collect(),
            'e' => vec![
                describe_rt.describe(),
                format!(
                    "process: {} OS threads, slow-poll threshold {} ms",
                    os_threads().map_or("?".into(), |n| n.to_string()),
                    crate::rt::stats::slow_poll_threshold().as_millis()
                ),
            ],
            _ => Vec::new(),
        }
    };
    let sleep_rt = rt.clone();
    let sleep = move |dur: Duration| -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(sleep_rt.sleep(dur))
    };
    broker::Hooks {
        offload: Some(Arc::new(offload)),
        stats: Some(Arc::new(stats)),
        reload: None,
        history: None,
        link: None,
        sleep: Some(Arc::new(sleep)),
        clock: None,
    }
}

/// The process's OS threads, from /proc (a procfs read never waits on a disk).
fn os_threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// What a new connection's task needs, gathered by `run`.
struct Start<R: Runtime> {
    rt: R,
    id: ClientId,
    recv: broker::RecvQueue,
    queue: (broker::SendQueue, broker::Outbound),
    timeouts: Timeouts,
    /// When the socket was accepted: the registration deadline counts from here.
    started: Instant,
    finished: async_channel::Sender<(ClientId, bool)>,
}

impl<R: Runtime> Start<R> {
    /// Spawns the connection's task. Plain TCP goes straight to [`Connection`], and the broker
    /// hears of it now; TLS and WebSocket first run their handshake in the task, under the
    /// registration deadline (and the shutdown), and the broker hears of the client only once
    /// it is done. `None` if the broker is gone.
    fn spawn(
        self,
        conn: Accepted<R::Reader, R::Writer>,
        kind: ListenerKind,
        shutdown: &ShutdownSignal,
    ) -> Option<R::Task<()>> {
        let (id, peer, transport) = (self.id, conn.peer, kind.transport());
        let name = format!("conn#{id} {peer}").into();
        let rt = self.rt.clone();
        let guard = FinishGuard {
            id,
            clean: false,
            finished: self.finished.clone(),
        };
        if transport == Transport::Plain {
            log::info!("connect #{id} from {peer}");
            let connection = self.connect(conn.reader, conn.writer, peer, transport)?;
            let fut = connection.run();
            return Some(rt.spawn(name, Guarded { fut, guard }));
        }
        log::info!("connect #{id} from {peer} ({})", transport.name());
        let shutdown = shutdown.clone();
        let fut = async move {
            // A handshake is bounded like the first line: by the silent-connection deadline
            // (a client that never starts it) and the registration deadline.
            let limit = self.timeouts.register.min(self.timeouts.silent);
            let (register, started) = (limit, self.started);
            let upgrade = transport::upgrade(&kind, conn.reader, conn.writer, peer);
            let deadline = self.rt.sleep(register);
            let outcome = or(
                or(async { Some(upgrade.await) }, async {
                    deadline.await;
                    None
                }),
                async {
                    shutdown.wait().await;
                    Some(Err(io::Error::other("shutting down")))
                },
            )
            .await;
            let name = transport.name();
            match outcome {
                Some(Ok(transport::Upgraded::Irc(reader, writer))) => {
                    log::debug!(
                        "#{id} {peer}: {name} handshake done in {:?}",
                        started.elapsed()
                    );
                    if let Some(connection) = self.connect(reader, writer, peer, transport) {
                        connection.run().await;
                    }
                }
                Some(Ok(transport::Upgraded::Answered)) => {}
                Some(Err(e)) => log::info!("#{id} {peer}: {name} handshake failed: {e}"),
                None => log::info!(
                    "#{id} {peer}: {name} handshake not done within the registration deadline"
                ),
            }
        };
        Some(rt.spawn(
            name,
            Guarded {
                fut: Box::pin(fut),
                guard,
            },
        ))
    }

    /// Tells the broker about the client (its first event) and builds its [`Connection`].
    fn connect<Rd, Wr>(
        self,
        reader: Rd,
        writer: Wr,
        peer: std::net::SocketAddr,
        transport: Transport,
    ) -> Option<Connection<R, Rd, Wr>> {
        let (queue, outbound) = self.queue;
        let (id, secure) = (self.id, transport.is_secure());
        let event = Event::Connected {
            id,
            peer,
            queue,
            secure,
        };
        self.recv.try_push(event).ok()?;
        Some(Connection {
            rt: self.rt,
            id,
            recv: self.recv,
            reader,
            writer,
            outbound,
            timeouts: self.timeouts,
            started: self.started,
        })
    }
}

/// An accepted socket and what its listener does with it.
type AcceptedOn<R> = (
    Accepted<<R as Runtime>::Reader, <R as Runtime>::Writer>,
    ListenerKind,
);

/// Accepts connections until the listener fails or `run` goes away.
async fn accept_loop<R: Runtime>(
    rt: R,
    listener: R::Listener,
    kind: ListenerKind,
    to_run: async_channel::Sender<AcceptedOn<R>>,
) {
    loop {
        match rt.accept(&listener).await {
            Ok(conn) => {
                if to_run.send((conn, kind.clone())).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Running out of file descriptors is the usual cause; it passes as connections
                // close. Pause briefly instead of spinning on the error.
                log::warn!("accept failed: {e}");
                rt.sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// At most this many refused clients are being told why at once; past it, they are just closed.
pub const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// Tells a refused client why (`reason`), in its listener's protocol, then closes it.
///
/// After the goodbye it reads and discards until the client closes (at most `linger`):
/// closing a socket with unread input makes the kernel send a reset, which can destroy the
/// goodbye before the client reads it.
async fn refuse<R: Runtime>(
    rt: &R,
    conn: Accepted<R::Reader, R::Writer>,
    kind: &ListenerKind,
    reason: &str,
    linger: Duration,
) {
    let line = format!(
        "ERROR :Closing Link: {} ({reason})\r\n",
        crate::cidr::canonical(conn.peer.ip())
    );
    let goodbye_bytes = transport::refusal(kind, &line);
    let (mut reader, mut writer) = (conn.reader, conn.writer);
    let goodbye = async {
        let _ = writer.write_all(&goodbye_bytes).await;
        let _ = writer.close().await;
        let mut sink = [0u8; 512];
        while let Ok(1..) = reader.read(&mut sink).await {}
    };
    or(goodbye, rt.sleep(linger)).await;
}

/// Descriptors the node keeps open besides one socket per client: listeners, the reactor, the
/// blocking pool, stdio, files being read.
const DESCRIPTORS_BESIDES_CLIENTS: usize = 64;

/// Open descriptors `max_clients` connections need.
fn descriptors_needed(max_clients: usize) -> usize {
    max_clients.saturating_add(DESCRIPTORS_BESIDES_CLIENTS)
}

/// Raises the soft open-file limit so that `max_clients` connections fit, as far as the hard
/// limit allows, and says so when they cannot: past the limit the kernel refuses `accept`, and
/// clients would wait in the backlog with no explanation. Many systems start processes with a
/// soft limit of 1024, exactly the default `--max-clients`.
pub fn raise_open_file_limit(max_clients: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let needed = descriptors_needed(max_clients) as u64;
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= needed {
        return;
    }
    let raised = limit.maximum.map_or(needed, |hard| hard.min(needed));
    if raised > current {
        let new = Rlimit {
            current: Some(raised),
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, new) {
            Ok(()) => log::info!("open-file limit raised from {current} to {raised}"),
            Err(e) => log::debug!("could not raise the open-file limit: {e}"),
        }
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    if now < needed {
        log::warn!(
            "the open-file limit is {now}, below --max-clients {max_clients} plus \
             {DESCRIPTORS_BESIDES_CLIENTS}: the kernel will refuse connections past about {} \
             clients (raise it: ulimit -n, LimitNOFILE=)",
            now.saturating_sub(DESCRIPTORS_BESIDES_CLIENTS as u64)
        );
    }
}

/// Grows the process's file-descriptor table now, to fit `max_clients` connections.
///
/// Linux grows the table when a new descriptor does not fit, and in a multi-threaded process
/// that waits for an RCU grace period: about 10 ms, on the thread that called `accept`, which is
/// an executor thread. With a few thousand clients that happened at 256, 512, 1024, ...
/// descriptors and showed as registration-latency spikes. One throw-away descriptor above the
/// highest we expect makes the table big enough once, at start. (The kernel memory is 8 bytes
/// per slot.) Failing is harmless: it only means the spikes stay.
pub fn reserve_descriptors(max_clients: usize, listener: &std::net::TcpListener) {
    let want = descriptors_needed(max_clients).min(1 << 20) as i32;
    match rustix::io::fcntl_dupfd_cloexec(listener, want) {
        Ok(spare) => drop(spare),
        Err(e) => log::debug!("could not reserve {want} descriptors up front: {e}"),
    }
}

/// Binds a std listener on each address, with an error that names the address that failed.
pub fn bind_all(addrs: &[std::net::SocketAddr]) -> io::Result<Vec<std::net::TcpListener>> {
    addrs
        .iter()
        .map(|addr| {
            std::net::TcpListener::bind(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        })
        .collect()
}
