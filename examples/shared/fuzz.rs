//! The fuzzer's engine, shared by `examples/fuzz.rs` (long runs) and `tests/fuzz_slice.rs` (a
//! short fixed-seed slice in CI).
//!
//! Deterministic: everything comes from one seed through SplitMix64, so a seed and a case
//! number replay a failure exactly. Two kinds of case:
//!
//! - **proto**: random bytes (biased towards IRC-looking text, CR, LF, NUL, spaces and colons)
//!   through the node's line framing and parser; every parsed message is serialized again and
//!   the bytes checked.
//! - **broker**: 2 to 4 fake clients in the in-process harness send a random sequence of
//!   commands (registration, channels, messages, modes, kicks, invites, queries, junk, quits,
//!   reconnects, and moves of the harness's clock). After every step: the broker's tables agree
//!   (`Harness::check_invariants`), every line written is at most 512 bytes plus tags, ends in
//!   CRLF and has no CR, LF or NUL inside, and no client got a channel's traffic without being
//!   in that channel.
//!
//! A failing broker case is shrunk (steps removed one at a time while it still fails) and
//! printed as the seed, the case number and the minimal sequence of steps.

#![allow(dead_code)]

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use chatnode::broker::harness::Harness;
use chatnode::broker::{BrokerConfig, Line};
use chatnode::proto::framing::{Frame, LineBuffer};
use chatnode::proto::{message, Message};

/// SplitMix64: small, fast, and good enough to drive a fuzzer.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The seed of case `n` of a run seeded with `seed`: each case can be replayed alone.
pub fn case_seed(seed: u64, n: u64) -> u64 {
    let mut r = Rng::new(seed ^ n.wrapping_mul(0xA076_1D64_78BD_642F));
    r.next()
}

/// One step of a broker case.
#[derive(Clone, Debug)]
pub enum Step {
    /// Client slot `0..4` sends these bytes (one or more lines, maybe unterminated).
    Send(usize, Vec<u8>),
    /// Client slot connects again (a new connection in that slot) after its old one ended.
    Reconnect(usize),
    /// The connection in that slot ends without QUIT.
    HangUp(usize),
    /// The harness's clock moves on (flood control wakes).
    Advance(Duration),
}

const NICKS: &[&str] = &[
    "alice", "Bob", "bob", "c[a]rol", "dave", "x", "ALICE", "n{1}",
];
const CHANNELS: &[&str] = &["#a", "#A", "#b", "#c[1]", "#c{1}", "#long", "&x", "#"];
const MODES: &[&str] = &[
    "+o", "-o", "+v", "-v", "+b", "-b", "+e", "+I", "+i", "-i", "+k", "-k", "+l", "-l", "+m", "+n",
    "-n", "+t", "-t", "+s", "+p", "+ov", "+bbb", "+x", "+kl", "b", "+", "-",
];
const COMMANDS: &[&str] = &[
    "PRIVMSG",
    "NOTICE",
    "JOIN",
    "PART",
    "NICK",
    "USER",
    "MODE",
    "KICK",
    "INVITE",
    "TOPIC",
    "WHO",
    "WHOIS",
    "NAMES",
    "LIST",
    "AWAY",
    "PING",
    "PONG",
    "QUIT",
    "USERHOST",
    "ISON",
    "LUSERS",
    "MOTD",
    "VERSION",
    "CAP",
    "PASS",
    "OPER",
    "STATS",
    "WALLOPS",
    "KILL",
    "WHOWAS",
    "TIME",
    "privmsg",
    "FOO",
    "001",
    "TAGMSG",
    "SETNAME",
    "CHATHISTORY",
    "REHASH",
    "INFO",
    "ADMIN",
    "LINKS",
    "HELP",
    "USERS",
];
/// Subcommands and words some commands take (CAP, CHATHISTORY, STATS, WHO).
const WORDS: &[&str] = &[
    "LS",
    "REQ",
    "END",
    "LIST",
    "302",
    "LATEST",
    "BEFORE",
    "AFTER",
    "TARGETS",
    "BETWEEN",
    "*",
    "timestamp=2026-01-01T00:00:00.000Z",
    "msgid=x",
    "%tnf",
    "o",
    "e",
    "u",
];
/// Capabilities, for CAP REQ.
const CAPS: &[&str] = &[
    "away-notify",
    "batch",
    "cap-notify",
    "draft/chathistory",
    "draft/event-playback",
    "echo-message",
    "extended-join",
    "invite-notify",
    "labeled-response",
    "message-tags",
    "multi-prefix",
    "server-time",
    "setname",
    "userhost-in-names",
    "nope",
];
/// Tag sections a client may send.
const TAGS: &[&str] = &[
    "@tag=1;x ",
    "@label=l1 ",
    "@+draft/reply=abc;+typing=active ",
    "@+x=a\\sb\\: ",
    "@label= ",
];

/// A parameter: a nick, a channel, a list, text, a mask, a number, or junk.
fn param(r: &mut Rng) -> String {
    match r.below(11) {
        10 => r.pick(WORDS).to_string(),
        0 | 1 => r.pick(NICKS).to_string(),
        2 | 3 => r.pick(CHANNELS).to_string(),
        4 => format!("{},{}", r.pick(CHANNELS), r.pick(CHANNELS)),
        5 => format!("{},{}", r.pick(NICKS), r.pick(CHANNELS)),
        6 => r.pick(MODES).to_string(),
        7 => format!("{}!*@*", r.pick(NICKS)),
        8 => r.below(200).to_string(),
        _ => junk_word(r),
    }
}

fn junk_word(r: &mut Rng) -> String {
    let len = 1 + r.below(12);
    (0..len)
        .map(|_| match r.below(12) {
            0 => ':',
            1 => ',',
            2 => '*',
            3 => '\u{e9}',
            4 => '#',
            5 => '@',
            6 => '!',
            _ => (b'a' + r.below(26) as u8) as char,
        })
        .collect()
}

/// One command line, without CRLF. Sometimes very long, to reach the length bounds.
fn command_line(r: &mut Rng) -> String {
    let command = *r.pick(COMMANDS);
    let mut line = String::new();
    if r.chance(5) {
        line.push_str(TAGS[r.below(TAGS.len())]);
    }
    if r.chance(3) {
        line.push_str(":someone ");
    }
    line.push_str(command);
    let n = r.below(5);
    for _ in 0..n {
        line.push(' ');
        line.push_str(&param(r));
    }
    if r.chance(40) {
        line.push_str(" :");
        let words = if r.chance(5) { 120 } else { 1 + r.below(6) };
        for i in 0..words {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(&param(r));
        }
    }
    line
}

/// A random step for a case with `slots` client slots.
fn step(r: &mut Rng, slots: usize) -> Step {
    let slot = r.below(slots);
    match r.below(100) {
        0..=2 => Step::Reconnect(slot),
        3 => Step::HangUp(slot),
        4..=6 => Step::Advance(Duration::from_millis(r.below(3000) as u64)),
        7..=9 => Step::Send(slot, random_bytes(r, 64)),
        10..=14 => {
            let mut bytes = Vec::new();
            for _ in 0..2 + r.below(4) {
                bytes.extend_from_slice(command_line(r).as_bytes());
                bytes.extend_from_slice(b"\r\n");
            }
            Step::Send(slot, bytes)
        }
        _ => {
            let mut bytes = command_line(r).into_bytes();
            bytes.extend_from_slice(if r.chance(10) { b"\n" } else { b"\r\n" });
            Step::Send(slot, bytes)
        }
    }
}

/// Bytes biased towards what a parser finds hard: separators, controls, high bytes, text.
pub fn random_bytes(r: &mut Rng, max: usize) -> Vec<u8> {
    let len = r.below(max + 1);
    (0..len)
        .map(|_| match r.below(16) {
            0 => b'\r',
            1 => b'\n',
            2 => 0,
            3 => b' ',
            4 => b':',
            5 => b'@',
            6 => b';',
            7 => 0xff,
            8 => r.next() as u8,
            _ => b'A' + r.below(58) as u8,
        })
        .collect()
}

/// A broker case: client slots, registrations, then the steps.
pub fn broker_case(seed: u64) -> (usize, Vec<Step>) {
    let mut r = Rng::new(seed);
    let slots = 2 + r.below(3);
    let mut steps = Vec::new();
    for slot in 0..slots {
        if r.chance(85) {
            let nick = r.pick(NICKS);
            // Some register with capabilities (labels, echo, tags, batches...).
            let caps = if r.chance(40) {
                let wanted: Vec<&str> = (0..1 + r.below(5)).map(|_| *r.pick(CAPS)).collect();
                format!("CAP LS 302\r\nCAP REQ :{}\r\n", wanted.join(" "))
            } else {
                String::new()
            };
            let end = if caps.is_empty() { "" } else { "CAP END\r\n" };
            let line = format!("{caps}NICK {nick}\r\nUSER u{slot} 0 * :real\r\n{end}");
            steps.push(Step::Send(slot, line.into_bytes()));
        }
        if r.chance(70) {
            let line = format!("JOIN {}\r\n", r.pick(CHANNELS));
            steps.push(Step::Send(slot, line.into_bytes()));
        }
    }
    for _ in 0..4 + r.below(24) {
        steps.push(step(&mut r, slots));
    }
    (slots, steps)
}

/// The shape of a command line: its command and how many parameters it has.
pub fn shape_of(bytes: &[u8], shapes: &mut HashSet<(&'static str, usize)>) {
    for line in bytes.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Ok(m) = Message::parse(line) {
            // Commands the generator does not know (from random bytes) count as one name.
            let command = COMMANDS
                .iter()
                .find(|c| c.eq_ignore_ascii_case(&m.command))
                .map_or("<other>", |c| *c);
            shapes.insert((command, m.params.len()));
        }
    }
}

/// Checks one line the node wrote to a client.
fn check_line(line: &Line) -> Result<(), String> {
    let bytes: &[u8] = line;
    let Some(body) = bytes.strip_suffix(b"\r\n") else {
        return Err(format!(
            "line does not end in CRLF: {:?}",
            String::from_utf8_lossy(bytes)
        ));
    };
    if body.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(format!(
            "CR, LF or NUL inside a line: {:?}",
            String::from_utf8_lossy(bytes)
        ));
    }
    let tags = if body.first() == Some(&b'@') {
        body.iter()
            .position(|b| *b == b' ')
            .map_or(body.len(), |p| p + 1)
    } else {
        0
    };
    if bytes.len() - tags > 512 {
        return Err(format!(
            "line of {} bytes (without tags): {:?}",
            bytes.len() - tags,
            String::from_utf8_lossy(bytes)
        ));
    }
    Ok(())
}

/// Channel traffic a client may only get as a member: `(command, channel)` if `line` is such.
/// (INVITE names a channel its target is not in, and numerics are replies: neither counts.)
///
/// A scan of the line's first words, as `Message::parse` splits them (tags, source, command,
/// first parameter, a trailing one whole), without allocating: it runs on every line the node
/// writes.
fn channel_traffic(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = line.strip_suffix(b"\r\n")?;
    let (mut word, mut rest) = split_word(body);
    if word.first() == Some(&b'@') {
        (word, rest) = split_word(rest);
    }
    if word.first() == Some(&b':') {
        (word, rest) = split_word(rest);
    }
    let command = word;
    let counted = matches!(
        command,
        b"PRIVMSG" | b"NOTICE" | b"JOIN" | b"PART" | b"KICK" | b"TOPIC" | b"MODE"
    );
    if !counted {
        return None;
    }
    let rest = trim_spaces(rest);
    let target = match rest.strip_prefix(b":") {
        Some(trailing) => trailing,
        None => split_word(rest).0,
    };
    matches!(target.first(), Some(b'#' | b'&')).then_some((command, target))
}

fn trim_spaces(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| *b != b' ').unwrap_or(s.len());
    &s[start..]
}

/// The first space-separated word of `s` and what follows it.
fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    let s = trim_spaces(s);
    match s.iter().position(|b| *b == b' ') {
        Some(end) => (&s[..end], &s[end + 1..]),
        None => (s, &[]),
    }
}

/// Runs `steps` against a fresh harness, checking every invariant after every step.
pub fn run_broker_case(slots: usize, steps: &[Step]) -> Result<(), String> {
    let mut h = Harness::new(BrokerConfig::default());
    let mut ids: Vec<u64> = (0..slots).map(|_| h.connect()).collect();
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Send(slot, bytes) => {
                // One line at a time, checked after each: then "a member before or after"
                // is exact for every line the node writes.
                for chunk in bytes.split_inclusive(|b| *b == b'\n') {
                    let id = ids[*slot];
                    if h.is_closed(id) {
                        break;
                    }
                    checked(&mut h, n, |h| h.send_raw(id, chunk))?;
                }
            }
            Step::Reconnect(slot) => {
                if h.is_closed(ids[*slot]) {
                    ids[*slot] = h.connect();
                }
            }
            Step::HangUp(slot) => {
                let id = ids[*slot];
                if !h.is_closed(id) {
                    checked(&mut h, n, |h| h.hang_up(id, "reset"))?;
                }
            }
            Step::Advance(by) => checked(&mut h, n, |h| h.advance(*by))?,
        }
    }
    Ok(())
}

/// Runs one action on the harness, then checks every invariant.
///
/// Channel traffic is checked line by line in the order each client got it: a client may get
/// a channel's line while it is a member, and it is a member from its own `JOIN` line to its own
/// `PART` or `KICK` line (or before and after the action, as the broker's tables say). One
/// action can run several lines of one client: a `HangUp` or an `Advance` serves the lines flood
/// control held back, so a client can join and quit within one action (case 39,758,364 of seed 1
/// did), and only the order of its own lines tells when it was in.
fn checked(h: &mut Harness, n: usize, action: impl FnOnce(&mut Harness)) -> Result<(), String> {
    let live = h.live_clients();
    // Who was in which channel before (a PART or KICK reaches the one leaving), under which nick.
    let before: Vec<(u64, Vec<String>, Option<String>)> = live
        .iter()
        .map(|&id| (id, h.channels_of(id), h.nick_of(id)))
        .collect();
    action(h);
    h.check_invariants().map_err(|e| format!("step {n}: {e}"))?;
    for (id, was_in, nick) in before {
        let lines = h.take_raw(id);
        let mut member = Membership {
            channels: was_in,
            nicks: nick.into_iter().chain(h.nick_of(id)).collect(),
        };
        for line in lines {
            check_line(&line).map_err(|e| format!("step {n}, client {id}: {e}"))?;
            let Some((command, chan)) = channel_traffic(&line) else {
                member.follow_nick(&line);
                continue;
            };
            let chan = String::from_utf8_lossy(chan).into_owned();
            let own = member.own_line(command, &line);
            if own.joins {
                member.channels.push(chan.clone());
            }
            if !own.echo && !member.is_in(&chan) && !h.is_member(id, &chan) {
                return Err(format!(
                    "step {n}: client {id} got {} for {chan} without being in it: {:?}",
                    String::from_utf8_lossy(command),
                    String::from_utf8_lossy(&line)
                ));
            }
            if own.leaves {
                member.channels.retain(|c| !eq_fold(c, &chan));
            }
        }
    }
    Ok(())
}

/// What one channel line says about its recipient.
#[derive(Default)]
struct OwnLine {
    joins: bool,
    leaves: bool,
    echo: bool,
}

/// One client's channels and nicks while its lines of one action are walked in order.
struct Membership {
    channels: Vec<String>,
    /// Its nick before and after the action, and every nick it took in between.
    nicks: Vec<String>,
}

impl Membership {
    fn is_in(&self, chan: &str) -> bool {
        self.channels.iter().any(|c| eq_fold(c, chan))
    }

    fn is_me(&self, nick: &str) -> bool {
        self.nicks.iter().any(|n| eq_fold(n, nick))
    }

    /// Whether this channel line is the client's own JOIN, its own PART or KICK, or the echo of
    /// its own message (`echo-message`: a client may send to a `-n` channel it is not in, and
    /// then gets its own line back; case 67,993,332 of seed 1).
    fn own_line(&self, command: &[u8], line: &[u8]) -> OwnLine {
        let mut own = OwnLine::default();
        let Ok(m) = Message::parse(line.strip_suffix(b"\r\n").unwrap_or(line)) else {
            return own;
        };
        let source = m
            .source
            .as_deref()
            .map(|s| s.split('!').next().unwrap_or(s));
        let by_me = source.is_some_and(|s| self.is_me(s));
        match command {
            b"JOIN" => own.joins = by_me,
            b"PART" => own.leaves = by_me,
            b"KICK" => own.leaves = m.params.get(1).is_some_and(|k| self.is_me(k)),
            b"PRIVMSG" | b"NOTICE" => own.echo = by_me,
            _ => {}
        }
        own
    }

    /// A NICK line about this client adds its new nick.
    fn follow_nick(&mut self, line: &[u8]) {
        // Most lines are numerics: parse only what can be a NICK line.
        if !line.windows(6).any(|w| w == b" NICK ") {
            return;
        }
        let Ok(m) = Message::parse(line.strip_suffix(b"\r\n").unwrap_or(line)) else {
            return;
        };
        let source = m
            .source
            .as_deref()
            .map(|s| s.split('!').next().unwrap_or(s));
        if m.command == "NICK" && source.is_some_and(|s| self.is_me(s)) {
            if let Some(new) = m.params.first() {
                self.nicks.push(new.clone());
            }
        }
    }
}

fn eq_fold(a: &str, b: &str) -> bool {
    chatnode::proto::casemap::eq_casefold(a, b)
}

/// Runs a proto case: random bytes through framing and parsing; each parsed message is
/// serialized again and checked.
pub fn run_proto_case(seed: u64) -> Result<(), String> {
    let mut r = Rng::new(seed);
    let bytes = if r.chance(50) {
        random_bytes(&mut r, 700)
    } else {
        let mut v = Vec::new();
        for _ in 0..1 + r.below(4) {
            v.extend_from_slice(command_line(&mut r).as_bytes());
            v.extend_from_slice(if r.chance(80) { b"\r\n" } else { b"\n" });
        }
        v
    };
    let mut framing = LineBuffer::new();
    let mut rest: &[u8] = &bytes;
    while !rest.is_empty() {
        let chunk = (1 + r.below(64)).min(rest.len());
        let spare = framing.spare();
        let n = chunk.min(spare.len());
        spare[..n].copy_from_slice(&rest[..n]);
        framing.filled(n);
        rest = &rest[n..];
        while let Some(frame) = framing.next_frame() {
            let Frame::Line(line) = frame else { continue };
            if let Ok(m) = Message::parse(line) {
                let middle: Vec<&str> = m.params.iter().map(String::as_str).collect();
                let (trailing, middle) = match middle.split_last() {
                    Some((last, init)) => (Some(*last), init.to_vec()),
                    None => (None, Vec::new()),
                };
                let mut out = Vec::new();
                message::write_line(&mut out, m.source.as_deref(), &m.command, &middle, trailing);
                let body = out
                    .strip_suffix(b"\r\n")
                    .ok_or("serialized line without CRLF")?;
                if body.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                    return Err(format!("serializer let CR/LF/NUL through: {out:?}"));
                }
            }
        }
    }
    Ok(())
}

/// What a run found.
#[derive(Default)]
pub struct Report {
    pub cases: u64,
    pub broker_cases: u64,
    pub proto_cases: u64,
    /// Time spent in each kind (wall clock, summed over threads).
    pub broker_time: Duration,
    pub proto_time: Duration,
    pub shapes: HashSet<(&'static str, usize)>,
    /// The first failure: case number, its seed, and the minimal steps (or proto bytes' seed).
    pub failure: Option<String>,
}

/// Runs cases `from..to` of the run seeded with `seed`. Every third case is a broker case.
/// Stops at the first failure, shrunk.
pub fn run(seed: u64, from: u64, to: u64, report: &mut Report) {
    for n in from..to {
        let s = case_seed(seed, n);
        report.cases += 1;
        let started = std::time::Instant::now();
        if n % 3 == 0 {
            report.broker_cases += 1;
            let (slots, steps) = broker_case(s);
            for step in &steps {
                if let Step::Send(_, bytes) = step {
                    shape_of(bytes, &mut report.shapes);
                }
            }
            if let Err(e) = catch(|| run_broker_case(slots, &steps)) {
                let minimal = shrink(slots, steps);
                report.failure = Some(format!(
                    "broker case {n} (seed {seed}, case seed {s:#x}) failed: {e}\nminimal steps \
                     ({slots} client slots):\n{}",
                    describe(&minimal)
                ));
                return;
            }
            report.broker_time += started.elapsed();
        } else {
            report.proto_cases += 1;
            if let Err(e) = catch(|| run_proto_case(s)) {
                report.failure = Some(format!(
                    "proto case {n} (seed {seed}, case seed {s:#x}) failed: {e}"
                ));
                return;
            }
            report.proto_time += started.elapsed();
        }
    }
}

/// A panic is a failure like any other.
fn catch(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(e) => Err(format!(
            "panic: {}",
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    }
}

/// Removes steps one at a time while the case still fails.
fn shrink(slots: usize, mut steps: Vec<Step>) -> Vec<Step> {
    let mut i = 0;
    while i < steps.len() {
        let mut fewer = steps.clone();
        fewer.remove(i);
        if catch(|| run_broker_case(slots, &fewer)).is_err() {
            steps = fewer;
        } else {
            i += 1;
        }
    }
    steps
}

fn describe(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| match s {
            Step::Send(slot, bytes) => {
                format!("  client {slot} sends {:?}", String::from_utf8_lossy(bytes))
            }
            other => format!("  {other:?}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
