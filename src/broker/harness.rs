//! An in-process harness for the broker: fake clients, exact lines, no sockets, no threads.
//!
//! The harness owns a [`Broker`] and drives it by hand through the same path a live node uses:
//! each fake client has a real [`RecvQueue`] and [`SendQueue`], its input goes through the
//! node's own line framing ([`LineBuffer`]) and parser, and the broker serves the queues in the
//! same round, parking included. [`Harness::settle`] runs the broker until it has nothing left
//! to do, so after every call the lines each client got are all there, in order.
//!
//! Work the broker offloads (OPER's password check) is not run until the test says so
//! ([`Harness::run_offloaded`]), which lets a test look at the moment in between: that is how
//! reply order around an offloaded command is tested.
//!
//! Time stands still unless the test moves it ([`Harness::advance`]): the broker reads the
//! harness's clock, so flood control's waits are exact and need no sleeping. With the default
//! configuration flood control is on, so one client's 26th command (PING and PONG aside) waits
//! until the clock moves: a test of something else that sends many commands from one client
//! sets `flood: FloodConfig::off()` (see [`super::FloodConfig::off`]).
//!
//! ```
//! use chatnode::broker::{harness::Harness, BrokerConfig};
//! let mut h = Harness::new(BrokerConfig::default());
//! let alice = h.register("alice");
//! let bob = h.register("bob");
//! h.send(alice, "JOIN #rust");
//! h.send(bob, "JOIN #rust");
//! h.take(alice); // alice's JOIN burst and bob's JOIN
//! h.take(bob); // bob's JOIN burst
//! h.send(bob, "PRIVMSG #rust :hello");
//! assert_eq!(h.take(alice), [":bob!bob@127.0.0.1 PRIVMSG #rust :hello"]);
//! assert!(h.take(bob).is_empty()); // no echo without echo-message
//! ```

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::inbox::{self, Inbox, RecvQueue};
use super::{send_queue, Broker, BrokerConfig, ClientId, Event, Outbound};
use crate::proto::framing::{Frame, LineBuffer};
use crate::proto::Message;

/// A job the broker handed to the (fake) blocking pool.
type Job = Box<dyn FnOnce() -> Event + Send>;

/// RecvQ capacity of a fake client, as the node's default.
const RECVQ_EVENTS: usize = 64;

/// RecvQ bytes of a throttled fake client, as the node's default `--recvq`.
pub const RECVQ_BYTES: usize = 16 * 1024;

/// SendQ of a fake client: large, so tests see every line unless they ask for a small one.
const SENDQ_BYTES: usize = 1 << 20;

struct FakeClient {
    recv: RecvQueue,
    out: Outbound,
    framing: LineBuffer,
    /// Lines received and not yet taken, as the writer would send them (CRLF included).
    lines: VecDeque<super::Line>,
    /// The broker forgot this client and its queue is finished.
    closed: bool,
}

/// A broker and its fake clients. See the [module docs](self).
pub struct Harness {
    broker: Broker,
    inbox: Inbox,
    clients: HashMap<ClientId, FakeClient>,
    next_id: ClientId,
    offloaded: Arc<Mutex<VecDeque<Job>>>,
    clock: Arc<Mutex<Instant>>,
}

impl Harness {
    /// A broker with `config` and no clients. Offloaded jobs are held until
    /// [`Harness::run_offloaded`], and the clock until [`Harness::advance`] (any `offload`,
    /// `clock` or `sleep` hook in `config` is replaced).
    pub fn new(mut config: BrokerConfig) -> Harness {
        let offloaded: Arc<Mutex<VecDeque<Job>>> = Arc::default();
        let jobs = offloaded.clone();
        config.hooks.offload = Some(Arc::new(move |job: Job| {
            jobs.lock().unwrap().push_back(job);
        }));
        let clock = Arc::new(Mutex::new(Instant::now()));
        let now = clock.clone();
        config.hooks.clock = Some(Arc::new(move || *now.lock().unwrap()));
        config.hooks.sleep = None; // the harness wakes the broker itself
        let (inbox, receiver) = inbox::open();
        Harness {
            broker: Broker::new(config, receiver),
            inbox,
            clients: HashMap::new(),
            next_id: 1,
            offloaded,
            clock,
        }
    }

    /// Moves the broker's clock on by `by`, then settles: clients that flood control held back
    /// until then go on.
    pub fn advance(&mut self, by: Duration) {
        *self.clock.lock().unwrap() += by;
        self.settle();
    }

    /// The earliest moment a client held back by flood control goes on, if any is.
    pub fn next_wake(&self) -> Option<Instant> {
        self.broker.wakes.next()
    }

    /// The broker's clock now.
    pub fn now(&self) -> Instant {
        *self.clock.lock().unwrap()
    }

    /// Bytes of input waiting in client `id`'s RecvQ.
    pub fn queued_bytes(&self, id: ClientId) -> usize {
        self.broker
            .clients
            .get(&id)
            .and_then(|c| c.recv.as_ref())
            .map_or(0, |r| r.queued_bytes())
    }

    /// A new connection from `127.0.0.1`, not registered.
    pub fn connect(&mut self) -> ClientId {
        let port = 40000 + (self.next_id % 20000) as u16;
        self.connect_from(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    /// A new connection from `peer`, with the harness's large SendQ.
    pub fn connect_from(&mut self, peer: SocketAddr) -> ClientId {
        self.connect_with_sendq(peer, SENDQ_BYTES)
    }

    /// A new connection from `peer` whose SendQ holds `sendq_bytes`.
    pub fn connect_with_sendq(&mut self, peer: SocketAddr, sendq_bytes: usize) -> ClientId {
        let id = self.next_id;
        self.next_id += 1;
        let (queue, out) = send_queue(sendq_bytes);
        let recv = self.inbox.recv_queue(id, RECVQ_EVENTS, RECVQ_BYTES);
        recv.push_final(Event::Connected {
            id,
            peer,
            queue,
            secure: false,
        });
        self.clients.insert(
            id,
            FakeClient {
                recv,
                out,
                framing: LineBuffer::new(),
                lines: VecDeque::new(),
                closed: false,
            },
        );
        self.settle();
        id
    }

    /// Connects and registers `nick` (user `nick`, realname `nick`), then discards the welcome
    /// burst.
    ///
    /// # Panics
    /// If the broker does not answer with 001.
    pub fn register(&mut self, nick: &str) -> ClientId {
        let id = self.connect();
        self.send(id, &format!("NICK {nick}"));
        self.send(id, &format!("USER {nick} 0 * :{nick}"));
        let burst = self.take(id);
        assert!(
            burst.iter().any(|l| l.split(' ').nth(1) == Some("001")),
            "{nick} did not register: {burst:?}"
        );
        id
    }

    /// Client `id` sends one line (CRLF is added), then the broker settles.
    pub fn send(&mut self, id: ClientId, line: &str) {
        self.send_raw(id, format!("{line}\r\n").as_bytes());
    }

    /// Client `id` sends raw bytes, framed and parsed as a connection does (a malformed line is
    /// dropped, an overlong one becomes 417), then the broker settles.
    pub fn send_raw(&mut self, id: ClientId, bytes: &[u8]) {
        self.queue_raw(id, bytes);
        self.settle();
    }

    /// Like [`Harness::send`] without settling: queue several clients' lines, then
    /// [`Harness::settle`] to see how the broker's round serves them.
    pub fn queue(&mut self, id: ClientId, line: &str) {
        self.queue_raw(id, format!("{line}\r\n").as_bytes());
    }

    fn queue_raw(&mut self, id: ClientId, mut bytes: &[u8]) {
        let client = self.clients.get_mut(&id).expect("no such fake client");
        while !bytes.is_empty() {
            let spare = client.framing.spare();
            let n = spare.len().min(bytes.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            client.framing.filled(n);
            bytes = &bytes[n..];
            while let Some(frame) = client.framing.next_frame() {
                let event = match frame {
                    Frame::TooLong => Event::LineTooLong { id },
                    Frame::Line(line) => match Message::parse(line) {
                        Ok(msg) => Event::Line { id, msg },
                        Err(_) => continue,
                    },
                };
                // Past the event bound on purpose (a test decides how much it queues), but
                // through the bounded path, so a throttled client is cut at RECVQ_BYTES.
                match client.recv.try_push(event) {
                    Err(inbox::HandOffError::Full(event)) => client.recv.push_final(*event),
                    Ok(()) | Err(inbox::HandOffError::Gone) => {}
                }
            }
        }
    }

    /// Delivers a control event (one no connection's queue carries), then settles.
    pub fn control(&mut self, event: Event) {
        self.broker.handle(event, None);
        self.settle();
    }

    /// Client `id`'s connection ends (EOF, reset): the broker hears it, then settles.
    pub fn hang_up(&mut self, id: ClientId, reason: &str) {
        let reason = reason.to_string();
        self.clients[&id]
            .recv
            .push_final(Event::Disconnected { id, reason });
        self.settle();
    }

    /// Runs the broker until its inbox is empty and no unparked client has events left.
    pub fn settle(&mut self) {
        let mut turn = Vec::new();
        loop {
            self.broker.wake_due();
            while let Ok(inbound) = self.broker.inbox.rx.try_recv() {
                let _ = self.broker.admit(inbound);
            }
            let Some(queue) = self.broker.next_ready() else {
                break;
            };
            self.broker.serve_turn(queue, &mut turn);
        }
        self.collect();
    }

    /// How many offloaded jobs wait.
    pub fn offloaded(&self) -> usize {
        self.offloaded.lock().unwrap().len()
    }

    /// Runs every waiting offloaded job, delivers its result to the broker, then settles.
    /// Returns how many ran.
    pub fn run_offloaded(&mut self) -> usize {
        let jobs: Vec<Job> = self.offloaded.lock().unwrap().drain(..).collect();
        let n = jobs.len();
        for job in jobs {
            let event = job();
            self.broker.handle(event, None);
        }
        self.settle();
        n
    }

    /// The lines client `id` got since the last call, CRLF removed.
    pub fn take(&mut self, id: ClientId) -> Vec<String> {
        self.take_raw(id)
            .iter()
            .map(|line| {
                let text = String::from_utf8_lossy(line);
                text.trim_end_matches("\r\n").to_string()
            })
            .collect()
    }

    /// The lines client `id` got since the last call, byte for byte as they would go out.
    pub fn take_raw(&mut self, id: ClientId) -> Vec<super::Line> {
        let Some(client) = self.clients.get_mut(&id) else {
            return Vec::new();
        };
        client.collect();
        client.lines.drain(..).collect()
    }

    /// The clients the harness knows and the broker has not forgotten.
    pub fn live_clients(&mut self) -> Vec<ClientId> {
        self.collect();
        let mut ids: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(_, c)| !c.closed)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The channels client `id` is in (casefolded names).
    pub fn channels_of(&self, id: ClientId) -> Vec<String> {
        self.broker
            .clients
            .get(&id)
            .map_or_else(Vec::new, |c| c.channels.clone())
    }

    /// Client `id`'s nick (`None` before it chose one, or once the broker forgot it).
    pub fn nick_of(&self, id: ClientId) -> Option<String> {
        self.broker
            .clients
            .get(&id)
            .map(|c| c.nick().to_string())
            .filter(|n| n != "*")
    }

    /// Whether client `id` is a member of channel `name` (any case).
    pub fn is_member(&self, id: ClientId, name: &str) -> bool {
        let key = crate::proto::casemap::casefold(name);
        self.broker
            .channels
            .get(&key)
            .is_some_and(|c| c.members.contains_key(&id))
    }

    /// Checks that the broker's nick table, clients and channel member lists agree (see
    /// `Broker::check_invariants`); `Err` names the first disagreement.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.broker.check_invariants()
    }

    /// Whether the broker forgot client `id` (its queue is finished: the connection closes).
    pub fn is_closed(&mut self, id: ClientId) -> bool {
        self.clients.get_mut(&id).is_none_or(|c| {
            c.collect();
            c.closed
        })
    }

    /// Whether `id`'s further commands are held back (an offloaded command is in flight, ...).
    pub fn is_parked(&self, id: ClientId) -> bool {
        self.broker.parking.is_parked(id)
    }

    /// The broker, for assertions on its state.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Moves every line queued for any client into its received lines.
    fn collect(&mut self) {
        for client in self.clients.values_mut() {
            client.collect();
        }
    }
}

impl FakeClient {
    /// Moves the lines queued for this client into its received lines; notes when the broker
    /// has forgotten it.
    fn collect(&mut self) {
        if self.closed {
            return;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.out.poll_take_all(&mut cx, &mut self.lines) {
            // Finished too? Ask again: Ready(false) once drained and forgotten.
            Poll::Ready(true) => {
                if let Poll::Ready(false) = self.out.poll_take_all(&mut cx, &mut self.lines) {
                    self.closed = true;
                }
            }
            Poll::Ready(false) => self.closed = true,
            Poll::Pending => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker config with one operator, `admin`, password `pw`.
    fn with_operator_admin_pw() -> BrokerConfig {
        let hash = crate::auth::hash_password("pw", b"0123456789abcdef").unwrap();
        BrokerConfig {
            operators: vec![super::super::Operator {
                name: "admin".into(),
                password_hash: hash,
            }],
            ..BrokerConfig::default()
        }
    }

    #[test]
    fn lines_arrive_in_order_and_closing_is_seen() {
        let mut h = Harness::new(BrokerConfig::default());
        let a = h.register("alice");
        h.send(a, "PING one");
        h.send(a, "PING two");
        let lines = h.take(a);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("PONG chatnode.local :one"), "{lines:?}");
        assert!(lines[1].ends_with(":two"), "{lines:?}");
        h.send(a, "QUIT :bye");
        assert!(h.is_closed(a));
        let last = h.take(a);
        assert!(last.last().unwrap().starts_with("ERROR :Closing Link"));
    }

    #[test]
    fn overlong_and_malformed_input_take_the_connection_path() {
        let mut h = Harness::new(BrokerConfig::default());
        let a = h.register("alice");
        let long = format!("PRIVMSG #x :{}\r\n", "y".repeat(600));
        h.send_raw(a, long.as_bytes());
        h.send_raw(a, b"\r\n:onlysource\r\nPING x\r\n");
        let lines = h.take(a);
        assert!(lines[0].contains(" 417 "), "{lines:?}");
        assert!(lines[1].contains("PONG"), "{lines:?}");
        assert_eq!(lines.len(), 2, "{lines:?}");
    }

    #[test]
    fn an_offloaded_command_holds_back_only_its_clients_later_commands() {
        let config = with_operator_admin_pw();
        let mut h = Harness::new(config);
        let a = h.register("alice");
        let b = h.register("bob");
        h.queue(a, "OPER admin pw");
        h.queue(a, "PING after-oper");
        h.queue(b, "PING bob");
        h.settle();
        assert!(h.is_parked(a));
        assert_eq!(h.offloaded(), 1);
        assert!(
            h.take(a).is_empty(),
            "nothing for alice until the check is done"
        );
        assert!(h.take(b)[0].ends_with(":bob"), "bob is served meanwhile");
        assert_eq!(h.run_offloaded(), 1);
        let lines = h.take(a);
        assert!(lines[0].contains(" 381 "), "{lines:?}");
        assert!(lines[1].contains(" MODE alice :+o"), "{lines:?}");
        assert!(lines[2].ends_with(":after-oper"), "{lines:?}");
        assert!(!h.is_parked(a));
    }

    #[test]
    fn a_client_parked_mid_turn_keeps_the_rest_of_its_turn() {
        let config = with_operator_admin_pw();
        let mut h = Harness::new(config);
        let a = h.register("alice");
        h.queue(a, "PING 0");
        h.queue(a, "OPER admin bad");
        for i in 1..40 {
            h.queue(a, &format!("PING {i}"));
        }
        h.settle();
        assert_eq!(h.take(a).len(), 1, "only the PING before OPER is answered");
        h.run_offloaded();
        let lines = h.take(a);
        assert!(lines[0].contains(" 464 "), "{lines:?}");
        let pongs: Vec<_> = lines[1..]
            .iter()
            .map(|l| l.rsplit(':').next().unwrap())
            .collect();
        let want: Vec<String> = (1..40).map(|i| i.to_string()).collect();
        assert_eq!(pongs, want);
    }

    #[test]
    fn a_parked_client_that_hangs_up_is_forgotten() {
        let config = with_operator_admin_pw();
        let mut h = Harness::new(config);
        let a = h.register("alice");
        h.send(a, "OPER admin pw");
        h.control(Event::Disconnected {
            id: a,
            reason: "reset".into(),
        });
        assert!(h.is_closed(a));
        assert!(!h.is_parked(a));
        h.run_offloaded(); // the late answer finds nobody: no panic
        let b = h.register("alice"); // the nick is free again
        assert!(!h.is_closed(b));
    }
}
