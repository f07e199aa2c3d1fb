//! JOIN: enter channels (comma-separated), creating them as needed; `JOIN 0` leaves them all.
//! The first member of a new channel is its operator.

use crate::broker::caps::Caps;
use crate::broker::forms::Forms;
use crate::broker::state::{Channel, Member};
use crate::broker::{build_line, Broker, ClientId, Line};
use crate::proto::{casemap, numeric, Message};

pub(super) fn join(b: &mut Broker, id: ClientId, msg: &Message) {
    if msg.params[0] == "0" {
        let joined: Vec<String> = b
            .clients
            .get(&id)
            .map(|c| c.channels.clone())
            .unwrap_or_default();
        for key in joined {
            super::part::leave(b, id, &key, None);
        }
        return;
    }
    for name in msg.params[0].split(',').filter(|n| !n.is_empty()) {
        join_one(b, id, name);
    }
}

fn join_one(b: &mut Broker, id: ClientId, name: &str) {
    if !casemap::is_valid_channel(name, b.config.limits.channel_len) {
        b.reply(id, numeric::ERR_NOSUCHCHANNEL, &[name]);
        return;
    }
    let key = casemap::casefold(name);
    let Some(client) = b.clients.get(&id) else {
        return;
    };
    if client.channels.contains(&key) {
        return;
    }
    if client.channels.len() >= b.config.limits.channels_per_client {
        b.reply(id, numeric::ERR_TOOMANYCHANNELS, &[name]);
        return;
    }
    let queue = client.queue.clone();
    let caps = client.caps;
    let mask = client.mask.clone();
    let extended = build_line(Some(&mask), "JOIN", &[name, "*"], Some(&client.realname));
    let away = client.away.clone();
    let channel = b
        .channels
        .entry(key.clone())
        .or_insert_with(|| Channel::new(name.to_string()));
    let first = channel.members.is_empty();
    channel.members.insert(
        id,
        Member {
            queue,
            caps,
            op: first,
            voice: false,
        },
    );
    let display = channel.name.clone();
    if let Some(client) = b.clients.get_mut(&id) {
        client.channels.push(key.clone());
    }
    announce(b, id, &key, &mask, &display, (extended, away));
    super::topic::send_topic(b, id, &key, false);
    super::names::send_names(b, id, &key);
    super::names::end_of_names(b, id, &display);
}

/// The JOIN to every member (extended-join's form to those who asked), then, if the joiner is
/// away, its AWAY to the others with away-notify (as that spec asks).
fn announce(
    b: &mut Broker,
    id: ClientId,
    key: &str,
    mask: &str,
    display: &str,
    (extended, away): (Line, Option<String>),
) {
    let plain = build_line(Some(mask), "JOIN", &[display], None);
    let mut forms = Forms::new(plain).with_alternative(Caps::EXTENDED_JOIN, extended);
    b.broadcast_forms(key, &mut forms, None);
    if let Some(text) = away {
        let line = build_line(Some(mask), "AWAY", &[], Some(&text));
        let mut forms = Forms::new(line).requiring(Caps::AWAY_NOTIFY);
        b.broadcast_forms(key, &mut forms, Some(id));
    }
}
