//! The one table of numeric replies: code, Modern IRC name and default text.
//!
//! Names follow the Modern IRC appendix (ircdocs/modern-irc `_data/modern.yml`),
//! texts are the final parameters it shows. `text` is "" when the reply has no
//! fixed text (the last parameter carries data or varies by server). Every
//! constant is listed in [`ALL`]; a test checks codes and names are unique.

/// One numeric reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numeric {
    /// Three ASCII digits, used as the command of the reply.
    pub code: &'static str,
    /// Conventional name, e.g. "ERR_NOSUCHNICK".
    pub name: &'static str,
    /// Default human text, "" when the reply has no fixed text.
    pub text: &'static str,
}

/// Look up a numeric by its three-digit code.
pub fn by_code(code: &str) -> Option<Numeric> {
    ALL.iter().copied().find(|n| n.code == code)
}

/// Defines each constant and the `ALL` list from one table, so they cannot drift.
macro_rules! numerics {
    ($($name:ident = $code:literal, $text:literal;)*) => {
        $(
            #[doc = concat!("`", $code, "` ", stringify!($name), ".")]
            pub const $name: Numeric = Numeric { code: $code, name: stringify!($name), text: $text };
        )*
        /// Every numeric defined in this module, in code order.
        pub const ALL: &[Numeric] = &[$($name),*];
    };
}

numerics! {
    RPL_WELCOME = "001", "";
    RPL_YOURHOST = "002", "";
    RPL_CREATED = "003", "";
    RPL_MYINFO = "004", "";
    RPL_ISUPPORT = "005", "are supported by this server";
    RPL_ENDOFSTATS = "219", "End of /STATS report";
    RPL_UMODEIS = "221", "";
    RPL_STATSDEBUG = "249", "";
    RPL_LUSERCLIENT = "251", "";
    RPL_LUSEROP = "252", "operator(s) online";
    RPL_LUSERUNKNOWN = "253", "unknown connection(s)";
    RPL_LUSERCHANNELS = "254", "channels formed";
    RPL_LUSERME = "255", "";
    RPL_ADMINME = "256", "Administrative info";
    RPL_ADMINLOC1 = "257", "";
    RPL_ADMINLOC2 = "258", "";
    RPL_ADMINEMAIL = "259", "";
    RPL_TRYAGAIN = "263", "Please wait a while and try again.";
    RPL_LOCALUSERS = "265", "";
    RPL_GLOBALUSERS = "266", "";
    RPL_AWAY = "301", "";
    RPL_USERHOST = "302", "";
    RPL_ISON = "303", "";
    RPL_UNAWAY = "305", "You are no longer marked as being away";
    RPL_NOWAWAY = "306", "You have been marked as being away";
    RPL_WHOISUSER = "311", "";
    RPL_WHOISSERVER = "312", "";
    RPL_WHOISOPERATOR = "313", "is an IRC operator";
    RPL_WHOWASUSER = "314", "";
    RPL_ENDOFWHO = "315", "End of WHO list";
    RPL_WHOISIDLE = "317", "seconds idle, signon time";
    RPL_ENDOFWHOIS = "318", "End of /WHOIS list";
    RPL_WHOISCHANNELS = "319", "";
    RPL_LISTSTART = "321", "Users  Name";
    RPL_LIST = "322", "";
    RPL_LISTEND = "323", "End of /LIST";
    RPL_CHANNELMODEIS = "324", "";
    RPL_CREATIONTIME = "329", "";
    RPL_NOTOPIC = "331", "No topic is set";
    RPL_TOPIC = "332", "";
    RPL_TOPICWHOTIME = "333", "";
    RPL_INVITELIST = "336", "";
    RPL_ENDOFINVITELIST = "337", "End of /INVITE list";
    RPL_WHOISACTUALLY = "338", "";
    RPL_INVITING = "341", "";
    RPL_INVEXLIST = "346", "";
    RPL_ENDOFINVEXLIST = "347", "End of Channel Invite Exception List";
    RPL_EXCEPTLIST = "348", "";
    RPL_ENDOFEXCEPTLIST = "349", "End of channel exception list";
    RPL_VERSION = "351", "";
    RPL_WHOREPLY = "352", "";
    RPL_NAMREPLY = "353", "";
    RPL_WHOSPCRPL = "354", "";
    RPL_LINKS = "364", "";
    RPL_ENDOFLINKS = "365", "End of /LINKS list";
    RPL_ENDOFNAMES = "366", "End of /NAMES list";
    RPL_BANLIST = "367", "";
    RPL_ENDOFBANLIST = "368", "End of channel ban list";
    RPL_ENDOFWHOWAS = "369", "End of WHOWAS";
    RPL_INFO = "371", "";
    RPL_MOTD = "372", "";
    RPL_ENDOFINFO = "374", "End of INFO list";
    RPL_MOTDSTART = "375", "";
    RPL_ENDOFMOTD = "376", "End of /MOTD command.";
    RPL_WHOISHOST = "378", "";
    RPL_YOUREOPER = "381", "You are now an IRC operator";
    RPL_REHASHING = "382", "Rehashing";
    RPL_TIME = "391", "";
    ERR_NOSUCHNICK = "401", "No such nick/channel";
    ERR_NOSUCHSERVER = "402", "No such server";
    ERR_NOSUCHCHANNEL = "403", "No such channel";
    ERR_CANNOTSENDTOCHAN = "404", "Cannot send to channel";
    ERR_TOOMANYCHANNELS = "405", "You have joined too many channels";
    ERR_WASNOSUCHNICK = "406", "There was no such nickname";
    ERR_TOOMANYTARGETS = "407", "Too many recipients";
    ERR_NOORIGIN = "409", "No origin specified";
    ERR_INVALIDCAPCMD = "410", "Invalid CAP command";
    ERR_NORECIPIENT = "411", "No recipient given";
    ERR_NOTEXTTOSEND = "412", "No text to send";
    ERR_INPUTTOOLONG = "417", "Input line was too long";
    ERR_UNKNOWNCOMMAND = "421", "Unknown command";
    ERR_NOMOTD = "422", "MOTD File is missing";
    ERR_NONICKNAMEGIVEN = "431", "No nickname given";
    ERR_ERRONEUSNICKNAME = "432", "Erroneus nickname";
    ERR_NICKNAMEINUSE = "433", "Nickname is already in use";
    ERR_NICKCOLLISION = "436", "";
    ERR_USERNOTINCHANNEL = "441", "They aren't on that channel";
    ERR_NOTONCHANNEL = "442", "You're not on that channel";
    ERR_USERONCHANNEL = "443", "is already on channel";
    ERR_USERSDISABLED = "446", "USERS has been disabled";
    ERR_NOTREGISTERED = "451", "You have not registered";
    ERR_NEEDMOREPARAMS = "461", "Not enough parameters";
    ERR_ALREADYREGISTERED = "462", "You may not reregister";
    ERR_PASSWDMISMATCH = "464", "Password incorrect";
    ERR_YOUREBANNEDCREEP = "465", "You are banned from this server.";
    ERR_CHANNELISFULL = "471", "Cannot join channel (+l)";
    ERR_UNKNOWNMODE = "472", "is unknown mode char to me";
    ERR_INVITEONLYCHAN = "473", "Cannot join channel (+i)";
    ERR_BANNEDFROMCHAN = "474", "Cannot join channel (+b)";
    ERR_BADCHANNELKEY = "475", "Cannot join channel (+k)";
    ERR_BADCHANMASK = "476", "Bad Channel Mask";
    ERR_BANLISTFULL = "478", "Channel list is full";
    ERR_NOPRIVILEGES = "481", "Permission Denied- You're not an IRC operator";
    ERR_CHANOPRIVSNEEDED = "482", "You're not channel operator";
    ERR_CANTKILLSERVER = "483", "You cant kill a server!";
    ERR_NOOPERHOST = "491", "No O-lines for your host";
    ERR_UMODEUNKNOWNFLAG = "501", "Unknown MODE flag";
    ERR_USERSDONTMATCH = "502", "Cant change mode for other users";
    ERR_HELPNOTFOUND = "524", "No help available on this topic";
    RPL_STARTTLS = "670", "STARTTLS successful, proceed with TLS handshake";
    RPL_WHOISSECURE = "671", "is using a secure connection";
    ERR_STARTTLS = "691", "STARTTLS failed";
    ERR_INVALIDMODEPARAM = "696", "";
    RPL_HELPSTART = "704", "";
    RPL_HELPTXT = "705", "";
    RPL_ENDOFHELP = "706", "";
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_names_unique_and_well_formed() {
        let mut codes = HashSet::new();
        let mut names = HashSet::new();
        for n in ALL {
            assert!(
                n.code.len() == 3 && n.code.bytes().all(|b| b.is_ascii_digit()),
                "{n:?}"
            );
            assert!(
                n.name.starts_with("RPL_") || n.name.starts_with("ERR_"),
                "{n:?}"
            );
            assert!(codes.insert(n.code), "duplicate code {}", n.code);
            assert!(names.insert(n.name), "duplicate name {}", n.name);
        }
        assert!(
            ALL.windows(2).all(|w| w[0].code < w[1].code),
            "ALL is in code order"
        );
    }

    #[test]
    fn texts_and_lookup() {
        assert_eq!(ERR_NOSUCHNICK.text, "No such nick/channel");
        assert_eq!(ERR_ERRONEUSNICKNAME.text, "Erroneus nickname");
        assert_eq!(RPL_WELCOME.text, "");
        assert_eq!(by_code("421"), Some(ERR_UNKNOWNCOMMAND));
        assert_eq!(by_code("999"), None);
        assert_eq!(by_code(""), None);
    }
}
