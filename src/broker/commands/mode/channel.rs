//! Channel MODE: a query (324, 329), list queries (`MODE #c b`), or changes by an operator.

use super::announce::Applied;
use super::apply::apply;
use super::parse::{parse, Item};
use crate::broker::{unix_time, Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn channel_mode(b: &mut Broker, id: ClientId, msg: &Message) {
    let key = casemap::casefold(&msg.params[0]);
    let Some(channel) = b.channels.get(&key) else {
        b.reply(id, numeric::ERR_NOSUCHCHANNEL, &[&msg.params[0]]);
        return;
    };
    let name = channel.name.clone();
    let Some(modes) = msg.params.get(1) else {
        let (modes, args) = channel.modes.mode_string(channel.members.contains_key(&id));
        let created = unix_time(channel.created).to_string();
        let mut params = vec![name.as_str(), modes.as_str()];
        params.extend(args.iter().map(String::as_str));
        b.reply(id, numeric::RPL_CHANNELMODEIS, &params);
        b.reply(id, numeric::RPL_CREATIONTIME, &[&name, &created]);
        return;
    };
    let is_op = channel.members.get(&id).is_some_and(|m| m.op);
    let mut changes = Vec::new();
    let mut queried = String::new();
    let mut wants_change = false;
    for item in parse(modes, &msg.params[2..]) {
        match item {
            Item::Change(change) => changes.push(change),
            Item::Query(letter) if !queried.contains(letter) => {
                queried.push(letter);
                super::lists::send_list(b, id, &key, letter);
            }
            Item::Query(_) => {}
            Item::Unknown(letter) => {
                b.reply(id, numeric::ERR_UNKNOWNMODE, &[&letter.to_string()]);
            }
            Item::MissingArg(_) if !is_op => wants_change = true,
            Item::MissingArg(_) => b.reply(id, numeric::ERR_NEEDMOREPARAMS, &["MODE"]),
        }
    }
    if !is_op && (wants_change || !changes.is_empty()) {
        b.reply(id, numeric::ERR_CHANOPRIVSNEEDED, &[&name]);
        return;
    }
    if changes.is_empty() {
        return;
    }
    for params in apply_and_announce(b, id, &key, &name, &changes) {
        // The network applies what took effect here, as this node's operator did it.
        let event = crate::broker::link::Remote::Mode {
            uid: id,
            channel: name.clone(),
            params,
        };
        b.publish_state(id, event);
    }
}

/// A user of another node changed channel `name`'s modes (its node checked that it may):
/// `params` is the mode string and its arguments, as announced there.
pub(in crate::broker) fn remote_channel_mode(
    b: &mut Broker,
    id: ClientId,
    name: &str,
    params: &[String],
) {
    let key = casemap::casefold(name);
    let (Some(modes), Some(display)) =
        (params.first(), b.channels.get(&key).map(|c| c.name.clone()))
    else {
        return;
    };
    let changes: Vec<_> = parse(modes, &params[1..])
        .into_iter()
        .filter_map(|item| match item {
            Item::Change(change) => Some(change),
            _ => None,
        })
        .collect();
    apply_and_announce(b, id, &key, &display, &changes);
}

/// Applies `changes` to channel `key` as `id` and tells the members; returns each MODE line's
/// parameters (mode string first), for the network.
fn apply_and_announce(
    b: &mut Broker,
    id: ClientId,
    key: &str,
    name: &str,
    changes: &[super::parse::Change],
) -> Vec<Vec<String>> {
    let mut applied = Applied::default();
    for change in changes {
        apply(b, id, key, change, &mut applied);
    }
    if applied.touched_bans {
        b.refresh_bans(key);
    }
    let Some(mask) = b.clients.get(&id).map(|c| c.mask.clone()) else {
        return Vec::new();
    };
    let mut announced = Vec::new();
    for line in applied.lines(&mask, name) {
        b.broadcast(key, &line, None);
        b.remember(key, crate::broker::history::RecordKind::Event, &line);
        if b.linked() {
            let text = String::from_utf8_lossy(&line);
            if let Ok(msg) = crate::proto::Message::parse(text.trim_end().as_bytes()) {
                announced.push(msg.params[1..].to_vec());
            }
        }
    }
    announced
}
