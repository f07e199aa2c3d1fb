//! PART: leave channels (comma-separated), with an optional reason.

use crate::broker::history::RecordKind;
use crate::broker::{build_line, Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn part(b: &mut Broker, id: ClientId, msg: &Message) {
    let reason = msg.params.get(1).map(String::as_str);
    for name in msg.params[0].split(',').filter(|n| !n.is_empty()) {
        let key = casemap::casefold(name);
        match b.channels.get(&key) {
            None => b.reply(id, numeric::ERR_NOSUCHCHANNEL, &[name]),
            Some(channel) if !channel.members.contains_key(&id) => {
                b.reply(id, numeric::ERR_NOTONCHANNEL, &[name])
            }
            Some(_) => leave(b, id, &key, reason),
        }
    }
}

/// Takes `id` out of channel `key`, telling every member (the leaver too). Used by PART and
/// `JOIN 0`. Deletes the channel when it empties (see [`Broker::remove_member`]).
pub(super) fn leave(b: &mut Broker, id: ClientId, key: &str, reason: Option<&str>) {
    let (Some(client), Some(channel)) = (b.clients.get(&id), b.channels.get(key)) else {
        return;
    };
    let line = build_line(Some(&client.mask), "PART", &[&channel.name], reason);
    let event = crate::broker::link::Remote::Part {
        uid: id,
        channel: channel.name.clone(),
        reason: reason.map(str::to_string),
    };
    b.broadcast(key, &line, None);
    b.remember(key, RecordKind::Event, &line);
    // Interest in the channel ends (UNSUB) before the network hears the PART: a node that saw
    // the PART gets none of the channel's later traffic.
    b.remove_member(id, key);
    b.publish_state(id, event);
}
