//! WHO: one 352 RPL_WHOREPLY per matching user, then 315 RPL_ENDOFWHO.
//! The mask is a channel name, or a nick pattern with `*` and `?`.

use crate::broker::{Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

pub(super) fn who(b: &mut Broker, id: ClientId, msg: &Message) {
    let mask = msg.params.first().cloned().unwrap_or_else(|| "*".into());
    // (channel shown, member id, channel prefix)
    let mut rows: Vec<(String, ClientId, &'static str)> = Vec::new();
    if casemap::is_channel_target(&mask) {
        if let Some(channel) = b.channels.get(&casemap::casefold(&mask)) {
            for (&member, m) in &channel.members {
                rows.push((channel.name.clone(), member, m.prefix()));
            }
        }
    } else {
        let pattern = casemap::casefold(&mask);
        for client in b.clients.values().filter(|c| c.registered) {
            if glob_match(
                pattern.as_bytes(),
                casemap::casefold(client.nick()).as_bytes(),
            ) {
                rows.push(("*".into(), client.id, ""));
            }
        }
    }
    let server = b.config.server_name.clone();
    for (channel, member, prefix) in rows {
        let Some(c) = b.clients.get(&member) else {
            continue;
        };
        let flags = format!("{}{prefix}", if c.away.is_some() { "G" } else { "H" });
        let (user, host, nick) = (
            c.user.clone().unwrap_or_default(),
            c.host.clone(),
            c.nick().to_string(),
        );
        let realname = format!("0 {}", c.realname);
        b.reply(
            id,
            numeric::RPL_WHOREPLY,
            &[&channel, &user, &host, &server, &nick, &flags, &realname],
        );
    }
    b.reply(id, numeric::RPL_ENDOFWHO, &[&mask]);
}

/// Matches `*` (any run) and `?` (any one byte); everything else literally.
pub(super) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"a*c", b"abbbc"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(!glob_match(b"a?c", b"abbc"));
        assert!(glob_match(b"nick", b"nick"));
        assert!(!glob_match(b"nick", b"nicks"));
        assert!(glob_match(b"*s", b"nicks"));
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"", b"x"));
    }
}
