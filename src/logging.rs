//! Log set-up for the binaries: env_logger driven by `RUST_LOG` (default `info`), one line per
//! event, each naming the task it came from (`[conn#7 127.0.0.1:50312]`).

use std::io::Write;

/// Installs the logger. Call once, first thing in `main`.
pub fn init() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            let ts = buf.timestamp_millis();
            let level = record.level();
            crate::rt::task::with_current_name(|task| match task {
                Some(task) => writeln!(buf, "{ts} {level:<5} [{task}] {}", record.args()),
                None => writeln!(buf, "{ts} {level:<5} {}", record.args()),
            })
        })
        .init();
}
