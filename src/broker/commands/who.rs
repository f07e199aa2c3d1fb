//! WHO: one 352 RPL_WHOREPLY per matching user, then 315 RPL_ENDOFWHO.
//! The mask is a channel name, or a nick pattern with `*` and `?`.

use crate::broker::{Broker, ClientId};
use crate::proto::mask::glob_match;
use crate::proto::{casemap, numeric, Message};

pub(super) fn who(b: &mut Broker, id: ClientId, msg: &Message) {
    let mask = msg.params.first().cloned().unwrap_or_else(|| "*".into());
    // (channel shown, member id, channel prefix)
    let mut rows: Vec<(String, ClientId, &'static str)> = Vec::new();
    if casemap::is_channel_target(&mask) {
        if let Some(channel) = b.channels.get(&casemap::casefold(&mask)) {
            for (&member, m) in &channel.members {
                rows.push((channel.name.clone(), member, m.prefix()));
            }
        }
    } else {
        let pattern = casemap::casefold(&mask);
        for client in b.clients.values().filter(|c| c.registered) {
            if glob_match(
                pattern.as_bytes(),
                casemap::casefold(client.nick()).as_bytes(),
            ) {
                rows.push(("*".into(), client.id, ""));
            }
        }
    }
    let server = b.config.server_name.clone();
    for (channel, member, prefix) in rows {
        let Some(c) = b.clients.get(&member) else {
            continue;
        };
        let flags = format!("{}{prefix}", if c.away.is_some() { "G" } else { "H" });
        let (user, host, nick) = (
            c.user.clone().unwrap_or_default(),
            c.host.clone(),
            c.nick().to_string(),
        );
        let realname = format!("0 {}", c.realname);
        b.reply(
            id,
            numeric::RPL_WHOREPLY,
            &[&channel, &user, &host, &server, &nick, &flags, &realname],
        );
    }
    b.reply(id, numeric::RPL_ENDOFWHO, &[&mask]);
}
