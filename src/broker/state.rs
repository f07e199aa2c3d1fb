//! The chat state the broker owns: clients (channels are in [`super::channel`]).
//!
//! Only the broker task touches these, so they are plain structs. Keys of the broker's maps are
//! casefolded (CASEMAPPING=rfc1459); the display form is kept in the value.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use std::sync::Arc;

use super::caps::Caps;
use super::inbox::RecvShared;
use super::labels::Capture;
use super::{ClientId, SendQueue};

/// One connection, registered or not.
pub(super) struct Client {
    pub id: ClientId,
    pub queue: SendQueue,
    /// The connection's RecvQ, closed when the client is forgotten.
    pub recv: Option<Arc<RecvShared>>,
    pub peer: SocketAddr,
    /// The host part of `nick!user@host`: the peer's IP (no DNS lookups), or its cloak (see
    /// [`super::cloak`]). The real address is `peer`.
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
    /// Enabled IRCv3 capabilities (copied into every [`Member`] of this client).
    pub caps: Caps,
    /// The highest `CAP LS` version the client sent (0: none; 302 enables values and
    /// multiline replies).
    pub cap_version: u32,
    /// The labeled command whose replies wait while this client is parked.
    pub pending_label: Option<Capture>,
    pub away: Option<String>,
    /// User mode +i.
    pub invisible: bool,
    /// User mode +w: receives WALLOPS.
    pub wallops: bool,
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
    /// Flood control's token bucket.
    pub bucket: super::flood::Bucket,
    /// From an exempt address range: flood control does not apply.
    pub flood_exempt: bool,
    /// The node this user is on, for a user of another node (see [`super::link`]); `None`
    /// for our own clients.
    pub node: Option<super::link::NodeId>,
    /// A remote user's id on its own node.
    pub remote_uid: u64,
    /// The revision of the nick's key in the network's nick bucket (0: none or unconfirmed).
    pub rev: u64,
    /// A linked node's registration: the network granted the current nick.
    pub nick_claimed: bool,
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
            caps: Caps::NONE,
            cap_version: 0,
            pending_label: None,
            away: None,
            invisible: false,
            wallops: false,
            oper: false,
            secure: false,
            oper_pending: false,
            channels: Vec::new(),
            ping_pending: false,
            signon: SystemTime::now(),
            last_message: Instant::now(),
            bucket: super::flood::Bucket::new(Instant::now()),
            flood_exempt: false,
            node: None,
            remote_uid: 0,
            rev: 0,
            nick_claimed: false,
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

    /// `+iow` and so on, for 221 RPL_UMODEIS.
    pub fn user_modes(&self) -> String {
        let mut modes = String::from("+");
        for (on, letter) in [(self.invisible, 'i'), (self.oper, 'o'), (self.wallops, 'w')] {
            if on {
                modes.push(letter);
            }
        }
        modes
    }

    /// The modes other nodes of a linked network need (`i`, `o`; `w` is this node's business).
    pub fn shared_modes(&self) -> String {
        let mut modes = String::new();
        for (on, letter) in [(self.invisible, 'i'), (self.oper, 'o')] {
            if on {
                modes.push(letter);
            }
        }
        modes
    }

    pub fn nick(&self) -> &str {
        self.nick.as_deref().unwrap_or("*")
    }
}
