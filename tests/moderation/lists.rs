//! Ban (+b), exception (+e) and invite-exception (+I) lists.

use crate::common::*;

#[test]
fn a_ban_stops_joining_until_it_is_lifted() {
    let mut h = harness();
    let (op, bar) = (h.register("op"), h.register("Bar"));
    channel(&mut h, "#c", op, &[]);
    h.send(op, "MODE #c +b bar!*@*");
    assert_eq!(h.take(op), [":op!op@127.0.0.1 MODE #c +b bar!*@*"]);
    h.send(bar, "JOIN #c");
    assert_eq!(
        h.take(bar),
        [":chatnode.local 474 Bar #c :Cannot join channel (+b)"]
    );
    h.send(op, "MODE #c -b BAR!*@*");
    assert_eq!(h.take(op), [":op!op@127.0.0.1 MODE #c -b bar!*@*"]);
    h.send(bar, "JOIN #c");
    assert!(code_in(&h.take(bar), "JOIN"));
}

#[test]
fn a_banned_member_cannot_speak_even_after_a_nick_change_into_the_mask() {
    let mut h = harness();
    let (op, bob) = (h.register("op"), h.register("bob"));
    channel(&mut h, "#c", op, &[bob]);
    h.send(op, "MODE #c +b troll*!*@*");
    h.take(op);
    h.take(bob);
    h.send(bob, "PRIVMSG #c :fine");
    assert_eq!(h.take(op), [":bob!bob@127.0.0.1 PRIVMSG #c :fine"]);
    h.send(bob, "NICK troll");
    h.take(op);
    h.take(bob);
    h.send(bob, "PRIVMSG #c :now banned");
    assert_eq!(codes(&h.take(bob)), ["404"]);
    assert!(h.take(op).is_empty());
    // Voice lets a banned member speak; an exception lifts the ban.
    h.send(op, "MODE #c +v troll");
    h.send(bob, "PRIVMSG #c :voiced");
    assert!(h.take(op).iter().any(|l| l.ends_with(":voiced")));
    h.send(op, "MODE #c -v+e troll troll!*@*");
    h.take(op);
    h.take(bob);
    h.send(bob, "PRIVMSG #c :excepted");
    assert!(h.take(op).iter().any(|l| l.ends_with(":excepted")));
}

#[test]
fn masks_are_completed_and_listed_with_who_set_them_and_when() {
    let mut h = harness();
    let op = h.register("op");
    channel(&mut h, "#c", op, &[]);
    h.send(op, "MODE #c +bbe bob *@10.0.0.1 good!*@*");
    assert_eq!(
        h.take(op),
        [":op!op@127.0.0.1 MODE #c +bbe bob!*@* *!*@10.0.0.1 good!*@*"]
    );
    h.send(op, "MODE #c +b");
    let lines = h.take(op);
    assert_eq!(codes(&lines), ["367", "367", "368"], "{lines:?}");
    let first: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(
        &first[1..6],
        ["367", "op", "#c", "bob!*@*", "op!op@127.0.0.1"]
    );
    assert!(first[6].trim_start_matches(':').parse::<u64>().unwrap() > 1_600_000_000);
    assert!(lines[2].ends_with(" 368 op #c :End of channel ban list"));
    h.send(op, "MODE #c eI");
    let lines = h.take(op);
    assert_eq!(codes(&lines), ["348", "349", "347"], "{lines:?}");
    assert!(lines[0].contains(" 348 op #c good!*@* "));
    // Adding a mask twice changes nothing; removing an absent one neither.
    h.send(op, "MODE #c +b-b bob nobody");
    assert!(h.take(op).is_empty());
}

#[test]
fn an_invite_exception_lets_matching_users_into_an_invite_only_channel() {
    let mut h = harness();
    let (op, friend, other) = (h.register("op"), h.register("friend"), h.register("other"));
    channel(&mut h, "#c", op, &[]);
    h.send(op, "MODE #c +iI friend");
    h.send(friend, "JOIN #c");
    assert!(code_in(&h.take(friend), "JOIN"));
    h.send(other, "JOIN #c");
    assert_eq!(codes(&h.take(other)), ["473"]);
}

#[test]
fn lists_are_bounded_by_maxlist() {
    let mut h = harness();
    let op = h.register("op");
    channel(&mut h, "#c", op, &[]);
    for i in 0..100 {
        h.send(op, &format!("MODE #c +b u{i}"));
    }
    assert_eq!(h.take(op).len(), 100);
    h.send(op, "MODE #c +b one-too-many");
    assert_eq!(
        h.take(op),
        [":chatnode.local 478 op #c b :Channel list is full"]
    );
    h.send(op, "MODE #c +e fine");
    assert_eq!(codes(&h.take(op)), ["MODE"], "each list has its own bound");
}

#[test]
fn an_overlong_mask_is_refused() {
    let mut h = harness();
    let op = h.register("op");
    channel(&mut h, "#c", op, &[]);
    h.send(op, &format!("MODE #c +b {}", "x".repeat(200)));
    let lines = h.take(op);
    assert_eq!(codes(&lines), ["696"]);
    assert!(lines[0].contains(" 696 op #c b * :"), "{lines:?}");
    // The bound is 120 bytes of the completed mask (`nick!*@*` adds 4): 120 fit, 121 do not.
    let at_bound = format!("{}!*@*", "y".repeat(116));
    h.send(op, &format!("MODE #c +b {at_bound}"));
    assert_eq!(codes(&h.take(op)), ["MODE"]);
    h.send(op, &format!("MODE #c +b {}!*@*", "z".repeat(117)));
    assert_eq!(codes(&h.take(op)), ["696"]);
}

#[test]
fn on_a_channel_open_to_outsiders_a_ban_silences_only_the_outsiders_it_matches() {
    let mut h = harness();
    let (op, bob, troll) = (h.register("op"), h.register("bob"), h.register("troll"));
    channel(&mut h, "#c", op, &[]);
    h.send(op, "MODE #c -n+b troll!*@*");
    h.take(op);
    h.send(bob, "PRIVMSG #c :from outside");
    assert_eq!(h.take(op), [":bob!bob@127.0.0.1 PRIVMSG #c :from outside"]);
    assert!(h.take(bob).is_empty());
    h.send(troll, "PRIVMSG #c :banned");
    assert_eq!(codes(&h.take(troll)), ["404"]);
    assert!(h.take(op).is_empty());
}

#[test]
fn a_list_asked_for_twice_in_one_mode_is_sent_once() {
    let mut h = harness();
    let op = h.register("op");
    channel(&mut h, "#c", op, &[]);
    h.send(op, "MODE #c +b x!*@*");
    h.take(op);
    h.send(op, "MODE #c +bb");
    assert_eq!(codes(&h.take(op)), ["367", "368"]);
}
