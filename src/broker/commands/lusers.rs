//! LUSERS: how many users, channels and connections the node has (251, 253, 254, 255, 265, 266).

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn lusers(b: &mut Broker, id: ClientId, _msg: &Message) {
    send_lusers(b, id);
}

pub(super) fn send_lusers(b: &mut Broker, id: ClientId) {
    let users = b.registered_count();
    let invisible = b
        .clients
        .values()
        .filter(|c| c.registered && c.invisible)
        .count();
    let unknown = b.clients.len() - users;
    let channels = b.channels.len();
    let max = b.max_registered;
    b.reply(
        id,
        numeric::RPL_LUSERCLIENT,
        &[&format!(
            "There are {} users and {invisible} invisible on 1 servers",
            users - invisible
        )],
    );
    let opers = b.clients.values().filter(|c| c.oper).count();
    if opers > 0 {
        b.reply(id, numeric::RPL_LUSEROP, &[&opers.to_string()]);
    }
    if unknown > 0 {
        b.reply(id, numeric::RPL_LUSERUNKNOWN, &[&unknown.to_string()]);
    }
    b.reply(id, numeric::RPL_LUSERCHANNELS, &[&channels.to_string()]);
    b.reply(
        id,
        numeric::RPL_LUSERME,
        &[&format!("I have {users} clients and 0 servers")],
    );
    let (u, m) = (users.to_string(), max.to_string());
    b.reply(
        id,
        numeric::RPL_LOCALUSERS,
        &[&u, &m, &format!("Current local users {users}, max {max}")],
    );
    b.reply(
        id,
        numeric::RPL_GLOBALUSERS,
        &[&u, &m, &format!("Current global users {users}, max {max}")],
    );
}
