//! CAP: capability negotiation (IRCv3). We advertise no capability yet, but a client that
//! negotiates must still register: CAP LS or REQ holds registration until CAP END.

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn cap(b: &mut Broker, id: ClientId, msg: &Message) {
    let sub = msg.params[0].to_ascii_uppercase();
    let registered = b.clients.get(&id).is_some_and(|c| c.registered);
    let nick = b.nick_of(id).to_string();
    match sub.as_str() {
        "LS" | "LIST" => {
            if sub == "LS" && !registered {
                hold_registration(b, id);
            }
            let line = b.line_from_server("CAP", &[&nick, &sub], Some(""));
            b.send(id, line);
        }
        "REQ" => {
            if !registered {
                hold_registration(b, id);
            }
            let requested = msg.params.get(1).map(String::as_str).unwrap_or("");
            let line = b.line_from_server("CAP", &[&nick, "NAK"], Some(requested));
            b.send(id, line);
        }
        "END" => {
            if let Some(c) = b.clients.get_mut(&id) {
                c.cap_negotiating = false;
            }
            super::try_complete_registration(b, id);
        }
        _ => b.reply(id, numeric::ERR_INVALIDCAPCMD, &[&msg.params[0]]),
    }
}

fn hold_registration(b: &mut Broker, id: ClientId) {
    if let Some(c) = b.clients.get_mut(&id) {
        c.cap_negotiating = true;
    }
}
