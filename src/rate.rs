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
        let full_at = self.full_at.max(now);
        // One more may go while the bucket is less than `burst` intervals from full.
        let tolerance = interval * burst.saturating_sub(1);
        if full_at > now + tolerance {
            return Err(full_at - tolerance);
        }
        self.full_at = full_at + interval;
        Ok(())
    }

    /// Whether the bucket is full at `now` (its owner may forget it).
    pub fn is_full(&self, now: Instant) -> bool {
        self.full_at <= now
    }
}
