//! Changes that name someone or something: `+o`/`+v` (a member) and `+b`/`+e`/`+I` (a mask).

use super::announce::Applied;
use super::apply::channel;
use super::parse::Change;
use crate::broker::channel::{Added, MaskList};
use crate::broker::{Broker, ClientId};
use crate::proto::{casemap, mask, numeric};

/// Longest ban, exception or invite-exception mask accepted.
const MASK_LEN: usize = 120;

pub(super) fn prefix(b: &mut Broker, id: ClientId, key: &str, change: &Change, out: &mut Applied) {
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

pub(super) fn list(b: &mut Broker, id: ClientId, key: &str, change: &Change, out: &mut Applied) {
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
