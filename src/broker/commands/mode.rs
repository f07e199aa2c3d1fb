//! MODE: channel modes (+n, +t; +o/+v for members) and user modes (+i).
//!
//! Querying works for everyone; changing channel modes needs channel-operator status. Ban-list
//! queries (`MODE #chan b`, sent by many clients on join) get an empty list.

use crate::broker::{build_line, unix_time, Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn mode(b: &mut Broker, id: ClientId, msg: &Message) {
    if casemap::is_channel_target(&msg.params[0]) {
        channel_mode(b, id, msg);
    } else {
        user_mode(b, id, msg);
    }
}

fn channel_mode(b: &mut Broker, id: ClientId, msg: &Message) {
    let key = casemap::casefold(&msg.params[0]);
    let Some(channel) = b.channels.get(&key) else {
        b.reply(id, numeric::ERR_NOSUCHCHANNEL, &[&msg.params[0]]);
        return;
    };
    let name = channel.name.clone();
    let Some(changes) = msg.params.get(1) else {
        let ((modes, _), created) = (
            channel.mode_string(true),
            unix_time(channel.created).to_string(),
        );
        b.reply(id, numeric::RPL_CHANNELMODEIS, &[&name, &modes]);
        b.reply(id, numeric::RPL_CREATIONTIME, &[&name, &created]);
        return;
    };
    if changes.trim_start_matches('+') == "b" && msg.params.len() == 2 {
        b.reply(id, numeric::RPL_ENDOFBANLIST, &[&name]);
        return;
    }
    if !channel.members.get(&id).is_some_and(|m| m.op) {
        b.reply(id, numeric::ERR_CHANOPRIVSNEEDED, &[&name]);
        return;
    }
    let mut args = msg.params[2..].iter();
    let mut adding = true;
    let mut applied = String::new();
    let mut applied_args: Vec<String> = Vec::new();
    let mut last_sign = None;
    for c in changes.chars() {
        let sign_changed = |applied: &mut String, last: &mut Option<bool>, adding: bool| {
            if *last != Some(adding) {
                applied.push(if adding { '+' } else { '-' });
                *last = Some(adding);
            }
        };
        match c {
            '+' => adding = true,
            '-' => adding = false,
            'n' | 't' => {
                let Some(channel) = b.channels.get_mut(&key) else {
                    return;
                };
                let flag = if c == 'n' {
                    &mut channel.modes.no_external
                } else {
                    &mut channel.modes.topic_ops_only
                };
                if *flag != adding {
                    *flag = adding;
                    sign_changed(&mut applied, &mut last_sign, adding);
                    applied.push(c);
                }
            }
            'o' | 'v' => {
                let Some(target) = args.next() else {
                    b.reply(id, numeric::ERR_NEEDMOREPARAMS, &["MODE"]);
                    continue;
                };
                let Some(&target_id) = b.nicks.get(&casemap::casefold(target)) else {
                    b.reply(id, numeric::ERR_NOSUCHNICK, &[target]);
                    continue;
                };
                let target_nick = b.nick_of(target_id).to_string();
                let Some(member) = b
                    .channels
                    .get_mut(&key)
                    .and_then(|ch| ch.members.get_mut(&target_id))
                else {
                    b.reply(id, numeric::ERR_USERNOTINCHANNEL, &[&target_nick, &name]);
                    continue;
                };
                let flag = if c == 'o' {
                    &mut member.op
                } else {
                    &mut member.voice
                };
                if *flag != adding {
                    *flag = adding;
                    sign_changed(&mut applied, &mut last_sign, adding);
                    applied.push(c);
                    applied_args.push(target_nick);
                }
            }
            other => b.reply(id, numeric::ERR_UNKNOWNMODE, &[&other.to_string()]),
        }
    }
    if applied.is_empty() {
        return;
    }
    let Some(mask) = b.clients.get(&id).map(|c| c.mask.clone()) else {
        return;
    };
    let mut middle: Vec<&str> = vec![&name, &applied];
    middle.extend(applied_args.iter().map(String::as_str));
    let line = build_line(Some(&mask), "MODE", &middle, None);
    b.broadcast(&key, &line, None);
}

fn user_mode(b: &mut Broker, id: ClientId, msg: &Message) {
    let target = &msg.params[0];
    let Some(&target_id) = b.nicks.get(&casemap::casefold(target)) else {
        b.reply(id, numeric::ERR_NOSUCHNICK, &[target]);
        return;
    };
    if target_id != id {
        b.reply(id, numeric::ERR_USERSDONTMATCH, &[]);
        return;
    }
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    let Some(changes) = msg.params.get(1) else {
        let modes = format!(
            "+{}{}",
            if client.invisible { "i" } else { "" },
            if client.oper { "o" } else { "" }
        );
        b.reply(id, numeric::RPL_UMODEIS, &[&modes]);
        return;
    };
    let mut adding = true;
    let mut applied = String::new();
    let mut unknown = false;
    for c in changes.chars() {
        match c {
            '+' => adding = true,
            '-' => adding = false,
            'i' if client.invisible != adding => {
                client.invisible = adding;
                applied.push(if adding { '+' } else { '-' });
                applied.push('i');
            }
            'i' => {}
            // Operator status is dropped with -o; it can only be gained through OPER.
            'o' if !adding && client.oper => {
                client.oper = false;
                applied.push_str("-o");
            }
            'o' => {}
            _ => unknown = true,
        }
    }
    let (nick, mask) = (client.nick().to_string(), client.mask.clone());
    if unknown {
        b.reply(id, numeric::ERR_UMODEUNKNOWNFLAG, &[]);
    }
    if !applied.is_empty() {
        let line = build_line(Some(&mask), "MODE", &[&nick], Some(&applied));
        b.send(id, line);
    }
}
