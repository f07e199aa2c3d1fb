//! NICK: choose or change a nickname. Nicks are unique under rfc1459 casefolding.
//!
//! On a linked node (`--link`) a nick must also be unique on the whole network: registration
//! and every change of a registered nick first claim the nick in the network's nick bucket (a
//! JetStream KV create, which has exactly one winner). The client is parked meanwhile, so its
//! later commands wait and its replies keep their order; [`nick_claimed`] finishes the job.

use crate::broker::link::{ClaimOutcome, LinkOut, Remote};
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
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    if client.nick.as_deref() == Some(new.as_str()) {
        return; // no change at all
    }
    let same_key = client
        .nick
        .as_deref()
        .is_some_and(|old| casemap::casefold(old) == folded);
    if client.registered && b.config.hooks.link.is_some() && !same_key {
        // The network decides; the answer comes back as `nick_claimed`.
        b.park(id);
        b.link_out(LinkOut::Claim {
            id,
            nick: new.clone(),
            reclaim: false,
        });
        return;
    }
    if !client.registered {
        // A claim made for another nick no longer stands.
        client.nick_claimed = false;
    }
    let rev = client.rev;
    rename(b, id, new, rev);
    if same_key {
        let event = Remote::Nick {
            uid: id,
            nick: new.clone(),
            rev,
        };
        b.publish_state(id, event);
    }
    super::try_complete_registration(b, id);
}

/// The network's answer to a claim of `nick` for client `id` (registration or NICK change).
pub(in crate::broker) fn nick_claimed(
    b: &mut Broker,
    id: ClientId,
    nick: &str,
    outcome: ClaimOutcome,
) {
    b.unpark(id);
    let Some(client) = b.clients.get_mut(&id) else {
        // Gone while we asked: give the nick back.
        if let ClaimOutcome::Won(rev) = outcome {
            b.link_out(LinkOut::Release {
                nick: nick.to_string(),
                rev,
            });
        }
        return;
    };
    let rev = match outcome {
        ClaimOutcome::Won(rev) => rev,
        ClaimOutcome::Unconfirmed => 0,
        ClaimOutcome::Taken => {
            log::info!("nick {nick} for client {id} is in use elsewhere on the network");
            if !client.registered && client.nick.as_deref() == Some(nick) {
                client.nick = None;
                client.nick_claimed = false;
                b.nicks.remove(&casemap::casefold(nick));
            }
            b.nick_taken(id, nick);
            return;
        }
    };
    if !client.registered {
        if client.nick.as_deref() == Some(nick) {
            client.nick_claimed = true;
            client.rev = rev;
            super::try_complete_registration(b, id);
        } else if rev > 0 {
            b.link_out(LinkOut::Release {
                nick: nick.to_string(),
                rev,
            });
        }
        return;
    }
    // A registered client's change: someone local may have taken the nick meanwhile.
    let folded = casemap::casefold(nick);
    if b.nicks.get(&folded).is_some_and(|&owner| owner != id) {
        if rev > 0 {
            b.link_out(LinkOut::Release {
                nick: nick.to_string(),
                rev,
            });
        }
        b.nick_taken(id, nick);
        return;
    }
    let (old, old_rev) = (client.nick().to_string(), client.rev);
    rename(b, id, nick, rev);
    if old_rev > 0 {
        b.link_out(LinkOut::Release {
            nick: old,
            rev: old_rev,
        });
    }
    let event = Remote::Nick {
        uid: id,
        nick: nick.to_string(),
        rev,
    };
    b.publish_state(id, event);
}

/// Gives client `id` (local or remote) the nick `new`, telling it and its channel peers if it
/// is registered. The caller has checked that `new` is valid and free.
pub(in crate::broker) fn rename(b: &mut Broker, id: ClientId, new: &str, rev: u64) {
    let Some(client) = b.clients.get(&id) else {
        return;
    };
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
    let old = client.nick.replace(new.to_string());
    client.rev = rev;
    client.refresh_mask();
    if let Some(old) = old {
        let old = casemap::casefold(&old);
        if b.nicks.get(&old) == Some(&id) {
            b.nicks.remove(&old);
            b.adopt_orphan_nick(&old);
        }
    }
    let folded = casemap::casefold(new);
    if b.nicks.get(&folded).is_none_or(|&holder| holder == id) {
        b.nicks.insert(folded, id);
    } else {
        log::warn!("nick {new} of client {id} is held here by another client");
    }
    b.refresh_bans_of(id);
}
