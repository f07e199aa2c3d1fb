//! PASS: the server password, checked when registration completes.

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn pass(b: &mut Broker, id: ClientId, msg: &Message) {
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    if client.registered {
        b.reply(id, numeric::ERR_ALREADYREGISTERED, &[]);
        return;
    }
    client.pass = Some(msg.params[0].clone());
}
