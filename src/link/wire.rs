//! What nodes say to each other on NATS: one IRC-syntax line per NATS message, source = the
//! origin node's id. IRC syntax because the node already has a tested parser and writer for
//! it (which also keep CR, LF and NUL out), and because a line on the wire can be read by a
//! person running `nats sub 'cn.>'`.
//!
//! ```text
//! :NODE INTRO uid nick =user =host rev @#chan,#other :realname
//! :NODE BURST name               :NODE EOB
//! :NODE JOIN uid #chan 1 [created]  :NODE PART uid #chan [:reason]
//! :NODE KICK uid #chan tnode tuid :reason
//! :NODE QUIT uid :reason         :NODE NICK uid nick rev
//! :NODE TOPIC uid #chan :text    :NODE PRIVMSG uid #chan|~touid :text
//! :NODE AWAY uid [:text]         :NODE INVITE uid #chan tnode tuid
//! :NODE SETNAME uid :realname     :NODE UMODE uid :io
//! :NODE CHAN #chan created flags =key limit     (then CTOPIC and CLIST lines)
//! :NODE HELLO name               :NODE HB name
//! ```
//!
//! One NATS message is one fact; the two that need more than one line carry them in the same
//! message, so they are applied whole: a `CHAN` is followed by its `CTOPIC` and one `CLIST`
//! per list mask, an `INTRO` by its user's `UMODE` (if any) and `AWAY` (if away).
//!
//! Free-form middle fields (username, host: an IPv6 host may start with `:`) are written with
//! a leading `=` so they can never be read as the trailing parameter.

use crate::broker::link::{
    ChannelState, ListMask, Membership, MsgTarget, NodeId, Remote, TopicState, UserInfo,
};
use crate::proto::message::{write_line, Message};

/// One NATS message between nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wire {
    /// A fact about users and channels.
    Remote(Remote),
    /// "Send me your users" (on the sync subject), with the sender's server name.
    Hello(String),
    /// A heartbeat, with the sender's server name.
    Heartbeat(String),
}

fn field(s: &str) -> String {
    format!("={s}")
}

fn unfield(s: &str) -> String {
    s.strip_prefix('=').unwrap_or(s).to_string()
}

/// Serializes `wire` from `node`.
///
/// ```
/// use chatnode::link::wire::{encode, decode, Wire};
/// use chatnode::broker::link::Remote;
/// let w = Wire::Remote(Remote::Quit { uid: 7, reason: "bye now".into() });
/// let bytes = encode("n1", &w);
/// assert_eq!(bytes, b":n1 QUIT 7 :bye now\r\n");
/// assert_eq!(decode(&bytes), Some(("n1".into(), w)));
/// ```
pub fn encode(node: &str, wire: &Wire) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let src = Some(node);
    let w = &mut out;
    match wire {
        Wire::Hello(name) => write_line(w, src, "HELLO", &[name], None),
        Wire::Heartbeat(name) => write_line(w, src, "HB", &[name], None),
        Wire::Remote(remote) => encode_remote(w, node, remote),
    }
    out
}

fn encode_remote(w: &mut Vec<u8>, node: &str, remote: &Remote) {
    let src = Some(node);
    match remote {
        Remote::Intro(u) => {
            let chans: Vec<String> = u
                .channels
                .iter()
                .map(|m| {
                    let op = if m.op { "@" } else { "" };
                    let voice = if m.voice { "+" } else { "" };
                    format!("{op}{voice}{}", m.channel)
                })
                .collect();
            let chans = if chans.is_empty() {
                "*".to_string()
            } else {
                chans.join(",")
            };
            let (uid, rev) = (u.uid.to_string(), u.rev.to_string());
            let (user, host) = (field(&u.user), field(&u.host));
            let middle: [&str; 6] = [&uid, &u.nick, &user, &host, &rev, &chans];
            write_line(w, src, "INTRO", &middle, Some(&u.realname));
            if !u.modes.is_empty() {
                write_line(w, src, "UMODE", &[&uid], Some(&u.modes));
            }
            if let Some(text) = &u.away {
                write_line(w, src, "AWAY", &[&uid], Some(text));
            }
        }
        Remote::Channel(c) => encode_channel(w, node, c),
        Remote::UserModes { uid, modes } => {
            write_line(w, src, "UMODE", &[&uid.to_string()], Some(modes))
        }
        Remote::Setname { uid, realname } => {
            write_line(w, src, "SETNAME", &[&uid.to_string()], Some(realname))
        }
        Remote::Away { uid, text } => {
            write_line(w, src, "AWAY", &[&uid.to_string()], text.as_deref())
        }
        Remote::Kill {
            uid,
            target_node,
            target_uid,
            reason,
        } => {
            let (uid, target_uid) = (uid.to_string(), target_uid.to_string());
            let middle: [&str; 3] = [&uid, target_node, &target_uid];
            write_line(w, src, "KILL", &middle, Some(reason));
        }
        Remote::Invite {
            uid,
            channel,
            target_node,
            target_uid,
        } => {
            let (uid, target_uid) = (uid.to_string(), target_uid.to_string());
            let middle: [&str; 4] = [&uid, channel, target_node, &target_uid];
            write_line(w, src, "INVITE", &middle, None);
        }
        Remote::BurstStart { name } => write_line(w, src, "BURST", &[name], None),
        Remote::BurstEnd => write_line(w, src, "EOB", &[], None),
        Remote::Join {
            uid,
            channel,
            op,
            created,
        } => {
            let (uid, created) = (uid.to_string(), created.to_string());
            let op = if *op { "1" } else { "0" };
            let middle: &[&str] = if created == "0" {
                &[&uid, channel, op]
            } else {
                &[&uid, channel, op, &created]
            };
            write_line(w, src, "JOIN", middle, None);
        }
        Remote::Part {
            uid,
            channel,
            reason,
        } => write_line(
            w,
            src,
            "PART",
            &[&uid.to_string(), channel],
            reason.as_deref(),
        ),
        Remote::Kick {
            uid,
            channel,
            target_node,
            target_uid,
            reason,
        } => {
            let (uid, target_uid) = (uid.to_string(), target_uid.to_string());
            let middle: [&str; 4] = [&uid, channel, target_node, &target_uid];
            write_line(w, src, "KICK", &middle, Some(reason));
        }
        Remote::Quit { uid, reason } => {
            write_line(w, src, "QUIT", &[&uid.to_string()], Some(reason))
        }
        Remote::Nick { uid, nick, rev } => {
            write_line(
                w,
                src,
                "NICK",
                &[&uid.to_string(), nick, &rev.to_string()],
                None,
            );
        }
        Remote::Mode {
            uid,
            channel,
            params,
        } => {
            // The last argument as the trailing parameter: a mask may start with ':'.
            let uid = uid.to_string();
            let mut middle: Vec<&str> = vec![&uid, channel];
            middle.extend(params.iter().map(|p| p.as_str()));
            let last = middle.pop().filter(|_| !params.is_empty());
            write_line(w, src, "MODE", &middle, last);
        }
        Remote::Topic { uid, channel, text } => {
            write_line(w, src, "TOPIC", &[&uid.to_string(), channel], Some(text));
        }
        Remote::Message {
            uid,
            command,
            target,
            text,
        } => {
            let target = match target {
                MsgTarget::Channel(name) => name.clone(),
                MsgTarget::User(to) => format!("~{to}"),
            };
            write_line(w, src, command, &[&uid.to_string(), &target], Some(text));
        }
    }
}

/// Parses a message from another node: its node id and what it says. `None` for anything
/// malformed (the caller counts and logs it; one bad node cannot disturb the others).
pub fn decode(bytes: &[u8]) -> Option<(NodeId, Wire)> {
    let bytes = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let msg = Message::parse(lines.next()?).ok()?;
    let node: NodeId = msg.source.as_deref()?.into();
    // The lines after the first belong to it (a CHAN's topic and masks, an INTRO's AWAY).
    let mut more = Vec::new();
    for line in lines {
        let m = Message::parse(line).ok()?;
        if m.source.as_deref() != Some(&*node) || more.len() >= MAX_EXTRA_LINES {
            return None;
        }
        more.push(m);
    }
    let p = &msg.params;
    let uid = || p.first()?.parse::<u64>().ok();
    let text = |i: usize| p.get(i).cloned().unwrap_or_default();
    let remote = match msg.command.as_str() {
        "HELLO" => return Some((node, Wire::Hello(p.first()?.clone()))),
        "HB" => return Some((node, Wire::Heartbeat(p.first()?.clone()))),
        "INTRO" if p.len() == 7 => {
            let channels = if p[5] == "*" {
                Vec::new()
            } else {
                p[5].split(',')
                    .map(|c| {
                        let name = c.trim_start_matches(['@', '+']);
                        let status = &c[..c.len() - name.len()];
                        Membership {
                            channel: name.to_string(),
                            op: status.contains('@'),
                            voice: status.contains('+'),
                        }
                    })
                    .collect()
            };
            // Then its modes (UMODE) and its away message (AWAY), each if any.
            let (mut modes, mut away) = (String::new(), None);
            for m in more.drain(..) {
                match (m.command.as_str(), &m.params[..]) {
                    ("UMODE", [u, text]) if *u == p[0] && modes.is_empty() => modes = text.clone(),
                    ("AWAY", [u, text]) if *u == p[0] && away.is_none() => {
                        away = Some(text.clone())
                    }
                    _ => return None,
                }
            }
            Remote::Intro(UserInfo {
                uid: uid()?,
                nick: p[1].clone(),
                user: unfield(&p[2]),
                host: unfield(&p[3]),
                rev: p[4].parse().ok()?,
                channels,
                realname: p[6].clone(),
                away,
                modes: modes.chars().filter(|c| "io".contains(*c)).collect(),
            })
        }
        "CHAN" if p.len() == 5 => {
            let state = decode_channel(p, &more)?;
            more.clear();
            Remote::Channel(state)
        }
        "AWAY" if p.len() == 1 || p.len() == 2 => Remote::Away {
            uid: uid()?,
            text: p.get(1).filter(|t| !t.is_empty()).cloned(),
        },
        "UMODE" if p.len() == 2 => Remote::UserModes {
            uid: uid()?,
            modes: p[1].chars().filter(|c| "io".contains(*c)).collect(),
        },
        "SETNAME" if p.len() == 2 => Remote::Setname {
            uid: uid()?,
            realname: p[1].clone(),
        },
        "KILL" if p.len() == 4 => Remote::Kill {
            uid: uid()?,
            target_node: p[1].as_str().into(),
            target_uid: p[2].parse().ok()?,
            reason: p[3].clone(),
        },
        "INVITE" if p.len() == 4 => Remote::Invite {
            uid: uid()?,
            channel: p[1].clone(),
            target_node: p[2].as_str().into(),
            target_uid: p[3].parse().ok()?,
        },
        "BURST" if p.len() == 1 => Remote::BurstStart { name: p[0].clone() },
        "EOB" => Remote::BurstEnd,
        "JOIN" if p.len() == 3 || p.len() == 4 => Remote::Join {
            uid: uid()?,
            channel: p[1].clone(),
            op: p[2] == "1",
            created: match p.get(3) {
                Some(t) => t.parse().ok()?,
                None => 0,
            },
        },
        "PART" if p.len() == 2 || p.len() == 3 => Remote::Part {
            uid: uid()?,
            channel: p[1].clone(),
            reason: p.get(2).cloned(),
        },
        "KICK" if p.len() == 5 => Remote::Kick {
            uid: uid()?,
            channel: p[1].clone(),
            target_node: p[2].as_str().into(),
            target_uid: p[3].parse().ok()?,
            reason: p[4].clone(),
        },
        "QUIT" => Remote::Quit {
            uid: uid()?,
            reason: text(1),
        },
        "NICK" if p.len() == 3 => Remote::Nick {
            uid: uid()?,
            nick: p[1].clone(),
            rev: p[2].parse().ok()?,
        },
        "MODE" if p.len() >= 3 => Remote::Mode {
            uid: uid()?,
            channel: p[1].clone(),
            params: p[2..].to_vec(),
        },
        "TOPIC" if p.len() >= 2 => Remote::Topic {
            uid: uid()?,
            channel: p[1].clone(),
            text: text(2),
        },
        "PRIVMSG" | "NOTICE" if p.len() == 3 => {
            let target = match p[1].strip_prefix('~') {
                Some(to) => MsgTarget::User(to.parse().ok()?),
                None => MsgTarget::Channel(p[1].clone()),
            };
            Remote::Message {
                uid: uid()?,
                command: msg.command.clone(),
                target,
                text: p[2].clone(),
            }
        }
        _ => return None,
    };
    if !more.is_empty() {
        return None; // extra lines after a one-line fact
    }
    Some((node, Wire::Remote(remote)))
}

/// Lines a CHAN may carry after its first: a topic and three lists of at most `MAX_LIST`
/// masks each (a burst from a node with larger lists is refused whole, and logged).
const MAX_EXTRA_LINES: usize = 1 + 3 * 100;

/// `:NODE CHAN #chan created flags =key limit`, then `:NODE CTOPIC set_at =set_by :text` and
/// one `:NODE CLIST letter set_at =set_by :mask` per list mask, in one NATS message.
fn encode_channel(w: &mut Vec<u8>, node: &str, c: &ChannelState) {
    let src = Some(node);
    let flags = if c.flags.is_empty() { "-" } else { &c.flags };
    let key = field(c.key.as_deref().unwrap_or(""));
    let (created, limit) = (c.created.to_string(), c.limit.unwrap_or(0).to_string());
    let middle: [&str; 5] = [&c.name, &created, flags, &key, &limit];
    write_line(w, src, "CHAN", &middle, None);
    if let Some(t) = &c.topic {
        let middle = [&t.set_at.to_string(), &field(&t.set_by)];
        write_line(w, src, "CTOPIC", &middle.map(String::as_str), Some(&t.text));
    }
    for m in &c.lists {
        let middle = [
            &m.letter.to_string(),
            &m.set_at.to_string(),
            &field(&m.set_by),
        ];
        write_line(w, src, "CLIST", &middle.map(String::as_str), Some(&m.mask));
    }
}

fn decode_channel(p: &[String], more: &[Message]) -> Option<ChannelState> {
    let mut state = ChannelState {
        name: p[0].clone(),
        created: p[1].parse().ok()?,
        flags: p[2].chars().filter(|c| "imnst".contains(*c)).collect(),
        key: Some(unfield(&p[3])).filter(|k| !k.is_empty()),
        limit: p[4].parse().ok().filter(|&l| l > 0),
        topic: None,
        lists: Vec::new(),
    };
    for m in more {
        let q = &m.params;
        match m.command.as_str() {
            "CTOPIC" if q.len() == 3 && !q[2].is_empty() => {
                state.topic = Some(TopicState {
                    set_at: q[0].parse().ok()?,
                    set_by: unfield(&q[1]),
                    text: q[2].clone(),
                });
            }
            "CLIST" if q.len() == 4 && matches!(q[0].as_str(), "b" | "e" | "I") => {
                state.lists.push(ListMask {
                    letter: q[0].chars().next()?,
                    set_at: q[1].parse().ok()?,
                    set_by: unfield(&q[2]),
                    mask: q[3].clone(),
                });
            }
            _ => return None,
        }
    }
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(w: Wire) {
        let bytes = encode("abc123", &w);
        assert_eq!(
            decode(&bytes),
            Some(("abc123".into(), w.clone())),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn every_kind_round_trips() {
        round_trip(Wire::Hello("a.example".into()));
        round_trip(Wire::Heartbeat("a.example".into()));
        round_trip(Wire::Remote(Remote::Intro(UserInfo {
            uid: 3,
            nick: "alice".into(),
            user: "~al".into(),
            host: "::1".into(),
            realname: "Alice: the one".into(),
            rev: 9,
            channels: vec![
                Membership {
                    channel: "#a".into(),
                    op: true,
                    voice: false,
                },
                Membership {
                    channel: "#b".into(),
                    op: false,
                    voice: true,
                },
                Membership {
                    channel: "#c".into(),
                    op: true,
                    voice: true,
                },
                Membership {
                    channel: "#d".into(),
                    op: false,
                    voice: false,
                },
            ],
            away: Some("out: back soon".into()),
            modes: "io".into(),
        })));
        round_trip(Wire::Remote(Remote::Intro(UserInfo {
            uid: 4,
            nick: "b".into(),
            user: "b".into(),
            host: "h".into(),
            realname: String::new(),
            rev: 0,
            channels: vec![],
            away: None,
            modes: String::new(),
        })));
        for modes in ["", "i", "io"] {
            round_trip(Wire::Remote(Remote::UserModes {
                uid: 4,
                modes: modes.into(),
            }));
        }
        round_trip(Wire::Remote(Remote::Channel(ChannelState {
            name: "#x".into(),
            created: 1_764_540_000_123,
            flags: "imt".into(),
            key: Some("s3:cret".into()),
            limit: Some(12),
            topic: Some(TopicState {
                text: ":-) the topic".into(),
                set_by: "alice".into(),
                set_at: 1_764_540_001,
            }),
            lists: vec![
                ListMask {
                    letter: 'b',
                    mask: "*!*@::1".into(),
                    set_by: "alice".into(),
                    set_at: 5,
                },
                ListMask {
                    letter: 'I',
                    mask: "friend!*@*".into(),
                    set_by: "bob".into(),
                    set_at: 6,
                },
            ],
        })));
        round_trip(Wire::Remote(Remote::Channel(ChannelState {
            name: "#y".into(),
            created: 1,
            flags: String::new(),
            key: None,
            limit: None,
            topic: None,
            lists: vec![],
        })));
        for text in [None, Some("lunch".to_string())] {
            round_trip(Wire::Remote(Remote::Away { uid: 2, text }));
        }
        round_trip(Wire::Remote(Remote::Setname {
            uid: 2,
            realname: "Bob: the builder".into(),
        }));
        round_trip(Wire::Remote(Remote::Kill {
            uid: 1,
            target_node: "n9".into(),
            target_uid: 3,
            reason: "spam: see the rules".into(),
        }));
        round_trip(Wire::Remote(Remote::Invite {
            uid: 1,
            channel: "#x".into(),
            target_node: "n9".into(),
            target_uid: 3,
        }));
        round_trip(Wire::Remote(Remote::BurstStart {
            name: "a.example".into(),
        }));
        round_trip(Wire::Remote(Remote::BurstEnd));
        for (op, created) in [(true, 1_764_540_000_123), (false, 0)] {
            round_trip(Wire::Remote(Remote::Join {
                uid: 1,
                channel: "#x".into(),
                op,
                created,
            }));
        }
        for reason in [None, Some(String::new()), Some("bye all".into())] {
            round_trip(Wire::Remote(Remote::Part {
                uid: 1,
                channel: "#x".into(),
                reason,
            }));
        }
        round_trip(Wire::Remote(Remote::Kick {
            uid: 1,
            channel: "#x".into(),
            target_node: "n2".into(),
            target_uid: 8,
            reason: "out".into(),
        }));
        round_trip(Wire::Remote(Remote::Nick {
            uid: 1,
            nick: "z[]".into(),
            rev: 77,
        }));
        round_trip(Wire::Remote(Remote::Mode {
            uid: 1,
            channel: "#x".into(),
            params: vec!["+o-v".into(), "alice".into(), "bob".into()],
        }));
        round_trip(Wire::Remote(Remote::Topic {
            uid: 1,
            channel: "#x".into(),
            text: String::new(),
        }));
        for target in [MsgTarget::Channel("#x".into()), MsgTarget::User(12)] {
            round_trip(Wire::Remote(Remote::Message {
                uid: 1,
                command: "NOTICE".into(),
                target,
                text: ":-) hi".into(),
            }));
        }
    }

    #[test]
    fn malformed_is_none() {
        for bad in [
            &b""[..],
            b"QUIT 1 :no source",
            b":n JOIN x #c 1",
            b":n INTRO 1 a",
            b":n PRIVMSG 1 ~x :t",
            b":n WHAT 1",
            b":n QUIT 1 :a\r\n:n QUIT 2 :b",
            b":n CHAN #x 1 nt = 0\r\n:m CLIST b 1 =a :*!*@*",
            b":n CHAN #x 1 nt = 0\r\n:n CLIST q 1 =a :*!*@*",
            b":n INTRO 1 a =a =h 0 * :r\r\n:n AWAY 2 :not the same user",
        ] {
            assert_eq!(decode(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
