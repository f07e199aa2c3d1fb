//! The optional `<target>` of server queries (TIME, ADMIN, INFO): this server, named by its
//! name (a mask is fine) or by the nick of one of its users. There is only one server, so any
//! other target is answered with 402 ERR_NOSUCHSERVER.

use crate::broker::{Broker, ClientId};
use crate::proto::{casemap, numeric, Message};

/// Whether the query in `msg` is for this server; if not, 402 has been sent.
pub(super) fn is_for_us(b: &mut Broker, id: ClientId, msg: &Message) -> bool {
    let Some(target) = msg.params.first().filter(|t| !t.is_empty()) else {
        return true;
    };
    let folded = casemap::casefold(target);
    let server = casemap::casefold(&b.config.server_name);
    if crate::proto::mask::glob_match(folded.as_bytes(), server.as_bytes())
        || b.nicks.contains_key(&folded)
    {
        return true;
    }
    b.reply(id, numeric::ERR_NOSUCHSERVER, &[target]);
    false
}
