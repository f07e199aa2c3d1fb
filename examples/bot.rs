//! A small IRC bot on smol's parts: it joins the channels given by `--channel`, answers `!ping`,
//! `!uptime` and `!help`, and reconnects with exponential back-off whenever the connection fails
//! or closes (a node restart, say).
//!
//! ```text
//! cargo run --example bot -- --channel '#chat' --channel '#ops'
//! cargo run --example bot -- --server 127.0.0.1:6667 --nick helper --max-runtime 60
//! RUST_LOG=debug cargo run --example bot -- --channel '#chat'   # also logs every line
//! ```
//!
//! Answers go to the channel the command was said in, or privately to the sender of a private
//! message. Back-off: 0.5 s after a lost connection, doubling on each failed attempt up to 30 s,
//! and back to 0.5 s once a connection registers again. A nick in use at registration is
//! retried as `nick_`, `nick__`, ... SIGINT and SIGTERM (and `--max-runtime`) make it send QUIT
//! and exit 0. Logs go to stderr (`RUST_LOG`, default `info`).

use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use async_io::Timer;
use async_net::TcpStream;
use async_signal::{Signal, Signals};
use chatnode::proto::casemap::{eq_casefold, is_channel_target};
use chatnode::proto::{Frame, LineBuffer, Message};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt, StreamExt};

const USAGE: &str = "\
bot: an IRC bot answering !ping, !uptime and !help (chatnode example)

USAGE: cargo run --example bot -- [OPTIONS]

OPTIONS:
  --server ADDR        server address, host:port (default 127.0.0.1:6667)
  --nick NICK          nickname (default chatbot; nick_, nick__, ... when taken)
  --channel CHAN       channel to join; repeatable
  --password PASS      server password (PASS)
  --max-runtime SECS   quit and exit after SECS seconds (default: run until SIGINT/SIGTERM)
  -h, --help           this text
";

const HELP_REPLY: &str = "commands: !ping (answers pong), !uptime (time up and connected), \
                          !help (this list)";

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Bounds one connection attempt (a silently dropped SYN would otherwise wait minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After QUIT, how long to wait for the server to close the connection.
const QUIT_GRACE: Duration = Duration::from_secs(2);
/// Nick attempts (`nick`, `nick_`, ...) before giving up on a connection and backing off.
const MAX_NICK_TRIES: usize = 8;

#[derive(Debug)]
struct Opts {
    server: String,
    nick: String,
    channels: Vec<String>,
    password: Option<String>,
    max_runtime: Option<Duration>,
}

fn value(p: &mut lexopt::Parser) -> Result<String, String> {
    use lexopt::ValueExt;
    let err = |e: lexopt::Error| e.to_string();
    p.value().map_err(err)?.string().map_err(err)
}

/// `Ok(None)` means `--help` was asked for.
fn parse_args() -> Result<Option<Opts>, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let mut o = Opts {
        server: "127.0.0.1:6667".into(),
        nick: "chatbot".into(),
        channels: Vec::new(),
        password: None,
        max_runtime: None,
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("server") => o.server = value(&mut p)?,
            Long("nick") => o.nick = value(&mut p)?,
            Long("channel") => {
                let c = value(&mut p)?;
                if !is_channel_target(&c) || c.contains([' ', ',']) {
                    return Err(format!("invalid channel {c:?} (channels start with '#')"));
                }
                o.channels.push(c);
            }
            Long("password") => o.password = Some(value(&mut p)?),
            Long("max-runtime") => {
                let v = value(&mut p)?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1e9)
                    .ok_or_else(|| format!("--max-runtime: not a number of seconds: {v:?}"))?;
                o.max_runtime = Some(Duration::from_secs_f64(secs));
            }
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    if o.nick.is_empty() || o.nick.contains([' ', ',', '*', '?', '!', '@']) {
        return Err(format!("invalid nick {:?}", o.nick));
    }
    Ok(Some(o))
}

fn main() -> ExitCode {
    // The node's logger (RUST_LOG, default info, one line per event on stderr).
    chatnode::logging::init();
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bot: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let ex = LocalExecutor::new();
    let code = async_io::block_on(ex.run(run(&ex, opts)));
    chatnode::logging::flush(); // the log thread writes out the last lines before we exit
    code
}

/// A stop request: closed (never sent on) by the signal task or the `--max-runtime` timer.
/// Waiting on a closed channel returns at once, however many times it is asked.
struct Stop(async_channel::Receiver<()>);

impl Stop {
    async fn wait(&self) {
        let _ = self.0.recv().await;
    }
}

/// How one connection ended.
enum Outcome {
    /// A stop was requested (signal or `--max-runtime`); QUIT was sent if we were connected.
    Stopped,
    /// The connection failed or was closed; `registered` says whether it had got as far as 001.
    Lost { registered: bool, why: String },
    /// Retrying cannot help (wrong password, invalid nick).
    Fatal(String),
}

/// What the bot remembers across connections.
struct Bot {
    opts: Opts,
    started: Instant,
    /// Connections that registered so far.
    sessions: u64,
}

async fn run(ex: &LocalExecutor<'_>, opts: Opts) -> ExitCode {
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    // async-signal turns SIGINT/SIGTERM into a stream (its handler only writes to a pipe the
    // reactor watches), so the executor learns of them like of any other I/O.
    let mut signals = match Signals::new([Signal::Term, Signal::Int]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bot: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tx = stop_tx.clone();
    ex.spawn(async move {
        if let Some(Ok(signal)) = signals.next().await {
            log::info!("got {signal:?}: quitting");
        }
        tx.close();
    })
    .detach();
    if let Some(limit) = opts.max_runtime {
        let tx = stop_tx.clone();
        ex.spawn(async move {
            Timer::after(limit).await;
            log::info!("--max-runtime ({limit:?}) reached: quitting");
            tx.close();
        })
        .detach();
    }
    let stop = Stop(stop_rx);

    let mut bot = Bot {
        opts,
        started: Instant::now(),
        sessions: 0,
    };
    let mut backoff = BACKOFF_FIRST;
    loop {
        match bot.session(&stop).await {
            Outcome::Stopped => return ExitCode::SUCCESS,
            Outcome::Fatal(why) => {
                log::error!("{why}: giving up");
                return ExitCode::FAILURE;
            }
            Outcome::Lost { registered, why } => {
                if registered {
                    backoff = BACKOFF_FIRST;
                }
                log::warn!("{why}; reconnecting in {backoff:?}");
                let stopped = future::or(
                    async {
                        stop.wait().await;
                        true
                    },
                    async {
                        Timer::after(backoff).await;
                        false
                    },
                )
                .await;
                if stopped {
                    return ExitCode::SUCCESS;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// What the session loop waits for.
enum Step {
    Read(io::Result<usize>),
    Stop,
}

impl Bot {
    /// One connection, from connect to close.
    async fn session(&mut self, stop: &Stop) -> Outcome {
        let server = self.opts.server.as_str();
        let connect = async {
            match TcpStream::connect(server).await {
                Ok(s) => Ok(Some(s)),
                Err(e) => Err(format!("cannot connect to {server}: {e}")),
            }
        };
        let timeout = async {
            Timer::after(CONNECT_TIMEOUT).await;
            Err(format!("cannot connect to {server}: timed out"))
        };
        let stopped = async {
            stop.wait().await;
            Ok(None)
        };
        let stream = match future::or(stopped, future::or(connect, timeout)).await {
            Ok(Some(s)) => s,
            Ok(None) => return Outcome::Stopped,
            Err(why) => {
                return Outcome::Lost {
                    registered: false,
                    why,
                }
            }
        };
        log::info!("connected to {server}");

        let mut conn = Conn {
            reader: stream.clone(),
            writer: stream,
            nick: self.opts.nick.clone(),
            nick_tries: 1,
            connected_at: None,
            error: None,
            out: Vec::new(),
        };
        if let Some(pass) = &self.opts.password {
            Message::new("PASS", vec![pass.clone()]).write_to(&mut conn.out);
        }
        Message::new("NICK", vec![conn.nick.clone()]).write_to(&mut conn.out);
        let user = vec![
            self.opts.nick.clone(),
            "0".into(),
            "*".into(),
            "chatnode example bot".into(),
        ];
        Message::new("USER", user).write_to_trailing(&mut conn.out);

        let mut buf = LineBuffer::new();
        loop {
            if let Err(e) = conn.flush().await {
                return conn.lost(format!("write failed: {e}"));
            }
            let read = async { Step::Read(conn.reader.read(buf.spare()).await) };
            let stopped = async {
                stop.wait().await;
                Step::Stop
            };
            let n = match future::or(stopped, read).await {
                Step::Stop => {
                    conn.quit().await;
                    return Outcome::Stopped;
                }
                Step::Read(Ok(0)) => return conn.lost("the server closed the connection".into()),
                Step::Read(Ok(n)) => n,
                Step::Read(Err(e)) => return conn.lost(format!("connection error: {e}")),
            };
            buf.filled(n);
            while let Some(frame) = buf.next_frame() {
                let Frame::Line(line) = frame else {
                    log::warn!("skipped a line over 512 bytes");
                    continue;
                };
                log::debug!("<- {}", String::from_utf8_lossy(line));
                let Ok(msg) = Message::parse(line) else {
                    continue;
                };
                if let Some(outcome) = self.on_message(&mut conn, &msg) {
                    return outcome;
                }
            }
        }
    }

    /// Handles one line from the server; `Some` ends the session.
    fn on_message(&mut self, conn: &mut Conn, msg: &Message) -> Option<Outcome> {
        let src = msg.source.as_deref().unwrap_or("");
        let who = src.split('!').next().unwrap_or(src);
        let p = |i: usize| msg.params.get(i).map(String::as_str).unwrap_or("");
        match msg.command.as_str() {
            "PING" => Message::new("PONG", msg.params.clone()).write_to_trailing(&mut conn.out),
            "001" => {
                if !p(0).is_empty() {
                    conn.nick = p(0).to_string();
                }
                conn.connected_at = Some(Instant::now());
                self.sessions += 1;
                log::info!("registered as {}", conn.nick);
                for channel in &self.opts.channels {
                    Message::new("JOIN", vec![channel.clone()]).write_to(&mut conn.out);
                }
            }
            "433" | "437" if conn.connected_at.is_none() => {
                if conn.nick_tries >= MAX_NICK_TRIES {
                    return Some(conn.lost(format!(
                        "nicks {}..{} are all taken",
                        self.opts.nick, conn.nick
                    )));
                }
                conn.nick = format!("{}{}", self.opts.nick, "_".repeat(conn.nick_tries));
                conn.nick_tries += 1;
                log::info!("nick in use: trying {}", conn.nick);
                Message::new("NICK", vec![conn.nick.clone()]).write_to(&mut conn.out);
            }
            "432" if conn.connected_at.is_none() => {
                return Some(Outcome::Fatal(format!(
                    "the server refuses the nick {}: {}",
                    conn.nick,
                    msg.params.last().map_or("", String::as_str)
                )));
            }
            "464" => {
                return Some(Outcome::Fatal("the server refused the password".into()));
            }
            "JOIN" if eq_casefold(who, &conn.nick) => log::info!("joined {}", p(0)),
            "KICK" if eq_casefold(p(1), &conn.nick) => log::warn!("kicked from {} by {who}", p(0)),
            "NICK" if eq_casefold(who, &conn.nick) => conn.nick = p(0).to_string(),
            "ERROR" => conn.error = msg.params.last().cloned(),
            "PRIVMSG" if !eq_casefold(who, &conn.nick) => {
                let text = msg.params.last().map_or("", String::as_str);
                let reply = self.answer(conn, text)?;
                let to = if is_channel_target(p(0)) { p(0) } else { who };
                log::info!("answered {who} (in {}): {reply}", p(0));
                Message::new("PRIVMSG", vec![to.to_string(), reply])
                    .write_to_trailing(&mut conn.out);
            }
            _ => {}
        }
        None
    }

    /// The answer to a message's text, if it is one of our commands.
    fn answer(&self, conn: &Conn, text: &str) -> Option<String> {
        let command = text.split_whitespace().next()?.to_ascii_lowercase();
        match command.as_str() {
            "!ping" => Some("pong".into()),
            "!help" => Some(HELP_REPLY.into()),
            "!uptime" => {
                let up = human(self.started.elapsed());
                let connected = conn
                    .connected_at
                    .map_or("0s".into(), |t| human(t.elapsed()));
                let reconnects = self.sessions.saturating_sub(1);
                Some(format!(
                    "up {up}, connected {connected} (reconnected {reconnects} time{})",
                    if reconnects == 1 { "" } else { "s" }
                ))
            }
            _ => None,
        }
    }
}

/// One connection's state.
struct Conn {
    reader: TcpStream,
    writer: TcpStream,
    nick: String,
    /// NICKs tried so far on this connection.
    nick_tries: usize,
    /// Set at 001.
    connected_at: Option<Instant>,
    /// Text of the server's ERROR line, if it sent one.
    error: Option<String>,
    /// Lines waiting to be written.
    out: Vec<u8>,
}

impl Conn {
    async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        if log::log_enabled!(log::Level::Debug) {
            for line in String::from_utf8_lossy(&self.out).lines() {
                log::debug!("-> {line}");
            }
        }
        let result = self.writer.write_all(&self.out).await;
        self.out.clear();
        result
    }

    fn lost(&self, why: String) -> Outcome {
        let why = match &self.error {
            Some(error) => format!("{why} ({error})"),
            None => why,
        };
        Outcome::Lost {
            registered: self.connected_at.is_some(),
            why,
        }
    }

    /// Sends QUIT and waits (at most [`QUIT_GRACE`]) for the server to close the connection, so
    /// the QUIT is read before we go.
    async fn quit(&mut self) {
        Message::new("QUIT", vec!["bot shutting down".into()]).write_to_trailing(&mut self.out);
        if self.flush().await.is_err() {
            return;
        }
        let drain = async {
            let mut sink = [0u8; 1024];
            while matches!(self.reader.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        future::or(drain, async {
            Timer::after(QUIT_GRACE).await;
        })
        .await;
    }
}

/// `1h 02m 03s`, `4m 05s`, `6s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d {h}h {m:02}m {s:02}s")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}
