//! AWAY: set (with text) or clear (without) the away message shown to those who message you.
//! Channel peers with away-notify are told (`:nick!user@host AWAY [:text]`).

use crate::broker::caps::Caps;
use crate::broker::forms::Forms;
use crate::broker::{build_line, Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn away(b: &mut Broker, id: ClientId, msg: &Message) {
    let away_len = b.config.limits.away_len;
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    let text = msg
        .params
        .first()
        .filter(|t| !t.is_empty())
        .map(|t| super::topic::truncate(t, away_len).to_string());
    client.away = text.clone();
    let line = build_line(Some(&client.mask), "AWAY", &[], text.as_deref());
    if text.is_some() {
        b.reply(id, numeric::RPL_NOWAWAY, &[]);
    } else {
        b.reply(id, numeric::RPL_UNAWAY, &[]);
    }
    let mut forms = Forms::new(line).requiring(Caps::AWAY_NOTIFY);
    b.send_forms_to_peers(id, &mut forms, false);
    if b.linked() {
        let event = crate::broker::link::Remote::Away { uid: id, text };
        b.publish_state(id, event);
    }
}

/// A user of another node set (`Some`) or cleared its away message.
pub(in crate::broker) fn remote_away(b: &mut Broker, id: ClientId, text: Option<&str>) {
    if let Some(client) = b.clients.get_mut(&id) {
        client.away = text.map(str::to_string);
        tell_peers(b, id, text);
    }
}

/// Tells `id`'s channel peers with away-notify.
fn tell_peers(b: &mut Broker, id: ClientId, text: Option<&str>) {
    let Some(client) = b.clients.get(&id) else {
        return;
    };
    let line = build_line(Some(&client.mask), "AWAY", &[], text);
    let mut forms = Forms::new(line).requiring(Caps::AWAY_NOTIFY);
    b.send_forms_to_peers(id, &mut forms, false);
}
