//! Command-line flags and the `--config` file, shared by every binary, turned into a
//! [`ServerConfig`].
//!
//! Every limit the node enforces is a flag with a default that suits a small board; nothing is
//! hard-coded deeper down. A TOML file (`--config FILE`, see `deploy/chatnode.toml`) sets the
//! same things with `snake_case` keys (`max_clients = 200`); flags on the command line override
//! it, whatever their order. The file may also list `[[operator]]`s, which only the file can.
//! The file is parsed by our own small TOML-subset parser ([`toml`]).

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lexopt::ValueExt;

use crate::server::ServerConfig;

pub mod toml;

use toml::{Entry, Header, Value};

/// The node's configuration: where to listen, how many threads, and the server's behaviour.
#[derive(Clone, Debug)]
pub struct Config {
    /// Addresses to listen on (`--listen`, repeatable).
    pub listen: Vec<SocketAddr>,
    /// Where TLS, WebSocket and the chat page listen, and with which certificate.
    pub reach: Reach,
    /// Executor threads (`--threads`); 1 runs every task on the main thread.
    pub threads: usize,
    /// Everything else.
    pub server: ServerConfig,
    /// IRC operators (`[[operator]]` in the config file); none without a file.
    pub operators: Vec<OperatorEntry>,
    /// Most threads the blocking pool may start (`--blocking-threads`); `None` leaves each
    /// runtime's default (500 for `blocking`, 512 for Tokio).
    pub blocking_threads: Option<usize>,
}

/// The listeners besides plain IRC: TLS, WebSocket (and the chat page), WebSocket over TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// IRC over TLS (`--listen-tls`, repeatable).
    pub listen_tls: Vec<SocketAddr>,
    /// IRC over WebSocket and the chat page (`--listen-ws`, repeatable).
    pub listen_ws: Vec<SocketAddr>,
    /// The same over TLS (`--listen-wss`, repeatable).
    pub listen_wss: Vec<SocketAddr>,
    /// The certificate chain, PEM (`--tls-cert`).
    pub tls_cert: Option<PathBuf>,
    /// Its private key, PEM (`--tls-key`).
    pub tls_key: Option<PathBuf>,
    /// Origins allowed to open a WebSocket (`--ws-origins`, comma-separated); empty: the page's
    /// own origin only; `*`: any.
    pub ws_origins: Vec<String>,
    /// Advertise the `sts` capability on plain connections (`--sts on|off`, default on when
    /// there is a TLS listener).
    pub sts: bool,
}

/// One `[[operator]]` table of the config file: who may become an IRC operator (`OPER`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorEntry {
    /// The name given to `OPER`.
    pub name: String,
    /// The password's hash, as written in the file; checking it is the OPER command's business.
    pub password_hash: String,
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
    /// Read a password from standard input and print its Argon2 hash, for `[[operator]]`.
    HashPassword,
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
  --config FILE            read settings from a TOML file (keys as below in snake_case: max_clients = 200);
                           flags given on the command line override it
  --listen ADDR            address to listen on, repeatable (default 127.0.0.1:6667; IPv6: [::1]:6667)
  --listen-tls ADDR        IRC over TLS on ADDR, repeatable (usually port 6697); needs --tls-cert and --tls-key
  --tls-cert FILE          TLS certificate chain, PEM; re-read on SIGHUP
  --tls-key FILE           TLS private key, PEM (PKCS#8, PKCS#1 or SEC1); re-read on SIGHUP
  --sts on|off             advertise the TLS port to plain clients with the IRCv3 sts capability (default on)
  --listen-ws ADDR         IRC over WebSocket and the chat page (http://ADDR/), repeatable
  --listen-wss ADDR        the same over TLS (https://ADDR/), repeatable
  --ws-origins LIST        origins allowed to open a WebSocket, comma-separated (default: the page's own; * for any)
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
  --sendq BYTES            bytes queued for one client before it is dropped, 'SendQ exceeded' (default 524288)
  --slow-poll-ms N         warn, naming the task, when one poll holds a thread longer than N ms (default 10)
  --task-stats on|off      per-task poll counts and times for STATS t and the watchdog (default on)
  --blocking-threads N     most threads of the blocking pool (default: 500 on smol, 512 on Tokio)
  --hash-password          read a password on standard input, print its hash for [[operator]], exit
  -h, --help               print this help
  -V, --version            print the version

Logging: RUST_LOG=info (the default), debug or trace; for example RUST_LOG=chatnode=debug.
";

impl Config {
    /// Parses the process's own arguments (and the `--config` file, if they name one).
    pub fn from_env() -> Result<Action, ConfigError> {
        Self::parse(std::env::args_os().skip(1))
    }

    /// Parses `args` (without the program name). With `--config FILE`, reads and parses that
    /// file first; flags given in `args` override what it sets.
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
        let mut flags = Settings::default();
        let mut reach = Reach {
            sts: true,
            ..Reach::default()
        };
        let mut file: Option<PathBuf> = None;
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next()? {
            let f = &mut flags;
            match arg {
                Long("config") => {
                    if file.is_some() {
                        return Err(ConfigError("--config: given more than once".into()));
                    }
                    file = Some(PathBuf::from(parser.value()?));
                }
                Long("listen") => {
                    let v: String = parser.value()?.string()?;
                    let addr =
                        listen_addr(&v).map_err(|e| ConfigError(format!("--listen: {e}")))?;
                    f.listen.get_or_insert_with(Vec::new).push(addr);
                }
                Long(flag @ ("listen-tls" | "listen-ws" | "listen-wss")) => {
                    let flag = flag.to_string();
                    let v: String = parser.value()?.string()?;
                    let addr =
                        listen_addr(&v).map_err(|e| ConfigError(format!("--{flag}: {e}")))?;
                    match flag.as_str() {
                        "listen-tls" => reach.listen_tls.push(addr),
                        "listen-ws" => reach.listen_ws.push(addr),
                        _ => reach.listen_wss.push(addr),
                    }
                }
                Long("tls-cert") => reach.tls_cert = Some(PathBuf::from(parser.value()?)),
                Long("tls-key") => reach.tls_key = Some(PathBuf::from(parser.value()?)),
                Long("ws-origins") => {
                    let v: String = parser.value()?.string()?;
                    reach.ws_origins = v
                        .split(',')
                        .map(|o| o.trim().trim_end_matches('/').to_string())
                        .filter(|o| !o.is_empty())
                        .collect();
                }
                Long("sts") => {
                    let v: String = parser.value()?.string()?;
                    reach.sts = on_off(&v).map_err(|e| ConfigError(format!("--sts: {e}")))?;
                }
                Long("threads") => f.threads = Some(number(&mut parser, "--threads", 1)?),
                Long("server-name") => f.server_name = Some(name(&mut parser, "--server-name")?),
                Long("network") => f.network = Some(name(&mut parser, "--network")?),
                Long("password") => f.password = Some(parser.value()?.string()?),
                Long("motd") => f.motd = Some(PathBuf::from(parser.value()?)),
                Long("max-clients") => {
                    f.max_clients = Some(number(&mut parser, "--max-clients", 1)?)
                }
                Long("register-timeout") => {
                    f.register_timeout = Some(duration(&mut parser, "--register-timeout")?)
                }
                Long("ping-interval") => {
                    f.ping_interval = Some(duration(&mut parser, "--ping-interval")?)
                }
                Long("write-timeout") => {
                    f.write_timeout = Some(duration(&mut parser, "--write-timeout")?)
                }
                Long("shutdown-grace") => {
                    f.shutdown_grace = Some(duration(&mut parser, "--shutdown-grace")?)
                }
                Long("sendq") => f.sendq = Some(number(&mut parser, "--sendq", MIN_SENDQ)?),
                Long("slow-poll-ms") => {
                    f.slow_poll_ms = Some(number(&mut parser, "--slow-poll-ms", 1)?)
                }
                Long("task-stats") => {
                    let v: String = parser.value()?.string()?;
                    f.task_stats =
                        Some(on_off(&v).map_err(|e| ConfigError(format!("--task-stats: {e}")))?);
                }
                Long("blocking-threads") => {
                    f.blocking_threads = Some(number(&mut parser, "--blocking-threads", 1)?)
                }
                Long("hash-password") => return Ok(Action::HashPassword),
                Short('h') | Long("help") => return Ok(Action::Help),
                Short('V') | Long("version") => return Ok(Action::Version),
                _ => return Err(arg.unexpected().into()),
            }
        }
        let mut config = Config {
            listen: Vec::new(),
            reach: check_reach(reach)?,
            threads: default_threads(),
            server: ServerConfig::default(),
            operators: Vec::new(),
            blocking_threads: None,
        };
        if let Some(path) = file {
            // A one-off blocking read at start-up, before any runtime or task exists, so a plain
            // std::fs read is right here (the MOTD, read later, goes through the blocking pool).
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("--config {}: {e}", path.display())))?;
            let (settings, operators) = Settings::from_toml(&text, path.parent())
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            settings.apply(&mut config);
            config.operators = operators;
        }
        flags.apply(&mut config);
        if config.listen.is_empty() {
            config.listen.push(SocketAddr::from(([127, 0, 0, 1], 6667)));
        }
        Ok(Action::Run(Box::new(config)))
    }
}

/// Checks that TLS listeners have a certificate and key, and that the features asked for are
/// compiled in.
fn check_reach(reach: Reach) -> Result<Reach, ConfigError> {
    let wants_tls = !reach.listen_tls.is_empty() || !reach.listen_wss.is_empty();
    if wants_tls && (reach.tls_cert.is_none() || reach.tls_key.is_none()) {
        return Err(ConfigError(
            "--listen-tls and --listen-wss need --tls-cert FILE and --tls-key FILE".into(),
        ));
    }
    if wants_tls && !cfg!(feature = "tls") {
        return Err(ConfigError(
            "this build has no TLS (built without the `tls` feature)".into(),
        ));
    }
    let wants_ws = !reach.listen_ws.is_empty() || !reach.listen_wss.is_empty();
    if wants_ws && !cfg!(feature = "websocket") {
        return Err(ConfigError(
            "this build has no WebSocket (built without the `websocket` feature)".into(),
        ));
    }
    Ok(reach)
}

/// `--sendq` below this cannot hold one line and its tags.
const MIN_SENDQ: usize = 512;

/// What one source (the command line or the file) sets; `None` where it says nothing.
#[derive(Debug, Default)]
struct Settings {
    listen: Option<Vec<SocketAddr>>,
    threads: Option<usize>,
    server_name: Option<String>,
    network: Option<String>,
    password: Option<String>,
    motd: Option<PathBuf>,
    max_clients: Option<usize>,
    register_timeout: Option<Duration>,
    ping_interval: Option<Duration>,
    write_timeout: Option<Duration>,
    shutdown_grace: Option<Duration>,
    sendq: Option<usize>,
    slow_poll_ms: Option<usize>,
    task_stats: Option<bool>,
    blocking_threads: Option<usize>,
}

/// The keys a config file may set at its top level: the long flags, in `snake_case`.
const FILE_KEYS: &[&str] = &[
    "listen",
    "threads",
    "server_name",
    "network",
    "password",
    "motd",
    "max_clients",
    "register_timeout",
    "ping_interval",
    "write_timeout",
    "shutdown_grace",
    "sendq",
    "slow_poll_ms",
    "task_stats",
    "blocking_threads",
];

impl Settings {
    /// Overwrites what `self` sets in `config`.
    fn apply(self, config: &mut Config) {
        let s = &mut config.server;
        if let Some(v) = self.listen {
            config.listen = v;
        }
        if let Some(v) = self.threads {
            config.threads = v;
        }
        if let Some(v) = self.server_name {
            s.broker.server_name = v;
        }
        if let Some(v) = self.network {
            s.broker.network = v;
        }
        if let Some(v) = self.password {
            s.broker.password = Some(v);
        }
        if let Some(v) = self.motd {
            s.motd_path = Some(v);
        }
        if let Some(v) = self.max_clients {
            s.max_clients = v;
        }
        if let Some(v) = self.register_timeout {
            s.timeouts.register = v;
        }
        if let Some(v) = self.ping_interval {
            s.timeouts.ping_interval = v;
        }
        if let Some(v) = self.write_timeout {
            s.timeouts.write = v;
        }
        if let Some(v) = self.shutdown_grace {
            s.shutdown_grace = v;
        }
        if let Some(v) = self.sendq {
            s.sendq_bytes = v;
        }
        if let Some(v) = self.slow_poll_ms {
            s.slow_poll = Duration::from_millis(v as u64);
        }
        if let Some(v) = self.task_stats {
            s.task_stats = v;
        }
        if let Some(v) = self.blocking_threads {
            config.blocking_threads = Some(v);
        }
    }

    /// Reads a config file's text. A relative `motd` path is taken relative to `dir`, the
    /// file's own directory. Errors read `line N: key: what is wrong`.
    fn from_toml(text: &str, dir: Option<&Path>) -> Result<(Settings, Vec<OperatorEntry>), String> {
        let doc = toml::parse(text).map_err(|e| e.to_string())?;
        let mut settings = Settings::default();
        let mut operators: Vec<OperatorEntry> = Vec::new();
        for section in &doc.sections {
            match &section.header {
                Header::Root => {
                    for entry in &section.entries {
                        settings
                            .set(entry, dir)
                            .map_err(|e| format!("line {}: {}: {e}", entry.line, entry.key))?;
                    }
                }
                Header::ArrayTable(table) if table == "operator" => {
                    let op = operator(&section.entries, section.line)?;
                    if operators.iter().any(|o| o.name == op.name) {
                        return Err(format!(
                            "line {}: operator '{}' is listed twice",
                            section.line, op.name
                        ));
                    }
                    operators.push(op);
                }
                Header::Table(table) if table == "operator" => {
                    return Err(format!(
                        "line {}: write [[operator]] (double brackets, one per operator)",
                        section.line
                    ));
                }
                Header::Table(table) | Header::ArrayTable(table) => {
                    return Err(format!(
                        "line {}: unknown table '{table}' (the only table is [[operator]])",
                        section.line
                    ));
                }
            }
        }
        Ok((settings, operators))
    }

    /// One top-level `key = value`.
    fn set(&mut self, entry: &Entry, dir: Option<&Path>) -> Result<(), String> {
        let v = &entry.value;
        match entry.key.as_str() {
            "listen" => {
                let addrs = match v {
                    Value::String(one) => vec![listen_addr(one)?],
                    Value::Array(list) if list.is_empty() => {
                        return Err("needs at least one address".into())
                    }
                    Value::Array(list) => list
                        .iter()
                        .map(|a| listen_addr(a))
                        .collect::<Result<_, _>>()?,
                    other => return Err(expected("an array of strings", other)),
                };
                self.listen = Some(addrs);
            }
            "threads" => self.threads = Some(file_number(v, 1)?),
            "server_name" => self.server_name = Some(check_name(file_string(v)?)?),
            "network" => self.network = Some(check_name(file_string(v)?)?),
            "password" => self.password = Some(file_string(v)?),
            "motd" => {
                let path = PathBuf::from(file_string(v)?);
                self.motd = Some(match dir {
                    Some(dir) if path.is_relative() => dir.join(path),
                    _ => path,
                });
            }
            "max_clients" => self.max_clients = Some(file_number(v, 1)?),
            "register_timeout" => self.register_timeout = Some(file_duration(v)?),
            "ping_interval" => self.ping_interval = Some(file_duration(v)?),
            "write_timeout" => self.write_timeout = Some(file_duration(v)?),
            "shutdown_grace" => self.shutdown_grace = Some(file_duration(v)?),
            "sendq" => self.sendq = Some(file_number(v, MIN_SENDQ)?),
            "slow_poll_ms" => self.slow_poll_ms = Some(file_number(v, 1)?),
            "task_stats" => {
                self.task_stats = Some(match v {
                    Value::Bool(b) => *b,
                    Value::String(text) => on_off(text)?,
                    other => return Err(expected("true or false", other)),
                })
            }
            "blocking_threads" => self.blocking_threads = Some(file_number(v, 1)?),
            key => {
                let snake = key.replace('-', "_");
                return Err(if FILE_KEYS.contains(&snake.as_str()) {
                    format!("unknown key (did you mean '{snake}'? keys use '_')")
                } else if key == "config" {
                    "unknown key (a config file cannot include another)".into()
                } else {
                    format!("unknown key (known: {})", FILE_KEYS.join(", "))
                });
            }
        }
        Ok(())
    }
}

/// One `[[operator]]` table, whose header is on `line`.
fn operator(entries: &[Entry], line: usize) -> Result<OperatorEntry, String> {
    let mut name = None;
    let mut password_hash = None;
    for entry in entries {
        let at = |e: String| format!("line {}: {}: {e}", entry.line, entry.key);
        match entry.key.as_str() {
            "name" => name = Some(file_string(&entry.value).and_then(check_name).map_err(at)?),
            "password_hash" => {
                let hash = file_string(&entry.value).map_err(at)?;
                if !crate::auth::is_valid_hash(&hash) {
                    return Err(at("not an Argon2 PHC hash ($argon2id$...): make one with \
                         `chatnode --hash-password`"
                        .into()));
                }
                password_hash = Some(hash);
            }
            _ => {
                return Err(at(
                    "unknown key in [[operator]] (known: name, password_hash)".into(),
                ))
            }
        }
    }
    match (name, password_hash) {
        (Some(name), Some(password_hash)) => Ok(OperatorEntry {
            name,
            password_hash,
        }),
        (None, _) => Err(format!("line {line}: [[operator]] needs a 'name'")),
        (Some(_), None) => Err(format!("line {line}: [[operator]] needs a 'password_hash'")),
    }
}

/// `on`/`off` (also `true`/`false`, `yes`/`no`).
fn on_off(v: &str) -> Result<bool, String> {
    match v {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("'{v}' is not on or off")),
    }
}

fn expected(what: &str, found: &Value) -> String {
    format!("expected {what}, found {}", found.type_name())
}

fn file_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(expected("a string", other)),
    }
}

fn file_number(v: &Value, min: usize) -> Result<usize, String> {
    match v {
        Value::Integer(n) => usize::try_from(*n)
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| format!("{n} is not a whole number >= {min}")),
        other => Err(expected("an integer", other)),
    }
}

/// An integer (seconds) or a string such as `"30s"`, `"500ms"`, `"2m"`, `"0.5"`.
fn file_duration(v: &Value) -> Result<Duration, String> {
    let bad = |text: &dyn fmt::Display| {
        format!("{text} is not a duration (seconds, or a string with ms/s/m such as \"500ms\")")
    };
    match v {
        Value::Integer(n) if *n > 0 && *n < 1_000_000_000 => Ok(Duration::from_secs(*n as u64)),
        Value::Integer(n) => Err(bad(n)),
        Value::String(s) => parse_duration(s).ok_or_else(|| bad(&format!("'{s}'"))),
        other => Err(expected("an integer or a string", other)),
    }
}

fn listen_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| format!("'{v}' is not ADDR:PORT (IPv6 as [::1]:6667)"))
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
    check_name(v).map_err(|e| ConfigError(format!("{flag}: {e}")))
}

/// A name that can stand in an IRC line's prefix or parameters.
fn check_name(v: String) -> Result<String, String> {
    if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == b':' || b == b',') {
        return Err(format!(
            "'{v}' must be non-empty, without spaces, ':' or ','"
        ));
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

    fn from_file(text: &str) -> Result<Config, String> {
        let (settings, operators) = Settings::from_toml(text, Some(Path::new("/etc/chatnode")))?;
        let mut config = Config {
            listen: Vec::new(),
            reach: Reach::default(),
            threads: 4,
            server: ServerConfig::default(),
            operators,
            blocking_threads: None,
        };
        settings.apply(&mut config);
        Ok(config)
    }

    #[test]
    fn file_sets_every_flag() {
        let c = from_file(
            r#"
            listen = ["0.0.0.0:6667", "[::]:6697"]
            threads = 1
            server_name = "irc.example"
            network = "Example"
            password = "s3cret"
            motd = "motd.txt"
            max_clients = 200
            register_timeout = "10s"
            ping_interval = 90
            write_timeout = "500ms"
            shutdown_grace = "0.5"
            sendq = 65536
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.listen[1], "[::]:6697".parse().unwrap());
        assert_eq!(c.threads, 1);
        let s = &c.server;
        assert_eq!(s.broker.server_name, "irc.example");
        assert_eq!(s.broker.network, "Example");
        assert_eq!(s.broker.password.as_deref(), Some("s3cret"));
        assert_eq!(
            s.motd_path.as_deref(),
            Some(Path::new("/etc/chatnode/motd.txt"))
        );
        assert_eq!(s.max_clients, 200);
        assert_eq!(s.timeouts.register, Duration::from_secs(10));
        assert_eq!(s.timeouts.ping_interval, Duration::from_secs(90));
        assert_eq!(s.timeouts.write, Duration::from_millis(500));
        assert_eq!(s.shutdown_grace, Duration::from_millis(500));
        assert_eq!(s.sendq_bytes, 65536);
        assert!(c.operators.is_empty());
        // An absolute MOTD path stays as it is; one address may be a plain string.
        let c = from_file("motd = '/srv/motd'\nlisten = '127.0.0.1:7000'").unwrap();
        assert_eq!(c.server.motd_path.as_deref(), Some(Path::new("/srv/motd")));
        assert_eq!(c.listen, vec!["127.0.0.1:7000".parse().unwrap()]);
    }

    #[test]
    fn file_operators() {
        let c = from_file(
            "threads = 1\n\n[[operator]]\nname = \"alice\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AZJroWc0Dmm57rXXHJrqAWKosk7CbCT211FegJmYyaM\"\n\n\
             [[operator]]\npassword_hash = '$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AZJroWc0Dmm57rXXHJrqAWKosk7CbCT211FegJmYyaM'\nname = 'bob'\n",
        )
        .unwrap();
        assert_eq!(
            c.operators,
            vec![
                OperatorEntry {
                    name: "alice".into(),
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AZJroWc0Dmm57rXXHJrqAWKosk7CbCT211FegJmYyaM".into()
                },
                OperatorEntry {
                    name: "bob".into(),
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AZJroWc0Dmm57rXXHJrqAWKosk7CbCT211FegJmYyaM".into()
                },
            ]
        );
    }

    #[test]
    fn file_errors_name_key_and_line() {
        let cases: &[(&str, &str)] = &[
            ("threads = 1\nbogus = 2\n", "line 2: bogus: unknown key (known: listen, threads"),
            ("server-name = 'x'\n", "line 1: server-name: unknown key (did you mean 'server_name'?"),
            ("config = 'x'\n", "line 1: config: unknown key (a config file cannot include"),
            ("\nthreads = 0\n", "line 2: threads: 0 is not a whole number >= 1"),
            ("threads = '2'\n", "line 1: threads: expected an integer, found a string"),
            ("sendq = 100\n", "line 1: sendq: 100 is not a whole number >= 512"),
            ("max_clients = -1\n", "line 1: max_clients: -1 is not a whole number >= 1"),
            ("listen = []\n", "line 1: listen: needs at least one address"),
            ("listen = ['nowhere']\n", "line 1: listen: 'nowhere' is not ADDR:PORT"),
            ("listen = 6667\n", "line 1: listen: expected an array of strings, found an integer"),
            ("server_name = 'a b'\n", "line 1: server_name: 'a b' must be non-empty"),
            ("ping_interval = 'soon'\n", "line 1: ping_interval: 'soon' is not a duration"),
            ("ping_interval = 0\n", "line 1: ping_interval: 0 is not a duration"),
            ("write_timeout = true\n", "line 1: write_timeout: expected an integer or a string"),
            ("[server]\nthreads = 1\n", "line 1: unknown table 'server'"),
            ("[operator]\nname = 'a'\n", "line 1: write [[operator]]"),
            ("[[operator]]\nname = 'a'\n", "line 1: [[operator]] needs a 'password_hash'"),
            ("\n[[operator]]\npassword_hash = '$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AZJroWc0Dmm57rXXHJrqAWKosk7CbCT211FegJmYyaM'\n", "line 2: [[operator]] needs a 'name'"),
            ("[[operator]]\nname = 'a'\npassword = 'p'\n", "line 3: password: unknown key in [[operator]]"),
            ("[[operator]]\nname = 'a b'\npassword_hash = '$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AZJroWc0Dmm57rXXHJrqAWKosk7CbCT211FegJmYyaM'\n", "line 2: name: 'a b' must be"),
            ("[[operator]]\nname = 'a'\npassword_hash = ''\n", "line 3: password_hash: not an Argon2 PHC hash"),
            ("[[operator]]\nname = 'a'\npassword_hash = 'plaintext'\n", "line 3: password_hash: not an Argon2"),
            (
                "[[operator]]\nname = 'a'\npassword_hash = '$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AZJroWc0Dmm57rXXHJrqAWKosk7CbCT211FegJmYyaM'\n[[operator]]\nname = 'a'\npassword_hash = '$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AZJroWc0Dmm57rXXHJrqAWKosk7CbCT211FegJmYyaM'\n",
                "line 4: operator 'a' is listed twice",
            ),
            ("threads = 1.5\n", "line 1: '1.5' is not an integer; floats are not supported"),
        ];
        for (text, want) in cases {
            let e = from_file(text).expect_err(text);
            assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn config_flag_reads_the_file_and_flags_override_it() {
        let dir = std::env::temp_dir().join(format!("chatnode-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.toml");
        std::fs::write(
            &path,
            "listen = ['127.0.0.1:7001']\nthreads = 3\nnetwork = 'FromFile'\nmotd = 'motd.txt'\n\
             [[operator]]\nname = 'root'\npassword_hash = '$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AZJroWc0Dmm57rXXHJrqAWKosk7CbCT211FegJmYyaM'\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        // Flags override the file whether they come before or after --config.
        for args in [
            vec!["--threads", "1", "--config", p, "--listen", "127.0.0.1:0"],
            vec!["--config", p, "--listen", "127.0.0.1:0", "--threads", "1"],
        ] {
            let Action::Run(c) = Config::parse(args).unwrap() else {
                panic!("expected Run")
            };
            assert_eq!(c.threads, 1);
            assert_eq!(c.listen, vec!["127.0.0.1:0".parse().unwrap()]);
            assert_eq!(c.server.broker.network, "FromFile");
            assert_eq!(c.server.motd_path, Some(dir.join("motd.txt")));
            assert_eq!(c.operators.len(), 1);
        }
        // Without overriding flags the file's values stand.
        let Action::Run(c) = Config::parse(["--config", p]).unwrap() else {
            panic!("expected Run")
        };
        assert_eq!(c.threads, 3);
        assert_eq!(c.listen, vec!["127.0.0.1:7001".parse().unwrap()]);
        // --help wins even over a broken file; errors name the file and line.
        std::fs::write(&path, "threads = 1\nthreads = 2\n").unwrap();
        assert!(matches!(
            Config::parse(["--config", p, "--help"]),
            Ok(Action::Help)
        ));
        let e = Config::parse(["--config", p]).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("{p}: line 2: key 'threads' is given twice (first on line 1)")
        );
        let e = Config::parse(["--config", p, "--config", p])
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than once"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        let e = Config::parse(["--config", p]).unwrap_err().to_string();
        assert!(e.starts_with(&format!("--config {p}: ")), "{e}");
    }

    #[test]
    fn example_deploy_config_parses() {
        let c = from_file(include_str!("../deploy/chatnode.toml")).unwrap();
        assert_eq!(c.threads, 1);
        assert!(!c.listen.is_empty());
    }
}
