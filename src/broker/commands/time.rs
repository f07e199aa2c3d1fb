//! TIME: the server's local time (391 RPL_TIME), as Unix seconds and as text (UTC).

use std::time::SystemTime;

use crate::broker::{unix_time, Broker, ClientId};
use crate::proto::{numeric, Message};

pub(super) fn time(b: &mut Broker, id: ClientId, msg: &Message) {
    if !super::server_target::is_for_us(b, id, msg) {
        return;
    }
    let now = SystemTime::now();
    let server = b.config.server_name.clone();
    let text = crate::broker::forms::format_time(now);
    b.reply(
        id,
        numeric::RPL_TIME,
        &[&server, &unix_time(now).to_string(), "0", &text],
    );
}
