//! KILL, WALLOPS, and operator status in WHO, WHOIS and LUSERS.

use crate::common::*;

#[test]
fn only_operators_kill() {
    let mut h = harness_with_operator();
    let (op, alice, bob) = (h.register("ircop"), h.register("alice"), h.register("bob"));
    h.send(alice, "KILL bob :reason");
    assert_eq!(
        h.take(alice),
        [":chatnode.local 481 alice :Permission Denied- You're not an IRC operator"]
    );
    assert!(!h.is_closed(bob));
    make_oper(&mut h, op);
    h.send(op, "KILL nobody :x");
    assert_eq!(codes(&h.take(op)), ["401"]);
    h.send(op, "KILL chatnode.local :x");
    assert_eq!(codes(&h.take(op)), ["483"]);
    h.send(op, "KILL");
    assert_eq!(codes(&h.take(op)), ["461"]);
}

#[test]
fn a_killed_user_is_told_and_closed_and_peers_see_a_quit() {
    let mut h = harness_with_operator();
    let (op, alice, bob) = (h.register("ircop"), h.register("alice"), h.register("bob"));
    make_oper(&mut h, op);
    channel(&mut h, "#c", alice, &[bob]);
    h.send(op, "KILL alice :spam");
    assert!(h.is_closed(alice));
    let lines = h.take(alice);
    assert_eq!(lines[0], ":ircop!ircop@127.0.0.1 KILL alice :spam");
    assert!(lines[1].starts_with("ERROR :Closing Link: 127.0.0.1 (Killed (ircop (spam)))"));
    assert_eq!(
        h.take(bob),
        [":alice!alice@127.0.0.1 QUIT :Killed (ircop (spam))"]
    );
    // The nick is free again; a reason is optional.
    let again = h.register("alice");
    h.send(op, "KILL alice");
    assert!(h.is_closed(again));
}

#[test]
fn wallops_reach_users_with_plus_w_only() {
    let mut h = harness_with_operator();
    let (op, w, plain) = (
        h.register("ircop"),
        h.register("watcher"),
        h.register("plain"),
    );
    h.send(w, "MODE watcher +w");
    h.take(w);
    h.send(plain, "WALLOPS :hi");
    assert_eq!(codes(&h.take(plain)), ["481"]);
    make_oper(&mut h, op);
    h.send(op, "WALLOPS :server restarts soon");
    let want = ":ircop!ircop@127.0.0.1 WALLOPS :server restarts soon";
    assert_eq!(h.take(w), [want]);
    assert!(h.take(plain).is_empty());
    assert!(h.take(op).is_empty(), "the sender has no +w");
    h.send(op, "WALLOPS");
    assert_eq!(codes(&h.take(op)), ["461"]);
}

#[test]
fn operator_status_shows_in_who_whois_and_lusers() {
    let mut h = harness_with_operator();
    let (op, other) = (h.register("ircop"), h.register("other"));
    make_oper(&mut h, op);
    channel(&mut h, "#c", op, &[other]);
    h.send(other, "WHO #c");
    let lines = h.take(other);
    let row = lines.iter().find(|l| l.contains(" ircop H")).unwrap();
    assert!(row.contains(" ircop H*@ :0 "), "{row}");
    h.send(other, "WHOIS ircop");
    assert!(only(&h.take(other), "313").ends_with(" 313 other ircop :is an IRC operator"));
    h.send(other, "LUSERS");
    assert!(only(&h.take(other), "252").ends_with(" 252 other 1 :operator(s) online"));
}
