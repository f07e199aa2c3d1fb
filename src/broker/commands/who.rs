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
            // Secret channels show nothing to non-members, invisible members are hidden from
            // non-members.
            let member_view = channel.members.contains_key(&id);
            for (&member, m) in &channel.members {
                let invisible = b.clients.get(&member).is_some_and(|c| c.invisible);
                if member_view || (channel.is_visible_to(id) && !invisible) {
                    rows.push((channel.name.clone(), member, m.prefix()));
                }
            }
        }
    } else {
        let pattern = casemap::casefold(&mask);
        for client in b.clients.values().filter(|c| c.registered) {
            if glob_match(
                pattern.as_bytes(),
                casemap::casefold(client.nick()).as_bytes(),
            ) && b.user_visible_to(client.id, id)
            {
                rows.push(("*".into(), client.id, ""));
            }
        }
    }
    let server = b.config.server_name.clone();
    for (channel, member, prefix) in rows {
        let Some(c) = b.clients.get(&member) else {
            continue;
        };
        let here = if c.away.is_some() { "G" } else { "H" };
        let flags = format!("{here}{}{prefix}", if c.oper { "*" } else { "" });
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
