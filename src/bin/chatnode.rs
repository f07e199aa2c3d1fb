//! The chatnode binary on our own executor: flags, bind, run until SIGINT or SIGTERM; SIGHUP
//! re-reads the configuration.

use std::process::ExitCode;

use chatnode::cli::{self, Started};
use chatnode::rt::signal::{self as rt_signal, Signal};
use chatnode::rt::{smol::SmolRuntime, Runtime};
use chatnode::server::{self, shutdown_channel};

fn main() -> ExitCode {
    let Started {
        config,
        listeners,
        rehash,
    } = match cli::start("our smol executor") {
        Ok(started) => started,
        Err(code) => return code,
    };
    if let Some(n) = config.blocking_threads {
        // The `blocking` crate reads this once, when its pool is first used: nothing has used it
        // yet, and no other thread exists that could be reading the environment.
        std::env::set_var("BLOCKING_MAX_THREADS", n.to_string());
    }
    let rt = SmolRuntime::new();
    rt.set_adaptive_threads(config.adaptive_threads);
    let result = rt.block_on(config.threads, {
        let rt = rt.clone();
        async move {
            let mut signals = rt
                .signals(&[Signal::TERM, Signal::INT, Signal::HUP])
                .map_err(cli::context("cannot watch SIGTERM, SIGINT and SIGHUP"))?;
            let (shutdown, signal) = shutdown_channel();
            // Owned here: dropping the handle when the server returns cancels the watcher.
            let _watcher = rt.spawn("signals".into(), async move {
                while let Ok(sig) = signals.next().await {
                    if cli::on_signal(rt_signal::name(sig), &rehash, &shutdown).is_break() {
                        return;
                    }
                }
                shutdown.fire(); // the signal stream failed: do not run on unstoppable
            });
            server::run(rt, listeners, config.server, signal).await
        }
    });
    cli::finish(result)
}
