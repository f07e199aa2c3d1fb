//! INVITE: the invite, its errors, and the list of pending invites.

use crate::common::*;

#[test]
fn an_invite_reaches_the_target_only() {
    let mut h = harness();
    let (foo, bar, baz) = (h.register("foo"), h.register("bar"), h.register("baz"));
    channel(&mut h, "#chan", foo, &[baz]);
    h.send(foo, "INVITE bar #chan");
    assert_eq!(h.take(foo), [":chatnode.local 341 foo bar :#chan"]);
    assert_eq!(h.take(bar), [":foo!foo@127.0.0.1 INVITE bar #chan"]);
    assert!(h.take(baz).is_empty(), "other members are not told");
}

#[test]
fn any_member_invites_to_a_channel_that_is_not_invite_only() {
    let mut h = harness();
    let (op, member, bar) = (h.register("op"), h.register("member"), h.register("bar"));
    channel(&mut h, "#c", op, &[member]);
    h.send(member, "INVITE bar #c");
    assert_eq!(codes(&h.take(member)), ["341"]);
    assert_eq!(codes(&h.take(bar)), ["INVITE"]);
    h.send(op, "MODE #c +i");
    h.take(member);
    h.send(member, "INVITE bar #c");
    assert_eq!(
        h.take(member),
        [":chatnode.local 482 member #c :You're not channel operator"]
    );
}

#[test]
fn invite_errors() {
    let mut h = harness();
    let (op, member, out) = (h.register("op"), h.register("member"), h.register("out"));
    channel(&mut h, "#c", op, &[member]);
    h.send(op, "INVITE nobody #c");
    assert_eq!(codes(&h.take(op)), ["401"]);
    h.send(op, "INVITE out #nope");
    assert_eq!(codes(&h.take(op)), ["403"]);
    h.send(out, "INVITE op #c");
    assert_eq!(
        h.take(out),
        [":chatnode.local 442 out #c :You're not on that channel"]
    );
    h.send(op, "INVITE member #c");
    assert_eq!(
        h.take(op),
        [":chatnode.local 443 op member #c :is already on channel"]
    );
    h.send(op, "INVITE member");
    assert_eq!(codes(&h.take(op)), ["461"]);
}

#[test]
fn invite_alone_lists_pending_invites() {
    let mut h = harness();
    let (op, bar) = (h.register("op"), h.register("bar"));
    channel(&mut h, "#b", op, &[]);
    channel(&mut h, "#a", op, &[]);
    h.send(bar, "INVITE");
    assert_eq!(
        h.take(bar),
        [":chatnode.local 337 bar :End of /INVITE list"]
    );
    h.send(op, "INVITE bar #b");
    h.send(op, "INVITE bar #a");
    h.take(bar);
    h.send(bar, "INVITE");
    assert_eq!(
        h.take(bar),
        [
            ":chatnode.local 336 bar :#a",
            ":chatnode.local 336 bar :#b",
            ":chatnode.local 337 bar :End of /INVITE list"
        ]
    );
    h.send(bar, "JOIN #a");
    h.take(bar);
    h.send(bar, "INVITE");
    assert_eq!(
        codes(&h.take(bar)),
        ["336", "337"],
        "joining uses the invite up"
    );
}

#[test]
fn inviting_an_away_user_says_so() {
    let mut h = harness();
    let (op, bar) = (h.register("op"), h.register("bar"));
    channel(&mut h, "#c", op, &[]);
    h.send(bar, "AWAY :lunch");
    h.send(op, "INVITE bar #c");
    let lines = h.take(op);
    assert_eq!(codes(&lines), ["341", "301"]);
    assert!(lines[1].ends_with(" 301 op bar :lunch"));
}
