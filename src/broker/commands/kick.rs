//! KICK: a channel operator removes users from a channel.
//!
//! `KICK #chan nick[,nick...] [:comment]` kicks each nick from the channel; the RFC 2812 form
//! `KICK #a,#b nick1,nick2` pairs channels with nicks. Each kick is its own KICK line (the
//! Modern docs forbid several users in one), sent to every member, the kicked one included.
//! Targets past TARGMAX are dropped silently. Without a comment, the kicker's nick is used.

use crate::broker::{build_line, Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn kick(b: &mut Broker, id: ClientId, msg: &Message) {
    let channels: Vec<&str> = msg.params[0].split(',').filter(|c| !c.is_empty()).collect();
    let users: Vec<&str> = msg.params[1].split(',').filter(|u| !u.is_empty()).collect();
    if channels.is_empty()
        || users.is_empty()
        || (channels.len() > 1 && channels.len() != users.len())
    {
        b.reply(id, numeric::ERR_NEEDMOREPARAMS, &["KICK"]);
        return;
    }
    let max_comment = b.config.limits.topic_len;
    let comment = match msg.params.get(2).filter(|c| !c.is_empty()) {
        Some(text) => super::topic::truncate(text, max_comment).to_string(),
        None => b.nick_of(id).to_string(),
    };
    let max = b.config.limits.max_targets;
    for (i, user) in users.into_iter().take(max).enumerate() {
        let channel = channels[if channels.len() == 1 { 0 } else { i }];
        kick_one(b, id, channel, user, &comment);
    }
}

fn kick_one(b: &mut Broker, id: ClientId, name: &str, target: &str, comment: &str) {
    if !casemap::is_valid_channel(name, b.config.limits.channel_len) {
        b.reply(id, numeric::ERR_BADCHANMASK, &[name]);
        return;
    }
    let Some((key, name)) = b.acting_member(id, name, |_| true) else {
        return;
    };
    let Some(&target_id) = b.nicks.get(&casemap::casefold(target)) else {
        b.reply(id, numeric::ERR_NOSUCHNICK, &[target]);
        return;
    };
    let target_nick = b.nick_of(target_id).to_string();
    if !b.channels[&key].members.contains_key(&target_id) {
        b.reply(id, numeric::ERR_USERNOTINCHANNEL, &[&target_nick, &name]);
        return;
    }
    let Some(mask) = b.clients.get(&id).map(|c| c.mask.clone()) else {
        return;
    };
    let line = build_line(Some(&mask), "KICK", &[&name, &target_nick], Some(comment));
    b.broadcast(&key, &line, None);
    b.remember(&key, crate::broker::history::RecordKind::Event, &line);
    if let Some(link) = b.config.hooks.link.clone() {
        let target = b.clients.get(&target_id);
        let (target_node, target_uid) = match target.and_then(|t| t.node.clone()) {
            Some(node) => (node, target.map_or(0, |t| t.remote_uid)),
            None => (link.node.clone(), target_id),
        };
        let event = crate::broker::link::Remote::Kick {
            uid: id,
            channel: name.clone(),
            target_node,
            target_uid,
            reason: comment.to_string(),
        };
        b.publish_state(id, event);
    }
    b.remove_member(target_id, &key);
    log::debug!("{mask} kicked {target_nick} from {name}: {comment}");
}
