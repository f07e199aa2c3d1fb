//! PRIVMSG, NOTICE and TAGMSG: text (or tags only) to channels and nicks. The hot path of the
//! node: per target, the message is serialized once per distinct form (see
//! [`crate::broker::forms`]) and every recipient gets the form its capabilities ask for.
//!
//! Every message gets a msgid; its client-only tags (`+name`) are relayed to recipients with
//! message-tags; TAGMSG reaches only those; the sender gets its own message back (in its
//! form, with the same msgid) with echo-message.
//!
//! NOTICE follows the same rules but never triggers an error reply or an away reply, so two
//! bots can never answer each other forever.

use std::sync::Arc;

use crate::broker::caps::Caps;
use crate::broker::forms::Forms;
use crate::broker::history::private_key;
use crate::broker::link::{LinkOut, MsgTarget, Remote, Route};
use crate::broker::{build_line, Broker, ClientId};
use crate::proto::{casemap, numeric, tags, Message};

/// What is being sent, the same for every target of one command.
struct Outgoing<'a> {
    command: &'a str,
    /// None for TAGMSG.
    text: Option<&'a str>,
    mask: Arc<str>,
    client_tags: Option<Arc<str>>,
    /// Answer errors (PRIVMSG, TAGMSG) or stay silent (NOTICE).
    errors: bool,
}

pub(super) fn privmsg(b: &mut Broker, id: ClientId, msg: &Message) {
    deliver(b, id, msg, "PRIVMSG");
}

pub(super) fn notice(b: &mut Broker, id: ClientId, msg: &Message) {
    deliver(b, id, msg, "NOTICE");
}

pub(super) fn tagmsg(b: &mut Broker, id: ClientId, msg: &Message) {
    deliver(b, id, msg, "TAGMSG");
}

fn deliver(b: &mut Broker, id: ClientId, msg: &Message, command: &str) {
    let errors = command != "NOTICE";
    let Some(targets) = msg.params.first().filter(|t| !t.is_empty()) else {
        if errors {
            b.reply(id, numeric::ERR_NORECIPIENT, &[]);
        }
        return;
    };
    let text = msg.params.get(1).filter(|t| !t.is_empty());
    if text.is_none() && command != "TAGMSG" {
        if errors {
            b.reply(id, numeric::ERR_NOTEXTTOSEND, &[]);
        }
        return;
    }
    let sent_at = b.recent_now();
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    if command != "TAGMSG" {
        client.last_message = sent_at;
    }
    let out = Outgoing {
        command,
        text: text.map(String::as_str).filter(|_| command != "TAGMSG"),
        mask: client.mask.clone(),
        client_tags: msg
            .tags
            .as_deref()
            .and_then(tags::client_only)
            .map(Arc::from),
        errors,
    };
    for (i, target) in targets.split(',').filter(|t| !t.is_empty()).enumerate() {
        if i >= b.config.limits.max_targets {
            if errors {
                b.reply(id, numeric::ERR_TOOMANYTARGETS, &[target]);
            }
            break;
        }
        if casemap::is_channel_target(target) {
            to_channel(b, id, &out, target);
        } else {
            to_nick(b, id, &out, target);
        }
    }
}

impl Outgoing<'_> {
    /// This message to `target`, in all its forms (each built when first needed).
    fn forms(&self, target: &str) -> Forms {
        let body = build_line(Some(&self.mask), self.command, &[target], self.text);
        let forms = Forms::message(body, self.client_tags.clone());
        if self.text.is_none() {
            forms.requiring(Caps::MESSAGE_TAGS)
        } else {
            forms
        }
    }
}

fn to_channel(b: &mut Broker, id: ClientId, out: &Outgoing, target: &str) {
    // Folded on the stack: the key is copied only for the link and for history.
    casemap::with_casefold(target, |key| to_channel_key(b, id, out, target, key));
}

fn to_channel_key(b: &mut Broker, id: ClientId, out: &Outgoing, target: &str, key: &str) {
    let Some(channel) = b.channels.get(key) else {
        if out.errors {
            b.reply(id, numeric::ERR_NOSUCHCHANNEL, &[target]);
        }
        return;
    };
    if !channel.can_send(id, &out.mask) {
        if out.errors {
            b.reply(id, numeric::ERR_CANNOTSENDTOCHAN, &[target]);
        }
        return;
    }
    let mut forms = out.forms(&channel.name);
    if let (true, Some(text)) = (b.linked(), out.text) {
        let event = Remote::Message {
            uid: id,
            command: out.command.to_string(),
            target: MsgTarget::Channel(channel.name.clone()),
            text: text.to_string(),
        };
        // Once per message, to the nodes with members in the channel.
        b.link_out(LinkOut::Publish {
            route: Route::Channel(key.to_string()),
            event,
        });
    }
    b.broadcast_forms(key, &mut forms, Some(id));
    echo(b, id, &mut forms);
    // Only with history on: the name is copied for the record, never on the plain hot path.
    if out.text.is_some() && b.config.hooks.history.is_some() {
        let name = b
            .channels
            .get(key)
            .map_or_else(|| key.to_string(), |c| c.name.clone());
        b.remember_message(key.to_string(), name, &mut forms);
    }
}

fn to_nick(b: &mut Broker, id: ClientId, out: &Outgoing, target: &str) {
    let Some(to) = casemap::with_casefold(target, |key| b.nicks.get(key).copied()) else {
        if out.errors {
            b.reply(id, numeric::ERR_NOSUCHNICK, &[target]);
        }
        return;
    };
    let Some(recipient) = b.clients.get(&to).filter(|c| c.registered) else {
        if out.errors {
            b.reply(id, numeric::ERR_NOSUCHNICK, &[target]);
        }
        return;
    };
    // The forms own their bytes: built while the recipient is borrowed, so its nick is copied
    // only when history keeps it (or for an away reply, which is rare).
    let mut forms = out.forms(recipient.nick());
    let recipient_caps = recipient.caps;
    let history_nick = (out.text.is_some() && b.config.hooks.history.is_some())
        .then(|| recipient.nick().to_string());
    let away = recipient
        .away
        .as_ref()
        .filter(|_| out.command == "PRIVMSG")
        .map(|a| (recipient.nick().to_string(), a.clone()));
    // Only a linked node has remote users: said at compile time, so the minimal build leaves
    // this branch out (see `Broker::linked`).
    if let Some(node) = recipient.node.clone().filter(|_| b.linked()) {
        let uid = recipient.remote_uid;
        if let Some(text) = out.text {
            let event = Remote::Message {
                uid: id,
                command: out.command.to_string(),
                target: MsgTarget::User(uid),
                text: text.to_string(),
            };
            b.link_out(LinkOut::Publish {
                route: Route::Node(node),
                event,
            });
        }
        if let Some((nick, text)) = away {
            b.reply(id, numeric::RPL_AWAY, &[&nick, &text]);
        }
        echo(b, id, &mut forms);
        return;
    }
    if let Some(line) = forms.line_for(recipient_caps) {
        // To oneself: the delivered copy is not part of a labeled response, the echo is.
        b.send_uncaptured(to, line.clone());
    }
    if let Some(recipient_nick) = history_nick {
        let sender = out.mask.split('!').next().unwrap_or(&out.mask);
        let conversation = private_key(sender, &recipient_nick);
        b.remember_message(conversation.clone(), conversation, &mut forms);
    }
    if let Some((nick, text)) = away {
        b.reply(id, numeric::RPL_AWAY, &[&nick, &text]);
    }
    echo(b, id, &mut forms);
}

/// With echo-message, the sender gets its message back as delivered.
fn echo(b: &mut Broker, id: ClientId, forms: &mut Forms) {
    if b.clients
        .get(&id)
        .is_some_and(|c| c.caps.has(Caps::ECHO_MESSAGE))
    {
        b.send_forms(id, forms);
    }
}
