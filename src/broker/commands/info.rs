//! INFO: what this server is (371 lines, then 374 RPL_ENDOFINFO).

use crate::broker::{unix_time, Broker, ClientId, VERSION};
use crate::proto::{numeric, Message};

pub(super) fn info(b: &mut Broker, id: ClientId, msg: &Message) {
    if !super::server_target::is_for_us(b, id, msg) {
        return;
    }
    let lines = [
        format!("{VERSION}: a small IRC chat node in Rust"),
        "Runs on an executor built from smol's parts (or on Tokio: chatnode-tokio).".into(),
        "One broker task owns the chat state; each connection feeds it.".into(),
        "Speaks RFC 2812 and the Modern IRC documents, plus IRCv3 capabilities.".into(),
        format!("Up since Unix time {}", unix_time(b.created)),
    ];
    for line in &lines {
        b.reply(id, numeric::RPL_INFO, &[line]);
    }
    b.reply(id, numeric::RPL_ENDOFINFO, &[]);
}
