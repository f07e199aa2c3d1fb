//! IRC wire protocol, sans-IO: line framing, message parsing and
//! serialization, rfc1459 casemapping and the table of numeric replies.
//!
//! Nothing here performs I/O, spawns tasks or depends on anything beyond std,
//! so every part can be unit-tested and fuzzed in isolation. No function in
//! this module panics on any input.

pub mod casemap;
pub mod framing;
pub mod mask;
pub mod message;
pub mod numeric;
pub mod tags;
pub mod time;

pub use framing::{Frame, LineBuffer};
pub use message::{Message, ParseError};

/// Max bytes of a line without tags, CRLF included (RFC 1459/2812, Modern): 512.
pub const MAX_LINE_LEN: usize = 512;

/// Max bytes of the tag section of a client line, including the leading '@'
/// and the space after it. IRCv3 message-tags lets clients send 4096; we accept
/// up to 8191 as servers commonly do.
pub const MAX_TAGS_LEN: usize = 8191;

/// Tiny deterministic PRNG (xorshift64) for the property-style tests.
#[cfg(test)]
pub(crate) mod test_rng {
    pub(crate) struct XorShift(u64);

    impl XorShift {
        pub(crate) fn new(seed: u64) -> XorShift {
            XorShift(seed.max(1))
        }

        pub(crate) fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// Uniform-enough value in `0..n` (`n` > 0).
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }
}
