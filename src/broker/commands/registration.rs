//! Completing registration, in one place: NICK, USER and CAP END each call
//! [`try_complete_registration`], which checks the password and sends the welcome burst
//! (001-005, LUSERS, MOTD; built in [`crate::broker::replies`]). On a linked node the nick is
//! first claimed on the network (see [`super::nick`]), and the new user is then introduced.

use crate::broker::{Broker, ClientId};
use crate::proto::numeric;

/// Registers `id` if it has a nick and a user and is not negotiating capabilities.
pub(in crate::broker) fn try_complete_registration(b: &mut Broker, id: ClientId) {
    let Some(client) = b.clients.get(&id) else {
        return;
    };
    if client.registered || client.cap_negotiating || client.nick.is_none() || client.user.is_none()
    {
        return;
    }
    if let Some(password) = &b.config.password {
        if client.pass.as_ref() != Some(password) {
            b.reply(id, numeric::ERR_PASSWDMISMATCH, &[]);
            b.disconnect(id, "Bad password");
            return;
        }
    }
    if b.linked() && !client.nick_claimed {
        // The network must agree first: claim the nick, park the client until the answer
        // (`nick_claimed` calls us again).
        let nick = client.nick().to_string();
        b.park(id);
        b.link_out(crate::broker::link::LinkOut::Claim {
            id,
            nick,
            reclaim: false,
        });
        return;
    }
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    client.registered = true;
    client.refresh_mask();
    let mask = client.mask.clone();
    log::info!("registered {mask}");
    let registered = b.registered_count();
    b.max_registered = b.max_registered.max(registered);
    b.send_welcome(id, &mask);
    b.send_lusers(id);
    b.send_motd(id);
    // `linked` first: the minimal build (no link feature) then leaves `user_info` out.
    if let Some(info) = b.linked().then(|| b.user_info(id)).flatten() {
        b.publish_state(id, crate::broker::link::Remote::Intro(info));
    }
}
