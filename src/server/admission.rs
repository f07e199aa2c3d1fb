//! Per-address limits, checked when a connection is accepted.
//!
//! Two limits per address (an IPv4 address, or an IPv6 /64 by default: one subscriber can use
//! any address in its /64): how many connections it holds at once, and how many new ones it may
//! open per window. A refused connection gets an `ERROR` line saying which limit, and a log line
//! (at most one a second; the rest are counted into the next).
//!
//! **No permanent lock-out.** The window is a token bucket of `connects` tokens refilled over
//! `window`, and a refused attempt costs nothing: however long a reconnect storm lasts, a host
//! that stops is admitted again at most one window later (ngIRCd's throttle, which counted
//! refused attempts too, locked a host out for as long as its clients kept retrying).
//!
//! **Bounded.** An address is tracked while it holds a connection or its bucket is not full
//! again; [`MAX_TRACKED_BEYOND_CLIENTS`] more addresses than `--max-clients` at most. Past that
//! (a flood from very many addresses inside one window) new addresses are refused until entries
//! expire, with their own `ERROR` reason.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::cidr::{address_key, Cidr};
use crate::rate::Bucket;

/// Per-address limit settings.
#[derive(Clone, Debug)]
pub struct AddressLimits {
    /// Most connections one address holds at once (`--max-per-address`).
    pub per_address: usize,
    /// IPv6 addresses count per prefix of this many bits (`--ipv6-prefix`, 64).
    pub ipv6_prefix: u8,
    /// New connections one address may open per `window` (`--connects-per-window`).
    pub connects: usize,
    /// The window (`--connect-window`).
    pub window: Duration,
    /// Addresses the limits (and flood control) do not apply to (`--exempt`, repeatable).
    pub exempt: Vec<Cidr>,
}

impl Default for AddressLimits {
    fn default() -> Self {
        AddressLimits {
            per_address: 8,
            ipv6_prefix: 64,
            connects: 12,
            window: Duration::from_secs(60),
            exempt: Vec::new(),
        }
    }
}

/// How many more addresses than `--max-clients` the table tracks at most.
pub const MAX_TRACKED_BEYOND_CLIENTS: usize = 4096;

/// Why a connection is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The address holds its share of connections.
    TooMany(usize),
    /// The address opened its share of connections in this window; retry after the duration.
    TooFast(usize, Duration, Duration),
    /// Too many addresses are tracked (a flood from very many addresses).
    Busy,
    /// The node holds `--max-clients` connections (whatever their addresses).
    NodeFull(usize),
}

impl Refusal {
    /// The text of the `ERROR` line.
    pub fn reason(&self) -> String {
        match self {
            Refusal::TooMany(n) => {
                format!("Too many connections from your address, the limit is {n}")
            }
            Refusal::TooFast(n, window, retry) => format!(
                "Connecting too fast: at most {n} connections per {} seconds, try again in {} seconds",
                crate::decimal::Seconds(*window),
                retry.as_secs() + u64::from(retry.subsec_nanos() > 0)
            ),
            Refusal::Busy => "Server busy, try again later".into(),
            Refusal::NodeFull(n) => format!("Too many connections, the limit is {n}"),
        }
    }
}

struct Entry {
    /// Connections open now.
    live: usize,
    /// New connections.
    bucket: Bucket,
}

/// The addresses seen recently and what they hold.
pub struct Admission {
    limits: AddressLimits,
    table: HashMap<IpAddr, Entry>,
    capacity: usize,
    log: RefusalLog,
}

/// What [`Admission::admit`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Counted against this key: call [`Admission::release`] with it when the connection ends.
    Counted(IpAddr),
    /// Exempt: nothing to release.
    Exempt,
}

impl Admission {
    /// A table for at most `max_clients` connections.
    pub fn new(limits: AddressLimits, max_clients: usize) -> Admission {
        Admission {
            limits,
            table: HashMap::new(),
            capacity: max_clients.saturating_add(MAX_TRACKED_BEYOND_CLIENTS),
            log: RefusalLog::default(),
        }
    }

    /// New limits (REHASH) for the connections accepted from now on. Connections already
    /// counted stay counted; an address over a lowered limit keeps what it holds but gets no
    /// more until it is under it. The IPv6 prefix stays the one the table was made with (its
    /// keys are prefixes of that length): changing it needs a restart.
    ///
    /// ```
    /// use chatnode::server::admission::{Admission, AddressLimits, Refusal};
    /// use std::time::Instant;
    /// let one = AddressLimits { per_address: 1, ..AddressLimits::default() };
    /// let mut a = Admission::new(one, 100);
    /// let (ip, now) = ("192.0.2.1".parse().unwrap(), Instant::now());
    /// a.admit(ip, now).unwrap();
    /// assert_eq!(a.admit(ip, now), Err(Refusal::TooMany(1)));
    /// a.set_limits(AddressLimits { per_address: 2, ..AddressLimits::default() }, 100);
    /// assert!(a.admit(ip, now).is_ok());
    /// ```
    pub fn set_limits(&mut self, limits: AddressLimits, max_clients: usize) {
        let ipv6_prefix = self.limits.ipv6_prefix;
        self.limits = AddressLimits {
            ipv6_prefix,
            ..limits
        };
        self.capacity = max_clients.saturating_add(MAX_TRACKED_BEYOND_CLIENTS);
    }

    /// Decides on a new connection from `ip` at `now`.
    ///
    /// ```
    /// use chatnode::server::admission::{Admission, AddressLimits, Admit, Refusal};
    /// use std::time::{Duration, Instant};
    /// let limits = AddressLimits { per_address: 1, ..AddressLimits::default() };
    /// let mut a = Admission::new(limits, 100);
    /// let now = Instant::now();
    /// let ip = "192.0.2.1".parse().unwrap();
    /// let Ok(Admit::Counted(key)) = a.admit(ip, now) else { panic!() };
    /// assert_eq!(a.admit(ip, now), Err(Refusal::TooMany(1)));
    /// a.release(key);
    /// assert!(a.admit(ip, now).is_ok());
    /// ```
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<Admit, Refusal> {
        if Cidr::any_contains(&self.limits.exempt, ip) {
            return Ok(Admit::Exempt);
        }
        let key = address_key(ip, self.limits.ipv6_prefix);
        if !self.table.contains_key(&key) && self.table.len() >= self.capacity {
            self.sweep(now);
            if self.table.len() >= self.capacity {
                return Err(Refusal::Busy);
            }
        }
        let limits = &self.limits;
        let entry = self.table.entry(key).or_insert(Entry {
            live: 0,
            bucket: Bucket::new(now),
        });
        if entry.live >= limits.per_address {
            return Err(Refusal::TooMany(limits.per_address));
        }
        if limits.connects > 0 {
            let burst = u32::try_from(limits.connects).unwrap_or(u32::MAX);
            let interval = limits.window / burst;
            if let Err(due) = entry.bucket.spend(now, interval, burst) {
                let retry = due - now;
                return Err(Refusal::TooFast(limits.connects, limits.window, retry));
            }
        }
        entry.live += 1;
        Ok(Admit::Counted(key))
    }

    /// A connection counted against `key` ended. Its entry goes once it holds nothing and its
    /// bucket is full again (at the next sweep).
    pub fn release(&mut self, key: IpAddr) {
        if let Some(entry) = self.table.get_mut(&key) {
            entry.live = entry.live.saturating_sub(1);
        }
    }

    /// Drops entries that hold nothing and whose bucket is full: called now and then (each
    /// accept does it when the table is full; [`Admission::sweep_if_due`] otherwise).
    pub fn sweep(&mut self, now: Instant) {
        self.table
            .retain(|_, e| e.live > 0 || !e.bucket.is_full(now));
    }

    /// Sweeps when the table has doubled since the last sweep: amortized O(1) per accept.
    pub fn sweep_if_due(&mut self, now: Instant, last_len: &mut usize) {
        if self.table.len() > (*last_len).max(64) * 2 {
            self.sweep(now);
            *last_len = self.table.len();
        }
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.table.len()
    }

    /// Logs a refusal, at most one line a second; the others are counted into the next line.
    pub fn log_refusal(&mut self, peer: std::net::SocketAddr, refusal: &Refusal, now: Instant) {
        if let Some(more) = self.log.allow(now) {
            let also = if more > 0 {
                format!(" ({more} more refused since the last such line)")
            } else {
                String::new()
            };
            log::warn!("refused {peer}: {}{also}", refusal.reason());
        }
    }
}

/// At most one log line a second.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RefusalLog {
    /// `Some(suppressed since the last line)` if a line may be written now.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < Duration::from_secs(1) => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_address_limit_counts_ipv6_by_prefix() {
        let limits = AddressLimits {
            per_address: 2,
            connects: 100,
            ..AddressLimits::default()
        };
        let mut a = Admission::new(limits, 10);
        let now = Instant::now();
        let k1 = a.admit(ip("2001:db8::1"), now).unwrap();
        a.admit(ip("2001:db8::2"), now).unwrap();
        assert_eq!(a.admit(ip("2001:db8::3"), now), Err(Refusal::TooMany(2)));
        assert!(a.admit(ip("2001:db8:0:1::1"), now).is_ok(), "another /64");
        let Admit::Counted(k1) = k1 else { panic!() };
        a.release(k1);
        assert!(a.admit(ip("2001:db8::3"), now).is_ok());
    }

    #[test]
    fn a_storm_is_throttled_and_the_host_is_served_again_within_the_window() {
        let limits = AddressLimits {
            connects: 4,
            window: Duration::from_secs(8),
            ..AddressLimits::default()
        };
        let mut a = Admission::new(limits, 10);
        let t0 = Instant::now();
        let host = ip("198.51.100.7");
        for _ in 0..4 {
            let Ok(Admit::Counted(key)) = a.admit(host, t0) else {
                panic!()
            };
            a.release(key);
        }
        // The storm goes on for a long time: refused attempts cost nothing.
        for s in 0..100 {
            let at = t0 + Duration::from_millis(s * 10);
            assert!(matches!(a.admit(host, at), Err(Refusal::TooFast(4, _, _))));
        }
        // One token back every 2 s, all four back after one window.
        assert!(a.admit(host, t0 + Duration::from_secs(2)).is_ok());
        let later = t0 + Duration::from_secs(2) + Duration::from_secs(8);
        for _ in 0..4 {
            assert!(a.admit(host, later).is_ok());
        }
        assert!(a.admit(ip("198.51.100.8"), t0).is_ok(), "others unaffected");
    }

    #[test]
    fn exempt_ranges_skip_the_limits() {
        let limits = AddressLimits {
            per_address: 1,
            connects: 1,
            exempt: vec!["127.0.0.0/8".parse().unwrap()],
            ..AddressLimits::default()
        };
        let mut a = Admission::new(limits, 10);
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(a.admit(ip("127.0.0.1"), now), Ok(Admit::Exempt));
        }
        assert_eq!(a.tracked(), 0);
    }

    #[test]
    fn the_table_is_bounded_and_expires() {
        let limits = AddressLimits {
            connects: 2,
            window: Duration::from_secs(10),
            ..AddressLimits::default()
        };
        let mut a = Admission::new(limits, 0);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_BEYOND_CLIENTS as u32 {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let Ok(Admit::Counted(key)) = a.admit(addr, t0) else {
                panic!()
            };
            a.release(key);
        }
        assert_eq!(a.admit(ip("192.0.2.1"), t0), Err(Refusal::Busy));
        // Once their buckets are full again, the entries go.
        assert!(a
            .admit(ip("192.0.2.1"), t0 + Duration::from_secs(6))
            .is_ok());
        assert_eq!(a.tracked(), 1);
    }

    #[test]
    fn the_refusal_log_writes_a_line_a_second_and_counts_the_rest() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(log.allow(t0), Some(0), "the first refusal is logged");
        for ms in (10..1000).step_by(10) {
            assert_eq!(
                log.allow(t0 + Duration::from_millis(ms)),
                None,
                "at {ms} ms"
            );
        }
        // A second after the last line: one line, carrying the 99 left out.
        assert_eq!(log.allow(t0 + Duration::from_secs(1)), Some(99));
        assert_eq!(log.allow(t0 + Duration::from_millis(1500)), None);
        // A quiet spell changes nothing but the count.
        assert_eq!(log.allow(t0 + Duration::from_secs(60)), Some(1));
        assert_eq!(log.allow(t0 + Duration::from_secs(61)), Some(0));
    }

    #[test]
    fn new_limits_apply_to_the_next_connection_and_keep_the_ipv6_prefix() {
        let mut a = Admission::new(
            AddressLimits {
                per_address: 1,
                connects: 0,
                ..AddressLimits::default()
            },
            10,
        );
        let now = Instant::now();
        let Ok(Admit::Counted(key)) = a.admit(ip("2001:db8::1"), now) else {
            panic!()
        };
        assert_eq!(a.admit(ip("2001:db8::2"), now), Err(Refusal::TooMany(1)));
        a.set_limits(
            AddressLimits {
                per_address: 2,
                ipv6_prefix: 128,
                connects: 0,
                exempt: vec!["192.0.2.0/24".parse().unwrap()],
                ..AddressLimits::default()
            },
            10,
        );
        // Still counted per /64 (the table's keys), now two per prefix.
        assert!(a.admit(ip("2001:db8::2"), now).is_ok());
        assert_eq!(a.admit(ip("2001:db8::3"), now), Err(Refusal::TooMany(2)));
        assert_eq!(a.admit(ip("192.0.2.9"), now), Ok(Admit::Exempt));
        // Lowered again: what is held stays held, and nothing more comes in until under it.
        a.set_limits(
            AddressLimits {
                per_address: 1,
                connects: 0,
                ..AddressLimits::default()
            },
            10,
        );
        a.release(key);
        assert_eq!(a.admit(ip("2001:db8::4"), now), Err(Refusal::TooMany(1)));
    }
}
