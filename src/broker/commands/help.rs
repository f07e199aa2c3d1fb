//! HELP: a short text per command (704 first line, 705 more, 706 last), the list of subjects
//! without a parameter, and 524 ERR_HELPNOTFOUND for an unknown subject.

use crate::broker::{Broker, ClientId};
use crate::proto::{numeric, Message};

/// Subject, usage, what it does. Subjects are matched without regard to case.
const TOPICS: &[(&str, &str, &str)] = &[
    ("ADMIN", "ADMIN [<server>]", "Who runs this server."),
    (
        "AWAY",
        "AWAY [:<message>]",
        "Mark yourself away; without a message, back.",
    ),
    (
        "CAP",
        "CAP LS [302] | LIST | REQ :<caps> | END",
        "IRCv3 capability negotiation.",
    ),
    (
        "CHATHISTORY",
        "CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN|TARGETS <target> ...",
        "Replay stored history (IRCv3 draft/chathistory).",
    ),
    (
        "HELP",
        "HELP [<subject>]",
        "This help; without a subject, the list of subjects.",
    ),
    (
        "INVITE",
        "INVITE [<nick> <#channel>]",
        "Invite a user into a channel; alone, your pending invites.",
    ),
    ("INFO", "INFO", "What this server is."),
    ("ISON", "ISON <nick>...", "Which of the nicks are online."),
    (
        "JOIN",
        "JOIN <#channel>[,...] | JOIN 0",
        "Join channels (0: leave them all).",
    ),
    (
        "KICK",
        "KICK <#channel> <nick>[,...] [:<reason>]",
        "Remove users from a channel (channel operators).",
    ),
    (
        "KILL",
        "KILL <nick> :<reason>",
        "Disconnect a user (IRC operators).",
    ),
    ("LINKS", "LINKS", "The servers of the network (this one)."),
    (
        "LIST",
        "LIST [<#channel>,...|<filter>,...]",
        "Channels, with ELIST filters >n <n C>m C<m T>m T<m and masks.",
    ),
    (
        "LUSERS",
        "LUSERS",
        "How many users, operators and channels.",
    ),
    (
        "MODE",
        "MODE <target> [<modes> [<params>]]",
        "Show or change user or channel modes.",
    ),
    ("MOTD", "MOTD", "The message of the day."),
    ("NAMES", "NAMES [<#channel>,...]", "Who is in a channel."),
    ("NICK", "NICK <nick>", "Choose or change your nickname."),
    (
        "NOTICE",
        "NOTICE <target>[,...] :<text>",
        "Like PRIVMSG; never answered automatically.",
    ),
    ("OPER", "OPER <name> <password>", "Become an IRC operator."),
    (
        "PART",
        "PART <#channel>[,...] [:<reason>]",
        "Leave channels.",
    ),
    (
        "PASS",
        "PASS <password>",
        "The server password, before NICK and USER.",
    ),
    ("PING", "PING <token>", "The server answers PONG <token>."),
    (
        "PRIVMSG",
        "PRIVMSG <target>[,...] :<text>",
        "Send text to channels or nicks.",
    ),
    ("QUIT", "QUIT [:<reason>]", "Leave the server."),
    (
        "REHASH",
        "REHASH",
        "Re-read the configuration and MOTD (IRC operators).",
    ),
    (
        "SETNAME",
        "SETNAME :<realname>",
        "Change your realname (IRCv3 setname).",
    ),
    (
        "STATS",
        "STATS <letter>",
        "Server statistics for operators (t: tasks, e: executor, l: the NATS link).",
    ),
    (
        "TAGMSG",
        "TAGMSG <target>",
        "A message with tags only (IRCv3 message-tags).",
    ),
    ("TIME", "TIME [<server>]", "The server's time."),
    (
        "TOPIC",
        "TOPIC <#channel> [:<topic>]",
        "Show or set a channel's topic.",
    ),
    (
        "USER",
        "USER <username> 0 * :<realname>",
        "Your username and realname, at registration.",
    ),
    (
        "USERHOST",
        "USERHOST <nick>...",
        "user@host of up to five nicks.",
    ),
    ("USERS", "USERS", "Disabled (446)."),
    ("VERSION", "VERSION", "The server's version and features."),
    (
        "WALLOPS",
        "WALLOPS :<text>",
        "A message to users with mode +w (IRC operators).",
    ),
    (
        "WHO",
        "WHO <mask> [o] | WHO <mask> %<fields>[,<token>]",
        "Users matching a mask or in a channel (WHOX fields: tcuihsnfdlaor).",
    ),
    ("WHOIS", "WHOIS <nick>", "Everything public about a user."),
    (
        "WHOWAS",
        "WHOWAS <nick> [<count>]",
        "Who recently used a nick.",
    ),
];

pub(super) fn help(b: &mut Broker, id: ClientId, msg: &Message) {
    let subject = msg.params.first().filter(|s| !s.is_empty());
    let Some(subject) = subject else {
        index(b, id);
        return;
    };
    let Some(&(name, usage, text)) = TOPICS.iter().find(|t| t.0.eq_ignore_ascii_case(subject))
    else {
        b.reply(id, numeric::ERR_HELPNOTFOUND, &[subject]);
        return;
    };
    b.reply(
        id,
        numeric::RPL_HELPSTART,
        &[name, &format!("** {name} **")],
    );
    b.reply(id, numeric::RPL_HELPTXT, &[name, usage]);
    b.reply(id, numeric::RPL_ENDOFHELP, &[name, text]);
}

/// `HELP` alone: the subjects, several per line.
fn index(b: &mut Broker, id: ClientId) {
    b.reply(
        id,
        numeric::RPL_HELPSTART,
        &["*", "** Help: HELP <subject> for one of **"],
    );
    for row in TOPICS.chunks(8) {
        let names: Vec<&str> = row.iter().map(|t| t.0).collect();
        b.reply(id, numeric::RPL_HELPTXT, &["*", &names.join(" ")]);
    }
    b.reply(id, numeric::RPL_ENDOFHELP, &["*", "End of /HELP"]);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_has_help() {
        for command in super::super::COMMANDS {
            let found = super::TOPICS.iter().any(|t| t.0 == command.name);
            assert!(
                found || command.name == "PONG",
                "no HELP for {}",
                command.name
            );
        }
    }
}
