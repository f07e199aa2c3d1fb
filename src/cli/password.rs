//! `--hash-password`: read a password and print its Argon2id hash for an `[[operator]]` table.
//!
//! On a terminal it prompts on stderr and turns the terminal's echo off while the password is
//! typed (twice, to catch a typo), so the password is neither shown nor left in the shell's
//! history. From a pipe or a file it reads one line, silently, as scripts expect.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use rustix::termios::{self, LocalModes, OptionalActions};

/// Reads the password, prints its hash on stdout.
pub(super) fn hash_password() -> ExitCode {
    let stdin = std::io::stdin();
    let password = if termios::isatty(&stdin) {
        read_on_terminal(&stdin)
    } else {
        read_line(&stdin).map_err(|e| format!("cannot read the password: {e}"))
    };
    let password = match password {
        Ok(password) if password.is_empty() => {
            eprintln!("chatnode: the password is empty (give it on standard input)");
            return ExitCode::from(2);
        }
        Ok(password) => password,
        Err(e) => {
            eprintln!("chatnode: {e}");
            return ExitCode::from(2);
        }
    };
    let hash = crate::auth::random_salt()
        .map_err(|e| e.to_string())
        .and_then(|salt| crate::auth::hash_password(&password, &salt));
    match hash {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chatnode: cannot hash the password: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prompts twice with echo off; the two entries must match.
fn read_on_terminal(stdin: &std::io::Stdin) -> Result<String, String> {
    let first = prompt(stdin, "Password for the [[operator]] (not shown): ")?;
    let again = prompt(stdin, "The same password again: ")?;
    if first != again {
        return Err("the two passwords differ; nothing was hashed".into());
    }
    Ok(first)
}

/// Prints `text` on stderr and reads one line from the terminal without echoing it.
fn prompt(stdin: &std::io::Stdin, text: &str) -> Result<String, String> {
    let saved = termios::tcgetattr(stdin).map_err(|e| format!("cannot read the terminal: {e}"))?;
    let mut quiet = saved.clone();
    // No echo of what is typed, but still of the Enter key, so the next prompt starts a line.
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    termios::tcsetattr(stdin, OptionalActions::Now, &quiet)
        .map_err(|e| format!("cannot turn the terminal's echo off: {e}"))?;
    // The prompt only once echo is off: whatever is typed after it is never shown.
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let line = read_line(stdin);
    // Restore the terminal whatever happened to the read.
    let _ = termios::tcsetattr(stdin, OptionalActions::Now, &saved);
    line.map_err(|e| format!("cannot read the password: {e}"))
}

/// One line, without its line end.
fn read_line(stdin: &std::io::Stdin) -> std::io::Result<String> {
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
