//! Address ranges (`192.168.0.0/16`, `fd00::/8`) and the per-address key the node counts by.
//!
//! Runtime-free and I/O-free: the broker (flood-control exemptions) and the server (per-address
//! limits) share it. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a dual-stack listener
//! reports for an IPv4 client) is treated as the IPv4 address it carries, everywhere.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One range of addresses: a network address and a prefix length.
///
/// ```
/// use chatnode::cidr::Cidr;
/// let lan: Cidr = "192.168.0.0/16".parse().unwrap();
/// assert!(lan.contains("192.168.4.7".parse().unwrap()));
/// assert!(!lan.contains("10.0.0.1".parse().unwrap()));
/// let one: Cidr = "::1".parse().unwrap(); // no prefix: that one address
/// assert!(one.contains("::1".parse().unwrap()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The network address, with the host bits cleared.
    network: IpAddr,
    /// Leading bits that must match.
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this range. IPv4 ranges also match IPv4-mapped IPv6 addresses.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask_v4(u32::from(ip), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask_v6(u128::from(ip), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }

    /// Whether any range in `list` contains `ip`.
    pub fn any_contains(list: &[Cidr], ip: IpAddr) -> bool {
        list.iter().any(|c| c.contains(ip))
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || format!("'{s}' is not an address range (like 127.0.0.0/8 or fd00::/8)");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        let network = match ip {
            IpAddr::V4(v4) => IpAddr::V4(mask_v4(u32::from(v4), prefix).into()),
            IpAddr::V6(v6) => IpAddr::V6(mask_v6(u128::from(v6), prefix).into()),
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The key per-address limits count by: the IPv4 address, or the IPv6 address cut to its first
/// `v6_prefix` bits (a /64 is usually one subscriber: one host can use any address in it).
///
/// ```
/// use chatnode::cidr::address_key;
/// let a = address_key("2001:db8::1".parse().unwrap(), 64);
/// let b = address_key("2001:db8::ffff:2".parse().unwrap(), 64);
/// assert_eq!(a, b); // same /64
/// assert_ne!(address_key("10.0.0.1".parse().unwrap(), 64), address_key("10.0.0.2".parse().unwrap(), 64));
/// ```
pub fn address_key(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(mask_v6(u128::from(v6), v6_prefix.min(128)).into()),
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; every other address unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn mask_v4(bits: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(prefix)))
    }
}

fn mask_v6(bits: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(prefix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains("10.200.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.9.9.9".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "::/129", "nope/8", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
