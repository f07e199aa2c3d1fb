//! TOPIC: read or set a channel's topic. Channels are +t by default: only operators set it.

use std::time::SystemTime;

use crate::broker::channel::{Channel, Topic};
use crate::broker::{build_line, Broker, ClientId};
use crate::proto::Message;

pub(super) fn topic(b: &mut Broker, id: ClientId, msg: &Message) {
    let setting = msg.params.len() > 1;
    let protected = |c: &Channel| setting && c.modes.topic_ops_only;
    let Some((key, _)) = b.acting_member(id, &msg.params[0], protected) else {
        return;
    };
    let Some(text) = msg.params.get(1) else {
        b.send_topic(id, &key, true);
        return;
    };
    let text: String = truncate(text, b.config.limits.topic_len).to_string();
    set_topic(b, id, &key, &text);
    if let Some(channel) = b.channels.get(&key).map(|c| c.name.clone()) {
        let event = crate::broker::link::Remote::Topic {
            uid: id,
            channel,
            text,
        };
        b.publish_state(id, event);
    }
}

/// A user of another node set channel `name`'s topic (its node checked the rules).
pub(in crate::broker) fn remote_topic(b: &mut Broker, id: ClientId, name: &str, text: &str) {
    let key = crate::proto::casemap::casefold(name);
    if b.channels.contains_key(&key) {
        set_topic(b, id, &key, text);
    }
}

/// Sets channel `key`'s topic to `text` (empty: none) as client `id`, and tells the members.
fn set_topic(b: &mut Broker, id: ClientId, key: &str, text: &str) {
    let Some(client) = b.clients.get(&id) else {
        return;
    };
    let mask = client.mask.clone();
    let nick = client.nick().to_string();
    let Some(channel) = b.channels.get_mut(key) else {
        return;
    };
    channel.topic = (!text.is_empty()).then(|| Topic {
        text: text.to_string(),
        set_by: nick,
        set_at: SystemTime::now(),
    });
    let line = build_line(Some(&mask), "TOPIC", &[&channel.name], Some(text));
    b.broadcast(key, &line, None);
    b.remember(key, crate::broker::history::RecordKind::Event, &line);
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
