//! An interactive terminal IRC client on smol's parts: one thread, a `LocalExecutor`, an
//! `async_net::TcpStream`, and stdin/stdout through `blocking::Unblock` (what `smol::Unblock`
//! re-exports).
//!
//! ```text
//! cargo run --example client -- --nick alice --channel '#chat'
//! cargo run --example client -- --server 127.0.0.1:6667 --nick bob --password secret
//! ```
//!
//! Type a line to say it in the current channel (the last one joined, or the one named by the
//! last `/join`). Commands: `/join #chan [key]`, `/part [#chan] [reason]`, `/msg nick text`,
//! `/me action`, `/nick new`, `/quit [reason]`, `/raw LINE`, `/help`; `//text` says `/text`.
//!
//! Output is `[#chan] HH:MM:SS <nick> text` (times of day in UTC). Nicks get a stable colour
//! (from a hash of the casefolded nick) and timestamps are dimmed, but only when stdout is a
//! terminal; piped output has no escape sequences. Control characters and IRC formatting codes
//! in received text are never passed to the terminal.
//!
//! Exit status: 0 after `/quit`, end of input, Ctrl-C or SIGTERM (all send QUIT), 1 when the
//! connection fails, the server closes it (its ERROR line is printed) or refuses our nick, 2 on a
//! usage error.

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_channel::{Receiver, Sender};
use async_executor::LocalExecutor;
use async_io::Timer;
use async_net::TcpStream;
use async_signal::{Signal, Signals};
use blocking::Unblock;
use chatnode::proto::casemap::{casefold, eq_casefold, is_channel_target};
use chatnode::proto::{Frame, LineBuffer, Message};
use futures_lite::io::BufReader;
use futures_lite::{future, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, StreamExt};

const USAGE: &str = "\
client: an interactive IRC client (chatnode example)

USAGE: cargo run --example client -- [OPTIONS]

OPTIONS:
  --server ADDR      server address, host:port (default 127.0.0.1:6667)
  --nick NICK        nickname (default: $USER, else guest)
  --channel CHAN     channel to join once registered
  --password PASS    server password (PASS)
  -h, --help         this text

";

/// The commands, for `--help` and `/help`.
const COMMANDS: &str = "\
COMMANDS (anything else is said in the current channel):
  /join #chan [key]       join and make it the current channel
  /part [#chan] [reason]  leave the current (or named) channel
  /msg NICK|#chan text    send a message to a nick or channel
  /me action              CTCP ACTION in the current channel (* nick action)
  /nick NEW               change nickname
  /quit [reason]          leave the server and exit (so does end of input, Ctrl-D)
  /raw LINE               send LINE to the server as it is
  /help                   this list
  //text                  say \"/text\"

Times are UTC. Colours only when stdout is a terminal.
";

/// How long to wait for the server to close the connection after we sent QUIT.
const QUIT_GRACE: Duration = Duration::from_secs(5);

/// Longest text sent in one PRIVMSG; longer input is split (a line is at most 512 bytes,
/// and the server prefixes our `nick!user@host` when relaying it).
const MAX_TEXT: usize = 400;

#[derive(Debug)]
struct Opts {
    server: String,
    nick: String,
    channel: Option<String>,
    password: Option<String>,
}

/// `Ok(None)` means `--help` was asked for.
fn parse_args() -> Result<Option<Opts>, String> {
    use lexopt::prelude::*;
    let err = |e: lexopt::Error| e.to_string();
    let mut p = lexopt::Parser::from_env();
    let mut o = Opts {
        server: "127.0.0.1:6667".into(),
        nick: std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "guest".into()),
        channel: None,
        password: None,
    };
    while let Some(arg) = p.next().map_err(err)? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("server") => o.server = value(&mut p)?,
            Long("nick") => o.nick = value(&mut p)?,
            Long("channel") => o.channel = Some(value(&mut p)?),
            Long("password") => o.password = Some(value(&mut p)?),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    if o.nick.is_empty() || o.nick.contains([' ', ',', '*', '?', '!', '@']) {
        return Err(format!("invalid nick {:?}", o.nick));
    }
    if let Some(c) = &o.channel {
        if !is_channel_target(c) || c.contains([' ', ',']) {
            return Err(format!("invalid channel {c:?} (channels start with '#')"));
        }
    }
    Ok(Some(o))
}

fn value(p: &mut lexopt::Parser) -> Result<String, String> {
    let err = |e: lexopt::Error| e.to_string();
    use lexopt::ValueExt;
    p.value().map_err(err)?.string().map_err(err)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}{COMMANDS}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("client: {e}\n\n{USAGE}{COMMANDS}");
            return ExitCode::from(2);
        }
    };
    // One thread runs everything: the session loop plus two small tasks (socket reader, stdin
    // reader). The executor thread never blocks: sockets are async (async-io's reactor), and
    // the terminal is reached only through `Unblock`.
    let ex = LocalExecutor::new();
    async_io::block_on(ex.run(run(&ex, opts)))
}

/// What the socket reader task reports.
enum FromServer {
    Msg(Message),
    /// The connection ended; the text says how (end of stream or the I/O error).
    Closed(String),
}

/// What the session loop waits for.
enum Event {
    Server(FromServer),
    /// A line typed by the user; `None` at end of input.
    Input(Option<String>),
    /// We sent QUIT and the server did not close the connection in time.
    QuitTimeout,
    /// SIGINT (Ctrl-C) or SIGTERM.
    Signal,
}

async fn run(ex: &LocalExecutor<'_>, opts: Opts) -> ExitCode {
    let color = io::stdout().is_terminal();
    // Writes to stdout can block too (a slow terminal, a full pipe), so they go through
    // `Unblock` as well; we flush after each batch so lines appear promptly and in order.
    let mut stdout = Unblock::new(io::stdout());

    let stream = match TcpStream::connect(opts.server.as_str()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("client: cannot connect to {}: {e}", opts.server);
            return ExitCode::FAILURE;
        }
    };
    let (srv_tx, srv_rx) = async_channel::bounded(64);
    ex.spawn(read_server(stream.clone(), srv_tx)).detach();
    let (in_tx, in_rx) = async_channel::bounded(16);
    ex.spawn(read_stdin(in_tx)).detach();
    let mut writer = stream;
    // Ctrl-C and SIGTERM quit like `/quit` (a second one exits at once). async-signal's handler
    // only wakes the reactor; without it (if it cannot be installed) they simply kill us.
    let mut signals = Signals::new([Signal::Int, Signal::Term]).ok();

    let mut s = Session::new(&opts, color);
    let mut out = Vec::new();
    let mut show = vec![s.note(&format!("connected to {}", opts.server))];
    s.register(&opts, &mut out);
    let mut input_open = true;
    let mut quit_timer: Option<Timer> = None;

    let code = loop {
        if !out.is_empty() {
            if let Err(e) = writer.write_all(&out).await {
                show.push(s.note(&format!("write failed: {e}")));
                // The reader sees the broken connection too and reports it as Closed.
            }
            out.clear();
        }
        if !show.is_empty() {
            let mut text = show.join("\n");
            text.push('\n');
            show.clear();
            // A closed stdout (e.g. `| head`) must not stop the session: ignore errors.
            let _ = stdout.write_all(text.as_bytes()).await;
            let _ = stdout.flush().await;
        }
        if s.quitting && quit_timer.is_none() {
            quit_timer = Some(Timer::after(QUIT_GRACE));
        }

        let server = async { Event::Server(server_event(&srv_rx).await) };
        // Typed lines are taken only once registered (a script piped in before 001 is held back,
        // not refused by the server) and until we quit.
        let take_input = s.registered && input_open && !s.quitting;
        let input = async {
            if take_input {
                Event::Input(in_rx.recv().await.ok())
            } else {
                future::pending().await
            }
        };
        let deadline = async {
            match quit_timer.as_mut() {
                Some(t) => {
                    t.await;
                    Event::QuitTimeout
                }
                None => future::pending().await,
            }
        };
        let signal = async {
            match signals.as_mut() {
                Some(signals) => {
                    signals.next().await;
                    Event::Signal
                }
                None => future::pending().await,
            }
        };
        let event = future::or(server, future::or(input, future::or(deadline, signal))).await;
        match event {
            Event::Server(FromServer::Msg(msg)) => s.on_server(&msg, &mut out, &mut show),
            Event::Server(FromServer::Closed(how)) => {
                if s.quitting {
                    break s.quit_status();
                }
                let why = s.error.clone().unwrap_or(how);
                show.push(s.note(&format!("disconnected: {why}")));
                eprintln!("client: the server closed the connection: {why}");
                break ExitCode::FAILURE;
            }
            Event::Input(Some(line)) => s.on_input(&line, &mut out, &mut show),
            Event::Input(None) => {
                input_open = false;
                s.quit("end of input", &mut out);
            }
            Event::QuitTimeout => {
                show.push(s.note("the server did not close the connection; exiting"));
                break s.quit_status();
            }
            Event::Signal if s.quitting => break s.quit_status(),
            Event::Signal => s.quit("interrupted", &mut out),
        }
    };
    if !show.is_empty() {
        let _ = stdout.write_all((show.join("\n") + "\n").as_bytes()).await;
    }
    let _ = stdout.flush().await;
    code
}

async fn server_event(rx: &Receiver<FromServer>) -> FromServer {
    rx.recv()
        .await
        .unwrap_or_else(|_| FromServer::Closed("connection closed".into()))
}

/// Reads the socket, frames it into lines with [`LineBuffer`] and parses each with
/// [`Message::parse`]. Ends (reporting how) when the connection ends.
async fn read_server(mut stream: TcpStream, tx: Sender<FromServer>) {
    let mut buf = LineBuffer::new();
    let how = loop {
        let n = match stream.read(buf.spare()).await {
            Ok(0) => break "connection closed by the server".to_string(),
            Ok(n) => n,
            Err(e) => break format!("connection error: {e}"),
        };
        buf.filled(n);
        let mut batch = Vec::new();
        while let Some(frame) = buf.next_frame() {
            match frame {
                Frame::Line(line) => {
                    if let Ok(msg) = Message::parse(line) {
                        batch.push(msg);
                    }
                }
                Frame::TooLong => {} // A server line over 512 bytes: skipped.
            }
        }
        for msg in batch {
            if tx.send(FromServer::Msg(msg)).await.is_err() {
                return;
            }
        }
    };
    let _ = tx.send(FromServer::Closed(how)).await;
}

/// Reads stdin line by line and hands the lines to the session loop.
///
/// Why `Unblock`: reading stdin is a blocking `read(2)` that may wait for as long as the user
/// does not type. Called on the executor thread it would stall every task on it, the socket
/// reader included, so server PINGs would go unanswered and messages unshown. `Unblock` moves
/// those reads to the `blocking` crate's thread pool and hands us an `AsyncRead` whose futures
/// just wait; the executor thread stays free. This is the smol side of one of the project's
/// contrasts: smol offloads blocking work with `blocking::unblock` / `Unblock` (a shared pool
/// that grows on demand), Tokio with `tokio::task::spawn_blocking` (its runtime's own pool, and
/// `tokio::io::stdin` does the same thing internally).
async fn read_stdin(tx: Sender<String>) {
    let mut lines = BufReader::new(Unblock::new(io::stdin())).lines();
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                eprintln!("client: reading stdin: {e}");
                break;
            }
        }
    }
    // Dropping `tx` tells the session loop that input has ended.
}

/// Everything the session loop knows; its methods are synchronous (bytes to send go into `out`,
/// lines to print into `show`), so all I/O stays in `run`.
struct Session {
    /// Our nick: the one we asked for until 001, then the server's word for it.
    nick: String,
    registered: bool,
    /// Channels we are in, in the order joined.
    channels: Vec<String>,
    /// Where plain lines go.
    current: Option<String>,
    /// Channel to join at 001 (`--channel`).
    autojoin: Option<String>,
    /// We sent QUIT: the server closing the connection is expected.
    quitting: bool,
    /// We quit because registration cannot succeed (the server refused our nick).
    failed: bool,
    /// Text of the last ERROR line (why the server is closing the connection).
    error: Option<String>,
    color: bool,
}

impl Session {
    fn new(opts: &Opts, color: bool) -> Session {
        Session {
            nick: opts.nick.clone(),
            registered: false,
            channels: Vec::new(),
            current: None,
            autojoin: opts.channel.clone(),
            quitting: false,
            failed: false,
            error: None,
            color,
        }
    }

    fn register(&self, opts: &Opts, out: &mut Vec<u8>) {
        if let Some(pass) = &opts.password {
            Message::new("PASS", vec![pass.clone()]).write_to(out);
        }
        Message::new("NICK", vec![self.nick.clone()]).write_to(out);
        let user = vec![
            self.nick.clone(),
            "0".into(),
            "*".into(),
            "chatnode example client".into(),
        ];
        Message::new("USER", user).write_to_trailing(out);
    }

    fn quit(&mut self, reason: &str, out: &mut Vec<u8>) {
        Message::new("QUIT", vec![reason.into()]).write_to_trailing(out);
        self.quitting = true;
    }

    /// The exit status once we have quit.
    fn quit_status(&self) -> ExitCode {
        if self.failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }

    fn is_me(&self, nick: &str) -> bool {
        eq_casefold(nick, &self.nick)
    }

    // ---- input -------------------------------------------------------------------------------

    fn on_input(&mut self, line: &str, out: &mut Vec<u8>, show: &mut Vec<String>) {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return;
        }
        let Some(command) = line.strip_prefix('/') else {
            return self.say_here(line, out, show);
        };
        if command.starts_with('/') {
            return self.say_here(command, out, show);
        }
        let (cmd, args) = command.split_once(' ').unwrap_or((command, ""));
        let args = args.trim_start_matches(' ');
        let (first, rest) = split_word(args);
        match cmd.to_ascii_lowercase().as_str() {
            "join" | "j" if !first.is_empty() => {
                let mut params = vec![first.to_string()];
                if !rest.is_empty() {
                    params.push(rest.to_string());
                }
                Message::new("JOIN", params).write_to(out);
                if is_channel_target(first) && !first.contains(',') {
                    self.current = Some(first.to_string());
                }
            }
            "part" | "leave" => {
                let (channel, reason) = if is_channel_target(first) {
                    (Some(first.to_string()), rest)
                } else {
                    (self.current.clone(), args)
                };
                let Some(channel) = channel else {
                    return show.push(self.note("not in a channel: /part #channel"));
                };
                let mut params = vec![channel];
                if !reason.is_empty() {
                    params.push(reason.to_string());
                }
                Message::new("PART", params).write_to_trailing(out);
            }
            "msg" | "query" if !first.is_empty() && !rest.is_empty() => {
                self.say(first, rest, out, show);
            }
            "me" if !args.is_empty() => {
                let Some(target) = self.current.clone() else {
                    return show.push(self.note("not in a channel: /join #channel first"));
                };
                let ctcp = format!("\x01ACTION {args}\x01");
                Message::new("PRIVMSG", vec![target.clone(), ctcp]).write_to_trailing(out);
                let me = self.paint_nick(&self.nick);
                show.push(format!(
                    "{}{} * {me} {}",
                    context(&target),
                    self.stamp(),
                    clean(args)
                ));
            }
            "nick" if !first.is_empty() => {
                Message::new("NICK", vec![first.to_string()]).write_to(out);
            }
            "quit" | "exit" => {
                let reason = if args.is_empty() { "leaving" } else { args };
                self.quit(reason, out);
            }
            "raw" | "quote" if !args.is_empty() => {
                out.extend_from_slice(args.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            "help" => show.extend(COMMANDS.lines().map(str::to_string)),
            "join" | "j" | "msg" | "query" | "me" | "nick" | "raw" | "quote" => {
                show.push(self.note(&format!("/{cmd} needs arguments: see /help")));
            }
            _ => show.push(self.note(&format!(
                "unknown command /{cmd}: see /help, or send it with /raw"
            ))),
        }
    }

    /// A plain line: said in the current channel.
    fn say_here(&mut self, text: &str, out: &mut Vec<u8>, show: &mut Vec<String>) {
        match self.current.clone() {
            Some(target) => self.say(&target, text, out, show),
            None => show.push(self.note("not in a channel: /join #channel or /msg nick text")),
        }
    }

    /// PRIVMSG `text` to `target` (split if long) and show it, as the server does not echo it.
    fn say(&mut self, target: &str, text: &str, out: &mut Vec<u8>, show: &mut Vec<String>) {
        for chunk in split_text(text, MAX_TEXT) {
            Message::new("PRIVMSG", vec![target.to_string(), chunk.to_string()])
                .write_to_trailing(out);
            show.push(format!(
                "{}{} <{}> {}",
                context(target),
                self.stamp(),
                self.paint_nick(&self.nick),
                clean(chunk)
            ));
        }
    }

    // ---- server ------------------------------------------------------------------------------

    fn on_server(&mut self, msg: &Message, out: &mut Vec<u8>, show: &mut Vec<String>) {
        let src = msg.source.as_deref().unwrap_or("");
        let who = src.split('!').next().unwrap_or(src);
        let p = |i: usize| msg.params.get(i).map(String::as_str).unwrap_or("");
        let last = msg.params.last().map(String::as_str).unwrap_or("");
        let stamp = self.stamp();
        match msg.command.as_str() {
            "PING" => {
                Message::new("PONG", msg.params.clone()).write_to_trailing(out);
            }
            "PONG" => {}
            "001" => {
                self.registered = true;
                if !p(0).is_empty() {
                    self.nick = p(0).to_string();
                }
                show.push(self.numeric(msg));
                if let Some(channel) = self.autojoin.take() {
                    Message::new("JOIN", vec![channel.clone()]).write_to(out);
                    self.current = Some(channel);
                }
            }
            "433" | "437" if !self.registered => {
                // Nick in use before registration: we cannot take input yet, so try nick_.
                show.push(self.numeric(msg));
                self.nick.push('_');
                show.push(self.note(&format!("trying the nick {}", self.nick)));
                Message::new("NICK", vec![self.nick.clone()]).write_to(out);
            }
            "432" if !self.registered => {
                // Erroneous nick: retrying with `_` cannot help, and input is held until
                // registration, so give up (exit status 1).
                show.push(self.numeric(msg));
                self.failed = true;
                self.quit("invalid nick", out);
            }
            "PRIVMSG" | "NOTICE" => {
                let target = p(0);
                let ctx = if is_channel_target(target) {
                    context(target)
                } else if src.contains('!') {
                    context(who) // a private message: the sender is the context
                } else {
                    String::new() // from the server itself
                };
                let nick = self.paint_nick(who);
                let line = if let Some(ctcp) = last.strip_prefix('\x01') {
                    let ctcp = ctcp.strip_suffix('\x01').unwrap_or(ctcp);
                    match ctcp.split_once(' ') {
                        Some(("ACTION", action)) => format!("* {nick} {}", clean(action)),
                        _ => format!("-!- CTCP {} from {nick}", clean(ctcp)),
                    }
                } else if msg.command == "NOTICE" {
                    format!("-{nick}- {}", clean(last))
                } else {
                    format!("<{nick}> {}", clean(last))
                };
                show.push(format!("{ctx}{stamp} {line}"));
            }
            "JOIN" => {
                let channel = p(0).to_string();
                if self.is_me(who) {
                    self.channels.retain(|c| !eq_casefold(c, &channel));
                    self.channels.push(channel.clone());
                    self.current = Some(channel.clone());
                }
                let nick = self.paint_nick(who);
                show.push(format!(
                    "{}{stamp} -!- {nick} has joined {}",
                    context(&channel),
                    clean(&channel)
                ));
            }
            "PART" | "KICK" => {
                let channel = p(0).to_string();
                let (gone, line) = if msg.command == "PART" {
                    let reason = reason(msg.params.get(1));
                    let nick = self.paint_nick(who);
                    (
                        who,
                        format!("-!- {nick} has left {}{reason}", clean(&channel)),
                    )
                } else {
                    let reason = reason(msg.params.get(2));
                    let (victim, by) = (self.paint_nick(p(1)), self.paint_nick(who));
                    (p(1), format!("-!- {victim} was kicked by {by}{reason}"))
                };
                if self.is_me(gone) {
                    self.channels.retain(|c| !eq_casefold(c, &channel));
                    if self
                        .current
                        .as_deref()
                        .is_some_and(|c| eq_casefold(c, &channel))
                    {
                        self.current = self.channels.last().cloned();
                    }
                }
                show.push(format!("{}{stamp} {line}", context(&channel)));
            }
            "QUIT" => {
                let reason = reason(msg.params.first());
                let nick = self.paint_nick(who);
                show.push(format!("{stamp} -!- {nick} has quit{reason}"));
            }
            "NICK" => {
                let new = p(0);
                if self.is_me(who) {
                    self.nick = new.to_string();
                }
                let (old, new) = (self.paint_nick(who), self.paint_nick(new));
                show.push(format!("{stamp} -!- {old} is now known as {new}"));
            }
            "TOPIC" => {
                let nick = self.paint_nick(who);
                show.push(format!(
                    "{}{stamp} -!- {nick} changed the topic to: {}",
                    context(p(0)),
                    clean(p(1))
                ));
            }
            "MODE" => {
                let nick = self.paint_nick(who);
                let modes = clean(&msg.params[1.min(msg.params.len())..].join(" "));
                let ctx = if is_channel_target(p(0)) {
                    context(p(0))
                } else {
                    String::new()
                };
                show.push(format!("{ctx}{stamp} -!- mode {modes} by {nick}"));
            }
            "ERROR" => {
                self.error = Some(clean(last));
                show.push(format!("{stamp} -!- ERROR {}", clean(last)));
            }
            "332" => show.push(format!(
                "{}{stamp} -!- topic: {}",
                context(p(1)),
                clean(last)
            )),
            "353" => show.push(format!(
                "{}{stamp} -!- names: {}",
                context(p(2)),
                clean(last)
            )),
            cmd if cmd.len() == 3 && cmd.bytes().all(|b| b.is_ascii_digit()) => {
                if readable(msg).is_none_or(|text| !text.is_empty()) {
                    show.push(self.numeric(msg)); // not for an "end of list"
                }
            }
            _ => show.push(format!("{stamp} -!- {}", clean(&msg.to_string()))),
        }
    }

    /// A numeric as [`readable`] says it, or else compactly:
    /// `HH:MM:SS -!- 433 bob: Nickname is already in use`. The first
    /// parameter (our own nick, or `*` before registration) is left out.
    fn numeric(&self, msg: &Message) -> String {
        if let Some(text) = readable(msg) {
            return format!("{} -!- {}", self.stamp(), clean(&text));
        }
        let params = msg.params.get(1..).unwrap_or_default();
        let text = match params.split_last() {
            None => String::new(),
            Some((last, [])) => format!(" {last}"),
            Some((last, middle)) => format!(" {}: {last}", middle.join(" ")),
        };
        format!("{} -!- {}{}", self.stamp(), msg.command, clean(&text))
    }

    /// A local status line.
    fn note(&self, text: &str) -> String {
        format!("{} -!- {text}", self.stamp())
    }

    /// `HH:MM:SS`, the time of day in UTC; dimmed on a terminal.
    fn stamp(&self) -> String {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let t = secs % 86_400;
        let hms = format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
        if self.color {
            format!("\x1b[2m{hms}\x1b[0m")
        } else {
            hms
        }
    }

    /// The nick, in its own colour on a terminal.
    fn paint_nick(&self, nick: &str) -> String {
        let nick = clean(nick);
        if !self.color {
            return nick;
        }
        // FNV-1a over the casefolded nick: the same nick always gets the same colour, also
        // across runs, and `Bob` and `bob` (the same user to the server) match.
        const PALETTE: [u8; 12] = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];
        let hash = casefold(&nick)
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        let colour = PALETTE[(hash % PALETTE.len() as u64) as usize];
        let bold = if self.is_me(&nick) { "1;" } else { "" };
        format!("\x1b[{bold}{colour}m{nick}\x1b[0m")
    }
}

/// `[#chan] ` (the prefix naming a line's context).
fn context(name: &str) -> String {
    format!("[{}] ", clean(name))
}

/// ` (reason)` or nothing.
fn reason(r: Option<&String>) -> String {
    match r {
        Some(r) if !r.is_empty() => format!(" ({})", clean(r)),
        _ => String::new(),
    }
}

/// The first space-separated word and the rest (leading spaces trimmed).
fn split_word(s: &str) -> (&str, &str) {
    let (a, b) = s.split_once(' ').unwrap_or((s, ""));
    (a, b.trim_start_matches(' '))
}

/// Splits `text` into pieces of at most `max` bytes, on character boundaries, preferring the
/// last space.
fn split_text(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(space) = rest[..cut].rfind(' ').filter(|&i| i > 0) {
            cut = space;
        }
        pieces.push(&rest[..cut]);
        rest = rest[cut..].trim_start_matches(' ');
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// Received text made safe for a terminal: IRC formatting codes (bold, colours, ...) removed,
/// any other control character (ESC included, so no escape sequence from the network reaches
/// the terminal) shown as U+FFFD.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x02' | '\x0f' | '\x11' | '\x16' | '\x1d' | '\x1e' | '\x1f' => {}
            '\x03' => {
                // Colour: \x03[fg[,bg]] with one or two digits each.
                let digits = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
                    let mut n = 0;
                    while n < 2 && chars.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                        n += 1;
                    }
                    n
                };
                if digits(&mut chars) > 0 && chars.peek() == Some(&',') {
                    let mut ahead = chars.clone();
                    ahead.next();
                    if ahead.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                        digits(&mut chars);
                    }
                }
            }
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The common numerics as a person would say them (`2 channels formed` rather than
/// `254 2: channels formed`); `Some("")` for the ends of lists, which need no line; `None` for
/// the rest, shown as they come. The first parameter (our own nick) is never shown.
fn readable(msg: &Message) -> Option<String> {
    let p = |i: usize| msg.params.get(i).map(String::as_str).unwrap_or("");
    let last = msg.params.last().map(String::as_str).unwrap_or("");
    let date = |secs: &str| {
        secs.parse::<u64>()
            .map(|t| chatnode::proto::time::Utc::from_unix(t).to_string())
            .unwrap_or_else(|_| secs.to_string())
    };
    Some(match msg.command.as_str() {
        // The welcome burst and LUSERS: their last parameter is already a sentence.
        "001" | "002" | "003" | "251" | "255" | "265" | "266" | "305" | "306" | "381" => {
            last.to_string()
        }
        "004" => format!(
            "{} runs {}; user modes {}, channel modes {} ({} take a parameter)",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5)
        ),
        "005" => {
            let tokens = msg.params.get(1..msg.params.len().saturating_sub(1));
            format!(
                "the server supports {}",
                tokens.unwrap_or_default().join(" ")
            )
        }
        // "2 :operator(s) online", "1 :unknown connection(s)", "3 :channels formed"
        "252" | "253" | "254" => format!("{} {last}", p(1)),
        "221" => format!("your modes: {}", p(1)),
        "375" => "message of the day:".to_string(),
        "372" => last.strip_prefix("- ").unwrap_or(last).to_string(),
        "376" | "315" | "318" | "323" | "366" | "368" | "369" | "219" | "321" | "333" => {
            String::new()
        }
        "422" => "no message of the day".to_string(),
        "301" => format!("{} is away: {last}", p(1)),
        "311" => format!("{} is {}@{} ({last})", p(1), p(2), p(3)),
        "312" => format!("{} is on {} ({last})", p(1), p(2)),
        "313" => format!("{} is an IRC operator", p(1)),
        "317" => format!(
            "{} has been idle {} s, signed on {}",
            p(1),
            p(2),
            date(p(3))
        ),
        "319" => format!("{} is in {last}", p(1)),
        "322" => format!("{} ({} users): {last}", p(1), p(2)),
        "324" => format!(
            "{} has modes {}",
            p(1),
            msg.params.get(2..).unwrap_or_default().join(" ")
        ),
        "329" => format!("{} was created {}", p(1), date(p(2))),
        "331" => format!("{} has no topic", p(1)),
        "352" => format!(
            "{} {} {}@{} {} {}",
            p(1),
            p(5),
            p(2),
            p(3),
            p(6),
            last.split_once(' ').map_or(last, |(_, real)| real)
        ),
        "382" => format!("the server re-reads {}", p(1)),
        _ => return None,
    })
}
