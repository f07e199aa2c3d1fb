//! What both binaries do around the runtime: set up logging, read flags, bind the listeners,
//! and turn the result into an exit code. Keeping it here keeps `src/bin/` thin and identical
//! in everything but the runtime.

use std::net::TcpListener;
use std::process::ExitCode;

use crate::config::{Action, Config, USAGE};

/// Logging, flags and listeners. `Err` carries the exit code when the process should stop
/// here (`--help`, `--version`, a bad flag, an address that cannot be bound).
pub fn start(runtime: &str) -> Result<(Box<Config>, Vec<TcpListener>), ExitCode> {
    crate::logging::init();
    let mut config = match Config::from_env() {
        Ok(Action::Run(config)) => config,
        Ok(Action::Help) => {
            print!("{USAGE}");
            return Err(ExitCode::SUCCESS);
        }
        Ok(Action::Version) => {
            println!("{}", crate::broker::VERSION);
            return Err(ExitCode::SUCCESS);
        }
        Err(e) => {
            eprintln!("chatnode: {e}\n\n{USAGE}");
            return Err(ExitCode::from(2));
        }
    };
    config.server.broker.operators = config
        .operators
        .iter()
        .map(|o| crate::broker::Operator {
            name: o.name.clone(),
            password_hash: o.password_hash.clone(),
        })
        .collect();
    let listeners = crate::server::bind_all(&config.listen).map_err(|e| {
        log::error!("{e}");
        ExitCode::FAILURE
    })?;
    log::info!(
        "chatnode {} starting on {runtime} with {} thread(s)",
        env!("CARGO_PKG_VERSION"),
        config.threads
    );
    Ok((config, listeners))
}

/// The exit code for what the server returned: 0 after a clean shutdown.
pub fn finish(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
