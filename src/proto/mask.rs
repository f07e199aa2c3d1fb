//! Masks: `*`/`?` globs and the `nick!user@host` masks of bans and exceptions.
//!
//! Matching is byte-wise and case-sensitive: callers casefold both sides first (rfc1459 folding
//! keeps byte lengths, so a folded glob matches exactly the folded names it should).

/// Matches `*` (any run) and `?` (any one byte); everything else literally.
///
/// Linear in `pattern.len() * text.len()` at worst: one backtrack point, never recursion.
///
/// ```
/// use chatnode::proto::mask::glob_match;
/// assert!(glob_match(b"a*c", b"abbbc"));
/// assert!(!glob_match(b"a?c", b"abbc"));
/// ```
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        // The star first: a `*` in the pattern is a wildcard even where the text holds a `*`.
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
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

/// Completes a ban-style mask to `nick!user@host` form, as servers commonly do: `bob` becomes
/// `bob!*@*`, `bob@host` becomes `bob!*@host`, `*!u` becomes `*!u@*`, `@h`... keeps every given
/// part and fills the missing ones with `*`. An empty part becomes `*` too.
///
/// ```
/// use chatnode::proto::mask::normalize;
/// assert_eq!(normalize("bob"), "bob!*@*");
/// assert_eq!(normalize("*!*@10.0.0.1"), "*!*@10.0.0.1");
/// assert_eq!(normalize("bob@host"), "bob!*@host");
/// assert_eq!(normalize("host.example"), "*!*@host.example");
/// ```
pub fn normalize(mask: &str) -> String {
    let or_star = |s: &str| {
        if s.is_empty() {
            "*".to_string()
        } else {
            s.to_string()
        }
    };
    let (nick_user, host) = match mask.split_once('@') {
        Some((nu, h)) => (nu, Some(h)),
        None => (mask, None),
    };
    let (nick, user) = match nick_user.split_once('!') {
        Some((n, u)) => (n, Some(u)),
        None => (nick_user, None),
    };
    // A lone word with a dot and no '!' or '@' is a host (as `MODE #c +b host.example`).
    if host.is_none() && user.is_none() && nick.contains('.') {
        return format!("*!*@{nick}");
    }
    format!(
        "{}!{}@{}",
        or_star(nick),
        or_star(user.unwrap_or("")),
        or_star(host.unwrap_or(""))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(glob_match(b"bob!*@*", b"bob!u@127.0.0.1"));
        assert!(!glob_match(b"bob!*@*", b"bobby!u@127.0.0.1"));
        // The text ends first: what is left of the pattern must be stars only.
        assert!(glob_match(b"nick*", b"nick"));
        assert!(glob_match(b"n**", b"n"));
        assert!(!glob_match(b"nick", b"nic"));
        assert!(!glob_match(b"nic?", b"nic"));
        // A star in the text (a realname, say) is one more character to the pattern.
        assert!(glob_match(b"*?", b"a*"));
        assert!(glob_match(b"*a", b"**a"));
    }

    #[test]
    fn normalizing() {
        assert_eq!(normalize("bob"), "bob!*@*");
        assert_eq!(normalize("bob!u"), "bob!u@*");
        assert_eq!(normalize("bob!u@h"), "bob!u@h");
        assert_eq!(normalize("!@"), "*!*@*");
        assert_eq!(normalize("*@10.0.0.1"), "*!*@10.0.0.1");
        assert_eq!(normalize("a.b"), "*!*@a.b");
    }
}
