//! LINKS: the servers of the network: this node (hop count 0), then, on a linked node, every
//! other node heard from (hop count 1: they all meet on one NATS server), then 365.

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn links(b: &mut Broker, id: ClientId, _msg: &Message) {
    let server = b.config.server_name.clone();
    let description = format!("0 {} IRC chat node", b.config.network);
    b.reply(id, numeric::RPL_LINKS, &["*", &server, &description]);
    let others: Vec<String> = b.link.nodes.values().map(|n| n.name.clone()).collect();
    for name in others {
        let description = format!("1 {} IRC chat node (linked through NATS)", b.config.network);
        b.reply(id, numeric::RPL_LINKS, &["*", &name, &description]);
    }
    b.reply(id, numeric::RPL_ENDOFLINKS, &["*"]);
}
