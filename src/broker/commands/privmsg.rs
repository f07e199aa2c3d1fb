//! PRIVMSG and NOTICE: text to channels and nicks. The hot path of the node: the line is
//! serialized once per target and shared by every recipient.
//!
//! NOTICE follows the same rules but never triggers an error reply or an away reply, so two
//! bots can never answer each other forever.

use std::time::Instant;

use crate::broker::history::{private_key, Record, RecordKind};
use crate::broker::{build_line, Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn privmsg(b: &mut Broker, id: ClientId, msg: &Message) {
    deliver(b, id, msg, "PRIVMSG");
}

pub(super) fn notice(b: &mut Broker, id: ClientId, msg: &Message) {
    deliver(b, id, msg, "NOTICE");
}

fn deliver(b: &mut Broker, id: ClientId, msg: &Message, command: &str) {
    let errors = command == "PRIVMSG";
    let Some(targets) = msg.params.first().filter(|t| !t.is_empty()) else {
        if errors {
            b.reply(id, numeric::ERR_NORECIPIENT, &[]);
        }
        return;
    };
    let Some(text) = msg.params.get(1).filter(|t| !t.is_empty()) else {
        if errors {
            b.reply(id, numeric::ERR_NOTEXTTOSEND, &[]);
        }
        return;
    };
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    client.last_message = Instant::now();
    let mask = client.mask.clone();
    for (i, target) in targets.split(',').filter(|t| !t.is_empty()).enumerate() {
        if i >= b.config.limits.max_targets {
            if errors {
                b.reply(id, numeric::ERR_TOOMANYTARGETS, &[target]);
            }
            break;
        }
        if casemap::is_channel_target(target) {
            to_channel(b, id, &mask, command, target, text, errors);
        } else {
            to_nick(b, id, &mask, command, target, text, errors);
        }
    }
}

fn to_channel(
    b: &mut Broker,
    id: ClientId,
    mask: &str,
    command: &str,
    target: &str,
    text: &str,
    errors: bool,
) {
    let key = casemap::casefold(target);
    let Some(channel) = b.channels.get(&key) else {
        if errors {
            b.reply(id, numeric::ERR_NOSUCHCHANNEL, &[target]);
        }
        return;
    };
    if !channel.can_send(id, mask) {
        if errors {
            b.reply(id, numeric::ERR_CANNOTSENDTOCHAN, &[target]);
        }
        return;
    }
    let line = build_line(Some(mask), command, &[&channel.name], Some(text));
    b.broadcast(&key, &line, Some(id));
    b.remember(&key, RecordKind::Message, &line);
}

fn to_nick(
    b: &mut Broker,
    id: ClientId,
    mask: &str,
    command: &str,
    target: &str,
    text: &str,
    errors: bool,
) {
    let Some(&to) = b.nicks.get(&casemap::casefold(target)) else {
        if errors {
            b.reply(id, numeric::ERR_NOSUCHNICK, &[target]);
        }
        return;
    };
    let Some(recipient) = b.clients.get(&to).filter(|c| c.registered) else {
        if errors {
            b.reply(id, numeric::ERR_NOSUCHNICK, &[target]);
        }
        return;
    };
    let line = build_line(Some(mask), command, &[recipient.nick()], Some(text));
    let away = recipient
        .away
        .as_ref()
        .filter(|_| errors)
        .map(|a| (recipient.nick().to_string(), a.clone()));
    if let Some(history) = &b.config.hooks.history {
        let sender = mask.split('!').next().unwrap_or(mask);
        let key = private_key(sender, recipient.nick());
        history
            .sink
            .record(Record::new(&key, &key, RecordKind::Message, &line));
    }
    b.send(to, line);
    if let Some((nick, text)) = away {
        b.reply(id, numeric::RPL_AWAY, &[&nick, &text]);
    }
}
