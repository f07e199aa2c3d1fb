//! Host cloaking: what others see of a client's address.
//!
//! Without it, every JOIN, WHO and WHOIS shows each user's IP address to everyone in the
//! channel. With it (the node's default), the host part of `nick!user@host` is a keyed hash of
//! the address: the same address always gives the same host (bans and ignores keep working
//! across reconnects), but the address cannot be read back without the key. Operators, and the
//! user themselves, see the real address in WHOIS (378 and 338, as Ergo and InspIRCd show it).
//!
//! The key is `cloak_key` in the config file; without one the node makes a random key at start,
//! so hosts then change when the node restarts. The hash is BLAKE2b over the key's length, the
//! key and the address's bytes (an IPv4-mapped IPv6 address counts as its IPv4 address).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use blake2::{Blake2b512, Digest};

/// The secret cloaked hosts are made with. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct CloakKey(Arc<[u8]>);

impl CloakKey {
    /// A key from the given bytes (the config file's `cloak_key`, or random bytes).
    pub fn new(bytes: &[u8]) -> CloakKey {
        CloakKey(Arc::from(bytes))
    }

    /// The cloaked host for `ip`: 16 hex digits of the keyed hash, then `.ip`.
    ///
    /// ```
    /// use chatnode::broker::CloakKey;
    /// let key = CloakKey::new(b"secret");
    /// let a = key.cloak("192.0.2.7".parse().unwrap());
    /// assert_eq!(a, key.cloak("::ffff:192.0.2.7".parse().unwrap())); // stable, same address
    /// assert_ne!(a, key.cloak("192.0.2.8".parse().unwrap()));
    /// assert_ne!(a, CloakKey::new(b"other").cloak("192.0.2.7".parse().unwrap()));
    /// assert!(a.ends_with(".ip") && !a.contains("192"));
    /// ```
    pub fn cloak(&self, ip: IpAddr) -> String {
        let mut hash = Blake2b512::new();
        hash.update((self.0.len() as u64).to_le_bytes());
        hash.update(&self.0);
        match crate::cidr::canonical(ip) {
            IpAddr::V4(v4) => hash.update(v4.octets()),
            IpAddr::V6(v6) => hash.update(v6.octets()),
        }
        let digest = hash.finalize();
        let mut host = String::with_capacity(19);
        for byte in &digest[..8] {
            host.push_str(&format!("{byte:02x}"));
        }
        host.push_str(".ip");
        host
    }
}

impl fmt::Debug for CloakKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CloakKey(<secret>)")
    }
}

/// The host a client from `ip` shows: cloaked with `key`, or the address itself.
pub(super) fn host_for(key: Option<&CloakKey>, ip: IpAddr) -> String {
    match key {
        Some(key) => key.cloak(ip),
        None => crate::cidr::canonical(ip).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::broker::harness::Harness;
    use crate::broker::{BrokerConfig, Operator};

    /// `CloakKey::new(b"test key").cloak(192.0.2.7)`, computed independently: Python's
    /// `hashlib.blake2b(struct.pack("<Q", 8) + b"test key" + bytes([192, 0, 2, 7])).digest()[:8].hex()`.
    const PINNED_V4: &str = "b83f04d50e2dc0ff.ip";

    fn cloaked_harness() -> Harness {
        let hash = crate::auth::hash_password("pw", b"0123456789abcdef").unwrap();
        Harness::new(BrokerConfig {
            cloak: Some(CloakKey::new(b"test key")),
            operators: vec![Operator {
                name: "admin".into(),
                password_hash: hash,
            }],
            ..BrokerConfig::default()
        })
    }

    fn register_from(h: &mut Harness, nick: &str, ip: [u8; 4]) -> u64 {
        let id = h.connect_from(SocketAddr::from((ip, 40000)));
        h.send(id, &format!("NICK {nick}"));
        h.send(id, &format!("USER {nick} 0 * :{nick}"));
        h.take(id);
        id
    }

    #[test]
    fn a_cloak_is_sixteen_hex_digits_per_address_and_key() {
        let key = CloakKey::new(b"test key");
        assert_eq!(
            format!("{key:?}"),
            "CloakKey(<secret>)",
            "never the key in a log"
        );
        let a = key.cloak("192.0.2.7".parse().unwrap());
        let (hex, suffix) = a.split_at(16);
        assert!(
            hex.bytes().all(|b| b.is_ascii_hexdigit()) && suffix == ".ip",
            "{a}"
        );
        assert_eq!(a, key.cloak("::ffff:192.0.2.7".parse().unwrap()));
        assert_ne!(a, key.cloak("192.0.2.8".parse().unwrap()));
        assert_ne!(a, key.cloak("2001:db8::7".parse().unwrap()));
        assert_ne!(
            a,
            CloakKey::new(b"other").cloak("192.0.2.7".parse().unwrap())
        );
        // The key's length is hashed first, so no key and address run into another pair:
        // "k" then 2001:db8::c000:207 is not "k" and 12 bytes of it, then 192.0.2.7.
        let long_key = CloakKey::new(&[b'k', 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_ne!(
            CloakKey::new(b"k").cloak("2001:db8::c000:207".parse().unwrap()),
            long_key.cloak("192.0.2.7".parse().unwrap())
        );
    }

    #[test]
    fn others_see_the_cloak_stable_across_reconnects() {
        let mut h = cloaked_harness();
        let key = CloakKey::new(b"test key");
        let cloak = key.cloak("192.0.2.7".parse().unwrap());
        let alice = register_from(&mut h, "alice", [192, 0, 2, 7]);
        let bob = register_from(&mut h, "bob", [198, 51, 100, 1]);
        h.send(bob, "JOIN #c");
        h.take(bob);
        h.send(alice, "JOIN #c");
        let seen = h.take(bob);
        assert_eq!(seen, [format!(":alice!alice@{cloak} JOIN #c")]);
        h.send(bob, "WHO #c");
        let who = h.take(bob).join("\n");
        assert!(!who.contains("192.0.2.7") && who.contains(&cloak), "{who}");
        // Reconnecting from the same address gives the same host.
        h.send(alice, "QUIT");
        h.take(bob);
        let again = register_from(&mut h, "alice", [192, 0, 2, 7]);
        h.send(again, "JOIN #c");
        assert_eq!(h.take(bob), [format!(":alice!alice@{cloak} JOIN #c")]);
    }

    #[test]
    fn the_real_address_shows_to_operators_and_the_user_only() {
        let mut h = cloaked_harness();
        let alice = register_from(&mut h, "alice", [192, 0, 2, 7]);
        let bob = register_from(&mut h, "bob", [198, 51, 100, 1]);
        h.send(bob, "WHOIS alice");
        let lines = h.take(bob).join("\n");
        assert!(!lines.contains("192.0.2.7"), "{lines}");
        assert!(
            !lines.contains(" 378 ") && !lines.contains(" 338 "),
            "{lines}"
        );
        h.send(alice, "WHOIS alice");
        let own = h.take(alice).join("\n");
        assert!(
            own.contains(" 378 alice alice :is connecting from *@192.0.2.7 192.0.2.7"),
            "{own}"
        );
        h.send(bob, "OPER admin pw");
        h.run_offloaded();
        h.take(bob);
        h.send(bob, "WHOIS alice");
        let lines = h.take(bob);
        assert!(
            lines.contains(&":chatnode.local 338 bob alice alice@192.0.2.7 192.0.2.7 :Actual user@host, actual IP".to_string()),
            "{lines:?}"
        );
    }

    #[test]
    fn without_a_key_the_address_shows() {
        let mut h = Harness::new(BrokerConfig::default());
        let alice = register_from(&mut h, "alice", [192, 0, 2, 7]);
        h.send(alice, "WHOIS alice");
        let lines = h.take(alice);
        assert!(lines[0].contains(" alice alice 192.0.2.7 * "), "{lines:?}");
        assert!(
            !lines.join("\n").contains(" 378 "),
            "nothing hidden, nothing to show"
        );
    }

    #[test]
    fn a_cloak_is_sixteen_hex_digits_of_the_keyed_hash_and_never_the_address() {
        let key = CloakKey::new(b"test key");
        let v4 = key.cloak("192.0.2.7".parse().unwrap());
        let (hex, suffix) = v4.split_at(16);
        assert_eq!(suffix, ".ip");
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{v4}"
        );
        // Pinned: a node upgraded with the same `cloak_key` must keep every user's host, or bans
        // on cloaked hosts stop matching.
        assert_eq!(v4, PINNED_V4);
        assert_eq!(key.cloak("::ffff:192.0.2.7".parse().unwrap()), v4);
        let v6 = key.cloak("2001:db8::7".parse().unwrap());
        assert!(v6.len() == 19 && v6 != v4 && !v6.contains("2001"), "{v6}");
        assert_ne!(
            CloakKey::new(b"test kez").cloak("192.0.2.7".parse().unwrap()),
            v4
        );
    }

    #[test]
    fn a_keys_debug_form_hides_the_key() {
        let key = CloakKey::new(b"hunter2");
        assert_eq!(format!("{key:?}"), "CloakKey(<secret>)");
        assert_eq!(format!("{:?}", Some(key)), "Some(CloakKey(<secret>))");
    }
}
