//! A token bucket in its GCRA form: one `Instant` of state, nothing to refill.
//!
//! Flood control (commands per client) and the per-address connection throttle share it. The
//! bucket holds `burst` tokens and gets one back every `interval`; instead of a token count it
//! keeps the moment it would be full again. A spend that finds no token costs nothing, so a
//! sender that keeps trying while refused is not held back any longer than one that waits.

use std::time::{Duration, Instant};

/// One bucket.
///
/// ```
/// use chatnode::rate::Bucket;
/// use std::time::{Duration, Instant};
/// let t0 = Instant::now();
/// let second = Duration::from_secs(1);
/// let mut b = Bucket::new(t0);
/// assert!(b.spend(t0, second, 2).is_ok());
/// assert!(b.spend(t0, second, 2).is_ok());
/// assert_eq!(b.spend(t0, second, 2), Err(t0 + second)); // the next token is due in a second
/// assert!(b.spend(t0 + second, second, 2).is_ok());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    /// When the bucket would be full again: each spend pushes it one interval later.
    full_at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(now: Instant) -> Bucket {
        Bucket { full_at: now }
    }

    /// Spends a token at `now` from a bucket of `burst` tokens refilled one per `interval`:
    /// `Ok` if there was one, otherwise `Err(when)`, the moment the next token is due
    /// (nothing is spent).
    pub fn spend(&mut self, now: Instant, interval: Duration, burst: u32) -> Result<(), Instant> {
        self.spend_n(now, interval, burst, 1)
    }

    /// Spends `cost` tokens at once (at least 1, at most `burst`, so that any cost can be paid
    /// from a full bucket): `Ok` if there were that many, otherwise `Err(when)`, the moment
    /// enough are back (nothing is spent).
    ///
    /// ```
    /// use chatnode::rate::Bucket;
    /// use std::time::{Duration, Instant};
    /// let t0 = Instant::now();
    /// let second = Duration::from_secs(1);
    /// let mut b = Bucket::new(t0);
    /// assert!(b.spend_n(t0, second, 5, 4).is_ok()); // 1 token left
    /// assert_eq!(b.spend_n(t0, second, 5, 3), Err(t0 + 2 * second)); // 2 more are needed
    /// assert!(b.spend_n(t0, second, 5, 1).is_ok());
    /// ```
    pub fn spend_n(
        &mut self,
        now: Instant,
        interval: Duration,
        burst: u32,
        cost: u32,
    ) -> Result<(), Instant> {
        let burst = burst.max(1);
        let cost = cost.clamp(1, burst);
        let full_at = self.full_at.max(now);
        // `cost` more may go while the bucket is at most `burst - cost` intervals from full.
        let tolerance = interval * (burst - cost);
        if full_at > now + tolerance {
            return Err(full_at - tolerance);
        }
        self.full_at = full_at + interval * cost;
        Ok(())
    }

    /// Whether the bucket is full at `now` (its owner may forget it).
    pub fn is_full(&self, now: Instant) -> bool {
        self.full_at <= now
    }
}
