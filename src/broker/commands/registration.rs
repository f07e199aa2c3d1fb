//! Completing registration: the password check and the welcome burst (001-005, LUSERS, MOTD).

use crate::broker::{unix_time, Broker, ClientId, VERSION};
use crate::proto::numeric;

/// Registers `id` if it has a nick and a user and is not negotiating capabilities.
pub(in crate::broker) fn try_complete_registration(b: &mut Broker, id: ClientId) {
    let Some(client) = b.clients.get(&id) else {
        return;
    };
    if client.registered || client.cap_negotiating || client.nick.is_none() || client.user.is_none()
    {
        return;
    }
    if let Some(password) = &b.config.password {
        if client.pass.as_ref() != Some(password) {
            b.reply(id, numeric::ERR_PASSWDMISMATCH, &[]);
            b.disconnect(id, "Bad password");
            return;
        }
    }
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    client.registered = true;
    client.refresh_mask();
    let mask = client.mask.clone();
    log::info!("registered {mask}");
    let registered = b.registered_count();
    b.max_registered = b.max_registered.max(registered);
    welcome(b, id, &mask);
    super::lusers::send_lusers(b, id);
    super::motd::send_motd(b, id);
}

fn welcome(b: &mut Broker, id: ClientId, mask: &str) {
    let config = b.config.clone();
    let server = config.server_name.as_str();
    b.reply(
        id,
        numeric::RPL_WELCOME,
        &[&format!(
            "Welcome to the {} IRC Network {mask}",
            config.network
        )],
    );
    b.reply(
        id,
        numeric::RPL_YOURHOST,
        &[&format!("Your host is {server}, running version {VERSION}")],
    );
    b.reply(
        id,
        numeric::RPL_CREATED,
        &[&format!(
            "This server was created at Unix time {}",
            unix_time(b.created)
        )],
    );
    // <servername> <version> <user modes> <channel modes> <channel modes with a parameter>
    let myinfo = [server, VERSION, "io", "ntov", "ov"];
    let line = b.line_from_server("004", &[&[b.nick_of(id)][..], &myinfo].concat(), None);
    b.send(id, line);
    send_isupport(b, id);
}

/// 005 RPL_ISUPPORT: what this server supports, as `TOKEN=value` words.
pub(super) fn send_isupport(b: &mut Broker, id: ClientId) {
    let config = b.config.clone();
    let l = &config.limits;
    let tokens = [
        "CASEMAPPING=rfc1459".to_string(),
        "CHANTYPES=#".into(),
        format!("CHANNELLEN={}", l.channel_len),
        format!("NICKLEN={}", l.nick_len),
        format!("TOPICLEN={}", l.topic_len),
        format!("AWAYLEN={}", l.away_len),
        format!("USERLEN={}", l.user_len),
        "PREFIX=(ov)@+".into(),
        "CHANMODES=,,,nt".into(),
        format!("CHANLIMIT=#:{}", l.channels_per_client),
        format!("MAXTARGETS={}", l.max_targets),
        format!("NAMELEN={}", l.realname_len),
        format!("NETWORK={}", config.network),
        "ELIST=CMNTU".into(),
        "WHOX".into(),
    ];
    // At most 12 tokens a line: with the nick and the text, 14 parameters (15 is the limit).
    for chunk in tokens.chunks(12) {
        let params: Vec<&str> = chunk.iter().map(String::as_str).collect();
        b.reply(id, numeric::RPL_ISUPPORT, &params);
    }
}
