//! USERHOST and ISON: quick lookups clients use for notify lists and their own host.

use crate::broker::{Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

/// `USERHOST nick...` -> 302 with `nick[*]=+|-user@host` for each known nick (at most 5).
pub(super) fn userhost(b: &mut Broker, id: ClientId, msg: &Message) {
    let mut replies = Vec::new();
    for nick in msg.params.iter().take(5) {
        let found = b
            .nicks
            .get(&casemap::casefold(nick))
            .and_then(|who| b.clients.get(who))
            .filter(|c| c.registered);
        if let Some(c) = found {
            replies.push(format!(
                "{}{}={}{}@{}",
                c.nick(),
                if c.oper { "*" } else { "" },
                if c.away.is_some() { "-" } else { "+" },
                c.user.as_deref().unwrap_or(""),
                c.host
            ));
        }
    }
    b.reply(id, numeric::RPL_USERHOST, &[&replies.join(" ")]);
}

/// `ISON nick...` -> 303 with the nicks that are online, as the server spells them.
pub(super) fn ison(b: &mut Broker, id: ClientId, msg: &Message) {
    let online: Vec<String> = msg
        .params
        .iter()
        .flat_map(|p| p.split(' '))
        .filter_map(|nick| b.nicks.get(&casemap::casefold(nick)))
        .filter_map(|who| b.clients.get(who))
        .filter(|c| c.registered)
        .map(|c| c.nick().to_string())
        .collect();
    b.reply(id, numeric::RPL_ISON, &[&online.join(" ")]);
}
