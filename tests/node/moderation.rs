//! Channel moderation and operator commands over TCP, on both builds: what crosses the wire
//! (a KICK, a ban, a keyed and an invite-only channel, KILL, WALLOPS). The edge cases are in
//! tests/moderation, through the broker harness.

use crate::common::*;

/// A node whose config has one operator, `admin` / `pw` (a cheap hash: the check is not what
/// these tests are about).
fn node_with_operator(b: &Build, dir: &TempDir) -> Node {
    let hash = argon2_hash("pw", 1024, 1);
    let path = dir.join("chatnode.toml");
    let text = format!("[[operator]]\nname = \"admin\"\npassword_hash = \"{hash}\"\n");
    std::fs::write(&path, text).unwrap();
    Node::start(b, &["--config", &path.to_string_lossy()])
}

#[test]
fn kick_and_ban_keep_a_user_out() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut op = node.register("op");
        let mut troll = node.register("troll");
        op.join("#c");
        troll.join("#c");
        op.expect_command("JOIN");
        op.ask_exactly("MODE #c +b troll!*@*", &["MODE"]);
        troll.expect(|m| m.is("MODE") && m.param(1) == "+b");
        troll.ask_exactly("PRIVMSG #c :spam", &["404"]);
        op.send("KICK #c troll :go away");
        let kick = troll.expect_command("KICK");
        assert_eq!(kick.params, ["#c", "troll", "go away"], "{kick}");
        assert_eq!(kick.nick(), Some("op"));
        op.expect_command("KICK");
        let rejoin = troll.ask_exactly("JOIN #c", &["474"]);
        assert_eq!(rejoin[0].param(1), "#c");
        op.ask_exactly("MODE #c -b troll!*@*", &["MODE"]);
        troll.join("#c");
    });
}

#[test]
fn a_keyed_channel_needs_its_key() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut op = node.register("op");
        let mut guest = node.register("guest");
        op.join("#vault");
        op.ask_exactly("MODE #vault +k sesame", &["MODE"]);
        guest.ask_exactly("JOIN #vault", &["475"]);
        guest.ask_exactly("JOIN #vault wrong", &["475"]);
        guest.send("JOIN #vault sesame");
        let join = guest.expect_command("JOIN");
        assert_eq!(join.params, ["#vault"]);
        op.expect(|m| m.is("JOIN") && m.nick() == Some("guest"));
    });
}

#[test]
fn an_invite_only_channel_lets_in_who_is_invited() {
    for_each_build(|b| {
        let node = Node::start(b, &[]);
        let mut op = node.register("op");
        let mut guest = node.register("guest");
        op.join("#club");
        op.ask_exactly("MODE #club +i", &["MODE"]);
        guest.ask_exactly("JOIN #club", &["473"]);
        let inviting = op.ask_exactly("INVITE guest #club", &["341"]);
        assert_eq!(inviting[0].params, ["op", "guest", "#club"]);
        let invite = guest.expect_command("INVITE");
        assert_eq!(invite.params, ["guest", "#club"]);
        guest.ask_exactly("INVITE", &["336", "337"]);
        guest.join("#club");
        op.expect(|m| m.is("JOIN") && m.nick() == Some("guest"));
    });
}

#[test]
fn an_operator_kills_and_wallops() {
    for_each_build(|b| {
        let dir = TempDir::new("moderation-oper");
        let node = node_with_operator(b, &dir);
        let mut admin = node.register("admin");
        let mut watcher = node.register("watcher");
        let mut victim = node.register("victim");
        watcher.join("#c");
        victim.join("#c");
        watcher.expect_command("JOIN");
        victim.ask_exactly("KILL watcher :no", &["481"]);
        watcher.ask_exactly("MODE watcher +w", &["MODE"]);
        admin.send("OPER admin pw");
        admin.expect_numeric("381");
        admin.send("WALLOPS :maintenance at noon");
        let wallops = watcher.expect_command("WALLOPS");
        assert_eq!(wallops.last(), "maintenance at noon");
        assert_eq!(wallops.nick(), Some("admin"));
        victim.assert_no_line_matching(|m| m.is("WALLOPS"));
        admin.send("KILL victim :flooding");
        let lines = victim.expect_closed();
        assert!(lines.iter().any(|m| m.is("KILL")), "{lines:?}");
        assert!(lines.iter().any(|m| m.is("ERROR")), "{lines:?}");
        let quit = watcher.expect(|m| m.is("QUIT"));
        assert_eq!(quit.nick(), Some("victim"));
        assert_eq!(quit.last(), "Killed (admin (flooding))");
    });
}
