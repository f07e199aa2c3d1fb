//! WHOWAS: who recently used a nick (314 and 312 per entry, newest first, then 369), or 406
//! ERR_WASNOSUCHNICK. A positive `<count>` limits the entries per nick. The memory is bounded
//! (see `broker::whowas`).

use crate::broker::{unix_time, Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn whowas(b: &mut Broker, id: ClientId, msg: &Message) {
    let Some(nicks) = msg.params.first().filter(|n| !n.is_empty()).cloned() else {
        b.reply(id, numeric::ERR_NONICKNAMEGIVEN, &[]);
        return;
    };
    let count = msg
        .params
        .get(1)
        .and_then(|c| c.parse::<i64>().ok())
        .filter(|&c| c > 0)
        .map_or(usize::MAX, |c| c as usize);
    for nick in nicks.split(',').filter(|n| !n.is_empty()) {
        one_nick(b, id, nick, count);
        b.reply(id, numeric::RPL_ENDOFWHOWAS, &[nick]);
    }
}

fn one_nick(b: &mut Broker, id: ClientId, nick: &str, count: usize) {
    let entries: Vec<_> = b.whowas.lookup(nick).take(count).cloned().collect();
    if entries.is_empty() {
        b.reply(id, numeric::ERR_WASNOSUCHNICK, &[nick]);
        return;
    }
    let server = b.config.server_name.clone();
    for e in entries {
        b.reply(
            id,
            numeric::RPL_WHOWASUSER,
            &[&e.nick, &e.user, &e.host, "*", &e.realname],
        );
        let when = format!("Logged out at Unix time {}", unix_time(e.at));
        b.reply(id, numeric::RPL_WHOISSERVER, &[&e.nick, &server, &when]);
    }
}
