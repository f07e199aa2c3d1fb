//! WHOWAS memory: who recently used a nick, bounded.
//!
//! The broker records a client's identity when it leaves (QUIT, disconnect) or changes its
//! nick. The memory holds at most [`WhoWas::capacity`] entries; at the bound the oldest entry
//! is forgotten, so a node that sees many nicks keeps a fixed, small cost (a few hundred bytes
//! per entry).

use std::collections::VecDeque;
use std::time::SystemTime;

use crate::proto::casemap;

/// Entries kept by default.
pub const DEFAULT_CAPACITY: usize = 256;

/// One former user of a nick.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The nick as it was shown.
    pub nick: String,
    /// Its casefolded form, for look-ups.
    folded: String,
    /// Username.
    pub user: String,
    /// Host.
    pub host: String,
    /// Realname.
    pub realname: String,
    /// When the nick was given up.
    pub at: SystemTime,
}

/// The bounded memory. See the [module docs](self).
///
/// ```
/// use chatnode::broker::whowas::WhoWas;
/// let mut w = WhoWas::new(2);
/// for nick in ["a", "b", "A"] {
///     w.record(nick, "u", "h", "r");
/// }
/// let found: Vec<_> = w.lookup("a").map(|e| e.nick.as_str()).collect();
/// assert_eq!(found, ["A"]); // the oldest "a" was forgotten at the bound; newest first
/// ```
#[derive(Debug)]
pub struct WhoWas {
    entries: VecDeque<Entry>,
    capacity: usize,
}

impl WhoWas {
    /// An empty memory of at most `capacity` entries.
    pub fn new(capacity: usize) -> WhoWas {
        WhoWas {
            entries: VecDeque::new(),
            capacity,
        }
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Remembers that `nick` was given up now; forgets the oldest entry at the bound.
    pub fn record(&mut self, nick: &str, user: &str, host: &str, realname: &str) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            nick: nick.to_string(),
            folded: casemap::casefold(nick),
            user: user.to_string(),
            host: host.to_string(),
            realname: realname.to_string(),
            at: SystemTime::now(),
        });
    }

    /// Entries for `nick` (any case), newest first.
    pub fn lookup<'a>(&'a self, nick: &str) -> impl Iterator<Item = &'a Entry> + 'a {
        let folded = casemap::casefold(nick);
        self.entries
            .iter()
            .rev()
            .filter(move |e| e.folded == folded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_the_capacity_it_was_made_with_and_holds() {
        let mut w = WhoWas::new(3);
        assert_eq!(w.capacity(), 3);
        for nick in ["a", "a", "a", "a", "a"] {
            w.record(nick, "u", "h", "r");
        }
        assert_eq!(w.lookup("a").count(), w.capacity());
    }
}
