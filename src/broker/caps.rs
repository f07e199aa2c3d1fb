//! The IRCv3 capabilities this node offers, and the set one client has enabled.
//!
//! A [`Caps`] is a bit set, `Copy`, so the broker keeps a copy in every channel membership
//! ([`super::state::Member::caps`]) and the fanout loop picks each recipient's form of a
//! message without looking the client up. Invariant: a member's copy always equals its
//! client's set (CAP REQ updates both, see `commands::cap`).
//!
//! The set of offered capabilities never changes while the node runs, so `CAP NEW` and
//! `CAP DEL` are never sent; `cap-notify` is still offered (and implied by `CAP LS 302`) so
//! that clients which want it can rely on it.

/// A set of capabilities, one bit each.
///
/// ```
/// use chatnode::broker::caps::{Caps, by_name};
/// let mut caps = Caps::NONE;
/// caps.insert(by_name("server-time").unwrap());
/// assert!(caps.has(Caps::SERVER_TIME));
/// assert!(!caps.has(Caps::MESSAGE_TAGS));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps(u16);

impl Caps {
    /// No capability.
    pub const NONE: Caps = Caps(0);
    /// `cap-notify`: CAP NEW/DEL (implied by CAP LS 302).
    pub const CAP_NOTIFY: Caps = Caps(1);
    /// `message-tags`: any tag, client-only tags relayed, TAGMSG, msgid.
    pub const MESSAGE_TAGS: Caps = Caps(1 << 1);
    /// `server-time`: the `time` tag.
    pub const SERVER_TIME: Caps = Caps(1 << 2);
    /// `echo-message`: one's own PRIVMSG/NOTICE/TAGMSG come back.
    pub const ECHO_MESSAGE: Caps = Caps(1 << 3);
    /// `multi-prefix`: every membership prefix in NAMES, WHO and WHOIS.
    pub const MULTI_PREFIX: Caps = Caps(1 << 4);
    /// `away-notify`: AWAY of channel peers.
    pub const AWAY_NOTIFY: Caps = Caps(1 << 5);
    /// `extended-join`: JOIN carries account (`*`) and realname.
    pub const EXTENDED_JOIN: Caps = Caps(1 << 6);
    /// `userhost-in-names`: NAMES lists `nick!user@host`.
    pub const USERHOST_IN_NAMES: Caps = Caps(1 << 7);
    /// `invite-notify`: INVITEs into one's channels.
    pub const INVITE_NOTIFY: Caps = Caps(1 << 8);
    /// `setname`: SETNAME of oneself and channel peers.
    pub const SETNAME: Caps = Caps(1 << 9);
    /// `batch`: BATCH-grouped replies.
    pub const BATCH: Caps = Caps(1 << 10);
    /// `labeled-response`: replies carry the command's `label`.
    pub const LABELED_RESPONSE: Caps = Caps(1 << 11);
    /// `draft/chathistory`: the client scrolls back with CHATHISTORY (no replay on JOIN).
    pub const CHATHISTORY: Caps = Caps(1 << 12);
    /// `draft/event-playback`: history batches include JOIN, PART, QUIT, KICK, TOPIC, NICK, MODE.
    pub const EVENT_PLAYBACK: Caps = Caps(1 << 13);

    /// Whether every capability of `other` is in `self`.
    pub const fn has(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any capability of `other` is in `self`.
    pub const fn any(self, other: Caps) -> bool {
        self.0 & other.0 != 0
    }

    /// Adds `other`.
    pub fn insert(&mut self, other: Caps) {
        self.0 |= other.0;
    }

    /// Removes `other`.
    pub fn remove(&mut self, other: Caps) {
        self.0 &= !other.0;
    }

    /// The union of `self` and `other`.
    pub const fn with(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }
}

/// Every capability this node knows: name and bit, in the order `CAP LS` lists them. None has
/// a value. A node without history leaves `draft/chathistory` and `draft/event-playback` out
/// of `CAP LS` and refuses them in `CAP REQ` (see `commands::cap`).
pub const OFFERED: &[(&str, Caps)] = &[
    ("away-notify", Caps::AWAY_NOTIFY),
    ("batch", Caps::BATCH),
    ("cap-notify", Caps::CAP_NOTIFY),
    ("draft/chathistory", Caps::CHATHISTORY),
    ("draft/event-playback", Caps::EVENT_PLAYBACK),
    ("echo-message", Caps::ECHO_MESSAGE),
    ("extended-join", Caps::EXTENDED_JOIN),
    ("invite-notify", Caps::INVITE_NOTIFY),
    ("labeled-response", Caps::LABELED_RESPONSE),
    ("message-tags", Caps::MESSAGE_TAGS),
    ("multi-prefix", Caps::MULTI_PREFIX),
    ("server-time", Caps::SERVER_TIME),
    ("setname", Caps::SETNAME),
    ("userhost-in-names", Caps::USERHOST_IN_NAMES),
];

/// The bit of the offered capability `name` (names are case-sensitive).
pub fn by_name(name: &str) -> Option<Caps> {
    OFFERED.iter().find(|(n, _)| *n == name).map(|&(_, c)| c)
}

/// The names of the capabilities in `caps`, in [`OFFERED`] order.
pub fn names(caps: Caps) -> impl Iterator<Item = &'static str> {
    OFFERED
        .iter()
        .filter(move |(_, c)| caps.has(*c))
        .map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_is_a_union_even_of_what_is_there_already() {
        assert_eq!(Caps::BATCH.with(Caps::BATCH), Caps::BATCH);
        let both = Caps::BATCH.with(Caps::SETNAME);
        assert_eq!(both.with(Caps::BATCH), both);
        assert!(both.has(Caps::BATCH) && both.has(Caps::SETNAME));
    }

    #[test]
    fn bits_are_distinct_and_names_round_trip() {
        let mut all = Caps::NONE;
        for &(name, cap) in OFFERED {
            assert!(!all.any(cap), "{name} shares a bit");
            all.insert(cap);
            assert_eq!(by_name(name), Some(cap));
        }
        assert_eq!(names(all).count(), OFFERED.len());
        assert_eq!(by_name("SERVER-TIME"), None, "case-sensitive");
    }
}
