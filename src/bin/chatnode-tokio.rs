//! The same node on Tokio (feature `tokio`): same flags, same broker, same connection code.

use std::process::ExitCode;

use chatnode::rt::tokio::TokioRuntime;
use chatnode::rt::Runtime;
use chatnode::server::{self, shutdown_channel};
use tokio::signal::unix::{signal, SignalKind};

fn main() -> ExitCode {
    let (config, listeners) = match chatnode::cli::start("Tokio") {
        Ok(started) => started,
        Err(code) => return code,
    };
    let runtime = match TokioRuntime::build(config.threads, config.blocking_threads) {
        Ok(runtime) => runtime,
        Err(e) => return chatnode::cli::finish(Err(e)),
    };
    let rt =
        TokioRuntime::new(runtime.handle().clone()).with_blocking_threads(config.blocking_threads);
    let result = runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let (shutdown, shutdown_signal) = shutdown_channel();
        let (rt2, kinds) = (rt.clone(), chatnode::cli::kinds(&listeners));
        // Contrast (cancellation): a bare `tokio::spawn` handle would *detach* the watcher when
        // dropped. `rt.spawn` returns our abort-on-drop handle, so it is owned as on smol.
        let _watcher = rt.spawn("signals".into(), async move {
            loop {
                let which = futures_lite::future::or(
                    futures_lite::future::or(
                        async {
                            term.recv().await;
                            "Term"
                        },
                        async {
                            int.recv().await;
                            "Int"
                        },
                    ),
                    async {
                        hup.recv().await;
                        "Hup"
                    },
                )
                .await;
                if which == "Hup" {
                    log::info!("received SIGHUP, reloading TLS certificates");
                    chatnode::cli::reload_certificates(&rt2, kinds.clone()).await;
                    continue;
                }
                log::info!("received {which}, shutting down");
                break;
            }
            shutdown.fire();
        });
        server::run(rt, listeners, config.server, shutdown_signal).await
    });
    // Tasks still alive were cancelled by their owners; don't wait on the blocking pool.
    runtime.shutdown_background();
    chatnode::cli::finish(result)
}
