//! The chat state the broker owns: clients and channels.
//!
//! Only the broker task touches these, so they are plain structs. Keys of the broker's maps are
//! casefolded (CASEMAPPING=rfc1459); the display form is kept in the value.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use std::sync::Arc;

use super::inbox::RecvShared;
use super::{ClientId, SendQueue};

/// One connection, registered or not.
pub(super) struct Client {
    pub id: ClientId,
    pub queue: SendQueue,
    /// The connection's RecvQ, closed when the client is forgotten.
    pub recv: Option<Arc<RecvShared>>,
    pub peer: SocketAddr,
    /// The host part of `nick!user@host`: the peer's IP (no DNS lookups).
    pub host: String,
    pub nick: Option<String>,
    pub user: Option<String>,
    /// `nick!user@host`, kept up to date so the hot path never formats it; shared, so a handler
    /// can hold it while it borrows the broker mutably without copying it per message.
    pub mask: Arc<str>,
    pub realname: String,
    /// The password the client sent with PASS, compared at registration.
    pub pass: Option<String>,
    pub registered: bool,
    /// `CAP LS`/`CAP REQ` seen and no `CAP END` yet: registration waits.
    pub cap_negotiating: bool,
    pub away: Option<String>,
    /// User mode +i.
    pub invisible: bool,
    /// User mode +o: an IRC operator (after a successful OPER).
    pub oper: bool,
    /// Connected over TLS (or wss): WHOIS shows 671.
    pub secure: bool,
    /// An OPER check for this client is running.
    pub oper_pending: bool,
    /// Casefolded names of the channels the client is in.
    pub channels: Vec<String>,
    /// We sent PING because of silence and have heard nothing since.
    pub ping_pending: bool,
    pub signon: SystemTime,
    /// Last PRIVMSG/NOTICE sent, for WHOIS idle time.
    pub last_message: Instant,
}

impl Client {
    pub fn new(id: ClientId, peer: SocketAddr, queue: SendQueue) -> Client {
        Client {
            id,
            queue,
            recv: None,
            peer,
            host: peer.ip().to_string(),
            nick: None,
            user: None,
            mask: Arc::from(""),
            realname: String::new(),
            pass: None,
            registered: false,
            cap_negotiating: false,
            away: None,
            invisible: false,
            oper: false,
            secure: false,
            oper_pending: false,
            channels: Vec::new(),
            ping_pending: false,
            signon: SystemTime::now(),
            last_message: Instant::now(),
        }
    }

    /// Recomputes [`Client::mask`] after the nick or user changed.
    pub fn refresh_mask(&mut self) {
        self.mask = Arc::from(format!(
            "{}!{}@{}",
            self.nick.as_deref().unwrap_or("*"),
            self.user.as_deref().unwrap_or("*"),
            self.host
        ));
    }

    pub fn nick(&self) -> &str {
        self.nick.as_deref().unwrap_or("*")
    }
}

/// A member's place in a channel. The queue is a clone of the client's, so a channel message
/// reaches every member without looking each one up.
pub(super) struct Member {
    pub queue: SendQueue,
    pub op: bool,
    pub voice: bool,
}

impl Member {
    /// The highest prefix (`@`, `+` or none), as in NAMES and WHO.
    pub fn prefix(&self) -> &'static str {
        if self.op {
            "@"
        } else if self.voice {
            "+"
        } else {
            ""
        }
    }
}

pub(super) struct Channel {
    /// The name as first created (display form).
    pub name: String,
    pub topic: Option<Topic>,
    pub members: HashMap<ClientId, Member>,
    pub created: SystemTime,
    /// +n: no messages from outside. On by default.
    pub no_external: bool,
    /// +t: only operators set the topic. On by default.
    pub topic_ops_only: bool,
}

impl Channel {
    pub fn new(name: String) -> Channel {
        Channel {
            name,
            topic: None,
            members: HashMap::new(),
            created: SystemTime::now(),
            no_external: true,
            topic_ops_only: true,
        }
    }

    /// `+nt` and so on.
    pub fn mode_string(&self) -> String {
        let mut s = String::from("+");
        if self.no_external {
            s.push('n');
        }
        if self.topic_ops_only {
            s.push('t');
        }
        s
    }
}

pub(super) struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_at: SystemTime,
}
