//! Secret channels (+s) and invisible users (+i) in LIST, NAMES, WHOIS and WHO.

use crate::common::*;

#[test]
fn a_secret_channel_is_hidden_from_non_members() {
    let mut h = harness();
    let (first, second) = (h.register("first"), h.register("second"));
    channel(&mut h, "#gen", first, &[]);
    h.send(first, "MODE #gen +s");
    h.send(first, "LIST");
    assert_eq!(codes(&h.take(first)), ["MODE", "321", "322", "323"]);
    h.send(second, "LIST");
    assert_eq!(codes(&h.take(second)), ["321", "323"]);
    h.send(second, "LIST #gen");
    assert_eq!(codes(&h.take(second)), ["321", "323"]);
    h.send(second, "NAMES #gen");
    assert_eq!(
        h.take(second),
        [":chatnode.local 366 second #gen :End of /NAMES list"]
    );
    h.send(second, "NAMES");
    assert_eq!(codes(&h.take(second)), ["366"]);
    h.send(second, "WHO #gen");
    assert_eq!(codes(&h.take(second)), ["315"]);
    h.send(second, "WHOIS first");
    assert!(!code_in(&h.take(second), "319"));
    // Members see it, with `@` in 353.
    h.send(second, "JOIN #gen");
    let lines = h.take(second);
    assert!(
        only(&lines, "353").contains(" 353 second @ #gen :"),
        "{lines:?}"
    );
    h.send(second, "LIST");
    assert_eq!(codes(&h.take(second)), ["321", "322", "323"]);
    h.send(second, "WHOIS first");
    assert!(only(&h.take(second), "319").ends_with(":@#gen"));
}

#[test]
fn invisible_users_are_hidden_from_those_who_share_no_channel() {
    let mut h = harness();
    let (ghost, friend, stranger) = (
        h.register("ghost"),
        h.register("friend"),
        h.register("stranger"),
    );
    channel(&mut h, "#c", ghost, &[friend]);
    h.send(ghost, "MODE ghost +i");
    assert_eq!(h.take(ghost), [":ghost!ghost@127.0.0.1 MODE ghost :+i"]);
    // WHO by nick mask.
    h.send(stranger, "WHO gh*");
    assert_eq!(codes(&h.take(stranger)), ["315"]);
    h.send(friend, "WHO gh*");
    assert_eq!(codes(&h.take(friend)), ["352", "315"]);
    // NAMES and WHO of the channel, from outside and inside.
    h.send(stranger, "NAMES #c");
    assert_eq!(names(&h.take(stranger)), ["friend"]);
    h.send(stranger, "WHO #c");
    assert_eq!(codes(&h.take(stranger)), ["352", "315"]);
    h.send(friend, "NAMES #c");
    let mut all = names(&h.take(friend));
    all.sort();
    assert_eq!(all, ["@ghost", "friend"]);
    // WHOIS shows an invisible user's channels only to fellow members.
    h.send(stranger, "WHOIS ghost");
    assert!(!code_in(&h.take(stranger), "319"));
    h.send(friend, "WHOIS ghost");
    assert!(code_in(&h.take(friend), "319"));
    // LUSERS counts them apart.
    h.send(stranger, "LUSERS");
    let lines = h.take(stranger);
    assert!(only(&lines, "251").contains("There are 2 users and 1 invisible"));
}

#[test]
fn names_of_several_channels_end_with_one_366() {
    let mut h = harness();
    let (a, b) = (h.register("nick1"), h.register("nick2"));
    channel(&mut h, "#chan1", a, &[]);
    channel(&mut h, "#chan2", b, &[]);
    h.send(a, "NAMES #chan1,#chan2");
    assert_eq!(
        h.take(a),
        [
            ":chatnode.local 353 nick1 = #chan1 :@nick1",
            ":chatnode.local 353 nick1 = #chan2 :@nick2",
            ":chatnode.local 366 nick1 #chan1,#chan2 :End of /NAMES list"
        ]
    );
    h.send(b, "MODE #chan2 +s");
    h.send(a, "NAMES");
    assert_eq!(
        codes(&h.take(a)),
        ["353", "366"],
        "the secret channel is left out"
    );
}
