//! MODE on channels: queries, several changes in one line, parameter rules, validation, errors.

use crate::common::*;

#[test]
fn query_shows_modes_and_creation_time_and_hides_the_key_from_non_members() {
    let mut h = harness();
    let (op, out) = (h.register("op"), h.register("out"));
    channel(&mut h, "#c", op, &[]);
    h.send(op, "MODE #c");
    let lines = h.take(op);
    assert_eq!(codes(&lines), ["324", "329"]);
    assert!(lines[0].ends_with(" 324 op #c :+nt"), "{lines:?}");
    h.send(op, "MODE #c +imsk-n+l sesame 5");
    h.take(op);
    h.send(op, "MODE #c");
    assert!(h.take(op)[0].ends_with(" 324 op #c +imstkl sesame :5"));
    h.send(out, "MODE #c");
    assert!(h.take(out)[0].ends_with(" 324 out #c +imstkl * :5"));
}

#[test]
fn several_changes_and_parameters_in_one_line_are_one_mode_line_for_everyone() {
    let mut h = harness();
    let (op, a, b) = (h.register("op"), h.register("alice"), h.register("bob"));
    channel(&mut h, "#c", op, &[a, b]);
    h.send(op, "MODE #c +ov-t+l alice bob 10");
    let want = ":op!op@127.0.0.1 MODE #c +ov-t+l alice bob 10";
    assert_eq!(h.take(op), [want]);
    assert_eq!(h.take(a), [want]);
    assert_eq!(h.take(b), [want]);
    // Nothing changes: nothing is sent.
    h.send(op, "MODE #c +o-t alice");
    assert!(h.take(op).is_empty());
}

#[test]
fn changes_need_channel_operator_status_but_list_queries_do_not() {
    let mut h = harness();
    let (op, member, out) = (h.register("op"), h.register("member"), h.register("out"));
    channel(&mut h, "#c", op, &[member]);
    h.send(member, "MODE #c +m");
    assert_eq!(
        h.take(member),
        [":chatnode.local 482 member #c :You're not channel operator"]
    );
    h.send(out, "MODE #c -t");
    assert_eq!(codes(&h.take(out)), ["482"]);
    h.send(member, "MODE #c +o member");
    assert_eq!(codes(&h.take(member)), ["482"]);
    h.send(member, "MODE #c +o");
    assert_eq!(
        codes(&h.take(member)),
        ["482"],
        "a change, even without its parameter"
    );
    h.send(member, "MODE #c b");
    assert_eq!(codes(&h.take(member)), ["368"]);
    h.send(op, "MODE #c");
    assert!(h.take(op)[0].ends_with("+nt"), "nothing changed");
}

#[test]
fn unknown_letters_get_472_and_the_rest_is_applied() {
    let mut h = harness();
    let op = h.register("op");
    channel(&mut h, "#c", op, &[]);
    h.send(op, "MODE #c +mXq");
    let lines = h.take(op);
    assert_eq!(codes(&lines), ["472", "472", "MODE"], "{lines:?}");
    assert!(lines[0].ends_with(" 472 op X :is unknown mode char to me"));
    assert!(lines[2].ends_with("MODE #c +m"));
}

#[test]
fn a_missing_parameter_is_461_and_the_mode_is_ignored() {
    let mut h = harness();
    let op = h.register("op");
    channel(&mut h, "#c", op, &[]);
    for mode in ["+k", "+l", "+o", "-v"] {
        h.send(op, &format!("MODE #c {mode}"));
        assert_eq!(codes(&h.take(op)), ["461"], "{mode}");
    }
    h.send(op, "MODE #c");
    assert!(h.take(op)[0].ends_with("+nt"));
}

#[test]
fn nonexistent_channel_nick_or_non_member_targets() {
    let mut h = harness();
    let (op, out) = (h.register("op"), h.register("out"));
    channel(&mut h, "#c", op, &[]);
    h.send(op, "MODE #nope +o op");
    assert_eq!(codes(&h.take(op)), ["403"]);
    h.send(op, "MODE #c +o nobody");
    assert_eq!(
        h.take(op),
        [":chatnode.local 401 op nobody :No such nick/channel"]
    );
    h.send(op, "MODE #c +v out");
    assert_eq!(
        h.take(op),
        [":chatnode.local 441 op out #c :They aren't on that channel"]
    );
    assert!(h.take(out).is_empty());
}

#[test]
fn key_validation_follows_the_modern_docs() {
    let mut h = harness();
    let op = h.register("op");
    channel(&mut h, "#c", op, &[]);
    let long = "long".repeat(100);
    for bad in ["passphrase with spaces", long.as_str(), "", "a,b"] {
        h.send(op, &format!("MODE #c +k :{bad}"));
        let lines = h.take(op);
        assert_eq!(codes(&lines), ["696"], "{bad:?}: {lines:?}");
        assert!(lines[0].contains(" 696 op #c k * :"), "{lines:?}");
    }
    h.send(op, "MODE #c +k sesame");
    assert_eq!(h.take(op), [":op!op@127.0.0.1 MODE #c +k sesame"]);
    h.send(op, "MODE #c -k");
    assert_eq!(h.take(op), [":op!op@127.0.0.1 MODE #c -k *"]);
}

#[test]
fn a_key_of_23_bytes_is_taken_and_24_refused() {
    let mut h = harness();
    let op = h.register("op");
    channel(&mut h, "#c", op, &[]);
    let too_long = "k".repeat(24);
    h.send(op, &format!("MODE #c +k {too_long}"));
    assert_eq!(codes(&h.take(op)), ["696"]);
    let longest = "k".repeat(23);
    h.send(op, &format!("MODE #c +k {longest}"));
    assert_eq!(
        h.take(op),
        [format!(":op!op@127.0.0.1 MODE #c +k {longest}")]
    );
}

#[test]
fn a_key_is_needed_to_join() {
    let mut h = harness();
    let (op, bob) = (h.register("op"), h.register("bob"));
    channel(&mut h, "#c", op, &[]);
    h.send(op, "MODE #c +k beer");
    h.take(op);
    h.send(bob, "JOIN #c");
    assert_eq!(
        h.take(bob),
        [":chatnode.local 475 bob #c :Cannot join channel (+k)"]
    );
    h.send(bob, "JOIN #c bees");
    assert_eq!(codes(&h.take(bob)), ["475"]);
    // Keys pair with channels in order; #other needs none.
    h.send(bob, "JOIN #other,#c x,beer");
    let lines = h.take(bob);
    let joins: Vec<&String> = lines.iter().filter(|l| command(l) == "JOIN").collect();
    assert_eq!(joins.len(), 2, "{lines:?}");
    assert!(joins[1].ends_with("JOIN #c"));
}

#[test]
fn limit_validation_and_enforcement() {
    let mut h = harness();
    let (op, a, b) = (h.register("op"), h.register("alice"), h.register("bob"));
    channel(&mut h, "#c", op, &[]);
    for bad in ["0", "-1", "abc", ""] {
        h.send(op, &format!("MODE #c +l :{bad}"));
        let lines = h.take(op);
        assert_eq!(codes(&lines), ["696"], "{bad:?}: {lines:?}");
        assert!(lines[0].contains(" 696 op #c l "), "{lines:?}");
    }
    h.send(op, "MODE #c +l 2");
    assert_eq!(h.take(op), [":op!op@127.0.0.1 MODE #c +l 2"]);
    h.send(a, "JOIN #c");
    assert!(code_in(&h.take(a), "JOIN"));
    h.send(b, "JOIN #c");
    assert_eq!(
        h.take(b),
        [":chatnode.local 471 bob #c :Cannot join channel (+l)"]
    );
    // Lowering the limit under the member count keeps everyone in.
    h.send(op, "MODE #c +l 1");
    h.send(a, "PRIVMSG #c :still here");
    assert!(h.take(op).iter().any(|l| l.ends_with(":still here")));
    h.send(op, "MODE #c -l");
    assert!(h.take(op)[0].ends_with("MODE #c -l"));
    h.send(b, "JOIN #c");
    assert!(code_in(&h.take(b), "JOIN"));
}

#[test]
fn invite_only_needs_an_invite_that_is_used_up_by_joining() {
    let mut h = harness();
    let (op, bob) = (h.register("op"), h.register("bob"));
    channel(&mut h, "#c", op, &[]);
    h.send(op, "MODE #c +i");
    h.take(op);
    h.send(bob, "JOIN #c");
    assert_eq!(
        h.take(bob),
        [":chatnode.local 473 bob #c :Cannot join channel (+i)"]
    );
    h.send(op, "INVITE bob #c");
    h.take(op);
    h.send(bob, "JOIN #c");
    assert!(code_in(&h.take(bob), "JOIN"));
    h.send(bob, "PART #c");
    h.send(bob, "JOIN #c");
    assert_eq!(codes(&h.take(bob)), ["PART", "473"]);
}

#[test]
fn an_invite_lets_past_the_limit_but_not_a_key() {
    let mut h = harness();
    let (op, bob) = (h.register("op"), h.register("bob"));
    channel(&mut h, "#c", op, &[]);
    h.send(op, "MODE #c +l 1");
    h.send(op, "INVITE bob #c");
    h.take(op);
    h.send(bob, "JOIN #c");
    assert!(code_in(&h.take(bob), "JOIN"));
    h.send(bob, "PART #c");
    h.send(op, "MODE #c +k key");
    h.send(op, "INVITE bob #c");
    h.send(bob, "JOIN #c");
    let lines = h.take(bob);
    assert!(code_in(&lines, "475"), "{lines:?}");
}

#[test]
fn moderated_channels_let_voiced_members_and_operators_speak() {
    let mut h = harness();
    let (op, bob) = (h.register("op"), h.register("bob"));
    channel(&mut h, "#c", op, &[bob]);
    h.send(op, "MODE #c +m");
    h.take(op);
    h.take(bob);
    h.send(bob, "PRIVMSG #c :hi");
    assert_eq!(
        h.take(bob),
        [":chatnode.local 404 bob #c :Cannot send to channel"]
    );
    assert!(h.take(op).is_empty());
    h.send(bob, "NOTICE #c :hi");
    assert!(h.take(bob).is_empty(), "NOTICE never gets an error");
    h.send(op, "MODE #c +v bob");
    h.take(op);
    h.send(bob, "PRIVMSG #c :voiced");
    assert_eq!(h.take(op), [":bob!bob@127.0.0.1 PRIVMSG #c :voiced"]);
    h.send(op, "PRIVMSG #c :op");
    assert!(h.take(bob).iter().any(|l| l.ends_with(":op")));
}

#[test]
fn no_external_messages_is_on_by_default_and_can_be_turned_off() {
    let mut h = harness();
    let (op, out) = (h.register("op"), h.register("out"));
    channel(&mut h, "#c", op, &[]);
    h.send(out, "PRIVMSG #c :knock");
    assert_eq!(codes(&h.take(out)), ["404"]);
    h.send(op, "MODE #c -n");
    h.take(op);
    h.send(out, "PRIVMSG #c :knock");
    assert_eq!(h.take(op), [":out!out@127.0.0.1 PRIVMSG #c :knock"]);
}

#[test]
fn protected_topic_can_be_turned_off() {
    let mut h = harness();
    let (op, bob) = (h.register("op"), h.register("bob"));
    channel(&mut h, "#c", op, &[bob]);
    h.send(bob, "TOPIC #c :mine");
    assert_eq!(codes(&h.take(bob)), ["482"]);
    h.send(op, "MODE #c -t");
    h.take(bob);
    h.send(bob, "TOPIC #c :mine");
    assert_eq!(h.take(bob), [":bob!bob@127.0.0.1 TOPIC #c :mine"]);
}

#[test]
fn isupport_announces_the_modes_and_their_limits() {
    let mut h = harness();
    let id = h.connect();
    h.send(id, "NICK a");
    h.send(id, "USER a 0 * :a");
    let lines = h.take(id);
    let isupport: Vec<&String> = lines.iter().filter(|l| command(l) == "005").collect();
    assert!(isupport.len() >= 2, "{lines:?}");
    for line in &isupport {
        // <nick> + at most 13 tokens + the trailing text: at most 15 parameters.
        let params = line.split(" :").next().unwrap().split(' ').count() - 2;
        assert!(params <= 14, "{line}");
    }
    let all = isupport
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for token in [
        "CHANMODES=beI,k,l,imnst",
        "EXCEPTS=e",
        "INVEX=I",
        "MAXLIST=beI:100",
        "MODES=4",
        "KEYLEN=23",
        "PREFIX=(ov)@+",
        "TARGMAX=",
    ] {
        assert!(all.contains(token), "{token} missing: {all}");
    }
    let myinfo = only(&lines, "004");
    assert!(myinfo.ends_with(" iow beIiklmnostv beIklov"), "{myinfo}");
}
