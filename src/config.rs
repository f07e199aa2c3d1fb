//! Command-line flags and the `--config` file, shared by every binary, turned into a [`Config`].
//!
//! Every setting is declared once, in [`settings::SETTINGS`]: its flag, its config-file key (the
//! flag in `snake_case`), its type, default and help. The flag parser below, the file reader and
//! `--help` ([`help`]) all follow from that table; to add a setting, read the doc comment on
//! [`settings::SETTINGS`].
//!
//! Precedence: built-in defaults, then the file (`--config FILE`, see `deploy/chatnode.toml`),
//! then flags on the command line, whatever their order. The file may also list
//! `[[operator]]`s, which only the file can. It is parsed by our own small TOML-subset parser
//! ([`toml`]). [`Config::reload`] reads the file again with the same flags on top (REHASH).

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::server::{ReloadFn, Reloaded, ServerConfig};

pub mod help;
pub mod settings;
pub mod toml;

pub use settings::{parse_duration, Setting, SETTINGS};
use toml::{Entry, Header};

/// The node's configuration: where to listen, how many threads, and the server's behaviour.
#[derive(Clone, Debug)]
pub struct Config {
    /// Addresses to listen on (`--listen`, repeatable).
    pub listen: Vec<SocketAddr>,
    /// Executor threads (`--threads`); 1 runs every task on the main thread.
    pub threads: usize,
    /// `--adaptive-threads`: our executor runs tasks on fewer of its threads while the
    /// machine has no core to spare for them (`rt::cores`); the Tokio build ignores it.
    pub adaptive_threads: bool,
    /// Everything else.
    pub server: ServerConfig,
    /// IRC operators (`[[operator]]` in the config file); none without a file.
    pub operators: Vec<OperatorEntry>,
    /// Most threads the blocking pool may start (`--blocking-threads`); `None` leaves each
    /// runtime's default (500 for `blocking`, 512 for Tokio).
    pub blocking_threads: Option<usize>,
    /// Where TLS, WebSocket and the chat page listen, and with which certificate.
    pub reach: Reach,
    /// `--data-dir`; `None`: [`default_data_dir`].
    pub data_dir: Option<PathBuf>,
    /// `--history`; `None`: on when the data dir is writable ([`Config::resolve_history`]).
    pub history: Option<bool>,
    /// Where the settings came from, so [`Config::reload`] can read them again.
    pub sources: Sources,
}

/// The listeners besides plain IRC: TLS, WebSocket (and the chat page), WebSocket over TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Advertise the TLS port with the IRCv3 `sts` capability on plain connections (`--sts`).
    pub sts: bool,
}

impl Default for Reach {
    fn default() -> Self {
        Reach {
            listen_tls: Vec::new(),
            listen_ws: Vec::new(),
            listen_wss: Vec::new(),
            tls_cert: None,
            tls_key: None,
            ws_origins: Vec::new(),
            sts: true,
        }
    }
}

impl Reach {
    /// Checks that TLS listeners have a certificate and key, and that the features asked for
    /// are compiled in.
    fn check(&self) -> Result<(), ConfigError> {
        let wants_tls = !self.listen_tls.is_empty() || !self.listen_wss.is_empty();
        if wants_tls && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err(ConfigError(
                "--listen-tls and --listen-wss need --tls-cert FILE and --tls-key FILE".into(),
            ));
        }
        if wants_tls && !cfg!(feature = "tls") {
            return Err(ConfigError(
                "this build has no TLS (built without the `tls` feature)".into(),
            ));
        }
        let wants_ws = !self.listen_ws.is_empty() || !self.listen_wss.is_empty();
        if wants_ws && !cfg!(feature = "websocket") {
            return Err(ConfigError(
                "this build has no WebSocket (built without the `websocket` feature)".into(),
            ));
        }
        Ok(())
    }
}

/// The config file and the flags a [`Config`] was built from.
#[derive(Clone, Default)]
pub struct Sources {
    /// The `--config` file, if any.
    pub file: Option<PathBuf>,
    /// Each setting given on the command line, with its values in order (several only for a
    /// repeatable flag).
    flags: Vec<(&'static Setting, Vec<String>)>,
    /// Each key the file set, with its value as written: what REHASH compares.
    file_values: Vec<(&'static Setting, String)>,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags: Vec<_> = self.flags.iter().map(|(s, v)| (s.flag, v)).collect();
        f.debug_struct("Sources")
            .field("file", &self.file)
            .field("flags", &flags)
            .field("file_keys", &self.file_values.len())
            .finish()
    }
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
    /// Print [`help::usage`] and exit.
    Help,
    /// Print the version and exit.
    Version,
    /// Read a password from standard input and print its Argon2 hash, for `[[operator]]`.
    HashPassword,
    /// Print the README's table of flags ([`help::markdown`]) and exit. Not in `--help`.
    PrintSettingsMarkdown,
}

/// A flag or a config file that could not be understood; the message names the flag, or the
/// file, line and key.
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

impl ConfigError {
    /// Whether the error is about the config file (rather than a flag).
    pub fn is_about_file(&self) -> bool {
        self.0.starts_with(FILE_ERROR_MARK)
    }
}

/// Errors about the file start with this (then the file's path), flag errors with `--`.
const FILE_ERROR_MARK: &str = "config file ";

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
        let mut sources = Sources::default();
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next()? {
            match arg {
                Long("config") => {
                    if sources.file.is_some() {
                        return Err(ConfigError("--config: given more than once".into()));
                    }
                    sources.file = Some(PathBuf::from(parser.value()?));
                }
                Long("hash-password") => return Ok(Action::HashPassword),
                Long("print-settings-markdown") => return Ok(Action::PrintSettingsMarkdown),
                Short('h') | Long("help") => return Ok(Action::Help),
                Short('V') | Long("version") => return Ok(Action::Version),
                Long(flag) => {
                    let Some(setting) = Setting::by_flag(flag) else {
                        return Err(arg.unexpected().into());
                    };
                    let value: String = parser.value()?.string()?;
                    sources.add_flag(setting, value);
                }
                _ => return Err(arg.unexpected().into()),
            }
        }
        Self::build(sources).map(|c| Action::Run(Box::new(c)))
    }

    /// Reads the config file again and puts the same command-line flags on top: the
    /// configuration a REHASH would move to. Blocking (it reads a file): call it on the
    /// blocking pool, or before any runtime exists.
    pub fn reload(&self) -> Result<Config, ConfigError> {
        Self::build(self.sources.clone())
    }

    /// Built-in defaults, then the file, then the flags.
    fn build(mut sources: Sources) -> Result<Config, ConfigError> {
        let mut config = Config::built_in();
        if let Some(path) = &sources.file {
            config.operators = read_file(path, &mut config)?;
            sources.file_values = std::mem::take(&mut config.sources.file_values);
        }
        for (setting, values) in &sources.flags {
            setting
                .set_from_flags(&mut config, values)
                .map_err(|e| ConfigError(format!("--{}: {e}", setting.flag)))?;
        }
        config.server.broker.operators = config
            .operators
            .iter()
            .map(|o| crate::broker::Operator {
                name: o.name.clone(),
                password_hash: o.password_hash.clone(),
            })
            .collect();
        config.sources = sources;
        config.reach.check()?;
        Ok(config)
    }

    /// What changed from `self` to `new` (both built from the same flags), one line per
    /// setting: applied on a running node, or needing a restart ([`settings::Reload`]).
    /// Values are not shown: one may be a password.
    pub fn changes_to(&self, new: &Config) -> Vec<String> {
        let in_file = |c: &Config, s: &Setting| {
            c.sources
                .file_values
                .iter()
                .find(|(f, _)| f.flag == s.flag)
                .map(|(_, v)| v.clone())
        };
        let mut changes = Vec::new();
        for s in SETTINGS {
            if in_file(self, s) == in_file(new, s) {
                continue;
            }
            let key = s.key();
            changes.push(if new.sources.flags.iter().any(|(f, _)| f.flag == s.flag) {
                format!(
                    "{key}: changed in the file, but --{} on the command line wins",
                    s.flag
                )
            } else if s.reload == settings::Reload::Live {
                format!("{key}: changed, applied")
            } else {
                format!("{key}: changed, needs a restart to take effect")
            });
        }
        changes
    }

    /// The configuration before any flag or file: every setting at its default.
    pub fn built_in() -> Config {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 6667))],
            threads: default_threads(),
            adaptive_threads: true,
            server: ServerConfig::default(),
            operators: Vec::new(),
            blocking_threads: None,
            reach: Reach::default(),
            data_dir: None,
            history: None,
            sources: Sources::default(),
        }
    }
}

/// The function REHASH and SIGHUP run, on the blocking pool: read the file again with the same
/// flags on top, read the MOTD it names, and say what changed. It compares with the last
/// configuration it returned, so a refused file changes nothing.
pub fn reloader(config: &Config) -> Arc<ReloadFn> {
    let current = Mutex::new(config.clone());
    Arc::new(move || {
        let mut current = current.lock().unwrap_or_else(PoisonError::into_inner);
        let new = current.reload().map_err(|e| e.to_string())?;
        let motd = new
            .server
            .motd_path
            .as_deref()
            .map(crate::server::read_motd)
            .transpose()?;
        let changes = current.changes_to(&new);
        let source = match &new.sources.file {
            Some(path) => path.display().to_string(),
            None => "command-line".to_string(),
        };
        let server = new.server.clone();
        *current = new;
        Ok(Reloaded {
            config: server,
            motd,
            changes,
            source,
        })
    })
}

impl Config {
    /// Decides where history lives, or that there is none, and stores it in
    /// `server.history.path`. `--history off`: none. `--history on`: the data dir's file (a
    /// problem with it stops the node at start, with the reason). Unset: the same, but a data
    /// dir that cannot be created or written turns history off with a warning instead.
    pub fn resolve_history(&mut self) {
        let dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        let path = dir.join("history.sqlite3");
        self.server.history.path = match self.history {
            Some(false) => None,
            Some(true) => Some(path),
            None => match writable(&dir) {
                Ok(()) => Some(path),
                Err(e) => {
                    log::warn!(
                        "history off: the data dir {} is not writable ({e}); set --data-dir, \
                         or --history off to silence this",
                        dir.display()
                    );
                    None
                }
            },
        };
        if !cfg!(feature = "history") && self.history.is_none() {
            self.server.history.path = None;
        }
    }
}

/// Where a node keeps its files when `--data-dir` is not given: systemd's `StateDirectory=`
/// (`$STATE_DIRECTORY`), else `$XDG_STATE_HOME/chatnode`, else `~/.local/state/chatnode`, else
/// `./chatnode-data`.
pub fn default_data_dir() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(state) = std::env::var("STATE_DIRECTORY")
        .ok()
        .filter(|v| !v.is_empty())
    {
        // systemd may list several, separated by ':'; ours is the first.
        return PathBuf::from(state.split(':').next().unwrap_or(&state));
    }
    if let Some(xdg) = var("XDG_STATE_HOME") {
        return xdg.join("chatnode");
    }
    match var("HOME") {
        Some(home) => home.join(".local/state/chatnode"),
        None => PathBuf::from("chatnode-data"),
    }
}

/// Creates `dir` if needed and checks that a file can be made in it.
fn writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".chatnode-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}

impl Sources {
    /// Records a flag's value: a repeatable flag's values add up, otherwise the last one wins.
    fn add_flag(&mut self, setting: &'static Setting, value: String) {
        match self.flags.iter_mut().find(|(s, _)| s.flag == setting.flag) {
            Some((_, values)) if setting.repeatable() => values.push(value),
            Some((_, values)) => *values = vec![value],
            None => self.flags.push((setting, vec![value])),
        }
    }
}

/// Reads the config file at `path` into `config`; returns its operators. Errors read
/// `config file PATH: line N: key: what is wrong`.
fn read_file(path: &Path, config: &mut Config) -> Result<Vec<OperatorEntry>, ConfigError> {
    let at_file = |e: String| ConfigError(format!("{FILE_ERROR_MARK}{}: {e}", path.display()));
    let text =
        std::fs::read_to_string(path).map_err(|e| at_file(format!("cannot read it: {e}")))?;
    from_toml(&text, path.parent(), config).map_err(at_file)
}

/// Applies a config file's text to `config`; returns its operators. A relative file path
/// (`motd`) is taken relative to `dir`, the file's own directory. Errors read
/// `line N: key: what is wrong`.
fn from_toml(
    text: &str,
    dir: Option<&Path>,
    config: &mut Config,
) -> Result<Vec<OperatorEntry>, String> {
    let doc = toml::parse(text).map_err(|e| e.to_string())?;
    let mut operators: Vec<OperatorEntry> = Vec::new();
    for section in &doc.sections {
        match &section.header {
            Header::Root => {
                for entry in &section.entries {
                    let setting = set_key(config, entry, dir)
                        .map_err(|e| format!("line {}: {}: {e}", entry.line, entry.key))?;
                    let value = format!("{:?}", entry.value);
                    config.sources.file_values.push((setting, value));
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
    Ok(operators)
}

/// One top-level `key = value`; returns its setting.
fn set_key(
    config: &mut Config,
    entry: &Entry,
    dir: Option<&Path>,
) -> Result<&'static Setting, String> {
    if let Some(setting) = Setting::by_key(&entry.key) {
        setting.set_from_file(config, &entry.value, dir)?;
        return Ok(setting);
    }
    let snake = entry.key.replace('-', "_");
    Err(if Setting::by_key(&snake).is_some() {
        format!("unknown key (did you mean '{snake}'? keys use '_')")
    } else if entry.key == "config" {
        "unknown key (a config file cannot include another)".into()
    } else {
        let known: Vec<String> = SETTINGS.iter().map(Setting::key).collect();
        format!("unknown key (known: {})", known.join(", "))
    })
}

/// One `[[operator]]` table, whose header is on `line`.
fn operator(entries: &[Entry], line: usize) -> Result<OperatorEntry, String> {
    let mut name = None;
    let mut password_hash = None;
    for entry in entries {
        let at = |e: String| format!("line {}: {}: {e}", entry.line, entry.key);
        match (entry.key.as_str(), &entry.value) {
            ("name", toml::Value::String(v)) => name = Some(settings::name(v).map_err(at)?),
            ("password_hash", toml::Value::String(hash)) => {
                if !crate::auth::is_valid_hash(hash) {
                    return Err(at("not an Argon2 PHC hash ($argon2id$...): make one with \
                         `chatnode --hash-password`"
                        .into()));
                }
                password_hash = Some(hash.clone());
            }
            ("name" | "password_hash", other) => {
                return Err(at(format!(
                    "expected a string, found {}",
                    other.type_name()
                )))
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

/// Number of cores, at most 4: a small board's executor gains nothing from more.
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        let mut config = Config::built_in();
        config.threads = 4;
        config.operators = from_toml(text, Some(Path::new("/etc/chatnode")), &mut config)?;
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
            ("\nthreads = 0\n", "line 2: threads: '0': must be a whole number more than 0"),
            ("threads = '2'\n", "line 1: threads: expected an integer, found a string"),
            ("sendq = 100\n", "line 1: sendq: '100': must be a whole number, at least 512"),
            ("max_clients = -1\n", "line 1: max_clients: '-1': must be a whole number more than 0"),
            ("listen = []\n", "line 1: listen: needs at least one address"),
            ("listen = ['nowhere']\n", "line 1: listen: 'nowhere' is not IP:PORT or HOST:PORT"),
            ("listen = 6667\n", "line 1: listen: expected an array of strings, found an integer"),
            ("server_name = 'a b'\n", "line 1: server_name: 'a b' must be non-empty"),
            ("ping_interval = 'soon'\n", "line 1: ping_interval: 'soon' is not a duration"),
            ("ping_interval = 0\n", "line 1: ping_interval: '0': must be more than 0"),
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
            format!("config file {p}: line 2: key 'threads' is given twice (first on line 1)")
        );
        let e = Config::parse(["--config", p, "--config", p])
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than once"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        let e = Config::parse(["--config", p]).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("config file {p}: cannot read it: ")),
            "{e}"
        );
    }

    #[test]
    fn protection_flags_and_keys() {
        let Action::Run(c) = Config::parse([
            "--recvq",
            "4096",
            "--flood-rate",
            "0.5",
            "--flood-burst",
            "10",
            "--flood-exempt-opers",
            "off",
            "--max-per-address",
            "3",
            "--ipv6-prefix",
            "56",
            "--connects-per-window",
            "0",
            "--connect-window",
            "2m",
            "--silent-timeout",
            "3",
            "--exempt",
            "127.0.0.0/8",
            "--exempt",
            "::1",
        ])
        .unwrap() else {
            panic!("expected Run")
        };
        let s = &c.server;
        assert_eq!(s.recvq_bytes, 4096);
        assert_eq!(s.broker.flood.rate, 0.5);
        assert_eq!(s.broker.flood.burst, 10);
        assert!(!s.broker.flood.exempt_opers);
        let a = &s.address_limits;
        assert_eq!((a.per_address, a.ipv6_prefix, a.connects), (3, 56, 0));
        assert_eq!(a.window, Duration::from_secs(120));
        assert_eq!(s.timeouts.silent, Duration::from_secs(3));
        assert_eq!(a.exempt.len(), 2);
        for bad in [
            &["--exempt", "10.0.0.0/40"][..],
            &["--flood-rate", "-1"],
            &["--ipv6-prefix", "129"],
            &["--ipv6-prefix", "0"],
            &["--recvq", "10"],
        ] {
            assert!(Config::parse(bad.iter().copied()).is_err(), "{bad:?}");
        }
        let c = from_file(
            "recvq = 8192\nflood_rate = '2.5'\nflood_burst = 30\nflood_exempt_opers = true\n\
             max_per_address = 4\nipv6_prefix = 48\nconnects_per_window = 6\n\
             connect_window = '30s'\nsilent_timeout = 5\nexempt = ['192.168.0.0/16', 'fd00::/8']\n",
        )
        .unwrap();
        let s = &c.server;
        assert_eq!((s.recvq_bytes, s.broker.flood.rate), (8192, 2.5));
        assert_eq!(s.address_limits.exempt[1].to_string(), "fd00::/8");
        assert_eq!(s.address_limits.window, Duration::from_secs(30));
        let e = from_file("exempt = ['nope']\n").unwrap_err();
        assert!(e.contains("'nope' is not an address range"), "{e}");
    }

    #[test]
    fn example_deploy_config_parses() {
        let c = from_file(include_str!("../deploy/chatnode.toml")).unwrap();
        assert_eq!(c.threads, 1);
        assert!(!c.listen.is_empty());
    }
}
