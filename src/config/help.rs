//! `--help` and the README's table of flags, both written from [`SETTINGS`] and [`ACTIONS`].

use std::fmt::Write;

use super::settings::{DefaultValue, Reload, Setting, SETTINGS};

/// A flag that does something other than set a value: read a file, print and exit.
pub struct Action {
    /// As written on the command line, with its value name: `"--config FILE"`.
    pub flags: &'static str,
    /// One line of help.
    pub help: &'static str,
}

/// The flags that are not settings, in `--help` order (the parser in `config.rs` matches them).
pub static ACTIONS: &[Action] = &[
    Action {
        flags: "--config FILE",
        help:
            "read settings from a TOML file (keys are the flags in snake_case); flags override it; \
               [[operator]] tables list IRC operators (see deploy/chatnode.toml)",
    },
    Action {
        flags: "--hash-password",
        help: "ask for a password (not shown on a terminal; one line from a pipe), print its \
               Argon2id hash for an [[operator]], exit",
    },
    Action {
        flags: "-h, --help",
        help: "print this help",
    },
    Action {
        flags: "-V, --version",
        help: "print the version and the runtime",
    },
];

/// Width of the flag column in `--help`.
const FLAG_COLUMN: usize = 24;

/// `--help` lines wrap before this column.
const LINE_WIDTH: usize = 100;

/// The `--help` text for the binary `program`.
pub fn usage(program: &str) -> String {
    let mut out = format!(
        "{program}: a small IRC chat node\n\nUSAGE: {program} [OPTIONS]\n\n\
         OPTIONS (DUR is seconds, decimals allowed, or with a unit: 500ms, 2s, 5m):\n"
    );
    option(&mut out, ACTIONS[0].flags, ACTIONS[0].help);
    for s in SETTINGS {
        let mut text = s.help.to_string();
        if s.repeatable() {
            text.push_str(" (repeatable)");
        }
        match s.default {
            DefaultValue::Is(v) => {
                let _ = write!(text, " (default {v})");
            }
            DefaultValue::Computed(how) => {
                let _ = write!(text, " (default: {how})");
            }
            DefaultValue::Unset => {}
        }
        option(&mut out, &format!("--{} {}", s.flag, s.arg), &text);
    }
    for a in &ACTIONS[1..] {
        option(&mut out, a.flags, a.help);
    }
    let live: Vec<String> = SETTINGS
        .iter()
        .filter(|s| s.reload == Reload::Live)
        .map(Setting::key)
        .collect();
    out.push('\n');
    for paragraph in [
        "In a --config file each option above is a key in snake_case (--max-clients: \
         max_clients = 200)."
            .to_string(),
        format!(
            "REHASH (IRC operators) and SIGHUP re-read the --config file and the MOTD, and apply \
             {} and the [[operator]]s at once; other settings need a restart.",
            live.join(", ")
        ),
        "Logging: RUST_LOG=info (the default), debug or trace; for example \
         RUST_LOG=chatnode=debug."
            .to_string(),
    ] {
        wrap(&mut out, 0, &paragraph);
    }
    out
}

/// One option of `--help`: the flag, then its help wrapped under a column.
fn option(out: &mut String, flag: &str, help: &str) {
    let _ = write!(out, "  {flag:<FLAG_COLUMN$} ");
    if flag.len() > FLAG_COLUMN {
        let _ = write!(out, "\n  {:FLAG_COLUMN$} ", "");
    }
    wrap(out, 3 + FLAG_COLUMN, help);
}

/// Writes `text` from column `indent` (where the cursor already is), wrapping before
/// [`LINE_WIDTH`] with continuation lines indented as much; ends the line.
fn wrap(out: &mut String, indent: usize, text: &str) {
    let mut column = indent;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if column > indent && column + 1 + word.len() > LINE_WIDTH {
            let _ = write!(out, "\n{:indent$}", "");
            column = indent;
        }
        if column > indent {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.len();
    }
    out.push('\n');
}

/// The README's table of flags (Markdown), printed by the hidden `--print-settings-markdown`.
pub fn markdown() -> String {
    let mut out = String::from(
        "| flag | file key | default | meaning | on REHASH |\n| --- | --- | --- | --- | --- |\n",
    );
    for s in SETTINGS {
        let _ = writeln!(
            out,
            "| `--{} {}` | `{}` | {} | {}{} | {} |",
            s.flag,
            s.arg.replace('|', "\\|"),
            s.key(),
            markdown_default(s),
            s.help.replace('|', "\\|"),
            if s.repeatable() { " (repeatable)" } else { "" },
            match s.reload {
                Reload::Live => "applied",
                Reload::Restart => "restart",
            }
        );
    }
    for a in ACTIONS {
        let flags: Vec<String> = a.flags.split(", ").map(|f| format!("`{f}`")).collect();
        let _ = writeln!(out, "| {} | | | {} | |", flags.join(", "), a.help);
    }
    out
}

fn markdown_default(s: &Setting) -> String {
    match s.default {
        DefaultValue::Is(v) => format!("`{v}`"),
        DefaultValue::Computed(how) => how.to_string(),
        DefaultValue::Unset => "none".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_lists_every_setting_and_action() {
        let text = usage("chatnode");
        for s in SETTINGS {
            assert!(
                text.contains(&format!("--{} {}", s.flag, s.arg)),
                "{}",
                s.flag
            );
        }
        for a in ACTIONS {
            assert!(text.contains(a.flags), "{}", a.flags);
        }
    }

    /// README.md's table of flags is [`markdown`]'s output, between two markers.
    #[test]
    fn readme_settings_table_is_current() {
        let readme = include_str!("../../README.md");
        let start = "<!-- settings-table: generated by `chatnode --print-settings-markdown` -->\n";
        let end = "<!-- settings-table end -->";
        let from = readme
            .find(start)
            .expect("README lacks the settings-table marker")
            + start.len();
        let to = from
            + readme[from..]
                .find(end)
                .expect("README lacks the end marker");
        assert!(
            readme[from..to] == markdown(),
            "README.md's table of flags is stale: replace it with the output of \
             `cargo run -- --print-settings-markdown`"
        );
    }
}
