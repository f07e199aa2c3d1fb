//! Replies more than one command sends: the welcome burst and ISUPPORT (registration,
//! VERSION), topic (JOIN, TOPIC), names (JOIN, NAMES), LUSERS and MOTD (registration and their
//! own commands). One place each, so a command and the burst can never drift apart.

use super::caps::Caps;
use super::channel::MAX_LIST;
use super::commands::{KEY_LEN, MAX_PARAM_MODES};
use super::{unix_time, Broker, ClientId, VERSION};
use crate::proto::numeric;

/// ISUPPORT tokens per 005 line: 15 parameters at most, less the nick and the trailing text.
const ISUPPORT_PER_LINE: usize = 13;

/// Room for names in one 353 line: 512 minus CRLF and a generous header
/// (`:server 353 nick = #channel :`).
const NAMES_BYTES_PER_LINE: usize = 400;

impl Broker {
    /// 001-004 and 005: the first replies of a registered client (`mask`: its `nick!user@host`).
    pub(super) fn send_welcome(&mut self, id: ClientId, mask: &str) {
        let config = self.config.clone();
        let server = config.server_name.as_str();
        let network = &config.network;
        let welcome = format!("Welcome to the {network} IRC Network {mask}");
        self.reply(id, numeric::RPL_WELCOME, &[&welcome]);
        let host = format!("Your host is {server}, running version {VERSION}");
        self.reply(id, numeric::RPL_YOURHOST, &[&host]);
        let created = crate::proto::time::Utc::from_unix(unix_time(self.created));
        let created = format!("This server was created {created}");
        self.reply(id, numeric::RPL_CREATED, &[&created]);
        // <servername> <version> <user modes> <channel modes> <channel modes with a parameter>
        let myinfo = [server, VERSION, "iow", "beIiklmnostv", "beIklov"];
        let nick = self.nick_of(id).to_string();
        let line = self.line_from_server("004", &[&[nick.as_str()][..], &myinfo].concat(), None);
        self.send(id, line);
        self.send_isupport(id);
    }

    /// 005 RPL_ISUPPORT: what this server supports, as `TOKEN=value` words, at most
    /// [`ISUPPORT_PER_LINE`] per line as the Modern docs require.
    pub(super) fn send_isupport(&mut self, id: ClientId) {
        let config = self.config.clone();
        let l = &config.limits;
        let t = l.max_targets;
        let mut tokens = vec![
            "CASEMAPPING=rfc1459".to_string(),
            "CHANTYPES=#".into(),
            format!("CHANNELLEN={}", l.channel_len),
            format!("NICKLEN={}", l.nick_len),
            format!("TOPICLEN={}", l.topic_len),
            format!("AWAYLEN={}", l.away_len),
            format!("USERLEN={}", l.user_len),
            "PREFIX=(ov)@+".into(),
            "CHANMODES=beI,k,l,imnst".into(),
            "EXCEPTS=e".into(),
            "INVEX=I".into(),
            format!("MAXLIST=beI:{MAX_LIST}"),
            format!("MODES={MAX_PARAM_MODES}"),
            format!("KEYLEN={KEY_LEN}"),
            format!("KICKLEN={}", l.topic_len),
            format!("CHANLIMIT=#:{}", l.channels_per_client),
            format!("MAXTARGETS={t}"),
            format!("TARGMAX=JOIN:,KICK:{t},NAMES:,NOTICE:{t},PART:,PRIVMSG:{t},TAGMSG:{t}"),
            format!("NAMELEN={}", l.realname_len),
            format!("NETWORK={}", config.network),
            "ELIST=CMNTU".into(),
            "WHOX".into(),
        ];
        if config.hooks.history.is_some() {
            tokens.push(format!("CHATHISTORY={}", config.history.max_per_request));
            tokens.push("MSGREFTYPES=timestamp,msgid".into());
        }
        for chunk in tokens.chunks(ISUPPORT_PER_LINE) {
            let params: Vec<&str> = chunk.iter().map(String::as_str).collect();
            self.reply(id, numeric::RPL_ISUPPORT, &params);
        }
    }

    /// 332 + 333 for channel `key`, or 331 when there is no topic and `say_none` is set (JOIN
    /// stays silent about a missing topic, a TOPIC query does not).
    pub(super) fn send_topic(&mut self, id: ClientId, key: &str, say_none: bool) {
        let Some(channel) = self.channels.get(key) else {
            return;
        };
        let name = channel.name.clone();
        match &channel.topic {
            Some(topic) => {
                let (text, by, at) = (topic.text.clone(), topic.set_by.clone(), topic.set_at);
                self.reply(id, numeric::RPL_TOPIC, &[&name, &text]);
                let at = unix_time(at).to_string();
                self.reply(id, numeric::RPL_TOPICWHOTIME, &[&name, &by, &at]);
            }
            None if say_none => self.reply(id, numeric::RPL_NOTOPIC, &[&name]),
            None => {}
        }
    }

    /// The 353 lines for channel `key` (nothing if it does not exist or is secret (+s) and `id`
    /// is not a member).
    pub(super) fn send_names(&mut self, id: ClientId, key: &str) {
        let Some(channel) = self.channels.get(key).filter(|c| c.is_visible_to(id)) else {
            return;
        };
        // A non-member does not see invisible (+i) members.
        let member_view = channel.members.contains_key(&id);
        let (name, symbol) = (channel.name.clone(), channel.modes.names_symbol());
        let caps = self.clients.get(&id).map_or(Caps::NONE, |c| c.caps);
        let mut lines = Vec::new();
        let mut current = String::new();
        for (member_id, member) in &channel.members {
            let Some(c) = self
                .clients
                .get(member_id)
                .filter(|c| c.nick.is_some() && (member_view || !c.invisible))
            else {
                continue;
            };
            // userhost-in-names: `nick!user@host` instead of the nick.
            let nick: &str = if caps.has(Caps::USERHOST_IN_NAMES) {
                &c.mask
            } else {
                c.nick()
            };
            if !current.is_empty() && current.len() + nick.len() + 2 > NAMES_BYTES_PER_LINE {
                lines.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(member.prefix_for(caps));
            current.push_str(nick);
        }
        if !current.is_empty() {
            lines.push(current);
        }
        for line in lines {
            self.reply(id, numeric::RPL_NAMREPLY, &[symbol, &name, &line]);
        }
    }

    /// 366 RPL_ENDOFNAMES for `name` (a channel, or `*`).
    pub(super) fn end_of_names(&mut self, id: ClientId, name: &str) {
        self.reply(id, numeric::RPL_ENDOFNAMES, &[name]);
    }

    /// 251-255, 265, 266: users, operators, unknown connections, channels.
    pub(super) fn send_lusers(&mut self, id: ClientId) {
        let users = self.registered_count();
        let local = self
            .clients
            .values()
            .filter(|c| c.registered && c.node.is_none())
            .count();
        let servers = 1 + self.link.nodes.len();
        let registered = || self.clients.values().filter(|c| c.registered);
        let invisible = registered().filter(|c| c.invisible).count();
        let opers = registered().filter(|c| c.oper).count();
        let unknown = self.clients.len() - users;
        let channels = self.channels.len();
        let max = self.max_registered;
        let visible = users - invisible;
        let text =
            format!("There are {visible} users and {invisible} invisible on {servers} servers");
        self.reply(id, numeric::RPL_LUSERCLIENT, &[&text]);
        if opers > 0 {
            self.reply(id, numeric::RPL_LUSEROP, &[&opers.to_string()]);
        }
        if unknown > 0 {
            self.reply(id, numeric::RPL_LUSERUNKNOWN, &[&unknown.to_string()]);
        }
        self.reply(id, numeric::RPL_LUSERCHANNELS, &[&channels.to_string()]);
        let me = format!("I have {local} clients and {} servers", servers - 1);
        self.reply(id, numeric::RPL_LUSERME, &[&me]);
        let (l, u, m) = (local.to_string(), users.to_string(), max.to_string());
        let text = format!("Current local users {local}, max {max}");
        self.reply(id, numeric::RPL_LOCALUSERS, &[&l, &m, &text]);
        let global = format!("Current global users {users}, max {max}");
        self.reply(id, numeric::RPL_GLOBALUSERS, &[&u, &m, &global]);
    }

    /// 375, 372 per line, 376; or 422 when there is no MOTD.
    pub(super) fn send_motd(&mut self, id: ClientId) {
        let config = self.config.clone();
        let Some(lines) = &config.motd else {
            self.reply(id, numeric::ERR_NOMOTD, &[]);
            return;
        };
        let start = format!("- {} Message of the day - ", config.server_name);
        self.reply(id, numeric::RPL_MOTDSTART, &[&start]);
        for line in lines {
            self.reply(id, numeric::RPL_MOTD, &[&format!("- {line}")]);
        }
        self.reply(id, numeric::RPL_ENDOFMOTD, &[]);
    }
}
