//! Applying one channel mode change, with its validation.

use super::announce::Applied;
use super::parse::Change;
use super::targets::{list, prefix};
use crate::broker::channel::Channel;
use crate::broker::{Broker, ClientId};
use crate::proto::numeric;

/// Longest key accepted (KEYLEN in ISUPPORT), as RFC 2812's grammar.
pub(in crate::broker) const KEY_LEN: usize = 23;

/// Applies `change` to channel `key` for operator `id`, answering errors to `id`.
pub(super) fn apply(b: &mut Broker, id: ClientId, key: &str, change: &Change, out: &mut Applied) {
    let (adding, letter) = (change.adding, change.letter);
    let arg = change.arg.as_deref();
    match letter {
        'o' | 'v' => prefix(b, id, key, change, out),
        'b' | 'e' | 'I' => list(b, id, key, change, out),
        'k' if adding => {
            let key_value = arg.unwrap_or_default();
            if !valid_key(key_value) {
                let name = b.channels[key].name.clone();
                let why = format!(
                    "Invalid key: 1 to {KEY_LEN} printable ASCII characters, no spaces or commas"
                );
                b.reply(id, numeric::ERR_INVALIDMODEPARAM, &[&name, "k", "*", &why]);
                return;
            }
            let modes = &mut channel(b, key).modes;
            if modes.key.as_deref() != Some(key_value) {
                modes.key = Some(key_value.to_string());
                out.push(true, 'k', Some(key_value.to_string()));
            }
        }
        'k' => {
            if channel(b, key).modes.key.take().is_some() {
                out.push(false, 'k', Some("*".into()));
            }
        }
        'l' if adding => {
            let given = arg.unwrap_or_default();
            let Some(limit) = given.parse::<u32>().ok().filter(|&l| l > 0) else {
                let name = b.channels[key].name.clone();
                let shown = if given.is_empty() { "*" } else { given };
                let why = "Invalid limit: a positive whole number";
                b.reply(id, numeric::ERR_INVALIDMODEPARAM, &[&name, "l", shown, why]);
                return;
            };
            let modes = &mut channel(b, key).modes;
            if modes.limit != Some(limit as usize) {
                modes.limit = Some(limit as usize);
                out.push(true, 'l', Some(limit.to_string()));
            }
        }
        'l' => {
            if channel(b, key).modes.limit.take().is_some() {
                out.push(false, 'l', None);
            }
        }
        _ => flag(channel(b, key), adding, letter, out),
    }
}

pub(super) fn channel<'a>(b: &'a mut Broker, key: &str) -> &'a mut Channel {
    b.channels
        .get_mut(key)
        .expect("MODE runs on an existing channel")
}

/// A key JOIN can carry: 1..=[`KEY_LEN`] printable ASCII bytes, no space or comma (JOIN
/// separates keys with commas).
fn valid_key(key: &str) -> bool {
    (1..=KEY_LEN).contains(&key.len()) && key.bytes().all(|c| c.is_ascii_graphic() && c != b',')
}

fn flag(channel: &mut Channel, adding: bool, letter: char, out: &mut Applied) {
    let m = &mut channel.modes;
    let flag = match letter {
        'i' => &mut m.invite_only,
        'm' => &mut m.moderated,
        'n' => &mut m.no_external,
        's' => &mut m.secret,
        't' => &mut m.topic_ops_only,
        _ => return,
    };
    if *flag != adding {
        *flag = adding;
        out.push(adding, letter, None);
    }
}
