//! invite-notify (IRCv3): channel members who enabled it hear of INVITEs into the channel.
//!
//! INVITE calls [`notify_invite`] after it has invited someone; the inviter and the invitee
//! are not told again (they got 341 and the INVITE itself).

use crate::broker::caps::Caps;
use crate::broker::forms::Forms;
use crate::broker::{build_line, Broker, ClientId};

/// Tells the members of channel `key` with invite-notify that `inviter` invited `invitee`
/// (`:inviter!user@host INVITE invitee #channel`). With `ops_only` (the channel is +i), only
/// channel operators are told: the spec asks that only those who could have invited hear it.
pub(super) fn notify_invite(
    b: &mut Broker,
    inviter: ClientId,
    invitee: ClientId,
    key: &str,
    ops_only: bool,
) {
    let (Some(from), Some(to), Some(channel)) = (
        b.clients.get(&inviter),
        b.clients.get(&invitee),
        b.channels.get(key),
    ) else {
        return;
    };
    let line = build_line(
        Some(&from.mask),
        "INVITE",
        &[to.nick(), &channel.name],
        None,
    );
    let mut forms = Forms::new(line).requiring(Caps::INVITE_NOTIFY);
    let told: Vec<ClientId> = channel
        .members
        .iter()
        .filter(|(&m, member)| m != inviter && m != invitee && (member.op || !ops_only))
        .map(|(&m, _)| m)
        .collect();
    for member in told {
        b.send_forms(member, &mut forms);
    }
}
