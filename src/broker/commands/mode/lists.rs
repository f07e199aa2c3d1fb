//! Showing a channel's ban (367/368), exception (348/349) and invite-exception (346/347)
//! lists, for `MODE #channel b` and friends.

use crate::broker::{unix_time, Broker, ClientId};
use crate::proto::numeric;

/// Sends the list of mode `letter` (`b`, `e` or `I`) of channel `key`, then its end numeric.
/// A secret channel's lists are shown to its members only.
pub(super) fn send_list(b: &mut Broker, id: ClientId, key: &str, letter: char) {
    let (item, end) = match letter {
        'b' => (numeric::RPL_BANLIST, numeric::RPL_ENDOFBANLIST),
        'e' => (numeric::RPL_EXCEPTLIST, numeric::RPL_ENDOFEXCEPTLIST),
        _ => (numeric::RPL_INVEXLIST, numeric::RPL_ENDOFINVEXLIST),
    };
    let Some(channel) = b.channels.get(key) else {
        return;
    };
    let name = channel.name.clone();
    let list = match letter {
        'b' => &channel.bans,
        'e' => &channel.excepts,
        _ => &channel.invex,
    };
    let rows: Vec<[String; 3]> = if channel.is_visible_to(id) {
        list.entries
            .iter()
            .map(|e| {
                [
                    e.mask.clone(),
                    e.set_by.clone(),
                    unix_time(e.set_at).to_string(),
                ]
            })
            .collect()
    } else {
        Vec::new()
    };
    for [mask, by, at] in rows {
        b.reply(id, item, &[&name, &mask, &by, &at]);
    }
    b.reply(id, end, &[&name]);
}
