//! AWAY: set (with text) or clear (without) the away message shown to those who message you.

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn away(b: &mut Broker, id: ClientId, msg: &Message) {
    let away_len = b.config.limits.away_len;
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    match msg.params.first().filter(|t| !t.is_empty()) {
        Some(text) => {
            client.away = Some(super::topic::truncate(text, away_len).to_string());
            b.reply(id, numeric::RPL_NOWAWAY, &[]);
        }
        None => {
            client.away = None;
            b.reply(id, numeric::RPL_UNAWAY, &[]);
        }
    }
}
