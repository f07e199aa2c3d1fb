//! The broker's own run loop, [`Broker::run`], which the harness does not use (it drives the
//! broker by hand): when to wait and when not to, yielding to other tasks, the flood-control
//! timer, and both ways the loop ends.
//!
//! The loop runs for real here, on one thread next to the test's driver
//! (`futures_lite::future::zip`), as on a one-thread node: a loop that waits when it has work,
//! or never waits, or never yields, stalls the driver or shows in what the driver sees between
//! two of its polls. Each test runs on a thread of its own with a deadline, so a stalled loop
//! fails the test instead of hanging it. No sleeping: the timer is the test's.

use std::collections::VecDeque;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatnode::broker::{
    inbox, send_queue, Broker, BrokerConfig, ClientId, Event, Hooks, Inbox, Line, Outbound,
    RecvQueue, EVENTS_PER_TURN,
};
use chatnode::proto::Message;
use futures_lite::future::{block_on, zip};

/// Generous: every test here is done in milliseconds unless the loop stalls.
const DEADLINE: Duration = Duration::from_secs(30);

/// The broker yields to other tasks after this many events (`EVENTS_PER_YIELD` in
/// src/broker/mod.rs). It counts them after each turn, so up to one turn more goes by.
const EVENTS_PER_YIELD: usize = 128;

/// Runs `test` on a thread of its own and waits for it at most [`DEADLINE`]: a run loop that
/// stalls fails the test instead of hanging it.
fn within_deadline(test: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        test();
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(DEADLINE) {
        Ok(()) => thread.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(thread.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the broker's run loop stalled: the test did not finish in {DEADLINE:?}")
        }
    }
}

/// A fake connection's two ends: what it tells the broker, what the broker sends it.
struct Conn {
    id: ClientId,
    recv: RecvQueue,
    out: Outbound,
    lines: VecDeque<Line>,
}

impl Conn {
    /// A connection whose RecvQ holds `capacity` events.
    fn open(inbox: &Inbox, id: ClientId, capacity: usize) -> Conn {
        let (queue, out) = send_queue(1 << 20);
        let recv = inbox.recv_queue(id, capacity, 1 << 20);
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 40000 + id as u16));
        recv.push_final(Event::Connected {
            id,
            peer,
            queue,
            secure: false,
        });
        Conn {
            id,
            recv,
            out,
            lines: VecDeque::new(),
        }
    }

    /// Queues one line from the client (no CRLF).
    fn send(&self, line: &str) {
        let msg = Message::parse(line.as_bytes()).unwrap();
        let event = Event::Line { id: self.id, msg };
        assert!(self.recv.try_push(event).is_ok(), "RecvQ full");
    }

    /// The next line the broker sent; `None` once it forgot the client and all was read.
    async fn next_line(&mut self) -> Option<String> {
        if self.lines.is_empty() && !self.out.take_all(&mut self.lines).await {
            return None;
        }
        let line = self.lines.pop_front()?;
        Some(String::from_utf8_lossy(&line).trim_end().to_string())
    }

    /// Waits for a line containing `needle`, skipping others.
    async fn expect(&mut self, needle: &str) -> String {
        loop {
            match self.next_line().await {
                Some(line) if line.contains(needle) => return line,
                Some(_) => {}
                None => panic!("closed while waiting for {needle:?}"),
            }
        }
    }

    /// The lines already sent, without waiting.
    fn sent_so_far(&mut self) -> Vec<String> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let _ = self.out.poll_take_all(&mut cx, &mut self.lines);
        self.lines
            .drain(..)
            .map(|l| String::from_utf8_lossy(&l).trim_end().to_string())
            .collect()
    }

    /// Every line left on `out` until the broker forgets its client.
    async fn rest_of(out: &mut Outbound) -> Vec<String> {
        let mut batch = VecDeque::new();
        while out.take_all(&mut batch).await {}
        batch
            .iter()
            .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
            .collect()
    }

    /// Every line until the broker forgets the client.
    async fn rest(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.next_line().await {
            lines.push(line);
        }
        lines
    }
}

/// A connection that has sent NICK and USER (answered once the loop runs).
fn registering(inbox: &Inbox, id: ClientId, capacity: usize, nick: &str) -> Conn {
    let conn = Conn::open(inbox, id, capacity);
    conn.send(&format!("NICK {nick}"));
    conn.send(&format!("USER {nick} 0 * :{nick}"));
    conn
}

/// Runs a broker with `config` on this thread beside the future `driver` makes from the
/// broker's inbox, until both end.
fn run_beside<F: Future<Output = ()>>(config: BrokerConfig, driver: impl FnOnce(Inbox) -> F) {
    let (inbox, receiver) = inbox::open();
    let broker = Broker::new(config, receiver);
    block_on(zip(broker.run(), driver(inbox)));
}

fn assert_said_goodbye(lines: &[String]) {
    assert_eq!(
        lines.last().map(String::as_str),
        Some("ERROR :Server shutting down"),
        "{lines:?}"
    );
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

#[test]
fn the_loop_serves_clients_and_says_goodbye_on_shutdown() {
    within_deadline(|| {
        run_beside(BrokerConfig::default(), |inbox| async move {
            let mut alice = registering(&inbox, 1, 64, "alice");
            alice.expect(" 001 alice ").await;
            // Input that arrives while the loop is idle wakes it.
            alice.send("PING one");
            assert!(alice.expect("PONG").await.ends_with(":one"));
            assert!(inbox.send(Event::Shutdown).await);
            assert_said_goodbye(&alice.rest().await);
        });
    });
}

#[test]
fn the_loop_ends_when_every_sender_is_gone_and_says_goodbye() {
    within_deadline(|| {
        run_beside(BrokerConfig::default(), |inbox| async move {
            let mut alice = registering(&inbox, 1, 64, "alice");
            alice.expect(" 001 alice ").await;
            // The node's listeners and connections are gone: nothing can reach the broker.
            drop(inbox);
            let Conn { recv, mut out, .. } = alice;
            drop(recv);
            assert_said_goodbye(&Conn::rest_of(&mut out).await);
        });
    });
}

#[test]
fn a_client_with_several_turns_of_input_is_served_to_the_end_with_nothing_new_arriving() {
    within_deadline(|| {
        run_beside(BrokerConfig::default(), |inbox| {
            // Queued before the loop starts: 42 events, three turns (EVENTS_PER_TURN is 16),
            // posted on the inbox once.
            let mut alice = registering(&inbox, 1, 64, "alice");
            for i in 0..40 {
                alice.send(&format!("PING {i}"));
            }
            async move {
                for i in 0..40 {
                    let pong = alice.expect("PONG").await;
                    assert!(pong.ends_with(&format!(":{i}")), "{pong}");
                }
                assert!(inbox.send(Event::Shutdown).await);
            }
        });
    });
}

#[test]
fn a_busy_loop_yields_to_the_other_tasks_on_its_thread() {
    within_deadline(|| {
        let (inbox, receiver) = inbox::open();
        let broker = Broker::new(BrokerConfig::default(), receiver);
        let alice = registering(&inbox, 1, 400, "alice");
        for i in 0..300 {
            alice.send(&format!("PING {i}"));
        }
        // Another task on the broker's thread: how many PONGs went out between two of its
        // polls. Without yielding, the broker would answer all 300 before it ran once.
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        let probe = async move {
            let mut pongs = 0;
            while pongs < 300 {
                let mut batch = VecDeque::new();
                assert!(alice.out.take_all(&mut batch).await);
                let n = batch
                    .iter()
                    .filter(|l| String::from_utf8_lossy(l).contains(" PONG "))
                    .count();
                seen.lock().unwrap().push(n);
                pongs += n;
            }
            assert!(inbox.send(Event::Shutdown).await);
        };
        block_on(zip(broker.run(), probe));
        let batches = batches.lock().unwrap();
        assert!(batches.len() >= 2, "the broker never yielded: {batches:?}");
        assert!(
            batches
                .iter()
                .all(|&n| n <= EVENTS_PER_YIELD + EVENTS_PER_TURN),
            "{batches:?}"
        );
    });
}

/// A clock the test moves, and a timer the test fires: the broker's `clock` and `sleep` hooks.
struct FakeTime {
    now: Arc<Mutex<Instant>>,
    /// The durations the broker asked its timer for, in order.
    asked: async_channel::Receiver<Duration>,
    /// Fires the timer the broker holds.
    fire: async_channel::Sender<()>,
}

/// What the `sleep` hook returns.
type Timer = Pin<Box<dyn Future<Output = ()> + Send>>;

fn fake_time() -> (FakeTime, Hooks) {
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock_now = now.clone();
    let (asked_tx, asked) = async_channel::unbounded();
    let (fire, fired) = async_channel::unbounded::<()>();
    let hooks = Hooks {
        clock: Some(Arc::new(move || *clock_now.lock().unwrap())),
        sleep: Some(Arc::new(move |d| -> Timer {
            let _ = asked_tx.try_send(d);
            let fired = fired.clone();
            Box::pin(async move {
                let _ = fired.recv().await;
            })
        })),
        ..Hooks::default()
    };
    (FakeTime { now, asked, fire }, hooks)
}

#[test]
fn a_client_held_back_by_flood_control_is_woken_by_the_timer_alone() {
    within_deadline(|| {
        let (time, hooks) = fake_time();
        let config = BrokerConfig {
            hooks,
            ..BrokerConfig::default()
        };
        run_beside(config, |inbox| async move {
            let mut alice = registering(&inbox, 1, 64, "alice");
            for _ in 0..30 {
                alice.send("TIME");
            }
            // NICK and USER took 2 tokens of the 25: 23 TIMEs now, then one per 250 ms.
            let quarter = Duration::from_millis(250);
            assert_eq!(time.asked.recv().await.unwrap(), quarter);
            assert_eq!(count(&alice.sent_so_far(), " 391 alice "), 23);
            for n in 0..7 {
                // Nothing else arrives: only the timer can wake the loop.
                *time.now.lock().unwrap() += quarter;
                time.fire.send(()).await.unwrap();
                alice.expect(" 391 alice ").await;
                if n < 6 {
                    assert_eq!(time.asked.recv().await.unwrap(), quarter, "step {n}");
                }
                assert_eq!(count(&alice.sent_so_far(), " 391 "), 0, "step {n}");
            }
            assert!(inbox.send(Event::Shutdown).await);
            assert!(time.asked.is_empty(), "no timer once nobody is held back");
        });
    });
}

/// On a linked node, shutting down tells the network that each registered local user quits
/// (and gives its nick back), and nobody else: not a connection that never registered.
#[cfg(feature = "link")]
#[test]
fn on_shutdown_a_linked_node_says_only_its_registered_users_quit() {
    use chatnode::broker::link::{ClaimOutcome, LinkHooks, LinkIn, LinkOut, Remote};
    within_deadline(|| {
        let (sink, records) = async_channel::bounded(64);
        let mut config = BrokerConfig::default();
        config.hooks.link = Some(LinkHooks {
            node: "n0".into(),
            sink,
            health: Arc::new(Vec::new),
        });
        run_beside(config, |inbox| async move {
            let mut alice = registering(&inbox, 1, 64, "alice");
            let pending = Conn::open(&inbox, 2, 64);
            pending.send("NICK zed");
            let claim = records.recv().await.unwrap();
            assert!(matches!(&claim, LinkOut::Claim { id: 1, .. }), "{claim:?}");
            let won = LinkIn::Claimed {
                id: 1,
                nick: "alice".into(),
                reclaim: false,
                outcome: ClaimOutcome::Won(3),
            };
            assert!(inbox.send(Event::Link(won)).await);
            alice.expect(" 001 alice ").await;
            let intro = records.recv().await.unwrap();
            assert!(matches!(intro, LinkOut::Publish { .. }), "{intro:?}");
            assert!(inbox.send(Event::Shutdown).await);
            assert_said_goodbye(&alice.rest().await);
            let told: Vec<LinkOut> = std::iter::from_fn(|| records.try_recv().ok()).collect();
            assert!(
                matches!(
                    &told[..],
                    [
                        LinkOut::Release { rev: 3, .. },
                        LinkOut::Publish {
                            event: Remote::Quit { uid: 1, .. },
                            ..
                        }
                    ]
                ),
                "{told:?}"
            );
            drop(pending);
        });
    });
}

/// A client whose command waits on offloaded work (OPER's password check) is parked: a line it
/// sends meanwhile waits too, so its replies leave in the order of its commands. The line that
/// arrives while it is parked reaches the loop as a new "ready" RecvQ, which the loop must hold
/// aside, not serve.
#[test]
fn a_line_sent_while_parked_waits_for_the_command_before_it() {
    within_deadline(|| {
        let hash = chatnode::auth::hash_password("pw", b"0123456789abcdef").unwrap();
        let (jobs_in, jobs) = async_channel::unbounded::<Box<dyn FnOnce() -> Event + Send>>();
        let hooks = Hooks {
            offload: Some(Arc::new(move |job| {
                jobs_in.try_send(job).unwrap();
            })),
            ..Hooks::default()
        };
        let config = BrokerConfig {
            hooks,
            operators: vec![chatnode::broker::Operator {
                name: "admin".into(),
                password_hash: hash,
            }],
            ..BrokerConfig::default()
        };
        run_beside(config, |inbox| async move {
            let mut alice = registering(&inbox, 1, 64, "alice");
            let mut bob = registering(&inbox, 2, 64, "bob");
            alice.expect(" 001 ").await;
            bob.expect(" 001 ").await;
            alice.send("OPER admin pw");
            let job = jobs.recv().await.unwrap(); // alice is parked now
            alice.send("PING during");
            // bob's PONG comes after the loop has taken alice's new line in (it came first).
            bob.send("PING fence");
            bob.expect("PONG").await;
            assert_eq!(count(&alice.sent_so_far(), "PONG"), 0, "held while parked");
            assert!(inbox.send(job()).await);
            assert!(alice.expect(" 381 ").await.contains(" 381 alice "));
            alice.expect("PONG").await;
            assert!(inbox.send(Event::Shutdown).await);
        });
    });
}
