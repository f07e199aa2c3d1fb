//! KILL (operators only): disconnect a user. The victim gets a KILL line and `ERROR`; its
//! channel peers see `QUIT :Killed (oper (reason))`. Without a reason the operator's nick is
//! used.
//!
//! A user of another node (on a linked node) is not removed here: the KILL goes to its node,
//! which disconnects it, and its QUIT reaches every node like any other. Removing it here
//! alone would leave it on every other node and on its own.

use crate::broker::link::Remote;
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
    if let Some((target_node, target_uid)) = b
        .clients
        .get(&victim)
        .and_then(|v| v.node.clone().map(|node| (node, v.remote_uid)))
    {
        b.publish_state(
            id,
            Remote::Kill {
                uid: id,
                target_node,
                target_uid,
                reason,
            },
        );
        return;
    }
    kill_local(b, &mask, &nick, victim, &reason);
}

/// Disconnects local user `victim`, killed by `mask` (`nick`).
fn kill_local(b: &mut Broker, mask: &str, nick: &str, victim: ClientId, reason: &str) {
    let victim_nick = b.nick_of(victim).to_string();
    let line = build_line(Some(mask), "KILL", &[&victim_nick], Some(reason));
    b.send(victim, line);
    b.disconnect(victim, &format!("Killed ({nick} ({reason}))"));
}

/// An operator of another node (`killer`, a remote user) killed our user `victim`.
pub(in crate::broker) fn remote_kill(
    b: &mut Broker,
    killer: ClientId,
    victim: ClientId,
    reason: &str,
) {
    let Some(k) = b.clients.get(&killer) else {
        return;
    };
    let (mask, nick) = (k.mask.clone(), k.nick().to_string());
    log::info!(
        "KILL {} by {mask} (another node): {reason}",
        b.nick_of(victim)
    );
    kill_local(b, &mask, &nick, victim, reason);
}
