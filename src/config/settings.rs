//! The one table of settings: every flag a node takes, and the config-file key of the same name.
//!
//! [`SETTINGS`] declares each setting once: its flag, its type (which decides how both the
//! command line and the file are read), its default, its help text, whether REHASH can change
//! it on a running node, and the one line that stores it in [`Config`]. The flag parser, the
//! config-file reader, `--help`, the README's table of flags and the list of file keys all come
//! from it, so they cannot disagree.
//!
//! Invariants: a setting's file key is its flag in `snake_case` ([`Setting::key`]); every value,
//! from either source, goes through the same [`Kind`] check, so a value refused on the command
//! line is refused in the file with the same words.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::toml::Value;
use super::Config;
use crate::cidr::Cidr;

/// One setting: a flag (`--max-clients N`) and the config-file key of the same name
/// (`max_clients = 200`).
#[derive(Clone, Copy)]
pub struct Setting {
    /// The long flag without its dashes, in `kebab-case`: `"max-clients"`.
    pub flag: &'static str,
    /// What the value is called in `--help`: `"N"`, `"DUR"`, `"FILE"`.
    pub arg: &'static str,
    /// The value when neither the command line nor the file sets it.
    pub default: DefaultValue,
    /// One line for `--help` and the README: what it does, what the bound means.
    pub help: &'static str,
    /// Whether `REHASH` / SIGHUP applies a new value from the file to the running node.
    pub reload: Reload,
    /// The type, and where the value goes.
    pub kind: Kind,
}

/// What `--help` says about a setting's default.
#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    /// A value, written as on the command line. A unit test checks that applying it to the
    /// built-in configuration changes nothing: the text cannot drift from the code.
    Is(&'static str),
    /// Unset: the feature is off, or the setting is optional (`--password`, `--motd`).
    Unset,
    /// Computed at start (`--threads`: the number of cores, at most 4); the text says how.
    Computed(&'static str),
}

/// Whether a changed value in the file takes effect on `REHASH` (and SIGHUP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// The running node takes the new value.
    Live,
    /// Read at start only: a new value is logged as needing a restart.
    Restart,
}

/// A setting's type, and the function that stores a checked value in a [`Config`].
///
/// On the command line every value is text. In the file, numbers are TOML integers, switches
/// may be booleans, `Addresses` may be an array; anything else is written as a string.
#[derive(Clone, Copy)]
pub enum Kind {
    /// A whole number, at least `min`.
    Count {
        /// The smallest value allowed.
        min: usize,
        /// Stores it.
        set: fn(&mut Config, usize),
    },
    /// A positive duration: seconds (`30`, `0.5`) or with a unit (`500ms`, `30s`, `2m`).
    Duration(fn(&mut Config, Duration)),
    /// A name that can stand in an IRC line: non-empty, no spaces, `:` or `,`.
    Name(fn(&mut Config, String)),
    /// Any text.
    Text(fn(&mut Config, String)),
    /// A file; in the config file, a relative path is relative to the file's directory.
    File(fn(&mut Config, PathBuf)),
    /// `on` or `off` (also `true`/`false`, `yes`/`no`).
    Switch(fn(&mut Config, bool)),
    /// Addresses to listen on: the flag may be repeated; the file takes a string or an array.
    Addresses(fn(&mut Config, Vec<SocketAddr>)),
    /// Address ranges (`127.0.0.0/8`, `fd00::/8`, or one address): the flag may be repeated;
    /// the file takes a string or an array (empty for none).
    Ranges(fn(&mut Config, Vec<Cidr>)),
    /// A rate per second, decimals allowed, 0 or more (`4`, `0.5`; in the file an integer or a
    /// string).
    Rate(fn(&mut Config, f64)),
    /// An IPv6 prefix length, 1 to 128.
    PrefixBits(fn(&mut Config, u8)),
}

/// Every setting, in `--help` order.
///
/// # Adding a setting
///
/// 1. Add the field it fills (to [`crate::server::ServerConfig`], [`crate::broker::BrokerConfig`]
///    or [`Config`]) with its default in that struct's `Default`.
/// 2. Add ONE entry here: the flag in `kebab-case` (the file key is the same in `snake_case`),
///    the `arg` name for `--help`, the [`DefaultValue`] (as the flag would be written: a test checks
///    it against the struct's default), one line of help, whether REHASH applies it
///    ([`Reload::Live`] only if the running node reads it again: say so in the REHASH code), and
///    the [`Kind`] with a closure that stores the value: `|c, n| c.server.max_clients = n`.
/// 3. Run `cargo run -- --print-settings-markdown` and paste its output between the
///    `settings-table` markers in README.md (the test `readme_settings_table_is_current` fails
///    until you do). Nothing else: the flag parser, the file reader, `--help` and the list of
///    known keys follow from this table.
pub static SETTINGS: &[Setting] = &[
    Setting {
        flag: "listen",
        arg: "ADDR",
        default: DefaultValue::Is("127.0.0.1:6667"),
        help: "address to listen on: IP:PORT, IPv6 as [::1]:6667, or HOST:PORT (resolved once, at start, to every address of the name)",
        reload: Reload::Restart,
        kind: Kind::Addresses(|c, v| c.listen = v),
    },
    Setting {
        flag: "threads",
        arg: "N",
        default: DefaultValue::Computed("number of cores, at most 4"),
        help: "executor threads; 1 runs every task on the main thread (smallest boards)",
        reload: Reload::Restart,
        kind: Kind::Count {
            min: 1,
            set: |c, n| c.threads = n,
        },
    },
    Setting {
        flag: "adaptive-threads",
        arg: "on|off",
        default: DefaultValue::Is("on"),
        help: "run tasks on fewer of the --threads while their threads wait for a CPU, and on all again when a core is idle (our executor only; docs/executor.md, decision 18)",
        reload: Reload::Restart,
        kind: Kind::Switch(|c, on| c.adaptive_threads = on),
    },
    Setting {
        flag: "server-name",
        arg: "NAME",
        default: DefaultValue::Is("chatnode.local"),
        help: "the server's name, the source of its replies",
        reload: Reload::Restart,
        kind: Kind::Name(|c, v| c.server.broker.server_name = v),
    },
    Setting {
        flag: "network",
        arg: "NAME",
        default: DefaultValue::Is("chatnode"),
        help: "network name in ISUPPORT and the welcome line",
        reload: Reload::Restart,
        kind: Kind::Name(|c, v| c.server.broker.network = v),
    },
    Setting {
        flag: "link",
        arg: "URL",
        default: DefaultValue::Unset,
        help: "join the network named --network through the NATS server at nats://HOST:PORT, or tls://HOST:PORT with --link-ca (JetStream on, for unique nicks); see docs/network.md",
        reload: Reload::Restart,
        kind: Kind::Text(|c, v| c.server.link.url = Some(v)),
    },
    Setting {
        flag: "link-token",
        arg: "TOKEN",
        default: DefaultValue::Unset,
        help: "token for the NATS server of --link",
        reload: Reload::Restart,
        kind: Kind::Text(|c, v| c.server.link.token = Some(v)),
    },
    Setting {
        flag: "link-user",
        arg: "USER",
        default: DefaultValue::Unset,
        help: "user for the NATS server of --link (with --link-password)",
        reload: Reload::Restart,
        kind: Kind::Text(|c, v| c.server.link.user = Some(v)),
    },
    Setting {
        flag: "link-password",
        arg: "PASS",
        default: DefaultValue::Unset,
        help: "password for the NATS server of --link",
        reload: Reload::Restart,
        kind: Kind::Text(|c, v| c.server.link.password = Some(v)),
    },
    Setting {
        flag: "link-ca",
        arg: "FILE",
        default: DefaultValue::Unset,
        help: "TLS to NATS: the CA certificate(s), PEM, that signed the NATS server's certificate; the link then speaks TLS only and checks that the certificate names the host of --link (feature tls)",
        reload: Reload::Restart,
        kind: Kind::File(|c, v| c.server.link.ca = Some(v)),
    },
    Setting {
        flag: "link-cert",
        arg: "FILE",
        default: DefaultValue::Unset,
        help: "mutual TLS to NATS: the node's client certificate chain, PEM (with --link-key and --link-ca)",
        reload: Reload::Restart,
        kind: Kind::File(|c, v| c.server.link.cert = Some(v)),
    },
    Setting {
        flag: "link-key",
        arg: "FILE",
        default: DefaultValue::Unset,
        help: "the private key of --link-cert, PEM (PKCS#8, PKCS#1 or SEC1)",
        reload: Reload::Restart,
        kind: Kind::File(|c, v| c.server.link.key = Some(v)),
    },
    Setting {
        flag: "password",
        arg: "PASS",
        default: DefaultValue::Unset,
        help: "server password clients must send with PASS; a wrong or missing one gets 464",
        reload: Reload::Live,
        kind: Kind::Text(|c, v| c.server.broker.password = Some(v)),
    },
    Setting {
        flag: "motd",
        arg: "FILE",
        default: DefaultValue::Unset,
        help: "message of the day file, read at start and on REHASH; without it clients get 422",
        reload: Reload::Live,
        kind: Kind::File(|c, v| c.server.motd_path = Some(v)),
    },
    Setting {
        flag: "admin-location",
        arg: "TEXT",
        default: DefaultValue::Unset,
        help: "ADMIN's first line (257): where the server is",
        reload: Reload::Restart,
        kind: Kind::Text(|c, v| c.server.broker.admin.location = v),
    },
    Setting {
        flag: "admin-description",
        arg: "TEXT",
        default: DefaultValue::Unset,
        help: "ADMIN's second line (258): who runs it",
        reload: Reload::Restart,
        kind: Kind::Text(|c, v| c.server.broker.admin.description = v),
    },
    Setting {
        flag: "admin-email",
        arg: "TEXT",
        default: DefaultValue::Unset,
        help: "ADMIN's third line (259): how to reach the administrator",
        reload: Reload::Restart,
        kind: Kind::Text(|c, v| c.server.broker.admin.email = v),
    },
    Setting {
        flag: "whowas-entries",
        arg: "N",
        default: DefaultValue::Is("256"),
        help: "former nicks WHOWAS remembers; the oldest is forgotten past N (0: none)",
        reload: Reload::Restart,
        kind: Kind::Count {
            min: 0,
            set: |c, n| c.server.broker.whowas_entries = n,
        },
    },
    Setting {
        flag: "max-clients",
        arg: "N",
        default: DefaultValue::Is("1024"),
        help: "connections past N get an ERROR line (Too many connections) and are closed",
        reload: Reload::Live,
        kind: Kind::Count {
            min: 1,
            set: |c, n| c.server.max_clients = n,
        },
    },
    Setting {
        flag: "register-timeout",
        arg: "DUR",
        default: DefaultValue::Is("30"),
        help: "time allowed to complete registration (NICK, USER, CAP END)",
        reload: Reload::Restart,
        kind: Kind::Duration(|c, d| c.server.timeouts.register = d),
    },
    Setting {
        flag: "ping-interval",
        arg: "DUR",
        default: DefaultValue::Is("120"),
        help: "silence before the server sends PING; as long again without an answer: Ping timeout",
        reload: Reload::Restart,
        kind: Kind::Duration(|c, d| c.server.timeouts.ping_interval = d),
    },
    Setting {
        flag: "write-timeout",
        arg: "DUR",
        default: DefaultValue::Is("30"),
        help: "how long a write to a client may make no progress before it is dropped",
        reload: Reload::Restart,
        kind: Kind::Duration(|c, d| c.server.timeouts.write = d),
    },
    Setting {
        flag: "shutdown-grace",
        arg: "DUR",
        default: DefaultValue::Is("5"),
        help: "on SIGINT/SIGTERM, how long to wait for clients' queues to be flushed",
        reload: Reload::Restart,
        kind: Kind::Duration(|c, d| c.server.shutdown_grace = d),
    },
    Setting {
        flag: "sendq",
        arg: "BYTES",
        default: DefaultValue::Is("524288"),
        help: "bytes queued for one client before it is dropped with SendQ exceeded",
        reload: Reload::Restart,
        kind: Kind::Count {
            min: MIN_SENDQ,
            set: |c, n| c.server.sendq_bytes = n,
        },
    },
    Setting {
        flag: "slow-poll-ms",
        arg: "N",
        default: DefaultValue::Is("50"),
        help: "warn, naming the task, when one poll holds an executor thread longer than N ms (docs/scheduling.md: what a warning means)",
        reload: Reload::Live,
        kind: Kind::Count {
            min: 1,
            set: |c, n| c.server.slow_poll = Duration::from_millis(n as u64),
        },
    },
    Setting {
        flag: "task-stats",
        arg: "on|off",
        default: DefaultValue::Is("on"),
        help: "per-task polls and busy time for STATS t, and the watchdog; off only to measure their cost",
        reload: Reload::Restart,
        kind: Kind::Switch(|c, on| c.server.task_stats = on),
    },
    Setting {
        flag: "data-dir",
        arg: "DIR",
        default: DefaultValue::Computed(
            "$STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/chatnode, else ~/.local/state/chatnode",
        ),
        help: "where the node keeps its files: the history database history.sqlite3",
        reload: Reload::Restart,
        kind: Kind::File(|c, v| c.data_dir = Some(v)),
    },
    Setting {
        flag: "history",
        arg: "on|off",
        default: DefaultValue::Computed("on when the data dir is writable"),
        help: "keep channel and private messages and channel events for CHATHISTORY",
        reload: Reload::Restart,
        kind: Kind::Switch(|c, on| c.history = Some(on)),
    },
    Setting {
        flag: "history-batch",
        arg: "N",
        default: DefaultValue::Is("256"),
        help: "commit history when N records are waiting (at most half of --history-queue)",
        reload: Reload::Restart,
        kind: Kind::Count {
            min: 1,
            set: |c, n| c.server.history.batch_max = n,
        },
    },
    Setting {
        flag: "history-interval",
        arg: "DUR",
        default: DefaultValue::Is("500ms"),
        help: "commit history at most DUR after a record arrives: what kill -9 or a power cut can lose",
        reload: Reload::Restart,
        kind: Kind::Duration(|c, d| c.server.history.interval = d),
    },
    Setting {
        flag: "history-queue",
        arg: "N",
        default: DefaultValue::Is("4096"),
        help: "records waiting for the disk; past N they are dropped, counted in STATS e, and chat goes on",
        reload: Reload::Restart,
        kind: Kind::Count {
            min: 1,
            set: |c, n| c.server.history.queue = n,
        },
    },
    Setting {
        flag: "history-max-age",
        arg: "DUR",
        default: DefaultValue::Unset,
        help: "delete history older than DUR (units: s, m, h, d), checked hourly",
        reload: Reload::Restart,
        kind: Kind::Duration(|c, d| c.server.history.max_age = Some(d)),
    },
    Setting {
        flag: "history-max-mb",
        arg: "N",
        default: DefaultValue::Unset,
        help: "delete the oldest history while the database holds more than N MiB, checked hourly",
        reload: Reload::Restart,
        kind: Kind::Count {
            min: 1,
            set: |c, n| c.server.history.max_bytes = Some(n as u64 * 1024 * 1024),
        },
    },
    Setting {
        flag: "history-per-request",
        arg: "N",
        default: DefaultValue::Is("100"),
        help: "most messages one CHATHISTORY request returns (CHATHISTORY= in ISUPPORT)",
        reload: Reload::Restart,
        kind: Kind::Count {
            min: 1,
            set: |c, n| c.server.broker.history.max_per_request = n,
        },
    },
    Setting {
        flag: "history-on-join",
        arg: "N",
        default: DefaultValue::Is("0"),
        help: "send the last N messages of a channel on JOIN (0: off)",
        reload: Reload::Restart,
        kind: Kind::Count {
            min: 0,
            set: |c, n| c.server.broker.history.join_lines = n,
        },
    },
    Setting {
        flag: "blocking-threads",
        arg: "N",
        default: DefaultValue::Computed("500 on smol, 512 on Tokio"),
        help: "most threads of the blocking pool (Argon2 checks, file reads)",
        reload: Reload::Restart,
        kind: Kind::Count {
            min: 1,
            set: |c, n| c.blocking_threads = Some(n),
        },
    },
    Setting {
        flag: "recvq",
        arg: "BYTES",
        default: DefaultValue::Is("16384"),
        help: "input a client held back by flood control may have waiting (each line counts 64 bytes more than its text); past it: Excess Flood; REHASH applies it to new connections",
        reload: Reload::Live,
        kind: Kind::Count {
            min: MIN_RECVQ,
            set: |c, n| c.server.recvq_bytes = n,
        },
    },
    Setting {
        flag: "flood-rate",
        arg: "N",
        default: DefaultValue::Is("4"),
        help: "commands per second a client may keep sending (a line counts one more per 128 bytes); faster ones are slowed (fakelag), not dropped; PING and PONG are free; 0 = off",
        reload: Reload::Live,
        kind: Kind::Rate(|c, r| c.server.broker.flood.rate = r),
    },
    Setting {
        flag: "flood-burst",
        arg: "N",
        default: DefaultValue::Is("25"),
        help: "commands a client may send at once after a quiet spell (a pasted block)",
        reload: Reload::Live,
        kind: Kind::Count {
            min: 1,
            set: |c, n| c.server.broker.flood.burst = u32::try_from(n).unwrap_or(u32::MAX),
        },
    },
    Setting {
        flag: "flood-exempt-opers",
        arg: "on|off",
        default: DefaultValue::Is("on"),
        help: "IRC operators are not slowed by flood control",
        reload: Reload::Live,
        kind: Kind::Switch(|c, on| c.server.broker.flood.exempt_opers = on),
    },
    Setting {
        flag: "max-per-address",
        arg: "N",
        default: DefaultValue::Is("8"),
        help: "connections one address (IPv6: one prefix) may hold; the next gets an ERROR line (Too many connections from your address)",
        reload: Reload::Live,
        kind: Kind::Count {
            min: 1,
            set: |c, n| c.server.address_limits.per_address = n,
        },
    },
    Setting {
        flag: "ipv6-prefix",
        arg: "BITS",
        default: DefaultValue::Is("64"),
        help: "IPv6 addresses count together per prefix of this length for the per-address limits",
        reload: Reload::Restart,
        kind: Kind::PrefixBits(|c, n| c.server.address_limits.ipv6_prefix = n),
    },
    Setting {
        flag: "connects-per-window",
        arg: "N",
        default: DefaultValue::Is("12"),
        help: "new connections one address may open per window; past it an ERROR line (Connecting too fast); 0 = no limit",
        reload: Reload::Live,
        kind: Kind::Count {
            min: 0,
            set: |c, n| c.server.address_limits.connects = n,
        },
    },
    Setting {
        flag: "connect-window",
        arg: "DUR",
        default: DefaultValue::Is("60"),
        help: "that window; a host that stops is served again within it (refused attempts cost nothing)",
        reload: Reload::Live,
        kind: Kind::Duration(|c, d| c.server.address_limits.window = d),
    },
    Setting {
        flag: "silent-timeout",
        arg: "DUR",
        default: DefaultValue::Is("10"),
        help: "a connection that has sent nothing at all is closed after this; REHASH applies it to new connections",
        reload: Reload::Live,
        kind: Kind::Duration(|c, d| c.server.timeouts.silent = d),
    },
    Setting {
        flag: "cloak",
        arg: "on|off",
        default: DefaultValue::Is("on"),
        help: "others see a keyed hash of each client's address as its host; operators see the real one in WHOIS",
        reload: Reload::Restart,
        kind: Kind::Switch(|c, on| c.server.cloak = on),
    },
    Setting {
        flag: "cloak-key",
        arg: "SECRET",
        default: DefaultValue::Unset,
        help: "the cloaking key (keep it in the config file); without it a random key is made at start and cloaked hosts change on restart",
        reload: Reload::Restart,
        kind: Kind::Text(|c, v| c.server.cloak_key = Some(crate::broker::CloakKey::new(v.as_bytes()))),
    },
    Setting {
        flag: "exempt",
        arg: "CIDR",
        default: DefaultValue::Unset,
        help: "address range exempt from the per-address limits and flood control (a gateway; benchmarks: 127.0.0.0/8)",
        reload: Reload::Live,
        kind: Kind::Ranges(|c, v| c.server.address_limits.exempt = v),
    },
    Setting {
        flag: "listen-tls",
        arg: "ADDR",
        default: DefaultValue::Unset,
        help: "IRC over TLS on ADDR (usually port 6697); needs --tls-cert and --tls-key",
        reload: Reload::Restart,
        kind: Kind::Addresses(|c, v| c.reach.listen_tls = v),
    },
    Setting {
        flag: "tls-cert",
        arg: "FILE",
        default: DefaultValue::Unset,
        help: "TLS certificate chain, PEM; the file is read again on SIGHUP (no one is dropped)",
        reload: Reload::Restart,
        kind: Kind::File(|c, v| c.reach.tls_cert = Some(v)),
    },
    Setting {
        flag: "tls-key",
        arg: "FILE",
        default: DefaultValue::Unset,
        help: "the certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1); read again on SIGHUP",
        reload: Reload::Restart,
        kind: Kind::File(|c, v| c.reach.tls_key = Some(v)),
    },
    Setting {
        flag: "sts",
        arg: "on|off",
        default: DefaultValue::Is("on"),
        help: "advertise the TLS port to plain clients with the IRCv3 sts capability",
        reload: Reload::Restart,
        kind: Kind::Switch(|c, on| c.reach.sts = on),
    },
    Setting {
        flag: "listen-ws",
        arg: "ADDR",
        default: DefaultValue::Unset,
        help: "IRC over WebSocket and the chat page (http://ADDR/) on ADDR",
        reload: Reload::Restart,
        kind: Kind::Addresses(|c, v| c.reach.listen_ws = v),
    },
    Setting {
        flag: "listen-wss",
        arg: "ADDR",
        default: DefaultValue::Unset,
        help: "the same over TLS (https://ADDR/); uses --tls-cert and --tls-key",
        reload: Reload::Restart,
        kind: Kind::Addresses(|c, v| c.reach.listen_wss = v),
    },
    Setting {
        flag: "ws-origins",
        arg: "LIST",
        default: DefaultValue::Unset,
        help: "origins allowed to open a WebSocket, comma-separated (unset: the page's own; * any)",
        reload: Reload::Restart,
        kind: Kind::Text(|c, v| {
            c.reach.ws_origins = v
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect()
        }),
    },
];

/// `--sendq` below this cannot hold one line and its tags.
const MIN_SENDQ: usize = 512;

/// `--recvq` below this cannot hold one full line.
const MIN_RECVQ: usize = 1024;

impl Setting {
    /// The config-file key: the flag in `snake_case`.
    pub fn key(&self) -> String {
        self.flag.replace('-', "_")
    }

    /// Whether the flag may be given more than once (its values add up).
    pub fn repeatable(&self) -> bool {
        matches!(self.kind, Kind::Addresses(_) | Kind::Ranges(_))
    }

    /// The setting whose flag is `flag` (without dashes).
    pub fn by_flag(flag: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.flag == flag)
    }

    /// The setting whose file key is `key`.
    pub fn by_key(key: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.key() == key)
    }

    /// Checks the command-line values of this flag (several only if [`Setting::repeatable`])
    /// and stores them in `config`. The error says what is allowed, without the flag's name.
    pub fn set_from_flags(&self, config: &mut Config, values: &[String]) -> Result<(), String> {
        let last = values.last().map(String::as_str).unwrap_or_default();
        match self.kind {
            Kind::Count { min, set } => set(config, count(last, min)?),
            Kind::Duration(set) => set(config, duration(last)?),
            Kind::Name(set) => set(config, name(last)?),
            Kind::Text(set) => set(config, last.to_string()),
            Kind::File(set) => set(config, PathBuf::from(last)),
            Kind::Switch(set) => set(config, switch(last)?),
            Kind::Addresses(set) => set(config, all_addresses(values)?),
            Kind::Ranges(set) => {
                let ranges = values.iter().map(|v| v.parse::<Cidr>());
                set(config, ranges.collect::<Result<_, _>>()?)
            }
            Kind::Rate(set) => set(config, rate(last)?),
            Kind::PrefixBits(set) => set(config, prefix_bits(last)?),
        }
        Ok(())
    }

    /// Checks a value from the config file and stores it in `config`. A relative
    /// [`Kind::File`] is taken relative to `dir`, the config file's directory.
    pub fn set_from_file(
        &self,
        config: &mut Config,
        value: &Value,
        dir: Option<&Path>,
    ) -> Result<(), String> {
        match (self.kind, value) {
            (Kind::Count { min, set }, Value::Integer(n)) => {
                set(config, count(&n.to_string(), min)?)
            }
            (Kind::Count { .. }, other) => return Err(expected("an integer", other)),
            (Kind::Duration(set), Value::Integer(n)) => set(config, duration(&n.to_string())?),
            (Kind::Duration(set), Value::String(s)) => set(config, duration(s)?),
            (Kind::Duration(_), other) => return Err(expected("an integer or a string", other)),
            (Kind::Switch(set), Value::Bool(on)) => set(config, *on),
            (Kind::Switch(set), Value::String(s)) => set(config, switch(s)?),
            (Kind::Switch(_), other) => return Err(expected("true or false", other)),
            (Kind::Addresses(set), Value::String(one)) => set(config, addresses(one)?),
            (Kind::Addresses(_), Value::Array(list)) if list.is_empty() => {
                return Err("needs at least one address".into())
            }
            (Kind::Addresses(set), Value::Array(list)) => set(config, all_addresses(list)?),
            (Kind::Addresses(_), other) => {
                return Err(expected("an array of strings", other));
            }
            (Kind::Ranges(set), Value::String(one)) => set(config, vec![one.parse::<Cidr>()?]),
            (Kind::Ranges(set), Value::Array(list)) => {
                let ranges = list.iter().map(|v| v.parse::<Cidr>());
                set(config, ranges.collect::<Result<_, _>>()?)
            }
            (Kind::Ranges(_), other) => return Err(expected("an array of strings", other)),
            (Kind::Rate(set), Value::Integer(n)) => set(config, rate(&n.to_string())?),
            (Kind::Rate(set), Value::String(s)) => set(config, rate(s)?),
            (Kind::Rate(_), other) => return Err(expected("an integer or a string", other)),
            (Kind::PrefixBits(set), Value::Integer(n)) => set(config, prefix_bits(&n.to_string())?),
            (Kind::PrefixBits(_), other) => return Err(expected("an integer", other)),
            (Kind::Name(set), Value::String(s)) => set(config, name(s)?),
            (Kind::Text(set), Value::String(s)) => set(config, s.clone()),
            (Kind::File(set), Value::String(s)) => {
                let path = PathBuf::from(s);
                set(
                    config,
                    match dir {
                        Some(dir) if path.is_relative() => dir.join(path),
                        _ => path,
                    },
                )
            }
            (Kind::Name(_) | Kind::Text(_) | Kind::File(_), other) => {
                return Err(expected("a string", other))
            }
        }
        Ok(())
    }
}

fn expected(what: &str, found: &Value) -> String {
    format!("expected {what}, found {}", found.type_name())
}

/// A whole number, at least `min`.
fn count(v: &str, min: usize) -> Result<usize, String> {
    let allowed = if min == 1 {
        "must be a whole number more than 0".to_string()
    } else {
        format!("must be a whole number, at least {min}")
    };
    match v.trim().parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("'{v}': {allowed}")),
    }
}

/// A rate per second: a decimal, 0 or more.
fn rate(v: &str) -> Result<f64, String> {
    crate::decimal::parse_f64(v.trim())
        .filter(|r| r.is_finite() && *r >= 0.0 && *r <= 1e6)
        .ok_or_else(|| format!("'{v}': must be a number of commands per second (4, 0.5; 0 = off)"))
}

/// An IPv6 prefix length.
fn prefix_bits(v: &str) -> Result<u8, String> {
    v.trim()
        .parse::<u8>()
        .ok()
        .filter(|n| (1..=128).contains(n))
        .ok_or_else(|| format!("'{v}': must be a prefix length from 1 to 128"))
}

/// A positive duration; the error says what is allowed.
fn duration(v: &str) -> Result<Duration, String> {
    const FORMS: &str = "seconds, or with a unit: 500ms, 30s, 2m, 12h, 30d";
    match parse_duration(v) {
        Some(d) => Ok(d),
        None if crate::decimal::parse_f64(v.trim().trim_end_matches(['m', 's', 'h', 'd']))
            .is_some() =>
        {
            Err(format!("'{v}': must be more than 0 ({FORMS})"))
        }
        None => Err(format!("'{v}' is not a duration ({FORMS})")),
    }
}

/// `"1.5"` and `"1.5s"` are seconds; `"500ms"`, `"2m"`, `"12h"`, `"30d"` as they say. Must be
/// positive.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = v.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = v.strip_suffix('d') {
        (n, 86400.0)
    } else {
        (v, 1.0)
    };
    let secs = crate::decimal::parse_f64(number.trim())? * scale;
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// A name that can stand in an IRC line's prefix or parameters.
pub(super) fn name(v: &str) -> Result<String, String> {
    if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == b':' || b == b',') {
        return Err(format!(
            "'{v}' must be non-empty, without spaces, ':' or ','"
        ));
    }
    Ok(v.to_string())
}

/// `on`/`off` (also `true`/`false`, `yes`/`no`).
fn switch(v: &str) -> Result<bool, String> {
    match v {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("'{v}': must be on or off")),
    }
}

/// Every address of several `--listen` values, each once.
fn all_addresses<'a>(
    values: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<SocketAddr>, String> {
    let mut all: Vec<SocketAddr> = Vec::new();
    for v in values {
        for addr in addresses(v)? {
            // Port 0 asks the kernel for a fresh port each time: never a duplicate.
            if addr.port() == 0 || !all.contains(&addr) {
                all.push(addr);
            }
        }
    }
    Ok(all)
}

/// One `--listen` value: `IP:PORT`, or `HOST:PORT` resolved now to every address the name has
/// (`localhost:6667` is usually 127.0.0.1 and ::1). Resolving may block: this runs at start,
/// before any runtime, or on the blocking pool for REHASH.
fn addresses(v: &str) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = v.parse() {
        return Ok(vec![addr]);
    }
    let host = match v.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => host,
        _ => {
            return Err(format!(
                "'{v}' is not IP:PORT or HOST:PORT (IPv6 as [::1]:6667)"
            ))
        }
    };
    let addrs: Vec<SocketAddr> = v
        .to_socket_addrs()
        .map_err(|e| format!("'{v}': cannot resolve the host name {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("'{v}': the host name {host} has no address"));
    }
    Ok(addrs)
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
        assert!(duration("0").unwrap_err().contains("must be more than 0"));
        assert!(duration("0ms").unwrap_err().contains("must be more than 0"));
        assert!(duration("soon").unwrap_err().contains("is not a duration"));
    }

    #[test]
    fn listen_takes_host_names() {
        let local = addresses("localhost:6667").unwrap();
        assert!(
            local.contains(&"127.0.0.1:6667".parse().unwrap()),
            "{local:?}"
        );
        assert!(local
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 6667));
        let twice = all_addresses(&["localhost:7".to_string(), "127.0.0.1:7".to_string()]);
        assert_eq!(twice.unwrap().len(), local.len(), "each address once");
        for bad in ["nowhere", "host:", ":6667", "host:99999"] {
            let e = addresses(bad).unwrap_err();
            assert!(e.contains("is not IP:PORT or HOST:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn flags_and_keys_are_unique_and_well_formed() {
        for (i, s) in SETTINGS.iter().enumerate() {
            assert!(
                s.flag
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "--{}: flags are kebab-case",
                s.flag
            );
            assert!(!s.help.is_empty() && !s.help.ends_with('.'), "--{}", s.flag);
            assert!(
                SETTINGS[..i].iter().all(|o| o.flag != s.flag),
                "--{} twice",
                s.flag
            );
            assert!(
                !["config", "help", "version", "hash-password"].contains(&s.flag),
                "--{} is an action",
                s.flag
            );
        }
    }

    /// The defaults `--help` shows are the defaults the code uses.
    #[test]
    fn shown_defaults_are_the_real_ones() {
        for s in SETTINGS {
            let DefaultValue::Is(text) = s.default else {
                continue;
            };
            let mut config = Config::built_in();
            let before = format!("{config:?}");
            s.set_from_flags(&mut config, &[text.to_string()])
                .unwrap_or_else(|e| panic!("--{}: default {text}: {e}", s.flag));
            assert_eq!(
                before,
                format!("{config:?}"),
                "--{}: the table says the default is {text}, the code disagrees",
                s.flag
            );
        }
    }
}
