//! User modes: +i, +w, +o (from OPER only), errors.

use crate::common::*;

#[test]
fn modes_on_oneself_and_their_errors() {
    let mut h = harness();
    let (a, b) = (h.register("alice"), h.register("bob"));
    h.send(a, "MODE alice");
    assert_eq!(h.take(a), [":chatnode.local 221 alice :+"]);
    h.send(a, "MODE alice +iw");
    assert_eq!(h.take(a), [":alice!alice@127.0.0.1 MODE alice :+iw"]);
    h.send(a, "MODE alice");
    assert_eq!(h.take(a), [":chatnode.local 221 alice :+iw"]);
    h.send(a, "MODE alice -w+o");
    assert_eq!(
        h.take(a),
        [":alice!alice@127.0.0.1 MODE alice :-w"],
        "+o only comes from OPER"
    );
    h.send(a, "MODE alice +xi");
    assert_eq!(
        h.take(a),
        [":chatnode.local 501 alice :Unknown MODE flag"],
        "+i is already set: only the error"
    );
    h.send(a, "MODE bob +i");
    assert_eq!(
        h.take(a),
        [":chatnode.local 502 alice :Cant change mode for other users"]
    );
    h.send(a, "MODE nobody");
    assert_eq!(codes(&h.take(a)), ["401"]);
    assert!(h.take(b).is_empty());
}

#[test]
fn an_operator_can_drop_operator_status() {
    let mut h = harness_with_operator();
    let a = h.register("alice");
    make_oper(&mut h, a);
    h.send(a, "MODE alice");
    assert_eq!(h.take(a), [":chatnode.local 221 alice :+o"]);
    h.send(a, "MODE alice -o");
    assert_eq!(h.take(a), [":alice!alice@127.0.0.1 MODE alice :-o"]);
    h.send(a, "KILL alice");
    assert_eq!(codes(&h.take(a)), ["481"]);
}
