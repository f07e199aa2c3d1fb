//! WHOIS: everything public about one nick (311, 319, 312, 313, 671, 301, 317, 318), and its
//! real address (378, 338) for operators and the user themselves when hosts are cloaked.

use crate::broker::caps::Caps;
use crate::broker::{unix_time, Broker, ClientId, VERSION};
use crate::proto::{casemap, numeric, Message};

pub(super) fn whois(b: &mut Broker, id: ClientId, msg: &Message) {
    // `WHOIS server nick` also exists; the nick is always the last parameter.
    let Some(target) = msg.params.last().filter(|t| !t.is_empty()).cloned() else {
        b.reply(id, numeric::ERR_NONICKNAMEGIVEN, &[]);
        return;
    };
    let caps = b.clients.get(&id).map_or(Caps::NONE, |c| c.caps);
    let found = b
        .nicks
        .get(&casemap::casefold(&target))
        .and_then(|who| b.clients.get(who))
        .filter(|c| c.registered);
    let Some(c) = found else {
        b.reply(id, numeric::ERR_NOSUCHNICK, &[&target]);
        b.reply(id, numeric::RPL_ENDOFWHOIS, &[&target]);
        return;
    };
    let nick = c.nick().to_string();
    let user = c.user.clone().unwrap_or_default();
    let (host, realname, away) = (c.host.clone(), c.realname.clone(), c.away.clone());
    let (oper, secure) = (c.oper, c.secure);
    // The real address, for operators and the user themselves, when others see a cloak.
    let real = crate::cidr::canonical(c.peer.ip()).to_string();
    let show_real = real != host && (c.id == id || b.clients.get(&id).is_some_and(|me| me.oper));
    let idle = c.last_message.elapsed().as_secs().to_string();
    let signon = unix_time(c.signon).to_string();
    // Secret channels, and every channel of an invisible user, show only to fellow members.
    let channels: Vec<String> = c
        .channels
        .iter()
        .filter_map(|key| b.channels.get(key))
        .filter(|ch| ch.members.contains_key(&id) || (!ch.modes.secret && !c.invisible))
        .map(|ch| {
            format!(
                "{}{}",
                ch.members.get(&c.id).map_or("", |m| m.prefix_for(caps)),
                ch.name
            )
        })
        .collect();
    let server = b.server_of(c);
    b.reply(
        id,
        numeric::RPL_WHOISUSER,
        &[&nick, &user, &host, "*", &realname],
    );
    if !channels.is_empty() {
        b.reply(
            id,
            numeric::RPL_WHOISCHANNELS,
            &[&nick, &channels.join(" ")],
        );
    }
    b.reply(id, numeric::RPL_WHOISSERVER, &[&nick, &server, VERSION]);
    if oper {
        b.reply(id, numeric::RPL_WHOISOPERATOR, &[&nick]);
    }
    if secure {
        b.reply(id, numeric::RPL_WHOISSECURE, &[&nick]);
    }
    if let Some(away) = away {
        b.reply(id, numeric::RPL_AWAY, &[&nick, &away]);
    }
    if show_real {
        let from = format!("is connecting from *@{real} {real}");
        b.reply(id, numeric::RPL_WHOISHOST, &[&nick, &from]);
        let actually = format!("{user}@{real}");
        let text = "Actual user@host, actual IP";
        b.reply(
            id,
            numeric::RPL_WHOISACTUALLY,
            &[&nick, &actually, &real, text],
        );
    }
    b.reply(id, numeric::RPL_WHOISIDLE, &[&nick, &idle, &signon]);
    b.reply(id, numeric::RPL_ENDOFWHOIS, &[&nick]);
}
