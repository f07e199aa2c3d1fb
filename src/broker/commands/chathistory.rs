//! CHATHISTORY (IRCv3 `draft/chathistory`): scroll back through a channel or a private
//! conversation, read from the store on the blocking pool.
//!
//! `CHATHISTORY LATEST|BEFORE|AFTER|AROUND <target> <ref> <limit>`,
//! `CHATHISTORY BETWEEN <target> <ref> <ref> <limit>`, `CHATHISTORY TARGETS <ts> <ts> <limit>`,
//! where a ref is `timestamp=YYYY-MM-DDThh:mm:ss.sssZ` or `msgid=...` (and `*` for LATEST).
//! The target `*` means every private conversation of the asking client, whoever the other
//! party (the batch names `*`). Replies carry only the tags the client negotiated (see
//! [`send_batch`]); a node without history offers neither cap and answers FAIL.
//! Bad arguments get the spec's standard replies (`FAIL CHATHISTORY NEED_MORE_PARAMS |
//! UNKNOWN_COMMAND | INVALID_PARAMS | INVALID_TARGET | MESSAGE_ERROR`). A limit above
//! `CHATHISTORY=` (ISUPPORT) is cut to it.
//!
//! Order: the asking client is parked while the read runs, so the batch arrives before the
//! replies to its later commands; everyone else goes on. Reads are bounded node-wide
//! ([`HistoryLimits::max_reads`](crate::broker::HistoryLimits)); past it the client gets
//! `FAIL ... MESSAGE_ERROR` and may retry.
//!
//! Who may read what: a channel's history only by its members (others get an empty batch, as
//! the spec asks, so a secret channel's existence is not revealed); a private conversation only
//! from the asking client's sign-on on, since without accounts a nick does not identify a
//! person across connections.

use std::sync::Arc;

use crate::broker::caps::Caps;
use crate::broker::forms::add_tag;
use crate::broker::history::{
    format_time, parse_time, private_key, Bound, Found, Query, Request, Scope, Select, Stored,
};
use crate::broker::{build_line, unix_time, Broker, ClientId, Event, Line};
use crate::proto::{casemap, Message};

/// Longest a read waits for the writer to commit what was queued before it.
const SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) fn chathistory(b: &mut Broker, id: ClientId, msg: &Message) {
    if b.config.hooks.history.is_none() {
        fail(
            b,
            id,
            "MESSAGE_ERROR",
            &["*", "*"],
            "History is off on this node",
        );
        return;
    }
    let Some(sub) = msg.params.first().map(|s| s.to_ascii_uppercase()) else {
        fail(b, id, "NEED_MORE_PARAMS", &["*"], "Missing parameters");
        return;
    };
    let needed = match sub.as_str() {
        "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "TARGETS" => 4,
        "BETWEEN" => 5,
        _ => {
            fail(b, id, "UNKNOWN_COMMAND", &[&sub], "Unknown command");
            return;
        }
    };
    if msg.params.len() < needed {
        fail(b, id, "NEED_MORE_PARAMS", &[&sub], "Missing parameters");
        return;
    }
    let p = &msg.params;
    let Some(limit) = parse_limit(&p[needed - 1]) else {
        fail(
            b,
            id,
            "INVALID_PARAMS",
            &[&sub, &p[needed - 1]],
            "Invalid limit",
        );
        return;
    };
    let limit = limit.min(b.config.history.max_per_request);
    let query = if sub == "TARGETS" {
        targets_query(b, id, &p[1], &p[2], limit)
    } else {
        conversation_query(b, id, &sub, p, limit)
    };
    let Some(query) = query else {
        return; // answered with a FAIL
    };
    let target = if sub == "TARGETS" { "*" } else { &p[1] };
    let request = Request {
        subcommand: sub.clone(),
        target: target.to_string(),
        replay_on_join: false,
    };
    match query {
        Ok(query) => start_read(b, id, request, query),
        // Allowed to ask, but nothing to see (not a member): an empty batch.
        Err(()) => send_batch(b, id, &request, Found::Records(Vec::new())),
    }
}

/// Reads the newest `join_lines` messages of channel `key` for a client that just joined it
/// (only if the setting is on and the client did not negotiate `draft/chathistory`).
pub(super) fn replay_on_join(b: &mut Broker, id: ClientId, key: &str, display: &str) {
    let lines = b.config.history.join_lines;
    let asks_itself = b
        .clients
        .get(&id)
        .is_some_and(|c| c.caps.has(Caps::CHATHISTORY));
    if lines == 0 || b.config.hooks.history.is_none() || asks_itself {
        return;
    }
    let query = Query {
        scope: Scope::One(key.to_string()),
        select: Select::Latest(None),
        limit: lines,
        events: false,
        since: i64::MIN,
    };
    let request = Request {
        subcommand: "LATEST".into(),
        target: display.to_string(),
        replay_on_join: true,
    };
    start_read(b, id, request, query);
}

/// `Ok(query)`, `Err(())` for a target the client may not read (answered with an empty
/// batch), or `None` after a FAIL.
#[allow(clippy::type_complexity)]
fn conversation_query(
    b: &mut Broker,
    id: ClientId,
    sub: &str,
    p: &[String],
    limit: usize,
) -> Option<Result<Query, ()>> {
    let target = &p[1];
    let client = b.clients.get(&id)?;
    let events = client.caps.has(Caps::EVENT_PLAYBACK);
    let signon = unix_time(client.signon) as i64 * 1000;
    let (scope, since, allowed) = if target == "*" {
        // Every private conversation of the client, whoever the other party.
        let nick = casemap::casefold(client.nick());
        (Scope::Direct(nick), signon, true)
    } else if casemap::is_channel_target(target) {
        let key = casemap::casefold(target);
        let member = client.channels.contains(&key);
        (Scope::One(key), i64::MIN, member)
    } else if casemap::is_valid_nick(target, b.config.limits.nick_len) {
        (Scope::One(private_key(client.nick(), target)), signon, true)
    } else {
        fail(b, id, "INVALID_TARGET", &[sub, target], "Invalid target");
        return None;
    };
    let bound = |i: usize| parse_bound(&p[i]);
    let select = match sub {
        "LATEST" if p[2] == "*" => Some(Select::Latest(None)),
        "LATEST" => bound(2).map(|b| Select::Latest(Some(b))),
        "BEFORE" => bound(2).map(Select::Before),
        "AFTER" => bound(2).map(Select::After),
        "AROUND" => bound(2).map(Select::Around),
        _ => bound(2).zip(bound(3)).map(|(a, z)| Select::Between(a, z)),
    };
    let Some(select) = select else {
        let given = if sub == "BETWEEN" {
            format!("{} {}", p[2], p[3])
        } else {
            p[2].clone()
        };
        fail(
            b,
            id,
            "INVALID_PARAMS",
            &[sub, &given],
            "Invalid message reference",
        );
        return None;
    };
    if !allowed {
        return Some(Err(()));
    }
    Some(Ok(Query {
        scope,
        select,
        limit,
        events,
        since,
    }))
}

fn targets_query(
    b: &mut Broker,
    id: ClientId,
    from: &str,
    to: &str,
    limit: usize,
) -> Option<Result<Query, ()>> {
    let time = |s: &str| s.strip_prefix("timestamp=").and_then(parse_time);
    let (Some(from_ms), Some(to_ms)) = (time(from), time(to)) else {
        let given = format!("{from} {to}");
        fail(
            b,
            id,
            "INVALID_PARAMS",
            &["TARGETS", &given],
            "Invalid timestamp",
        );
        return None;
    };
    let client = b.clients.get(&id)?;
    Some(Ok(Query {
        scope: Scope::One(String::new()),
        select: Select::Targets {
            channels: client.channels.clone(),
            nick: casemap::casefold(client.nick()),
            from: from_ms,
            to: to_ms,
        },
        limit,
        events: false,
        since: unix_time(client.signon) as i64 * 1000,
    }))
}

/// Parks the client and runs the read on the blocking pool (inline without one).
fn start_read(b: &mut Broker, id: ClientId, request: Request, query: Query) {
    let Some(history) = b.config.hooks.history.clone() else {
        return;
    };
    if b.history_reads >= b.config.history.max_reads {
        let target = request.target.clone();
        fail(
            b,
            id,
            "MESSAGE_ERROR",
            &[&request.subcommand, &target],
            "Too many history reads at once, try again",
        );
        return;
    }
    let reader = Arc::clone(&history.reader);
    // Read-your-writes: the read waits (on the blocking pool) until the writer has committed
    // every record queued before it, which it asks the writer to do now. A stuck disk makes
    // the answer stale after SYNC_WAIT, never absent.
    let point = history.sink.sync();
    let counters = Arc::clone(history.sink.counters());
    let job = move || {
        if !counters.wait_processed(point, SYNC_WAIT) {
            log::warn!("history: a read waited {SYNC_WAIT:?} for the writer; answering without its last records");
        }
        Event::HistoryRead {
            id,
            result: reader.read(&query),
            request,
        }
    };
    match b.config.hooks.offload.clone() {
        Some(offload) => {
            b.history_reads += 1;
            b.park(id);
            offload(Box::new(job));
        }
        None => {
            if let Event::HistoryRead {
                id,
                request,
                result,
            } = job()
            {
                answer(b, id, request, result);
            }
        }
    }
}

/// The read came back: unpark the client and send what was found.
pub(in crate::broker) fn history_read(
    b: &mut Broker,
    id: ClientId,
    request: Request,
    result: Result<Found, String>,
) {
    b.history_reads = b.history_reads.saturating_sub(1);
    b.unpark(id);
    answer(b, id, request, result);
}

fn answer(b: &mut Broker, id: ClientId, request: Request, result: Result<Found, String>) {
    match result {
        Ok(found) => send_batch(b, id, &request, found),
        Err(e) => {
            log::error!("history: read for {} failed: {e}", b.nick_of(id));
            let target = request.target.clone();
            fail(
                b,
                id,
                "MESSAGE_ERROR",
                &[&request.subcommand, &target],
                "Messages could not be retrieved",
            );
        }
    }
}

/// One batch: `BATCH +ref chathistory <target>`, the lines, `BATCH -ref`; TARGETS uses the
/// `draft/chathistory-targets` batch type. Each line carries only the tags the client
/// negotiated: `batch` with `batch` (without it there are no BATCH lines at all, as the batch
/// spec asks), `time` with `server-time` or `message-tags`, `msgid` and the message's
/// client-only tags with `message-tags`. The replay after a JOIN (for clients without
/// `draft/chathistory`) is the lines alone, tagged the same way. A labeled CHATHISTORY gets its
/// label on the `BATCH +ref` line (see `labels`).
fn send_batch(b: &mut Broker, id: ClientId, request: &Request, found: Found) {
    let Some(caps) = b.clients.get(&id).map(|c| c.caps) else {
        return;
    };
    if request.replay_on_join {
        if let Found::Records(records) = found {
            for r in &records {
                b.send(id, replay_line(caps, None, r));
            }
        }
        return;
    }
    let reference = caps.has(Caps::BATCH).then(|| {
        b.batches += 1;
        format!("h{}", b.batches)
    });
    let server = b.config.server_name.clone();
    if let Some(reference) = &reference {
        let (kind, target) = match &found {
            Found::Records(_) => ("chathistory", Some(request.target.as_str())),
            Found::Targets(_) => ("draft/chathistory-targets", None),
        };
        let open = format!("+{reference}");
        let mut middle = vec![open.as_str(), kind];
        middle.extend(target);
        let line = build_line(Some(&server), "BATCH", &middle, None);
        b.send(id, line);
    }
    let me = b.clients.get(&id).map(|c| casemap::casefold(c.nick()));
    match found {
        Found::Records(records) => {
            for r in &records {
                b.send(id, replay_line(caps, reference.as_deref(), r));
            }
        }
        Found::Targets(targets) => {
            for t in targets {
                // A private conversation is shown as the other party's nick.
                let name = match t.name.split_once(' ') {
                    Some((a, z)) if Some(a) == me.as_deref() => z.to_string(),
                    Some((a, _)) => a.to_string(),
                    None => t.name.clone(),
                };
                let time = format_time(t.latest_ms);
                let line = build_line(
                    Some(&server),
                    "CHATHISTORY",
                    &["TARGETS", &name, &time],
                    None,
                );
                let line = match &reference {
                    Some(r) => add_tag(&line, &format!("batch={r}")),
                    None => line,
                };
                b.send(id, line);
            }
        }
    }
    if let Some(reference) = &reference {
        let close = format!("-{reference}");
        let line = build_line(Some(&server), "BATCH", &[&close], None);
        b.send(id, line);
    }
}

/// A stored line as a client with `caps` gets it: `@batch=...;time=...;msgid=...;+client...`,
/// each tag only if the client negotiated what it needs, then the line and CRLF.
fn replay_line(caps: Caps, batch: Option<&str>, r: &Stored) -> Line {
    let mut tags: Vec<String> = Vec::with_capacity(4);
    if let Some(reference) = batch {
        tags.push(format!("batch={reference}"));
    }
    if caps.any(Caps::SERVER_TIME.with(Caps::MESSAGE_TAGS)) {
        tags.push(format!("time={}", format_time(r.time_ms)));
    }
    if caps.has(Caps::MESSAGE_TAGS) {
        tags.push(format!("msgid={}", r.msgid));
        tags.extend(r.client_tags.clone().filter(|t| !t.is_empty()));
    }
    let mut out = Vec::with_capacity(r.line.len() + 64);
    if !tags.is_empty() {
        out.push(b'@');
        out.extend_from_slice(tags.join(";").as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(&r.line);
    out.extend_from_slice(b"\r\n");
    Arc::from(out)
}

/// A limit: a whole number, at least 1.
fn parse_limit(s: &str) -> Option<usize> {
    s.parse::<usize>().ok().filter(|&n| n > 0)
}

/// `timestamp=...` or `msgid=...`.
fn parse_bound(s: &str) -> Option<Bound> {
    if let Some(t) = s.strip_prefix("timestamp=") {
        return parse_time(t).map(Bound::Time);
    }
    s.strip_prefix("msgid=")
        .filter(|m| !m.is_empty())
        .map(|m| Bound::Msgid(m.to_string()))
}

/// `FAIL CHATHISTORY <code> <context...> :<text>` (standard replies).
fn fail(b: &mut Broker, id: ClientId, code: &str, context: &[&str], text: &str) {
    let mut middle = vec!["CHATHISTORY", code];
    middle.extend_from_slice(context);
    let line = build_line(Some(&b.config.server_name), "FAIL", &middle, Some(text));
    b.send(id, line);
}
