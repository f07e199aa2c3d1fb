//! PING and PONG. Any line from a client counts as a sign of life (the broker clears the
//! pending-ping flag before dispatch), so PONG itself has nothing left to do.

use crate::broker::{Broker, ClientId};
use crate::proto::Message;

pub(super) fn ping(b: &mut Broker, id: ClientId, msg: &Message) {
    let server = b.config.server_name.clone();
    let line = b.line_from_server("PONG", &[&server], Some(&msg.params[0]));
    b.send(id, line);
}

pub(super) fn pong(_b: &mut Broker, _id: ClientId, _msg: &Message) {}
