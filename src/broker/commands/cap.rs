//! CAP: capability negotiation (IRCv3). A client that negotiates must still register: CAP LS or
//! REQ holds registration until CAP END.
//!
//! The one capability so far is `sts` (Strict Transport Security), advertised when the node has
//! a TLS listener: on a plain connection its value names the TLS port (`sts=port=6697`) and a
//! client that knows it reconnects there; on a secure connection it is a persistence policy
//! (`sts=duration=...`), which the client remembers. `sts` is informational: REQ for it is
//! refused, as the spec says.

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

/// How long a client remembers the policy after seeing it on a secure connection (30 days).
pub const STS_DURATION_SECS: u64 = 30 * 24 * 3600;

pub(super) fn cap(b: &mut Broker, id: ClientId, msg: &Message) {
    let sub = msg.params[0].to_ascii_uppercase();
    let registered = b.clients.get(&id).is_some_and(|c| c.registered);
    let nick = b.nick_of(id).to_string();
    match sub.as_str() {
        "LS" | "LIST" => {
            if sub == "LS" && !registered {
                hold_registration(b, id);
            }
            // Values (`sts=port=...`) only for clients that said they understand them.
            let version: u32 = msg.params.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            let caps = match advertised(b, id) {
                Some(cap) if sub == "LS" && version >= 302 => cap,
                Some(cap) if sub == "LS" => cap.split('=').next().unwrap_or("").to_string(),
                _ => String::new(),
            };
            let line = b.line_from_server("CAP", &[&nick, &sub], Some(&caps));
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

/// The capabilities `CAP LS` lists for this client.
fn advertised(b: &Broker, id: ClientId) -> Option<String> {
    let port = b.config.sts_port?;
    Some(if b.clients.get(&id).is_some_and(|c| c.secure) {
        format!("sts=duration={STS_DURATION_SECS}")
    } else {
        format!("sts=port={port}")
    })
}

fn hold_registration(b: &mut Broker, id: ClientId) {
    if let Some(c) = b.clients.get_mut(&id) {
        c.cap_negotiating = true;
    }
}
