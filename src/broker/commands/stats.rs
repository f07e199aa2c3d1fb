//! STATS: the node's own figures, for IRC operators.
//!
//! - `STATS t`: tasks by kind (spawned, alive, polls, busy time, slow polls, slowest poll).
//! - `STATS e`: the executor (threads, blocking pool) and the broker (clients, channels, inbox).
//! - `STATS l`: the NATS link (`--link`): connection, counters, nodes and their users.
//!
//! Each line is a 249 RPL_STATSDEBUG; 219 RPL_ENDOFSTATS ends the report.

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn stats(b: &mut Broker, id: ClientId, msg: &Message) {
    let query = msg.params[0].chars().next().unwrap_or('?');
    let mut lines = Vec::new();
    if query == 'e' {
        lines.push(format!(
            "broker: {} clients ({} registered), {} channels, {} clients waiting for a turn",
            b.clients.len(),
            b.registered_count(),
            b.channels.len(),
            b.ready.len() + b.inbox.rx.len()
        ));
        if let Some(history) = &b.config.hooks.history {
            let (len, cap) = history.sink.queue_len();
            lines.push(history.sink.counters().summary(len, cap));
        }
    }
    if query == 'l' {
        lines.extend(b.link_stats());
    }
    if let Some(stats) = b.config.hooks.stats.clone() {
        lines.extend(stats(query));
    }
    for line in lines {
        b.reply(id, numeric::RPL_STATSDEBUG, &[&line]);
    }
    b.reply(id, numeric::RPL_ENDOFSTATS, &[&query.to_string()]);
}
