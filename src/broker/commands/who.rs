//! WHO: users in a channel or matching a mask, one 352 RPL_WHOREPLY each (or, with WHOX
//! fields, one 354 RPL_WHOSPCRPL), then 315 RPL_ENDOFWHO.
//!
//! `WHO <mask> [o][%<fields>[,<token>]]`: a channel name lists its members; any other mask
//! (`*` and `?` wildcards) is matched against nick, username, host, server name and realname.
//! The `o` flag keeps IRC operators only. Invisible users (+i) are listed only to those who
//! share a channel with them. WHOX (advertised as `WHOX`): the reply carries the requested
//! fields, always in the order `t c u i h s n f d l a o r`.

use crate::broker::caps::Caps;
use crate::broker::state::Client;
use crate::broker::{Broker, ClientId};
use crate::proto::mask::glob_match;
use crate::proto::{casemap, numeric, Message};

/// One user to answer about: the channel shown and the channel prefix(es) of the user there.
struct Row {
    channel: String,
    member: ClientId,
    prefix: &'static str,
}

/// What the second parameter asked for.
#[derive(Default)]
struct Query {
    opers_only: bool,
    /// WHOX: the field letters, and the token to echo.
    fields: Option<String>,
    token: String,
}

pub(super) fn who(b: &mut Broker, id: ClientId, msg: &Message) {
    let mask = msg
        .params
        .first()
        .filter(|m| !m.is_empty())
        .cloned()
        .unwrap_or_else(|| "*".into());
    let query = parse_query(msg.params.get(1).map(String::as_str).unwrap_or(""));
    let rows = if casemap::is_channel_target(&mask) {
        channel_rows(b, id, &mask)
    } else {
        mask_rows(b, id, &mask)
    };
    for row in rows {
        let is_oper = b.clients.get(&row.member).is_some_and(|c| c.oper);
        if query.opers_only && !is_oper {
            continue;
        }
        let params = match &query.fields {
            Some(fields) => whox_params(b, id, &row, fields, &query.token),
            None => who_params(b, &row),
        };
        let params: Vec<&str> = params.iter().map(String::as_str).collect();
        let n = if query.fields.is_some() {
            numeric::RPL_WHOSPCRPL
        } else {
            numeric::RPL_WHOREPLY
        };
        b.reply(id, n, &params);
    }
    b.reply(id, numeric::RPL_ENDOFWHO, &[&mask]);
}

fn parse_query(param: &str) -> Query {
    let (flags, whox) = match param.split_once('%') {
        Some((flags, whox)) => (flags, Some(whox)),
        None => (param, None),
    };
    let mut query = Query {
        opers_only: flags.contains('o'),
        ..Query::default()
    };
    if let Some(whox) = whox {
        let (fields, token) = whox.split_once(',').unwrap_or((whox, ""));
        query.fields = Some(fields.to_string());
        query.token = token.to_string();
    }
    query
}

fn channel_rows(b: &Broker, id: ClientId, name: &str) -> Vec<Row> {
    let Some(channel) = b
        .channels
        .get(&casemap::casefold(name))
        .filter(|c| c.is_visible_to(id))
    else {
        return Vec::new();
    };
    let caps = b.clients.get(&id).map_or(Caps::NONE, |c| c.caps);
    let member_of = channel.members.contains_key(&id);
    channel
        .members
        .iter()
        .filter(|(&m, _)| member_of || b.user_visible_to(m, id))
        .map(|(&member, m)| Row {
            channel: channel.name.clone(),
            member,
            prefix: m.prefix_for(caps),
        })
        .collect()
}

fn mask_rows(b: &Broker, id: ClientId, mask: &str) -> Vec<Row> {
    let pattern = casemap::casefold(mask);
    let pattern = if pattern == "0" {
        "*".to_string()
    } else {
        pattern
    };
    let server = casemap::casefold(&b.config.server_name);
    let hit = |s: &str| glob_match(pattern.as_bytes(), casemap::casefold(s).as_bytes());
    let hit_server = |c: &Client| match &c.node {
        Some(_) if b.linked() => hit(&b.server_of(c)),
        _ => hit(&server),
    };
    b.clients
        .values()
        .filter(|c| c.registered && b.user_visible_to(c.id, id))
        .filter(|c| {
            hit(c.nick())
                || c.user.as_deref().is_some_and(hit)
                || hit(&c.host)
                || hit_server(c)
                || hit(&c.realname)
        })
        .map(|c| Row {
            channel: "*".into(),
            member: c.id,
            prefix: "",
        })
        .collect()
}

/// `H`/`G` (here, gone), `*` for an IRC operator, then the channel prefix(es).
fn flags(b: &Broker, row: &Row) -> String {
    let Some(c) = b.clients.get(&row.member) else {
        return String::new();
    };
    let mut flags = String::from(if c.away.is_some() { "G" } else { "H" });
    if c.oper {
        flags.push('*');
    }
    flags.push_str(row.prefix);
    flags
}

/// `<channel> <user> <host> <server> <nick> <flags> :<hopcount> <realname>`.
fn who_params(b: &Broker, row: &Row) -> Vec<String> {
    let Some(c) = b.clients.get(&row.member) else {
        return Vec::new();
    };
    vec![
        row.channel.clone(),
        c.user.clone().unwrap_or_default(),
        c.host.clone(),
        b.server_of(c),
        c.nick().to_string(),
        flags(b, row),
        format!("0 {}", c.realname),
    ]
}

/// The WHOX fields asked for, in the fixed order `t c u i h s n f d l a o r` (no account
/// system: `a` is `0`; no op levels: `o` is `n/a`). The real IP (`i`) only to the user itself
/// and to IRC operators, as hosts are cloaked; others get `255.255.255.255`.
fn whox_params(b: &Broker, viewer: ClientId, row: &Row, fields: &str, token: &str) -> Vec<String> {
    let Some(c) = b.clients.get(&row.member) else {
        return Vec::new();
    };
    let sees_ip = viewer == row.member || b.clients.get(&viewer).is_some_and(|v| v.oper);
    let mut out = Vec::new();
    for letter in "tcuihsnfdlaor".chars().filter(|&l| fields.contains(l)) {
        out.push(match letter {
            't' => token.to_string(),
            'c' => row.channel.clone(),
            'u' => c.user.clone().unwrap_or_default(),
            'i' if sees_ip => c.peer.ip().to_string(),
            'i' => "255.255.255.255".into(),
            'h' => c.host.clone(),
            's' => b.server_of(c),
            'n' => c.nick().to_string(),
            'f' => flags(b, row),
            'd' => "0".into(),
            'l' => c.last_message.elapsed().as_secs().to_string(),
            'a' => "0".into(),
            'o' => "n/a".into(),
            _ => c.realname.clone(),
        });
    }
    out
}
