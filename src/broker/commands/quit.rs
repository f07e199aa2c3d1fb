//! QUIT: leave the server. Peers see `QUIT :Quit: reason`; the client gets ERROR and is closed.

use crate::broker::{Broker, ClientId};
use crate::proto::Message;

pub(super) fn quit(b: &mut Broker, id: ClientId, msg: &Message) {
    let reason = match msg.params.first() {
        Some(text) if !text.is_empty() => format!("Quit: {text}"),
        _ => "Client Quit".to_string(),
    };
    b.disconnect(id, &reason);
}
