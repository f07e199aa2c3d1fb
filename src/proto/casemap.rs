//! Name comparison and validation under `CASEMAPPING=rfc1459`.
//!
//! rfc1459 folds ASCII `A-Z` to `a-z` and `[ ] \ ~` to `{ } | ^`; all other
//! bytes (including every non-ASCII one) are left alone. Folding maps ASCII to
//! ASCII only, so it works byte-wise on UTF-8 and preserves byte lengths.

/// Fold one byte under rfc1459.
fn fold_byte(b: u8) -> u8 {
    match b {
        b'[' => b'{',
        b']' => b'}',
        b'\\' => b'|',
        b'~' => b'^',
        _ => b.to_ascii_lowercase(),
    }
}

/// rfc1459 casefolding: ASCII A-Z -> a-z, and [ ] \ ~ -> { } | ^.
pub fn casefold(s: &str) -> String {
    s.chars()
        .map(|c| match u8::try_from(c) {
            Ok(b) if b.is_ascii() => char::from(fold_byte(b)),
            _ => c,
        })
        .collect()
}

/// Names up to this many bytes are folded on the stack by [`with_casefold`]: nick and channel
/// lengths are 30 and 50 by default, so every lookup of a valid name fits.
const STACK_FOLD: usize = 64;

/// Calls `f` with `s` casefolded, without allocating when `s` is short (a lookup key on the
/// message path: one `String` fewer per PRIVMSG target). Longer names fall back to
/// [`casefold`].
///
/// ```
/// use chatnode::proto::casemap::with_casefold;
/// assert!(with_casefold("Nick[]", |k| k == "nick{}"));
/// ```
pub fn with_casefold<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    if s.len() > STACK_FOLD {
        return f(&casefold(s));
    }
    let mut buf = [0u8; STACK_FOLD];
    for (out, b) in buf.iter_mut().zip(s.bytes()) {
        *out = fold_byte(b);
    }
    // Folding changes ASCII bytes into ASCII bytes only, so the result is UTF-8 whenever `s`
    // is; the check cannot fail (and costs little on a short name).
    match std::str::from_utf8(&buf[..s.len()]) {
        Ok(folded) => f(folded),
        Err(_) => f(&casefold(s)),
    }
}

/// Whether two names are equal under rfc1459 casefolding (no allocation).
pub fn eq_casefold(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| fold_byte(x) == fold_byte(y))
}

/// The RFC 2812 "special" characters allowed in nicknames.
fn is_nick_special(b: u8) -> bool {
    b"[]\\`_^{|}".contains(&b)
}

/// Nickname validity, using the conservative RFC 2812 set: 1..=`max_len`
/// bytes, the first a letter or one of ``[]\`_^{|}``, the rest letters,
/// digits, those specials or '-'.
///
/// This satisfies every Modern rule (no space, ',', '*', '?', '!', '@'; no
/// leading '$', ':', '#', '&', digit or '-') and keeps nicks ASCII, so
/// rfc1459 folding covers all of their case variants.
pub fn is_valid_nick(nick: &str, max_len: usize) -> bool {
    let bytes = nick.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    bytes.len() <= max_len
        && (first.is_ascii_alphabetic() || is_nick_special(first))
        && rest
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || is_nick_special(b) || b == b'-')
}

/// Channel name validity: starts with '#' (the only CHANTYPES we announce),
/// 2..=`max_len` bytes, and no space, ',', BEL (0x07), NUL, CR, LF or ':'
/// (Modern forbids space, comma and BEL; RFC 2812 also forbids ':', and NUL,
/// CR and LF can never be on the wire).
pub fn is_valid_channel(name: &str, max_len: usize) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2
        && bytes.len() <= max_len
        && bytes.first() == Some(&b'#')
        && !bytes
            .iter()
            .any(|b| matches!(b, b' ' | b',' | 0x07 | 0 | b'\r' | b'\n' | b':'))
}

/// Whether a target string looks like a channel (starts with '#').
pub fn is_channel_target(s: &str) -> bool {
    s.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_casefold_agrees_with_casefold_at_every_length() {
        // Around the stack buffer's size too, with non-ASCII bytes that must be kept whole.
        for len in 0..=STACK_FOLD + 3 {
            let name: String = "Ab[]\\~é".chars().cycle().take(len).collect();
            with_casefold(&name, |k| assert_eq!(k, casefold(&name), "{name:?}"));
        }
    }

    #[test]
    fn folding() {
        assert_eq!(casefold("Nick[]\\~"), "nick{}|^");
        assert_eq!(casefold("ÉtÉ-Ä"), "ÉtÉ-Ä"); // non-ASCII untouched
        assert_eq!(casefold(""), "");
        assert!(eq_casefold("Nick[]\\~", "nick{}|^"));
        assert!(eq_casefold("#Chan", "#cHAN"));
        assert!(!eq_casefold("nick", "nick_"));
        assert!(!eq_casefold("a", "b"));
        assert!(!eq_casefold("É", "é")); // rfc1459 is ASCII-only
        assert_eq!(casefold("ABC`_"), "abc`_");
    }

    #[test]
    fn nicks() {
        for ok in [
            "a", "Nick", "[x]", "\\o|", "`tick", "_u", "^c", "{b}", "|p", "a-1", "z9",
        ] {
            assert!(is_valid_nick(ok, 9), "{ok}");
        }
        for bad in [
            "", "1abc", "-abc", "#chan", "&x", "$x", ":x", "a b", "a,b", "a*", "a?", "a!b", "a@b",
            "é", "nick\0", "~tilde", "a.b",
        ] {
            assert!(!is_valid_nick(bad, 30), "{bad:?}");
        }
        assert!(is_valid_nick("abcdefghi", 9));
        assert!(!is_valid_nick("abcdefghij", 9));
        assert!(!is_valid_nick("a", 0));
    }

    #[test]
    fn channels() {
        for ok in ["#a", "#chan", "##x", "#ünï", "#a-b_c.d"] {
            assert!(is_valid_channel(ok, 50), "{ok}");
        }
        for bad in [
            "", "#", "chan", "&local", "#a b", "#a,b", "#a\x07", "#a\0", "#a\r", "#a\n", "#a:b",
        ] {
            assert!(!is_valid_channel(bad, 50), "{bad:?}");
        }
        assert!(is_valid_channel("#abc", 4));
        assert!(!is_valid_channel("#abcd", 4));
        assert!(is_channel_target("#x"));
        assert!(!is_channel_target("nick"));
        assert!(!is_channel_target(""));
    }
}
