//! Flood control: a token bucket per client, and fakelag through the parking mechanism.
//!
//! Every command a client sends costs one token, plus one more per full [`BYTES_PER_TOKEN`]
//! bytes of its line (tags included), except `PING` and `PONG`, which are free (a client must
//! always be able to prove it is alive). A client holds at most [`FloodConfig::burst`] tokens and
//! earns [`FloodConfig::rate`] per second, so a pasted block of up to `burst` ordinary lines goes
//! through at once and a client that keeps sending faster than `rate` is served at `rate`.
//!
//! **Why bytes count.** What a flood costs the node and the channel is bytes relayed, not
//! lines: a 510-byte line costs every member 50 times what a 10-byte one does. ircu charges
//! `2 + length/120` seconds of penalty per command, and ngIRCd throttles a client that reads in
//! more than 256 bytes a second as well as one that sends too many commands; Ergo's fakelag
//! counts messages only.
//! Here a line under 128 bytes (almost all chat) costs 1 token, a full 510-byte line 4, and a
//! line with kilobytes of client tags at most `burst` (so any line can pass once the bucket is
//! full: nothing is refused for its size here, the 512-byte and tag bounds do that).
//!
//! **Fakelag.** A command that finds no token is not refused: it goes back to the front of the
//! client's RecvQ and the client is parked ([`super::parking`]) until the moment its next token
//! is due. Its RecvQ is not served meanwhile; everyone else goes on. While a client waits like
//! this its RecvQ is *throttled*: it is bounded in bytes rather than in events, and a client
//! whose unserved input grows past `--recvq` is cut with `Excess Flood` (see
//! [`super::inbox`]). A well-behaved client is never throttled, so a broker that is merely busy
//! still pushes back through TCP instead of cutting anyone.
//!
//! **Waking.** The broker has no runtime, so it keeps one list of wake times ([`Wakes`]) and
//! the run loop waits on one timer, for the earliest of them, made by the runtime's `sleep`
//! hook ([`super::Hooks::sleep`]). The harness moves a fake clock instead.
//!
//! The bucket is [`crate::rate::Bucket`]: one `Instant` per client, no counters to refill.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::ClientId;
use crate::cidr::Cidr;
use crate::proto::Message;

/// Flood-control settings.
#[derive(Clone, Debug)]
pub struct FloodConfig {
    /// Commands per second a client may keep sending (`--flood-rate`). 0 turns flood control
    /// off.
    pub rate: f64,
    /// Commands a client may send at once after a quiet spell (`--flood-burst`).
    pub burst: u32,
    /// IRC operators are not limited (`--flood-opers exempt|limited`).
    pub exempt_opers: bool,
    /// Clients from these ranges are not limited (`--exempt`, shared with the per-address
    /// limits).
    pub exempt: Vec<Cidr>,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            rate: 4.0,
            burst: 25,
            exempt_opers: true,
            exempt: Vec::new(),
        }
    }
}

impl FloodConfig {
    /// Flood control off (rate 0): for harness tests that send many commands while the
    /// harness's clock stands still, and test something else than flood control.
    ///
    /// ```
    /// use chatnode::broker::{BrokerConfig, FloodConfig};
    /// let config = BrokerConfig { flood: FloodConfig::off(), ..BrokerConfig::default() };
    /// assert_eq!(config.flood.rate, 0.0);
    /// ```
    pub fn off() -> FloodConfig {
        FloodConfig {
            rate: 0.0,
            ..FloodConfig::default()
        }
    }

    /// The time one token takes to come back; `None` when flood control is off.
    fn interval(&self) -> Option<Duration> {
        (self.rate > 0.0 && self.rate.is_finite()).then(|| Duration::from_secs_f64(1.0 / self.rate))
    }
}

/// One client's bucket.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bucket(crate::rate::Bucket);

impl Bucket {
    /// A full bucket.
    pub fn new(now: Instant) -> Bucket {
        Bucket(crate::rate::Bucket::new(now))
    }

    /// Spends `cost` tokens for a command at `now` (see [`cost_of`]): `Ok` if there were that
    /// many, otherwise `Err(when)`, the moment enough are back (nothing is spent).
    pub fn spend(&mut self, now: Instant, config: &FloodConfig, cost: u32) -> Result<(), Instant> {
        match config.interval() {
            Some(interval) => self.0.spend_n(now, interval, config.burst, cost),
            None => Ok(()),
        }
    }
}

/// A line costs one token more per this many bytes.
pub const BYTES_PER_TOKEN: usize = 128;

/// What a line over 512 bytes (answered with 417 and dropped) costs: as much as the longest
/// line, so sending overlong lines is no cheaper than sending long ones.
pub(super) const TOO_LONG_COST: u32 = 1 + (512 / BYTES_PER_TOKEN) as u32;

/// The tokens a command costs: 0 for `PING` and `PONG`, otherwise 1 plus 1 per full
/// [`BYTES_PER_TOKEN`] bytes of the line as received without CRLF (tags, source, command and
/// parameters: the parser's view, within a few bytes of the wire). The bucket caps it at the burst.
pub(super) fn cost_of(msg: &Message) -> u32 {
    if matches!(msg.command.as_str(), "PING" | "PONG") {
        return 0;
    }
    let tags = msg.tags.as_ref().map_or(0, |t| t.len() + 2);
    let source = msg.source.as_ref().map_or(0, |s| s.len() + 2);
    let params: usize = msg.params.iter().map(|p| p.len() + 1).sum();
    // + 1 for the trailing parameter's ':' (if any); CRLF not counted.
    let len = tags + source + msg.command.len() + params + 1;
    u32::try_from(1 + len / BYTES_PER_TOKEN).unwrap_or(u32::MAX)
}

/// Throttled clients and when each may go on, earliest first. Holds at most one entry per
/// throttled client (a throttled client sends nothing more until it is woken), plus entries of
/// clients that left while throttled, which are dropped when their time comes: both bounded by
/// the number of clients.
#[derive(Default)]
pub(super) struct Wakes {
    heap: BinaryHeap<Reverse<(Instant, ClientId)>>,
}

impl Wakes {
    /// Client `id` may go on at `at`.
    pub fn add(&mut self, at: Instant, id: ClientId) {
        self.heap.push(Reverse((at, id)));
    }

    /// The earliest wake time, if anyone waits.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes one client whose time has come by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<ClientId> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, id))| id),
            _ => None,
        }
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }

    /// Takes every entry, due or not.
    pub fn drain(&mut self) -> Vec<ClientId> {
        self.heap.drain().map(|Reverse((_, id))| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_through_then_the_rate_holds() {
        let config = FloodConfig {
            rate: 4.0,
            burst: 20,
            ..FloodConfig::default()
        };
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        for _ in 0..20 {
            b.spend(t0, &config, 1).unwrap();
        }
        let wake = b.spend(t0, &config, 1).unwrap_err();
        assert_eq!(wake - t0, Duration::from_millis(250));
        b.spend(wake, &config, 1).unwrap();
        assert!(b.spend(wake, &config, 1).is_err());
        // A quiet spell refills the bucket completely, and no further.
        let later = wake + Duration::from_secs(60);
        for _ in 0..20 {
            b.spend(later, &config, 1).unwrap();
        }
        assert!(b.spend(later, &config, 1).is_err());
    }

    #[test]
    fn rate_zero_is_off() {
        let config = FloodConfig {
            rate: 0.0,
            ..FloodConfig::default()
        };
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        for _ in 0..10_000 {
            b.spend(t0, &config, 4).unwrap();
        }
    }

    #[test]
    fn wakes_come_out_earliest_first() {
        let t0 = Instant::now();
        let mut w = Wakes::default();
        w.add(t0 + Duration::from_secs(2), 2);
        w.add(t0 + Duration::from_secs(1), 1);
        assert_eq!(w.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(w.pop_due(t0), None);
        assert_eq!(w.pop_due(t0 + Duration::from_secs(5)), Some(1));
        assert_eq!(w.pop_due(t0 + Duration::from_secs(5)), Some(2));
        assert_eq!(w.next(), None);
    }
}

/// Flood control end to end through the broker, on the harness's clock.
#[cfg(test)]
mod broker_tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use crate::broker::harness::{Harness, RECVQ_BYTES};
    use crate::broker::{BrokerConfig, FloodConfig};

    /// Two clients in #c; alice has spent her registration commands and her JOIN.
    fn two_in_a_channel(config: BrokerConfig) -> (Harness, u64, u64) {
        let mut h = Harness::new(config);
        let alice = h.register("alice");
        let bob = h.register("bob");
        h.send(alice, "JOIN #c");
        h.send(bob, "JOIN #c");
        h.take(alice);
        h.take(bob);
        (h, alice, bob)
    }

    fn privmsgs(lines: &[String]) -> usize {
        lines.iter().filter(|l| l.contains(" PRIVMSG #c ")).count()
    }

    #[test]
    fn a_pasted_block_of_20_lines_goes_through_at_once() {
        let (mut h, alice, bob) = two_in_a_channel(BrokerConfig::default());
        for i in 0..20 {
            h.queue(alice, &format!("PRIVMSG #c :line {i}"));
        }
        h.settle();
        assert_eq!(privmsgs(&h.take(bob)), 20);
        assert!(!h.is_parked(alice));
    }

    #[test]
    fn a_sustained_sender_is_slowed_to_the_rate_not_dropped_and_others_go_on() {
        let (mut h, alice, bob) = two_in_a_channel(BrokerConfig::default());
        for i in 0..60 {
            h.queue(alice, &format!("PRIVMSG #c :line {i}"));
        }
        h.settle();
        // NICK, USER and JOIN took three tokens of the 25.
        assert_eq!(privmsgs(&h.take(bob)), 22);
        assert!(h.is_parked(alice));
        let wake = h.next_wake().expect("alice waits for a token");
        assert_eq!(wake - h.now(), Duration::from_millis(250));
        // Bob is served meanwhile, at once.
        h.send(bob, "PRIVMSG #c :still here");
        assert_eq!(
            privmsgs(&h.take(alice)),
            1,
            "alice still gets lines at once"
        );
        h.send(bob, "PING bob");
        assert!(h.take(bob)[0].ends_with(":bob"));
        // Each quarter second lets one more of alice's lines through, in order.
        for n in 0..38 {
            h.advance(Duration::from_millis(250));
            let got = h.take(bob);
            assert_eq!(privmsgs(&got), 1, "step {n}: {got:?}");
            assert!(got[0].ends_with(&format!(":line {}", 22 + n)), "{got:?}");
        }
        assert!(!h.is_parked(alice));
        assert!(!h.is_closed(alice));
        assert_eq!(h.next_wake(), None);
    }

    #[test]
    fn ping_and_pong_cost_nothing() {
        let (mut h, alice, _bob) = two_in_a_channel(BrokerConfig::default());
        for i in 0..22 {
            h.queue(alice, &format!("PRIVMSG #c :line {i}"));
        }
        for i in 0..200 {
            h.queue(alice, &format!("PING {i}"));
            h.queue(alice, "PONG x");
        }
        h.settle();
        assert_eq!(h.take(alice).len(), 200, "every PING answered, no wait");
        assert!(!h.is_parked(alice));
    }

    #[test]
    fn an_exempt_range_is_not_limited() {
        let config = BrokerConfig {
            flood: FloodConfig {
                exempt: vec!["10.0.0.0/8".parse().unwrap()],
                ..FloodConfig::default()
            },
            ..BrokerConfig::default()
        };
        let mut h = Harness::new(config);
        let bob = h.register("bob");
        h.send(bob, "JOIN #c");
        let gw = h.connect_from(SocketAddr::from(([10, 1, 2, 3], 5000)));
        h.send(gw, "NICK gw");
        h.send(gw, "USER gw 0 * :gw");
        h.send(gw, "JOIN #c");
        h.take(bob);
        for i in 0..500 {
            h.queue(gw, &format!("PRIVMSG #c :{i}"));
        }
        h.settle();
        assert_eq!(privmsgs(&h.take(bob)), 500);
    }

    #[test]
    fn rate_zero_turns_flood_control_off() {
        let config = BrokerConfig {
            flood: FloodConfig {
                rate: 0.0,
                ..FloodConfig::default()
            },
            ..BrokerConfig::default()
        };
        let (mut h, alice, bob) = two_in_a_channel(config);
        for i in 0..300 {
            h.queue(alice, &format!("PRIVMSG #c :{i}"));
        }
        h.settle();
        assert_eq!(privmsgs(&h.take(bob)), 300);
    }

    #[test]
    fn operators_are_exempt_by_setting() {
        let hash = crate::auth::hash_password("pw", b"0123456789abcdef").unwrap();
        for exempt_opers in [true, false] {
            let config = BrokerConfig {
                operators: vec![crate::broker::Operator {
                    name: "admin".into(),
                    password_hash: hash.clone(),
                }],
                flood: FloodConfig {
                    exempt_opers,
                    ..FloodConfig::default()
                },
                ..BrokerConfig::default()
            };
            let (mut h, alice, bob) = two_in_a_channel(config);
            h.send(alice, "OPER admin pw");
            h.run_offloaded();
            h.take(alice);
            for i in 0..100 {
                h.queue(alice, &format!("PRIVMSG #c :{i}"));
            }
            h.settle();
            let want = if exempt_opers { 100 } else { 21 };
            assert_eq!(privmsgs(&h.take(bob)), want, "exempt_opers {exempt_opers}");
        }
    }

    #[test]
    fn a_flood_past_recvq_is_cut_with_excess_flood() {
        let (mut h, alice, bob) = two_in_a_channel(BrokerConfig::default());
        let text = "x".repeat(300);
        let mut sent = 0;
        while !h.is_closed(alice) {
            h.queue(alice, &format!("PRIVMSG #c :{text}"));
            h.settle();
            sent += 1;
            assert!(sent < 1000, "never cut");
            assert!(h.queued_bytes(alice) <= RECVQ_BYTES);
        }
        // 7 went through (3 tokens each: 300 bytes and more), then ~16 KiB of 370-byte lines
        // waited, then the cut.
        assert!((45..65).contains(&sent), "cut after {sent} lines");
        let last = h.take(alice);
        assert_eq!(
            last.last().unwrap(),
            "ERROR :Closing Link: 127.0.0.1 (Excess Flood)"
        );
        let seen = h.take(bob);
        assert_eq!(privmsgs(&seen), 7);
        assert!(
            seen.last().unwrap().ends_with(" QUIT :Excess Flood"),
            "{seen:?}"
        );
        assert!(h.next_wake().is_some(), "a stale wake may stay...");
        h.advance(Duration::from_secs(1)); // ...and finds nobody: no panic
        assert_eq!(h.next_wake(), None);
    }

    #[test]
    fn long_lines_cost_more_than_short_ones() {
        let (mut h, alice, bob) = two_in_a_channel(BrokerConfig::default());
        // "PRIVMSG #c :" and 400 bytes: 412 bytes, 1 + 412 / 128 = 4 tokens.
        let long = "y".repeat(400);
        for i in 0..10 {
            h.queue(alice, &format!("PRIVMSG #c :{i}{long}"));
        }
        h.settle();
        // 22 tokens left after NICK, USER and JOIN: 5 long lines, not 22.
        assert_eq!(privmsgs(&h.take(bob)), 5);
        // The sixth needs 4 tokens and finds 2: it waits for 2 more (500 ms)...
        assert_eq!(h.next_wake().unwrap() - h.now(), Duration::from_millis(500));
        h.advance(Duration::from_millis(499));
        assert_eq!(privmsgs(&h.take(bob)), 0);
        h.advance(Duration::from_millis(1));
        assert_eq!(privmsgs(&h.take(bob)), 1);
        // ...then one long line a second (4 tokens at 4 a second), where short ones would go
        // four a second.
        for _ in 0..4 {
            assert_eq!(h.next_wake().unwrap() - h.now(), Duration::from_secs(1));
            h.advance(Duration::from_secs(1));
            assert_eq!(privmsgs(&h.take(bob)), 1);
        }
        assert!(!h.is_parked(alice));
    }

    #[test]
    fn an_overlong_line_costs_more_than_the_longest_line_that_fits() {
        let (mut h, alice, _bob) = two_in_a_channel(BrokerConfig::default());
        // The longest line that fits costs 4 tokens (see the next test but one); an overlong
        // one is charged as a 512-byte line would be, 1 + 512 / 128 = 5, so padding a line
        // past the limit never makes it cheaper. 22 tokens left: four 417s, not five.
        let overlong = format!("PRIVMSG #c :{}", "x".repeat(600));
        for _ in 0..6 {
            h.queue(alice, &overlong);
        }
        h.settle();
        let too_long = |lines: Vec<String>| lines.iter().filter(|l| l.contains(" 417 ")).count();
        assert_eq!(too_long(h.take(alice)), 4);
        // The fifth needs 5 tokens and finds 2: it waits for 3 more.
        assert_eq!(h.next_wake().unwrap() - h.now(), Duration::from_millis(750));
        h.advance(Duration::from_millis(750));
        assert_eq!(too_long(h.take(alice)), 1);
    }

    #[test]
    fn a_line_costs_at_most_the_burst_so_heavy_tags_still_pass_once_the_bucket_is_full() {
        let (mut h, alice, bob) = two_in_a_channel(BrokerConfig::default());
        // About 4000 bytes of client tags: 32 tokens by size, capped at the burst of 25.
        let tags = format!("@+x={}", "t".repeat(4000));
        h.queue(alice, &format!("{tags} PRIVMSG #c :heavy"));
        h.settle();
        assert_eq!(privmsgs(&h.take(bob)), 0, "22 tokens are not enough");
        assert_eq!(h.next_wake().unwrap() - h.now(), Duration::from_millis(750));
        h.advance(Duration::from_millis(750));
        assert_eq!(privmsgs(&h.take(bob)), 1, "a full bucket pays for it");
    }

    #[test]
    fn the_cost_of_a_line_follows_its_length() {
        use crate::broker::flood::cost_of;
        use crate::proto::Message;
        let cost = |line: &str| cost_of(&Message::parse(line.as_bytes()).unwrap());
        assert_eq!(cost("PING x"), 0);
        assert_eq!(cost("PONG x"), 0);
        assert_eq!(cost("PRIVMSG #c :hi"), 1);
        let at = |n: usize| format!("PRIVMSG #c :{}", "z".repeat(n - "PRIVMSG #c :".len()));
        assert_eq!(cost(&at(127)), 1);
        assert_eq!(cost(&at(128)), 2);
        assert_eq!(cost(&at(510)), 4);
        assert_eq!(cost(&format!(":nick!u@h {}", at(300))), 3);
        // Tags count as sent: `@` and the space after them too (12 bytes here).
        let tagged = |n: usize| format!("@k=vvvvvvvv {}", at(n - 12));
        assert_eq!(cost(&tagged(127)), 1);
        assert_eq!(cost(&tagged(128)), 2);
        // So do the source and its `:` and space (10 bytes here).
        let sourced = |n: usize| format!(":nick!u@h {}", at(n - 10));
        assert_eq!(cost(&sourced(127)), 1);
        assert_eq!(cost(&sourced(128)), 2);
    }
}
