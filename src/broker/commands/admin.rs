//! ADMIN: who runs this server (256, then 257, 258, 259 from the `admin-*` settings). A
//! setting left empty is sent as `-`, so a client always gets the four lines it expects.

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn admin(b: &mut Broker, id: ClientId, msg: &Message) {
    if !super::server_target::is_for_us(b, id, msg) {
        return;
    }
    let config = b.config.clone();
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    b.reply(id, numeric::RPL_ADMINME, &[&config.server_name]);
    b.reply(
        id,
        numeric::RPL_ADMINLOC1,
        &[&or_dash(&config.admin.location)],
    );
    b.reply(
        id,
        numeric::RPL_ADMINLOC2,
        &[&or_dash(&config.admin.description)],
    );
    b.reply(
        id,
        numeric::RPL_ADMINEMAIL,
        &[&or_dash(&config.admin.email)],
    );
}
