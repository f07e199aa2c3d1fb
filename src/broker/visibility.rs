//! Who may see whom: invisible users (+i) show in WHO and NAMES only to those who share a
//! channel with them (secret channels are the channel's own rule,
//! [`Channel::is_visible_to`](super::channel::Channel::is_visible_to)).

use super::{Broker, ClientId};

impl Broker {
    /// Whether clients `a` and `b` are together in at least one channel.
    pub(super) fn share_a_channel(&self, a: ClientId, b: ClientId) -> bool {
        self.clients.get(&a).is_some_and(|client| {
            client.channels.iter().any(|key| {
                self.channels
                    .get(key)
                    .is_some_and(|c| c.members.contains_key(&b))
            })
        })
    }

    /// Whether `viewer` may see user `who` in WHO and NAMES answers: always, unless `who` is
    /// invisible (+i) and shares no channel with `viewer`.
    pub(super) fn user_visible_to(&self, who: ClientId, viewer: ClientId) -> bool {
        who == viewer
            || !self.clients.get(&who).is_some_and(|c| c.invisible)
            || self.share_a_channel(who, viewer)
    }
}
