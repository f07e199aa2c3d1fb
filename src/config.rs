//! Command-line flags, shared by every binary, turned into a [`ServerConfig`].
//!
//! Every limit the node enforces is a flag with a default that suits a small board; nothing is
//! hard-coded deeper down.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::ValueExt;

use crate::server::ServerConfig;

/// The node's configuration: where to listen, how many threads, and the server's behaviour.
#[derive(Clone, Debug)]
pub struct Config {
    /// Addresses to listen on (`--listen`, repeatable).
    pub listen: Vec<SocketAddr>,
    /// Executor threads (`--threads`); 1 runs every task on the main thread.
    pub threads: usize,
    /// Everything else.
    pub server: ServerConfig,
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Action {
    /// Run the node.
    Run(Box<Config>),
    /// Print [`USAGE`] and exit.
    Help,
    /// Print the version and exit.
    Version,
}

/// A flag that could not be understood; the message names it.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl From<lexopt::Error> for ConfigError {
    fn from(e: lexopt::Error) -> Self {
        ConfigError(e.to_string())
    }
}

/// The `--help` text.
pub const USAGE: &str = "\
chatnode: a small IRC chat node

USAGE: chatnode [OPTIONS]

OPTIONS (DUR is seconds, decimals allowed, or with a suffix: 500ms, 2s, 5m):
  --listen ADDR            address to listen on, repeatable (default 127.0.0.1:6667; IPv6: [::1]:6667)
  --threads N              executor threads (default: number of cores, at most 4); 1 = main thread only
  --server-name NAME       the server's name in replies (default chatnode.local)
  --network NAME           network name in ISUPPORT and the welcome (default chatnode)
  --password PASS          server password clients must send with PASS
  --motd FILE              message of the day file (default: none, clients get 422)
  --max-clients N          connections beyond N get an ERROR line and are closed (default 1024)
  --register-timeout DUR   time allowed to complete registration (default 30)
  --ping-interval DUR      silence before a PING, and again before 'Ping timeout' (default 120)
  --write-timeout DUR      how long one write to a client may stall (default 30)
  --shutdown-grace DUR     how long shutdown waits for clients to be flushed (default 5)
  --sendq BYTES            bytes queued for one client before it is dropped, 'SendQ exceeded' (default 131072)
  -h, --help               print this help
  -V, --version            print the version

Logging: RUST_LOG=info (the default), debug or trace; for example RUST_LOG=chatnode=debug.
";

impl Config {
    /// Parses the process's own arguments.
    pub fn from_env() -> Result<Action, ConfigError> {
        Self::parse(std::env::args_os().skip(1))
    }

    /// Parses `args` (without the program name).
    ///
    /// ```
    /// use chatnode::config::{Action, Config};
    /// let Action::Run(c) = Config::parse(["--listen", "127.0.0.1:0", "--ping-interval", "500ms"]).unwrap()
    /// else { panic!() };
    /// assert_eq!(c.listen.len(), 1);
    /// assert_eq!(c.server.timeouts.ping_interval, std::time::Duration::from_millis(500));
    /// ```
    pub fn parse<I>(args: I) -> Result<Action, ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<OsString>,
    {
        use lexopt::prelude::*;
        let mut config = Config {
            listen: Vec::new(),
            threads: default_threads(),
            server: ServerConfig::default(),
        };
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next()? {
            let s = &mut config.server;
            match arg {
                Long("listen") => {
                    let v: String = parser.value()?.string()?;
                    let addr = v
                        .parse()
                        .map_err(|_| ConfigError(format!("--listen: '{v}' is not ADDR:PORT")))?;
                    config.listen.push(addr);
                }
                Long("threads") => config.threads = number(&mut parser, "--threads", 1)?,
                Long("server-name") => s.broker.server_name = name(&mut parser, "--server-name")?,
                Long("network") => s.broker.network = name(&mut parser, "--network")?,
                Long("password") => s.broker.password = Some(parser.value()?.string()?),
                Long("motd") => s.motd_path = Some(PathBuf::from(parser.value()?)),
                Long("max-clients") => s.max_clients = number(&mut parser, "--max-clients", 1)?,
                Long("register-timeout") => {
                    s.timeouts.register = duration(&mut parser, "--register-timeout")?
                }
                Long("ping-interval") => {
                    s.timeouts.ping_interval = duration(&mut parser, "--ping-interval")?
                }
                Long("write-timeout") => {
                    s.timeouts.write = duration(&mut parser, "--write-timeout")?
                }
                Long("shutdown-grace") => {
                    s.shutdown_grace = duration(&mut parser, "--shutdown-grace")?
                }
                Long("sendq") => s.sendq_bytes = number(&mut parser, "--sendq", 512)?,
                Short('h') | Long("help") => return Ok(Action::Help),
                Short('V') | Long("version") => return Ok(Action::Version),
                _ => return Err(arg.unexpected().into()),
            }
        }
        if config.listen.is_empty() {
            config.listen.push(SocketAddr::from(([127, 0, 0, 1], 6667)));
        }
        Ok(Action::Run(Box::new(config)))
    }
}

/// Number of cores, at most 4: a small board's executor gains nothing from more.
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

fn number(parser: &mut lexopt::Parser, flag: &str, min: usize) -> Result<usize, ConfigError> {
    let v: String = parser.value()?.string()?;
    match v.parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(ConfigError(format!(
            "{flag}: '{v}' is not a whole number >= {min}"
        ))),
    }
}

fn name(parser: &mut lexopt::Parser, flag: &str) -> Result<String, ConfigError> {
    let v: String = parser.value()?.string()?;
    if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == b':' || b == b',') {
        return Err(ConfigError(format!(
            "{flag}: '{v}' must be non-empty, without spaces, ':' or ','"
        )));
    }
    Ok(v)
}

fn duration(parser: &mut lexopt::Parser, flag: &str) -> Result<Duration, ConfigError> {
    let v: String = parser.value()?.string()?;
    parse_duration(&v).ok_or_else(|| {
        ConfigError(format!(
            "{flag}: '{v}' is not a duration (seconds, or with ms/s/m, e.g. 500ms)"
        ))
    })
}

/// `"1.5"` and `"1.5s"` are seconds; `"500ms"`, `"2m"` as they say. Must be positive.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else {
        (v, 1.0)
    };
    let secs = number.trim().parse::<f64>().ok()? * scale;
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn flags() {
        let Action::Run(c) = Config::parse([
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "[::1]:7000",
            "--threads",
            "1",
            "--sendq",
            "4096",
            "--password",
            "pw",
        ])
        .unwrap() else {
            panic!("expected Run")
        };
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.threads, 1);
        assert_eq!(c.server.sendq_bytes, 4096);
        assert_eq!(c.server.broker.password.as_deref(), Some("pw"));
        assert!(Config::parse(["--threads", "0"]).is_err());
        assert!(Config::parse(["--bogus"]).is_err());
        assert!(Config::parse(["--listen", "nowhere"]).is_err());
        assert!(matches!(Config::parse(["--help"]), Ok(Action::Help)));
    }
}
