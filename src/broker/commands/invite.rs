//! INVITE: ask a user into a channel, which lets them past +i and +l once.
//!
//! `INVITE nick #chan`: the inviter must be a member (442), an operator if the channel is +i
//! (482); the target must exist (401) and not be a member already (443). The inviter gets 341,
//! the target an INVITE line; members with IRCv3 invite-notify are told too (only operators
//! when the channel is +i). `INVITE` alone lists the caller's pending invites (336, 337).

use crate::broker::link::Remote;
use crate::broker::{build_line, Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn invite(b: &mut Broker, id: ClientId, msg: &Message) {
    match msg.params.len() {
        0 => list_invites(b, id),
        1 => b.reply(id, numeric::ERR_NEEDMOREPARAMS, &["INVITE"]),
        _ => invite_one(b, id, &msg.params[0], &msg.params[1]),
    }
}

fn invite_one(b: &mut Broker, id: ClientId, target: &str, name: &str) {
    let Some(&target_id) = b.nicks.get(&casemap::casefold(target)) else {
        b.reply(id, numeric::ERR_NOSUCHNICK, &[target]);
        return;
    };
    let Some((key, name)) = b.acting_member(id, name, |c| c.modes.invite_only) else {
        return;
    };
    let target_nick = b.nick_of(target_id).to_string();
    if b.channels[&key].members.contains_key(&target_id) {
        b.reply(id, numeric::ERR_USERONCHANNEL, &[&target_nick, &name]);
        return;
    }
    if let Some(channel) = b.channels.get_mut(&key) {
        channel.invite(target_id);
    }
    let Some(mask) = b.clients.get(&id).map(|c| c.mask.clone()) else {
        return;
    };
    b.reply(id, numeric::RPL_INVITING, &[&target_nick, &name]);
    let line = build_line(Some(&mask), "INVITE", &[&target_nick, &name], None);
    b.send(target_id, line);
    let ops_only = b.channels[&key].modes.invite_only;
    super::notify_invite(b, id, target_id, &key, ops_only);
    publish_invite(b, id, target_id, &name);
    if let Some(away) = b.clients.get(&target_id).and_then(|c| c.away.clone()) {
        b.reply(id, numeric::RPL_AWAY, &[&target_nick, &away]);
    }
}

/// 336 for each channel `id` is invited to and has not joined, then 337.
fn list_invites(b: &mut Broker, id: ClientId) {
    let mut names: Vec<String> = b
        .channels
        .values()
        .filter(|c| c.invited.contains(&id))
        .map(|c| c.name.clone())
        .collect();
    names.sort_unstable(); // channel names are unique
    for name in names {
        b.reply(id, numeric::RPL_INVITELIST, &[&name]);
    }
    b.reply(id, numeric::RPL_ENDOFINVITELIST, &[]);
}

/// Tells the network that local user `id` invited `target` (of any node) into channel `name`:
/// the target's node delivers the INVITE, and every node remembers the invite and tells its
/// members with invite-notify.
fn publish_invite(b: &mut Broker, id: ClientId, target: ClientId, name: &str) {
    if !b.linked() {
        return;
    }
    let Some((target_node, target_uid)) = b.network_id(target) else {
        return;
    };
    let event = Remote::Invite {
        uid: id,
        channel: name.to_string(),
        target_node,
        target_uid,
    };
    b.publish_state(id, event);
}

/// A user of another node (`inviter`) invited `target` (ours, or of a third node) into
/// channel `name` (its node checked that it may). The invite lets the target past +i and +l
/// on its own node.
pub(in crate::broker) fn remote_invite(
    b: &mut Broker,
    inviter: ClientId,
    target: ClientId,
    name: &str,
) {
    let key = casemap::casefold(name);
    let Some(channel) = b.channels.get_mut(&key) else {
        return;
    };
    if channel.members.contains_key(&target) {
        return;
    }
    channel.invite(target);
    let name = channel.name.clone();
    let ops_only = channel.modes.invite_only;
    let (Some(from), Some(to)) = (b.clients.get(&inviter), b.clients.get(&target)) else {
        return;
    };
    if to.node.is_none() {
        let line = build_line(Some(&from.mask), "INVITE", &[to.nick(), &name], None);
        b.send(target, line);
    }
    super::notify_invite(b, inviter, target, &key, ops_only);
}
