//! JOIN: enter channels (comma-separated, with comma-separated keys), creating them as needed;
//! `JOIN 0` leaves them all. Whether a client may join is the channel's rule
//! ([`Channel::can_join`](crate::broker::channel::Channel::can_join)); the first member of a new
//! channel is its operator.

use crate::broker::caps::Caps;
use crate::broker::forms::Forms;
use crate::broker::history::RecordKind;
use crate::broker::{build_line, Broker, ClientId};
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
    let mut keys = msg.params.get(1).map(|k| k.split(','));
    for name in msg.params[0].split(',') {
        let key = keys
            .as_mut()
            .and_then(Iterator::next)
            .filter(|k| !k.is_empty());
        if !name.is_empty() {
            join_one(b, id, name, key);
        }
    }
}

fn join_one(b: &mut Broker, id: ClientId, name: &str, channel_key: Option<&str>) {
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
    if let Some(channel) = b.channels.get(&key) {
        let folded_mask = casemap::casefold(&client.mask);
        if let Err(refusal) = channel.can_join(id, &folded_mask, channel_key) {
            let display = channel.name.clone();
            b.reply(id, refusal, &[&display]);
            return;
        }
    }
    let op = b.add_member(id, &key, name);
    let display = b.channels[&key].name.clone();
    announce(b, id, &key, &display);
    if b.linked() {
        // Built only when linked: an unlinked node pays nothing per JOIN for the link.
        let created = if op {
            super::mode::unix_ms(b.channels[&key].created)
        } else {
            0
        };
        let event = crate::broker::link::Remote::Join {
            uid: id,
            channel: display.clone(),
            op,
            created,
        };
        b.publish_state(id, event);
    }
    b.send_topic(id, &key, false);
    b.send_names(id, &key);
    b.end_of_names(id, &display);
    super::chathistory::replay_on_join(b, id, &key, &display);
}

/// The JOIN to every member (extended-join's form, with account `*` and realname, to those
/// who asked), then, if the joiner is away, its AWAY to the others with away-notify (as that
/// spec asks).
pub(in crate::broker) fn announce(b: &mut Broker, id: ClientId, key: &str, display: &str) {
    let Some(client) = b.clients.get(&id) else {
        return;
    };
    let mask = client.mask.clone();
    let plain = build_line(Some(&mask), "JOIN", &[display], None);
    let extended = build_line(Some(&mask), "JOIN", &[display, "*"], Some(&client.realname));
    let away = client
        .away
        .as_ref()
        .map(|text| build_line(Some(&mask), "AWAY", &[], Some(text)));
    let mut forms = Forms::new(plain.clone()).with_alternative(Caps::EXTENDED_JOIN, extended);
    b.broadcast_forms(key, &mut forms, None);
    b.remember(key, RecordKind::Event, &plain);
    if let Some(line) = away {
        let mut forms = Forms::new(line).requiring(Caps::AWAY_NOTIFY);
        b.broadcast_forms(key, &mut forms, Some(id));
    }
}
