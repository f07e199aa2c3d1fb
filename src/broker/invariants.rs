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
                Some(nick) if casemap::casefold(nick) == *folded => {}
                other => {
                    return Err(format!(
                        "nick {folded} -> client {id} whose nick is {other:?}"
                    ))
                }
            }
        }
        for (id, client) in &self.clients {
            if let Some(nick) = &client.nick {
                if self.nicks.get(&casemap::casefold(nick)) != Some(id) {
                    return Err(format!(
                        "client {id}'s nick {nick} is not in the nick table"
                    ));
                }
            }
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
            if casemap::casefold(&channel.name) != *key {
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
