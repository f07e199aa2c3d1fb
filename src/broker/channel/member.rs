//! A member's place in a channel, and the channel's modes.

use crate::broker::caps::Caps;
use crate::broker::SendQueue;

/// A member's place in a channel. The queue is a clone of the client's, so a channel message
/// reaches every member without looking each one up.
pub(in crate::broker) struct Member {
    pub queue: SendQueue,
    /// The client's capabilities, so fanout picks the form without a look-up (see
    /// [`crate::broker::caps`]).
    pub caps: Caps,
    pub op: bool,
    pub voice: bool,
    /// Cached: a ban matches this member and no exception does (see the module docs).
    pub banned: bool,
    /// A user of another node: channel fanout skips it (its node delivers to it).
    pub remote: bool,
}

impl Member {
    /// The highest prefix (`@`, `+` or none), as in NAMES and WHO.
    pub fn prefix(&self) -> &'static str {
        if self.op {
            "@"
        } else if self.voice {
            "+"
        } else {
            ""
        }
    }

    /// Every prefix the member has, highest first (`@+`), as multi-prefix asks.
    pub fn all_prefixes(&self) -> &'static str {
        match (self.op, self.voice) {
            (true, true) => "@+",
            (true, false) => "@",
            (false, true) => "+",
            (false, false) => "",
        }
    }

    /// The prefix(es) shown to a client with `caps`.
    pub fn prefix_for(&self, caps: Caps) -> &'static str {
        if caps.has(Caps::MULTI_PREFIX) {
            self.all_prefixes()
        } else {
            self.prefix()
        }
    }
}

/// The channel's flags and the parameters of its parameter modes.
#[derive(Default)]
pub(in crate::broker) struct Modes {
    /// +n: no messages from outside.
    pub no_external: bool,
    /// +t: only operators set the topic.
    pub topic_ops_only: bool,
    /// +i: joining needs an invite (or a +I mask).
    pub invite_only: bool,
    /// +m: only voiced members and operators speak.
    pub moderated: bool,
    /// +s: hidden from non-members in LIST, NAMES, WHOIS and WHO.
    pub secret: bool,
    /// +k: the key JOIN must give.
    pub key: Option<String>,
    /// +l: at most this many members (invited users may exceed it).
    pub limit: Option<usize>,
}

impl Modes {
    /// The NAMES symbol: `@` secret, `=` public (+p is not supported).
    pub fn names_symbol(&self) -> &'static str {
        if self.secret {
            "@"
        } else {
            "="
        }
    }

    /// The mode string and its parameters for 324, e.g. `+klnt`, `key`, `10`. The key is shown
    /// to members only.
    pub fn mode_string(&self, show_key: bool) -> (String, Vec<String>) {
        let m = self;
        let mut s = String::from("+");
        let mut args = Vec::new();
        for (on, c) in [
            (m.invite_only, 'i'),
            (m.moderated, 'm'),
            (m.no_external, 'n'),
            (m.secret, 's'),
            (m.topic_ops_only, 't'),
        ] {
            if on {
                s.push(c);
            }
        }
        if let Some(key) = &m.key {
            s.push('k');
            args.push(if show_key { key.clone() } else { "*".into() });
        }
        if let Some(limit) = m.limit {
            s.push('l');
            args.push(limit.to_string());
        }
        (s, args)
    }
}
