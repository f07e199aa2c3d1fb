//! MOTD: the message of the day (375, 372 each line, 376), or 422 when there is none.

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn motd(b: &mut Broker, id: ClientId, _msg: &Message) {
    send_motd(b, id);
}

pub(super) fn send_motd(b: &mut Broker, id: ClientId) {
    let config = b.config.clone();
    let Some(lines) = &config.motd else {
        b.reply(id, numeric::ERR_NOMOTD, &[]);
        return;
    };
    let start = format!("- {} Message of the day - ", config.server_name);
    b.reply(id, numeric::RPL_MOTDSTART, &[&start]);
    for line in lines {
        b.reply(id, numeric::RPL_MOTD, &[&format!("- {line}")]);
    }
    b.reply(id, numeric::RPL_ENDOFMOTD, &[]);
}
