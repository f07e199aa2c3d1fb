//! LIST: channels with their member counts and topics (321, 322 each, 323).

use crate::broker::{Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn list(b: &mut Broker, id: ClientId, msg: &Message) {
    let wanted: Option<Vec<String>> = msg
        .params
        .first()
        .filter(|p| !p.is_empty())
        .map(|p| p.split(',').map(casemap::casefold).collect());
    let mut rows: Vec<(String, String, String)> = b
        .channels
        .iter()
        .filter(|(key, _)| wanted.as_ref().is_none_or(|w| w.contains(key)))
        .filter(|(_, c)| c.is_visible_to(id))
        .map(|(_, c)| {
            let topic = c.topic.as_ref().map(|t| t.text.clone()).unwrap_or_default();
            (c.name.clone(), c.members.len().to_string(), topic)
        })
        .collect();
    rows.sort();
    b.reply(id, numeric::RPL_LISTSTART, &["Channel"]);
    for (name, count, topic) in rows {
        b.reply(id, numeric::RPL_LIST, &[&name, &count, &topic]);
    }
    b.reply(id, numeric::RPL_LISTEND, &[]);
}
