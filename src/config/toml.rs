//! A small parser for the subset of TOML that `--config` files use.
//!
//! Supported: `key = value` with bare keys (`A-Z a-z 0-9 _ -`); values that are basic strings
//! (`"..."`, with the escapes `\" \\ \n \t \r \b \f \uXXXX \UXXXXXXXX`), literal strings
//! (`'...'`), decimal integers (`+`/`-`, `_` between digits), booleans, and arrays of strings
//! (which may span lines and end in a trailing comma); `[table]` and `[[array of tables]]`
//! headers; `#` comments; LF or CRLF line ends.
//!
//! Not supported, and rejected with an error naming the line rather than misread: floats,
//! dates, multi-line strings, inline tables, quoted and dotted keys, arrays of anything but
//! strings. Every error carries the 1-based line it was found on.
//!
//! Why not the `toml` crate: with serde's derive it brings 20 more crates, proc-macros among
//! them (serde_derive, syn, quote, proc-macro2; toml_edit, winnow, indexmap), into a build that
//! has none. Measured on a scratch program in the `embedded` profile: +218 KB of stripped binary
//! and +11 s of clean build on this 2-core machine (docs/embedded.md), for a dozen keys read
//! once at start-up.

use std::fmt;

/// A value on the right of `=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `"text"` or `'text'`.
    String(String),
    /// `42`, `-7`, `1_000`.
    Integer(i64),
    /// `true` or `false`.
    Bool(bool),
    /// `["a", "b"]`.
    Array(Vec<String>),
}

impl Value {
    /// The TOML type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Bool(_) => "a boolean",
            Value::Array(_) => "an array",
        }
    }
}

/// One `key = value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key as written.
    pub key: String,
    /// Its value.
    pub value: Value,
    /// The 1-based line the key is on.
    pub line: usize,
}

/// Which header a section of the file is under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Header {
    /// The keys before the first header.
    Root,
    /// `[name]`.
    Table(String),
    /// `[[name]]`: one element of an array of tables.
    ArrayTable(String),
}

/// A header and the entries under it, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The header.
    pub header: Header,
    /// The header's 1-based line (0 for [`Header::Root`]).
    pub line: usize,
    /// The `key = value` lines under it.
    pub entries: Vec<Entry>,
}

/// A parsed document: the root section first, then one section per header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// Sections in file order; `sections[0]` is always [`Header::Root`].
    pub sections: Vec<Section>,
}

/// A syntax error and the 1-based line it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TomlError {
    /// The line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TomlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for TomlError {}

/// Parses `text`. Duplicate keys in one section and a `[table]` given twice are errors, as in
/// TOML; `[[name]]` may repeat, each time starting a new element.
///
/// ```
/// use chatnode::config::toml::{parse, Header, Value};
/// let doc = parse("threads = 1 # one\n[[operator]]\nname = 'root'\n").unwrap();
/// assert_eq!(doc.sections[0].entries[0].value, Value::Integer(1));
/// assert_eq!(doc.sections[1].header, Header::ArrayTable("operator".into()));
/// ```
pub fn parse(text: &str) -> Result<Document, TomlError> {
    let mut p = Parser {
        src: text.as_bytes(),
        text,
        pos: 0,
        line: 1,
    };
    let mut sections = vec![Section {
        header: Header::Root,
        line: 0,
        entries: Vec::new(),
    }];
    loop {
        p.skip_blank_lines();
        let Some(c) = p.peek() else { break };
        if c == b'[' {
            let line = p.line;
            let header = p.header()?;
            p.end_of_line()?;
            if let Header::Table(name) = &header {
                if sections.iter().any(|s| match &s.header {
                    Header::Table(n) | Header::ArrayTable(n) => n == name,
                    Header::Root => false,
                }) {
                    return Err(p.error_at(line, format!("table [{name}] is defined twice")));
                }
            }
            if let Header::ArrayTable(name) = &header {
                if sections
                    .iter()
                    .any(|s| s.header == Header::Table(name.clone()))
                {
                    return Err(p.error_at(
                        line,
                        format!("[[{name}]] follows a [{name}] table of the same name"),
                    ));
                }
            }
            sections.push(Section {
                header,
                line,
                entries: Vec::new(),
            });
        } else {
            let entry = p.entry()?;
            p.end_of_line()?;
            let section = sections
                .last_mut()
                .expect("the root section is always there");
            if let Some(first) = section.entries.iter().find(|e| e.key == entry.key) {
                return Err(p.error_at(
                    entry.line,
                    format!(
                        "key '{}' is given twice (first on line {})",
                        entry.key, first.line
                    ),
                ));
            }
            section.entries.push(entry);
        }
    }
    Ok(Document { sections })
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.pos + ahead).copied()
    }

    fn error(&self, message: impl Into<String>) -> TomlError {
        self.error_at(self.line, message)
    }

    fn error_at(&self, line: usize, message: impl Into<String>) -> TomlError {
        TomlError {
            line,
            message: message.into(),
        }
    }

    /// Spaces and tabs.
    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// A `#` comment up to (not including) the line end.
    fn skip_comment(&mut self) {
        if self.peek() == Some(b'#') {
            while !matches!(self.peek(), None | Some(b'\n' | b'\r')) {
                self.pos += 1;
            }
        }
    }

    /// A line end (`\n` or `\r\n`); false if there is none here.
    fn newline(&mut self) -> Result<bool, TomlError> {
        match (self.peek(), self.peek_at(1)) {
            (Some(b'\n'), _) => {
                self.pos += 1;
                self.line += 1;
                Ok(true)
            }
            (Some(b'\r'), Some(b'\n')) => {
                self.pos += 2;
                self.line += 1;
                Ok(true)
            }
            (Some(b'\r'), _) => Err(self.error("a carriage return must be followed by a newline")),
            _ => Ok(false),
        }
    }

    /// Whitespace, comments and line ends, as between statements and inside arrays.
    fn skip_blank_lines(&mut self) {
        loop {
            self.skip_spaces();
            self.skip_comment();
            match self.newline() {
                Ok(true) => continue,
                // A lone CR: leave it for the statement parser to report.
                _ => return,
            }
        }
    }

    /// After a statement: optional spaces and comment, then a line end or the end of input.
    fn end_of_line(&mut self) -> Result<(), TomlError> {
        self.skip_spaces();
        self.skip_comment();
        if self.peek().is_none() || self.newline()? {
            return Ok(());
        }
        Err(self.error(format!(
            "unexpected '{}' after the value; one key = value per line",
            self.rest_char()
        )))
    }

    /// The character at the current position, for messages.
    fn rest_char(&self) -> char {
        self.text[self.pos..].chars().next().unwrap_or(' ')
    }

    fn bare_key(&mut self, what: &str) -> Result<String, TomlError> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(match self.peek() {
                Some(b'"' | b'\'') => self.error(format!("quoted {what}s are not supported")),
                None | Some(b'\n' | b'\r') => self.error(format!("expected a {what}")),
                _ => self.error(format!(
                    "expected a {what} (letters, digits, '_' or '-'), found '{}'",
                    self.rest_char()
                )),
            });
        }
        let key = self.text[start..self.pos].to_string();
        if self.peek() == Some(b'.') {
            return Err(self.error(format!("dotted {what}s ('{key}.…') are not supported")));
        }
        Ok(key)
    }

    fn header(&mut self) -> Result<Header, TomlError> {
        self.pos += 1; // '['
        let array = self.peek() == Some(b'[');
        if array {
            self.pos += 1;
        }
        self.skip_spaces();
        let name = self.bare_key("table name")?;
        self.skip_spaces();
        let close: &[u8] = if array { b"]]" } else { b"]" };
        if !self.src[self.pos..].starts_with(close) {
            let want = if array { "]]" } else { "]" };
            return Err(self.error(format!("expected '{want}' to close the table header")));
        }
        self.pos += close.len();
        Ok(if array {
            Header::ArrayTable(name)
        } else {
            Header::Table(name)
        })
    }

    fn entry(&mut self) -> Result<Entry, TomlError> {
        let line = self.line;
        let key = self.bare_key("key")?;
        self.skip_spaces();
        if self.peek() != Some(b'=') {
            return Err(self.error(format!("expected '=' after key '{key}'")));
        }
        self.pos += 1;
        self.skip_spaces();
        let value = self.value(&key)?;
        Ok(Entry { key, value, line })
    }

    fn value(&mut self, key: &str) -> Result<Value, TomlError> {
        match self.peek() {
            Some(b'"' | b'\'') => Ok(Value::String(self.string()?)),
            Some(b'[') => self.array(key),
            Some(b'{') => Err(self.error("inline tables are not supported")),
            Some(b't' | b'f') => self.boolean(),
            Some(c) if c.is_ascii_digit() || c == b'+' || c == b'-' => self.integer(),
            None | Some(b'\n' | b'\r' | b'#') => {
                Err(self.error(format!("key '{key}' has no value after '='")))
            }
            Some(_) => Err(self.error(format!(
                "'{}' is not a value; strings need quotes (values: \"text\", 42, true, [\"a\"])",
                self.word()
            ))),
        }
    }

    fn string(&mut self) -> Result<String, TomlError> {
        let quote = self.src[self.pos];
        if self.src[self.pos..].starts_with(&[quote; 3]) {
            return Err(self.error("multi-line strings are not supported"));
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(c) = rest.chars().next() else {
                return Err(self.error("unterminated string"));
            };
            match c {
                '\n' | '\r' => {
                    return Err(self.error("unterminated string (it ends at the line end)"))
                }
                c if c as u32 == quote as u32 => {
                    self.pos += 1;
                    return Ok(out);
                }
                '\\' if quote == b'"' => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                c if (c < ' ' && c != '\t') || c == '\u{7f}' => {
                    return Err(self.error(format!(
                        "control character U+{:04X} in a string; use an escape",
                        c as u32
                    )))
                }
                c => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    /// After a backslash in a basic string.
    fn escape(&mut self) -> Result<char, TomlError> {
        let c = self
            .peek()
            .ok_or_else(|| self.error("unterminated string"))?;
        self.pos += 1;
        let simple = match c {
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            b'n' => Some('\n'),
            b't' => Some('\t'),
            b'r' => Some('\r'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'e' => Some('\u{1b}'),
            _ => None,
        };
        if let Some(ch) = simple {
            return Ok(ch);
        }
        let digits = match c {
            b'u' => 4,
            b'U' => 8,
            _ => {
                self.pos -= 1;
                return Err(self.error(format!(
                    "unknown escape '\\{}' in a string",
                    self.rest_char()
                )));
            }
        };
        let hex = self
            .text
            .get(self.pos..self.pos + digits)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error(format!("'\\{}' needs {digits} hex digits", c as char)))?;
        self.pos += digits;
        u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| {
                self.error(format!(
                    "'\\{}{hex}' is not a Unicode scalar value",
                    c as char
                ))
            })
    }

    fn array(&mut self, key: &str) -> Result<Value, TomlError> {
        let start_line = self.line;
        self.pos += 1; // '['
        let mut items = Vec::new();
        loop {
            self.skip_blank_lines();
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        start_line,
                        format!("the array for '{key}' is not closed with ']'"),
                    ))
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                Some(b'"' | b'\'') => items.push(self.string()?),
                Some(_) => {
                    return Err(self.error(format!(
                        "arrays may only hold strings; found '{}' in the array for '{key}'",
                        self.rest_char()
                    )))
                }
            }
            self.skip_blank_lines();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                None => {
                    return Err(self.error_at(
                        start_line,
                        format!("the array for '{key}' is not closed with ']'"),
                    ))
                }
                Some(_) => {
                    return Err(self.error(format!(
                        "expected ',' or ']' in the array for '{key}', found '{}'",
                        self.rest_char()
                    )))
                }
            }
        }
    }

    fn boolean(&mut self) -> Result<Value, TomlError> {
        for (word, value) in [("true", true), ("false", false)] {
            if self.src[self.pos..].starts_with(word.as_bytes()) && !self.word_continues(word.len())
            {
                self.pos += word.len();
                return Ok(Value::Bool(value));
            }
        }
        Err(self.error(format!(
            "'{}' is not a value; strings need quotes",
            self.word()
        )))
    }

    fn word_continues(&self, len: usize) -> bool {
        matches!(self.peek_at(len), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.')
    }

    /// The run of non-separator characters here, for messages.
    fn word(&self) -> &str {
        let rest = &self.text[self.pos..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ',' || c == ']' || c == '#')
            .unwrap_or(rest.len());
        &rest[..end]
    }

    fn integer(&mut self) -> Result<Value, TomlError> {
        let word = self.word().to_string();
        let bad = |p: &Self, why: &str| Err(p.error(format!("'{word}' is not an integer{why}")));
        let (negative, digits) = match word.as_bytes()[0] {
            b'-' => (true, &word[1..]),
            b'+' => (false, &word[1..]),
            _ => (false, &word[..]),
        };
        if digits.starts_with("0x") || digits.starts_with("0o") || digits.starts_with("0b") {
            return bad(self, "; only decimal integers are supported");
        }
        if digits.contains(':') || digits.len() > 4 && digits.as_bytes()[4] == b'-' {
            return bad(self, "; dates and times are not supported");
        }
        if digits.contains(['.', 'e', 'E', 'i', 'n']) {
            return bad(
                self,
                "; floats are not supported (write durations as strings: \"0.5s\", \"500ms\")",
            );
        }
        let bytes = digits.as_bytes();
        let well_formed = !bytes.is_empty()
            && bytes.iter().all(|b| b.is_ascii_digit() || *b == b'_')
            && bytes[0].is_ascii_digit()
            && bytes[bytes.len() - 1].is_ascii_digit()
            && !digits.contains("__")
            && !(bytes.len() > 1 && bytes[0] == b'0');
        if !well_formed {
            return bad(self, " (strings need quotes: \"30s\")");
        }
        let clean: String = digits.chars().filter(|c| *c != '_').collect();
        let magnitude: i128 = clean
            .parse()
            .map_err(|_| self.error(format!("'{word}' is too large")))?;
        let value = if negative { -magnitude } else { magnitude };
        let value =
            i64::try_from(value).map_err(|_| self.error(format!("'{word}' is too large")))?;
        self.pos += word.len();
        Ok(Value::Integer(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Vec<(String, Value)> {
        let doc = parse(text).unwrap();
        assert_eq!(doc.sections.len(), 1, "{doc:?}");
        doc.sections[0]
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    }

    fn err(text: &str) -> TomlError {
        parse(text).expect_err(text)
    }

    fn s(v: &str) -> Value {
        Value::String(v.to_string())
    }

    #[test]
    fn scalars() {
        assert_eq!(
            root("a = \"x\"\nb = 'y\\n'\nc = 42\nd = -7\ne = +1_000\nf = true\ng = false\nh = 0\n"),
            vec![
                ("a".into(), s("x")),
                ("b".into(), s("y\\n")),
                ("c".into(), Value::Integer(42)),
                ("d".into(), Value::Integer(-7)),
                ("e".into(), Value::Integer(1000)),
                ("f".into(), Value::Bool(true)),
                ("g".into(), Value::Bool(false)),
                ("h".into(), Value::Integer(0)),
            ]
        );
    }

    #[test]
    fn escapes_and_unicode() {
        assert_eq!(
            root(r#"k = "q\" b\\ n\n t\t \u00e9 \U0001F600 é""#),
            vec![("k".into(), s("q\" b\\ n\n t\t é 😀 é"))]
        );
        assert_eq!(
            root("k = \"a # not a comment\""),
            vec![("k".into(), s("a # not a comment"))]
        );
        assert_eq!(root("k = \"\""), vec![("k".into(), s(""))]);
    }

    #[test]
    fn comments_blank_lines_crlf() {
        let text = "# header comment\r\n\r\n  key-1 = 1   # trailing\r\n\t\nkey_2=2";
        assert_eq!(
            root(text),
            vec![
                ("key-1".into(), Value::Integer(1)),
                ("key_2".into(), Value::Integer(2)),
            ]
        );
        assert_eq!(root(""), vec![]);
        assert_eq!(root("# only a comment"), vec![]);
    }

    #[test]
    fn arrays() {
        assert_eq!(root("a = []"), vec![("a".into(), Value::Array(vec![]))]);
        assert_eq!(
            root("a = [\"x\", 'y']"),
            vec![("a".into(), Value::Array(vec!["x".into(), "y".into()]))]
        );
        let multi = "a = [\n  \"x\", # first\n\n  \"y\",\n]\nb = 1\n";
        let doc = parse(multi).unwrap();
        assert_eq!(
            doc.sections[0].entries[0].value,
            Value::Array(vec!["x".into(), "y".into()])
        );
        assert_eq!(doc.sections[0].entries[1].line, 6);
    }

    #[test]
    fn tables_and_arrays_of_tables() {
        let text =
            "top = 1\n[server]\nname = 'a'\n\n[[operator]]\nname = 'x'\n[[operator]]\nname = 'y'\n";
        let doc = parse(text).unwrap();
        let headers: Vec<_> = doc
            .sections
            .iter()
            .map(|s| (s.header.clone(), s.line))
            .collect();
        assert_eq!(
            headers,
            vec![
                (Header::Root, 0),
                (Header::Table("server".into()), 2),
                (Header::ArrayTable("operator".into()), 5),
                (Header::ArrayTable("operator".into()), 7),
            ]
        );
        assert_eq!(doc.sections[3].entries[0].value, s("y"));
        assert_eq!(doc.sections[3].entries[0].line, 8);
        // Spaces inside the brackets are allowed.
        assert!(parse("[ a ]\n[[ b ]]\n").is_ok());
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("a = 1\nb = 2\na = 3\n", 3, "given twice (first on line 1)"),
            ("a = 1\n\nb = \n", 3, "no value"),
            ("a = 1\nb 2\n", 2, "expected '='"),
            ("a = hello\n", 1, "strings need quotes"),
            ("a = 'x'\nb = 30s\n", 2, "strings need quotes"),
            ("a = 1.5\n", 1, "floats are not supported"),
            ("a = 1e3\n", 1, "floats are not supported"),
            ("a = 0x10\n", 1, "only decimal"),
            ("a = 1979-05-27\n", 1, "dates"),
            ("a = 01\n", 1, "not an integer"),
            ("a = 1__0\n", 1, "not an integer"),
            ("a = 99999999999999999999\n", 1, "too large"),
            ("\na = \"open\n", 2, "unterminated string"),
            ("a = \"bad \\q\"\n", 1, "unknown escape '\\q'"),
            ("a = \"\\u12\"\n", 1, "4 hex digits"),
            ("a = \"\\uD800\"\n", 1, "not a Unicode scalar value"),
            ("a = \"\"\"x\"\"\"\n", 1, "multi-line strings"),
            ("a = {x = 1}\n", 1, "inline tables"),
            ("a = [1, 2]\n", 1, "only hold strings"),
            ("a = [\n'x'\n'y']\n", 3, "expected ',' or ']'"),
            ("\na = [\n'x',\n", 2, "not closed"),
            ("a = 1 b = 2\n", 1, "one key = value per line"),
            ("a.b = 1\n", 1, "dotted keys"),
            ("\"a\" = 1\n", 1, "quoted keys"),
            ("[t]\n[t]\n", 2, "defined twice"),
            ("[t]\n[[t]]\n", 2, "same name"),
            ("[[t]\n", 1, "expected ']]'"),
            ("[t\n", 1, "expected ']'"),
            ("[]\n", 1, "expected a table name"),
            ("= 1\n", 1, "expected a key"),
            ("a = 1\rb = 2\n", 1, "carriage return"),
            ("a = \"x\u{1}\"\n", 1, "control character U+0001"),
            ("a = truex\n", 1, "not a value"),
        ];
        for (text, line, needle) in cases {
            let e = err(text);
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")));
        }
    }

    #[test]
    fn duplicate_keys_are_per_section() {
        assert!(parse("name = 1\n[[operator]]\nname = 'a'\n[[operator]]\nname = 'b'\n").is_ok());
    }
}
