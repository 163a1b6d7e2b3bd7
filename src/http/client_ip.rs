//! Who the client is, behind load balancers: the address rate limits are keyed by.
//!
//! From a peer in `PUPMATCH_TRUSTED_PROXIES`, the client is the right-most `X-Forwarded-For`
//! address that is not itself a trusted proxy (each proxy appends the address it saw, so
//! everything left of that was written by the client and proves nothing). A hop may carry a
//! port (`198.51.100.10:4444`, `[2001:db8::1]:443`); one that cannot be read (`unknown`) ends
//! the walk, and the client is keyed by the proxy that wrote it. From any other peer
//! the header is ignored: it must never let a client pick its own rate-limit key. IPv6 clients
//! are keyed by their /64, which one subscriber usually holds whole.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client's address, as the rest of the request handling sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The rate-limit key: the address, or for IPv6 its /64 network.
    pub fn limit_key(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => ipnet::Ipv6Net::new(v6, 64)
                    .map(|n| n.trunc())
                    .map_or_else(|_| v6.to_string(), |n| n.to_string()),
            },
        }
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&ip))
}

/// One `X-Forwarded-For` hop: an address, `ip:port` or `[ipv6]:port` (some proxies append
/// the port they saw), or `None` when it is none of these (`unknown`, an obfuscated name).
fn hop_address(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok());
        return port_ok
            .then(|| ip.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6))
            .flatten();
    }
    let (ip, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client behind `peer` (the TCP peer), given the request headers.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> ClientIp {
    if trusted.is_empty() || !is_trusted(peer, trusted) {
        return ClientIp(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    // Right to left: the first address no trusted proxy vouches for is the client. A hop that
    // cannot be read ends the walk: everything left of it is unknown, so the client is keyed by
    // the proxy that wrote it (the last trusted address passed).
    let mut closest = peer;
    for hop in hops.iter().rev() {
        match hop_address(hop) {
            Some(ip) if is_trusted(ip, trusted) => closest = ip,
            Some(ip) => return ClientIp(ip),
            None => return ClientIp(closest),
        }
    }
    // Every hop is a proxy of ours: the left-most is the closest we know to the client.
    ClientIp(closest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().expect("header"));
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().expect("cidr")).collect()
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let peer: IpAddr = "203.0.113.9".parse().expect("ip");
        let got = client_ip(peer, &headers(&["1.2.3.4"]), &nets(&["10.0.0.0/8"]));
        assert_eq!(got.0, peer);
        let got = client_ip(peer, &headers(&["1.2.3.4"]), &[]);
        assert_eq!(got.0, peer);
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer: IpAddr = "10.0.0.2".parse().expect("ip");
        // The client wrote "6.6.6.6" itself; our proxies appended the rest.
        let h = headers(&["6.6.6.6, 198.51.100.7, 10.0.0.5"]);
        assert_eq!(client_ip(peer, &h, &trusted).0.to_string(), "198.51.100.7");
        // Several headers count as one list.
        let h = headers(&["6.6.6.6", "198.51.100.7"]);
        assert_eq!(client_ip(peer, &h, &trusted).0.to_string(), "198.51.100.7");
        // Nothing usable means the peer.
        let h = headers(&["not an ip"]);
        assert_eq!(client_ip(peer, &h, &trusted).0, peer);
        assert_eq!(client_ip(peer, &headers(&[]), &trusted).0, peer);
        assert_eq!(client_ip(peer, &headers(&[" , "]), &trusted).0, peer);
    }

    #[test]
    fn hops_with_ports_are_read() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer: IpAddr = "10.0.0.2".parse().expect("ip");
        for (xff, client) in [
            ("6.6.6.6, 198.51.100.10:4444", "198.51.100.10"),
            ("6.6.6.6, [2001:db8::1]:443", "2001:db8::1"),
            ("6.6.6.6, [2001:db8::1]", "2001:db8::1"),
            ("6.6.6.6, 198.51.100.10:4444, 10.0.0.5:80", "198.51.100.10"),
            ("6.6.6.6, 2001:db8::1", "2001:db8::1"),
        ] {
            assert_eq!(
                client_ip(peer, &headers(&[xff]), &trusted).0.to_string(),
                client,
                "{xff}"
            );
        }
    }

    #[test]
    fn an_unreadable_hop_is_the_client_keyed_by_the_proxy_that_wrote_it() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer: IpAddr = "10.0.0.2".parse().expect("ip");
        for (xff, client) in [
            ("6.6.6.6, unknown", "10.0.0.2"),
            ("6.6.6.6, unknown, 10.0.0.5", "10.0.0.5"),
            ("6.6.6.6, _hidden", "10.0.0.2"),
            ("6.6.6.6, 198.51.100.10:99999", "10.0.0.2"),
            ("6.6.6.6, [2001:db8::1]:x", "10.0.0.2"),
            ("6.6.6.6, [not-v6]:443", "10.0.0.2"),
            ("6.6.6.6, 198.51.100.10:", "10.0.0.2"),
        ] {
            assert_eq!(
                client_ip(peer, &headers(&[xff]), &trusted).0.to_string(),
                client,
                "{xff}"
            );
        }
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a = ClientIp("2001:db8:1:2:aaaa::1".parse().expect("ip"));
        let b = ClientIp("2001:db8:1:2:bbbb::9".parse().expect("ip"));
        let c = ClientIp("2001:db8:1:3::1".parse().expect("ip"));
        assert_eq!(a.limit_key(), "2001:db8:1:2::/64");
        assert_eq!(a.limit_key(), b.limit_key());
        assert_ne!(a.limit_key(), c.limit_key());
        let mapped = ClientIp("::ffff:192.0.2.1".parse().expect("ip"));
        assert_eq!(mapped.limit_key(), "192.0.2.1");
    }
}
