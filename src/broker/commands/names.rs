//! NAMES: who is in a channel (353 RPL_NAMREPLY lines, then 366 RPL_ENDOFNAMES).

use crate::broker::{Broker, ClientId};
use crate::proto::{casemap, Message};

pub(super) fn names(b: &mut Broker, id: ClientId, msg: &Message) {
    match msg.params.first().filter(|p| !p.is_empty()) {
        Some(list) => {
            for name in list.split(',').filter(|n| !n.is_empty()) {
                let key = casemap::casefold(name);
                b.send_names(id, &key);
                let display = b
                    .channels
                    .get(&key)
                    .map_or(name.to_string(), |c| c.name.clone());
                b.end_of_names(id, &display);
            }
        }
        None => {
            let keys: Vec<String> = b.channels.keys().cloned().collect();
            for key in keys {
                b.send_names(id, &key);
            }
            b.end_of_names(id, "*");
        }
    }
}
