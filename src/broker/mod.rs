//! The broker: the one task that owns all chat state.
//!
//! Every connection's reader turns its socket's lines into [`Event`]s and pushes them on its own
//! bounded [`RecvQueue`]; the broker serves those queues in turns ([`inbox`]). It handles one
//! event at a time, so users, nicks and channels need no locks: nothing else can see them. Its
//! answers go out as serialized [`Line`]s pushed onto each client's [`SendQueue`].
//!
//! Invariants a reader of this module can rely on:
//! - The broker never awaits anything but its inbox. A full client queue is that client's
//!   problem: the push fails and the client is disconnected (`SendQ exceeded`).
//! - A message for many recipients is serialized once; each recipient gets an `Arc` clone.
//! - When the broker forgets a client it drops every [`SendQueue`] handle of that client, which
//!   tells the client's writer to flush and close. So "removed from the broker" and "connection
//!   closing" are the same event.
//! - Every queue is bounded: a client whose RecvQ is full is not read until the broker catches
//!   up (TCP pushes back on that client alone), and no client gets more than one turn of
//!   [`EVENTS_PER_TURN`] events before every other waiting client has had its turn.
//!
//! It uses only async-channel and futures-lite, so the smol and Tokio builds run it unchanged.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::budget::Budget;
use crate::proto::numeric::{self, Numeric};
use crate::proto::{casemap, message, tags, Message};

pub mod caps;
mod channel;
mod cloak;
mod commands;
mod flood;
mod forms;
pub mod harness;
pub mod history;
pub mod ids;
pub mod inbox;
mod invariants;
mod labels;
pub mod link;
mod members;
mod parking;
mod queue;
mod replies;
mod state;
mod visibility;
pub mod whowas;

use channel::Channel;
pub use cloak::CloakKey;
pub use flood::FloodConfig;
use forms::Forms;
use inbox::{Inbound, RecvShared};
pub use inbox::{Inbox, InboxReceiver, RecvQueue, WeakInbox, EVENTS_PER_TURN};
pub use queue::{send_queue, with_deferred_wakes, Line, Outbound, PushError, SendQueue};
use state::Client;

/// Identifies one connection for its whole life; never reused.
pub type ClientId = u64;

/// What connections tell the broker.
#[derive(Debug)]
pub enum Event {
    /// A connection was accepted. Sent before any other event of that id.
    Connected {
        /// The new connection.
        id: ClientId,
        /// Where it comes from; its IP is the client's host in `nick!user@host`.
        peer: SocketAddr,
        /// Where the broker puts the client's outgoing lines.
        queue: SendQueue,
        /// The transport is encrypted (TLS, wss): WHOIS shows 671.
        secure: bool,
    },
    /// The client sent a well-formed line.
    Line {
        /// Who sent it.
        id: ClientId,
        /// The parsed message.
        msg: Message,
    },
    /// The client sent a line longer than the protocol allows (answered with 417).
    LineTooLong {
        /// Who sent it.
        id: ClientId,
    },
    /// The client has sent nothing for a ping interval.
    Idle {
        /// The quiet client.
        id: ClientId,
    },
    /// The registration deadline of the client passed (ignored if it registered in time).
    RegistrationDeadline {
        /// The client.
        id: ClientId,
    },
    /// The connection ended on the client's side (EOF, reset, write failure, ...).
    Disconnected {
        /// The client.
        id: ClientId,
        /// Shown to others in the QUIT line and logged.
        reason: String,
    },
    /// An OPER password check finished on the blocking pool.
    OperChecked {
        /// Who asked.
        id: ClientId,
        /// The operator name they asked for.
        name: String,
        /// Whether the password matched.
        ok: bool,
    },
    /// A history read (CHATHISTORY, or replay on JOIN) finished on the blocking pool.
    HistoryRead {
        /// Who asked.
        id: ClientId,
        /// What was asked, to shape the answer.
        request: history::Request,
        /// What the store found, or why it could not.
        result: Result<history::Found, String>,
    },
    /// Re-read the configuration, as `REHASH` does (SIGHUP sends this); the outcome is logged.
    Rehash,
    /// A re-read of the configuration (REHASH, SIGHUP) finished on the blocking pool.
    Rehashed {
        /// The operator who sent REHASH; `None` for SIGHUP.
        by: Option<ClientId>,
        /// What the running node takes from the new configuration, or why it was refused.
        result: Result<Box<Reloaded>, String>,
    },
    /// From the link adapter (`--link`): the network's answers and other nodes' news. Without
    /// the `link` feature nothing can send one, and the payload type says so
    /// ([`link::LinkEvent`]), so the minimal build carries no code for it.
    Link(link::LinkEvent),
    /// The server is shutting down: tell every client, drop every queue, stop.
    Shutdown,
}

/// What a REHASH hands the broker: the parts of the configuration a running node takes, and
/// what changed.
#[derive(Clone, Debug, Default)]
pub struct Reloaded {
    /// The server password (`None`: no password).
    pub password: Option<String>,
    /// The MOTD's lines, read again (`None`: no MOTD, clients get 422).
    pub motd: Option<Vec<String>>,
    /// Who may become an IRC operator (operators already opered stay so).
    pub operators: Vec<Operator>,
    /// Flood control's settings and exempt ranges, applied to every client at once; `None`
    /// keeps the running ones.
    pub flood: Option<FloodConfig>,
    /// One line per changed setting, saying whether it was applied or needs a restart.
    pub changes: Vec<String>,
    /// What was read, for 382 RPL_REHASHING: the config file's path.
    pub source: String,
}

/// Re-reads the configuration. Blocking (it reads files): the broker runs it on the blocking
/// pool, through [`Hooks::offload`].
pub type ReloadFn = dyn Fn() -> Result<Reloaded, String> + Send + Sync;

/// Limits announced in ISUPPORT and enforced by the broker.
#[derive(Clone, Debug)]
pub struct Limits {
    /// NICKLEN.
    pub nick_len: usize,
    /// CHANNELLEN.
    pub channel_len: usize,
    /// TOPICLEN.
    pub topic_len: usize,
    /// AWAYLEN.
    pub away_len: usize,
    /// USERLEN: longer usernames are cut.
    pub user_len: usize,
    /// CHANLIMIT: channels one client may be in.
    pub channels_per_client: usize,
    /// MAXTARGETS: targets of one PRIVMSG/NOTICE.
    pub max_targets: usize,
    /// NAMELEN: longest realname SETNAME accepts (USER cuts longer ones).
    pub realname_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nick_len: 30,
            channel_len: 50,
            topic_len: 390,
            away_len: 200,
            user_len: 18,
            channels_per_client: 50,
            max_targets: 4,
            realname_len: 128,
        }
    }
}

/// An IRC operator: `OPER name password` checks the password against `password_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// The name given to OPER.
    pub name: String,
    /// An Argon2 PHC string (see [`crate::auth`]).
    pub password_hash: String,
}

/// What ADMIN tells (all optional; empty lines are left out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminInfo {
    /// 257 RPL_ADMINLOC1: where the server is (city, country).
    pub location: String,
    /// 258 RPL_ADMINLOC2: who runs it (institution, person).
    pub description: String,
    /// 259 RPL_ADMINEMAIL: how to reach the administrator.
    pub email: String,
}

/// Work the broker hands off, because it must never block or wait: it gets the result back
/// as an [`Event`].
pub type OffloadFn = dyn Fn(Box<dyn FnOnce() -> Event + Send>) + Send + Sync;

/// Lines of `STATS <letter>` that only the runtime can fill in (the executor's figures).
pub type StatsFn = dyn Fn(char) -> Vec<String> + Send + Sync;

/// A timer from the runtime: completes after the duration. The broker holds at most one.
pub type SleepFn = dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync;

/// The broker's clock (the harness replaces it with one it moves by hand).
pub type ClockFn = dyn Fn() -> Instant + Send + Sync;

/// What the server plugs into the broker. All optional: without `offload` slow work runs
/// inline (fine in unit tests, wrong on a live node), without `stats` STATS shows broker
/// figures only, without `sleep` a client held back by flood control is only woken when the
/// broker next has something else to do (so a live node always sets it), without `clock` the
/// broker reads [`Instant::now`], without `history` nothing is remembered and CHATHISTORY is not
/// offered.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Runs a job on the blocking pool and delivers the event it returns to the broker.
    pub offload: Option<Arc<OffloadFn>>,
    /// Executor figures for STATS.
    pub stats: Option<Arc<StatsFn>>,
    /// A timer, for waking clients that flood control holds back.
    pub sleep: Option<Arc<SleepFn>>,
    /// The time, for flood control.
    pub clock: Option<Arc<ClockFn>>,
    /// Re-reads the configuration for REHASH and SIGHUP; without it REHASH says there is
    /// nothing to re-read.
    pub reload: Option<Arc<ReloadFn>>,
    /// Where records go, and where CHATHISTORY reads.
    pub history: Option<HistoryHooks>,
    /// The link adapter, on a linked node (`--link`).
    pub link: Option<link::LinkHooks>,
}

/// The store's two ends, as the broker sees them.
#[derive(Clone)]
pub struct HistoryHooks {
    /// The writer's bounded queue.
    pub sink: history::HistorySink,
    /// Reads, called only inside offloaded jobs.
    pub reader: Arc<dyn history::HistoryReader>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("offload", &self.offload.is_some())
            .field("stats", &self.stats.is_some())
            .field("history", &self.history.is_some())
            .field("sleep", &self.sleep.is_some())
            .field("clock", &self.clock.is_some())
            .field("reload", &self.reload.is_some())
            .field("link", &self.link.is_some())
            .finish()
    }
}

/// What CHATHISTORY may ask for (announced as `CHATHISTORY=` in ISUPPORT).
#[derive(Clone, Debug)]
pub struct HistoryLimits {
    /// Most messages one CHATHISTORY request returns.
    pub max_per_request: usize,
    /// Lines of history sent on JOIN to clients without `draft/chathistory` (0: none).
    pub join_lines: usize,
    /// History reads running on the blocking pool at once, node-wide; past it the client is
    /// told to try again (FAIL ... MESSAGE_ERROR).
    pub max_reads: usize,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            max_per_request: 100,
            join_lines: 0,
            max_reads: 4,
        }
    }
}

/// What the broker needs to know about the server it speaks for.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Our name, the source of server messages (`:chatnode.local 001 ...`).
    pub server_name: String,
    /// NETWORK in ISUPPORT and the welcome line.
    pub network: String,
    /// Server password clients must send with PASS, if set.
    pub password: Option<String>,
    /// MOTD lines; `None` answers 422.
    pub motd: Option<Vec<String>>,
    /// Seconds of silence before a PING (for the ping-timeout message).
    pub ping_interval: Duration,
    /// Limits announced and enforced.
    pub limits: Limits,
    /// Who may become an IRC operator.
    pub operators: Vec<Operator>,
    /// The TLS port advertised with the IRCv3 `sts` capability, if any.
    pub sts_port: Option<u16>,
    /// Flood control (per-client token bucket).
    pub flood: FloodConfig,
    /// Host cloaking: with a key, others see a keyed hash of each client's address instead of
    /// the address (see [`CloakKey`]); `None` shows addresses. The node sets one by default.
    pub cloak: Option<CloakKey>,
    /// Offloading, timers and executor figures, from the server.
    pub hooks: Hooks,
    /// Answers to ADMIN.
    pub admin: AdminInfo,
    /// How many former nicks WHOWAS remembers (the oldest is forgotten at the bound).
    pub whowas_entries: usize,
    /// CHATHISTORY limits.
    pub history: HistoryLimits,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            server_name: "chatnode.local".into(),
            network: "chatnode".into(),
            password: None,
            motd: None,
            ping_interval: Duration::from_secs(120),
            limits: Limits::default(),
            operators: Vec::new(),
            sts_port: None,
            flood: FloodConfig::default(),
            cloak: None,
            hooks: Hooks::default(),
            admin: AdminInfo::default(),
            whowas_entries: whowas::DEFAULT_CAPACITY,
            history: HistoryLimits::default(),
        }
    }
}

/// The version string announced in 002, 004 and WHOIS.
pub const VERSION: &str = concat!("chatnode-", env!("CARGO_PKG_VERSION"));

/// How many events the broker handles before it yields to other tasks: without this, a busy
/// node would keep a one-thread executor to the broker alone (async-executor has no budget).
const EVENTS_PER_YIELD: u32 = 128;

/// The task that owns all chat state. Build it with [`Broker::new`] and await [`Broker::run`].
pub struct Broker {
    config: Arc<BrokerConfig>,
    inbox: InboxReceiver,
    /// Clients whose RecvQ has events, in the order they will be served.
    ready: std::collections::VecDeque<Arc<RecvShared>>,
    clients: ids::IdMap<Client>,
    /// Casefolded nick -> client, for registered and registering clients alike.
    nicks: HashMap<String, ClientId>,
    /// Casefolded name -> channel.
    channels: HashMap<String, Channel>,
    /// Clients found dead (queue full or closed) while sending; dropped after the event.
    doomed: Vec<(ClientId, String)>,
    /// For 003 RPL_CREATED and LUSERS' "max" figure.
    created: SystemTime,
    max_registered: usize,
    /// OPER checks running on the blocking pool now (each may take tens of MiB: bounded).
    oper_checks: usize,
    /// A re-read of the configuration is running (one at a time).
    rehashing: bool,
    /// Clients whose commands wait (see [`Broker::park`]).
    parking: parking::Parking,
    /// The client whose lines are being captured for a labeled response, if any (a copy of
    /// `capture`'s id, cheap to compare in the fanout loop).
    labeled: Option<ClientId>,
    capture: Option<labels::Capture>,
    /// Recent former nicks, for WHOWAS (bounded).
    whowas: whowas::WhoWas,
    /// History reads running on the blocking pool now (bounded by [`HistoryLimits::max_reads`]).
    history_reads: usize,
    /// CHATHISTORY batches sent, for unique batch references.
    batches: u64,
    /// Clients flood control holds back, and when each goes on.
    wakes: flood::Wakes,
    /// The wall clock as read at the start of the current turn (only when flood control read
    /// it and no test clock is set): a message's time of sending, for WHOIS idle, without a
    /// second clock read per message (one is about 37 ns on our VM).
    turn_started: Option<Instant>,
    /// Remote users and nodes, on a linked node.
    link: link::LinkState,
}

/// The one timer the run loop waits on: for the earliest flood-control wake.
type WakeTimer = Option<(Instant, Pin<Box<dyn Future<Output = ()> + Send>>)>;

/// What the idle run loop woke up for.
enum Woke {
    Inbound(Inbound),
    Timer,
    Closed,
}

impl Broker {
    /// A broker with no clients that will read `inbox`.
    pub fn new(config: BrokerConfig, inbox: InboxReceiver) -> Broker {
        let whowas = whowas::WhoWas::new(config.whowas_entries);
        Broker {
            config: Arc::new(config),
            inbox,
            ready: std::collections::VecDeque::new(),
            clients: ids::IdMap::default(),
            nicks: HashMap::new(),
            channels: HashMap::new(),
            doomed: Vec::new(),
            created: SystemTime::now(),
            max_registered: 0,
            oper_checks: 0,
            rehashing: false,
            parking: parking::Parking::default(),
            labeled: None,
            capture: None,
            whowas,
            history_reads: 0,
            batches: 0,
            wakes: flood::Wakes::default(),
            turn_started: None,
            link: link::LinkState::default(),
        }
    }

    /// Handles events until [`Event::Shutdown`] arrives or every sender to the inbox is gone.
    ///
    /// On shutdown every client is sent `ERROR :Server shutting down` and forgotten, which lets
    /// each writer flush and close.
    pub async fn run(mut self) {
        let mut budget = Budget::new(EVENTS_PER_YIELD);
        let mut turn: Vec<Event> = Vec::with_capacity(EVENTS_PER_TURN);
        let mut timer: WakeTimer = None;
        loop {
            self.wake_due();
            // Take in whatever has been posted, without waiting; wait only when idle.
            let inbound = match self.inbox.rx.try_recv() {
                Ok(inbound) => Some(inbound),
                Err(_) if self.ready.is_empty() => match self.wait(&mut timer).await {
                    Woke::Inbound(inbound) => Some(inbound),
                    Woke::Timer => None,
                    Woke::Closed => break,
                },
                Err(_) => None,
            };
            if let Some(inbound) = inbound {
                if self.admit(inbound).is_break() {
                    break;
                }
            }
            // One turn for the client at the front: a bounded number of its events.
            if let Some(queue) = self.next_ready() {
                // Writers are woken once, after the turn: see `queue::with_deferred_wakes`.
                let handled = queue::with_deferred_wakes(|| self.serve_turn(queue, &mut turn));
                // Without yielding, a busy node would keep a one-thread executor to the
                // broker alone: async-executor has no budget of its own.
                for _ in 0..handled {
                    budget.tick().await;
                }
            }
        }
        self.shut_down();
    }

    /// Waits for the inbox, or for the earliest flood-control wake if anyone is held back. The
    /// timer is kept across calls and made anew only when the earliest wake changes: one timer
    /// for every throttled client, not one per client or per line.
    async fn wait(&mut self, timer: &mut WakeTimer) -> Woke {
        let next = self.wakes.next();
        let sleep = self.config.hooks.sleep.clone();
        let (Some(at), Some(sleep)) = (next, sleep) else {
            return match self.inbox.rx.recv().await {
                Ok(inbound) => Woke::Inbound(inbound),
                Err(_) => Woke::Closed,
            };
        };
        if timer.as_ref().map(|(when, _)| *when) != Some(at) {
            *timer = Some((at, sleep(at.saturating_duration_since(self.now()))));
        }
        let Some((_, fut)) = timer.as_mut() else {
            return Woke::Timer;
        };
        let inbox = async {
            match self.inbox.rx.recv().await {
                Ok(inbound) => Woke::Inbound(inbound),
                Err(_) => Woke::Closed,
            }
        };
        let woke = futures_lite::future::or(inbox, async {
            fut.await;
            Woke::Timer
        })
        .await;
        if matches!(woke, Woke::Timer) {
            *timer = None;
        }
        woke
    }

    /// Serves one turn of `queue`: at most [`EVENTS_PER_TURN`] of its events, fewer if its
    /// client gets parked on the way (the rest go back to the front of its queue). Returns how
    /// many events were handled.
    fn serve_turn(&mut self, queue: Arc<RecvShared>, turn: &mut Vec<Event>) -> usize {
        let more = queue.take(turn, EVENTS_PER_TURN);
        let now = self.wakes_now();
        self.turn_started = now.filter(|_| self.config.hooks.clock.is_none());
        let mut handled = 0;
        let mut events = turn.drain(..);
        while let Some(event) = events.next() {
            if !self.flood_allows(&event, now, &queue) {
                queue.put_back(std::iter::once(event).chain(events.by_ref()));
                break;
            }
            self.handle(event, Some(&queue));
            handled += 1;
            if self.parking.is_parked(queue.id()) {
                queue.put_back(events.by_ref());
                break;
            }
        }
        drop(events);
        self.end_turn(queue, more);
        self.turn_started = None;
        handled
    }

    /// Now, or a moment ago: when the current turn started, if that was read.
    fn recent_now(&self) -> Instant {
        self.turn_started.unwrap_or_else(Instant::now)
    }

    /// The broker's clock.
    fn now(&self) -> Instant {
        match &self.config.hooks.clock {
            Some(clock) => clock(),
            None => Instant::now(),
        }
    }

    /// The time, for one turn's flood checks: read once per turn, and only if flood control is
    /// on.
    fn wakes_now(&self) -> Option<Instant> {
        (self.config.flood.rate > 0.0).then(|| self.now())
    }

    /// Whether `event` may be handled now. A command that finds its client's bucket empty is
    /// held back: its client is parked and throttled until the next token is due.
    fn flood_allows(&mut self, event: &Event, now: Option<Instant>, queue: &RecvShared) -> bool {
        let Some(now) = now else {
            return true;
        };
        let (id, cost) = match event {
            Event::Line { id, msg } => match flood::cost_of(msg) {
                0 => return true,
                cost => (*id, cost),
            },
            Event::LineTooLong { id } => (*id, flood::TOO_LONG_COST),
            _ => return true,
        };
        let Some(client) = self.clients.get_mut(&id) else {
            return true;
        };
        if client.flood_exempt || (client.oper && self.config.flood.exempt_opers) {
            return true;
        }
        match client.bucket.spend(now, &self.config.flood, cost) {
            Ok(()) => true,
            Err(wake) => {
                log::debug!("client {id} throttled until {wake:?}");
                self.wakes.add(wake, id);
                self.park(id);
                queue.set_throttled(true);
                false
            }
        }
    }

    /// Lets every throttled client whose time has come go on.
    fn wake_due(&mut self) {
        if self.wakes.next().is_none() {
            return;
        }
        let now = self.now();
        while let Some(id) = self.wakes.pop_due(now) {
            let Some(client) = self.clients.get(&id) else {
                continue; // left while throttled
            };
            if let Some(recv) = &client.recv {
                recv.set_throttled(false);
            }
            self.unpark(id);
        }
    }

    /// Lets every client held back by flood control go on now, whatever its wake time: after
    /// the flood settings changed (REHASH), each one's next command is weighed again under the
    /// new settings (and held back again if it still finds too few tokens).
    fn release_throttled(&mut self) {
        let ids = self.wakes.drain();
        for id in ids {
            let Some(client) = self.clients.get(&id) else {
                continue; // left while throttled
            };
            if let Some(recv) = &client.recv {
                recv.set_throttled(false);
            }
            self.unpark(id);
        }
    }

    /// Takes one item from the inbox: a control event is handled at once, a RecvQ that has
    /// events joins the round. `Break` on shutdown.
    fn admit(&mut self, inbound: Inbound) -> std::ops::ControlFlow<()> {
        match inbound {
            Inbound::Control(event) if matches!(*event, Event::Shutdown) => {
                return std::ops::ControlFlow::Break(())
            }
            Inbound::Control(event) => self.handle(*event, None),
            Inbound::Ready(queue) if self.parking.is_parked(queue.id()) => {
                self.parking.hold(queue);
            }
            Inbound::Ready(queue) => self.ready.push_back(queue),
        }
        std::ops::ControlFlow::Continue(())
    }

    /// The next RecvQ in the round whose client is not parked (parked ones are held aside).
    fn next_ready(&mut self) -> Option<Arc<RecvShared>> {
        while let Some(queue) = self.ready.pop_front() {
            if !self.parking.is_parked(queue.id()) {
                return Some(queue);
            }
            self.parking.hold(queue);
        }
        None
    }

    /// After a client's turn: a parked client's queue waits aside until it is unparked, one
    /// with events left goes to the back of the round.
    fn end_turn(&mut self, queue: Arc<RecvShared>, more: bool) {
        if self.parking.is_parked(queue.id()) {
            if queue.has_events() {
                self.parking.hold(queue);
            }
        } else if more {
            self.ready.push_back(queue);
        }
    }

    /// Holds back client `id`'s further commands until [`Broker::unpark`]: its RecvQ is not
    /// served, so its replies keep the order of its commands while slow work for it runs
    /// elsewhere. Every other client goes on. The RecvQ stays bounded, so TCP pushes back on
    /// that client alone.
    fn park(&mut self, id: ClientId) {
        self.parking.park(id);
    }

    /// Serves client `id`'s RecvQ again, from where it stopped.
    fn unpark(&mut self, id: ClientId) {
        if let Some(queue) = self.parking.unpark(id) {
            self.ready.push_back(queue);
        }
    }

    fn shut_down(&mut self) {
        // Our users leave the network now, rather than when the others miss our heartbeats.
        let local: Vec<ClientId> = self
            .clients
            .values()
            .filter(|c| c.registered && c.node.is_none())
            .map(|c| c.id)
            .collect();
        for id in local {
            self.publish_quit(id, "Server shutting down");
        }
        let error: Line = Arc::from(&b"ERROR :Server shutting down\r\n"[..]);
        log::info!(
            "broker: telling {} clients the server is shutting down",
            self.clients.len()
        );
        for client in self.clients.values() {
            let _ = client.queue.push_final(error.clone());
        }
        for client in self.clients.values() {
            if let Some(recv) = &client.recv {
                recv.close();
            }
        }
        self.channels.clear();
        self.nicks.clear();
        self.clients.clear();
        self.ready.clear();
        self.parking.clear();
        self.wakes.clear();
    }

    /// Handles one event (`from`: the RecvQ it came from, if any), then drops whoever turned
    /// out dead while handling it.
    fn handle(&mut self, event: Event, from: Option<&Arc<RecvShared>>) {
        match event {
            Event::Connected {
                id,
                peer,
                queue,
                secure,
            } => {
                log::debug!("client {id} connected from {peer}");
                let mut client = Client::new(id, peer, queue);
                client.recv = from.cloned();
                client.secure = secure;
                client.bucket = flood::Bucket::new(self.now());
                client.flood_exempt =
                    crate::cidr::Cidr::any_contains(&self.config.flood.exempt, peer.ip());
                client.host = cloak::host_for(self.config.cloak.as_ref(), peer.ip());
                self.clients.insert(id, client);
            }
            Event::Line { id, msg } => {
                let Some(client) = self.clients.get_mut(&id) else {
                    return;
                };
                client.ping_pending = false;
                if msg
                    .tags
                    .as_ref()
                    .is_some_and(|t| t.len() > tags::MAX_CLIENT_TAG_DATA)
                {
                    self.reply(id, numeric::ERR_INPUTTOOLONG, &[]);
                    return;
                }
                self.begin_label(id, &msg);
                commands::dispatch(self, id, msg);
                self.end_label();
            }
            Event::LineTooLong { id } => {
                if let Some(client) = self.clients.get_mut(&id) {
                    client.ping_pending = false;
                    self.reply(id, numeric::ERR_INPUTTOOLONG, &[]);
                }
            }
            Event::Idle { id } => self.on_idle(id),
            Event::RegistrationDeadline { id } => {
                if self.clients.get(&id).is_some_and(|c| !c.registered) {
                    self.disconnect(id, "Registration timed out");
                }
            }
            Event::Disconnected { id, reason } => self.disconnect(id, &reason),
            Event::OperChecked { id, name, ok } => {
                self.resume_label(id);
                commands::oper_checked(self, id, &name, ok);
                self.end_label();
            }
            Event::HistoryRead {
                id,
                request,
                result,
            } => {
                self.resume_label(id);
                commands::history_read(self, id, request, result);
                self.end_label();
            }
            Event::Rehash => commands::rehash_start(self, None),
            #[cfg(feature = "link")]
            Event::Link(event) => self.handle_link(event),
            #[cfg(not(feature = "link"))]
            Event::Link(never) => match never {},
            Event::Rehashed { by, result } => {
                if let Some(id) = by {
                    self.resume_label(id);
                }
                commands::rehash_finished(self, by, result);
                self.end_label();
            }
            Event::Shutdown => {}
        }
        while let Some((id, reason)) = self.doomed.pop() {
            self.disconnect(id, &reason);
        }
    }

    fn on_idle(&mut self, id: ClientId) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if !client.registered {
            return; // the registration deadline deals with those
        }
        if client.ping_pending {
            let secs = crate::decimal::Seconds(self.config.ping_interval);
            self.disconnect(id, &format!("Ping timeout: {secs} seconds"));
        } else {
            client.ping_pending = true;
            let line = self.line_from_server("PING", &[], Some(&self.config.server_name));
            self.send(id, line);
        }
    }

    // ----- helpers the command handlers share -------------------------------------------------

    /// The client's nick, or `*` before it has one (as numerics want).
    fn nick_of(&self, id: ClientId) -> &str {
        self.clients
            .get(&id)
            .and_then(|c| c.nick.as_deref())
            .unwrap_or("*")
    }

    /// Queues `line` for client `id` (or captures it for the labeled response being built);
    /// a full or closed queue dooms the client.
    fn send(&mut self, id: ClientId, line: Line) {
        if self.labeled == Some(id) {
            if let Some(capture) = &mut self.capture {
                capture.lines.push(line);
                return;
            }
        }
        self.send_uncaptured(id, line);
    }

    /// Queues `line` for client `id` even while its labeled response is being built (a
    /// message a client sent to itself is delivered unlabeled, as labeled-response asks).
    fn send_uncaptured(&mut self, id: ClientId, line: Line) {
        if let Some(client) = self.clients.get(&id) {
            if let Err(e) = client.queue.push(line) {
                if let Some(reason) = push_error_reason(e) {
                    self.doomed.push((id, reason.into()));
                }
            }
        }
    }

    /// Sends a numeric reply: `:server CODE nick params... :text`.
    ///
    /// When the numeric has a fixed text it becomes the trailing parameter after `params`;
    /// otherwise the last of `params` is sent as the trailing parameter.
    fn reply(&mut self, id: ClientId, n: Numeric, params: &[&str]) {
        let line = {
            let nick = self.nick_of(id);
            let mut all: Vec<&str> = Vec::with_capacity(params.len() + 2);
            all.push(nick);
            all.extend_from_slice(params);
            if n.text.is_empty() {
                let trailing = if params.is_empty() { None } else { all.pop() };
                build_line(Some(&self.config.server_name), n.code, &all, trailing)
            } else {
                build_line(Some(&self.config.server_name), n.code, &all, Some(n.text))
            }
        };
        self.send(id, line);
    }

    /// A standard reply (IRCv3 standard-replies): `:server FAIL COMMAND CODE context... :text`.
    fn fail(&mut self, id: ClientId, command: &str, code: &str, context: &[&str], text: &str) {
        let mut middle = vec![command, code];
        middle.extend_from_slice(context);
        let line = self.line_from_server("FAIL", &middle, Some(text));
        self.send(id, line);
    }

    /// A line from the server: `:server COMMAND middle... :trailing`.
    fn line_from_server(&self, command: &str, middle: &[&str], trailing: Option<&str>) -> Line {
        build_line(Some(&self.config.server_name), command, middle, trailing)
    }

    /// Sends the form of `forms` each client asks for to client `id`.
    fn send_forms(&mut self, id: ClientId, forms: &mut Forms) {
        let Some(caps) = self.clients.get(&id).map(|c| c.caps) else {
            return;
        };
        if let Some(line) = forms.line_for(caps) {
            self.send(id, line.clone());
        }
    }

    /// Sends `line` to every member of channel `key` except `except` (with the `time` tag for
    /// those who asked for server-time).
    fn broadcast(&mut self, key: &str, line: &Line, except: Option<ClientId>) {
        self.broadcast_forms(key, &mut Forms::new(line.clone()), except);
    }

    /// Sends each member of channel `key` except `except` its form of `forms`. The hot loop of
    /// the node: per member, one comparison for the labeled client and one capability test;
    /// every form is serialized once (see [`forms`]).
    fn broadcast_forms(&mut self, key: &str, forms: &mut Forms, except: Option<ClientId>) {
        let Some(channel) = self.channels.get(key) else {
            return;
        };
        for (&member, m) in &channel.members {
            // Remote members get the message from their own node.
            if Some(member) == except || m.remote {
                continue;
            }
            let Some(line) = forms.line_for(m.caps) else {
                continue;
            };
            if Some(member) == self.labeled {
                if let Some(capture) = &mut self.capture {
                    capture.lines.push(line.clone());
                    continue;
                }
            }
            if let Err(e) = m.queue.push(line.clone()) {
                if let Some(reason) = push_error_reason(e) {
                    self.doomed.push((member, reason.into()));
                }
            }
        }
    }

    /// Sends `line` once to `id` and to everyone who shares a channel with it.
    fn send_to_peers_and_self(&mut self, id: ClientId, line: &Line, include_self: bool) {
        let mut forms = Forms::new(line.clone());
        self.send_forms_to_peers(id, &mut forms, include_self);
    }

    /// Sends each client sharing a channel with `id` (and `id` itself if `include_self`) its
    /// form of `forms`, once per client.
    fn send_forms_to_peers(&mut self, id: ClientId, forms: &mut Forms, include_self: bool) {
        let mut peers = self.peers_of(id);
        if !include_self {
            peers.retain(|&p| p != id);
        }
        for peer in peers {
            self.send_forms(peer, forms);
        }
    }

    /// `id` and every client that shares a channel with it, each once.
    fn peers_of(&self, id: ClientId) -> Vec<ClientId> {
        let Some(client) = self.clients.get(&id) else {
            return Vec::new();
        };
        let mut seen: std::collections::HashSet<ClientId> = std::collections::HashSet::new();
        seen.insert(id);
        for key in &client.channels {
            if let Some(channel) = self.channels.get(key) {
                seen.extend(channel.members.keys().copied());
            }
        }
        seen.into_iter().collect()
    }

    /// Forgets client `id`: tells its channel peers (QUIT), frees its nick, queues its final
    /// `ERROR` and drops its queue so the writer flushes and closes. Idempotent.
    fn disconnect(&mut self, id: ClientId, reason: &str) {
        if !self.clients.contains_key(&id) {
            return;
        }
        if self.clients[&id].registered {
            let quit = build_line(Some(&self.clients[&id].mask), "QUIT", &[], Some(reason));
            self.send_to_peers_and_self(id, &quit, false);
            self.remember_in_channels_of(id, &quit);
            self.publish_quit(id, reason);
        }
        let channels = self.clients[&id].channels.clone();
        for key in &channels {
            self.remove_member(id, key);
        }
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        self.parking.forget(id);
        if client.registered {
            self.remember_nick(&client);
        }
        if let Some(nick) = &client.nick {
            let folded = casemap::casefold(nick);
            if self.nicks.get(&folded) == Some(&id) {
                self.nicks.remove(&folded);
                self.adopt_orphan_nick(&folded);
            }
        }
        let error = build_line(
            None,
            "ERROR",
            &[],
            Some(&format!("Closing Link: {} ({reason})", client.host)),
        );
        let _ = client.queue.push_final(error);
        log::info!(
            "disconnect {} ({}): {reason}",
            client.nick.as_deref().unwrap_or("*"),
            client.peer
        );
        // `client` drops here with its last SendQueue handle: the writer flushes and closes.
    }

    /// Records `client`'s current nick for WHOWAS.
    fn remember_nick(&mut self, client: &Client) {
        let user = client.user.as_deref().unwrap_or("*");
        self.whowas
            .record(client.nick(), user, &client.host, &client.realname);
    }

    /// Hands `line`, just relayed in channel `key`, to the history writer (if history is on).
    /// Never waits: see [`history::HistorySink::record`].
    fn remember(&self, key: &str, kind: history::RecordKind, line: &Line) {
        let (Some(history), Some(channel)) = (&self.config.hooks.history, self.channels.get(key))
        else {
            return;
        };
        let record = history::Record::new(key, &channel.name, kind, line);
        history.sink.record(record);
    }

    /// Hands the message `forms` (PRIVMSG, NOTICE), just relayed in conversation `target`
    /// (`name` as shown), to the history writer with the msgid, time and client-only tags its
    /// recipients got, so CHATHISTORY replays it the same. Copies no line bytes: the record
    /// shares the body the recipients got.
    fn remember_message(&self, target: String, name: String, forms: &mut Forms) {
        let Some(history) = &self.config.hooks.history else {
            return;
        };
        let record = history::Record {
            msgid: forms.msgid().unwrap_or_else(history::new_msgid),
            time_ms: forms.time_ms(),
            target,
            name,
            kind: history::RecordKind::Message,
            line: forms.body().clone(),
            client_tags: forms.client_tags().cloned(),
        };
        history.sink.record(record);
    }

    /// Remembers an event about client `id` (QUIT, NICK) in every channel it is in.
    fn remember_in_channels_of(&self, id: ClientId, line: &Line) {
        if self.config.hooks.history.is_none() {
            return;
        }
        if let Some(client) = self.clients.get(&id) {
            for key in &client.channels {
                self.remember(key, history::RecordKind::Event, line);
            }
        }
    }

    fn registered_count(&self) -> usize {
        self.clients.values().filter(|c| c.registered).count()
    }
}

/// Why a failed push ends the client, or `None` when it need not: a closed queue means the
/// connection is already ending, and its own `Disconnected` event (every end of a connection
/// sends one, with the real reason: write timeout, reset, ...) is on its way.
fn push_error_reason(e: PushError) -> Option<&'static str> {
    match e {
        PushError::Full => Some("SendQ exceeded"),
        PushError::Closed => None,
    }
}

/// Seconds since the Unix epoch (for 329, 333, 317).
fn unix_time(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Serializes `:source COMMAND middle... :trailing\r\n` once, into a [`Line`] its recipients
/// share. The bytes come from [`message::write_line`], which also keeps CR, LF and NUL off the
/// wire (one user's text can never forge a second line to another).
fn build_line(
    source: Option<&str>,
    command: &str,
    middle: &[&str],
    trailing: Option<&str>,
) -> Line {
    thread_local! {
        /// Where a line is written before it is copied, once, into its shared `Arc<[u8]>`:
        /// writing into a fresh `Vec` and converting cost two allocations per line.
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| {
        // Never borrowed twice: `write_line` calls nothing that builds a line.
        let mut out = scratch.borrow_mut();
        out.clear();
        out.reserve(wire_len(source, command, middle, trailing));
        message::write_line(&mut out, source, command, middle, trailing);
        let line = Arc::from(&out[..]);
        // A line is at most a few KiB (tags included); do not keep a freak one's buffer.
        if out.capacity() > 16 * 1024 {
            *out = Vec::new();
        }
        line
    })
}

/// The bytes [`build_line`] writes for these parts, CRLF included, so its scratch buffer grows
/// at most once per line.
fn wire_len(source: Option<&str>, command: &str, middle: &[&str], trailing: Option<&str>) -> usize {
    let mut len = command.len() + 2 + middle.iter().map(|m| m.len() + 1).sum::<usize>();
    len += source.map_or(0, |s| s.len() + 2) + trailing.map_or(0, |t| t.len() + 2);
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_allocated_at_its_exact_length() {
        let cases: [(Option<&str>, &[&str], Option<&str>); 4] = [
            (None, &[], None),
            (Some("nick!u@h"), &["#c", "x"], Some("hello there")),
            (Some("s"), &["a"], Some("")),
            (None, &["a", "bb", "ccc"], None),
        ];
        for (source, middle, trailing) in cases {
            let line = build_line(source, "PRIVMSG", middle, trailing);
            assert_eq!(line.len(), wire_len(source, "PRIVMSG", middle, trailing));
        }
    }

    #[test]
    fn build_line_shapes() {
        let l = build_line(Some("srv"), "001", &["nick"], Some("Welcome home"));
        assert_eq!(&*l, b":srv 001 nick :Welcome home\r\n");
        let l = build_line(None, "PING", &[], Some("x"));
        assert_eq!(&*l, b"PING :x\r\n");
        let l = build_line(Some("a!b@c"), "JOIN", &["#x"], None);
        assert_eq!(&*l, b":a!b@c JOIN #x\r\n");
    }

    #[test]
    fn build_line_never_forges_a_second_line() {
        let l = build_line(Some("s"), "PRIVMSG", &["#x"], Some("hi\r\nQUIT :x\0"));
        assert_eq!(&*l, b":s PRIVMSG #x :hi  QUIT :x \r\n");
    }
}
