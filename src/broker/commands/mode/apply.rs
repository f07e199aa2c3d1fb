//! Applying one channel mode change, with its validation, and collecting what changed.

use super::parse::Change;
use crate::broker::channel::{Added, Channel, MaskList};
use crate::broker::{build_line, Broker, ClientId, Line};
use crate::proto::{casemap, mask, numeric};

/// Longest key accepted (KEYLEN in ISUPPORT), as RFC 2812's grammar.
pub(in crate::broker) const KEY_LEN: usize = 23;

/// Longest ban, exception or invite-exception mask accepted.
const MASK_LEN: usize = 120;

/// Bytes of mode parameters per MODE line sent, so a line stays well under 512.
const PARAM_BYTES_PER_LINE: usize = 300;

/// The changes that took effect, in order: (adding, letter, parameter).
#[derive(Default)]
pub(super) struct Applied {
    changes: Vec<(bool, char, Option<String>)>,
    /// A ban or exception list changed: members' cached ban flags must be recomputed.
    pub touched_bans: bool,
}

impl Applied {
    fn push(&mut self, adding: bool, letter: char, arg: Option<String>) {
        self.changes.push((adding, letter, arg));
    }

    /// The MODE lines telling members what changed (`+o-v alice bob`), split so none is too
    /// long; serialized once each.
    pub fn lines(&self, source: &str, channel: &str) -> Vec<Line> {
        let mut lines = Vec::new();
        let mut rest = &self.changes[..];
        while !rest.is_empty() {
            let (mut modes, mut params, mut bytes, mut sign) = (String::new(), Vec::new(), 0, None);
            let mut taken = 0;
            for (adding, letter, arg) in rest {
                let len = arg.as_ref().map_or(0, |a| a.len() + 1);
                if taken > 0 && bytes + len > PARAM_BYTES_PER_LINE {
                    break;
                }
                if sign != Some(*adding) {
                    modes.push(if *adding { '+' } else { '-' });
                    sign = Some(*adding);
                }
                modes.push(*letter);
                params.extend(arg.as_deref());
                bytes += len;
                taken += 1;
            }
            rest = &rest[taken..];
            let mut middle = vec![channel, modes.as_str()];
            middle.extend(params);
            lines.push(build_line(Some(source), "MODE", &middle, None));
        }
        lines
    }
}

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

fn channel<'a>(b: &'a mut Broker, key: &str) -> &'a mut Channel {
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

fn prefix(b: &mut Broker, id: ClientId, key: &str, change: &Change, out: &mut Applied) {
    let target = change.arg.as_deref().unwrap_or_default();
    let Some(&target_id) = b.nicks.get(&casemap::casefold(target)) else {
        b.reply(id, numeric::ERR_NOSUCHNICK, &[target]);
        return;
    };
    let target_nick = b.nick_of(target_id).to_string();
    let channel = channel(b, key);
    let name = channel.name.clone();
    let Some(member) = channel.members.get_mut(&target_id) else {
        b.reply(id, numeric::ERR_USERNOTINCHANNEL, &[&target_nick, &name]);
        return;
    };
    let flag = if change.letter == 'o' {
        &mut member.op
    } else {
        &mut member.voice
    };
    if *flag != change.adding {
        *flag = change.adding;
        out.push(change.adding, change.letter, Some(target_nick));
    }
}

fn list(b: &mut Broker, id: ClientId, key: &str, change: &Change, out: &mut Applied) {
    let given = change.arg.as_deref().unwrap_or_default();
    let normalized = mask::normalize(given);
    if normalized.len() > MASK_LEN {
        let name = b.channels[key].name.clone();
        let why = format!("Mask too long (at most {MASK_LEN} bytes)");
        let letter = change.letter.to_string();
        b.reply(
            id,
            numeric::ERR_INVALIDMODEPARAM,
            &[&name, &letter, "*", &why],
        );
        return;
    }
    let set_by = b
        .clients
        .get(&id)
        .map(|c| c.mask.to_string())
        .unwrap_or_default();
    let channel = channel(b, key);
    let name = channel.name.clone();
    let list: &mut MaskList = match change.letter {
        'b' => &mut channel.bans,
        'e' => &mut channel.excepts,
        _ => &mut channel.invex,
    };
    if change.adding {
        match list.add(&normalized, &set_by) {
            Added::New => out.push(true, change.letter, Some(normalized)),
            Added::Already => {}
            Added::Full => {
                let letter = change.letter.to_string();
                b.reply(id, numeric::ERR_BANLISTFULL, &[&name, &letter]);
                return;
            }
        }
    } else if let Some(removed) = list.remove(&normalized).or_else(|| list.remove(given)) {
        out.push(false, change.letter, Some(removed));
    } else {
        return;
    }
    out.touched_bans |= change.letter != 'I';
}
