//! A channel and its rules: who may join, who may speak, who may be seen.
//!
//! The rules live here, as methods, so JOIN, PRIVMSG, NAMES, WHO and LIST ask the channel
//! instead of each repeating them. Invariants:
//! - `members` holds every member once; the broker deletes a channel the moment it empties.
//! - `Member::banned` is a cache of "a ban matches this member and no exception does": it is set
//!   on join and recomputed whenever a ban or exception list changes or the member changes nick,
//!   so speaking never matches masks (the hot path stays a few flag checks).
//! - Every list is bounded ([`MAX_LIST`] masks per list, [`MAX_INVITES`] pending invites).

use std::time::SystemTime;

use super::ClientId;
use crate::proto::numeric::Numeric;

mod lists;
mod member;
mod rules;

pub(super) use lists::{Added, MaskList, MAX_LIST};
pub(super) use member::{Member, Modes};

/// Pending invites per channel; the oldest is forgotten when a new one would not fit.
pub(super) const MAX_INVITES: usize = 32;

pub(super) struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_at: SystemTime,
}

pub(super) struct Channel {
    /// The name as first created (display form).
    pub name: String,
    pub topic: Option<Topic>,
    pub members: crate::broker::ids::IdMap<Member>,
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
    /// Members that are this node's own clients (the rest are remote users, on a linked
    /// node): the node wants the channel's traffic from the network while this is above 0.
    pub local_members: usize,
}

/// Why a JOIN is refused, as its numeric.
pub(super) type Refusal = Numeric;

impl Channel {
    /// A new channel, `+nt` as is customary.
    pub fn new(name: String) -> Channel {
        Channel {
            name,
            topic: None,
            members: crate::broker::ids::IdMap::default(),
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
            local_members: 0,
        }
    }
}
