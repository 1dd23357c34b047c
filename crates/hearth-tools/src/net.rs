//! Which addresses outbound tool requests may reach. Private, loopback, link-local, shared
//! (CGNAT), unspecified, multicast and documentation ranges are refused unless an admin
//! allowlisted the host or a range holding the address: a model must not be a way into the
//! network Hearth runs in (SSRF).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Hosts and ranges an admin allows despite the rules.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    hosts: Vec<String>,
    ranges: Vec<(IpAddr, u8)>,
}

impl Allowlist {
    /// Parses entries: host names (`intranet.example`), addresses, or CIDR ranges (`10.0.0.0/8`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut list = Self::default();
        for entry in entries {
            let e = entry.trim().to_lowercase();
            if let Some((ip, bits)) = e.split_once('/') {
                let ip: IpAddr = ip
                    .parse()
                    .map_err(|_| format!("`{entry}` is not a CIDR range"))?;
                let bits: u8 = bits
                    .parse()
                    .map_err(|_| format!("`{entry}` is not a CIDR range"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                if bits > max {
                    return Err(format!("`{entry}` has a prefix longer than {max}"));
                }
                list.ranges.push((ip, bits));
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                list.ranges.push((ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else if !e.is_empty() {
                list.hosts.push(e);
            }
        }
        Ok(list)
    }

    /// Whether `host` (as written in the URL) is allowlisted by name.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.to_lowercase();
        self.hosts.contains(&host)
    }

    /// Whether `ip` falls in an allowlisted range.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.ranges
            .iter()
            .any(|(net, bits)| in_range(ip, *net, *bits))
    }
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Why an address is not public, or `None` when it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let seg = v6.segments();
            let first = seg[0];
            let embedded = |hi: u16, lo: u16| {
                Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            // Addresses that carry an IPv4 address inside are judged by that address.
            if seg[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_loopback() && !v6.is_unspecified() {
                return non_public_v4(embedded(seg[6], seg[7])).or(Some("IPv4-compatible"));
            }
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return non_public_v4(embedded(seg[6], seg[7]));
            }
            if first == 0x2002 {
                return non_public_v4(embedded(seg[1], seg[2]));
            }
            if seg[..3] == [0x64, 0xff9b, 1] {
                return Some("local NAT64");
            }
            if first == 0x2001 && seg[1] == 0 {
                return Some("Teredo tunnel");
            }
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if first == 0x2001 && v6.segments()[1] == 0x0db8 {
                Some("documentation")
            } else if v6 == Ipv6Addr::UNSPECIFIED {
                Some("unspecified")
            } else {
                None
            }
        }
    }
}

fn non_public_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let o = v4.octets();
    if v4.is_loopback() {
        Some("loopback")
    } else if v4.is_private() {
        Some("private")
    } else if v4.is_link_local() {
        Some("link-local")
    } else if v4.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if v4.is_multicast() || o[0] >= 240 {
        Some("multicast or reserved")
    } else if v4.is_broadcast() {
        Some("broadcast")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignments")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if v4.is_documentation() || (o[0] == 198 && (o[1] & 0xfe) == 18) {
        Some("documentation or benchmarking")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(non_public(ip.parse().expect("ip")).is_some(), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(non_public(ip.parse().expect("ip")).is_none(), "{ip}");
        }
    }

    #[test]
    fn allowlist_matches_hosts_addresses_and_ranges() {
        let list =
            Allowlist::parse(&["Intranet.Example".into(), "10.0.0.0/8".into(), "::1".into()])
                .expect("parse");
        assert!(list.allows_host("intranet.example"));
        assert!(list.allows_ip("10.200.0.1".parse().expect("ip")));
        assert!(!list.allows_ip("11.0.0.1".parse().expect("ip")));
        assert!(list.allows_ip("::1".parse().expect("ip")));
        assert!(Allowlist::parse(&["10.0.0.0/40".into()]).is_err());
    }
}
