//! KILL (operators only): disconnect a user. The victim gets a KILL line and `ERROR`; its
//! channel peers see `QUIT :Killed (oper (reason))`. Without a reason the operator's nick is
//! used.

use crate::broker::{build_line, Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn kill(b: &mut Broker, id: ClientId, msg: &Message) {
    let target = &msg.params[0];
    if casemap::eq_casefold(target, &b.config.server_name) {
        b.reply(id, numeric::ERR_CANTKILLSERVER, &[]);
        return;
    }
    let Some(&victim) = b.nicks.get(&casemap::casefold(target)) else {
        b.reply(id, numeric::ERR_NOSUCHNICK, &[target]);
        return;
    };
    let Some(killer) = b.clients.get(&id) else {
        return;
    };
    let (mask, nick) = (killer.mask.clone(), killer.nick().to_string());
    let reason = msg
        .params
        .get(1)
        .filter(|r| !r.is_empty())
        .unwrap_or(&nick)
        .clone();
    let victim_nick = b.nick_of(victim).to_string();
    log::info!("KILL {victim_nick} by {mask}: {reason}");
    let line = build_line(Some(&mask), "KILL", &[&victim_nick], Some(&reason));
    b.send(victim, line);
    b.disconnect(victim, &format!("Killed ({nick} ({reason}))"));
}
