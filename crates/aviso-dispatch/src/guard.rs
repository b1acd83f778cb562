//! The destination guard: refuses private, loopback, link-local, metadata and
//! other non-public addresses, after DNS resolution so a public name pointing
//! at an internal address cannot reach it.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether a destination address is refused unless private destinations are allowed.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4),
        IpAddr::V6(v6) => v6_forbidden(v6),
    }
}

fn v4_forbidden(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, includes the 169.254.169.254 metadata service
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || ip.is_documentation()
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18/15
        || ip.is_multicast()
        || a >= 240 // reserved 240/4 and the broadcast address
}

fn v6_forbidden(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return v4_forbidden(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
        || (seg[0] & 0xfe00) == 0xfc00 // unique-local fc00::/7, includes fd00:ec2::254 (metadata)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation 2001:db8::/32
        || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]) // discard-only 100::/64
}

/// The IPv4 address an IPv6 address carries, for the forms that route to it:
/// IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d` and 6to4 `2002:AABB:CCDD::`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let low = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    match seg {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_unspecified() && !ip.is_loopback() => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// Every address a name resolved to was refused by the guard.
#[derive(Debug, thiserror::Error)]
#[error("destination `{0}` resolves only to private or reserved addresses")]
pub(crate) struct BlockedDestination(pub String);

/// Resolves `host` and keeps the addresses the guard allows; fails when none is left.
pub(crate) async fn allowed_addrs(host: &str) -> Result<Vec<SocketAddr>, BoxError> {
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    if all.is_empty() {
        let err = std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses found");
        return Err(err.into());
    }
    let allowed: Vec<SocketAddr> = all.into_iter().filter(|a| !is_forbidden(a.ip())).collect();
    if allowed.is_empty() {
        return Err(BlockedDestination(host.to_owned()).into());
    }
    Ok(allowed)
}

/// Checks a name before a proxy resolves it (the proxy may resolve it again:
/// behind a proxy, the proxy's own egress rules are the last line).
pub(crate) async fn check_name(host: &str) -> Result<(), BoxError> {
    allowed_addrs(host).await.map(|_| ())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A resolver that drops refused addresses and fails when none is left.
/// `trusted` names the configured proxy, which may well be internal.
#[derive(Default)]
pub(crate) struct GuardedResolver {
    pub trusted: Option<String>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let trusted = self
            .trusted
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = if trusted {
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            } else {
                allowed_addrs(&host).await?
            };
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(s: &str) -> bool {
        is_forbidden(s.parse().unwrap())
    }

    #[test]
    fn refuses_internal_addresses() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            assert!(forbidden(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "193.0.0.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(!forbidden(ip), "{ip} should be allowed");
        }
    }

    #[tokio::test]
    async fn resolver_refuses_names_of_loopback_addresses() {
        let err = GuardedResolver::default()
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("blocked");
        assert!(err.downcast_ref::<BlockedDestination>().is_some(), "{err}");
    }

    #[tokio::test]
    async fn resolver_trusts_the_proxy_name_only() {
        let guard = GuardedResolver {
            trusted: Some("localhost".into()),
        };
        let addrs: Vec<SocketAddr> = guard
            .resolve("localhost".parse().unwrap())
            .await
            .expect("the proxy's own name resolves")
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
        let other = GuardedResolver {
            trusted: Some("proxy.internal".into()),
        };
        let err = other.resolve("localhost".parse().unwrap()).await.err();
        assert!(err.is_some_and(|e| e.downcast_ref::<BlockedDestination>().is_some()));
    }
}
