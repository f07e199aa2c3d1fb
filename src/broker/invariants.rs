//! Consistency checks over the broker's whole state, for tests and the fuzzer.
//!
//! The broker keeps several views of the same facts (the nick table and each client's nick; each
//! channel's members and each client's channel list). These checks say whether the views agree;
//! they walk every table, so only tests and `examples/fuzz.rs` call them.

use super::Broker;
use crate::proto::casemap;

impl Broker {
    /// Checks that the nick table, the clients and the channel member lists agree. `Err` names
    /// the first disagreement found.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        for (folded, id) in &self.nicks {
            let Some(client) = self.clients.get(id) else {
                return Err(format!(
                    "nick {folded} points at client {id}, which is gone"
                ));
            };
            match &client.nick {
                Some(nick) if is_folded(folded) && casemap::eq_casefold(nick, folded) => {}
                other => {
                    return Err(format!(
                        "nick {folded} -> client {id} whose nick is {other:?}"
                    ))
                }
            }
        }
        // Each entry above points at a distinct client (its nick folds to the entry's key), so
        // every client with a nick is in the table exactly when the counts agree.
        let with_nick = self.clients.values().filter(|c| c.nick.is_some()).count();
        if with_nick != self.nicks.len() {
            let missing = self.clients.iter().find(|(id, c)| {
                c.nick
                    .as_ref()
                    .is_some_and(|n| self.nicks.get(&casemap::casefold(n)) != Some(*id))
            });
            return Err(match missing {
                Some((id, c)) => format!(
                    "client {id}'s nick {} is not in the nick table",
                    c.nick.as_deref().unwrap_or_default()
                ),
                None => format!(
                    "{with_nick} clients have a nick, the nick table has {}",
                    self.nicks.len()
                ),
            });
        }
        for (id, client) in &self.clients {
            for key in &client.channels {
                let member = self
                    .channels
                    .get(key)
                    .is_some_and(|c| c.members.contains_key(id));
                if !member {
                    return Err(format!(
                        "client {id} lists {key} but is not among its members"
                    ));
                }
            }
            if client.channels.len() > self.config.limits.channels_per_client {
                return Err(format!(
                    "client {id} is in {} channels",
                    client.channels.len()
                ));
            }
        }
        for (key, channel) in &self.channels {
            if channel.members.is_empty() {
                return Err(format!("channel {key} is empty but still exists"));
            }
            if !(is_folded(key) && casemap::eq_casefold(&channel.name, key)) {
                return Err(format!("channel {key} is named {}", channel.name));
            }
            for id in channel.members.keys() {
                let listed = self
                    .clients
                    .get(id)
                    .is_some_and(|c| c.channels.contains(key));
                if !listed {
                    return Err(format!(
                        "channel {key} has member {id}, who does not list it"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether `key` is in casefolded form (what [`casemap::casefold`] returns), without
/// allocating: these checks run after every step of the fuzzer.
fn is_folded(key: &str) -> bool {
    !key.bytes()
        .any(|b| b.is_ascii_uppercase() || matches!(b, b'[' | b']' | b'\\' | b'~'))
}
