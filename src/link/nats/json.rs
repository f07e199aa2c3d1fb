//! Just enough JSON for the NATS replies we read (`INFO`, JetStream API answers) and the
//! requests we write. Not a JSON parser: the fields we look for are flat numbers and strings
//! with unique names in documents the NATS server writes, so a scan for `"name":` suffices and
//! saves a dependency (serde_json is about 100 KB of an embedded build).
//!
//! Never panics on any input; a field that is not found, or not of the expected type, is `None`.

/// Writes `s` as a JSON string, quotes included.
///
/// ```
/// let mut out = Vec::new();
/// chatnode::link::nats::json::write_string(&mut out, "a\"b\\c\n");
/// assert_eq!(out, br#""a\"b\\c\u000a""#);
/// ```
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Where the value of the first field `name` starts (after `"name":` and spaces).
fn value_of<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\"");
    let mut from = 0;
    while let Some(at) = doc[from..].find(&key) {
        let after = &doc[from + at + key.len()..];
        let trimmed = after.trim_start();
        if let Some(value) = trimmed.strip_prefix(':') {
            return Some(value.trim_start());
        }
        from += at + key.len();
    }
    None
}

/// The first field `name` as an unsigned number.
///
/// ```
/// use chatnode::link::nats::json::number;
/// assert_eq!(number(r#"{"stream":"KV_x", "seq": 17}"#, "seq"), Some(17));
/// assert_eq!(number(r#"{"seq":"x"}"#, "seq"), None);
/// ```
pub fn number(doc: &str, name: &str) -> Option<u64> {
    let value = value_of(doc, name)?;
    let end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    value[..end].parse().ok()
}

/// The first field `name` as a string (simple escapes undone).
///
/// ```
/// use chatnode::link::nats::json::string;
/// assert_eq!(string(r#"{"description":"a \"b\""}"#, "description").as_deref(), Some("a \"b\""));
/// ```
pub fn string(doc: &str, name: &str) -> Option<String> {
    let value = value_of(doc, name)?.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// The first field `name` as a boolean.
pub fn boolean(doc: &str, name: &str) -> Option<bool> {
    let value = value_of(doc, name)?;
    if value.starts_with("true") {
        Some(true)
    } else if value.starts_with("false") {
        Some(false)
    } else {
        None
    }
}

/// A JetStream API error in `doc`: `(err_code, description)`.
///
/// ```
/// use chatnode::link::nats::json::api_error;
/// let doc = r#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}"#;
/// assert_eq!(api_error(doc), Some((10071, "wrong last sequence: 3".into())));
/// assert_eq!(api_error(r#"{"stream":"KV_x","seq":1}"#), None);
/// ```
pub fn api_error(doc: &str) -> Option<(u64, String)> {
    value_of(doc, "error")?;
    let code = number(doc, "err_code").or_else(|| number(doc, "code"))?;
    Some((code, string(doc, "description").unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_none_never_a_panic() {
        for doc in [
            "",
            "{",
            "\"seq\"",
            "\"seq\":",
            "{\"seq\":\"\\u12\"}",
            "{\"seq\":\"\\",
        ] {
            assert_eq!(number(doc, "seq"), None, "{doc}");
            let _ = string(doc, "seq");
            let _ = boolean(doc, "seq");
            let _ = api_error(doc);
        }
    }

    #[test]
    fn a_name_as_a_value_is_not_a_key() {
        assert_eq!(number(r#"{"a":"seq","seq":3}"#, "seq"), Some(3));
        assert_eq!(boolean(r#"{"jetstream":true}"#, "jetstream"), Some(true));
    }
}
