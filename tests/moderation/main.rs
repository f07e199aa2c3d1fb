//! Channel moderation, user modes and operator commands, through the in-process broker harness
//! (exact lines, no sockets): the edge cases. What crosses the wire is in tests/node.

mod common;
mod invite;
mod kick;
mod lists;
mod modes;
mod operators;
mod user_modes;
mod visibility;
