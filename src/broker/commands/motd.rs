//! MOTD: the message of the day (375, 372 each line, 376), or 422 when there is none. The
//! replies are in [`crate::broker::replies`], shared with the welcome burst.

use crate::broker::{Broker, ClientId};
use crate::proto::Message;

pub(super) fn motd(b: &mut Broker, id: ClientId, _msg: &Message) {
    b.send_motd(id);
}
