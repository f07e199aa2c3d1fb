//! Hash maps keyed by [`ClientId`], with a multiplicative hash instead of SipHash.
//!
//! Why: the broker looks a client up in `clients` (and a channel's members) for every message
//! it relays, and std's default hasher, SipHash-1-3, is built to resist keys chosen by an
//! attacker, at a price (SipHash was 3 % of the node's user time in `perf` of `loadgen pairs
//! --clients 200`, 2 Dec 2026, text keys included). A [`ClientId`] is never chosen by anyone
//! outside: the node numbers its connections 1, 2, 3, ... and the users of linked nodes from
//! 2^62 up, itself. So one multiplication by an odd constant (Fibonacci hashing, as rustc's
//! FxHash) is enough: it is a bijection, consecutive ids get distinct low bits (the bucket
//! index), and their high bits (hashbrown's tag) differ.
//! Maps keyed by text a client sends (nicks, channel names) keep SipHash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::ClientId;

/// 2^64 / φ, odd: multiplication by it permutes the `u64`s and spreads low bits upward.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The hasher of [`IdMap`]: for integer keys only (bytes are folded in one at a
/// time, correct but slow).
///
/// ```
/// use std::hash::BuildHasher;
/// use chatnode::broker::ids::BuildIdHasher;
/// let build = BuildIdHasher::default();
/// assert_ne!(build.hash_one(1u64), build.hash_one(2u64));
/// assert_eq!(build.hash_one(7u64), build.hash_one(7u64), "the same in every process");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(GOLDEN);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`IdHasher`]s.
pub type BuildIdHasher = BuildHasherDefault<IdHasher>;

/// A map from client ids.
///
/// ```
/// use chatnode::broker::ids::IdMap;
/// let mut nicks: IdMap<&str> = IdMap::default();
/// nicks.insert(1, "alice");
/// assert_eq!(nicks.get(&1), Some(&"alice"));
/// ```
pub type IdMap<V> = HashMap<ClientId, V, BuildIdHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_ids_spread_over_buckets_and_tags() {
        let build = BuildIdHasher::default();
        let hashes: Vec<u64> = (1..=1024u64).map(|id| build.hash_one(id)).collect();
        let buckets: HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        assert_eq!(buckets.len(), 1024, "a bijection on the low bits");
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(tags.len() >= 100, "high 7 bits: {} distinct", tags.len());
    }
}
