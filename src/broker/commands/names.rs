//! NAMES: who is in a channel (353 RPL_NAMREPLY lines, then 366 RPL_ENDOFNAMES).
//!
//! Several channels (`NAMES #a,#b`) get their 353 lines one channel after the other and a
//! single 366 naming the list as given; no argument lists every channel the client may see,
//! then `366 *`. Secret channels and invisible users follow the channel's visibility rules.

use crate::broker::{Broker, ClientId};
use crate::proto::{casemap, Message};

pub(super) fn names(b: &mut Broker, id: ClientId, msg: &Message) {
    match msg.params.first().filter(|p| !p.is_empty()) {
        Some(list) => {
            let names: Vec<&str> = list.split(',').filter(|n| !n.is_empty()).collect();
            for name in &names {
                b.send_names(id, &casemap::casefold(name));
            }
            let end = match names[..] {
                [one] => b
                    .channels
                    .get(&casemap::casefold(one))
                    .map_or(one.to_string(), |c| c.name.clone()),
                _ => list.clone(),
            };
            b.end_of_names(id, &end);
        }
        None => {
            let mut keys: Vec<String> = b.channels.keys().cloned().collect();
            keys.sort_unstable(); // channel keys are unique
            for key in keys {
                b.send_names(id, &key);
            }
            b.end_of_names(id, "*");
        }
    }
}
