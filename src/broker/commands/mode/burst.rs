//! A channel's state across linked nodes (docs/network.md, "The burst"): what a node bursts
//! for each channel it has local members in, and how a node merges a burst state with its own.
//!
//! The rule, the same on every node so that all converge: **the older channel wins**. Each
//! state carries the channel's creation time (milliseconds). A state older than ours replaces
//! ours (modes, key, limit, lists, topic, creation time); a younger one is ignored (its node
//! takes ours when it hears our burst); one exactly as old is merged: flags and list masks are
//! united, the smaller key and limit win, and the more recently set topic. A node that learns
//! of a channel only from a remote user's JOIN creates it with the time it heard of it, so a
//! node that joins the network late always takes the network's state.
//!
//! Local members see what changed as a MODE (and a TOPIC) from the origin node's name, as
//! after a netjoin on any IRC network.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::announce::Applied;
use crate::broker::channel::{Added, Channel, MaskList, Topic, MAX_LIST};
use crate::broker::history::RecordKind;
use crate::broker::link::{ChannelState, ListMask, Membership, Remote, TopicState};
use crate::broker::{build_line, unix_time, Broker, ClientId};
use crate::proto::casemap;

/// The flag modes, in the order a state lists them.
const FLAGS: [char; 5] = ['i', 'm', 'n', 's', 't'];

/// Channel `c` as this node bursts it.
pub(in crate::broker) fn channel_state(c: &Channel) -> ChannelState {
    let mut lists = Vec::new();
    for (letter, list) in [('b', &c.bans), ('e', &c.excepts), ('I', &c.invex)] {
        lists.extend(list.entries.iter().map(|e| ListMask {
            letter,
            mask: e.mask.clone(),
            set_by: e.set_by.clone(),
            set_at: unix_time(e.set_at),
        }));
    }
    ChannelState {
        name: c.name.clone(),
        created: unix_ms(c.created),
        flags: FLAGS
            .into_iter()
            .filter(|&l| flag(c, l))
            .collect::<String>(),
        key: c.modes.key.clone(),
        limit: c.modes.limit.map(|l| l as u64),
        topic: c.topic.as_ref().map(|t| TopicState {
            text: t.text.clone(),
            set_by: t.set_by.clone(),
            set_at: unix_time(t.set_at),
        }),
        lists,
    }
}

/// Merges `theirs` (from node `source`) into our channel of the same name, by the rule in the
/// module docs, and tells local members what changed. A channel we do not have is ignored:
/// the users' INTROs, which come first in a burst, create the channels that have members.
pub(in crate::broker) fn merge_channel(b: &mut Broker, source: &str, theirs: &ChannelState) {
    let key = casemap::casefold(&theirs.name);
    let Some(ours) = b.channels.get(&key) else {
        return;
    };
    let mine = channel_state(ours);
    let merged = match theirs.created.cmp(&mine.created) {
        Ordering::Greater => return,
        Ordering::Less => theirs.clone(),
        Ordering::Equal => union(&mine, theirs),
    };
    if merged == mine {
        return;
    }
    let name = mine.name.clone();
    let mut applied = Applied::default();
    diff_modes(&mine, &merged, &mut applied);
    let topic_changed = mine.topic != merged.topic;
    let deopped = if merged.created < mine.created {
        take_local_ops(b, &key, &mut applied)
    } else {
        Vec::new()
    };
    install(b, &key, &merged);
    if applied.touched_bans {
        b.refresh_bans(&key);
    }
    for line in applied.lines(source, &name) {
        b.broadcast(&key, &line, None);
        b.remember(&key, RecordKind::Event, &line);
    }
    if topic_changed {
        let text = merged.topic.as_ref().map_or("", |t| t.text.as_str());
        let line = build_line(Some(source), "TOPIC", &[&name], Some(text));
        b.broadcast(&key, &line, None);
        b.remember(&key, RecordKind::Event, &line);
    }
    // The others learn it as each of them giving the status up (they do not compare our
    // state with the older one: ours is the younger, which they ignore).
    for (id, nick) in deopped {
        let params = vec!["-o".to_string(), nick];
        let event = Remote::Mode {
            uid: id,
            channel: name.clone(),
            params,
        };
        b.publish_state(id, event);
    }
}

/// Our channel `key` lost to an older one: our local members' operator status came from our
/// own, younger, creation, and goes (as TS rules do). Returns who lost it.
fn take_local_ops(b: &mut Broker, key: &str, out: &mut Applied) -> Vec<(ClientId, String)> {
    let Some(channel) = b.channels.get(key) else {
        return Vec::new();
    };
    let ops: Vec<ClientId> = channel
        .members
        .iter()
        .filter(|(_, m)| m.op && !m.remote)
        .map(|(&id, _)| id)
        .collect();
    let deopped: Vec<(ClientId, String)> = ops
        .into_iter()
        .map(|id| (id, b.nick_of(id).to_string()))
        .collect();
    if let Some(channel) = b.channels.get_mut(key) {
        for (id, nick) in &deopped {
            if let Some(m) = channel.members.get_mut(id) {
                m.op = false;
            }
            out.push(false, 'o', Some(nick.clone()));
        }
    }
    deopped
}

/// A user of node `source` created channel `name` (`created` ms; `op`: it is the creator),
/// and we may have created it too: the older creation wins. Returns whether the joining
/// creator is an operator here.
///
/// - We have no such channel: it will be created with the creator's time (so a node that hears
///   of a channel from its creator's JOIN shares its age) and the creator is an operator.
/// - Ours is older: the joining creator is not an operator here (its own node will take the
///   status away when it hears our creator's JOIN, by this same rule).
/// - Theirs is older: every operator of ours loses the status (a MODE from `source` tells our
///   local members), the channel takes the older time, the creator is an operator.
/// - As old, to the millisecond: both keep the status.
pub(in crate::broker) fn settle_creation(
    b: &mut Broker,
    source: &str,
    name: &str,
    op: bool,
    created: u64,
) -> bool {
    let key = casemap::casefold(name);
    if !op || created == 0 {
        return op;
    }
    let Some(channel) = b.channels.get(&key) else {
        return true;
    };
    match created.cmp(&unix_ms(channel.created)) {
        Ordering::Greater => false,
        Ordering::Equal => true,
        Ordering::Less => {
            let ops: Vec<ClientId> = channel
                .members
                .iter()
                .filter(|(_, m)| m.op)
                .map(|(&id, _)| id)
                .collect();
            let mut applied = Applied::default();
            for &id in &ops {
                applied.push(false, 'o', Some(b.nick_of(id).to_string()));
            }
            let channel = b.channels.get_mut(&key).expect("looked up above");
            channel.created = UNIX_EPOCH + Duration::from_millis(created);
            for id in ops {
                if let Some(m) = channel.members.get_mut(&id) {
                    m.op = false;
                }
            }
            let display = channel.name.clone();
            for line in applied.lines(source, &display) {
                b.broadcast(&key, &line, None);
                b.remember(&key, RecordKind::Event, &line);
            }
            true
        }
    }
}

/// Remote member `id`'s status in `m.channel` made the announced one (a MODE from `source`
/// for what changed).
pub(in crate::broker) fn set_remote_status(
    b: &mut Broker,
    source: &str,
    id: ClientId,
    m: &Membership,
) {
    let key = casemap::casefold(&m.channel);
    let nick = b.nick_of(id).to_string();
    let Some(channel) = b.channels.get_mut(&key) else {
        return;
    };
    let name = channel.name.clone();
    let Some(member) = channel.members.get_mut(&id) else {
        return;
    };
    let mut applied = Applied::default();
    if member.op != m.op {
        member.op = m.op;
        applied.push(m.op, 'o', Some(nick.clone()));
    }
    if member.voice != m.voice {
        member.voice = m.voice;
        applied.push(m.voice, 'v', Some(nick));
    }
    for line in applied.lines(source, &name) {
        b.broadcast(&key, &line, None);
        b.remember(&key, RecordKind::Event, &line);
    }
}

/// Two states of one age merged: the same result whichever node computes it.
fn union(a: &ChannelState, b: &ChannelState) -> ChannelState {
    let mut lists = a.lists.clone();
    let mut known = folded(&a.lists);
    for m in &b.lists {
        let count = lists.iter().filter(|l| l.letter == m.letter).count();
        if count < MAX_LIST && known.insert((m.letter, casemap::casefold(&m.mask))) {
            lists.push(m.clone());
        }
    }
    let topic = match (&a.topic, &b.topic) {
        (Some(x), Some(y)) => Some(std::cmp::max_by_key(x, y, |t| (t.set_at, &t.text)).clone()),
        (x, y) => x.clone().or_else(|| y.clone()),
    };
    ChannelState {
        name: a.name.clone(),
        created: a.created,
        flags: FLAGS
            .into_iter()
            .filter(|&l| a.flags.contains(l) || b.flags.contains(l))
            .collect(),
        key: smaller(&a.key, &b.key),
        limit: smaller(&a.limit, &b.limit),
        topic,
        lists,
    }
}

/// The smaller of two optional values, or the one that is set.
fn smaller<T: Ord + Clone>(x: &Option<T>, y: &Option<T>) -> Option<T> {
    match (x, y) {
        (Some(x), Some(y)) => Some(std::cmp::min(x, y).clone()),
        _ => x.clone().or_else(|| y.clone()),
    }
}

/// The MODE changes that turn `old` into `new`.
fn diff_modes(old: &ChannelState, new: &ChannelState, out: &mut Applied) {
    for letter in FLAGS {
        let on = new.flags.contains(letter);
        if old.flags.contains(letter) != on {
            out.push(on, letter, None);
        }
    }
    if old.key != new.key {
        match &new.key {
            Some(key) => out.push(true, 'k', Some(key.clone())),
            None => out.push(false, 'k', Some("*".into())),
        }
    }
    if old.limit != new.limit {
        match new.limit {
            Some(limit) => out.push(true, 'l', Some(limit.to_string())),
            None => out.push(false, 'l', None),
        }
    }
    let (in_old, in_new) = (folded(&old.lists), folded(&new.lists));
    let has = |set: &HashSet<(char, String)>, m: &ListMask| {
        set.contains(&(m.letter, casemap::casefold(&m.mask)))
    };
    for m in old.lists.iter().filter(|m| !has(&in_new, m)) {
        out.push(false, m.letter, Some(m.mask.clone()));
        out.touched_bans = true;
    }
    for m in new.lists.iter().filter(|m| !has(&in_old, m)) {
        out.push(true, m.letter, Some(m.mask.clone()));
        out.touched_bans = true;
    }
}

/// The masks of `lists`, casefolded, with their list's letter: one pass, so comparing two
/// states is linear in their lists (at most 3 x `MAX_LIST` masks each).
fn folded(lists: &[ListMask]) -> HashSet<(char, String)> {
    lists
        .iter()
        .map(|m| (m.letter, casemap::casefold(&m.mask)))
        .collect()
}

/// Makes channel `key`'s state `state` (members untouched).
fn install(b: &mut Broker, key: &str, state: &ChannelState) {
    let Some(c) = b.channels.get_mut(key) else {
        return;
    };
    c.created = UNIX_EPOCH + Duration::from_millis(state.created);
    let m = &mut c.modes;
    m.invite_only = state.flags.contains('i');
    m.moderated = state.flags.contains('m');
    m.no_external = state.flags.contains('n');
    m.secret = state.flags.contains('s');
    m.topic_ops_only = state.flags.contains('t');
    m.key = state.key.clone();
    m.limit = state.limit.and_then(|l| usize::try_from(l).ok());
    c.topic = state.topic.as_ref().map(|t| Topic {
        text: t.text.clone(),
        set_by: t.set_by.clone(),
        set_at: from_unix(t.set_at),
    });
    for (letter, list) in [
        ('b', &mut c.bans),
        ('e', &mut c.excepts),
        ('I', &mut c.invex),
    ] {
        *list = MaskList::default();
        for m in state.lists.iter().filter(|m| m.letter == letter) {
            if list.add(&m.mask, &m.set_by) == Added::New {
                if let Some(entry) = list.entries.last_mut() {
                    entry.set_at = from_unix(m.set_at);
                }
            }
        }
    }
}

fn flag(c: &Channel, letter: char) -> bool {
    let m = &c.modes;
    match letter {
        'i' => m.invite_only,
        'm' => m.moderated,
        'n' => m.no_external,
        's' => m.secret,
        _ => m.topic_ops_only,
    }
}

/// `t` in milliseconds since the Unix epoch (0 before it).
pub(in crate::broker) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}
