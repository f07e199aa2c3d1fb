//! What a newcomer meets before the first client: messages at start-up name what went wrong and
//! what is allowed, fatal errors reach stderr whatever `RUST_LOG` says, `--help` matches the
//! README, `--listen` takes a host name, the journal gets priorities, and `--hash-password` does
//! not show the password on a terminal.

use crate::common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// What a finished process left.
struct Exit {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `build` with `args` and `env` until it exits by itself (killed after 20 s).
fn run_to_exit(b: &Build, args: &[&str], env: &[(&str, &str)]) -> Exit {
    let mut cmd = Command::new(b.path);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("JOURNAL_STREAM");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn the node");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(out) => out.expect("wait for the node"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("[{}] {args:?} did not exit by itself", b.name);
        }
    };
    Exit {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn fatal_errors_reach_stderr_even_when_rust_log_hides_them() {
    for_each_build(|b| {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = busy.local_addr().unwrap().to_string();
        for log in ["off", "info"] {
            let exit = run_to_exit(b, &["--listen", &addr], &[("RUST_LOG", log)]);
            assert_eq!(exit.code, Some(1), "RUST_LOG={log}: {}", exit.stderr);
            assert!(
                exit.stderr.contains(&format!("cannot listen on {addr}: ")),
                "RUST_LOG={log}: {}",
                exit.stderr
            );
        }
        // A missing MOTD: the message names the setting and the file.
        let dir = TempDir::new("startup-motd");
        let motd = dir.join("no-such-motd.txt").to_string_lossy().into_owned();
        let exit = run_to_exit(
            b,
            &["--listen", "127.0.0.1:0", "--motd", &motd],
            &[("RUST_LOG", "off")],
        );
        assert_eq!(exit.code, Some(1), "{}", exit.stderr);
        assert!(
            exit.stderr
                .contains(&format!("motd (--motd): cannot read {motd}: ")),
            "{}",
            exit.stderr
        );
    });
}

#[test]
fn bad_values_say_what_is_allowed_and_where_to_look() {
    for_each_build(|b| {
        let program = b.name;
        for (args, want) in [
            (
                ["--ping-interval", "0"],
                "--ping-interval: '0': must be more than 0",
            ),
            (
                ["--shutdown-grace", "soon"],
                "--shutdown-grace: 'soon' is not a duration",
            ),
            (
                ["--max-clients", "0"],
                "--max-clients: '0': must be a whole number more than 0",
            ),
            (["--listen", "6667"], "'6667' is not IP:PORT or HOST:PORT"),
        ] {
            let exit = run_to_exit(b, &args, &[]);
            assert_eq!(exit.code, Some(2), "{args:?}: {}", exit.stderr);
            assert!(exit.stderr.contains(want), "{args:?}: {}", exit.stderr);
            assert!(
                exit.stderr
                    .contains(&format!("({program} --help lists the options)")),
                "{}",
                exit.stderr
            );
        }
        let dir = TempDir::new("startup-config");
        let config = dir.join("node.toml");
        std::fs::write(&config, "threads = 1\nmax_client = 3\n").unwrap();
        let path = config.to_string_lossy().into_owned();
        let exit = run_to_exit(b, &["--config", &path], &[]);
        assert_eq!(exit.code, Some(2), "{}", exit.stderr);
        assert!(
            exit.stderr.contains(&format!(
                "config file {path}: line 2: max_client: unknown key"
            )),
            "{}",
            exit.stderr
        );
        assert!(
            exit.stderr
                .contains("deploy/chatnode.toml is a sample config file"),
            "{}",
            exit.stderr
        );
    });
}

/// Every flag of the README's table is in `--help`, with the same value name, and the other
/// way round (the table itself is checked against the settings table by a unit test).
#[test]
fn readme_flags_table_matches_help() {
    let readme = include_str!("../../README.md");
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("<!-- settings-table: generated"))
        .skip(3)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(table.len() > 10, "README's table of flags not found");
    for b in builds() {
        let help = run_to_exit(&b, &["--help"], &[]).stdout;
        for row in &table {
            let flags = row.trim_start_matches("| ").split(" | ").next().unwrap();
            for flag in flags.split(", ") {
                let flag = flag.trim_matches('`').replace("\\|", "|");
                assert!(help.contains(&flag), "[{}] --help lacks {flag:?}", b.name);
            }
        }
        let documented = help.lines().filter(|l| l.starts_with("  -")).count();
        assert_eq!(
            documented,
            table.len(),
            "[{}] --help has other flags",
            b.name
        );
    }
}

#[test]
fn listen_takes_a_host_name() {
    for_each_build(|b| {
        let node = Node::start(b, &["--listen", "localhost:0"]);
        assert!(node.addr().ip().is_loopback(), "{}", node.addr());
        let mut alice = node.register("alice");
        alice.assert_alive();
    });
}

/// With stderr connected to the journal (JOURNAL_STREAM names it), lines carry a syslog
/// priority and no timestamp of their own.
#[test]
fn journal_lines_have_priorities_and_no_timestamp() {
    use std::os::unix::fs::MetadataExt;
    for_each_build(|b| {
        let dir = TempDir::new("startup-journal");
        let path = dir.join("journal.txt");
        let file = std::fs::File::create(&path).unwrap();
        let meta = file.metadata().unwrap();
        let stream = format!("{}:{}", meta.dev(), meta.ino());
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = busy.local_addr().unwrap().to_string();
        let status = Command::new(b.path)
            .args(["--listen", &addr])
            .env("RUST_LOG", "info")
            .env("JOURNAL_STREAM", &stream)
            .stdin(Stdio::null())
            .stderr(file)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let fatal = format!("<3>cannot listen on {addr}: ");
        assert!(lines.iter().any(|l| l.starts_with(&fatal)), "{text}");
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with('<') && !l.contains(" INFO ")),
            "{text}"
        );
    });
}

/// On a terminal (a pseudo-terminal from util-linux `script`), `--hash-password` prompts,
/// asks twice, and the password typed never appears in the output.
#[test]
fn hash_password_on_a_terminal_prompts_and_does_not_echo() {
    let Some(script) = find_on_path("script") else {
        println!("SKIPPED: no `script` (util-linux) to make a pseudo-terminal");
        return;
    };
    let b = &builds()[0];
    let mut child = Command::new(script)
        .args(["-qec", &format!("{} --hash-password", b.path), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Reads the terminal's output until `marker`, in a thread so a missing prompt fails at a
    // deadline instead of hanging.
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while let Ok(1) = stdout.read(&mut byte) {
            seen.push(byte[0]);
            let _ = tx.send(String::from_utf8_lossy(&seen).into_owned());
        }
    });
    let wait_for = |marker: &str| -> String {
        loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(text) if text.contains(marker) => return text,
                Ok(_) => {}
                Err(e) => panic!("no {marker:?} on the terminal: {e}"),
            }
        }
    };
    wait_for("(not shown): ");
    stdin.write_all(b"hunter22\n").unwrap();
    wait_for("again: ");
    stdin.write_all(b"hunter22\n").unwrap();
    wait_for("$argon2id$v=19$");
    assert!(child.wait().unwrap().success());
    let all = rx.try_iter().last().unwrap_or_default();
    assert!(all.contains("$argon2id$"), "{all:?}");
    assert!(
        !all.contains("hunter22"),
        "the password was echoed: {all:?}"
    );
}
