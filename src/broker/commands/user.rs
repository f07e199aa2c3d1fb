//! USER: username and realname, the second half of registration.

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn user(b: &mut Broker, id: ClientId, msg: &Message) {
    let user_len = b.config.limits.user_len;
    let realname_len = b.config.limits.realname_len;
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    if client.registered || client.user.is_some() {
        b.reply(id, numeric::ERR_ALREADYREGISTERED, &[]);
        return;
    }
    // Keep the mask `nick!user@host` unambiguous: no '!' or '@' (or controls) in a username.
    let username: String = msg.params[0]
        .chars()
        .filter(|c| !matches!(c, '!' | '@') && !c.is_control())
        .take(user_len)
        .collect();
    // Modern: an empty username (and, likewise, an empty realname) is refused with 461.
    if username.is_empty() || msg.params[3].is_empty() {
        b.reply(id, numeric::ERR_NEEDMOREPARAMS, &["USER"]);
        return;
    }
    client.user = Some(username);
    client.realname = super::topic::truncate(&msg.params[3], realname_len).to_string();
    super::try_complete_registration(b, id);
}
