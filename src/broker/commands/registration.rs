//! Completing registration, in one place: NICK, USER and CAP END each call
//! [`try_complete_registration`], which checks the password and sends the welcome burst
//! (001-005, LUSERS, MOTD; built in [`crate::broker::replies`]).

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
}
