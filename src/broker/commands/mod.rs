//! One file per command. [`dispatch`] checks what every command needs before its handler runs
//! (a known command, a registered client or an IRC operator where required, enough
//! parameters), so each handler's body is the command's behaviour alone.

use super::{Broker, ClientId};
use crate::proto::numeric;
use crate::proto::Message;

mod admin;
mod away;
mod cap;
mod chathistory;
mod help;
mod info;
mod invite;
mod invite_notify;
mod join;
mod kick;
mod kill;
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
mod rehash;
mod server_target;
mod setname;
mod stats;
mod time;
mod topic;
mod user;
mod userhost;
mod users;
mod version;
mod wallops;
mod who;
mod whois;
mod whowas;

pub(super) use away::remote_away;
pub(super) use chathistory::history_read;
pub(super) use invite::remote_invite;
use invite_notify::notify_invite;
pub(super) use join::announce as announce_join;
pub(super) use kill::remote_kill;
pub(super) use mode::{
    channel_state, merge_channel, remote_channel_mode, set_remote_status, settle_creation,
};
pub(super) use mode::{KEY_LEN, MAX_PARAM_MODES};
pub(super) use nick::{nick_claimed, rename};
pub(super) use oper::oper_checked;
pub(super) use registration::try_complete_registration;
pub(super) use rehash::{finished as rehash_finished, start as rehash_start};
pub(super) use setname::remote_setname;
pub(super) use topic::remote_topic;

/// A handler gets the broker, the client it runs for, and the client's message.
type Handler = fn(&mut Broker, ClientId, &Message);

/// Who may use a command.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone, registered or not (NICK, USER, PING, ...).
    Anyone,
    /// Registered clients; others get 451 ERR_NOTREGISTERED.
    Registered,
    /// IRC operators (registered clients after OPER); others get 481 ERR_NOPRIVILEGES.
    Oper,
}

use Access::{Anyone, Oper, Registered};

struct Command {
    name: &'static str,
    /// Fewer parameters than this get 461 ERR_NEEDMOREPARAMS (commands whose missing argument has
    /// a numeric of its own, like NICK's 431, check it themselves and say 0 here).
    min_params: usize,
    access: Access,
    run: Handler,
}

const fn cmd(name: &'static str, min_params: usize, access: Access, run: Handler) -> Command {
    Command {
        name,
        min_params,
        access,
        run,
    }
}

/// Every command the node understands.
static COMMANDS: &[Command] = &[
    cmd("PRIVMSG", 0, Registered, privmsg::privmsg),
    cmd("NOTICE", 0, Registered, privmsg::notice),
    cmd("PING", 1, Anyone, ping::ping),
    cmd("PONG", 0, Anyone, ping::pong),
    cmd("JOIN", 1, Registered, join::join),
    cmd("PART", 1, Registered, part::part),
    cmd("NICK", 0, Anyone, nick::nick),
    cmd("USER", 4, Anyone, user::user),
    cmd("PASS", 1, Anyone, pass::pass),
    cmd("CAP", 1, Anyone, cap::cap),
    cmd("QUIT", 0, Anyone, quit::quit),
    cmd("TOPIC", 1, Registered, topic::topic),
    cmd("NAMES", 0, Registered, names::names),
    cmd("LIST", 0, Registered, list::list),
    cmd("WHO", 0, Registered, who::who),
    cmd("WHOIS", 0, Registered, whois::whois),
    cmd("AWAY", 0, Registered, away::away),
    cmd("MODE", 1, Registered, mode::mode),
    cmd("MOTD", 0, Registered, motd::motd),
    cmd("LUSERS", 0, Registered, lusers::lusers),
    cmd("OPER", 2, Registered, oper::oper),
    cmd("STATS", 1, Oper, stats::stats),
    cmd("REHASH", 0, Oper, rehash::rehash),
    cmd("USERHOST", 1, Registered, userhost::userhost),
    cmd("ISON", 1, Registered, userhost::ison),
    cmd("VERSION", 0, Registered, version::version),
    cmd("CHATHISTORY", 0, Registered, chathistory::chathistory),
    cmd("KICK", 2, Registered, kick::kick),
    cmd("INVITE", 0, Registered, invite::invite),
    cmd("KILL", 1, Oper, kill::kill),
    cmd("WALLOPS", 1, Oper, wallops::wallops),
    cmd("TAGMSG", 0, Registered, privmsg::tagmsg),
    cmd("SETNAME", 1, Registered, setname::setname),
    cmd("WHOWAS", 0, Registered, whowas::whowas),
    cmd("TIME", 0, Registered, time::time),
    cmd("INFO", 0, Registered, info::info),
    cmd("ADMIN", 0, Registered, admin::admin),
    cmd("LINKS", 0, Registered, links::links),
    cmd("HELP", 0, Registered, help::help),
    cmd("USERS", 0, Registered, users::users),
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
    if command.access != Anyone && !registered {
        b.reply(id, numeric::ERR_NOTREGISTERED, &[]);
        return;
    }
    if command.access == Oper && !b.clients.get(&id).is_some_and(|c| c.oper) {
        b.reply(id, numeric::ERR_NOPRIVILEGES, &[]);
        return;
    }
    if msg.params.len() < command.min_params {
        b.reply(id, numeric::ERR_NEEDMOREPARAMS, &[command.name]);
        return;
    }
    (command.run)(b, id, &msg);
    // Its strings serve the next line parsed on this thread.
    msg.recycle();
}
