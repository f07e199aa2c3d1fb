//! A channel and its rules: who may join, who may speak, who may be seen.
//!
//! The rules live here, as methods, so JOIN, PRIVMSG, NAMES, WHO and LIST ask the channel
//! instead of each repeating them. Invariants:
//! - `members` holds every member once; the broker deletes a channel the moment it empties.
//! - `Member::banned` is a cache of "a ban matches this member and no exception does": it is set
//!   on join and recomputed whenever a ban or exception list changes or the member changes nick,
//!   so speaking never matches masks (the hot path stays a few flag checks).
//! - Every list is bounded ([`MAX_LIST`] masks per list, [`MAX_INVITES`] pending invites).

#![allow(dead_code)] // TEMPORARY: the MODE lists, INVITE and +s land in the next commits.

use std::collections::HashMap;
use std::time::SystemTime;

use super::{ClientId, SendQueue};
use crate::proto::numeric::{self, Numeric};
use crate::proto::{casemap, mask};

/// Masks per list (+b, +e, +I): MAXLIST in ISUPPORT. A full list refuses new masks (478).
pub(super) const MAX_LIST: usize = 100;

/// Pending invites per channel; the oldest is forgotten when a new one would not fit.
pub(super) const MAX_INVITES: usize = 32;

/// A member's place in a channel. The queue is a clone of the client's, so a channel message
/// reaches every member without looking each one up.
pub(super) struct Member {
    pub queue: SendQueue,
    pub op: bool,
    pub voice: bool,
    /// Cached: a ban matches this member and no exception does (see the module docs).
    pub banned: bool,
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
}

/// The channel's flags and the parameters of its parameter modes.
#[derive(Default)]
pub(super) struct Modes {
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

/// One mask of a ban, exception or invite-exception list.
pub(super) struct ListEntry {
    /// As set (normalized to `nick!user@host`).
    pub mask: String,
    /// Casefolded, for matching.
    pub folded: String,
    pub set_by: String,
    pub set_at: SystemTime,
}

/// A bounded list of masks (+b, +e or +I).
#[derive(Default)]
pub(super) struct MaskList {
    pub entries: Vec<ListEntry>,
}

impl MaskList {
    /// Whether any mask matches `folded_mask` (a client's casefolded `nick!user@host`).
    pub fn matches(&self, folded_mask: &str) -> bool {
        self.entries
            .iter()
            .any(|e| mask::glob_match(e.folded.as_bytes(), folded_mask.as_bytes()))
    }

    /// Adds `mask` (already normalized). `Ok(false)` if it was there already; `Err` if full.
    pub fn add(&mut self, mask: &str, set_by: &str) -> Result<bool, ()> {
        let folded = casemap::casefold(mask);
        if self.entries.iter().any(|e| e.folded == folded) {
            return Ok(false);
        }
        if self.entries.len() >= MAX_LIST {
            return Err(());
        }
        self.entries.push(ListEntry {
            mask: mask.to_string(),
            folded,
            set_by: set_by.to_string(),
            set_at: SystemTime::now(),
        });
        Ok(true)
    }

    /// Removes `mask` (compared casefolded); returns the mask as it was set.
    pub fn remove(&mut self, mask: &str) -> Option<String> {
        let folded = casemap::casefold(mask);
        let at = self.entries.iter().position(|e| e.folded == folded)?;
        Some(self.entries.remove(at).mask)
    }
}

pub(super) struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_at: SystemTime,
}

pub(super) struct Channel {
    /// The name as first created (display form).
    pub name: String,
    pub topic: Option<Topic>,
    pub members: HashMap<ClientId, Member>,
    pub created: SystemTime,
    pub modes: Modes,
    /// +b.
    pub bans: MaskList,
    /// +e: exceptions to bans.
    pub excepts: MaskList,
    /// +I: may join a +i channel without an invite.
    pub invex: MaskList,
    /// Clients invited and not joined yet, oldest first (bounded by [`MAX_INVITES`]).
    pub invited: Vec<ClientId>,
}

/// Why a JOIN is refused, as its numeric.
pub(super) type Refusal = Numeric;

impl Channel {
    /// A new channel, `+nt` as is customary.
    pub fn new(name: String) -> Channel {
        Channel {
            name,
            topic: None,
            members: HashMap::new(),
            created: SystemTime::now(),
            modes: Modes {
                no_external: true,
                topic_ops_only: true,
                ..Modes::default()
            },
            bans: MaskList::default(),
            excepts: MaskList::default(),
            invex: MaskList::default(),
            invited: Vec::new(),
        }
    }

    /// Whether a ban matches the client whose casefolded mask is `folded_mask`, and no
    /// exception does.
    pub fn is_banned(&self, folded_mask: &str) -> bool {
        self.bans.matches(folded_mask) && !self.excepts.matches(folded_mask)
    }

    /// Whether client `id` (casefolded mask `folded_mask`) may join with `key`. An invite lets
    /// a client past +i and +l; a +I mask past +i. A ban (without exception) and a wrong key
    /// always refuse.
    pub fn can_join(
        &self,
        id: ClientId,
        folded_mask: &str,
        key: Option<&str>,
    ) -> Result<(), Refusal> {
        let invited = self.invited.contains(&id);
        if self.is_banned(folded_mask) {
            return Err(numeric::ERR_BANNEDFROMCHAN);
        }
        if self.modes.invite_only && !invited && !self.invex.matches(folded_mask) {
            return Err(numeric::ERR_INVITEONLYCHAN);
        }
        if let Some(want) = &self.modes.key {
            if key != Some(want.as_str()) {
                return Err(numeric::ERR_BADCHANNELKEY);
            }
        }
        if let Some(limit) = self.modes.limit {
            if self.members.len() >= limit && !invited {
                return Err(numeric::ERR_CHANNELISFULL);
            }
        }
        Ok(())
    }

    /// Whether client `id` may send a PRIVMSG/NOTICE here. Members use their cached ban flag;
    /// a non-member (only possible on a -n channel) is matched with `mask` (its
    /// `nick!user@host`), casefolded only when there are bans to match.
    pub fn can_send(&self, id: ClientId, mask: &str) -> bool {
        match self.members.get(&id) {
            Some(m) if m.op || m.voice => true,
            Some(m) => !self.modes.moderated && !m.banned,
            None => {
                !self.modes.no_external
                    && !self.modes.moderated
                    && (self.bans.entries.is_empty() || !self.is_banned(&casemap::casefold(mask)))
            }
        }
    }

    /// Whether client `id` may see that this channel exists and who is in it (+s hides it from
    /// non-members).
    pub fn is_visible_to(&self, id: ClientId) -> bool {
        !self.modes.secret || self.members.contains_key(&id)
    }

    /// Remembers that `id` was invited (bounded: the oldest invite goes first).
    pub fn invite(&mut self, id: ClientId) {
        if self.invited.contains(&id) {
            return;
        }
        if self.invited.len() >= MAX_INVITES {
            self.invited.remove(0);
        }
        self.invited.push(id);
    }

    /// The NAMES symbol: `@` secret, `=` public (+p is not supported).
    pub fn names_symbol(&self) -> &'static str {
        if self.modes.secret {
            "@"
        } else {
            "="
        }
    }

    /// The mode string and its parameters for 324, e.g. `+klnt`, `key`, `10`. The key is shown
    /// to members only.
    pub fn mode_string(&self, show_key: bool) -> (String, Vec<String>) {
        let m = &self.modes;
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
