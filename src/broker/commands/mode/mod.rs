//! MODE: channel modes and user modes.
//!
//! - [`parse`] turns a mode string and its arguments into changes, by the parameter rules of
//!   CHANMODES (type A lists `beI`, type B `k`, type C `l`, type D `imnst`, prefixes `ov`), with
//!   no access to the broker: it is pure and tested alone.
//! - [`channel`] answers queries (324/329, the lists) and applies changes for channel operators
//!   ([`apply`], [`targets`]), then tells every member once, in as few MODE lines as fit
//!   ([`announce`]).
//! - [`user`] handles `+i`, `+w` and `-o` on oneself.

mod announce;
mod apply;
mod burst;
mod channel;
mod lists;
mod parse;
mod targets;
mod user;

pub(in crate::broker) use apply::KEY_LEN;
pub(in crate::broker) use burst::{
    channel_state, merge_channel, set_remote_status, settle_creation, unix_ms,
};
pub(in crate::broker) use channel::remote_channel_mode;

use crate::broker::{Broker, ClientId};
use crate::proto::{casemap, Message};

/// Changes with a parameter accepted in one MODE command: MODES in ISUPPORT. Further ones are
/// ignored.
pub(in crate::broker) const MAX_PARAM_MODES: usize = 4;

pub(in crate::broker::commands) fn mode(b: &mut Broker, id: ClientId, msg: &Message) {
    if casemap::is_channel_target(&msg.params[0]) {
        channel::channel_mode(b, id, msg);
    } else {
        user::user_mode(b, id, msg);
    }
}
