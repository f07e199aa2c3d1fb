//! IRCv3 message tags, as clients send them: look-ups in a raw tag section, the client-only
//! tags a server relays, and the size rule.
//!
//! The tag section is kept as the client sent it (escaped, without the leading '@'): the node
//! only relays client-only tags, and relaying them escaped as received is byte-for-byte what
//! the spec asks ("attach as-is"). Nothing here allocates unless it returns an owned value.

/// Most bytes of tag data (between '@' and the space) a client may send (message-tags
/// "Size limit"); more is answered with 417 ERR_INPUTTOOLONG and the line is not run.
pub const MAX_CLIENT_TAG_DATA: usize = 4094;

/// The raw (still escaped) value of tag `key` in the tag section `raw`: `Some("")` for a tag
/// without a value, `None` when absent. The last occurrence wins, as the spec tells clients.
///
/// ```
/// use chatnode::proto::tags::value;
/// assert_eq!(value("label=abc;+draft/x", "label"), Some("abc"));
/// assert_eq!(value("a;b=1;b=2", "b"), Some("2"));
/// assert_eq!(value("a", "a"), Some(""));
/// assert_eq!(value("a", "b"), None);
/// ```
pub fn value<'a>(raw: &'a str, key: &str) -> Option<&'a str> {
    raw.split(';').rev().find_map(|tag| {
        let (k, v) = tag.split_once('=').unwrap_or((tag, ""));
        (k == key).then_some(v)
    })
}

/// The client-only tags (`+key[=value]`) of the tag section `raw`, joined with ';' in the
/// order sent, or `None` if there are none. Tags with an empty value are written without '=';
/// later duplicates of a key replace earlier ones; other tags are dropped (the spec: a server
/// removes tags without the client-only prefix before relaying).
///
/// ```
/// use chatnode::proto::tags::client_only;
/// assert_eq!(client_only("label=1;+typing=active;+x=").as_deref(), Some("+typing=active;+x"));
/// assert_eq!(client_only("+a=1;+a=2").as_deref(), Some("+a=2"));
/// assert_eq!(client_only("msgid=forged;time=x"), None);
/// ```
pub fn client_only(raw: &str) -> Option<String> {
    let mut kept: Vec<(&str, &str)> = Vec::new();
    for tag in raw.split(';') {
        let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
        if !is_client_only_key(key) {
            continue;
        }
        match kept.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => kept.push((key, value)),
        }
    }
    if kept.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    for (key, value) in kept {
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(key);
        if !value.is_empty() {
            out.push('=');
            out.push_str(value);
        }
    }
    Some(out)
}

/// `+` then an optional `vendor/` and letters, digits and hyphens (the spec's `<key>`).
fn is_client_only_key(key: &str) -> bool {
    let Some(name) = key.strip_prefix('+') else {
        return false;
    };
    let name = name.rsplit_once('/').map_or(
        name,
        |(vendor, name)| {
            if vendor.is_empty() {
                ""
            } else {
                name
            }
        },
    );
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(is_client_only_key("+typing"));
        assert!(is_client_only_key("+example.com/foo-bar"));
        assert!(!is_client_only_key("+"));
        assert!(!is_client_only_key("+/x"));
        assert!(!is_client_only_key("+a b"));
        assert!(!is_client_only_key("typing"));
    }

    #[test]
    fn escaped_values_are_kept_as_sent() {
        let raw = r"+example=raw+:=,escaped\:\s\\";
        assert_eq!(client_only(raw).as_deref(), Some(raw));
    }
}
