//! Broker edge cases through the in-process harness (`chatnode::broker::harness`): exact
//! lines, no sockets. What crosses the wire is tested end to end in `tests/node`.

mod history;
mod history_tags;
mod ircv3;
mod queries;
mod run_loop;

use chatnode::broker::harness::Harness;
use chatnode::broker::ClientId;

/// What this test thread logged, for tests of what an operator is told. The logger is global
/// to this test binary, but the harness runs the broker (and its offloaded jobs) on the test's
/// own thread, so each test sees its own lines only.
pub mod logs {
    use std::cell::RefCell;

    struct Capture;

    thread_local! {
        static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            let line = format!("{} {}", record.level(), record.args());
            LINES.with(|lines| lines.borrow_mut().push(line));
        }
        fn flush(&self) {}
    }

    /// This thread's lines since the last call (capturing starts at the first call).
    pub fn take() -> Vec<String> {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            log::set_logger(&Capture).expect("no other logger in this test binary");
            log::set_max_level(log::LevelFilter::Debug);
        });
        LINES.with(|lines| std::mem::take(&mut *lines.borrow_mut()))
    }
}

/// Registers `nick` after `CAP LS 302` and `CAP REQ :caps`; discards the burst.
pub fn register_with_caps(h: &mut Harness, nick: &str, caps: &str) -> ClientId {
    let id = h.connect();
    h.send(id, "CAP LS 302");
    h.send(id, &format!("CAP REQ :{caps}"));
    h.send(id, &format!("NICK {nick}"));
    h.send(id, &format!("USER {nick} 0 * :Real {nick}"));
    h.send(id, "CAP END");
    let burst = h.take(id);
    assert!(
        burst.iter().any(|l| l.contains(" ACK ")),
        "{nick}: caps refused: {burst:?}"
    );
    assert!(
        burst.iter().any(|l| l.split(' ').nth(1) == Some("001")),
        "{nick} did not register: {burst:?}"
    );
    id
}

/// Strips the tag section of a line (`@...␠`).
pub fn untagged(line: &str) -> &str {
    match line.strip_prefix('@') {
        Some(rest) => rest.split_once(' ').map_or("", |(_, l)| l),
        None => line,
    }
}

/// The raw value of tag `key` in `line`, if present.
pub fn tag<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let tags = line.strip_prefix('@')?.split_once(' ')?.0;
    tags.split(';').find_map(|t| {
        let (k, v) = t.split_once('=').unwrap_or((t, ""));
        (k == key).then_some(v)
    })
}
