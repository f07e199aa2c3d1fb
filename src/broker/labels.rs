//! labeled-response: a labeled command's replies go back as one logical response.
//!
//! While the broker runs a command that carried a `label` tag from a client that enabled
//! `labeled-response`, every line for that client is captured instead of queued
//! ([`Broker::send`] and the fanout loops look at [`Broker::labeled`]). When the command is
//! done the capture is flushed, as the spec orders:
//! - no line: `@label=L :server ACK`;
//! - one line: that line, with the label added to its tags;
//! - one batch of its own type and nothing else (CHATHISTORY's `chathistory` batch): the
//!   label on its `BATCH +ref` line, as the spec allows ("an existing type applicable to the
//!   entire response");
//! - more: `@label=L BATCH +ref labeled-response`, each line tagged `batch=ref`, `BATCH -ref`.
//!
//! A command that parks its client (OPER, whose check runs on the blocking pool) keeps its
//! capture in the client ([`super::state::Client::pending_label`]) until the offloaded work
//! is answered, so the reply that comes later is still labeled, and still in order: the
//! client's later commands wait behind it (see `parking`).
//!
//! Invariant: at most one capture is open at a time (the broker handles one event at a time).

use std::sync::atomic::{AtomicU64, Ordering};

use super::caps::Caps;
use super::forms::add_tag;
use super::{build_line, Broker, ClientId, Line};
use crate::proto::{tags, Message};

/// The longest label the spec allows; a longer one is ignored (the command runs unlabeled).
const MAX_LABEL_LEN: usize = 64;

/// The lines captured for one labeled command.
pub(crate) struct Capture {
    pub id: ClientId,
    /// As the client sent it (escaped): it goes back the same.
    pub label: String,
    pub lines: Vec<Line>,
}

impl Broker {
    /// Opens a capture if `msg` is labeled and its sender enabled labeled-response.
    pub(super) fn begin_label(&mut self, id: ClientId, msg: &Message) {
        let Some(raw) = msg.tags.as_deref() else {
            return;
        };
        let enabled = self
            .clients
            .get(&id)
            .is_some_and(|c| c.caps.has(Caps::LABELED_RESPONSE));
        let label = tags::value(raw, "label").filter(|l| !l.is_empty() && l.len() <= MAX_LABEL_LEN);
        if let (true, Some(label)) = (enabled, label) {
            self.labeled = Some(id);
            self.capture = Some(Capture {
                id,
                label: label.to_string(),
                lines: Vec::new(),
            });
        }
    }

    /// Re-opens the capture a parked command left in client `id`.
    pub(super) fn resume_label(&mut self, id: ClientId) {
        if let Some(capture) = self
            .clients
            .get_mut(&id)
            .and_then(|c| c.pending_label.take())
        {
            self.labeled = Some(id);
            self.capture = Some(capture);
        }
    }

    /// Closes the open capture: keeps it in the client while the client is parked, otherwise
    /// sends the labeled response.
    pub(super) fn end_label(&mut self) {
        self.labeled = None;
        let Some(capture) = self.capture.take() else {
            return;
        };
        if self.parking.is_parked(capture.id) {
            if let Some(client) = self.clients.get_mut(&capture.id) {
                client.pending_label = Some(capture);
            }
            return;
        }
        let lines = labeled_response(&self.config.server_name, capture.label, capture.lines);
        for line in lines {
            self.send(capture.id, line);
        }
    }
}

/// The lines a capture becomes (see the [module docs](self)).
fn labeled_response(server: &str, label: String, lines: Vec<Line>) -> Vec<Line> {
    let label = format!("label={label}");
    match lines.len() {
        0 => vec![add_tag(&build_line(Some(server), "ACK", &[], None), &label)],
        1 => vec![add_tag(&lines[0], &label)],
        _ if is_one_batch(&lines) => {
            let mut lines = lines;
            lines[0] = add_tag(&lines[0], &label);
            lines
        }
        _ => {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let reference = format!("L{}", NEXT.fetch_add(1, Ordering::Relaxed));
            let start = build_line(
                Some(server),
                "BATCH",
                &[&format!("+{reference}"), "labeled-response"],
                None,
            );
            let batch = format!("batch={reference}");
            let mut out = Vec::with_capacity(lines.len() + 2);
            out.push(add_tag(&start, &label));
            // Lines of a batch nested inside (CHATHISTORY's) keep their own batch tag; its
            // BATCH lines join ours, as the batch spec nests them.
            out.extend(lines.iter().map(|l| {
                if in_a_batch(l) {
                    l.clone()
                } else {
                    add_tag(l, &batch)
                }
            }));
            out.push(build_line(
                Some(server),
                "BATCH",
                &[&format!("-{reference}")],
                None,
            ));
            out
        }
    }
}

/// Whether `lines` are exactly one batch: `BATCH +ref ...` first, `BATCH -ref` last, and
/// every line between inside a batch.
fn is_one_batch(lines: &[Line]) -> bool {
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return false;
    };
    let reference = |line: &[u8], sign: u8| -> Option<Vec<u8>> {
        let text = line.strip_suffix(b"\r\n").unwrap_or(line);
        let mut words = text.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let mut word = words.next()?;
        if word.starts_with(b"@") {
            word = words.next()?;
        }
        if word.starts_with(b":") {
            word = words.next()?;
        }
        if word != b"BATCH" {
            return None;
        }
        let r = words.next()?;
        (r.first() == Some(&sign) && r.len() > 1).then(|| r[1..].to_vec())
    };
    let (Some(open), Some(close)) = (reference(first, b'+'), reference(last, b'-')) else {
        return false;
    };
    open == close && lines[1..lines.len() - 1].iter().all(|l| in_a_batch(l))
}

/// Whether `line` already carries a `batch` tag.
fn in_a_batch(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"@") else {
        return false;
    };
    let tags = rest.split(|&b| b == b' ').next().unwrap_or_default();
    tags.split(|&b| b == b';')
        .any(|t| t == b"batch" || t.starts_with(b"batch="))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn text(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
            .collect()
    }

    #[test]
    fn ack_single_and_batch() {
        let ack = labeled_response("s", "a1".into(), vec![]);
        assert_eq!(text(&ack), ["@label=a1 :s ACK"]);
        let one = labeled_response(
            "s",
            "a1".into(),
            vec![Arc::from(&b":s 401 n x :No\r\n"[..])],
        );
        assert_eq!(text(&one), ["@label=a1 :s 401 n x :No"]);
        let two = vec![
            Arc::from(&b":s 1 n\r\n"[..]),
            Arc::from(&b"@time=t :s 2 n\r\n"[..]),
        ];
        let batch = text(&labeled_response("s", "a1".into(), two));
        let reference = batch[0].split(' ').nth(3).unwrap().trim_start_matches('+');
        assert!(batch[0].starts_with("@label=a1 :s BATCH +"), "{batch:?}");
        assert!(batch[0].ends_with(" labeled-response"), "{batch:?}");
        assert_eq!(batch[1], format!("@batch={reference} :s 1 n"));
        assert_eq!(batch[2], format!("@batch={reference};time=t :s 2 n"));
        assert_eq!(batch[3], format!(":s BATCH -{reference}"));
    }

    #[test]
    fn only_a_batch_opened_first_and_closed_last_is_one_batch() {
        let lines = |texts: &[&str]| -> Vec<Line> {
            texts
                .iter()
                .map(|t| Arc::from(format!("{t}\r\n").as_bytes()))
                .collect()
        };
        let inside = "@batch=h1 :a PRIVMSG #c :x";
        assert!(is_one_batch(&lines(&[
            ":s BATCH +h1 chathistory #c",
            inside,
            ":s BATCH -h1"
        ])));
        // Closed where it should open, or without a reference: not a batch.
        assert!(!is_one_batch(&lines(&[
            ":s BATCH -h1",
            inside,
            ":s BATCH -h1"
        ])));
        assert!(!is_one_batch(&lines(&[":s BATCH +", inside, ":s BATCH -"])));
        assert!(!is_one_batch(&lines(&[
            ":s BATCH +h1",
            inside,
            ":s BATCH -h2"
        ])));
    }

    #[test]
    fn one_batch_of_its_own_gets_the_label_on_its_start() {
        let lines: Vec<Line> = vec![
            Arc::from(&b":s BATCH +h1 chathistory #c\r\n"[..]),
            Arc::from(&b"@batch=h1;msgid=m :a PRIVMSG #c :x\r\n"[..]),
            Arc::from(&b":s BATCH -h1\r\n"[..]),
        ];
        let out = text(&labeled_response("s", "z".into(), lines.clone()));
        assert_eq!(
            out,
            [
                "@label=z :s BATCH +h1 chathistory #c",
                "@batch=h1;msgid=m :a PRIVMSG #c :x",
                ":s BATCH -h1"
            ]
        );
        // An empty batch too.
        let empty = vec![lines[0].clone(), lines[2].clone()];
        let out = text(&labeled_response("s", "z".into(), empty));
        assert_eq!(
            out,
            ["@label=z :s BATCH +h1 chathistory #c", ":s BATCH -h1"]
        );
        // A batch and a line after it: the labeled-response batch wraps both.
        let mut more = lines.clone();
        more.push(Arc::from(&b":s 401 n x :No\r\n"[..]));
        let out = text(&labeled_response("s", "z".into(), more));
        assert!(out[0].ends_with(" labeled-response"), "{out:?}");
        // Two batches: wrapped too.
        let mut two = lines.clone();
        two.extend(lines.iter().cloned());
        let out = text(&labeled_response("s", "z".into(), two));
        assert!(out[0].ends_with(" labeled-response"), "{out:?}");
    }

    #[test]
    fn a_nested_batch_keeps_its_own_tags() {
        let lines = vec![
            Arc::from(
                &b":s BATCH +h1 chathistory #c
"[..],
            ),
            Arc::from(
                &b"@batch=h1;msgid=m :a PRIVMSG #c :x
"[..],
            ),
            Arc::from(
                &b":s BATCH -h1
"[..],
            ),
            // A line after the batch: the response is more than that one batch.
            Arc::from(&b":s NOTE x\r\n"[..]),
        ];
        let out = text(&labeled_response("s", "z".into(), lines));
        let reference = out[0].split(' ').nth(3).unwrap().trim_start_matches('+');
        assert_eq!(
            out[1],
            format!("@batch={reference} :s BATCH +h1 chathistory #c")
        );
        assert_eq!(out[2], "@batch=h1;msgid=m :a PRIVMSG #c :x");
        assert_eq!(out[3], format!("@batch={reference} :s BATCH -h1"));
    }
}
