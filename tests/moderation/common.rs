//! Helpers shared by the moderation tests.

pub use chatnode::broker::harness::Harness;
pub use chatnode::broker::{BrokerConfig, ClientId, FloodConfig, Operator};

/// A harness with the default configuration, but flood control off: these tests send many
/// commands while the harness's clock stands still (flood control has its own tests).
pub fn harness() -> Harness {
    Harness::new(BrokerConfig {
        flood: FloodConfig::off(),
        ..BrokerConfig::default()
    })
}

/// A harness with one operator, `admin` / `pw`.
pub fn harness_with_operator() -> Harness {
    let hash = chatnode::auth::hash_password("pw", b"0123456789abcdef").unwrap();
    Harness::new(BrokerConfig {
        operators: vec![Operator {
            name: "admin".into(),
            password_hash: hash,
        }],
        flood: FloodConfig::off(),
        ..BrokerConfig::default()
    })
}

/// Makes `id` an IRC operator (the harness runs the offloaded password check).
pub fn make_oper(h: &mut Harness, id: ClientId) {
    h.send(id, "OPER admin pw");
    h.run_offloaded();
    let lines = h.take(id);
    assert!(code_in(&lines, "381"), "{lines:?}");
}

/// `op` creates `chan` (so is its operator), then `others` join; everyone's lines are cleared.
pub fn channel(h: &mut Harness, chan: &str, op: ClientId, others: &[ClientId]) {
    h.send(op, &format!("JOIN {chan}"));
    for &other in others {
        h.send(other, &format!("JOIN {chan}"));
    }
    h.take(op);
    for &other in others {
        h.take(other);
    }
}

/// The command or numeric of a line (`:src CMD ...`).
pub fn command(line: &str) -> &str {
    line.split(' ').nth(1).unwrap_or("")
}

/// The commands and numerics of `lines`, in order.
pub fn codes(lines: &[String]) -> Vec<&str> {
    lines.iter().map(|l| command(l)).collect()
}

/// Whether any line of `lines` has command or numeric `code`.
pub fn code_in(lines: &[String], code: &str) -> bool {
    lines.iter().any(|l| command(l) == code)
}

/// The one line with `code`.
///
/// # Panics
/// If there is none or more than one.
pub fn only<'a>(lines: &'a [String], code: &str) -> &'a str {
    let found: Vec<&String> = lines.iter().filter(|l| command(l) == code).collect();
    assert_eq!(found.len(), 1, "want exactly one {code} in {lines:?}");
    found[0]
}

/// The nicks (with prefixes) of the 353 lines in `lines`.
pub fn names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| command(l) == "353")
        .flat_map(|l| {
            l.rsplit(" :")
                .next()
                .unwrap()
                .split(' ')
                .map(str::to_string)
        })
        .collect()
}
