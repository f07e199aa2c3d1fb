//! LUSERS: how many users, channels and connections the node has (251-255, 265, 266; the
//! replies themselves are in [`crate::broker::replies`], shared with the welcome burst).

use crate::broker::{Broker, ClientId};
use crate::proto::Message;

pub(super) fn lusers(b: &mut Broker, id: ClientId, _msg: &Message) {
    b.send_lusers(id);
}
