//! WALLOPS (operators only): a message to every user with user mode +w, serialized once.

use crate::broker::{build_line, Broker, ClientId};
use crate::proto::Message;

pub(super) fn wallops(b: &mut Broker, id: ClientId, msg: &Message) {
    let Some(mask) = b.clients.get(&id).map(|c| c.mask.clone()) else {
        return;
    };
    let line = build_line(Some(&mask), "WALLOPS", &[], Some(&msg.params[0]));
    let receivers: Vec<ClientId> = b
        .clients
        .values()
        .filter(|c| c.registered && c.wallops)
        .map(|c| c.id)
        .collect();
    for receiver in receivers {
        b.send(receiver, line.clone());
    }
}
