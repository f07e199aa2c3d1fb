//! NAMES: who is in a channel (353 RPL_NAMREPLY lines, then 366 RPL_ENDOFNAMES).

use crate::broker::caps::Caps;
use crate::broker::{Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

/// Room for names in one 353 line: 512 minus CRLF and a generous header
/// (`:server 353 nick = #channel :`).
const NAMES_BYTES_PER_LINE: usize = 400;

pub(super) fn names(b: &mut Broker, id: ClientId, msg: &Message) {
    match msg.params.first().filter(|p| !p.is_empty()) {
        Some(list) => {
            for name in list.split(',').filter(|n| !n.is_empty()) {
                let key = casemap::casefold(name);
                send_names(b, id, &key);
                let display = b
                    .channels
                    .get(&key)
                    .map_or(name.to_string(), |c| c.name.clone());
                end_of_names(b, id, &display);
            }
        }
        None => {
            let keys: Vec<String> = b.channels.keys().cloned().collect();
            for key in keys {
                send_names(b, id, &key);
            }
            end_of_names(b, id, "*");
        }
    }
}

/// Sends the 353 lines for channel `key` (nothing if it does not exist).
pub(super) fn send_names(b: &mut Broker, id: ClientId, key: &str) {
    let Some(channel) = b.channels.get(key) else {
        return;
    };
    let name = channel.name.clone();
    let caps = b.clients.get(&id).map_or(Caps::NONE, |c| c.caps);
    let mut lines = Vec::new();
    let mut current = String::new();
    for (member_id, member) in &channel.members {
        let Some(c) = b.clients.get(member_id).filter(|c| c.nick.is_some()) else {
            continue;
        };
        // userhost-in-names: `nick!user@host` instead of the nick.
        let nick: &str = if caps.has(Caps::USERHOST_IN_NAMES) {
            &c.mask
        } else {
            c.nick()
        };
        if !current.is_empty() && current.len() + nick.len() + 2 > NAMES_BYTES_PER_LINE {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(member.prefix_for(caps));
        current.push_str(nick);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    for line in lines {
        b.reply(id, numeric::RPL_NAMREPLY, &["=", &name, &line]);
    }
}

pub(super) fn end_of_names(b: &mut Broker, id: ClientId, name: &str) {
    b.reply(id, numeric::RPL_ENDOFNAMES, &[name]);
}
