//! What a MODE command changed, told to the channel in as few lines as fit.

use crate::broker::{build_line, Line};

/// Bytes of mode parameters per MODE line sent, so a line stays well under 512.
const PARAM_BYTES_PER_LINE: usize = 300;

/// The changes that took effect, in order: (adding, letter, parameter).
#[derive(Default)]
pub(super) struct Applied {
    changes: Vec<(bool, char, Option<String>)>,
    /// A ban or exception list changed: members' cached ban flags must be recomputed.
    pub touched_bans: bool,
}

impl Applied {
    pub(super) fn push(&mut self, adding: bool, letter: char, arg: Option<String>) {
        self.changes.push((adding, letter, arg));
    }

    /// The MODE lines telling members what changed (`+o-v alice bob`), split so none is too
    /// long; serialized once each.
    pub fn lines(&self, source: &str, channel: &str) -> Vec<Line> {
        let mut lines = Vec::new();
        let mut rest = &self.changes[..];
        while !rest.is_empty() {
            let (mut modes, mut params, mut bytes, mut sign) = (String::new(), Vec::new(), 0, None);
            let mut taken = 0;
            for (adding, letter, arg) in rest {
                let len = arg.as_ref().map_or(0, |a| a.len() + 1);
                if taken > 0 && bytes + len > PARAM_BYTES_PER_LINE {
                    break;
                }
                if sign != Some(*adding) {
                    modes.push(if *adding { '+' } else { '-' });
                    sign = Some(*adding);
                }
                modes.push(*letter);
                params.extend(arg.as_deref());
                bytes += len;
                taken += 1;
            }
            rest = &rest[taken..];
            let mut middle = vec![channel, modes.as_str()];
            middle.extend(params);
            lines.push(build_line(Some(source), "MODE", &middle, None));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: Vec<Line>) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
            .collect()
    }

    #[test]
    fn changes_share_a_line_up_to_the_parameter_bytes_and_no_further() {
        // Each parameter counts its length and its space: two masks of 149 bytes make 300.
        let (a, b) = (
            format!("{}!*@*", "a".repeat(145)),
            format!("{}!*@*", "b".repeat(145)),
        );
        let mut applied = Applied::default();
        applied.push(true, 'b', Some(a.clone()));
        applied.push(true, 'b', Some(b.clone()));
        applied.push(true, 'i', None);
        applied.push(false, 'v', Some("v".into()));
        let lines = texts(applied.lines("op", "#c"));
        assert_eq!(
            lines,
            [
                format!(":op MODE #c +bbi {a} {b}"),
                ":op MODE #c -v v".to_string()
            ],
            "exactly {PARAM_BYTES_PER_LINE} bytes fit; one more does not"
        );
        // A parameter longer than the bound on its own still goes, alone on its line.
        let long = "k".repeat(PARAM_BYTES_PER_LINE + 1);
        let mut applied = Applied::default();
        applied.push(true, 'k', Some(long.clone()));
        applied.push(true, 'i', None);
        let lines = texts(applied.lines("op", "#c"));
        assert_eq!(
            lines,
            [format!(":op MODE #c +k {long}"), ":op MODE #c +i".into()]
        );
    }
}
