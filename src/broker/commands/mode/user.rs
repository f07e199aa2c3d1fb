//! User MODE on oneself: `+i`/`-i` (invisible), `+w`/`-w` (WALLOPS), `-o` (drop operator
//! status; `+o` only comes from OPER and is ignored here).

use crate::broker::{build_line, Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn user_mode(b: &mut Broker, id: ClientId, msg: &Message) {
    let target = &msg.params[0];
    let Some(&target_id) = b.nicks.get(&casemap::casefold(target)) else {
        b.reply(id, numeric::ERR_NOSUCHNICK, &[target]);
        return;
    };
    if target_id != id {
        b.reply(id, numeric::ERR_USERSDONTMATCH, &[]);
        return;
    }
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    let Some(changes) = msg.params.get(1) else {
        let modes = client.user_modes();
        b.reply(id, numeric::RPL_UMODEIS, &[&modes]);
        return;
    };
    let mut adding = true;
    let mut applied = String::new();
    let mut sign = None;
    let mut unknown = false;
    for letter in changes.chars() {
        let flag = match letter {
            '+' | '-' => {
                adding = letter == '+';
                continue;
            }
            'i' => &mut client.invisible,
            'w' => &mut client.wallops,
            // Operator status is dropped with -o; it can only be gained through OPER.
            'o' if !adding => &mut client.oper,
            'o' => continue,
            _ => {
                unknown = true;
                continue;
            }
        };
        if *flag != adding {
            *flag = adding;
            if sign != Some(adding) {
                applied.push(if adding { '+' } else { '-' });
                sign = Some(adding);
            }
            applied.push(letter);
        }
    }
    let (nick, mask) = (client.nick().to_string(), client.mask.clone());
    if unknown {
        b.reply(id, numeric::ERR_UMODEUNKNOWNFLAG, &[]);
    }
    if !applied.is_empty() {
        let line = build_line(Some(&mask), "MODE", &[&nick], Some(&applied));
        b.send(id, line);
        if b.linked() && (applied.contains('i') || applied.contains('o')) {
            b.publish_user_modes(id);
        }
    }
}
