//! TOPIC: read or set a channel's topic. Channels are +t by default: only operators set it.

use std::time::SystemTime;

use crate::broker::channel::Topic;
use crate::broker::{build_line, Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn topic(b: &mut Broker, id: ClientId, msg: &Message) {
    let name = &msg.params[0];
    let key = casemap::casefold(name);
    let Some(channel) = b.channels.get(&key) else {
        b.reply(id, numeric::ERR_NOSUCHCHANNEL, &[name]);
        return;
    };
    let Some(member) = channel.members.get(&id) else {
        b.reply(id, numeric::ERR_NOTONCHANNEL, &[name]);
        return;
    };
    let Some(text) = msg.params.get(1) else {
        b.send_topic(id, &key, true);
        return;
    };
    if channel.modes.topic_ops_only && !member.op {
        b.reply(id, numeric::ERR_CHANOPRIVSNEEDED, &[&channel.name.clone()]);
        return;
    }
    let text: String = truncate(text, b.config.limits.topic_len).to_string();
    let Some(client) = b.clients.get(&id) else {
        return;
    };
    let mask = client.mask.clone();
    let nick = client.nick().to_string();
    let Some(channel) = b.channels.get_mut(&key) else {
        return;
    };
    channel.topic = (!text.is_empty()).then(|| Topic {
        text: text.clone(),
        set_by: nick,
        set_at: SystemTime::now(),
    });
    let line = build_line(Some(&mask), "TOPIC", &[&channel.name], Some(&text));
    b.broadcast(&key, &line, None);
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(super) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
