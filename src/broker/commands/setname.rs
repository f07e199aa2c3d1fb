//! SETNAME (IRCv3 setname): change one's realname. Accepted changes go to the client itself
//! and to channel peers that enabled `setname` (`:nick!user@host SETNAME :new name`); a client
//! without the capability is not told, as the spec asks. An empty or overlong realname gets
//! `FAIL SETNAME INVALID_REALNAME` (standard-replies).

use crate::broker::caps::Caps;
use crate::broker::forms::Forms;
use crate::broker::{build_line, Broker, ClientId};
use crate::proto::Message;

pub(super) fn setname(b: &mut Broker, id: ClientId, msg: &Message) {
    let realname = msg.params.first().map(String::as_str).unwrap_or("");
    if realname.is_empty() || realname.len() > b.config.limits.realname_len {
        b.fail(
            id,
            "SETNAME",
            "INVALID_REALNAME",
            &[],
            "Realname is not valid",
        );
        return;
    }
    rename(b, id, realname, true);
    if b.linked() {
        let event = crate::broker::link::Remote::Setname {
            uid: id,
            realname: realname.to_string(),
        };
        b.publish_state(id, event);
    }
}

/// A user of another node changed its realname (its node checked it): peers here with the
/// `setname` capability are told.
pub(in crate::broker) fn remote_setname(b: &mut Broker, id: ClientId, realname: &str) {
    rename(b, id, realname, false);
}

/// Sets `id`'s realname and tells its peers with `setname` (and itself, with `to_self`).
fn rename(b: &mut Broker, id: ClientId, realname: &str, to_self: bool) {
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    client.realname = realname.to_string();
    let line = build_line(Some(&client.mask), "SETNAME", &[], Some(realname));
    let mut forms = Forms::new(line).requiring(Caps::SETNAME);
    b.send_forms_to_peers(id, &mut forms, to_self);
}
