//! USERS: the users logged in on the server's host, long obsolete; Modern lets a server
//! answer 446 ERR_USERSDISABLED, which is what this node does.

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn users(b: &mut Broker, id: ClientId, _msg: &Message) {
    b.reply(id, numeric::ERR_USERSDISABLED, &[]);
}
