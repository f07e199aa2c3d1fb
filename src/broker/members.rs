//! Channel membership: the one way in and the one way out.
//!
//! JOIN adds members through [`Broker::add_member`]; PART, KICK, QUIT, KILL and every
//! disconnect take them out through [`Broker::remove_member`]. Keeping both sides here keeps
//! the invariant that `Client::channels` and `Channel::members` always agree, and that an
//! empty channel is deleted at once.

use super::channel::{Channel, Member};
use super::{Broker, ClientId};
use crate::proto::{casemap, numeric};

impl Broker {
    /// Adds `id` to channel `key` (creating it as `name` if needed) and returns whether the
    /// channel is new. The first member of a new channel is its operator. An invite of `id` to
    /// the channel is used up.
    pub(super) fn add_member(&mut self, id: ClientId, key: &str, name: &str) -> bool {
        let Some(client) = self.clients.get_mut(&id) else {
            return false;
        };
        let queue = client.queue.clone();
        let caps = client.caps;
        let remote = client.node.is_some();
        let folded_mask = casemap::casefold(&client.mask);
        client.channels.push(key.to_string());
        let channel = self
            .channels
            .entry(key.to_string())
            .or_insert_with(|| Channel::new(name.to_string()));
        let first = channel.members.is_empty();
        if !remote {
            channel.local_members += 1;
        }
        let interest = !remote && channel.local_members == 1;
        channel.invited.retain(|&i| i != id);
        let banned = channel.is_banned(&folded_mask);
        channel.members.insert(
            id,
            Member {
                queue,
                caps,
                op: first,
                voice: false,
                banned,
                remote,
            },
        );
        if interest {
            self.link_out(super::link::LinkOut::Interest {
                key: key.to_string(),
                on: true,
            });
        }
        first
    }

    /// Takes `id` out of channel `key`, on both sides, and deletes the channel if it empties.
    /// Announcing it (PART, KICK, QUIT) is the caller's business, done before.
    pub(super) fn remove_member(&mut self, id: ClientId, key: &str) {
        let mut interest_lost = false;
        if let Some(channel) = self.channels.get_mut(key) {
            if let Some(member) = channel.members.remove(&id) {
                if !member.remote {
                    channel.local_members -= 1;
                    interest_lost = channel.local_members == 0;
                }
            }
            if channel.members.is_empty() {
                self.channels.remove(key);
            }
        }
        if interest_lost {
            self.link_out(super::link::LinkOut::Interest {
                key: key.to_string(),
                on: false,
            });
        }
        if let Some(client) = self.clients.get_mut(&id) {
            client.channels.retain(|k| k != key);
        }
    }

    /// Recomputes the cached ban flag of every member of channel `key` (after +b/+e changes).
    pub(super) fn refresh_bans(&mut self, key: &str) {
        let Some(channel) = self.channels.get_mut(key) else {
            return;
        };
        let Channel {
            members,
            bans,
            excepts,
            ..
        } = channel;
        for (member_id, member) in members.iter_mut() {
            if let Some(client) = self.clients.get(member_id) {
                let folded = casemap::casefold(&client.mask);
                member.banned = bans.matches(&folded) && !excepts.matches(&folded);
            }
        }
    }

    /// Recomputes `id`'s cached ban flag in each of its channels (after a nick change).
    pub(super) fn refresh_bans_of(&mut self, id: ClientId) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let folded = casemap::casefold(&client.mask);
        for key in &client.channels {
            if let Some(channel) = self.channels.get_mut(key) {
                let banned = channel.is_banned(&folded);
                if let Some(member) = channel.members.get_mut(&id) {
                    member.banned = banned;
                }
            }
        }
    }

    /// Channel `name` as seen by its member `id`, for commands that act on it: its key and
    /// display name. Answers 403 if it does not exist, 442 if `id` is not a member, and 482 if
    /// `need_op` and `id` is not a channel operator; `None` then.
    pub(super) fn acting_member(
        &mut self,
        id: ClientId,
        name: &str,
        need_op: impl FnOnce(&Channel) -> bool,
    ) -> Option<(String, String)> {
        let key = casemap::casefold(name);
        let Some(channel) = self.channels.get(&key) else {
            self.reply(id, numeric::ERR_NOSUCHCHANNEL, &[name]);
            return None;
        };
        let display = channel.name.clone();
        match channel.members.get(&id) {
            None => self.reply(id, numeric::ERR_NOTONCHANNEL, &[&display]),
            Some(m) if !m.op && need_op(channel) => {
                self.reply(id, numeric::ERR_CHANOPRIVSNEEDED, &[&display]);
            }
            Some(_) => return Some((key, display)),
        }
        None
    }
}
