//! The address guard against server-side request forgery: which IP addresses bantin may
//! connect to. Addresses are checked after DNS resolution and before connecting (a
//! resolver that drops refused addresses) and for IP-literal hosts on every hop. Which
//! *hosts* a source may reach is `Source::allows_host`, not this module.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which addresses may be connected to.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    /// Allow every private, loopback and link-local address (`allow_private_networks`).
    pub allow_private: bool,
    /// Single addresses allowed even when private networks are not, e.g. a local test
    /// server on 127.0.0.1.
    pub allowed: Vec<IpAddr>,
}

impl AddressPolicy {
    /// Whether bantin may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip) || self.allowed.contains(&canonical(ip))
    }
}

/// An address refused by the policy, reported through the resolver's error.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to refused address {addr}")]
pub struct RefusedAddress {
    pub host: String,
    pub addr: IpAddr,
}

/// Whether `ip` is a globally routable unicast address: not private, loopback,
/// link-local, unique-local, shared (CGNAT), documentation, benchmarking, multicast,
/// broadcast or reserved. IPv6 forms that embed an IPv4 address are judged by it.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    match segments[0] {
        // NAT64 64:ff9b::/96 carries an IPv4 address in its last 32 bits.
        0x0064 if segments[1] == 0xff9b => is_public_v4(embedded_v4(segments[6], segments[7])),
        // 6to4 2002::/16 carries one in bits 16..48.
        0x2002 => is_public_v4(embedded_v4(segments[1], segments[2])),
        // Documentation 2001:db8::/32.
        0x2001 if segments[1] == 0x0db8 => false,
        // Teredo 2001::/32 tunnels to an IPv4 host (obfuscated in its last 32 bits) that
        // cannot be checked as a public address.
        0x2001 if segments[1] == 0 => false,
        // Discard-only 100::/64 (RFC 6666).
        0x0100 if segments[1..4] == [0, 0, 0] => false,
        s if s & 0xfe00 == 0xfc00 => false, // unique local fc00::/7
        s if s & 0xffc0 == 0xfe80 => false, // link-local fe80::/10
        s if s & 0xffc0 == 0xfec0 => false, // old site-local fec0::/10
        s if s & 0xff00 == 0xff00 => false, // multicast
        // ::/96 (IPv4-compatible, deprecated) and other addresses under ::/8.
        0 => false,
        _ => true,
    }
}

/// A DNS resolver that drops addresses the policy refuses, so a connection to them is
/// never opened, whatever the name.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: Arc<AddressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            match (permitted.is_empty(), found.first()) {
                (true, Some(first)) => Err(Box::new(RefusedAddress {
                    host,
                    addr: first.ip(),
                }) as _),
                _ => Ok(Box::new(permitted.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address parses")
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_refused() {
        for refused in [
            "10.0.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "127.0.0.1",
            "127.0.0.2",
            "172.16.5.4",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:0101::1",
            "2001:db8::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
        ] {
            assert!(!is_public(ip(refused)), "{refused} must be refused");
            assert!(!AddressPolicy::default().permits(ip(refused)), "{refused}");
        }
    }

    #[test]
    fn public_addresses_are_permitted() {
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "203.162.4.190",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2001:1::1",
            "100:0:0:1::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(public)), "{public} must be permitted");
        }
    }

    #[test]
    fn allow_list_admits_one_address_but_not_its_neighbours() {
        let policy = AddressPolicy {
            allow_private: false,
            allowed: vec![ip("127.0.0.1")],
        };
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(!policy.permits(ip("::1")));
    }

    #[test]
    fn allow_private_networks_admits_everything() {
        let policy = AddressPolicy {
            allow_private: true,
            allowed: vec![],
        };
        assert!(policy.permits(ip("10.0.0.1")));
        assert!(policy.permits(ip("fd00::1")));
    }
}
