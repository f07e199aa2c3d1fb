//! NICK: choose or change a nickname. Nicks are unique under rfc1459 casefolding.

use crate::broker::{build_line, Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn nick(b: &mut Broker, id: ClientId, msg: &Message) {
    let Some(new) = msg.params.first().filter(|n| !n.is_empty()) else {
        b.reply(id, numeric::ERR_NONICKNAMEGIVEN, &[]);
        return;
    };
    if !casemap::is_valid_nick(new, b.config.limits.nick_len) {
        b.reply(id, numeric::ERR_ERRONEUSNICKNAME, &[new]);
        return;
    }
    let folded = casemap::casefold(new);
    if b.nicks.get(&folded).is_some_and(|&owner| owner != id) {
        b.reply(id, numeric::ERR_NICKNAMEINUSE, &[new]);
        return;
    }
    let Some(client) = b.clients.get(&id) else {
        return;
    };
    if client.nick.as_deref() == Some(new.as_str()) {
        return; // no change at all
    }
    if client.registered {
        let line = build_line(Some(&client.mask), "NICK", &[], Some(new));
        let (nick, user) = (
            client.nick().to_string(),
            client.user.clone().unwrap_or_default(),
        );
        let (host, realname) = (client.host.clone(), client.realname.clone());
        b.send_to_peers_and_self(id, &line, true);
        b.whowas.record(&nick, &user, &host, &realname);
        b.remember_in_channels_of(id, &line);
    }
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    if let Some(old) = client.nick.replace(new.clone()) {
        b.nicks.remove(&casemap::casefold(&old));
    }
    client.refresh_mask();
    b.nicks.insert(folded, id);
    b.refresh_bans_of(id);
    super::try_complete_registration(b, id);
}
