//! REHASH (IRC operators) and SIGHUP: read the config file and the MOTD again, and take what a
//! running node can take (password, MOTD, operators, flood control and the exempt ranges, the
//! limits marked live in the settings table) without dropping anyone.
//!
//! Reading files may block, so the re-read runs on the blocking pool ([`Hooks::reload`] through
//! [`Hooks::offload`]), never on an executor thread; the broker gets the result as
//! [`Event::Rehashed`] and swaps in the new parts between two events, so no command ever sees
//! half of each. The operator who asked is parked meanwhile: their later commands are answered
//! after the REHASH's replies. A file that does not parse (or a MOTD that cannot be read)
//! changes nothing: the running configuration stays, and the operator and the log are told why.
//! One re-read runs at a time; a second REHASH meanwhile gets 263 RPL_TRYAGAIN.
//!
//! Replies: on success 382 RPL_REHASHING `<file> :Rehashing`, then a NOTICE listing what
//! changed; on refusal only the NOTICE with the reason.
//!
//! [`Hooks::reload`]: crate::broker::Hooks::reload
//! [`Hooks::offload`]: crate::broker::Hooks::offload

use std::sync::Arc;

use crate::broker::{Broker, ClientId, Event, FloodConfig, Reloaded};
use crate::proto::{numeric, Message};

pub(super) fn rehash(b: &mut Broker, id: ClientId, _msg: &Message) {
    start(b, Some(id));
}

/// Starts a re-read for operator `by`, or for SIGHUP when `by` is `None`.
pub(in crate::broker) fn start(b: &mut Broker, by: Option<ClientId>) {
    let who = by.map_or("SIGHUP".to_string(), |id| {
        format!("REHASH from {}", b.nick_of(id))
    });
    let Some(reload) = b.config.hooks.reload.clone() else {
        log::warn!("{who}: this node has no configuration to re-read");
        tell(b, by, "REHASH: this node has no configuration to re-read");
        return;
    };
    if b.rehashing {
        log::info!("{who}: a re-read is already running");
        if let Some(id) = by {
            b.reply(id, numeric::RPL_TRYAGAIN, &["REHASH"]);
        }
        return;
    }
    b.rehashing = true;
    log::info!("{who}: re-reading the configuration");
    let job = move || Event::Rehashed {
        by,
        result: reload().map(Box::new),
    };
    match b.config.hooks.offload.clone() {
        Some(offload) => {
            if let Some(id) = by {
                b.park(id); // its later commands are answered after the REHASH's replies
            }
            offload(Box::new(job));
        }
        None => {
            // No blocking pool (a broker driven by hand, in unit tests): read inline.
            if let Event::Rehashed { by, result } = job() {
                finished(b, by, result);
            }
        }
    }
}

/// The re-read is done: take the new parts, or keep the old ones, and say which.
pub(in crate::broker) fn finished(
    b: &mut Broker,
    by: Option<ClientId>,
    result: Result<Box<Reloaded>, String>,
) {
    b.rehashing = false;
    if let Some(id) = by {
        b.unpark(id);
    }
    let who = if by.is_some() { "REHASH" } else { "SIGHUP" };
    let new = match result {
        Ok(new) => new,
        Err(e) => {
            log::error!("{who}: the new configuration was refused, the running one stays: {e}");
            tell(
                b,
                by,
                &format!("REHASH: refused, the running configuration stays: {e}"),
            );
            return;
        }
    };
    let summary = apply(b, *new);
    log::info!("{who}: {summary}");
    if let Some(id) = by.filter(|id| b.clients.contains_key(id)) {
        // One parameter: a path with spaces must not split the line's parameters.
        let source = summary.source.replace(' ', "_");
        b.reply(id, numeric::RPL_REHASHING, &[&source]);
    }
    tell(b, by, &format!("REHASH: {summary}"));
}

/// What a REHASH changed, for the NOTICE and the log.
struct Summary {
    source: String,
    changes: Vec<String>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.changes.is_empty() {
            write!(f, "{}: nothing changed", self.source)
        } else {
            write!(f, "{}: {}", self.source, self.changes.join("; "))
        }
    }
}

/// Swaps the new parts into the broker's configuration; the MOTD's text and the operators
/// are compared here, where their running values are.
fn apply(b: &mut Broker, new: Reloaded) -> Summary {
    let mut changes = new.changes;
    let old = &b.config;
    if old.motd != new.motd {
        changes.push(match &new.motd {
            Some(lines) => format!("MOTD text: {} lines, applied", lines.len()),
            None => "MOTD: none now, applied".to_string(),
        });
    }
    if old.operators != new.operators {
        let names: Vec<&str> = new.operators.iter().map(|o| o.name.as_str()).collect();
        changes.push(format!(
            "operators: now {}, applied (operators already opered stay so)",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    let mut config = (**old).clone();
    config.password = new.password;
    config.motd = new.motd;
    config.operators = new.operators;
    let flood_changed = new.flood.is_some_and(|flood| {
        let changed = !same_flood(&config.flood, &flood);
        config.flood = flood;
        changed
    });
    b.config = Arc::new(config);
    if flood_changed {
        apply_flood(b);
    }
    Summary {
        source: new.source,
        changes,
    }
}

fn same_flood(a: &FloodConfig, b: &FloodConfig) -> bool {
    a.rate == b.rate
        && a.burst == b.burst
        && a.exempt_opers == b.exempt_opers
        && a.exempt == b.exempt
}

/// New flood settings: every client's exemption is decided again from its address, and every
/// client held back is weighed again under the new settings (its bucket keeps what it spent).
fn apply_flood(b: &mut Broker) {
    let exempt = &b.config.flood.exempt;
    for client in b.clients.values_mut() {
        client.flood_exempt = crate::cidr::Cidr::any_contains(exempt, client.peer.ip());
    }
    b.release_throttled();
}

/// A NOTICE from the server to operator `by` (nothing for SIGHUP: the log has it).
fn tell(b: &mut Broker, by: Option<ClientId>, text: &str) {
    let Some(id) = by else {
        return;
    };
    if !b.clients.contains_key(&id) {
        return;
    }
    let nick = b.nick_of(id).to_string();
    let line = b.line_from_server("NOTICE", &[&nick], Some(text));
    b.send(id, line);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::broker::harness::Harness;
    use crate::broker::{BrokerConfig, Event, Operator, Reloaded};

    /// The hash of `pw`, made once.
    fn hash() -> String {
        static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        HASH.get_or_init(|| crate::auth::hash_password("pw", b"0123456789abcdef").unwrap())
            .clone()
    }

    /// A harness whose node has one operator, `root` (password `pw`), and whose
    /// re-reads answer with what `next` returns, counting them.
    fn node(
        next: impl Fn() -> Result<Reloaded, String> + Send + Sync + 'static,
    ) -> (Harness, Arc<AtomicUsize>) {
        let reads = Arc::new(AtomicUsize::new(0));
        let counter = reads.clone();
        let mut config = BrokerConfig {
            operators: vec![Operator {
                name: "root".into(),
                password_hash: hash(),
            }],
            ..BrokerConfig::default()
        };
        config.hooks.reload = Some(Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            next()
        }));
        (Harness::new(config), reads)
    }

    fn oper(h: &mut Harness, nick: &str) -> u64 {
        let id = h.register(nick);
        h.send(id, "OPER root pw");
        h.run_offloaded();
        let lines = h.take(id);
        assert!(lines.iter().any(|l| l.contains(" 381 ")), "{lines:?}");
        id
    }

    fn new_motd(lines: &[&str]) -> Reloaded {
        Reloaded {
            motd: Some(lines.iter().map(|l| l.to_string()).collect()),
            operators: vec![Operator {
                name: "root".into(),
                password_hash: hash(),
            }],
            source: "/etc/chatnode.toml".into(),
            ..Reloaded::default()
        }
    }

    #[test]
    fn only_operators_may_rehash() {
        let (mut h, reads) = node(|| Ok(new_motd(&["hi"])));
        let user = h.register("user");
        h.send(user, "REHASH");
        assert_eq!(
            h.take(user),
            [":chatnode.local 481 user :Permission Denied- You're not an IRC operator"]
        );
        let unregistered = h.connect();
        h.send(unregistered, "REHASH");
        assert_eq!(
            h.take(unregistered),
            [":chatnode.local 451 * :You have not registered"]
        );
        assert_eq!(h.offloaded(), 0);
        assert_eq!(reads.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn rehash_runs_offloaded_then_answers_382_and_what_changed_in_command_order() {
        let (mut h, reads) = node(|| Ok(new_motd(&["new text"])));
        let op = oper(&mut h, "op");
        h.send(op, "REHASH");
        h.send(op, "PING :after");
        // Nothing is read on the broker: the job waits on the (fake) blocking pool, and the
        // operator's PING waits behind it.
        assert_eq!(reads.load(Ordering::SeqCst), 0);
        assert_eq!(h.offloaded(), 1);
        assert!(h.take(op).is_empty());
        assert!(h.is_parked(op));
        h.run_offloaded();
        assert_eq!(
            h.take(op),
            [
                ":chatnode.local 382 op /etc/chatnode.toml :Rehashing",
                ":chatnode.local NOTICE op :REHASH: /etc/chatnode.toml: MOTD text: 1 lines, applied",
                ":chatnode.local PONG chatnode.local :after",
            ]
        );
        let other = h.register("other"); // its welcome burst carries the new MOTD
        h.send(other, "MOTD");
        let motd = h.take(other);
        assert!(
            motd.contains(&":chatnode.local 372 other :- new text".to_string()),
            "{motd:?}"
        );
    }

    #[test]
    fn a_refused_file_keeps_the_running_configuration() {
        let (mut h, _) =
            node(|| Err("config file x.toml: line 3: threads: '0': must be ...".into()));
        let op = oper(&mut h, "op");
        h.send(op, "REHASH");
        h.run_offloaded();
        assert_eq!(
            h.take(op),
            [
                ":chatnode.local NOTICE op :REHASH: refused, the running configuration stays: \
              config file x.toml: line 3: threads: '0': must be ..."
            ]
        );
        // The old operators still hold: a second client can still OPER.
        oper(&mut h, "op2");
        h.send(op, "MOTD");
        assert_eq!(h.take(op), [":chatnode.local 422 op :MOTD File is missing"]);
    }

    #[test]
    fn one_rehash_at_a_time_and_sighup_answers_in_the_log() {
        let (mut h, reads) = node(|| Ok(new_motd(&["x"])));
        let op = oper(&mut h, "op");
        let op2 = oper(&mut h, "op2");
        h.control(Event::Rehash); // SIGHUP
        h.send(op2, "REHASH");
        assert_eq!(
            h.take(op2),
            [":chatnode.local 263 op2 REHASH :Please wait a while and try again."]
        );
        h.run_offloaded();
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert!(h.take(op).is_empty(), "SIGHUP tells no client");
        h.send(op2, "REHASH");
        h.run_offloaded();
        assert_eq!(
            h.take(op2),
            [
                ":chatnode.local 382 op2 /etc/chatnode.toml :Rehashing",
                ":chatnode.local NOTICE op2 :REHASH: /etc/chatnode.toml: nothing changed",
            ]
        );
    }

    #[test]
    fn new_operators_and_password_apply() {
        let (mut h, _) = node(|| {
            Ok(Reloaded {
                password: Some("sesame".into()),
                operators: vec![Operator {
                    name: "admin".into(),
                    password_hash: hash(),
                }],
                changes: vec!["password: applied".into()],
                source: "node.toml".into(),
                ..Reloaded::default()
            })
        });
        let op = oper(&mut h, "op");
        h.send(op, "REHASH");
        h.run_offloaded();
        assert_eq!(
            h.take(op),
            [
                ":chatnode.local 382 op node.toml :Rehashing",
                ":chatnode.local NOTICE op :REHASH: node.toml: password: applied; operators: now \
                 admin, applied (operators already opered stay so)",
            ]
        );
        let late = h.connect();
        h.send(late, "NICK late");
        h.send(late, "USER late 0 * :late");
        assert!(
            h.take(late).iter().any(|l| l.contains(" 464 ")),
            "the new password is required"
        );
        let other = h.connect();
        for line in ["PASS sesame", "NICK other", "USER other 0 * :other"] {
            h.send(other, line);
        }
        assert!(h.take(other).iter().any(|l| l.contains(" 001 ")));
        h.send(other, "OPER root pw");
        h.run_offloaded();
        assert!(h.take(other).iter().any(|l| l.contains(" 491 ")));
        h.send(other, "OPER admin pw");
        h.run_offloaded();
        assert!(h.take(other).iter().any(|l| l.contains(" 381 ")));
    }

    /// `flooder` and `reader` join #c; `flooder` queues `lines` lines to it at once and the
    /// broker runs until it has nothing left to do (flood control holds the rest back).
    fn flood_c(h: &mut Harness, flooder: u64, reader: u64, lines: usize) {
        h.send(flooder, "JOIN #c");
        h.send(reader, "JOIN #c");
        h.take(reader);
        for i in 0..lines {
            h.queue(flooder, &format!("PRIVMSG #c :line {i}"));
        }
        h.settle();
    }

    /// alice floods #c until flood control holds her back; a REHASH then brings `flood`. She
    /// must be let go at once; returns how many of her held lines bob got then.
    fn held_alice_after_rehash_to(flood: crate::broker::FloodConfig) -> usize {
        let (mut h, _) = node(move || {
            Ok(Reloaded {
                flood: Some(flood.clone()),
                source: "node.toml".into(),
                ..Reloaded::default()
            })
        });
        let admin = oper(&mut h, "admin");
        let alice = h.register("alice");
        let bob = h.register("bob");
        flood_c(&mut h, alice, bob, 40);
        assert!(h.is_parked(alice));
        h.take(bob);
        h.send(admin, "REHASH");
        h.run_offloaded();
        assert!(!h.is_parked(alice), "let go at once");
        h.take(bob)
            .iter()
            .filter(|l| l.contains(" PRIVMSG "))
            .count()
    }

    #[test]
    fn a_new_exempt_range_lets_a_held_client_go_at_once() {
        // Only the exempt ranges change: alice's address is in the new one.
        let flood = crate::broker::FloodConfig {
            exempt: vec!["127.0.0.0/8".parse().unwrap()],
            ..crate::broker::FloodConfig::default()
        };
        assert_eq!(
            held_alice_after_rehash_to(flood),
            40 - 22,
            "the rest of her lines"
        );
    }

    #[test]
    fn a_bigger_burst_lets_a_held_client_go_at_once() {
        // Only the burst changes: that is a change too, and the bigger bucket pays at once.
        let flood = crate::broker::FloodConfig {
            burst: 100,
            ..crate::broker::FloodConfig::default()
        };
        assert!(held_alice_after_rehash_to(flood) > 0, "held lines went on");
    }

    #[test]
    fn turning_the_opers_exemption_back_on_lets_a_held_oper_go_at_once() {
        use crate::broker::FloodConfig;
        use std::sync::Mutex;
        let next: Arc<Mutex<Vec<FloodConfig>>> = Arc::new(Mutex::new(vec![
            FloodConfig::default(),
            FloodConfig {
                exempt_opers: false,
                ..FloodConfig::default()
            },
        ]));
        let (mut h, _) = node(move || {
            Ok(Reloaded {
                flood: next.lock().unwrap().pop(),
                source: "node.toml".into(),
                ..Reloaded::default()
            })
        });
        let admin = oper(&mut h, "admin");
        let op = oper(&mut h, "op");
        let bob = h.register("bob");
        h.send(admin, "REHASH");
        h.run_offloaded();
        flood_c(&mut h, op, bob, 40);
        assert!(h.is_parked(op), "opers not exempt: held back");
        // Only the opers' exemption changes: that is a change too.
        h.send(admin, "REHASH");
        h.run_offloaded();
        assert!(!h.is_parked(op), "exempt again: let go at once");
        let privmsgs = h
            .take(bob)
            .iter()
            .filter(|l| l.contains(" PRIVMSG "))
            .count();
        assert_eq!(privmsgs, 40);
    }

    #[test]
    fn new_flood_settings_apply_to_clients_already_connected_and_held_back() {
        use crate::broker::FloodConfig;
        use std::sync::Mutex;
        // Each re-read returns the next flood settings of this list.
        let next: Arc<Mutex<Vec<FloodConfig>>> = Arc::new(Mutex::new(vec![
            FloodConfig {
                exempt: vec!["127.0.0.0/8".parse().unwrap()],
                ..FloodConfig::default()
            },
            FloodConfig::off(),
        ]));
        let (mut h, _) = node(move || {
            Ok(Reloaded {
                flood: next.lock().unwrap().pop(),
                source: "node.toml".into(),
                ..Reloaded::default()
            })
        });
        let op = oper(&mut h, "op");
        let alice = h.register("alice");
        let bob = h.register("bob");
        flood_c(&mut h, alice, bob, 60);
        let privmsgs =
            |lines: Vec<String>| lines.iter().filter(|l| l.contains(" PRIVMSG ")).count();
        assert_eq!(
            privmsgs(h.take(bob)),
            22,
            "NICK, USER and JOIN took 3 of 25"
        );
        assert!(h.is_parked(alice));
        // Flood control off: alice's held lines go at once, with no clock moving.
        h.send(op, "REHASH");
        h.run_offloaded();
        assert_eq!(privmsgs(h.take(bob)), 38);
        assert!(!h.is_parked(alice));
        assert_eq!(h.next_wake(), None);
        // Back on, with her range exempt: her next 100 lines go at once too.
        h.send(op, "REHASH");
        h.run_offloaded();
        for i in 0..100 {
            h.queue(alice, &format!("PRIVMSG #c :more {i}"));
        }
        h.settle();
        assert_eq!(privmsgs(h.take(bob)), 100);
        assert!(!h.is_parked(alice));
    }
}
