//! LIST: channels with their member counts and topics (321, 322 each, 323).
//!
//! The parameter is a comma-separated list of channel names and ELIST conditions (advertised
//! as `ELIST=CMNTU`): `>n` / `<n` more / fewer than n members (U), `C>m` / `C<m` created more /
//! less than m minutes ago (C), `T>m` / `T<m` topic set more / less than m minutes ago (T), a
//! mask with `*` or `?` (M), and `!mask` to exclude (N). A channel is listed when it matches
//! every condition; when names are given, it must also be one of them.

use std::time::SystemTime;

use crate::broker::channel::Channel;
use crate::broker::{Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

/// One parsed item of the LIST parameter.
enum Filter {
    Name(String),
    MoreUsers(usize),
    FewerUsers(usize),
    CreatedBefore(u64),
    CreatedWithin(u64),
    TopicBefore(u64),
    TopicWithin(u64),
    Mask(String),
    NotMask(String),
}

pub(super) fn list(b: &mut Broker, id: ClientId, msg: &Message) {
    let filters: Vec<Filter> = msg
        .params
        .iter()
        .flat_map(|p| p.split(','))
        .filter(|item| !item.is_empty())
        .map(parse)
        .collect();
    let now = SystemTime::now();
    let mut rows: Vec<(String, String, String)> = b
        .channels
        .iter()
        .filter(|(key, c)| c.is_visible_to(id) && matches(&filters, key, c, now))
        .map(|(_, c)| {
            let topic = c.topic.as_ref().map(|t| t.text.clone()).unwrap_or_default();
            (c.name.clone(), c.members.len().to_string(), topic)
        })
        .collect();
    rows.sort_unstable(); // rows that compare equal are equal in every field
    b.reply(id, numeric::RPL_LISTSTART, &["Channel"]);
    for (name, count, topic) in rows {
        b.reply(id, numeric::RPL_LIST, &[&name, &count, &topic]);
    }
    b.reply(id, numeric::RPL_LISTEND, &[]);
}

fn parse(item: &str) -> Filter {
    let number = |s: &str| s.trim().parse::<u64>().unwrap_or(0);
    if let Some(n) = item.strip_prefix('>') {
        return Filter::MoreUsers(number(n) as usize);
    }
    if let Some(n) = item.strip_prefix('<') {
        return Filter::FewerUsers(number(n) as usize);
    }
    let timed = |prefix: char| {
        let rest = item.strip_prefix(prefix)?;
        let (older, n) = match rest.strip_prefix('>') {
            Some(n) => (true, n),
            None => (false, rest.strip_prefix('<')?),
        };
        Some((older, number(n)))
    };
    if let Some((older, m)) = timed('C') {
        return if older {
            Filter::CreatedBefore(m)
        } else {
            Filter::CreatedWithin(m)
        };
    }
    if let Some((older, m)) = timed('T') {
        return if older {
            Filter::TopicBefore(m)
        } else {
            Filter::TopicWithin(m)
        };
    }
    if let Some(mask) = item.strip_prefix('!') {
        return Filter::NotMask(casemap::casefold(mask));
    }
    if item.contains(['*', '?']) {
        return Filter::Mask(casemap::casefold(item));
    }
    Filter::Name(casemap::casefold(item))
}

fn matches(filters: &[Filter], key: &str, c: &Channel, now: SystemTime) -> bool {
    let names: Vec<&String> = filters
        .iter()
        .filter_map(|f| match f {
            Filter::Name(n) => Some(n),
            _ => None,
        })
        .collect();
    if !names.is_empty() && !names.iter().any(|n| n.as_str() == key) {
        return false;
    }
    let minutes = |t: SystemTime| now.duration_since(t).map_or(0, |d| d.as_secs() / 60);
    let topic_age = c.topic.as_ref().map(|t| minutes(t.set_at));
    let glob = |m: &str| crate::proto::mask::glob_match(m.as_bytes(), key.as_bytes());
    filters.iter().all(|f| match f {
        Filter::Name(_) => true,
        Filter::MoreUsers(n) => c.members.len() > *n,
        Filter::FewerUsers(n) => c.members.len() < *n,
        Filter::CreatedBefore(m) => minutes(c.created) > *m,
        Filter::CreatedWithin(m) => minutes(c.created) < *m,
        Filter::TopicBefore(m) => topic_age.is_some_and(|a| a > *m),
        Filter::TopicWithin(m) => topic_age.is_some_and(|a| a < *m),
        Filter::Mask(m) => glob(m),
        Filter::NotMask(m) => !glob(m),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Ages are whole minutes however old the channel is: an hour and 59 seconds is 60 minutes,
    /// not 59 (minutes past the hour).
    #[test]
    fn ages_count_whole_minutes_past_the_first_hour() {
        let c = Channel::new("#old".into());
        let now = c.created + Duration::from_secs(3600 + 59);
        let lists = |item: &str| matches(&[parse(item)], "#old", &c, now);
        assert!(lists("C>59"));
        assert!(!lists("C>60"));
        assert!(lists("C<61"));
        assert!(!lists("C<60"));
    }
}
