//! KICK: one or several users, default comment, every error.

use crate::common::*;

#[test]
fn kick_tells_every_member_and_removes_the_user() {
    let mut h = harness();
    let (op, bar, baz) = (h.register("foo"), h.register("bar"), h.register("baz"));
    channel(&mut h, "#chan", op, &[bar, baz]);
    h.send(op, "KICK #chan bar :bye");
    let want = ":foo!foo@127.0.0.1 KICK #chan bar :bye";
    assert_eq!(h.take(op), [want]);
    assert_eq!(h.take(bar), [want]);
    assert_eq!(h.take(baz), [want]);
    h.send(baz, "NAMES #chan");
    let names = names(&h.take(baz));
    assert!(!names.iter().any(|n| n == "bar"), "{names:?}");
    h.send(bar, "PRIVMSG #chan :back?");
    assert_eq!(codes(&h.take(bar)), ["404"]);
}

#[test]
fn without_a_comment_the_kickers_nick_is_the_comment() {
    let mut h = harness();
    let (op, bar) = (h.register("foo"), h.register("bar"));
    channel(&mut h, "#chan", op, &[bar]);
    h.send(op, "KICK #chan bar");
    assert_eq!(h.take(bar), [":foo!foo@127.0.0.1 KICK #chan bar :foo"]);
}

#[test]
fn several_users_get_one_kick_line_each() {
    let mut h = harness();
    let (op, bar, baz, qux) = (
        h.register("foo"),
        h.register("bar"),
        h.register("baz"),
        h.register("qux"),
    );
    channel(&mut h, "#chan", op, &[bar, baz, qux]);
    h.send(op, "KICK #chan bar,baz :bye");
    assert_eq!(
        h.take(qux),
        [
            ":foo!foo@127.0.0.1 KICK #chan bar :bye",
            ":foo!foo@127.0.0.1 KICK #chan baz :bye"
        ]
    );
    // The RFC 2812 form pairs channels with users.
    h.send(op, "JOIN #other");
    h.send(qux, "JOIN #other");
    h.take(op);
    h.send(op, "KICK #chan,#other qux,qux :out");
    let lines = h.take(op);
    assert_eq!(codes(&lines), ["KICK", "KICK"], "{lines:?}");
    assert!(lines[1].contains("KICK #other qux :out"));
    // Unpaired lists are an error.
    h.send(op, "KICK #chan,#other a,b,c");
    assert_eq!(codes(&h.take(op)), ["461"]);
}

#[test]
fn kick_errors() {
    let mut h = harness();
    let (op, member, out) = (h.register("op"), h.register("member"), h.register("out"));
    channel(&mut h, "#c", op, &[member]);
    h.send(out, "KICK #nope member");
    assert_eq!(
        h.take(out),
        [":chatnode.local 403 out #nope :No such channel"]
    );
    h.send(out, "KICK nochan member");
    assert_eq!(codes(&h.take(out)), ["476"]);
    h.send(out, "KICK #c member");
    assert_eq!(
        h.take(out),
        [":chatnode.local 442 out #c :You're not on that channel"]
    );
    h.send(member, "KICK #c op");
    assert_eq!(codes(&h.take(member)), ["482"]);
    h.send(op, "KICK #c nobody");
    assert_eq!(codes(&h.take(op)), ["401"]);
    h.send(op, "KICK #c out");
    assert_eq!(
        h.take(op),
        [":chatnode.local 441 op out #c :They aren't on that channel"]
    );
    h.send(op, "KICK #c");
    assert_eq!(codes(&h.take(op)), ["461"]);
}

#[test]
fn kicking_the_last_member_deletes_the_channel() {
    let mut h = harness();
    let op = h.register("op");
    channel(&mut h, "#c", op, &[]);
    h.send(op, "KICK #c op");
    assert_eq!(codes(&h.take(op)), ["KICK"]);
    h.send(op, "LIST");
    assert_eq!(codes(&h.take(op)), ["321", "323"]);
}

#[test]
fn a_new_operator_can_kick_an_old_one() {
    let mut h = harness();
    let (foo, bar, baz) = (h.register("foo"), h.register("bar"), h.register("baz"));
    channel(&mut h, "#chan", foo, &[bar, baz]);
    h.send(foo, "MODE #chan +o baz");
    h.send(baz, "KICK #chan bar");
    h.send(baz, "KICK #chan foo");
    let lines = h.take(baz);
    assert_eq!(codes(&lines), ["MODE", "KICK", "KICK"], "{lines:?}");
}
