//! One file per command. [`dispatch`] checks what every command needs before its handler runs
//! (a known command, a registered client where required, enough parameters), so each handler's
//! body is the command's behaviour alone.

use super::{Broker, ClientId};
use crate::proto::numeric;
use crate::proto::Message;

mod admin;
mod away;
mod cap;
mod help;
mod info;
mod invite_notify;
mod join;
mod links;
mod list;
mod lusers;
mod mode;
mod motd;
mod names;
mod nick;
mod oper;
mod part;
mod pass;
mod ping;
mod privmsg;
mod quit;
mod registration;
mod server_target;
mod setname;
mod stats;
mod time;
mod topic;
mod user;
mod userhost;
mod users;
mod version;
mod who;
mod whois;
mod whowas;

#[allow(unused_imports)] // the INVITE command lands with the moderation work
pub(super) use invite_notify::notify_invite;
pub(super) use oper::oper_checked;
pub(super) use registration::try_complete_registration;

/// A handler gets the broker, the client it runs for, and the client's message.
type Handler = fn(&mut Broker, ClientId, &Message);

struct Command {
    name: &'static str,
    /// Fewer parameters than this get 461 ERR_NEEDMOREPARAMS (commands whose missing argument has
    /// a numeric of its own, like NICK's 431, check it themselves and say 0 here).
    min_params: usize,
    /// Only registered clients may use it; others get 451 ERR_NOTREGISTERED.
    registered: bool,
    run: Handler,
}

const fn cmd(name: &'static str, min_params: usize, registered: bool, run: Handler) -> Command {
    Command {
        name,
        min_params,
        registered,
        run,
    }
}

/// Every command the node understands.
static COMMANDS: &[Command] = &[
    cmd("PRIVMSG", 0, true, privmsg::privmsg),
    cmd("NOTICE", 0, true, privmsg::notice),
    cmd("TAGMSG", 0, true, privmsg::tagmsg),
    cmd("PING", 1, false, ping::ping),
    cmd("PONG", 0, false, ping::pong),
    cmd("JOIN", 1, true, join::join),
    cmd("PART", 1, true, part::part),
    cmd("NICK", 0, false, nick::nick),
    cmd("USER", 4, false, user::user),
    cmd("PASS", 1, false, pass::pass),
    cmd("CAP", 1, false, cap::cap),
    cmd("QUIT", 0, false, quit::quit),
    cmd("TOPIC", 1, true, topic::topic),
    cmd("NAMES", 0, true, names::names),
    cmd("LIST", 0, true, list::list),
    cmd("WHO", 0, true, who::who),
    cmd("WHOIS", 0, true, whois::whois),
    cmd("AWAY", 0, true, away::away),
    cmd("MODE", 1, true, mode::mode),
    cmd("MOTD", 0, true, motd::motd),
    cmd("LUSERS", 0, true, lusers::lusers),
    cmd("OPER", 2, true, oper::oper),
    cmd("STATS", 1, true, stats::stats),
    cmd("USERHOST", 1, true, userhost::userhost),
    cmd("ISON", 1, true, userhost::ison),
    cmd("VERSION", 0, true, version::version),
    cmd("SETNAME", 1, true, setname::setname),
    cmd("WHOWAS", 0, true, whowas::whowas),
    cmd("TIME", 0, true, time::time),
    cmd("INFO", 0, true, info::info),
    cmd("ADMIN", 0, true, admin::admin),
    cmd("LINKS", 0, true, links::links),
    cmd("HELP", 0, true, help::help),
    cmd("USERS", 0, true, users::users),
];

/// Runs the handler for `msg`, or answers why it cannot run.
pub(super) fn dispatch(b: &mut Broker, id: ClientId, msg: Message) {
    let registered = b.clients.get(&id).is_some_and(|c| c.registered);
    let Some(command) = COMMANDS.iter().find(|c| c.name == msg.command) else {
        if registered {
            b.reply(id, numeric::ERR_UNKNOWNCOMMAND, &[&msg.command]);
        } else {
            b.reply(id, numeric::ERR_NOTREGISTERED, &[]);
        }
        return;
    };
    if command.registered && !registered {
        b.reply(id, numeric::ERR_NOTREGISTERED, &[]);
        return;
    }
    if msg.params.len() < command.min_params {
        b.reply(id, numeric::ERR_NEEDMOREPARAMS, &[command.name]);
        return;
    }
    (command.run)(b, id, &msg);
}
