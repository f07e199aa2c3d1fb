//! The broker's side of a linked network (`--link`, see docs/network.md): users on other nodes,
//! and the records this node hands the link adapter.
//!
//! The broker never touches the network. It hands the adapter ([`crate::link`]) [`LinkOut`]
//! records on a bounded queue (`try_send`: a full queue drops the record and counts it, the
//! broker never waits), and hears back [`LinkIn`] events through its inbox like any connection.
//!
//! A user on another node is a **remote client**: an ordinary [`Client`] with `node` set, whose
//! send queue is closed (nothing is ever written to it) and whose channel memberships are
//! marked remote, so channel fanout skips it with one flag test. Commands need no special case
//! to see remote users (NAMES, WHO, WHOIS, LUSERS, ISON read the same tables); the few that act
//! (PRIVMSG to a nick, KICK) hand the act to the link.
//!
//! Invariants: a remote client is registered from its creation to its removal; it is removed
//! only by its node (QUIT, burst), or when its node is declared dead ([`LinkIn::NodeLost`]).
//! Local users' ids are their uids on the network, so `(our node, id)` names a user everywhere.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use super::forms::Forms;
use super::history::RecordKind;
use super::state::Client;
use super::{build_line, send_queue, Broker, ClientId};
use crate::proto::{casemap, numeric};

/// A node's id on the network: random per process start, so a restarted node is a new node.
pub type NodeId = Arc<str>;

/// What [`super::Event::Link`] carries: [`LinkIn`] with the `link` feature; without it, a type
/// with no value, since only the link adapter sends these.
#[cfg(feature = "link")]
pub type LinkEvent = LinkIn;
/// What [`super::Event::Link`] carries: [`LinkIn`] with the `link` feature; without it, a type
/// with no value, since only the link adapter sends these.
#[cfg(not(feature = "link"))]
pub type LinkEvent = std::convert::Infallible;

/// The id the link adapter's RecvQ uses in the broker's round (no client has it).
pub const LINK_QUEUE_ID: ClientId = u64::MAX;

/// Ids the broker gives remote clients start here; local ids count up from 1 and never get
/// near it.
const REMOTE_IDS: ClientId = 1 << 62;

/// A user as its node announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// Its id on its own node.
    pub uid: u64,
    /// Nick, username, shown host, realname.
    pub nick: String,
    /// The username.
    pub user: String,
    /// The host others see (the cloak when cloaking is on).
    pub host: String,
    /// The realname.
    pub realname: String,
    /// The revision of its nick's key in the network's nick bucket (0: not confirmed).
    pub rev: u64,
    /// Its channels, with its status in each.
    pub channels: Vec<Membership>,
    /// Its away message, if it is away.
    pub away: Option<String>,
    /// The user modes others see: `i` (invisible), `o` (IRC operator); empty for none.
    pub modes: String,
}

/// A user's place in one channel, as its node announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The channel's display name.
    pub channel: String,
    /// Channel operator (`@`).
    pub op: bool,
    /// Voiced (`+`).
    pub voice: bool,
}

/// One mask of a channel's ban (`b`), exception (`e`) or invite-exception (`I`) list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListMask {
    /// `b`, `e` or `I`.
    pub letter: char,
    /// The mask, as set.
    pub mask: String,
    /// Who set it.
    pub set_by: String,
    /// When (Unix seconds).
    pub set_at: u64,
}

/// A channel's topic as the network knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicState {
    /// The text (never empty).
    pub text: String,
    /// Who set it (a nick).
    pub set_by: String,
    /// When (Unix seconds).
    pub set_at: u64,
}

/// A channel's state, as a node bursts it: everything but the members (they come with their
/// users' INTROs). See [`super::commands::merge_channel`] for how a node merges it with its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelState {
    /// The display name.
    pub name: String,
    /// When the channel was created, in milliseconds since the Unix epoch: the older side
    /// wins a merge.
    pub created: u64,
    /// The flag modes set, from `imnst` (`"nt"`).
    pub flags: String,
    /// +k.
    pub key: Option<String>,
    /// +l.
    pub limit: Option<u64>,
    /// The topic.
    pub topic: Option<TopicState>,
    /// The +b, +e and +I lists (each at most `MAX_LIST` masks).
    pub lists: Vec<ListMask>,
}

/// Who a message from another node is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MsgTarget {
    /// A channel, by its display name.
    Channel(String),
    /// A user of the receiving node, by its uid there.
    User(u64),
}

/// A fact one node tells the others. `uid`s are the origin node's ids, except where named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Remote {
    /// A user and all its channels (after registration, and in bursts).
    Intro(UserInfo),
    /// A burst of every user of the origin node starts (with its server name): users not in
    /// it are gone.
    BurstStart {
        /// The origin's server name.
        name: String,
    },
    /// The burst is complete.
    BurstEnd,
    /// A user joined a channel.
    Join {
        /// The user.
        uid: u64,
        /// The channel's display name.
        channel: String,
        /// Whether it is an operator there (it created the channel).
        op: bool,
        /// When it created the channel (milliseconds since the Unix epoch), 0 if it did not:
        /// two creations of one channel are settled by age (see [`Broker::remote_join`]).
        created: u64,
    },
    /// A user left a channel.
    Part {
        /// The user.
        uid: u64,
        /// The channel's display name.
        channel: String,
        /// The PART reason.
        reason: Option<String>,
    },
    /// A user kicked someone (`target_node`/`target_uid`) out of a channel.
    Kick {
        /// The kicker.
        uid: u64,
        /// The channel's display name.
        channel: String,
        /// The kicked user's node.
        target_node: NodeId,
        /// The kicked user's uid on its node.
        target_uid: u64,
        /// The comment.
        reason: String,
    },
    /// A user left the network.
    Quit {
        /// The user.
        uid: u64,
        /// The QUIT reason.
        reason: String,
    },
    /// A user changed nick.
    Nick {
        /// The user.
        uid: u64,
        /// The new nick.
        nick: String,
        /// Its key's revision (0: not confirmed).
        rev: u64,
    },
    /// A user changed a channel's modes: the mode string and its arguments, as announced.
    Mode {
        /// The user.
        uid: u64,
        /// The channel's display name.
        channel: String,
        /// `+o-v`, `alice`, `bob`.
        params: Vec<String>,
    },
    /// A channel's state (in bursts, after the users' INTROs).
    Channel(ChannelState),
    /// A user set (`Some`) or cleared its away message.
    Away {
        /// The user.
        uid: u64,
        /// The message; `None`: back.
        text: Option<String>,
    },
    /// A user's modes as others see them changed: `modes` is the whole new set (`i`, `o`).
    UserModes {
        /// The user.
        uid: u64,
        /// `io`, `i`, `o` or empty.
        modes: String,
    },
    /// A user changed its realname (SETNAME).
    Setname {
        /// The user.
        uid: u64,
        /// The new realname.
        realname: String,
    },
    /// An operator (`uid`) killed a user of another node (`target_node`/`target_uid`): that
    /// node disconnects its user, and the user's QUIT then reaches every node as any QUIT does.
    Kill {
        /// The operator.
        uid: u64,
        /// The victim's node.
        target_node: NodeId,
        /// The victim's uid on its node.
        target_uid: u64,
        /// The operator's reason.
        reason: String,
    },
    /// A user invited a user (`target_node`/`target_uid`) into a channel.
    Invite {
        /// The inviter.
        uid: u64,
        /// The channel's display name.
        channel: String,
        /// The invited user's node.
        target_node: NodeId,
        /// The invited user's uid on its node.
        target_uid: u64,
    },
    /// A user set a channel's topic.
    Topic {
        /// The user.
        uid: u64,
        /// The channel's display name.
        channel: String,
        /// The new topic (empty: cleared).
        text: String,
    },
    /// PRIVMSG or NOTICE.
    Message {
        /// The sender.
        uid: u64,
        /// `PRIVMSG` or `NOTICE`.
        command: String,
        /// The recipient.
        target: MsgTarget,
        /// The text.
        text: String,
    },
}

/// Where a published record goes (the adapter maps each to a subject).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Every node (`cn.<net>.state`).
    State,
    /// Nodes with members in the channel (its casefolded name).
    Channel(String),
    /// One node.
    Node(NodeId),
}

/// What the broker hands the link adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkOut {
    /// Claim `nick` for local client `id` in the nick bucket (a KV create); the answer comes
    /// back as [`LinkIn::Claimed`]. `reclaim`: the user already has it (after a reconnect).
    Claim {
        /// The client.
        id: ClientId,
        /// The nick.
        nick: String,
        /// Re-asserting a nick held while the link was down.
        reclaim: bool,
    },
    /// Give `nick`'s key back, if it still holds revision `rev`.
    Release {
        /// The nick.
        nick: String,
        /// The revision the claim got.
        rev: u64,
    },
    /// Publish `event` on `route`.
    Publish {
        /// Where.
        route: Route,
        /// What.
        event: Remote,
    },
    /// This node now has (`on`) or no longer has local members in channel `key`.
    Interest {
        /// The casefolded channel name.
        key: String,
        /// Subscribe or unsubscribe.
        on: bool,
    },
    /// Every local user, then the state of every channel with local members: to one node
    /// (answering its hello) or to all (after a reconnect).
    Burst {
        /// `None`: every node.
        to: Option<NodeId>,
        /// The users.
        users: Vec<UserInfo>,
        /// The channels.
        channels: Vec<ChannelState>,
    },
}

/// How a nick claim ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key is ours, at this revision.
    Won(u64),
    /// Another user on the network holds it.
    Taken,
    /// The link is down (or JetStream did not answer): the nick is held locally and claimed
    /// again on reconnect.
    Unconfirmed,
}

/// What the link adapter tells the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkIn {
    /// Connected (again) to NATS: re-claim local nicks, then burst.
    Up,
    /// Node `node` said hello: send it our burst.
    BurstWanted {
        /// Who asked.
        node: NodeId,
    },
    /// The answer to a [`LinkOut::Claim`].
    Claimed {
        /// The client.
        id: ClientId,
        /// The nick claimed.
        nick: String,
        /// It was a reclaim.
        reclaim: bool,
        /// How it ended.
        outcome: ClaimOutcome,
    },
    /// A fact from another node.
    Remote {
        /// The origin.
        node: NodeId,
        /// The fact.
        event: Remote,
    },
    /// A node is alive (its heartbeat), with its server name.
    NodeSeen {
        /// The node.
        node: NodeId,
        /// Its server name.
        name: String,
    },
    /// A node missed its heartbeats (or we lost NATS): its users are gone. `clean`: this
    /// node deletes the dead node's nick keys (the lowest live id does it).
    NodeLost {
        /// The node.
        node: NodeId,
        /// Whether to release its nicks.
        clean: bool,
    },
}

/// What the server plugs in when the node is linked.
#[derive(Clone)]
pub struct LinkHooks {
    /// Our node id.
    pub node: NodeId,
    /// The adapter's queue (bounded; the broker only `try_send`s).
    pub sink: async_channel::Sender<LinkOut>,
    /// Lines about the link's health, for `STATS l`.
    pub health: Arc<dyn Fn() -> Vec<String> + Send + Sync>,
}

impl std::fmt::Debug for LinkHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkHooks")
            .field("node", &self.node)
            .finish()
    }
}

/// A node we know of.
pub(super) struct NodeInfo {
    pub name: String,
}

/// The broker's link tables.
#[derive(Default)]
pub(super) struct LinkState {
    /// (node, uid) -> our id for that remote user.
    pub remote: HashMap<(NodeId, u64), ClientId>,
    /// Nodes heard of, by id (sorted, so LINKS is stable).
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// Bursts being received: the uids seen so far, per node.
    bursts: HashMap<NodeId, HashSet<u64>>,
    /// Reclaims still unanswered after a reconnect; the burst waits for them.
    reclaiming: usize,
    /// The next id for a remote client.
    next_remote: ClientId,
    /// Records dropped because the adapter's queue was full.
    pub dropped: u64,
    /// The queue was full at the last try: one warning per run of drops, not one per record.
    dropping: bool,
}

impl Broker {
    /// Whether the node is linked (`--link`). Only the link adapter (feature `link`) sets the
    /// hooks, so a build without it is never linked: saying so at compile time leaves the
    /// remote-user code out of the minimal board binary (docs/embedded.md).
    /// Always inlined: at the board profile's `opt-level = "z"` a call would stay a call, and
    /// the code behind `if b.linked()` would stay in the minimal build.
    #[inline(always)]
    pub(super) fn linked(&self) -> bool {
        cfg!(feature = "link") && self.config.hooks.link.is_some()
    }

    /// Hands `out` to the adapter; never waits. A full queue drops the record (counted in
    /// `STATS l`): the network state heals at the next burst.
    ///
    /// Inlined: without the `link` feature it is empty, and each caller drops the record it
    /// built where it knows its kind, so the minimal build carries no drop code for the kinds
    /// it never makes.
    #[inline(always)]
    pub(super) fn link_out(&mut self, out: LinkOut) {
        if cfg!(feature = "link") {
            self.hand_to_link(out);
        }
    }

    fn hand_to_link(&mut self, out: LinkOut) {
        let Some(link) = &self.config.hooks.link else {
            return;
        };
        match link.sink.try_send(out) {
            Err(async_channel::TrySendError::Full(_)) => {
                self.link.dropped += 1;
                if !std::mem::replace(&mut self.link.dropping, true) {
                    log::warn!("link: queue to NATS full; dropping records until it drains");
                }
            }
            Ok(()) => self.link.dropping = false,
            Err(async_channel::TrySendError::Closed(_)) => {}
        }
    }

    /// Publishes a fact about local client `id` to every node, if linked and `id` is local.
    pub(super) fn publish_state(&mut self, id: ClientId, event: Remote) {
        if self.linked() && self.clients.get(&id).is_some_and(|c| c.node.is_none()) {
            self.link_out(LinkOut::Publish {
                route: Route::State,
                event,
            });
        }
    }

    /// Local user `id` as the network sees it.
    pub(super) fn user_info(&self, id: ClientId) -> Option<UserInfo> {
        let c = self.clients.get(&id).filter(|c| c.registered)?;
        let channels = c
            .channels
            .iter()
            .filter_map(|key| self.channels.get(key))
            .map(|ch| {
                let member = ch.members.get(&id);
                Membership {
                    channel: ch.name.clone(),
                    op: member.is_some_and(|m| m.op),
                    voice: member.is_some_and(|m| m.voice),
                }
            })
            .collect();
        Some(UserInfo {
            uid: id,
            nick: c.nick().to_string(),
            user: c.user.clone().unwrap_or_default(),
            host: c.host.clone(),
            realname: c.realname.clone(),
            rev: c.rev,
            channels,
            away: c.away.clone(),
            modes: c.shared_modes(),
        })
    }

    /// Tells the network local user `id`'s modes as others see them (after MODE or OPER).
    pub(super) fn publish_user_modes(&mut self, id: ClientId) {
        if let Some(modes) = self.clients.get(&id).map(|c| c.shared_modes()) {
            self.publish_state(id, Remote::UserModes { uid: id, modes });
        }
    }

    /// Remote user `id`'s modes made `modes` (WHO's `*`, WHOIS 313, +i visibility).
    fn set_remote_modes(&mut self, id: ClientId, modes: &str) {
        if let Some(c) = self.clients.get_mut(&id).filter(|c| c.node.is_some()) {
            c.invisible = modes.contains('i');
            c.oper = modes.contains('o');
        }
    }

    fn local_users(&self) -> Vec<UserInfo> {
        let ids: Vec<ClientId> = self
            .clients
            .values()
            .filter(|c| c.registered && c.node.is_none())
            .map(|c| c.id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.user_info(id))
            .collect()
    }

    /// The server name of node `node` (its id while no heartbeat named it).
    pub(super) fn node_name(&self, node: &NodeId) -> String {
        self.link
            .nodes
            .get(node)
            .map_or_else(|| node.to_string(), |n| n.name.clone())
    }

    /// The server name of the node client `c` is on (ours for a local client).
    pub(super) fn server_of(&self, c: &Client) -> String {
        match &c.node {
            Some(node) if cfg!(feature = "link") => self.node_name(node),
            _ => self.config.server_name.clone(),
        }
    }

    /// Handles one event from the adapter. (Without the `link` feature nothing calls it: the
    /// remote-user code it reaches stays compiled, for the tests, and out of the binary.)
    #[cfg_attr(not(feature = "link"), allow(dead_code))]
    pub(super) fn handle_link(&mut self, event: LinkIn) {
        if !cfg!(feature = "link") {
            return; // only the link adapter sends these: see `linked`
        }
        match event {
            LinkIn::Up => self.link_up(),
            LinkIn::BurstWanted { node } => self.burst(Some(node)),
            LinkIn::Claimed {
                id,
                nick,
                reclaim,
                outcome,
            } => {
                if reclaim {
                    self.reclaimed(id, &nick, outcome);
                } else {
                    super::commands::nick_claimed(self, id, &nick, outcome);
                }
            }
            LinkIn::Remote { node, event } => self.apply_remote(node, event),
            LinkIn::NodeSeen { node, name } => {
                if !self.link.nodes.contains_key(&node) {
                    log::info!("link: node {name} ({node}) joined the network");
                }
                self.link.nodes.insert(node, NodeInfo { name });
            }
            LinkIn::NodeLost { node, clean } => self.node_lost(&node, clean),
        }
    }

    /// Connected (again): every local nick is claimed again (a node cut off for longer than
    /// the dead-node time lost its keys); the burst follows once every claim is answered, so
    /// the burst never announces a nick the network gave to someone else meanwhile.
    fn link_up(&mut self) {
        let users: Vec<(ClientId, String)> = self
            .clients
            .values()
            .filter(|c| c.registered && c.node.is_none())
            .map(|c| (c.id, c.nick().to_string()))
            .collect();
        self.link.reclaiming = users.len();
        for (id, nick) in users {
            self.link_out(LinkOut::Claim {
                id,
                nick,
                reclaim: true,
            });
        }
        if self.link.reclaiming == 0 {
            self.burst_all();
        }
    }

    fn burst_all(&mut self) {
        self.burst(None);
    }

    /// Our users, then the state of every channel we have local members in, to node `to`
    /// (or to every node).
    fn burst(&mut self, to: Option<NodeId>) {
        let users = self.local_users();
        let channels = self
            .channels
            .values()
            .filter(|c| c.local_members > 0)
            .map(super::commands::channel_state)
            .collect();
        self.link_out(LinkOut::Burst {
            to,
            users,
            channels,
        });
    }

    /// The answer to a reclaim. The collision rule: the key's owner keeps the nick; our user,
    /// who held it only locally while the link was down, is renamed to a nick unique to it.
    fn reclaimed(&mut self, id: ClientId, nick: &str, outcome: ClaimOutcome) {
        let current = self.clients.get(&id).map(|c| c.nick().to_string());
        match (outcome, current) {
            (ClaimOutcome::Won(rev), Some(now)) if now == nick => {
                if let Some(c) = self.clients.get_mut(&id) {
                    c.rev = rev;
                }
            }
            (ClaimOutcome::Won(rev), _) => self.link_out(LinkOut::Release {
                nick: nick.to_string(),
                rev,
            }),
            (ClaimOutcome::Taken, Some(now)) if now == nick => {
                let fallback = self.fallback_nick(id);
                log::warn!("link: nick {nick} is held elsewhere on the network; renaming {id} to {fallback}");
                super::commands::rename(self, id, &fallback, 0);
                self.link_out(LinkOut::Claim {
                    id,
                    nick: fallback,
                    reclaim: true,
                });
                return; // still reclaiming: the fallback's answer counts instead
            }
            _ => {}
        }
        self.link.reclaiming = self.link.reclaiming.saturating_sub(1);
        if self.link.reclaiming == 0 {
            self.burst_all();
        }
    }

    /// A nick no one else can hold: the node id's start and the client id.
    pub(super) fn fallback_nick(&self, id: ClientId) -> String {
        let node = self
            .config
            .hooks
            .link
            .as_ref()
            .map_or("0".to_string(), |l| l.node.chars().take(6).collect());
        let nick = format!("u{node}x{id}");
        nick.chars().take(self.config.limits.nick_len).collect()
    }

    /// Node `node` is gone: each of its users leaves with a netsplit QUIT
    /// (`<our name> <its name>`, which clients fold into one split message).
    fn node_lost(&mut self, node: &NodeId, clean: bool) {
        let name = self.node_name(node);
        let reason = format!("{} {name}", self.config.server_name);
        let gone: Vec<ClientId> = self
            .link
            .remote
            .iter()
            .filter(|((n, _), _)| n == node)
            .map(|(_, &id)| id)
            .collect();
        log::info!(
            "link: node {name} ({node}) lost; {} of its users leave",
            gone.len()
        );
        for id in gone {
            if clean {
                if let Some(c) = self.clients.get(&id).filter(|c| c.rev > 0) {
                    let (nick, rev) = (c.nick().to_string(), c.rev);
                    self.link_out(LinkOut::Release { nick, rev });
                }
            }
            self.remove_remote(id, &reason);
        }
        self.link.nodes.remove(node);
        self.link.bursts.remove(node);
    }

    /// Forgets remote client `id` (QUIT to local peers).
    fn remove_remote(&mut self, id: ClientId, reason: &str) {
        if let Some(c) = self.clients.get(&id) {
            if let Some(node) = c.node.clone() {
                self.link.remote.remove(&(node, c.remote_uid));
            }
        }
        self.disconnect(id, reason);
    }

    /// The inverse of [`Broker::user_id`]: client `id`'s node and its uid there (ours and `id`
    /// for a local client); `None` if unknown or not linked.
    pub(super) fn network_id(&self, id: ClientId) -> Option<(NodeId, u64)> {
        let c = self.clients.get(&id)?;
        match &c.node {
            Some(node) => Some((node.clone(), c.remote_uid)),
            None => Some((self.config.hooks.link.as_ref()?.node.clone(), id)),
        }
    }

    /// Our id for user `uid` of node `node`: a local client if `node` is us, a remote one
    /// otherwise; if known.
    fn user_id(&self, node: &NodeId, uid: u64) -> Option<ClientId> {
        let ours = self.config.hooks.link.as_ref().map(|l| &l.node);
        if ours == Some(node) {
            self.clients
                .get(&uid)
                .filter(|c| c.node.is_none())
                .map(|c| c.id)
        } else {
            self.remote_id(node, uid)
        }
    }

    /// The local id of `node`'s user `uid`, if known.
    fn remote_id(&self, node: &NodeId, uid: u64) -> Option<ClientId> {
        self.link.remote.get(&(node.clone(), uid)).copied()
    }

    fn apply_remote(&mut self, node: NodeId, event: Remote) {
        if !self.link.nodes.contains_key(&node) {
            self.link.nodes.insert(
                node.clone(),
                NodeInfo {
                    name: node.to_string(),
                },
            );
        }
        match event {
            Remote::Intro(info) => self.remote_intro(&node, info),
            Remote::BurstStart { name } => {
                self.link.nodes.insert(node.clone(), NodeInfo { name });
                self.link.bursts.insert(node, HashSet::new());
            }
            Remote::BurstEnd => self.burst_end(&node),
            Remote::Quit { uid, reason } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    self.remove_remote(id, &reason);
                }
            }
            Remote::Join {
                uid,
                channel,
                op,
                created,
            } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    let source = self.node_name(&node);
                    let key = casemap::casefold(&channel);
                    let new = !self.channels.contains_key(&key);
                    let op = super::commands::settle_creation(self, &source, &channel, op, created);
                    self.remote_join(id, &channel, op);
                    if let Some(c) = self.channels.get_mut(&key).filter(|_| new && created > 0) {
                        // Created here by its creator's JOIN: it has the creator's age.
                        c.created =
                            std::time::UNIX_EPOCH + std::time::Duration::from_millis(created);
                    }
                }
            }
            Remote::Part {
                uid,
                channel,
                reason,
            } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    self.remote_part(id, &casemap::casefold(&channel), reason.as_deref());
                }
            }
            Remote::Kick {
                uid,
                channel,
                target_node,
                target_uid,
                reason,
            } => self.remote_kick(&node, uid, &channel, &target_node, target_uid, &reason),
            Remote::Nick { uid, nick, rev } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    super::commands::rename(self, id, &nick, rev);
                }
            }
            Remote::Mode {
                uid,
                channel,
                params,
            } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    super::commands::remote_channel_mode(self, id, &channel, &params);
                }
            }
            Remote::Channel(state) => {
                let source = self.node_name(&node);
                super::commands::merge_channel(self, &source, &state);
            }
            Remote::Away { uid, text } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    super::commands::remote_away(self, id, text.as_deref());
                }
            }
            Remote::UserModes { uid, modes } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    self.set_remote_modes(id, &modes);
                }
            }
            Remote::Setname { uid, realname } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    super::commands::remote_setname(self, id, &realname);
                }
            }
            Remote::Kill {
                uid,
                target_node,
                target_uid,
                reason,
            } => {
                let ours = self.config.hooks.link.as_ref().map(|l| &l.node);
                let killer = self.remote_id(&node, uid);
                if ours == Some(&target_node) {
                    if let (Some(killer), Some(victim)) =
                        (killer, self.user_id(&target_node, target_uid))
                    {
                        super::commands::remote_kill(self, killer, victim, &reason);
                    }
                }
            }
            Remote::Invite {
                uid,
                channel,
                target_node,
                target_uid,
            } => {
                let inviter = self.remote_id(&node, uid);
                let target = self.user_id(&target_node, target_uid);
                if let (Some(inviter), Some(target)) = (inviter, target) {
                    super::commands::remote_invite(self, inviter, target, &channel);
                }
            }
            Remote::Topic { uid, channel, text } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    super::commands::remote_topic(self, id, &channel, &text);
                }
            }
            Remote::Message {
                uid,
                command,
                target,
                text,
            } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    self.remote_message(id, &command, target, &text);
                }
            }
        }
    }

    /// A user introduced (or re-introduced in a burst): created or updated, its channels made
    /// exactly the announced ones (JOIN and PART shown for the difference), its status in each
    /// and its away message set as announced (a MODE from its node's name, an AWAY to peers
    /// with away-notify, for what changed).
    fn remote_intro(&mut self, node: &NodeId, info: UserInfo) {
        if let Some(seen) = self.link.bursts.get_mut(node) {
            seen.insert(info.uid);
        }
        let id = match self.remote_id(node, info.uid) {
            Some(id) => {
                if self.clients.get(&id).is_some_and(|c| c.nick() != info.nick) {
                    super::commands::rename(self, id, &info.nick, info.rev);
                }
                id
            }
            None => self.add_remote(node, &info),
        };
        let wanted: HashSet<String> = info
            .channels
            .iter()
            .map(|m| casemap::casefold(&m.channel))
            .collect();
        let current = self.clients.get(&id).map(|c| c.channels.clone());
        for key in current.unwrap_or_default() {
            if !wanted.contains(&key) {
                self.remote_part(id, &key, None);
            }
        }
        let source = self.node_name(node);
        for m in &info.channels {
            self.remote_join(id, &m.channel, m.op);
            super::commands::set_remote_status(self, &source, id, m);
        }
        if self.clients.get(&id).is_some_and(|c| c.away != info.away) {
            super::commands::remote_away(self, id, info.away.as_deref());
        }
        self.set_remote_modes(id, &info.modes);
    }

    fn add_remote(&mut self, node: &NodeId, info: &UserInfo) -> ClientId {
        self.link.next_remote += 1;
        let id = REMOTE_IDS + self.link.next_remote;
        // A queue nobody reads, closed: anything pushed to a remote client is refused at once
        // (fanout skips remote members before that; this is the safety net).
        let (queue, outbound) = send_queue(0);
        drop(outbound);
        let peer = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let mut client = Client::new(id, peer, queue);
        client.nick = Some(info.nick.clone());
        client.user = Some(info.user.clone());
        client.host = info.host.clone();
        client.realname = info.realname.clone();
        client.registered = true;
        client.node = Some(node.clone());
        client.remote_uid = info.uid;
        client.rev = info.rev;
        client.refresh_mask();
        let folded = casemap::casefold(&info.nick);
        match self.nicks.get(&folded) {
            Some(&holder) => log::warn!(
                "link: {} on node {node} uses nick {} held here by client {holder}",
                info.uid,
                info.nick
            ),
            None => {
                self.nicks.insert(folded, id);
            }
        }
        self.clients.insert(id, client);
        self.link.remote.insert((node.clone(), info.uid), id);
        let registered = self.registered_count();
        self.max_registered = self.max_registered.max(registered);
        id
    }

    fn burst_end(&mut self, node: &NodeId) {
        let Some(seen) = self.link.bursts.remove(node) else {
            return;
        };
        let gone: Vec<ClientId> = self
            .link
            .remote
            .iter()
            .filter(|((n, uid), _)| n == node && !seen.contains(uid))
            .map(|(_, &id)| id)
            .collect();
        for id in gone {
            let reason = format!("{} {}", self.config.server_name, self.node_name(node));
            self.remove_remote(id, &reason);
        }
        let users = seen.len();
        log::info!(
            "link: burst from {} ({node}) applied: it has {users} user(s)",
            self.node_name(node)
        );
    }

    fn remote_join(&mut self, id: ClientId, name: &str, op: bool) {
        let key = casemap::casefold(name);
        if self
            .clients
            .get(&id)
            .is_none_or(|c| c.channels.contains(&key))
        {
            return;
        }
        self.add_member(id, &key, name);
        if let Some(m) = self
            .channels
            .get_mut(&key)
            .and_then(|c| c.members.get_mut(&id))
        {
            m.op = op;
        }
        let display = self.channels[&key].name.clone();
        // As a local JOIN is told: extended-join's form to who asked, the AWAY of an away
        // joiner to away-notify members.
        super::commands::announce_join(self, id, &key, &display);
    }

    fn remote_part(&mut self, id: ClientId, key: &str, reason: Option<&str>) {
        let (Some(client), Some(channel)) = (self.clients.get(&id), self.channels.get(key)) else {
            return;
        };
        if !channel.members.contains_key(&id) {
            return;
        }
        let line = build_line(Some(&client.mask), "PART", &[&channel.name], reason);
        self.broadcast(key, &line, None);
        self.remember(key, RecordKind::Event, &line);
        self.remove_member(id, key);
    }

    fn remote_kick(
        &mut self,
        node: &NodeId,
        uid: u64,
        channel: &str,
        target_node: &NodeId,
        target_uid: u64,
        reason: &str,
    ) {
        let Some(kicker) = self.remote_id(node, uid) else {
            return;
        };
        let target = self.user_id(target_node, target_uid);
        let key = casemap::casefold(channel);
        let Some(target) = target.filter(|t| {
            self.channels
                .get(&key)
                .is_some_and(|c| c.members.contains_key(t))
        }) else {
            return;
        };
        let (Some(k), Some(t)) = (self.clients.get(&kicker), self.clients.get(&target)) else {
            return;
        };
        let name = self.channels[&key].name.clone();
        let line = build_line(Some(&k.mask), "KICK", &[&name, t.nick()], Some(reason));
        self.broadcast(&key, &line, None);
        self.remember(&key, RecordKind::Event, &line);
        self.remove_member(target, &key);
    }

    fn remote_message(&mut self, from: ClientId, command: &str, target: MsgTarget, text: &str) {
        let Some(mask) = self.clients.get(&from).map(|c| c.mask.clone()) else {
            return;
        };
        match target {
            MsgTarget::Channel(name) => {
                let key = casemap::casefold(&name);
                let Some(display) = self.channels.get(&key).map(|c| c.name.clone()) else {
                    return;
                };
                let body = build_line(Some(&mask), command, &[&display], Some(text));
                let mut forms = Forms::message(body, None);
                self.broadcast_forms(&key, &mut forms, Some(from));
                if self.config.hooks.history.is_some() {
                    self.remember_message(key, display, &mut forms);
                }
            }
            MsgTarget::User(to) => {
                let Some(recipient) = self.clients.get(&to).filter(|c| c.node.is_none()) else {
                    return;
                };
                if !recipient.registered {
                    return;
                }
                let nick = recipient.nick().to_string();
                let caps = recipient.caps;
                let body = build_line(Some(&mask), command, &[&nick], Some(text));
                let mut forms = Forms::message(body, None);
                if let Some(line) = forms.line_for(caps) {
                    self.send(to, line.clone());
                }
                if self.config.hooks.history.is_some() {
                    let sender = mask.split('!').next().unwrap_or(&mask).to_string();
                    let conversation = super::history::private_key(&sender, &nick);
                    self.remember_message(conversation.clone(), conversation, &mut forms);
                }
            }
        }
    }

    /// `STATS l`: the link's health (from the adapter) and the broker's view of the network.
    pub(super) fn link_stats(&self) -> Vec<String> {
        let Some(link) = &self.config.hooks.link else {
            return vec!["link: not linked (no --link)".into()];
        };
        let mut lines = (link.health)();
        let remote = self.link.remote.len();
        lines.push(format!(
            "link: node {} knows {} other node(s), {remote} remote user(s); {} record(s) dropped at a full queue",
            link.node,
            self.link.nodes.len(),
            self.link.dropped
        ));
        for (id, node) in &self.link.nodes {
            let users = self.link.remote.keys().filter(|(n, _)| n == id).count();
            lines.push(format!("link: node {} ({id}): {users} user(s)", node.name));
        }
        lines
    }

    /// Tells the network local user `id` quits, and gives its nick back.
    pub(super) fn publish_quit(&mut self, id: ClientId, reason: &str) {
        let Some(c) = self.clients.get(&id).filter(|c| c.node.is_none()) else {
            return;
        };
        if !self.linked() {
            return;
        }
        let (nick, rev) = (c.nick().to_string(), c.rev);
        // The release first: the adapter holds later publishes until it is done, so a node
        // that sees the QUIT can give the nick to someone else at once.
        if rev > 0 {
            self.link_out(LinkOut::Release { nick, rev });
        }
        let event = Remote::Quit {
            uid: id,
            reason: reason.to_string(),
        };
        self.publish_state(id, event);
    }

    /// After nick `folded` was freed here: a user of another node announced with the same nick
    /// while it was held here (a collision being resolved, see [`Broker::reclaimed`]) now gets
    /// it in the nick table. Only on a linked node (it scans the clients; renames are rare).
    pub(super) fn adopt_orphan_nick(&mut self, folded: &str) {
        if !self.linked() || self.nicks.contains_key(folded) {
            return;
        }
        let orphan = self
            .clients
            .values()
            .find(|c| {
                c.nick
                    .as_deref()
                    .is_some_and(|n| casemap::casefold(n) == folded)
            })
            .map(|c| c.id);
        if let Some(id) = orphan {
            self.nicks.insert(folded.to_string(), id);
        }
    }

    /// 433 for a nick the network refused.
    pub(super) fn nick_taken(&mut self, id: ClientId, nick: &str) {
        self.reply(id, numeric::ERR_NICKNAMEINUSE, &[nick]);
    }
}

#[cfg(all(test, feature = "link"))]
mod tests {
    use super::*;
    use crate::broker::harness::Harness;
    use crate::broker::{BrokerConfig, Event};

    fn linked() -> (Harness, async_channel::Receiver<LinkOut>) {
        let (sink, out) = async_channel::bounded(1024);
        let mut config = BrokerConfig::default();
        config.hooks.link = Some(LinkHooks {
            node: "n0".into(),
            sink,
            health: Arc::new(Vec::new),
        });
        (Harness::new(config), out)
    }

    fn drain(out: &async_channel::Receiver<LinkOut>) -> Vec<LinkOut> {
        std::iter::from_fn(|| out.try_recv().ok()).collect()
    }

    fn link(event: LinkIn) -> Event {
        Event::Link(event)
    }

    fn remote(node: &str, event: Remote) -> Event {
        link(LinkIn::Remote {
            node: node.into(),
            event,
        })
    }

    fn intro(uid: u64, nick: &str, channels: &[&str]) -> Remote {
        Remote::Intro(UserInfo {
            uid,
            nick: nick.into(),
            user: nick.into(),
            host: "h".into(),
            realname: nick.into(),
            rev: 40 + uid,
            channels: channels
                .iter()
                .map(|c| Membership {
                    channel: c.to_string(),
                    op: false,
                    voice: false,
                })
                .collect(),
            away: None,
            modes: String::new(),
        })
    }

    /// A client that sent NICK and USER: its claim is out (and drained), no answer yet.
    fn registering(
        h: &mut Harness,
        out: &async_channel::Receiver<LinkOut>,
        nick: &str,
    ) -> ClientId {
        let id = h.connect();
        h.send(id, &format!("NICK {nick}"));
        h.send(id, &format!("USER {nick} 0 * :{nick}"));
        drain(out);
        id
    }

    fn register(h: &mut Harness, out: &async_channel::Receiver<LinkOut>, nick: &str) -> ClientId {
        let id = h.connect();
        h.send(id, &format!("NICK {nick}"));
        h.send(id, &format!("USER {nick} 0 * :{nick}"));
        let claim = LinkOut::Claim {
            id,
            nick: nick.into(),
            reclaim: false,
        };
        assert_eq!(drain(out), [claim]);
        h.control(link(LinkIn::Claimed {
            id,
            nick: nick.into(),
            reclaim: false,
            outcome: ClaimOutcome::Won(7),
        }));
        assert!(h.take(id).iter().any(|l| l.contains(" 001 ")));
        id
    }

    #[test]
    fn registration_waits_for_the_network_and_a_taken_nick_gets_433() {
        let (mut h, out) = linked();
        let id = h.connect();
        h.send(id, "NICK alice");
        h.send(id, "USER a 0 * :A");
        h.send(id, "PING :later");
        assert_eq!(
            h.take(id),
            Vec::<String>::new(),
            "parked until the network answers"
        );
        assert!(matches!(&drain(&out)[..], [LinkOut::Claim { nick, .. }] if nick == "alice"));
        h.control(link(LinkIn::Claimed {
            id,
            nick: "alice".into(),
            reclaim: false,
            outcome: ClaimOutcome::Taken,
        }));
        let lines = h.take(id);
        assert!(lines[0].contains(" 433 * alice "), "{lines:?}");
        assert!(
            lines[1].contains("PONG") && lines[1].ends_with(":later"),
            "in order: {lines:?}"
        );
        h.send(id, "NICK alice2");
        assert!(matches!(&drain(&out)[..], [LinkOut::Claim { nick, .. }] if nick == "alice2"));
        h.control(link(LinkIn::Claimed {
            id,
            nick: "alice2".into(),
            reclaim: false,
            outcome: ClaimOutcome::Won(9),
        }));
        assert!(h.take(id).iter().any(|l| l.contains(" 001 alice2 ")));
        let published = drain(&out);
        assert!(
            matches!(&published[..], [LinkOut::Publish { route: Route::State, event: Remote::Intro(u) }] if u.nick == "alice2" && u.rev == 9),
            "{published:?}"
        );
    }

    #[test]
    fn remote_users_join_talk_and_leave_with_a_split() {
        let (mut h, out) = linked();
        let alice = register(&mut h, &out, "alice");
        drain(&out);
        h.send(alice, "JOIN #c");
        let records = drain(&out);
        assert_eq!(
            records[0],
            LinkOut::Interest {
                key: "#c".into(),
                on: true
            }
        );
        assert!(matches!(
            &records[1],
            LinkOut::Publish {
                event: Remote::Join { op: true, .. },
                ..
            }
        ));
        h.take(alice);
        h.control(link(LinkIn::NodeSeen {
            node: "n1".into(),
            name: "b.test".into(),
        }));
        h.control(remote("n1", intro(5, "bob", &[])));
        h.control(remote(
            "n1",
            Remote::Join {
                uid: 5,
                channel: "#c".into(),
                op: false,
                created: 0,
            },
        ));
        assert_eq!(h.take(alice), [":bob!bob@h JOIN #c"]);
        h.control(remote(
            "n1",
            Remote::Message {
                uid: 5,
                command: "PRIVMSG".into(),
                target: MsgTarget::Channel("#c".into()),
                text: "hi all".into(),
            },
        ));
        assert_eq!(h.take(alice), [":bob!bob@h PRIVMSG #c :hi all"]);
        h.send(alice, "PRIVMSG #c :yo");
        h.send(alice, "PRIVMSG bob :psst");
        let records = drain(&out);
        assert!(
            matches!(&records[0], LinkOut::Publish { route: Route::Channel(k), event: Remote::Message { text, .. } } if k == "#c" && text == "yo")
        );
        assert!(
            matches!(&records[1], LinkOut::Publish { route: Route::Node(n), event: Remote::Message { target: MsgTarget::User(5), .. } } if &**n == "n1")
        );
        h.send(alice, "WHOIS bob");
        let whois = h.take(alice);
        assert!(
            whois.iter().any(|l| l.contains(" 312 alice bob b.test ")),
            "{whois:?}"
        );
        h.send(alice, "LINKS");
        let links = h.take(alice);
        assert!(
            links.iter().any(|l| l.contains(" 364 alice * b.test ")),
            "{links:?}"
        );
        h.check_invariants().unwrap();
        h.control(link(LinkIn::NodeLost {
            node: "n1".into(),
            clean: true,
        }));
        assert_eq!(h.take(alice), [":bob!bob@h QUIT :chatnode.local b.test"]);
        assert_eq!(
            drain(&out),
            [LinkOut::Release {
                nick: "bob".into(),
                rev: 45
            }]
        );
        h.send(alice, "NAMES #c");
        assert!(h.take(alice)[0].ends_with(":@alice"));
        h.check_invariants().unwrap();
    }

    #[test]
    fn a_burst_makes_a_nodes_users_exactly_the_announced_ones() {
        let (mut h, out) = linked();
        let alice = register(&mut h, &out, "alice");
        h.send(alice, "JOIN #c");
        // A user of another node: n1's burst says nothing about n2's users.
        h.control(remote("n2", intro(7, "carol", &["#c"])));
        h.control(remote("n1", intro(5, "bob", &["#c"])));
        h.control(remote("n1", intro(6, "ghost", &["#c"])));
        h.take(alice);
        h.control(remote(
            "n1",
            Remote::BurstStart {
                name: "b.test".into(),
            },
        ));
        h.control(remote("n1", intro(5, "bob", &[])));
        h.control(remote("n1", Remote::BurstEnd));
        assert_eq!(
            h.take(alice),
            [
                ":bob!bob@h PART #c",
                ":ghost!ghost@h QUIT :chatnode.local b.test"
            ]
        );
        h.check_invariants().unwrap();
    }

    #[test]
    fn a_nick_taken_while_cut_off_is_renamed_before_the_burst() {
        let (mut h, out) = linked();
        let alice = register(&mut h, &out, "alice");
        drain(&out);
        h.control(link(LinkIn::Up));
        let reclaim = LinkOut::Claim {
            id: alice,
            nick: "alice".into(),
            reclaim: true,
        };
        assert_eq!(drain(&out), [reclaim]);
        h.control(link(LinkIn::Claimed {
            id: alice,
            nick: "alice".into(),
            reclaim: true,
            outcome: ClaimOutcome::Taken,
        }));
        let fallback = format!("un0x{alice}");
        assert_eq!(
            h.take(alice),
            [format!(":alice!alice@127.0.0.1 NICK :{fallback}")]
        );
        assert!(
            matches!(&drain(&out)[..], [LinkOut::Claim { nick, reclaim: true, .. }] if *nick == fallback)
        );
        // The burst waits for that claim.
        h.control(link(LinkIn::Claimed {
            id: alice,
            nick: fallback.clone(),
            reclaim: true,
            outcome: ClaimOutcome::Won(11),
        }));
        let burst = drain(&out);
        assert!(
            matches!(&burst[..], [LinkOut::Burst { to: None, users, .. }] if users.len() == 1 && users[0].nick == fallback && users[0].rev == 11),
            "{burst:?}"
        );
    }
    fn chan(created: u64, flags: &str, key: Option<&str>, bans: &[&str]) -> Remote {
        Remote::Channel(ChannelState {
            name: "#c".into(),
            created,
            flags: flags.into(),
            key: key.map(Into::into),
            limit: None,
            topic: None,
            lists: bans
                .iter()
                .map(|m| ListMask {
                    letter: 'b',
                    mask: m.to_string(),
                    set_by: "bob".into(),
                    set_at: 7,
                })
                .collect(),
        })
    }

    #[test]
    fn a_remote_rename_into_a_local_nick_leaves_it_with_its_local_holder() {
        let (mut h, out, alice) = linked_with("alice");
        let carol = register(&mut h, &out, "carol");
        h.control(remote("n1", intro(5, "bob", &[])));
        // A collision the network is still resolving: the local holder keeps the nick here.
        h.control(remote(
            "n1",
            Remote::Nick {
                uid: 5,
                nick: "alice".into(),
                rev: 50,
            },
        ));
        h.take(alice);
        h.send(carol, "PRIVMSG alice :still you");
        let got = h.take(alice);
        assert!(
            got.len() == 1 && got[0].ends_with(" PRIVMSG alice :still you"),
            "{got:?}"
        );
    }

    #[test]
    fn a_mode_change_from_another_node_applies_here() {
        let (mut h, out) = linked();
        let alice = register(&mut h, &out, "alice");
        h.send(alice, "JOIN #c");
        h.control(remote("n1", intro(5, "bob", &["#c"])));
        h.take(alice);
        h.control(remote(
            "n1",
            Remote::Mode {
                uid: 5,
                channel: "#c".into(),
                params: vec!["+m".into()],
            },
        ));
        assert_eq!(h.take(alice), [":bob!bob@h MODE #c +m"]);
        assert!(h.broker().channels["#c"].modes.moderated);
    }

    #[test]
    fn remote_users_get_ids_of_their_own_however_many() {
        let (mut h, out) = linked();
        let alice = register(&mut h, &out, "alice");
        h.control(link(LinkIn::NodeSeen {
            node: "n1".into(),
            name: "b.test".into(),
        }));
        let nicks: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
        for (uid, nick) in (10..).zip(&nicks) {
            h.control(remote("n1", intro(uid, nick, &[])));
        }
        let ids: std::collections::HashSet<ClientId> = h
            .broker()
            .clients
            .values()
            .filter(|c| c.node.is_some())
            .map(|c| c.id)
            .collect();
        assert_eq!(ids.len(), nicks.len());
        assert!(ids.iter().all(|&id| id > alice));
        h.take(alice);
        for nick in &nicks {
            h.send(alice, &format!("WHOIS {nick}"));
            let lines = h.take(alice);
            assert!(
                lines[0].contains(&format!(" 311 alice {nick} ")),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn link_hooks_debug_as_their_node_only() {
        let (sink, _out) = async_channel::bounded(1);
        let hooks = LinkHooks {
            node: "n0".into(),
            sink,
            health: Arc::new(Vec::new),
        };
        assert_eq!(format!("{hooks:?}"), r#"LinkHooks { node: "n0" }"#);
    }

    #[test]
    fn a_state_just_as_old_as_ours_leaves_our_operators_alone() {
        let (mut h, _out, alice) = linked_with("alice");
        h.send(alice, "JOIN #c");
        h.control(remote("n1", intro(5, "bob", &["#c"])));
        h.take(alice);
        let created = h.broker().channels["#c"]
            .created
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        h.control(remote("n1", chan(created, "ntm", None, &[])));
        let lines = h.take(alice);
        assert!(
            lines.len() == 1 && lines[0].ends_with(" MODE #c +m"),
            "{lines:?}"
        );
        assert!(h.broker().channels["#c"].members[&alice].op);
    }

    #[test]
    fn a_merge_bounds_each_list_by_its_own_length() {
        let (mut h, out) = linked();
        let alice = register(&mut h, &out, "alice");
        h.send(alice, "JOIN #c");
        h.control(link(LinkIn::NodeSeen {
            node: "n1".into(),
            name: "b.test".into(),
        }));
        // An older state takes over with a full ban list.
        let full: Vec<String> = (0..crate::broker::channel::MAX_LIST)
            .map(|i| format!("n{i}!*@*"))
            .collect();
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        h.control(remote("n1", chan(1000, "nt", None, &full)));
        // Just as old, with one more ban and an exception: the exception's list has room.
        let mut more = chan(1000, "nt", None, &["extra!*@*"]);
        if let Remote::Channel(state) = &mut more {
            state.lists.push(ListMask {
                letter: 'e',
                mask: "friend!*@*".into(),
                set_by: "bob".into(),
                set_at: 7,
            });
        }
        h.take(alice);
        h.control(remote("n1", more));
        // Members hear of the exception only: the ban found no room.
        assert_eq!(h.take(alice), [":b.test MODE #c +e friend!*@*"]);
        let count = |h: &mut Harness, query: &str, code: &str| {
            h.send(alice, query);
            let lines = h.take(alice);
            lines
                .iter()
                .filter(|l| l.split(' ').nth(1) == Some(code))
                .count()
        };
        assert_eq!(count(&mut h, "MODE #c +b", "367"), full.len());
        assert_eq!(count(&mut h, "MODE #c +e", "348"), 1);
    }

    #[test]
    fn a_channel_state_from_the_network_is_merged_by_age() {
        let (mut h, out) = linked();
        let alice = register(&mut h, &out, "alice");
        drain(&out);
        // A local member without status: an older state has nothing to take from her.
        let carol = register(&mut h, &out, "carol");
        h.send(alice, "JOIN #c");
        h.send(carol, "JOIN #c");
        h.control(link(LinkIn::NodeSeen {
            node: "n1".into(),
            name: "b.test".into(),
        }));
        h.control(remote("n1", intro(5, "bob", &["#c"])));
        h.take(alice);
        // Younger than ours: ignored (its node takes ours).
        h.control(remote("n1", chan(u64::MAX / 2, "imnt", Some("k1"), &[])));
        assert_eq!(h.take(alice), Vec::<String>::new());
        // Older: replaces ours; local members are told what changed.
        let mut older = chan(1000, "mt", Some("k1"), &["bob!*@*"]);
        if let Remote::Channel(state) = &mut older {
            state.topic = Some(TopicState {
                text: "from before".into(),
                set_by: "bob".into(),
                set_at: 9,
            });
        }
        drain(&out);
        h.control(remote("n1", older));
        assert_eq!(
            h.take(alice),
            [
                ":b.test MODE #c +m-n+kb-o k1 bob!*@* alice",
                ":b.test TOPIC #c :from before"
            ]
        );
        // alice's status came from our younger creation: gone, and the network is told.
        let told = drain(&out);
        assert!(
            matches!(&told[..], [LinkOut::Publish { route: Route::State, event: Remote::Mode { uid, params, .. } }] if *uid == alice && params[..] == ["-o", "alice"]),
            "{told:?}"
        );
        h.send(alice, "MODE #c");
        let modes = h.take(alice);
        assert!(modes[0].ends_with(" 324 alice #c +mtk :k1"), "{modes:?}");
        assert!(modes[1].ends_with(" 329 alice #c :1"), "{modes:?}");
        assert!(!h.broker().channels["#c"].members[&carol].op);
        // The topic and the ban keep who set them and when (Unix seconds).
        h.send(alice, "TOPIC #c");
        let topic = h.take(alice);
        assert!(topic[1].ends_with(" 333 alice #c bob :9"), "{topic:?}");
        h.send(alice, "MODE #c +b");
        let bans = h.take(alice);
        assert!(
            bans[0].ends_with(" 367 alice #c bob!*@* bob :7"),
            "{bans:?}"
        );
        // bob is banned here now (the cached flag was refreshed): +m aside, he may not speak.
        assert!(h.broker().channels["#c"].members.values().any(|m| m.banned));
        // Just as old: merged (flags and masks united, the smaller key).
        h.control(remote("n1", chan(1000, "i", Some("a0"), &["eve!*@*"])));
        assert_eq!(h.take(alice), [":b.test MODE #c +ikb a0 eve!*@*"]);
        // The same state again changes nothing.
        h.control(remote("n1", chan(1000, "i", Some("a0"), &["eve!*@*"])));
        assert_eq!(h.take(alice), Vec::<String>::new());
        // A member's status follows its INTRO, with a MODE from its node's name.
        let mut info = UserInfo {
            uid: 5,
            nick: "bob".into(),
            user: "bob".into(),
            host: "h".into(),
            realname: "bob".into(),
            rev: 45,
            channels: vec![Membership {
                channel: "#c".into(),
                op: true,
                voice: true,
            }],
            away: Some("lunch".into()),
            modes: String::new(),
        };
        h.control(remote("n1", Remote::Intro(info.clone())));
        assert_eq!(h.take(alice), [":b.test MODE #c +ov bob bob"]);
        h.send(alice, "WHOIS bob");
        assert!(h
            .take(alice)
            .iter()
            .any(|l| l.contains(" 301 alice bob :lunch")));
        info.away = None;
        h.control(remote("n1", Remote::Intro(info)));
        h.send(alice, "PRIVMSG bob :there?");
        assert!(!h.take(alice).iter().any(|l| l.contains(" 301 ")));
        h.check_invariants().unwrap();
    }

    #[test]
    fn an_invite_from_another_node_lets_a_local_user_in() {
        let (mut h, out) = linked();
        let alice = register(&mut h, &out, "alice");
        drain(&out);
        let carol = register(&mut h, &out, "carol");
        h.send(alice, "JOIN #c");
        h.control(remote("n1", intro(5, "bob", &[])));
        h.send(alice, "MODE #c +i");
        h.take(alice);
        h.send(carol, "JOIN #c");
        assert!(h.take(carol)[0].contains(" 473 carol #c "));
        h.control(remote(
            "n1",
            Remote::Invite {
                uid: 5,
                channel: "#c".into(),
                target_node: "n0".into(),
                target_uid: carol,
            },
        ));
        assert_eq!(h.take(carol), [":bob!bob@h INVITE carol #c"]);
        drain(&out);
        h.send(carol, "JOIN #c");
        assert!(h.take(carol)[0].ends_with(" JOIN #c"));
        // alice invites bob (of n1): his node is told, on the state subject.
        h.take(alice);
        h.send(alice, "INVITE bob #c");
        let lines = h.take(alice);
        assert!(lines[0].ends_with(" 341 alice bob :#c"), "{lines:?}");
        let records = drain(&out);
        assert!(
            records.iter().any(|r| matches!(r, LinkOut::Publish { route: Route::State, event: Remote::Invite { target_uid: 5, target_node, .. } } if &**target_node == "n1")),
            "{records:?}"
        );
        h.check_invariants().unwrap();
    }

    /// KILL of a user of another node goes to that node and removes nobody here (its QUIT
    /// will); a KILL from another node of one of our users disconnects it, and its QUIT is
    /// published like any QUIT. Without this, the killing node alone forgot the user.
    #[test]
    fn a_kill_goes_to_the_victims_node() {
        let (sink, out) = async_channel::bounded(1024);
        let mut config = BrokerConfig::default();
        config.hooks.link = Some(LinkHooks {
            node: "n0".into(),
            sink,
            health: Arc::new(Vec::new),
        });
        let hash = crate::auth::hash_password("pw", b"0123456789abcdef").unwrap();
        config.operators = vec![crate::broker::Operator {
            name: "admin".into(),
            password_hash: hash,
        }];
        let mut h = Harness::new(config);
        let alice = register(&mut h, &out, "alice");
        drain(&out);
        let carol = register(&mut h, &out, "carol");
        h.send(alice, "JOIN #c");
        h.send(carol, "JOIN #c");
        h.control(remote("n1", intro(5, "bob", &["#c"])));
        h.send(alice, "OPER admin pw");
        h.run_offloaded();
        h.take(alice);
        h.take(carol);
        drain(&out);
        h.send(alice, "KILL bob :spam");
        let records = drain(&out);
        assert!(
            records.iter().any(|r| matches!(r, LinkOut::Publish { route: Route::State, event: Remote::Kill { uid, target_uid: 5, target_node, reason } } if *uid == alice && &**target_node == "n1" && reason == "spam")),
            "{records:?}"
        );
        assert!(h.take(carol).is_empty(), "bob stays until his node's QUIT");
        assert!(names(&mut h, carol, "#c").contains("bob"));
        // bob's node answers with his QUIT.
        h.control(remote(
            "n1",
            Remote::Quit {
                uid: 5,
                reason: "Killed (alice (spam))".into(),
            },
        ));
        assert_eq!(h.take(carol), [":bob!bob@h QUIT :Killed (alice (spam))"]);
        // Now the other way: an operator of n1 (dave) kills carol.
        h.control(remote("n1", intro(6, "dave", &[])));
        drain(&out);
        h.control(remote(
            "n1",
            Remote::Kill {
                uid: 6,
                target_node: "n0".into(),
                target_uid: carol,
                reason: "flood".into(),
            },
        ));
        let lines = h.take(carol);
        assert!(
            lines[0].starts_with(":dave!dave@h KILL carol :flood"),
            "{lines:?}"
        );
        assert!(h.is_closed(carol));
        let records = drain(&out);
        assert!(
            records.iter().any(|r| matches!(r, LinkOut::Publish { event: Remote::Quit { uid, reason }, .. } if *uid == carol && reason == "Killed (dave (flood))")),
            "{records:?}"
        );
        // A KILL meant for a third node's user is not ours to act on.
        h.control(remote(
            "n1",
            Remote::Kill {
                uid: 6,
                target_node: "n2".into(),
                target_uid: alice,
                reason: "not yours".into(),
            },
        ));
        assert!(!h.is_closed(alice));
        h.check_invariants().unwrap();
    }

    fn creator_join(uid: u64, channel: &str, created: u64) -> Remote {
        Remote::Join {
            uid,
            channel: channel.into(),
            op: true,
            created,
        }
    }

    fn names(h: &mut Harness, id: ClientId, channel: &str) -> String {
        h.send(id, &format!("NAMES {channel}"));
        let lines = h.take(id);
        let mut names: Vec<&str> = lines[0].rsplit(':').next().unwrap().split(' ').collect();
        names.sort();
        names.join(" ")
    }

    #[test]
    fn a_channel_created_on_two_nodes_at_once_keeps_the_older_creators_operator() {
        let (mut h, out) = linked();
        let alice = register(&mut h, &out, "alice");
        h.control(link(LinkIn::NodeSeen {
            node: "n1".into(),
            name: "b.test".into(),
        }));
        h.control(remote("n1", intro(5, "bob", &[])));
        h.control(remote("n1", intro(6, "carl", &[])));
        drain(&out);
        // alice creates #new here; the JOIN we publish carries its age.
        h.send(alice, "JOIN #new");
        let records = drain(&out);
        let ours = records
            .iter()
            .find_map(|r| match r {
                LinkOut::Publish {
                    event:
                        Remote::Join {
                            op: true, created, ..
                        },
                    ..
                } => Some(*created),
                _ => None,
            })
            .expect("a creator's JOIN");
        assert!(ours > 0, "{records:?}");
        h.take(alice);
        // bob created it on n1 later: he joins here without the status.
        h.control(remote("n1", creator_join(5, "#new", ours + 5)));
        assert_eq!(h.take(alice), [":bob!bob@h JOIN #new"]);
        assert_eq!(names(&mut h, alice, "#new"), "@alice bob");
        // carl created #old on n1 before alice did here: alice gives the status up.
        h.send(alice, "JOIN #old");
        h.take(alice);
        h.control(remote("n1", creator_join(6, "#old", 1_000)));
        assert_eq!(
            h.take(alice),
            [":b.test MODE #old -o alice", ":carl!carl@h JOIN #old"]
        );
        assert_eq!(names(&mut h, alice, "#old"), "@carl alice");
        h.send(alice, "MODE #old");
        assert!(h.take(alice)[1].ends_with(" 329 alice #old :1"));
        // A channel first heard of from its creator's JOIN has the creator's age.
        h.control(remote("n1", creator_join(5, "#theirs", 2_000)));
        h.send(alice, "JOIN #theirs");
        h.take(alice);
        h.send(alice, "MODE #theirs");
        assert!(h.take(alice)[1].ends_with(" 329 alice #theirs :2"));
        h.check_invariants().unwrap();
    }

    #[test]
    fn away_setname_and_user_modes_of_a_user_of_another_node_are_seen() {
        let (mut h, out) = linked();
        let alice = register(&mut h, &out, "alice");
        h.send(alice, "CAP REQ :away-notify");
        h.send(alice, "JOIN #c");
        h.take(alice);
        let mut info = match intro(5, "bob", &[]) {
            Remote::Intro(info) => info,
            _ => unreachable!(),
        };
        info.away = Some("lunch".into());
        h.control(remote("n1", Remote::Intro(info)));
        h.control(remote(
            "n1",
            Remote::Join {
                uid: 5,
                channel: "#c".into(),
                op: false,
                created: 0,
            },
        ));
        assert_eq!(
            h.take(alice),
            [":bob!bob@h JOIN #c", ":bob!bob@h AWAY :lunch"]
        );
        h.control(remote("n1", Remote::Away { uid: 5, text: None }));
        assert_eq!(h.take(alice), [":bob!bob@h AWAY"]);
        // SETNAME: peers with the setname capability are told; WHOIS shows the new name.
        h.send(alice, "CAP REQ :setname");
        h.take(alice);
        h.control(remote(
            "n1",
            Remote::Setname {
                uid: 5,
                realname: "Bob B.".into(),
            },
        ));
        assert_eq!(h.take(alice), [":bob!bob@h SETNAME :Bob B."]);
        h.send(alice, "WHOIS bob");
        assert!(h.take(alice)[0].ends_with(" 311 alice bob bob h * :Bob B."));
        // User modes others see: bob became an IRC operator on n1.
        h.control(remote(
            "n1",
            Remote::UserModes {
                uid: 5,
                modes: "o".into(),
            },
        ));
        h.send(alice, "WHOIS bob");
        let whois = h.take(alice);
        assert!(
            whois.iter().any(|l| l.contains(" 313 alice bob ")),
            "{whois:?}"
        );
        // +w is nobody else's business: the network is not told...
        drain(&out);
        h.send(alice, "MODE alice +w");
        assert!(h.take(alice)[0].ends_with(" MODE alice :+w"));
        assert_eq!(drain(&out), Vec::<LinkOut>::new());
        // ...but when alice goes invisible here, it is.
        h.send(alice, "MODE alice +i");
        h.take(alice);
        let told = drain(&out);
        assert!(
            matches!(&told[..], [LinkOut::Publish { event: Remote::UserModes { uid, modes }, .. }] if *uid == alice && modes == "i"),
            "{told:?}"
        );
    }

    /// Node n1's heartbeat names it b.test.
    fn seen_b_test(h: &mut Harness) {
        h.control(link(LinkIn::NodeSeen {
            node: "n1".into(),
            name: "b.test".into(),
        }));
    }

    /// A linked node with one registered local user, the records so far drained.
    fn linked_with(nick: &str) -> (Harness, async_channel::Receiver<LinkOut>, ClientId) {
        let (mut h, out) = linked();
        let id = register(&mut h, &out, nick);
        drain(&out);
        (h, out, id)
    }

    /// The network answers a claim.
    fn claimed(h: &mut Harness, id: ClientId, nick: &str, reclaim: bool, outcome: ClaimOutcome) {
        h.control(link(LinkIn::Claimed {
            id,
            nick: nick.into(),
            reclaim,
            outcome,
        }));
    }

    fn release(nick: &str, rev: u64) -> LinkOut {
        LinkOut::Release {
            nick: nick.into(),
            rev,
        }
    }

    /// Only the `LinkOut::Interest` records among `records`.
    fn interests(records: Vec<LinkOut>) -> Vec<LinkOut> {
        records
            .into_iter()
            .filter(|r| matches!(r, LinkOut::Interest { .. }))
            .collect()
    }

    #[test]
    fn the_network_hears_of_our_interest_in_a_channel_while_a_local_user_is_in_it() {
        let (mut h, out, alice) = linked_with("alice");
        let carol = register(&mut h, &out, "carol");
        h.control(remote("n1", intro(5, "bob", &["#c"])));
        drain(&out);
        let interest = |on| LinkOut::Interest {
            key: "#c".into(),
            on,
        };
        h.send(alice, "JOIN #c");
        assert_eq!(interests(drain(&out)), [interest(true)]);
        h.send(carol, "JOIN #c");
        assert_eq!(interests(drain(&out)), Vec::<LinkOut>::new());
        h.send(alice, "PART #c");
        assert_eq!(
            interests(drain(&out)),
            Vec::<LinkOut>::new(),
            "carol is still in #c"
        );
        h.send(carol, "PART #c");
        assert_eq!(interests(drain(&out)), [interest(false)]);
        assert!(
            h.broker().channels.contains_key("#c"),
            "bob of n1 is still in #c"
        );
        h.send(carol, "JOIN #c");
        assert_eq!(interests(drain(&out)), [interest(true)]);
        h.check_invariants().unwrap();
    }

    #[test]
    fn a_burst_states_only_the_channels_we_have_local_members_in() {
        let (mut h, out, alice) = linked_with("alice");
        h.send(alice, "JOIN #ours");
        h.control(remote("n1", intro(5, "bob", &["#ours", "#theirs"])));
        drain(&out);
        h.control(link(LinkIn::BurstWanted { node: "n1".into() }));
        let records = drain(&out);
        let [LinkOut::Burst {
            to: Some(to),
            users,
            channels,
        }] = &records[..]
        else {
            panic!("{records:?}")
        };
        assert_eq!(&**to, "n1");
        let nicks: Vec<&str> = users.iter().map(|u| u.nick.as_str()).collect();
        assert_eq!(nicks, ["alice"], "our users only");
        let names: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["#ours"], "not #theirs, where only bob of n1 is");
    }

    #[test]
    fn a_reclaimed_nick_whose_user_left_meanwhile_is_given_back_and_the_burst_still_follows() {
        let (mut h, out, alice) = linked_with("alice");
        let carol = register(&mut h, &out, "carol");
        drain(&out);
        h.control(link(LinkIn::Up));
        assert_eq!(drain(&out).len(), 2, "one reclaim each");
        h.send(alice, "QUIT :bye");
        drain(&out);
        claimed(&mut h, alice, "alice", true, ClaimOutcome::Won(12));
        assert_eq!(
            drain(&out),
            [release("alice", 12)],
            "nobody here holds it any more"
        );
        claimed(&mut h, carol, "carol", true, ClaimOutcome::Won(13));
        let burst = drain(&out);
        assert!(
            matches!(&burst[..], [LinkOut::Burst { to: None, users, .. }] if users.len() == 1 && users[0].nick == "carol" && users[0].rev == 13),
            "{burst:?}"
        );
    }

    #[test]
    fn a_nick_won_on_the_network_but_taken_here_meanwhile_is_given_back_with_433() {
        let (mut h, out, alice) = linked_with("alice");
        h.send(alice, "NICK zed");
        assert!(
            matches!(&drain(&out)[..], [LinkOut::Claim { nick, reclaim: false, .. }] if nick == "zed")
        );
        // A new local client takes zed while alice's claim runs.
        let other = h.connect();
        h.send(other, "NICK zed");
        drain(&out);
        claimed(&mut h, alice, "zed", false, ClaimOutcome::Won(13));
        assert_eq!(drain(&out), [release("zed", 13)]);
        let lines = h.take(alice);
        assert!(lines[0].contains(" 433 alice zed "), "{lines:?}");
        assert_eq!(h.nick_of(alice).as_deref(), Some("alice"));
        // The same while the network cannot confirm: nothing was claimed, nothing to give back.
        h.send(alice, "NICK zoe");
        let late = h.connect();
        h.send(late, "NICK zoe");
        drain(&out);
        claimed(&mut h, alice, "zoe", false, ClaimOutcome::Unconfirmed);
        assert_eq!(drain(&out), Vec::<LinkOut>::new());
        assert!(h.take(alice)[0].contains(" 433 alice zoe "));
    }

    #[test]
    fn a_nick_freed_here_goes_to_the_user_of_another_node_who_has_it() {
        let (mut h, out, alice) = linked_with("alice");
        let carol = register(&mut h, &out, "carol");
        seen_b_test(&mut h);
        // While we were cut off, n1 gave "alice" to one of its users: ours keeps it here.
        h.control(remote("n1", intro(5, "alice", &[])));
        h.send(carol, "WHOIS alice");
        let whois = h.take(carol);
        assert!(
            whois
                .iter()
                .any(|l| l.contains(" 312 carol alice chatnode.local ")),
            "{whois:?}"
        );
        h.send(alice, "QUIT :bye");
        h.send(carol, "WHOIS alice");
        let whois = h.take(carol);
        assert!(
            whois.iter().any(|l| l.contains(" 312 carol alice b.test ")),
            "{whois:?}"
        );
        h.check_invariants().unwrap();
    }

    #[test]
    fn a_channel_first_heard_of_from_a_join_without_an_age_is_as_old_as_that_join() {
        let (mut h, _out, alice) = linked_with("alice");
        h.control(remote("n1", intro(5, "bob", &[])));
        // A plain JOIN: not its creator's, no age.
        let mut join = creator_join(5, "#c", 0);
        if let Remote::Join { op, .. } = &mut join {
            *op = false;
        }
        h.control(remote("n1", join));
        h.send(alice, "JOIN #c");
        h.take(alice);
        // Not 1970, which would make it the oldest on the network and win every merge.
        let created = created_of(&mut h, alice, "#c");
        let now = crate::broker::unix_time(std::time::SystemTime::now());
        assert!(created + 60 >= now, "{created}");
    }

    #[test]
    fn lusers_on_a_linked_node_counts_every_node_and_every_user() {
        let (mut h, _out, alice) = linked_with("alice");
        seen_b_test(&mut h);
        h.control(remote("n1", intro(5, "bob", &[])));
        h.send(alice, "LUSERS");
        let lines = h.take(alice);
        assert!(
            lines[0].ends_with(" 251 alice :There are 2 users and 0 invisible on 2 servers"),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with(" 255 alice :I have 1 clients and 1 servers")),
            "{lines:?}"
        );
    }

    /// `MODE <channel>`'s 329: the channel's creation time, in seconds.
    fn created_of(h: &mut Harness, id: ClientId, channel: &str) -> u64 {
        h.send(id, &format!("MODE {channel}"));
        let lines = h.take(id);
        lines
            .iter()
            .find(|l| l.split(' ').nth(1) == Some("329"))
            .and_then(|l| l.rsplit(':').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{lines:?}"))
    }

    #[test]
    fn a_younger_creation_elsewhere_leaves_the_age_of_our_channel_alone() {
        let (mut h, out, alice) = linked_with("alice");
        h.control(remote("n1", intro(5, "bob", &[])));
        drain(&out);
        h.send(alice, "JOIN #c");
        let ours = drain(&out)
            .iter()
            .find_map(|r| match r {
                LinkOut::Publish {
                    event: Remote::Join { created, .. },
                    ..
                } => Some(*created),
                _ => None,
            })
            .expect("our creator's JOIN");
        h.take(alice);
        h.control(remote("n1", creator_join(5, "#c", ours + 3_600_000)));
        assert_eq!(created_of(&mut h, alice, "#c"), ours / 1000);
    }

    fn linked_with_operator(queue: usize) -> (Harness, async_channel::Receiver<LinkOut>) {
        let (sink, out) = async_channel::bounded(queue);
        let mut config = BrokerConfig::default();
        config.hooks.link = Some(LinkHooks {
            node: "n0".into(),
            sink,
            health: Arc::new(|| vec!["link: connected".to_string()]),
        });
        let hash = crate::auth::hash_password("pw", b"0123456789abcdef").unwrap();
        config.operators = vec![crate::broker::Operator {
            name: "admin".into(),
            password_hash: hash,
        }];
        (Harness::new(config), out)
    }

    #[test]
    fn stats_l_counts_nodes_their_users_and_records_dropped_at_a_full_queue() {
        let (mut h, out) = linked_with_operator(2);
        let alice = register(&mut h, &out, "alice");
        h.send(alice, "OPER admin pw");
        h.run_offloaded();
        seen_b_test(&mut h);
        h.control(remote("n1", intro(5, "bob", &[])));
        h.control(remote("n1", intro(6, "carl", &[])));
        drain(&out);
        // Three records for a queue of two: the third is dropped, and counted.
        for text in ["a", "b", "c"] {
            h.send(alice, &format!("AWAY :{text}"));
        }
        h.take(alice);
        h.send(alice, "STATS l");
        let lines: Vec<String> = h
            .take(alice)
            .iter()
            .filter(|l| l.contains(" 249 "))
            .map(|l| l.rsplit(" :").next().unwrap().to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "link: connected",
                "link: node n0 knows 1 other node(s), 2 remote user(s); 1 record(s) dropped at a full queue",
                "link: node b.test (n1): 2 user(s)",
            ]
        );
    }

    #[test]
    fn nicks_held_without_a_revision_are_never_given_back() {
        let (mut h, out) = linked();
        // alice registered while the network did not answer: her nick has no revision.
        let alice = registering(&mut h, &out, "alice");
        claimed(&mut h, alice, "alice", false, ClaimOutcome::Unconfirmed);
        assert!(h.take(alice).iter().any(|l| l.contains(" 001 ")));
        drain(&out);
        // A change to a nick the network confirms: the old one had no key to give back.
        h.send(alice, "NICK alicia");
        drain(&out);
        claimed(&mut h, alice, "alicia", false, ClaimOutcome::Won(9));
        let records = drain(&out);
        assert!(
            !records.iter().any(|r| matches!(r, LinkOut::Release { .. })),
            "{records:?}"
        );
        // Back to an unconfirmed nick, then gone.
        h.send(alice, "NICK alice");
        claimed(&mut h, alice, "alice", false, ClaimOutcome::Unconfirmed);
        drain(&out);
        h.send(alice, "QUIT :bye");
        let records = drain(&out);
        assert!(
            matches!(
                &records[..],
                [LinkOut::Publish {
                    event: Remote::Quit { .. },
                    ..
                }]
            ),
            "a QUIT and no release: {records:?}"
        );
        // The same for a user of a lost node whose nick has no revision.
        let Remote::Intro(mut info) = intro(5, "bob", &[]) else {
            unreachable!()
        };
        info.rev = 0;
        h.control(remote("n1", Remote::Intro(info)));
        h.control(link(LinkIn::NodeLost {
            node: "n1".into(),
            clean: true,
        }));
        assert_eq!(drain(&out), Vec::<LinkOut>::new());
    }

    #[test]
    fn on_reconnect_only_local_users_are_reclaimed_and_with_none_the_burst_goes_at_once() {
        let (mut h, out) = linked();
        h.control(link(LinkIn::Up));
        let burst = drain(&out);
        assert!(
            matches!(&burst[..], [LinkOut::Burst { to: None, users, channels }] if users.is_empty() && channels.is_empty()),
            "{burst:?}"
        );
        let alice = register(&mut h, &out, "alice");
        let pending = h.connect();
        h.send(pending, "NICK zed");
        h.control(remote("n1", intro(5, "bob", &[])));
        drain(&out);
        h.control(link(LinkIn::Up));
        let reclaim = LinkOut::Claim {
            id: alice,
            nick: "alice".into(),
            reclaim: true,
        };
        assert_eq!(
            drain(&out),
            [reclaim],
            "not bob of n1, not the unregistered zed"
        );
    }

    #[test]
    fn reclaims_answered_after_their_users_changed_nick_change_nothing_but_give_back() {
        let (mut h, out, alice) = linked_with("alice");
        let carol = register(&mut h, &out, "carol");
        drain(&out);
        h.control(link(LinkIn::Up));
        drain(&out);
        // Both change nick before the reclaims are answered.
        for (id, old, nick, rev) in [
            (alice, "alice", "alice2", 14),
            (carol, "carol", "carol2", 15),
        ] {
            h.send(id, &format!("NICK {nick}"));
            drain(&out);
            claimed(&mut h, id, nick, false, ClaimOutcome::Won(rev));
            assert_eq!(h.nick_of(id).as_deref(), Some(nick));
            h.take(id);
            // The old nick's key (revision 7, from registration) is given back at once.
            let told = drain(&out);
            assert_eq!(told.first(), Some(&release(old, 7)), "{told:?}");
        }
        claimed(&mut h, alice, "alice", true, ClaimOutcome::Won(12));
        assert_eq!(drain(&out), [release("alice", 12)]);
        claimed(&mut h, carol, "carol", true, ClaimOutcome::Taken);
        assert_eq!(h.take(carol), Vec::<String>::new(), "carol2 is not renamed");
        let burst = drain(&out);
        let Some(LinkOut::Burst { users, .. }) = burst.first() else {
            panic!("{burst:?}")
        };
        let mut got: Vec<(&str, u64)> = users.iter().map(|u| (u.nick.as_str(), u.rev)).collect();
        got.sort();
        assert_eq!(got, [("alice2", 14), ("carol2", 15)]);
    }

    #[test]
    fn a_user_of_another_node_renamed_in_a_new_intro_is_seen_renamed() {
        let (mut h, _out, alice) = linked_with("alice");
        h.send(alice, "JOIN #c");
        h.control(remote("n1", intro(5, "bob", &["#c"])));
        h.take(alice);
        h.control(remote("n1", intro(5, "robert", &["#c"])));
        assert_eq!(h.take(alice), [":bob!bob@h NICK :robert"]);
        h.control(remote("n1", intro(5, "robert", &["#c"])));
        assert_eq!(
            h.take(alice),
            Vec::<String>::new(),
            "the same again: nothing"
        );
    }

    #[test]
    fn a_private_message_a_topic_and_a_kick_from_another_node_reach_local_users() {
        let (mut h, out, alice) = linked_with("alice");
        let carol = register(&mut h, &out, "carol");
        h.send(alice, "JOIN #c");
        h.send(carol, "JOIN #c");
        h.control(remote("n1", intro(5, "bob", &["#c"])));
        h.take(alice);
        h.take(carol);
        drain(&out);
        h.control(remote(
            "n1",
            Remote::Message {
                uid: 5,
                command: "PRIVMSG".into(),
                target: MsgTarget::User(carol),
                text: "psst".into(),
            },
        ));
        assert_eq!(h.take(carol), [":bob!bob@h PRIVMSG carol :psst"]);
        h.control(remote(
            "n1",
            Remote::Topic {
                uid: 5,
                channel: "#C".into(),
                text: "from n1".into(),
            },
        ));
        assert_eq!(h.take(carol), [":bob!bob@h TOPIC #c :from n1"]);
        h.take(alice);
        h.control(remote(
            "n1",
            Remote::Kick {
                uid: 5,
                channel: "#c".into(),
                target_node: "n0".into(),
                target_uid: alice,
                reason: "out".into(),
            },
        ));
        assert_eq!(h.take(carol), [":bob!bob@h KICK #c alice :out"]);
        assert_eq!(h.take(alice), [":bob!bob@h KICK #c alice :out"]);
        assert!(!h.is_member(alice, "#c"));
        // What other nodes did is not told back to the network.
        let records = drain(&out);
        assert!(
            !records.iter().any(|r| matches!(r, LinkOut::Publish { .. })),
            "{records:?}"
        );
        h.check_invariants().unwrap();
    }

    #[test]
    fn who_matches_a_user_of_another_node_by_that_nodes_server_name() {
        let (mut h, _out, alice) = linked_with("alice");
        seen_b_test(&mut h);
        h.control(remote("n1", intro(5, "bob", &[])));
        let who = |h: &mut Harness, mask: &str| -> Vec<String> {
            h.send(alice, &format!("WHO {mask}"));
            h.take(alice)
                .iter()
                .filter(|l| l.contains(" 352 "))
                .map(|l| l.split(' ').nth(7).unwrap().to_string())
                .collect()
        };
        assert_eq!(who(&mut h, "b.test"), ["bob"]);
        assert_eq!(who(&mut h, "chatnode.local"), ["alice"]);
    }

    #[test]
    fn a_late_answer_for_a_nick_the_registering_client_gave_up_gives_it_back() {
        let (mut h, out) = linked();
        let id = registering(&mut h, &out, "alice");
        claimed(&mut h, id, "alice", false, ClaimOutcome::Taken);
        h.send(id, "NICK alice2");
        drain(&out);
        // A second answer for "alice" (the adapter retried): she no longer wants it.
        claimed(&mut h, id, "alice", false, ClaimOutcome::Won(21));
        assert_eq!(drain(&out), [release("alice", 21)]);
        claimed(&mut h, id, "alice", false, ClaimOutcome::Unconfirmed);
        assert_eq!(
            drain(&out),
            Vec::<LinkOut>::new(),
            "nothing held, nothing to give"
        );
        claimed(&mut h, id, "alice2", false, ClaimOutcome::Won(22));
        assert!(h.take(id).iter().any(|l| l.contains(" 001 alice2 ")));
    }

    #[test]
    fn a_late_refusal_of_a_nick_the_registering_client_gave_up_leaves_its_new_one() {
        let (mut h, out) = linked();
        let id = registering(&mut h, &out, "alice");
        claimed(&mut h, id, "alice", false, ClaimOutcome::Taken);
        h.send(id, "NICK alice2");
        drain(&out);
        h.take(id);
        // A second refusal of "alice" (the adapter retried) must not cost her "alice2".
        claimed(&mut h, id, "alice", false, ClaimOutcome::Taken);
        claimed(&mut h, id, "alice2", false, ClaimOutcome::Won(22));
        assert!(h.take(id).iter().any(|l| l.contains(" 001 alice2 ")));
        assert_eq!(
            drain(&out)
                .iter()
                .filter(|r| matches!(r, LinkOut::Release { .. }))
                .count(),
            0
        );
    }
}
