//! VERSION: the server's version (351), then the ISUPPORT tokens again (005), as Modern says.

use crate::broker::{Broker, ClientId, VERSION};
use crate::proto::{numeric, Message};

pub(super) fn version(b: &mut Broker, id: ClientId, _msg: &Message) {
    let server = b.config.server_name.clone();
    b.reply(
        id,
        numeric::RPL_VERSION,
        &[VERSION, &server, "chatnode IRC node"],
    );
    b.send_isupport(id);
}
