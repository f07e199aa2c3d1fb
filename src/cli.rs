//! What both binaries do around the runtime: set up logging, read flags, bind the listeners,
//! and turn the result into an exit code. Keeping it here keeps `src/bin/` thin and identical
//! in everything but the runtime.

use std::ops::ControlFlow;
use std::process::ExitCode;

use crate::config::{help, Action, Config, Reach};
use crate::server::transport::Listener;

mod password;
use crate::server::{rehash_channel, RehashTrigger, Reload, Shutdown};

/// What a binary needs to run the node once [`start`] has done its part.
pub struct Started {
    /// The configuration; `config.server.reload` is set up for REHASH and SIGHUP.
    pub config: Box<Config>,
    /// Every bound listener: one per `--listen`, `--listen-tls`, `--listen-ws`, `--listen-wss`.
    pub listeners: Vec<Listener>,
    /// Asks the node to re-read its configuration (and its TLS certificates): the binaries call
    /// it on SIGHUP.
    pub rehash: RehashTrigger,
}

/// Logging, flags and listeners. `Err` carries the exit code when the process should stop
/// here (`--help`, `--version`, a bad flag, an address that cannot be bound, a certificate
/// that cannot be read).
pub fn start(runtime: &str) -> Result<Started, ExitCode> {
    crate::logging::init();
    let mut config = match Config::from_env() {
        Ok(Action::Run(config)) => config,
        Ok(Action::Help) => {
            print!("{}", help::usage(&program_name()));
            return Err(ExitCode::SUCCESS);
        }
        Ok(Action::PrintSettingsMarkdown) => {
            print!("{}", help::markdown());
            return Err(ExitCode::SUCCESS);
        }
        Ok(Action::Version) => {
            println!(
                "{} {} (runtime: {runtime})",
                program_name(),
                env!("CARGO_PKG_VERSION")
            );
            return Err(ExitCode::SUCCESS);
        }
        Ok(Action::HashPassword) => return Err(password::hash_password()),
        Err(e) => {
            let program = program_name();
            let hint = if e.is_about_file() {
                "(deploy/chatnode.toml is a sample config file; the table of flags in README.md \
                 lists every key)"
                    .to_string()
            } else {
                format!("({program} --help lists the options)")
            };
            eprintln!("{program}: {e}\n{hint}");
            return Err(ExitCode::from(2));
        }
    };
    config.resolve_history();
    let (rehash, requests) = rehash_channel();
    config.server.reload = Some(Reload {
        reload: crate::config::reloader(&config),
        requests,
    });
    let listeners = bind(&mut config).map_err(|e| {
        crate::logging::fatal(&e);
        ExitCode::FAILURE
    })?;
    log::info!(
        "chatnode {} starting on {runtime} with {} thread(s)",
        env!("CARGO_PKG_VERSION"),
        config.threads
    );
    Ok(Started {
        config,
        listeners,
        rehash,
    })
}

/// What a binary's signal watcher does with a signal (`name` as the log should show it):
/// SIGHUP asks for a re-read of the configuration and the watcher goes on; any other signal
/// it watches (SIGINT, SIGTERM) fires the shutdown and the watcher stops.
pub fn on_signal(name: &str, rehash: &RehashTrigger, shutdown: &Shutdown) -> ControlFlow<()> {
    if name.eq_ignore_ascii_case("hup") {
        log::info!("received SIGHUP: re-reading the configuration");
        rehash.request();
        ControlFlow::Continue(())
    } else {
        log::info!("received SIG{}, shutting down", name.to_ascii_uppercase());
        shutdown.fire();
        ControlFlow::Break(())
    }
}

/// Binds every listener: plain, TLS, WebSocket, WebSocket over TLS. Reads the certificate once
/// (TLS and wss listeners share it, and a reload reloads both), and points the `sts`
/// capability at the first TLS port.
fn bind(config: &mut Config) -> std::io::Result<Vec<Listener>> {
    let reach = config.reach.clone();
    let mut listeners: Vec<Listener> = crate::server::bind_all(&config.listen)?
        .into_iter()
        .map(Listener::from)
        .collect();
    listeners.extend(reach_listeners(&reach)?);
    if reach.sts {
        let tls_port = listeners
            .iter()
            .filter(|l| matches!(l.kind.transport(), crate::server::Transport::Tls))
            .find_map(|l| l.socket.local_addr().ok());
        config.server.broker.sts_port = tls_port.map(|a| a.port());
    }
    Ok(listeners)
}

#[cfg(not(any(feature = "tls", feature = "websocket")))]
fn reach_listeners(_reach: &Reach) -> std::io::Result<Vec<Listener>> {
    Ok(Vec::new()) // the config refuses those flags in this build
}

#[cfg(any(feature = "tls", feature = "websocket"))]
fn reach_listeners(reach: &Reach) -> std::io::Result<Vec<Listener>> {
    let mut out = Vec::new();
    let bind = |addrs: &[std::net::SocketAddr]| crate::server::bind_all(addrs);
    #[cfg(feature = "tls")]
    let acceptor = match (&reach.tls_cert, &reach.tls_key) {
        (Some(cert), Some(key)) => Some(
            crate::server::transport::tls::TlsAcceptor::load(cert, key)
                .map_err(|e| std::io::Error::new(e.kind(), format!("TLS certificate: {e}")))?,
        ),
        _ => None,
    };
    #[cfg(feature = "tls")]
    for socket in bind(&reach.listen_tls)? {
        let kind =
            crate::server::ListenerKind::Tls(acceptor.clone().expect("checked by the config"));
        out.push(Listener { socket, kind });
    }
    #[cfg(feature = "websocket")]
    for (addrs, secure) in [(&reach.listen_ws, false), (&reach.listen_wss, true)] {
        for socket in bind(addrs)? {
            let settings = crate::server::transport::ws::WsSettings {
                origins: reach.ws_origins.clone(),
                serve_page: true,
                #[cfg(feature = "tls")]
                tls: if secure { acceptor.clone() } else { None },
            };
            let _ = secure;
            let kind = crate::server::ListenerKind::WebSocket(std::sync::Arc::new(settings));
            out.push(Listener { socket, kind });
        }
    }
    Ok(out)
}

/// Adds what was being done to an error that would not say it (`Operation not permitted`).
pub fn context(what: &str) -> impl FnOnce(std::io::Error) -> std::io::Error + '_ {
    move |e| std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The binary's name as it was run (`chatnode`, `chatnode-tokio`), for messages.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "chatnode".into())
}

/// The exit code for what the server returned: 0 after a clean shutdown.
pub fn finish(result: std::io::Result<()>) -> ExitCode {
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::logging::fatal(&e); // on stderr even when RUST_LOG hides errors
            ExitCode::FAILURE
        }
    };
    crate::logging::flush(); // the log thread writes out the last lines before we exit
    code
}
