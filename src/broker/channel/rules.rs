//! The channel's rules: who may join, speak and see it, and who is invited.

use super::{Channel, Refusal, MAX_INVITES};
use crate::broker::ClientId;
use crate::proto::{casemap, numeric};

impl Channel {
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
}
