//! REHASH and SIGHUP on a running node: the config file and the MOTD are read again, the new
//! MOTD and operators apply at once, connected clients stay, and a broken file is refused with
//! the running configuration kept.

use crate::common::*;

/// Writes the node's config file: the MOTD file next to it, and one operator per name, each
/// with the password `pw`. `extra` goes at the top (a broken line, a restart-only setting).
fn write_config(dir: &TempDir, extra: &str, operators: &[&str]) -> String {
    let mut text = format!("{extra}\nmotd = \"motd.txt\"\n");
    for name in operators {
        let hash = argon2_hash("pw", 1024, 1);
        text.push_str(&format!(
            "[[operator]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\n"
        ));
    }
    let path = dir.join("chatnode.toml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// The MOTD's lines, as MOTD answers them.
fn motd(c: &mut Client) -> String {
    c.send("MOTD");
    let mut text = Vec::new();
    loop {
        let m = c.expect(|m| m.is("372") || m.is("376") || m.is("422"));
        if !m.is("372") {
            return text.join("\n");
        }
        text.push(m.last().trim_start_matches("- ").to_string());
    }
}

fn oper(c: &mut Client, name: &str) -> Msg {
    c.send(&format!("OPER {name} pw"));
    c.expect_one_of(&["381", "491", "464"]).0
}

#[test]
fn sighup_and_rehash_reload_the_motd_and_operators_and_keep_clients() {
    for_each_build(|b| {
        let dir = TempDir::new("rehash");
        std::fs::write(dir.join("motd.txt"), "first motd\n").unwrap();
        let config = write_config(&dir, "", &["admin"]);
        let node = Node::start(b, &["--config", &config]);
        let mut alice = node.register("alice");
        alice.join("#stay");
        assert_eq!(motd(&mut alice), "first motd");

        // SIGHUP: a new MOTD and a new operator, and a restart-only setting changed.
        std::fs::write(dir.join("motd.txt"), "second motd\n").unwrap();
        write_config(&dir, "sendq = 65536", &["admin", "boss"]);
        let mark = node.log_len();
        node.signal("HUP");
        let line = node.wait_log(mark, &format!("SIGHUP: {config}: "), DEADLINE);
        assert!(line.contains("MOTD text: 1 lines, applied"), "{line}");
        assert!(line.contains("operators: now admin, boss"), "{line}");
        assert!(line.contains("sendq: changed, needs a restart"), "{line}");
        assert_eq!(motd(&mut alice), "second motd");
        let mut bob = node.register("bob");
        assert!(oper(&mut bob, "boss").is("381"));

        // REHASH from an operator: 382, then a NOTICE saying what changed.
        std::fs::write(dir.join("motd.txt"), "third motd\n").unwrap();
        bob.send("REHASH");
        let rehashing = bob.expect_numeric("382");
        assert_eq!(rehashing.param(1), config, "{rehashing}");
        let notice = bob.expect_command("NOTICE");
        assert!(
            notice.last().contains("MOTD text: 1 lines, applied"),
            "{notice}"
        );
        assert_eq!(motd(&mut alice), "third motd");
        alice.send("REHASH");
        alice.expect_numeric("481");

        // A broken file is refused, by REHASH and by SIGHUP: the running configuration stays.
        write_config(&dir, "threads = 0", &[]);
        std::fs::write(dir.join("motd.txt"), "never shown\n").unwrap();
        bob.send("REHASH");
        let refused = bob.expect_command("NOTICE");
        assert!(
            refused
                .last()
                .contains("refused, the running configuration stays")
                && refused
                    .last()
                    .contains("line 1: threads: '0': must be a whole number"),
            "{refused}"
        );
        let mark = node.log_len();
        node.signal("HUP");
        node.wait_log(mark, "the new configuration was refused", DEADLINE);
        assert_eq!(motd(&mut alice), "third motd");
        let mut carol = node.register("carol");
        assert!(
            oper(&mut carol, "admin").is("381"),
            "the old operators hold"
        );

        // Nobody was dropped along the way.
        alice.assert_alive();
        bob.assert_alive();
        alice.send("PRIVMSG #stay :still here");
        alice.assert_alive();
    });
}

/// The MOTD file named on the command line is read again too, and a missing one is refused
/// with the file and the setting named.
#[test]
fn rehash_without_a_config_file_rereads_the_motd() {
    for_each_build(|b| {
        let dir = TempDir::new("rehash-motd");
        let motd_path = dir.join("motd.txt");
        std::fs::write(&motd_path, "one\n").unwrap();
        let motd_arg = motd_path.to_string_lossy().into_owned();
        let node = Node::start(b, &["--motd", &motd_arg]);
        let mut alice = node.register("alice");
        std::fs::write(&motd_path, "two\nlines\n").unwrap();
        let mark = node.log_len();
        node.signal("HUP");
        let line = node.wait_log(mark, "SIGHUP: command-line: ", DEADLINE);
        assert!(line.contains("command-line: MOTD text: 2 lines"), "{line}");
        assert_eq!(motd(&mut alice), "two\nlines");
        std::fs::remove_file(&motd_path).unwrap();
        let mark = node.log_len();
        node.signal("HUP");
        let line = node.wait_log(mark, "refused", DEADLINE);
        assert!(line.contains("motd (--motd): cannot read"), "{line}");
        assert!(line.contains(&motd_arg), "{line}");
        assert_eq!(motd(&mut alice), "two\nlines");
        alice.assert_alive();
    });
}

/// Flood control, the per-address limits and the exempt ranges are applied by a re-read: to
/// clients already connected (flood control) and to the next connection (the limits); the IPv6
/// prefix is said to need a restart. The node runs with its default protections.
#[test]
fn rehash_applies_flood_control_and_the_per_address_limits() {
    for_each_build(|b| {
        let dir = TempDir::new("rehash-limits");
        let path = dir.join("chatnode.toml");
        let config = path.to_string_lossy().into_owned();
        std::fs::write(&path, "max_per_address = 2\n").unwrap();
        let node = Node::start_with_defaults(b, &["--config", &config]);
        let mut alice = node.register("alice");
        let mut bob = node.register("bob");
        let mut third = node.connect("third");
        let refused = third.expect(|m| m.is("ERROR"));
        assert!(
            refused
                .last()
                .contains("Too many connections from your address, the limit is 2"),
            "{refused}"
        );

        std::fs::write(
            &path,
            "max_per_address = 3\nflood_rate = 0\nipv6_prefix = 56\n",
        )
        .unwrap();
        let mark = node.log_len();
        node.signal("HUP");
        let line = node.wait_log(mark, &format!("SIGHUP: {config}: "), DEADLINE);
        for change in [
            "max_per_address: changed, applied",
            "flood_rate: changed, applied",
            "ipv6_prefix: changed, needs a restart",
        ] {
            assert!(line.contains(change), "{change}: {line}");
        }
        // A third connection from the address is admitted now.
        let mut carol = node.register("carol");
        carol.assert_alive();
        // Flood control is off for alice, who was connected before: 300 lines in one write
        // all arrive (with it on, 25 would, then 4 a second, and the rest would be cut as
        // Excess Flood past 16 KiB waiting).
        let mut block = Vec::new();
        for i in 0..300 {
            block.extend_from_slice(format!("PRIVMSG bob :line {i}\r\n").as_bytes());
        }
        alice.send_raw(&block);
        for i in 0..300 {
            let m = bob.expect(|m| m.is("PRIVMSG"));
            assert_eq!(m.last(), format!("line {i}"));
        }
        alice.assert_alive();
    });
}
