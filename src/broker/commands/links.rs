//! LINKS: the servers of the network. A chatnode is a network of one, so the list is this
//! server alone (364 with hop count 0, then 365).

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn links(b: &mut Broker, id: ClientId, _msg: &Message) {
    let server = b.config.server_name.clone();
    let description = format!("0 {} IRC chat node", b.config.network);
    b.reply(id, numeric::RPL_LINKS, &["*", &server, &description]);
    b.reply(id, numeric::RPL_ENDOFLINKS, &["*"]);
}
