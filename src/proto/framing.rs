//! Sans-IO line framing: bytes in, complete lines (or "too long") out.
//!
//! The reader task owns one [`LineBuffer`] per connection: it reads into
//! [`LineBuffer::spare`], reports the count with [`LineBuffer::filled`], then
//! drains [`LineBuffer::next_frame`] until `None`. Invariants:
//! - Memory is bounded: a partial line is never kept once it is known to be too
//!   long (the rest of it is discarded as it arrives), so after draining, the
//!   buffer holds less than one maximal line and its capacity never exceeds
//!   [`MAX_CAPACITY`].
//! - Idle connections cost nothing: no allocation until the first read, and
//!   [`LineBuffer::shrink_if_idle`] gives the buffer up between lines (to a small
//!   per-thread stock that the next reader on the thread takes it from; see `RECYCLED`).
//! - Each received byte is scanned a bounded number of times (for the line end
//!   and, in tagged lines, the end of the tags) whatever the chunking, so a
//!   slow sender cannot make framing quadratic.

use super::{MAX_LINE_LEN, MAX_TAGS_LEN};

/// Capacity of the first allocation: one untagged maximal line.
const INITIAL_CAPACITY: usize = MAX_LINE_LEN;

/// Capacity the buffer grows to when reads keep filling it (busy senders).
/// It is also above the longest legal line (tags + body + CRLF), so no
/// further growth is needed as long as frames are drained after each read.
pub const MAX_CAPACITY: usize = 16 * 1024;

/// Most content bytes (no CR/LF) after the tag section: 512 minus CRLF.
const MAX_BODY: usize = MAX_LINE_LEN - 2;

/// One result of [`LineBuffer::next_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One complete line without CR/LF (a trailing '\r' before '\n' removed; a
    /// bare '\n' also ends a line). Empty lines are skipped, never returned.
    Line(&'a [u8]),
    /// A line exceeded the limit (510 content bytes after an optional tag
    /// section of up to [`MAX_TAGS_LEN`] bytes). Returned once per overlong
    /// line, as soon as the excess is known; the rest of that line, up to and
    /// including its '\n', is discarded and framing resumes after it.
    TooLong,
}

/// Per-connection line splitter over a growable byte buffer.
///
/// `buf[start..end]` holds unconsumed input; `buf[end..]` is free space.
#[derive(Debug, Default)]
pub struct LineBuffer {
    /// Storage; its length is the usable capacity (zero-filled when grown).
    buf: Vec<u8>,
    /// First unconsumed byte.
    start: usize,
    /// End of received data.
    end: usize,
    /// Bytes of the current partial line (from `start`) known to hold no '\n'.
    scanned: usize,
    /// Offset from `start` of the current line's first space, once seen
    /// (only tracked for lines starting with '@': it ends the tag section).
    first_space: Option<usize>,
    /// Dropping input up to the next '\n' (after reporting `TooLong`).
    discarding: bool,
    /// The last `filled` used all the space `spare` offered: grow next time.
    read_was_full: bool,
}

impl LineBuffer {
    /// An empty buffer; nothing is allocated until the first [`LineBuffer::spare`].
    pub fn new() -> LineBuffer {
        LineBuffer::default()
    }

    /// A writable slice of free space to read into (never empty).
    ///
    /// Moves unconsumed bytes to the front first. The buffer starts at 512
    /// bytes and doubles, up to [`MAX_CAPACITY`], each time the previous read
    /// filled all the free space, so busy senders need fewer reads. It grows
    /// past that (linearly) only if the caller skipped draining frames.
    pub fn spare(&mut self) -> &mut [u8] {
        self.compact();
        let cap = self.buf.len();
        let wanted = if cap == 0 {
            INITIAL_CAPACITY
        } else if self.end == cap {
            // No room at all. When frames are drained this cannot happen at
            // MAX_CAPACITY (see the module invariants); if the caller skipped
            // draining, grow linearly beyond it rather than refuse space.
            cap.saturating_add(cap.min(MAX_CAPACITY))
        } else if self.read_was_full && cap < MAX_CAPACITY {
            cap.saturating_mul(2).min(MAX_CAPACITY)
        } else {
            cap
        };
        if cap == 0 {
            if let Some(buf) = take_recycled() {
                self.buf = buf;
            }
        }
        let cap = self.buf.len();
        if wanted > cap {
            self.buf.reserve_exact(wanted - cap);
            self.buf.resize(wanted, 0);
        }
        self.read_was_full = false;
        let end = self.end;
        self.buf.get_mut(end..).unwrap_or_default()
    }

    /// Record that `n` bytes were written into the slice last returned by
    /// [`LineBuffer::spare`] (clamped to the free space).
    pub fn filled(&mut self, n: usize) {
        let free = self.buf.len().saturating_sub(self.end);
        let n = n.min(free);
        self.end += n;
        self.read_was_full = n > 0 && n == free;
    }

    /// The next complete frame, or `None` when more input is needed.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        loop {
            let pending = self.buf.get(self.start..self.end).unwrap_or_default();
            if self.discarding {
                let Some(i) = pending.iter().position(|&b| b == b'\n') else {
                    self.start = self.end;
                    return None;
                };
                self.start += i + 1;
                self.discarding = false;
                continue;
            }
            let seen = self.scanned.min(pending.len());
            let new = pending.get(seen..).unwrap_or_default();
            let newline = new.iter().position(|&b| b == b'\n').map(|i| seen + i);
            if self.first_space.is_none() && pending.first() == Some(&b'@') {
                let upto = newline.unwrap_or(pending.len());
                let fresh = pending.get(seen..upto).unwrap_or_default();
                self.first_space = fresh.iter().position(|&b| b == b' ').map(|i| seen + i);
            }
            let Some(nl) = newline else {
                // Partial line: a final '\r' may still be the start of CRLF.
                let len = pending.len() - usize::from(pending.last() == Some(&b'\r'));
                self.scanned = pending.len();
                if self.exceeds_limit(pending, len) {
                    self.discarding = true;
                    self.start = self.end;
                    self.reset_line();
                    return Some(Frame::TooLong);
                }
                return None;
            };
            let len = nl - usize::from(nl > 0 && pending.get(nl - 1) == Some(&b'\r'));
            let too_long = self.exceeds_limit(pending, len);
            let line_start = self.start;
            self.start += nl + 1;
            self.reset_line();
            if too_long {
                return Some(Frame::TooLong);
            }
            if len > 0 {
                let line = self
                    .buf
                    .get(line_start..line_start + len)
                    .unwrap_or_default();
                return Some(Frame::Line(line));
            }
        }
    }

    /// Free the buffer's memory if it holds no partial line (call when the
    /// connection goes idle). Returns whether memory was freed.
    pub fn shrink_if_idle(&mut self) -> bool {
        if self.start != self.end || self.buf.capacity() == 0 {
            return false;
        }
        // Keep `discarding`: an overlong line may continue after the pause.
        recycle(std::mem::take(&mut self.buf));
        self.start = 0;
        self.end = 0;
        self.reset_line();
        self.read_was_full = false;
        true
    }

    /// Bytes of capacity currently held (for memory accounting and tests).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether the line beginning at `start`, with `len` content bytes so far,
    /// breaks the length rule. `first_space` must be up to date.
    fn exceeds_limit(&self, pending: &[u8], len: usize) -> bool {
        if pending.first() != Some(&b'@') {
            return len > MAX_BODY;
        }
        match self.first_space {
            // The tag section runs from '@' through the first space.
            Some(space) if space < len => space + 1 > MAX_TAGS_LEN || len - space - 1 > MAX_BODY,
            // No space yet: all of it is (the start of) the tag section.
            _ => len > MAX_TAGS_LEN,
        }
    }

    /// Forget the per-line scan state (a new line starts at `start`).
    fn reset_line(&mut self) {
        self.scanned = 0;
        self.first_space = None;
    }

    /// Move unconsumed bytes to the front so free space is contiguous.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        if self.start < self.end {
            self.buf.copy_within(self.start..self.end, 0);
        }
        self.end -= self.start;
        self.start = 0;
    }
}

/// Most idle first-size buffers kept per thread for the next [`LineBuffer::spare`].
///
/// A reader frees its buffer as soon as it holds no partial line (usually in the same poll
/// that read the line), so a thread needs only a few at once. Handing them on saves the
/// allocation, the zero fill and the free that a fresh buffer per read costs: in a direct-message
/// relay (`loadgen pairs`, callgrind) they were about 4 % of the node's instructions. At most
/// `RECYCLED * INITIAL_CAPACITY` bytes (2 KiB) per thread stay allocated while the node is idle.
const RECYCLED: usize = 4;

thread_local! {
    static RECYCLED_BUFFERS: std::cell::RefCell<Vec<Vec<u8>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Keep `buf` for another reader if it has the first size and the thread's stock is not full;
/// otherwise free it.
fn recycle(buf: Vec<u8>) {
    if buf.len() != INITIAL_CAPACITY || buf.capacity() != INITIAL_CAPACITY {
        return;
    }
    // `try_with`: during thread teardown the stock may be gone; the buffer is then just freed.
    let _ = RECYCLED_BUFFERS.try_with(|stock| {
        if let Ok(mut stock) = stock.try_borrow_mut() {
            if stock.len() < RECYCLED {
                stock.push(buf);
            }
        }
    });
}

/// A first-size buffer (length and capacity [`INITIAL_CAPACITY`], its bytes initialized) from
/// this thread's stock, if it has one.
fn take_recycled() -> Option<Vec<u8>> {
    RECYCLED_BUFFERS
        .try_with(|stock| stock.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::test_rng::XorShift;

    /// Owned copy of a frame, for collecting.
    #[derive(Debug, PartialEq, Eq)]
    enum Out {
        Line(Vec<u8>),
        TooLong,
    }

    fn push(lb: &mut LineBuffer, mut data: &[u8]) {
        while !data.is_empty() {
            let spare = lb.spare();
            assert!(!spare.is_empty());
            let n = spare.len().min(data.len());
            spare[..n].copy_from_slice(&data[..n]);
            lb.filled(n);
            data = &data[n..];
        }
    }

    fn drain(lb: &mut LineBuffer) -> Vec<Out> {
        let mut out = Vec::new();
        while let Some(frame) = lb.next_frame() {
            out.push(match frame {
                Frame::Line(l) => Out::Line(l.to_vec()),
                Frame::TooLong => Out::TooLong,
            });
        }
        out
    }

    /// Feed `data` in chunks of the given sizes (cycled), draining after each.
    fn feed_chunked(data: &[u8], sizes: &mut dyn FnMut() -> usize) -> (Vec<Out>, usize) {
        let mut lb = LineBuffer::new();
        let mut out = Vec::new();
        let mut max_cap = 0;
        let mut rest = data;
        while !rest.is_empty() {
            let spare = lb.spare();
            let n = sizes().clamp(1, spare.len()).min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            lb.filled(n);
            rest = &rest[n..];
            out.extend(drain(&mut lb));
            max_cap = max_cap.max(lb.capacity());
        }
        (out, max_cap)
    }

    fn line(s: &[u8]) -> Out {
        Out::Line(s.to_vec())
    }

    #[test]
    fn crlf_bare_lf_and_empty_lines() {
        let mut lb = LineBuffer::new();
        assert_eq!(lb.capacity(), 0);
        push(&mut lb, b"NICK a\r\nUSER b\n\r\n\n\r\nPING x\r\n");
        assert_eq!(
            drain(&mut lb),
            [line(b"NICK a"), line(b"USER b"), line(b"PING x")]
        );
        // A lone CR is not a line end; only the one right before LF is removed.
        push(&mut lb, b"A\rB\r\r\n");
        assert_eq!(drain(&mut lb), [line(b"A\rB\r")]);
    }

    #[test]
    fn line_split_across_reads() {
        let mut lb = LineBuffer::new();
        for part in [&b"PRIV"[..], b"MSG #x", b" :hi\r", b"\nPI", b"NG\n"] {
            push(&mut lb, part);
            let frames = drain(&mut lb);
            match part {
                b"\nPI" => assert_eq!(frames, [line(b"PRIVMSG #x :hi")]),
                b"NG\n" => assert_eq!(frames, [line(b"PING")]),
                _ => assert!(frames.is_empty()),
            }
        }
    }

    #[test]
    fn many_lines_in_one_read() {
        let mut data = Vec::new();
        for i in 0..200 {
            data.extend_from_slice(format!("PRIVMSG #c :{i}\r\n").as_bytes());
        }
        let mut lb = LineBuffer::new();
        let spare = lb.spare();
        let n = spare.len();
        spare.copy_from_slice(&data[..n]);
        lb.filled(n);
        let mut count = drain(&mut lb).len();
        push(&mut lb, &data[n..]);
        count += drain(&mut lb).len();
        assert_eq!(count, 200);
    }

    #[test]
    fn length_limit_untagged() {
        let ok = vec![b'a'; 510];
        let long = vec![b'b'; 511];
        let mut lb = LineBuffer::new();
        for sep in [&b"\r\n"[..], b"\n"] {
            let mut data = ok.clone();
            data.extend_from_slice(sep);
            data.extend_from_slice(&long);
            data.extend_from_slice(sep);
            data.extend_from_slice(b"NEXT");
            data.extend_from_slice(sep);
            push(&mut lb, &data);
            assert_eq!(drain(&mut lb), [line(&ok), Out::TooLong, line(b"NEXT")]);
        }
        // 510 bytes then a pending CR is still fine until proven otherwise.
        let mut data = ok.clone();
        data.push(b'\r');
        push(&mut lb, &data);
        assert_eq!(drain(&mut lb), []);
        push(&mut lb, b"\n");
        assert_eq!(drain(&mut lb), [line(&ok)]);
    }

    #[test]
    fn overlong_line_over_many_reads() {
        let mut lb = LineBuffer::new();
        push(&mut lb, b"PRIVMSG #x :");
        let mut frames = drain(&mut lb);
        for _ in 0..1000 {
            push(&mut lb, &[b'x'; 100]);
            frames.extend(drain(&mut lb));
            assert!(lb.capacity() <= MAX_CAPACITY);
        }
        push(&mut lb, b"tail\r\nPING ok\r\n");
        frames.extend(drain(&mut lb));
        assert_eq!(frames, [Out::TooLong, line(b"PING ok")]);
    }

    #[test]
    fn tagged_lines() {
        let mut tagged = b"@".to_vec();
        tagged.extend(vec![b'k'; 3998]);
        tagged.extend_from_slice(b" PRIVMSG #x :");
        tagged.resize(3999 + 1 + 510, b'm'); // 4000-byte tag section + 510 body
        let mut data = tagged.clone();
        data.extend_from_slice(b"\r\n");
        let (frames, _) = feed_chunked(&data, &mut || 700);
        assert_eq!(frames, [line(&tagged)]);

        // One more body byte is too long.
        let mut data = tagged.clone();
        data.extend_from_slice(b"m\r\nPING\r\n");
        let (frames, _) = feed_chunked(&data, &mut || 700);
        assert_eq!(frames, [Out::TooLong, line(b"PING")]);

        // Maximal tag section (8191 bytes with its space) is accepted.
        let mut max = b"@".to_vec();
        max.extend(vec![b'k'; MAX_TAGS_LEN - 2]);
        max.extend_from_slice(b" PING");
        let mut data = max.clone();
        data.extend_from_slice(b"\r\n");
        let (frames, cap) = feed_chunked(&data, &mut || 300);
        assert_eq!(frames, [line(&max)]);
        assert!(cap <= MAX_CAPACITY);

        // One more tag byte is too long, detected before any space arrives.
        let mut lb = LineBuffer::new();
        let mut over = b"@".to_vec();
        over.extend(vec![b'k'; MAX_TAGS_LEN]);
        push(&mut lb, &over);
        assert_eq!(drain(&mut lb), [Out::TooLong]);
        push(&mut lb, b"k PING\r\nPONG\r\n");
        assert_eq!(drain(&mut lb), [line(b"PONG")]);

        // Tags without a command, and a space right at the limit.
        let mut lb = LineBuffer::new();
        let mut at_limit = b"@".to_vec();
        at_limit.extend(vec![b'k'; MAX_TAGS_LEN - 1]);
        push(&mut lb, &at_limit);
        assert_eq!(drain(&mut lb), []);
        push(&mut lb, b" X\n");
        assert_eq!(drain(&mut lb), [Out::TooLong]);
    }

    #[test]
    fn capacity_bounded_under_flood() {
        let mut lb = LineBuffer::new();
        let mut rng = XorShift::new(7);
        let mut lines = 0;
        for _ in 0..5000 {
            let spare = lb.spare();
            for b in spare.iter_mut() {
                *b = if rng.below(40) == 0 { b'\n' } else { b'x' };
            }
            let n = spare.len();
            lb.filled(n);
            lines += drain(&mut lb).len();
            assert!(lb.capacity() <= MAX_CAPACITY, "{}", lb.capacity());
        }
        assert!(lines > 0);
        assert_eq!(lb.capacity(), MAX_CAPACITY, "busy sender gets a big buffer");
        // A flood of one endless line stays bounded too.
        let mut lb = LineBuffer::new();
        for _ in 0..5000 {
            let n = lb.spare().len();
            lb.filled(n);
            drain(&mut lb);
            assert!(lb.capacity() <= MAX_CAPACITY);
        }
    }

    #[test]
    fn growth_starts_small() {
        let mut lb = LineBuffer::new();
        let spare = lb.spare();
        assert_eq!(spare.len(), 512);
        spare[..3].copy_from_slice(b"A\r\n");
        lb.filled(3);
        assert_eq!(lb.next_frame(), Some(Frame::Line(b"A")));
        assert_eq!(lb.next_frame(), None);
        let spare = lb.spare();
        assert_eq!((spare.len(), lb.capacity()), (512, 512)); // compacted, no growth
        let n = lb.spare().len();
        lb.spare().fill(b'\n');
        lb.filled(n); // filled everything: grow next time
        assert_eq!(lb.next_frame(), None);
        lb.spare();
        assert_eq!(lb.capacity(), 1024);
        lb.filled(1);
        lb.spare();
        assert_eq!(lb.capacity(), 1024); // partial read: stay
    }

    #[test]
    fn shrink_only_without_partial_line() {
        let mut lb = LineBuffer::new();
        assert!(!lb.shrink_if_idle());
        push(&mut lb, b"PING a\r\nPAR");
        assert_eq!(drain(&mut lb), [line(b"PING a")]);
        assert!(!lb.shrink_if_idle());
        assert!(lb.capacity() > 0);
        push(&mut lb, b"T #x\r\n");
        assert_eq!(drain(&mut lb), [line(b"PART #x")]);
        assert!(lb.shrink_if_idle());
        assert_eq!(lb.capacity(), 0);
        push(&mut lb, b"QUIT\n");
        assert_eq!(drain(&mut lb), [line(b"QUIT")]);
        // Discard mode survives a shrink.
        push(&mut lb, &[b'x'; 600]);
        assert_eq!(drain(&mut lb), [Out::TooLong]);
        assert!(lb.shrink_if_idle());
        push(&mut lb, b"yyy\nOK\n");
        assert_eq!(drain(&mut lb), [line(b"OK")]);
    }

    #[test]
    fn misuse_is_harmless() {
        let mut lb = LineBuffer::new();
        lb.filled(100); // nothing offered yet: clamped to zero
        assert_eq!(lb.next_frame(), None);
        let n = lb.spare().len();
        lb.filled(n + 1000);
        assert_eq!(lb.next_frame(), Some(Frame::TooLong)); // 512 zero bytes, no newline
                                                           // Not draining: spare still offers room.
        for _ in 0..40 {
            let n = lb.spare().len();
            assert!(n > 0);
            lb.filled(n);
        }
        assert!(lb.capacity() <= 41 * MAX_CAPACITY);
        assert_eq!(lb.next_frame(), None); // still discarding the same line
        push(&mut lb, b"\nOK\n");
        assert_eq!(drain(&mut lb), [line(b"OK")]);
    }

    /// Straightforward model of the framing rules, on a complete input.
    fn reference(data: &[u8]) -> Vec<Out> {
        let too_long = |l: &[u8]| match (l.first(), l.iter().position(|&b| b == b' ')) {
            (Some(b'@'), Some(sp)) => sp + 1 > MAX_TAGS_LEN || l.len() - sp - 1 > MAX_BODY,
            (Some(b'@'), None) => l.len() > MAX_TAGS_LEN,
            _ => l.len() > MAX_BODY,
        };
        let mut segments: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        let partial = segments.pop().unwrap_or_default();
        let mut out = Vec::new();
        for seg in segments {
            let l = seg.strip_suffix(b"\r").unwrap_or(seg);
            if too_long(l) {
                out.push(Out::TooLong);
            } else if !l.is_empty() {
                out.push(line(l));
            }
        }
        if too_long(partial.strip_suffix(b"\r").unwrap_or(partial)) {
            out.push(Out::TooLong);
        }
        out
    }

    #[test]
    fn random_chunking_matches_model() {
        let mut rng = XorShift::new(0xdead_beef);
        let (mut too_long, mut long_tagged) = (0, 0);
        for round in 0..60u64 {
            // Vary line and tag-section lengths around the limits.
            let nl_rate = [40, 600, 12_000][rng.below(3)];
            let space_rate = [10, 700, 9_000][rng.below(3)];
            let len = 1 + rng.below(40_000);
            let mut data = Vec::with_capacity(len);
            for _ in 0..len {
                let at_line_start = matches!(data.last(), None | Some(b'\n'));
                if at_line_start && rng.below(2) == 0 {
                    data.push(b'@');
                } else if rng.below(nl_rate) == 0 {
                    if rng.below(2) == 0 {
                        data.push(b'\r');
                    }
                    data.push(b'\n');
                } else if rng.below(space_rate) == 0 {
                    data.push(b' ');
                } else {
                    // Mostly letters, sometimes a stray CR or ':'.
                    data.push(
                        *b"aaaaaaaaaaaaaaaaaaa\r:"
                            .get(rng.below(21))
                            .unwrap_or(&b'a'),
                    );
                }
            }
            let want = reference(&data);
            too_long += want.iter().filter(|f| **f == Out::TooLong).count();
            long_tagged += want
                .iter()
                .filter(|f| matches!(f, Out::Line(l) if l.len() > MAX_BODY))
                .count();
            let (whole, _) = feed_chunked(&data, &mut || usize::MAX);
            assert_eq!(whole, want, "round {round}");
            let max_chunk = 1 + rng.below(if round % 2 == 0 { 8 } else { 3000 });
            let mut chunk_rng = XorShift::new(round + 1);
            let (chunked, cap) = feed_chunked(&data, &mut || 1 + chunk_rng.below(max_chunk));
            assert_eq!(chunked, want, "round {round}");
            assert!(cap <= MAX_CAPACITY);
        }
        // The generator really exercised both limits.
        assert!(
            too_long > 10 && long_tagged > 10,
            "{too_long} {long_tagged}"
        );
    }

    #[test]
    fn an_idle_buffer_is_handed_to_the_next_reader_on_the_thread() {
        let mut a = LineBuffer::new();
        push(&mut a, b"PING x\r\n");
        assert_eq!(drain(&mut a), vec![Out::Line(b"PING x".to_vec())]);
        let before = RECYCLED_BUFFERS.with(|s| s.borrow().len());
        assert!(a.shrink_if_idle());
        assert_eq!(a.capacity(), 0);
        let kept = RECYCLED_BUFFERS.with(|s| s.borrow().len());
        assert_eq!(kept, (before + 1).min(RECYCLED));
        let mut b = LineBuffer::new();
        // The recycled bytes are old input: framing must see only what is filled now.
        push(&mut b, b"NICK y\n");
        assert_eq!(drain(&mut b), vec![Out::Line(b"NICK y".to_vec())]);
        assert_eq!(RECYCLED_BUFFERS.with(|s| s.borrow().len()), kept - 1);
    }

    #[test]
    fn the_stock_of_idle_buffers_is_bounded() {
        let mut readers: Vec<LineBuffer> = (0..RECYCLED + 3).map(|_| LineBuffer::new()).collect();
        for r in &mut readers {
            push(r, b"x\n");
            drain(r);
        }
        for r in &mut readers {
            assert!(r.shrink_if_idle());
        }
        assert_eq!(RECYCLED_BUFFERS.with(|s| s.borrow().len()), RECYCLED);
    }
}
