//! The link task: one per linked node, between the broker and the NATS server.
//!
//! One loop owns everything (the connection, the subscriptions, the table of live nodes, the
//! JetStream requests in flight), so none of it needs a lock. It wakes for three things: an op
//! from the NATS connection (read by a small reader task), a record from the broker, and a
//! 500 ms tick (heartbeats, dead nodes, request timeouts, reconnect attempts).
//!
//! **Subjects** (`<net>` is `--network`): `cn.<net>.state` (user and channel state, every
//! node), `cn.<net>.chan.<hex of the casefolded channel>` (channel messages, only nodes with
//! local members subscribe), `cn.<net>.node.<id>` (private messages and bursts for one node),
//! `cn.<net>.sync` (hello: "send me your users"), `cn.<net>.hb` (heartbeats). Nicks are keys
//! of the JetStream KV bucket `CN_<net>_NICKS` (stream `KV_CN_<net>_NICKS`).
//!
//! **Liveness.** Every node publishes a heartbeat every [`HEARTBEAT`]; a node not heard from
//! for [`DEAD_AFTER`] is dead: the broker removes its users with a split QUIT. A node that
//! loses NATS hears no one, so it declares every other node dead after the same time, and
//! keeps serving its own users. On reconnect it re-claims its users' nicks, then announces
//! them (the broker's burst) and asks the others for theirs (hello).
//!
//! **Bounds.** The broker's queue to us is bounded ([`OUT_QUEUE`]; the broker drops and counts
//! at the bound); our queue to the broker is a RecvQ of [`TO_BROKER_EVENTS`] events, and when it
//! is full we stop reading NATS (the server then applies its own slow-consumer policy). Records
//! published while NATS is unreachable are dropped and counted (`STATS l`): the burst on
//! reconnect restores the state, and core NATS would not have stored them anyway.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::future;
use futures_lite::io::AsyncWriteExt;

use super::nats::client::{open, Security, Session};
use super::nats::json;
use super::nats::proto::{self, Credentials, Delivery, ServerOp};
use super::nats::tls::{check_server_name, TlsClient, NO_TLS};
use super::wire::{self, Wire};
use crate::broker::inbox::{HandOffError, Inbox, RecvQueue};
use crate::broker::link::{
    ClaimOutcome, LinkHooks, LinkIn, LinkOut, NodeId, Remote, Route, LINK_QUEUE_ID,
};
use crate::broker::{ClientId, Event};
use crate::proto::casemap;
use crate::rt::Runtime;
use crate::server::transport::BoxWriter;

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a node may stay silent before it is declared dead (three missed heartbeats).
pub const DEAD_AFTER: Duration = Duration::from_secs(6);
/// The loop's tick.
const TICK: Duration = Duration::from_millis(500);
/// A JetStream request not answered in this time is given up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection attempt (TCP and login) not done in this time is given up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Records the broker may have waiting for us.
pub const OUT_QUEUE: usize = 4096;
/// Nick releases remembered while NATS is unreachable. Past it the oldest is forgotten (its
/// key stays held until its revision is cleaned up: by a node that declares us dead, or by a
/// stale-key takeover), and counted as dropped.
const OFFLINE_RELEASES: usize = 1024;
/// Events we may have waiting in the broker.
pub const TO_BROKER_EVENTS: usize = 1024;
/// Reconnect delays: from the first to the longest.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

const SID_INBOX: u64 = 1;
const SID_STATE: u64 = 2;
const SID_SYNC: u64 = 3;
const SID_HB: u64 = 4;
const SID_NODE: u64 = 5;
const FIRST_CHANNEL_SID: u64 = 100;
/// Ops, and broker records, handled per wake at most (then the other kind, the tick and the
/// broker get their turn).
const BATCH: usize = 256;

/// How to reach NATS and which network to join.
#[derive(Clone, Debug, Default)]
pub struct LinkConfig {
    /// `nats://[user:pass@|token@]HOST:PORT` (`--link`), or `tls://...` for TLS.
    pub url: String,
    /// The network's name (`--network`): nodes with the same name form one network.
    pub network: String,
    /// Our server name, shown by LINKS and in split QUITs on the other nodes.
    pub server_name: String,
    /// `--link-token`, `--link-user`, `--link-password` (the URL's own credentials win).
    pub creds: Credentials,
    /// `--link-ca` (and `--link-cert`, `--link-key`), loaded: with it the link speaks TLS only.
    pub tls: Option<TlsClient>,
}

/// Where the link connects, and how (from [`LinkConfig::target`]).
#[derive(Clone, Debug)]
pub struct Target {
    /// `HOST:PORT`.
    pub addr: String,
    /// The URL's credentials, else the flags'.
    pub creds: Credentials,
    /// Whether TLS is required, the name the server's certificate must carry, what it trusts.
    pub security: Security,
}

impl LinkConfig {
    /// The `HOST:PORT` to connect to, the credentials (the URL's, else the flags') and the
    /// TLS settings. `tls://`, or a CA (`--link-ca`), makes TLS required: the link then never
    /// talks to the server in plain text, and the server's certificate must name HOST.
    ///
    /// ```
    /// use chatnode::link::LinkConfig;
    /// let c = LinkConfig { url: "nats://u:p@127.0.0.1:4222".into(), ..LinkConfig::default() };
    /// let target = c.target().unwrap();
    /// assert_eq!(target.addr, "127.0.0.1:4222");
    /// assert_eq!((target.creds.user.as_deref(), target.creds.pass.as_deref()), (Some("u"), Some("p")));
    /// assert!(!target.security.require_tls);
    /// // TLS needs the CA to check the server's certificate with (--link-ca).
    /// let err = LinkConfig { url: "tls://nats.example.org".into(), ..c.clone() }.target().unwrap_err();
    /// assert!(err.contains("--link-ca"), "{err}");
    /// assert!(LinkConfig { url: "http://h:1".into(), ..c }.target().is_err());
    /// ```
    pub fn target(&self) -> Result<Target, String> {
        let (rest, tls_scheme) = match self.url.split_once("://") {
            Some(("nats", rest)) => (rest, false),
            Some(("tls", rest)) => (rest, true),
            Some((scheme, _)) => {
                return Err(format!(
                    "--link {}: nats:// or tls:// expected, not {scheme}://",
                    self.url
                ))
            }
            None => (self.url.as_str(), false),
        };
        let rest = rest.trim_end_matches('/');
        let mut creds = self.creds.clone();
        let host = match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                match userinfo.split_once(':') {
                    Some((user, pass)) => {
                        creds.user = Some(user.to_string());
                        creds.pass = Some(pass.to_string());
                    }
                    None => creds.token = Some(userinfo.to_string()),
                }
                host
            }
            None => rest,
        };
        if host.is_empty() {
            return Err(format!("--link {}: no host", self.url));
        }
        let (name, addr) = match host
            .rsplit_once(':')
            .filter(|(_, p)| p.parse::<u16>().is_ok())
        {
            Some((name, _)) => (name, host.to_string()),
            None => (host, format!("{host}:4222")),
        };
        Ok(Target {
            addr,
            creds,
            security: self.security(tls_scheme, name)?,
        })
    }

    /// TLS is required by a `tls://` URL or a CA; it needs the CA, and a host a certificate
    /// can name.
    fn security(&self, tls_scheme: bool, host: &str) -> Result<Security, String> {
        if tls_scheme && self.tls.is_none() {
            return Err(if cfg!(feature = "tls") {
                format!(
                    "--link {}: TLS needs --link-ca FILE, the CA that signed the NATS server's \
                     certificate (no system roots are loaded: give /etc/ssl/certs/ca-certificates.crt \
                     to trust those)",
                    self.url
                )
            } else {
                format!("--link {}: {NO_TLS}", self.url)
            });
        }
        let require_tls = tls_scheme || self.tls.is_some();
        if require_tls {
            check_server_name(host).map_err(|e| format!("--link {}: {e}", self.url))?;
        }
        Ok(Security {
            require_tls,
            host: host.to_string(),
            tls: self.tls.clone(),
        })
    }
}

/// Starts the link task for a broker whose inbox is `inbox`: the hooks go into the broker's
/// config, the task handle to whoever owns the node's tasks (dropping it stops the link).
pub fn start<R: Runtime>(
    rt: &R,
    config: LinkConfig,
    inbox: &Inbox,
) -> Result<(LinkHooks, R::Task<()>), String> {
    let Target {
        addr,
        creds,
        security,
    } = config.target()?;
    let node = new_node_id();
    let (sink, from_broker) = async_channel::bounded(OUT_QUEUE);
    let health = Arc::new(Mutex::new(Health {
        server: addr.clone(),
        ..Health::default()
    }));
    let shown = health.clone();
    let hooks = LinkHooks {
        node: node.clone(),
        sink,
        health: Arc::new(move || lock(&shown).lines()),
    };
    let subjects = Subjects::new(&config.network, &node);
    log::info!(
        "link: node {node} ({}) joins network {} through NATS at {addr}{}",
        config.server_name,
        config.network,
        if security.require_tls { " (TLS)" } else { "" }
    );
    let adapter = Adapter {
        rt: rt.clone(),
        addr,
        creds,
        security,
        name: config.server_name,
        node,
        subjects,
        to_broker: inbox.recv_queue(LINK_QUEUE_ID, TO_BROKER_EVENTS, usize::MAX),
        from_broker,
        health,
        conn: None,
        peers: HashMap::new(),
        interests: HashMap::new(),
        pending: HashMap::new(),
        waiting_claims: Vec::new(),
        to_deliver: VecDeque::new(),
        next_token: 1,
        next_sid: FIRST_CHANNEL_SID,
        next_tick: Instant::now(),
        next_heartbeat: Instant::now(),
        next_attempt: Instant::now(),
        backoff: BACKOFF_FIRST,
        jetstream: false,
        stream_ready: false,
        out: Vec::new(),
        releases: 0,
        held: VecDeque::new(),
        offline_releases: VecDeque::new(),
    };
    let task = rt.spawn("link".into(), adapter.run());
    Ok((hooks, task))
}

/// A random node id: 12 hex digits, new at every start.
fn new_node_id() -> NodeId {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff).into()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The subjects and names of one network, for one node.
struct Subjects {
    prefix: String,
    state: String,
    sync: String,
    hb: String,
    own: String,
    inbox: String,
    bucket: String,
    stream: String,
}

impl Subjects {
    fn new(network: &str, node: &str) -> Subjects {
        let net = if proto::is_safe_token(network) {
            network.to_string()
        } else {
            format!("x{}", hex(network))
        };
        let prefix = format!("cn.{net}");
        let bucket = format!("CN_{net}_NICKS");
        Subjects {
            state: format!("{prefix}.state"),
            sync: format!("{prefix}.sync"),
            hb: format!("{prefix}.hb"),
            own: format!("{prefix}.node.{node}"),
            inbox: format!("_INBOX.cn{node}"),
            stream: format!("KV_{bucket}"),
            bucket,
            prefix,
        }
    }

    fn node(&self, node: &str) -> String {
        format!("{}.node.{node}", self.prefix)
    }

    fn channel(&self, key: &str) -> String {
        format!("{}.chan.{}", self.prefix, hex(key))
    }

    fn nick_key(&self, nick: &str) -> String {
        format!("$KV.{}.{}", self.bucket, hex(&casemap::casefold(nick)))
    }
}

/// Figures for `STATS l`.
#[derive(Default)]
struct Health {
    server: String,
    connected: Option<(Instant, String)>,
    /// The current (or last) connection is encrypted.
    tls: bool,
    connects: u64,
    last_error: Option<String>,
    published: u64,
    received: u64,
    dropped_offline: u64,
    malformed: u64,
    channel_messages: u64,
    claims: u64,
    unconfirmed: u64,
    nodes: usize,
    jetstream: bool,
}

impl Health {
    fn lines(&self) -> Vec<String> {
        let state = match &self.connected {
            Some((since, server)) => format!(
                "connected to NATS {}{} ({server}) for {} s",
                self.server,
                if self.tls { " over TLS" } else { "" },
                since.elapsed().as_secs()
            ),
            None => format!("NOT connected to NATS {}", self.server),
        };
        let mut lines = vec![
            format!(
                "link: {state}; {} connection(s) made; JetStream {}; {} live node(s) heard",
                self.connects,
                if self.jetstream { "on" } else { "off" },
                self.nodes
            ),
            format!(
                "link: published {}, received {} ({} channel messages), dropped while disconnected {}, malformed {}; nick claims {} ({} unconfirmed)",
                self.published, self.received, self.channel_messages, self.dropped_offline, self.malformed, self.claims, self.unconfirmed
            ),
        ];
        if let Some(e) = &self.last_error {
            lines.push(format!("link: last error: {e}"));
        }
        lines
    }
}

fn lock(h: &Mutex<Health>) -> std::sync::MutexGuard<'_, Health> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}

/// A live NATS connection.
struct Conn<R: Runtime> {
    writer: BoxWriter,
    ops: async_channel::Receiver<io::Result<ServerOp>>,
    /// The reader task; dropping the connection cancels it.
    _reader: R::Task<()>,
    since: Instant,
}

struct Peer {
    name: Option<String>,
    last: Instant,
}

/// A JetStream request in flight.
struct Request {
    at: Instant,
    kind: Pending,
}

enum Pending {
    Stream,
    Claim(Claim),
    /// A stale key is being deleted; then the claim is tried once more.
    Stale(Claim),
    Delete,
}

#[derive(Clone)]
struct Claim {
    id: ClientId,
    nick: String,
    reclaim: bool,
    /// Tried once already (after a stale key was deleted, or vanished).
    again: bool,
    /// Waiting for the key's current value (after a create failed).
    get: bool,
}

enum Woke {
    Op(io::Result<ServerOp>),
    Out(Option<LinkOut>),
    Tick,
}

struct Adapter<R: Runtime> {
    rt: R,
    addr: String,
    creds: Credentials,
    security: Security,
    name: String,
    node: NodeId,
    subjects: Subjects,
    to_broker: RecvQueue,
    from_broker: async_channel::Receiver<LinkOut>,
    health: Arc<Mutex<Health>>,
    conn: Option<Conn<R>>,
    peers: HashMap<NodeId, Peer>,
    /// Channels with local members (casefolded) -> their subscription id.
    interests: HashMap<String, u64>,
    pending: HashMap<u64, Request>,
    /// Claims that wait for the nick bucket to exist.
    waiting_claims: Vec<Claim>,
    to_deliver: VecDeque<Event>,
    next_token: u64,
    next_sid: u64,
    next_tick: Instant,
    next_heartbeat: Instant,
    next_attempt: Instant,
    backoff: Duration,
    jetstream: bool,
    stream_ready: bool,
    /// Frames to write to NATS at the end of this step.
    out: Vec<u8>,
    /// Nick releases not yet confirmed: publishes wait for them (see [`Adapter::publish`]).
    releases: usize,
    /// Publishes held while a release is unconfirmed, in order (bounded by [`OUT_QUEUE`]).
    held: VecDeque<(String, Vec<u8>)>,
    /// Nick keys given back while NATS was unreachable (a NICK change, a QUIT): released once
    /// the bucket answers again (bounded by [`OFFLINE_RELEASES`]; the oldest is dropped).
    offline_releases: VecDeque<(String, u64)>,
}

impl<R: Runtime> Adapter<R> {
    async fn run(mut self) {
        // Set when the broker has ended: send what it left (our users' QUITs), then stop.
        let mut closing = false;
        loop {
            if closing && (self.releases == 0 || self.conn.is_none()) {
                self.flush().await;
                return;
            }
            if !closing && self.conn.is_none() && Instant::now() >= self.next_attempt {
                self.connect().await;
            }
            if Instant::now() >= self.next_tick {
                self.on_tick();
            } else {
                let ops = self.conn.as_ref().map(|c| c.ops.clone());
                let out = (!closing).then(|| self.from_broker.clone());
                let delay = self.next_tick.saturating_duration_since(Instant::now());
                match wait(ops, out, self.rt.sleep(delay)).await {
                    Woke::Op(Ok(op)) => self.on_op(op),
                    Woke::Op(Err(e)) => self.disconnected(&e.to_string()),
                    Woke::Out(Some(out)) => self.on_out(out),
                    Woke::Out(None) => closing = true,
                    Woke::Tick => self.on_tick(),
                }
                self.take_ready();
            }
            self.flush().await;
            if !self.deliver().await {
                return;
            }
        }
    }

    /// Handles what else is ready now, up to a batch of each kind, so one wake (one timer, one
    /// write to NATS) serves many messages.
    fn take_ready(&mut self) {
        for _ in 0..BATCH {
            let next = self.conn.as_ref().and_then(|c| c.ops.try_recv().ok());
            match next {
                Some(Ok(op)) => self.on_op(op),
                Some(Err(e)) => {
                    self.disconnected(&e.to_string());
                    break;
                }
                None => break,
            }
        }
        for _ in 0..BATCH {
            match self.from_broker.try_recv() {
                Ok(out) => self.on_out(out),
                Err(_) => break,
            }
        }
    }

    /// One connection attempt, bounded by [`CONNECT_TIMEOUT`]: TCP, `INFO`, TLS when required
    /// (every attempt runs its own handshake), login. A failure is logged (a warning when the
    /// error is new, at debug while it repeats) and retried after the backoff.
    async fn connect(&mut self) {
        let (rt, addr) = (self.rt.clone(), self.addr.clone());
        let (name, creds) = (self.name.clone(), self.creds.clone());
        let security = self.security.clone();
        let attempt = async move {
            let (reader, writer) = rt.connect(addr).await?;
            open(reader, writer, &security, &name, &creds, 8 << 20).await
        };
        let timeout = {
            let sleep = self.rt.sleep(CONNECT_TIMEOUT);
            async move {
                sleep.await;
                Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
            }
        };
        match future::or(attempt, timeout).await {
            Ok(session) => self.connected(session),
            Err(e) => {
                let text = format!("cannot connect to NATS at {}: {e}", self.addr);
                let new = lock(&self.health).last_error.as_deref() != Some(text.as_str());
                if new {
                    log::warn!(
                        "link: {text}; retrying every {} s at most",
                        BACKOFF_MAX.as_secs()
                    );
                } else {
                    log::debug!("link: {text}");
                }
                lock(&self.health).last_error = Some(text);
                self.next_attempt = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    fn connected(&mut self, session: Session) {
        let Session {
            mut reader,
            writer,
            info,
            tls,
        } = session;
        log::info!(
            "link: connected to NATS at {} (server {} version {}, {}, JetStream {})",
            self.addr,
            info.server_id,
            info.version,
            if tls { "TLS" } else { "plain text" },
            if info.jetstream {
                "on"
            } else {
                "OFF: nicks are not checked across nodes"
            }
        );
        let (tx, rx) = async_channel::bounded(256);
        let reader_task = self.rt.spawn("link reader".into(), async move {
            loop {
                let op = reader.next().await;
                let end = op.is_err();
                if tx.send(op).await.is_err() || end {
                    break;
                }
            }
        });
        self.conn = Some(Conn {
            writer,
            ops: rx,
            _reader: reader_task,
            since: Instant::now(),
        });
        self.backoff = BACKOFF_FIRST;
        self.jetstream = info.jetstream;
        {
            let mut h = lock(&self.health);
            h.connected = Some((Instant::now(), info.server_id.clone()));
            h.tls = tls;
            h.connects += 1;
            h.jetstream = info.jetstream;
            h.last_error = None;
        }
        let s = &self.subjects;
        for (subject, sid) in [
            (format!("{}.*", s.inbox), SID_INBOX),
            (s.state.clone(), SID_STATE),
            (s.sync.clone(), SID_SYNC),
            (s.hb.clone(), SID_HB),
            (s.own.clone(), SID_NODE),
        ] {
            proto::write_sub(&mut self.out, &subject, sid);
        }
        let keys: Vec<String> = self.interests.keys().cloned().collect();
        for key in keys {
            self.subscribe_channel(key);
        }
        if self.jetstream {
            self.create_stream();
        }
        let hello = wire::encode(&self.node, &Wire::Hello(self.name.clone()));
        let sync = self.subjects.sync.clone();
        self.publish(&sync, &hello);
        self.next_heartbeat = Instant::now();
        self.emit(LinkIn::Up);
    }

    fn disconnected(&mut self, why: &str) {
        if self.conn.take().is_none() {
            return;
        }
        log::warn!(
            "link: lost NATS at {} ({why}); local users go on, reconnecting",
            self.addr
        );
        {
            let mut h = lock(&self.health);
            h.connected = None;
            h.last_error = Some(format!("lost NATS: {why}"));
        }
        self.stream_ready = false;
        self.releases = 0;
        let held = self.held.len() as u64;
        self.held.clear();
        lock(&self.health).dropped_offline += held;
        let claims: Vec<Claim> = self
            .pending
            .drain()
            .filter_map(|(_, r)| match r.kind {
                Pending::Claim(c) | Pending::Stale(c) => Some(c),
                _ => None,
            })
            .chain(self.waiting_claims.drain(..))
            .collect();
        for claim in claims {
            self.answer(&claim, ClaimOutcome::Unconfirmed);
        }
        self.out.clear();
        self.next_attempt = Instant::now();
    }

    /// Writes the frames of this step; a failed write ends the connection.
    async fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let Some(conn) = &mut self.conn else {
            self.out.clear();
            return;
        };
        let result = match conn.writer.write_all(&self.out).await {
            Ok(()) => conn.writer.flush().await,
            Err(e) => Err(e),
        };
        self.out.clear();
        if let Err(e) = result {
            self.disconnected(&e.to_string());
        }
    }

    /// Hands the events of this step to the broker, waiting for room. `false`: the broker is
    /// gone.
    async fn deliver(&mut self) -> bool {
        while let Some(event) = self.to_deliver.pop_front() {
            match self.to_broker.try_push(event) {
                Ok(()) => {}
                Err(HandOffError::Full(event)) => {
                    self.to_deliver.push_front(*event);
                    poll_fn(|cx| self.to_broker.poll_ready(cx)).await;
                }
                Err(HandOffError::Gone) => return false,
            }
        }
        true
    }

    fn emit(&mut self, event: LinkIn) {
        self.to_deliver.push_back(Event::Link(event));
    }

    /// Publishes `payload` on `subject`. While a nick release is unconfirmed, publishes wait
    /// (in order) until it is: a node that sees a QUIT or NICK can then give the old nick to
    /// someone else at once. A release is answered in milliseconds, or given up after
    /// [`REQUEST_TIMEOUT`].
    fn publish(&mut self, subject: &str, payload: &[u8]) {
        if self.conn.is_none() {
            lock(&self.health).dropped_offline += 1;
            return;
        }
        if self.releases > 0 {
            if self.held.len() >= OUT_QUEUE {
                self.held.pop_front();
                lock(&self.health).dropped_offline += 1;
            }
            self.held.push_back((subject.to_string(), payload.to_vec()));
            return;
        }
        proto::write_pub(&mut self.out, subject, None, payload);
        lock(&self.health).published += 1;
    }

    /// A release is confirmed (or given up): held publishes go once none is left.
    fn release_done(&mut self) {
        self.releases = self.releases.saturating_sub(1);
        while self.releases == 0 {
            let Some((subject, payload)) = self.held.pop_front() else {
                break;
            };
            self.publish(&subject, &payload);
        }
    }

    /// Sends a request whose answer comes to our inbox.
    fn request(&mut self, subject: &str, headers: &[(&str, &str)], payload: &[u8], kind: Pending) {
        let token = self.next_token;
        self.next_token += 1;
        let reply = format!("{}.{token}", self.subjects.inbox);
        if headers.is_empty() {
            proto::write_pub(&mut self.out, subject, Some(&reply), payload);
        } else {
            proto::write_hpub(&mut self.out, subject, Some(&reply), headers, payload);
        }
        self.pending.insert(
            token,
            Request {
                at: Instant::now(),
                kind,
            },
        );
    }

    fn subscribe_channel(&mut self, key: String) {
        let sid = self.next_sid;
        self.next_sid += 1;
        if self.conn.is_some() {
            let subject = self.subjects.channel(&key);
            proto::write_sub(&mut self.out, &subject, sid);
        }
        self.interests.insert(key, sid);
    }

    // ----- from the broker ---------------------------------------------------------------

    fn on_out(&mut self, out: LinkOut) {
        match out {
            LinkOut::Claim { id, nick, reclaim } => {
                lock(&self.health).claims += 1;
                let claim = Claim {
                    id,
                    nick,
                    reclaim,
                    again: false,
                    get: false,
                };
                if self.conn.is_none() || !self.jetstream {
                    self.answer(&claim, ClaimOutcome::Unconfirmed);
                } else if !self.stream_ready {
                    self.waiting_claims.push(claim);
                } else {
                    self.send_claim(claim);
                }
            }
            LinkOut::Release { nick, rev } if rev > 0 && self.conn.is_none() => {
                if self.offline_releases.len() >= OFFLINE_RELEASES {
                    self.offline_releases.pop_front();
                    lock(&self.health).dropped_offline += 1;
                }
                log::info!(
                    "link: nick {nick} was left while NATS is unreachable; its key is given back at reconnect"
                );
                self.offline_releases.push_back((nick, rev));
            }
            LinkOut::Release { nick, rev } => self.release(&nick, rev),
            LinkOut::Publish { route, event } => {
                let subject = match route {
                    Route::State => self.subjects.state.clone(),
                    Route::Channel(key) => self.subjects.channel(&key),
                    Route::Node(node) => self.subjects.node(&node),
                };
                let payload = wire::encode(&self.node, &Wire::Remote(event));
                self.publish(&subject, &payload);
            }
            LinkOut::Interest { key, on: true } => {
                if !self.interests.contains_key(&key) {
                    self.subscribe_channel(key);
                }
            }
            LinkOut::Interest { key, on: false } => {
                if let Some(sid) = self.interests.remove(&key) {
                    if self.conn.is_some() {
                        proto::write_unsub(&mut self.out, sid);
                    }
                }
            }
            LinkOut::Burst {
                to,
                users,
                channels,
            } => {
                let subject = match to {
                    Some(node) => self.subjects.node(&node),
                    None => self.subjects.state.clone(),
                };
                let start = Remote::BurstStart {
                    name: self.name.clone(),
                };
                let events = std::iter::once(start)
                    .chain(users.into_iter().map(Remote::Intro))
                    .chain(channels.into_iter().map(Remote::Channel))
                    .chain(std::iter::once(Remote::BurstEnd));
                for event in events {
                    let payload = wire::encode(&self.node, &Wire::Remote(event));
                    self.publish(&subject, &payload);
                }
            }
        }
    }

    // ----- the nick bucket -----------------------------------------------------------------

    /// Creates the bucket's stream (idempotent: the same config again is a success). One
    /// message per key; `deny_delete` off because a nick is given back by deleting exactly
    /// the revision that claimed it.
    fn create_stream(&mut self) {
        let s = &self.subjects;
        let config = format!(
            "{{\"name\":\"{}\",\"subjects\":[\"$KV.{}.>\"],\"retention\":\"limits\",\
             \"max_consumers\":-1,\"max_msgs\":-1,\"max_bytes\":-1,\"max_age\":0,\
             \"max_msgs_per_subject\":1,\"max_msg_size\":-1,\"discard\":\"new\",\
             \"storage\":\"file\",\"num_replicas\":1,\"duplicate_window\":120000000000,\
             \"allow_direct\":true,\"allow_rollup_hdrs\":true,\"deny_delete\":false,\
             \"deny_purge\":false}}",
            s.stream, s.bucket
        );
        let subject = format!("$JS.API.STREAM.CREATE.{}", s.stream);
        self.request(&subject, &[], config.as_bytes(), Pending::Stream);
    }

    /// A KV create: a put that succeeds only if the key has no value
    /// (`Nats-Expected-Last-Subject-Sequence: 0`). The value names the owner.
    fn send_claim(&mut self, claim: Claim) {
        let subject = self.subjects.nick_key(&claim.nick);
        let value = format!("{} {}", self.node, claim.id);
        let headers = [("Nats-Expected-Last-Subject-Sequence", "0")];
        self.request(&subject, &headers, value.as_bytes(), Pending::Claim(claim));
    }

    /// Gives `nick`'s key back if it still holds revision `rev` (publishes wait meanwhile).
    fn release(&mut self, nick: &str, rev: u64) {
        if self.conn.is_some() && self.jetstream && rev > 0 {
            self.releases += 1;
            self.delete_key(rev, Pending::Delete);
            log::debug!("link: releasing nick {nick} (revision {rev})");
        }
    }

    /// Deletes revision `seq` of the bucket: a no-op if the key holds another revision now,
    /// so a nick claimed again meanwhile is never removed.
    fn delete_key(&mut self, seq: u64, kind: Pending) {
        let subject = format!("$JS.API.STREAM.MSG.DELETE.{}", self.subjects.stream);
        let body = format!("{{\"seq\":{seq},\"no_erase\":true}}");
        self.request(&subject, &[], body.as_bytes(), kind);
    }

    fn answer(&mut self, claim: &Claim, outcome: ClaimOutcome) {
        if outcome == ClaimOutcome::Unconfirmed {
            lock(&self.health).unconfirmed += 1;
        }
        self.emit(LinkIn::Claimed {
            id: claim.id,
            nick: claim.nick.clone(),
            reclaim: claim.reclaim,
            outcome,
        });
    }

    fn on_reply(&mut self, kind: Pending, reply: Delivery) {
        let no_responders = reply.status() == Some(503);
        let doc = String::from_utf8_lossy(&reply.payload).into_owned();
        match kind {
            Pending::Stream => {
                match json::api_error(&doc) {
                    _ if no_responders => {
                        log::warn!(
                            "link: JetStream does not answer; nicks are not checked across nodes"
                        );
                        self.jetstream = false;
                    }
                    // 10058: the stream exists with another configuration: use it as it is.
                    None | Some((10058, _)) => self.stream_ready = true,
                    Some((code, text)) => {
                        log::warn!("link: cannot create the nick bucket: {text} ({code})");
                        self.jetstream = false;
                    }
                }
                // Keys given back while we were away, before any claim: a nick a user left
                // meanwhile is free again on the network (deleting that exact revision is a
                // no-op if the network already cleaned it up and someone claimed it since).
                let offline: Vec<(String, u64)> = self.offline_releases.drain(..).collect();
                if self.stream_ready && !offline.is_empty() {
                    log::info!(
                        "link: giving back {} nick(s) left while NATS was unreachable",
                        offline.len()
                    );
                    for (nick, rev) in offline {
                        self.release(&nick, rev);
                    }
                }
                let claims: Vec<Claim> = self.waiting_claims.drain(..).collect();
                for claim in claims {
                    if self.stream_ready {
                        self.send_claim(claim);
                    } else {
                        self.answer(&claim, ClaimOutcome::Unconfirmed);
                    }
                }
            }
            Pending::Claim(claim) if claim.get => self.on_current_owner(claim, &reply),
            Pending::Claim(mut claim) => match (json::api_error(&doc), json::number(&doc, "seq")) {
                _ if no_responders => self.answer(&claim, ClaimOutcome::Unconfirmed),
                (None, Some(seq)) => self.answer(&claim, ClaimOutcome::Won(seq)),
                // 10071: wrong last sequence, the key has a value: whose?
                (Some((10071, _)), _) if !claim.again => {
                    claim.get = true;
                    let subject = format!("$JS.API.DIRECT.GET.{}", self.subjects.stream);
                    let body = format!(
                        "{{\"last_by_subj\":\"{}\"}}",
                        self.subjects.nick_key(&claim.nick)
                    );
                    self.request(&subject, &[], body.as_bytes(), Pending::Claim(claim));
                }
                (Some((10071, _)), _) => self.answer(&claim, ClaimOutcome::Taken),
                (error, _) => {
                    log::warn!(
                        "link: nick claim for {} failed: {error:?} {doc}",
                        claim.nick
                    );
                    self.answer(&claim, ClaimOutcome::Unconfirmed);
                }
            },
            Pending::Stale(claim) => {
                // Deleted (or already gone): try once more; a loss now is a real one.
                self.send_claim(claim);
            }
            Pending::Delete => {
                if let Some((code, text)) = json::api_error(&doc) {
                    log::debug!("link: releasing a nick: {text} ({code})");
                }
                self.release_done();
            }
        }
    }

    /// The key of `claim`'s nick has a value. Ours (a reclaim after a short outage): won.
    /// A live node's: taken. A node not heard from since we are connected for longer than
    /// the dead-node time: the key is stale (its node died with no one left to clean up), so
    /// it is deleted (that exact revision) and the claim tried once more.
    fn on_current_owner(&mut self, mut claim: Claim, reply: &Delivery) {
        claim.get = false;
        if reply.status() == Some(404) && !claim.again {
            claim.again = true; // released between our create and our get
            self.send_claim(claim);
            return;
        }
        let seq = reply
            .header("Nats-Sequence")
            .and_then(|s| s.parse::<u64>().ok());
        let value = String::from_utf8_lossy(&reply.payload).into_owned();
        let (owner, uid) = value.split_once(' ').unwrap_or((value.as_str(), ""));
        let Some(seq) = seq.filter(|_| reply.status().is_none()) else {
            self.answer(&claim, ClaimOutcome::Unconfirmed);
            return;
        };
        if owner == &*self.node && uid == claim.id.to_string() {
            self.answer(&claim, ClaimOutcome::Won(seq));
            return;
        }
        let settled = self
            .conn
            .as_ref()
            .is_some_and(|c| c.since.elapsed() >= DEAD_AFTER);
        let live = owner == &*self.node || self.peers.contains_key(owner);
        if !live && settled && !claim.again {
            log::info!(
                "link: nick {} was held by node {owner}, which is gone: taking it over",
                claim.nick
            );
            claim.again = true;
            self.delete_key(seq, Pending::Stale(claim));
        } else {
            self.answer(&claim, ClaimOutcome::Taken);
        }
    }

    // ----- from NATS -------------------------------------------------------------------------

    fn on_op(&mut self, op: ServerOp) {
        match op {
            ServerOp::Ping => self.out.extend_from_slice(b"PONG\r\n"),
            ServerOp::Err(e) => {
                log::warn!("link: NATS says: {e}");
                lock(&self.health).last_error = Some(e);
            }
            ServerOp::Msg(m) if m.sid == SID_INBOX => {
                let token = m.subject.rsplit('.').next().and_then(|t| t.parse().ok());
                if let Some(request) = token.and_then(|t| self.pending.remove(&t)) {
                    self.on_reply(request.kind, m);
                }
            }
            ServerOp::Msg(m) => {
                if m.sid >= FIRST_CHANNEL_SID {
                    lock(&self.health).channel_messages += 1;
                }
                self.on_message(&m.payload)
            }
            ServerOp::Info(_) | ServerOp::Pong | ServerOp::Ok => {}
        }
    }

    fn on_message(&mut self, payload: &[u8]) {
        lock(&self.health).received += 1;
        let Some((node, wire)) = wire::decode(payload) else {
            lock(&self.health).malformed += 1;
            log::debug!(
                "link: malformed message {:?}",
                String::from_utf8_lossy(payload)
            );
            return;
        };
        if node == self.node {
            return;
        }
        match wire {
            Wire::Heartbeat(name) => self.heard(node, Some(name)),
            Wire::Hello(name) => {
                self.heard(node.clone(), Some(name));
                self.emit(LinkIn::BurstWanted { node });
            }
            Wire::Remote(event) => {
                self.heard(node.clone(), None);
                self.emit(LinkIn::Remote { node, event });
            }
        }
    }

    /// Node `node` is alive; its name, when it says it, goes to the broker once.
    fn heard(&mut self, node: NodeId, name: Option<String>) {
        let peer = self.peers.entry(node.clone()).or_insert(Peer {
            name: None,
            last: Instant::now(),
        });
        peer.last = Instant::now();
        if let Some(name) = name {
            if peer.name.as_ref() != Some(&name) {
                peer.name = Some(name.clone());
                self.emit(LinkIn::NodeSeen { node, name });
            }
        }
    }

    // ----- time ------------------------------------------------------------------------------

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.next_tick = now + TICK;
        if self.conn.is_some() && now >= self.next_heartbeat {
            self.next_heartbeat = now + HEARTBEAT;
            let hb = wire::encode(&self.node, &Wire::Heartbeat(self.name.clone()));
            let subject = self.subjects.hb.clone();
            self.publish(&subject, &hb);
        }
        let dead: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| now.duration_since(p.last) > DEAD_AFTER)
            .map(|(n, _)| n.clone())
            .collect();
        for node in dead {
            self.peers.remove(&node);
            // The lowest live id cleans up (deletes the dead node's nick keys).
            let clean = self.conn.is_some() && self.peers.keys().all(|p| *self.node < **p);
            log::warn!(
                "link: node {node} silent for {} s: declared dead",
                DEAD_AFTER.as_secs()
            );
            self.emit(LinkIn::NodeLost { node, clean });
        }
        lock(&self.health).nodes = self.peers.len();
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, r)| now.duration_since(r.at) > REQUEST_TIMEOUT)
            .map(|(&t, _)| t)
            .collect();
        for token in expired {
            let Some(request) = self.pending.remove(&token) else {
                continue;
            };
            match request.kind {
                Pending::Claim(c) | Pending::Stale(c) => {
                    log::warn!("link: no answer from JetStream for nick {}", c.nick);
                    self.answer(&c, ClaimOutcome::Unconfirmed);
                }
                Pending::Stream => {
                    log::warn!("link: no answer from JetStream creating the nick bucket");
                    let claims: Vec<Claim> = self.waiting_claims.drain(..).collect();
                    for claim in claims {
                        self.answer(&claim, ClaimOutcome::Unconfirmed);
                    }
                }
                Pending::Delete => self.release_done(),
            }
        }
    }
}

/// Waits for an op (when connected), a broker record (whichever is ready, fairly) or the tick.
/// Takes its own handles rather than borrowing the adapter, so the adapter need not be `Sync`.
async fn wait(
    ops: Option<async_channel::Receiver<io::Result<ServerOp>>>,
    from_broker: Option<async_channel::Receiver<LinkOut>>,
    tick: impl std::future::Future<Output = ()>,
) -> Woke {
    let ops = async {
        match ops {
            Some(ops) => Woke::Op(
                ops.recv()
                    .await
                    .unwrap_or_else(|_| Err(io::Error::other("the reader ended"))),
            ),
            None => future::pending().await,
        }
    };
    let out = async {
        match from_broker {
            Some(from_broker) => Woke::Out(from_broker.recv().await.ok()),
            None => future::pending().await,
        }
    };
    let tick = async {
        tick.await;
        Woke::Tick
    };
    future::or(future::race(ops, out), tick).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_safe_for_any_channel_or_network() {
        let s = Subjects::new("my net.*", "abc");
        assert!(s.state.starts_with("cn.x"));
        assert!(!s.state[3..].contains(' ') && !s.state.contains('*'));
        let chan = s.channel("#a.b*>");
        assert_eq!(chan.matches('.').count(), 3, "{chan}");
        assert_eq!(s.nick_key("Bob[]"), s.nick_key("bob{}"), "casefolded");
        assert!(proto::is_safe_token(
            s.nick_key("x").rsplit('.').next().unwrap()
        ));
    }

    #[test]
    fn link_urls() {
        let c = |url: &str| LinkConfig {
            url: url.into(),
            ..LinkConfig::default()
        };
        assert_eq!(c("nats://h").target().unwrap().addr, "h:4222");
        assert_eq!(c("127.0.0.1:5").target().unwrap().addr, "127.0.0.1:5");
        let target = c("nats://tok@h:1/").target().unwrap();
        assert_eq!(target.creds.token.as_deref(), Some("tok"));
        assert_eq!(target.security.host, "h");
        assert!(!target.security.require_tls);
        assert_eq!(c("nats://[::1]:7").target().unwrap().security.host, "[::1]");
        assert!(c("nats://").target().is_err());
        // tls:// without a CA to check the server with is refused at start, whatever the build.
        let err = c("tls://127.0.0.1:4222").target().unwrap_err();
        assert!(err.contains("--link-ca"), "{err}");
    }

    #[test]
    fn node_ids_differ() {
        assert_ne!(new_node_id(), new_node_id());
        assert_eq!(new_node_id().len(), 12);
    }
}
