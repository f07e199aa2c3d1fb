//! The same node on Tokio (feature `tokio`): same flags, same broker, same connection code.

use std::process::ExitCode;

use chatnode::cli::{self, Started};
use chatnode::rt::tokio::TokioRuntime;
use chatnode::rt::Runtime;
use chatnode::server::{self, shutdown_channel};
use futures_lite::future::or;
use tokio::signal::unix::{signal, SignalKind};

fn main() -> ExitCode {
    let Started {
        config,
        listeners,
        rehash,
    } = match cli::start("Tokio") {
        Ok(started) => started,
        Err(code) => return code,
    };
    // The blocking cap reaches Tokio's Builder and STATS e in one call (tested by
    // tests/contrasts.rs, tokio_blocking_threads_reach_the_builder).
    let (runtime, rt) = match TokioRuntime::start(config.threads, config.blocking_threads) {
        Ok(started) => started,
        Err(e) => return cli::finish(Err(cli::context("cannot start the Tokio runtime")(e))),
    };
    let result = runtime.block_on(async move {
        let watch = |kind, name| signal(kind).map_err(cli::context(name));
        let mut term = watch(SignalKind::terminate(), "cannot watch SIGTERM")?;
        let mut int = watch(SignalKind::interrupt(), "cannot watch SIGINT")?;
        let mut hup = watch(SignalKind::hangup(), "cannot watch SIGHUP")?;
        let (shutdown, shutdown_signal) = shutdown_channel();
        // Contrast (cancellation): a bare `tokio::spawn` handle would *detach* the watcher when
        // dropped. `rt.spawn` returns our abort-on-drop handle, so it is owned as on smol.
        let _watcher = rt.spawn("signals".into(), async move {
            loop {
                let which = or(
                    async { term.recv().await.map(|()| "Term") },
                    or(async { int.recv().await.map(|()| "Int") }, async {
                        hup.recv().await.map(|()| "Hup")
                    }),
                )
                .await;
                let Some(which) = which else {
                    shutdown.fire(); // a signal stream ended: do not run on unstoppable
                    return;
                };
                if cli::on_signal(which, &rehash, &shutdown).is_break() {
                    return;
                }
            }
        });
        server::run(rt, listeners, config.server, shutdown_signal).await
    });
    // Tasks still alive were cancelled by their owners; don't wait on the blocking pool.
    runtime.shutdown_background();
    cli::finish(result)
}
