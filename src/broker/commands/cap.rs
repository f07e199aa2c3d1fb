//! CAP: IRCv3 capability negotiation (capability-negotiation spec, version 302).
//!
//! `CAP LS [version]` lists what the node offers (see [`crate::broker::caps::OFFERED`], and
//! `sts` when the node has a TLS listener);
//! `LIST` what the client enabled; `REQ` changes the client's set, all of it or nothing
//! (ACK or NAK); `END` lets registration go on. `LS` and `REQ` before registration hold it
//! until `END`. A client that sent `LS 302` (or higher) has cap-notify implicitly (shown by
//! `LIST` once it requests it), may not turn it off, and gets multiline `LS`/`LIST` replies
//! when they do not fit one line.

use crate::broker::caps::{self, Caps};
use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

/// Room for the capability list in one CAP line: 512 minus CRLF, the server name, the nick and
/// the subcommand, with a margin.
const CAPS_BYTES_PER_LINE: usize = 350;

pub(super) fn cap(b: &mut Broker, id: ClientId, msg: &Message) {
    let sub = msg.params[0].to_ascii_uppercase();
    let arg = msg.params.get(1).map(String::as_str);
    match sub.as_str() {
        "LS" => ls(b, id, arg),
        "LIST" => list(b, id),
        "REQ" => req(b, id, arg.unwrap_or("")),
        "END" => end(b, id),
        _ => b.reply(id, numeric::ERR_INVALIDCAPCMD, &[&msg.params[0]]),
    }
}

fn ls(b: &mut Broker, id: ClientId, version: Option<&str>) {
    let version: u32 = version.and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    hold_registration(b, id);
    // 302 implies cap-notify (see `req`); it is listed by LIST only once requested.
    if let Some(c) = b.clients.get_mut(&id) {
        c.cap_version = c.cap_version.max(version);
    }
    let mut names: Vec<&str> = caps::OFFERED
        .iter()
        .filter(|&&(_, cap)| offered(b, cap))
        .map(|(n, _)| *n)
        .collect();
    // `sts` only has a meaning with its value, and values are for 302 clients only.
    let sts = sts_value(b, id).filter(|_| version >= 302);
    if let Some(sts) = &sts {
        names.push(sts);
    }
    send_list(b, id, "LS", &names);
}

/// Whether this node offers `cap`: the history capabilities (`draft/chathistory`,
/// `draft/event-playback`) only when it keeps history (`--history on` and a build with it),
/// so a client never asks CHATHISTORY of a node that has nothing to answer with.
fn offered(b: &Broker, cap: Caps) -> bool {
    !cap.any(Caps::CHATHISTORY.with(Caps::EVENT_PLAYBACK)) || b.config.hooks.history.is_some()
}

/// How long a client remembers the STS policy after seeing it on a secure connection (30 days).
pub const STS_DURATION_SECS: u64 = 30 * 24 * 3600;

/// The `sts` capability for this client, when the node has a TLS listener: on a plain
/// connection it names the TLS port (`sts=port=6697`) and a client that knows it reconnects
/// there; on a secure one it is the persistence policy (`sts=duration=...`). Informational: a
/// `REQ` for it is refused (NAK), as the spec says.
fn sts_value(b: &Broker, id: ClientId) -> Option<String> {
    let port = b.config.sts_port?;
    Some(if b.clients.get(&id).is_some_and(|c| c.secure) {
        format!("sts=duration={STS_DURATION_SECS}")
    } else {
        format!("sts=port={port}")
    })
}

fn list(b: &mut Broker, id: ClientId) {
    let enabled = b.clients.get(&id).map_or(Caps::NONE, |c| c.caps);
    let names: Vec<&str> = caps::names(enabled).collect();
    send_list(b, id, "LIST", &names);
}

/// Sends `CAP nick SUB :names`, split over several lines (all but the last with a `*`
/// parameter) for a 302 client when the list is too long for one.
fn send_list(b: &mut Broker, id: ClientId, sub: &str, names: &[&str]) {
    let multiline = b.clients.get(&id).is_some_and(|c| c.cap_version >= 302);
    let chunks = chunk_names(names, multiline, CAPS_BYTES_PER_LINE);
    let nick = b.nick_of(id).to_string();
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.iter().enumerate() {
        let middle: &[&str] = if i < last {
            &[&nick, sub, "*"]
        } else {
            &[&nick, sub]
        };
        let line = b.line_from_server("CAP", middle, Some(chunk));
        b.send(id, line);
    }
}

/// `names` joined by spaces: in chunks of at most `limit` bytes if `multiline` (a name longer
/// than that gets a chunk of its own), otherwise in one. Never no chunk: an empty list is one
/// empty chunk (`CAP * LS :`).
fn chunk_names(names: &[&str], multiline: bool, limit: usize) -> Vec<String> {
    let mut chunks: Vec<String> = vec![String::new()];
    for name in names {
        let current = chunks.last_mut().expect("never empty");
        if multiline && !current.is_empty() && current.len() + name.len() + 1 > limit {
            chunks.push(name.to_string());
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(name);
    }
    chunks
}

fn req(b: &mut Broker, id: ClientId, requested: &str) {
    hold_registration(b, id);
    let Some(client) = b.clients.get(&id) else {
        return;
    };
    let nick = client.nick().to_string();
    let mut caps = client.caps;
    let implicit_notify = client.cap_version >= 302;
    let mut ok = !requested.trim().is_empty();
    for word in requested.split(' ').filter(|w| !w.is_empty()) {
        let (off, name) = match word.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, word),
        };
        match caps::by_name(name) {
            Some(Caps::CAP_NOTIFY) if off && implicit_notify => ok = false,
            Some(cap) if !offered(b, cap) => ok = false,
            Some(cap) if off => caps.remove(cap),
            Some(cap) => caps.insert(cap),
            None => ok = false,
        }
    }
    let answer = if ok { "ACK" } else { "NAK" };
    let line = b.line_from_server("CAP", &[&nick, answer], Some(requested.trim_end()));
    b.send(id, line);
    if ok {
        if let Some(c) = b.clients.get_mut(&id) {
            c.caps = caps;
        }
        update_memberships(b, id);
    }
}

fn end(b: &mut Broker, id: ClientId) {
    if let Some(c) = b.clients.get_mut(&id) {
        c.cap_negotiating = false;
    }
    super::try_complete_registration(b, id);
}

/// Before registration, `LS` and `REQ` hold it until `END`.
fn hold_registration(b: &mut Broker, id: ClientId) {
    if let Some(c) = b.clients.get_mut(&id).filter(|c| !c.registered) {
        c.cap_negotiating = true;
    }
}

/// Copies the client's capabilities into each of its channel memberships (the invariant of
/// [`crate::broker::caps`]).
fn update_memberships(b: &mut Broker, id: ClientId) {
    let Some(client) = b.clients.get(&id) else {
        return;
    };
    for key in &client.channels {
        if let Some(member) = b.channels.get_mut(key).and_then(|c| c.members.get_mut(&id)) {
            member.caps = client.caps;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_names;

    #[test]
    fn the_sts_policy_is_remembered_for_30_days() {
        assert_eq!(super::STS_DURATION_SECS, 2_592_000);
    }

    #[test]
    fn names_are_chunked_up_to_the_limit_only_for_multiline_clients() {
        let names = ["aaaa", "bbbb", "cc", "dddddddddddd", "e"];
        // "aaaa bbbb" is 9 bytes: with "cc" 12, one past a limit of 11.
        assert_eq!(
            chunk_names(&names, true, 11),
            ["aaaa bbbb", "cc", "dddddddddddd", "e"]
        );
        assert_eq!(
            chunk_names(&names, true, 12),
            ["aaaa bbbb cc", "dddddddddddd", "e"]
        );
        assert_eq!(
            chunk_names(&names, false, 11),
            ["aaaa bbbb cc dddddddddddd e"]
        );
        assert_eq!(chunk_names(&[], true, 11), [""]);
    }
}
