//! What the provider configures: the workloads' subnet and resolvers, and the ranges a
//! workload never reaches.

use std::net::Ipv4Addr;

/// The workloads' subnet unless the provider names another.
pub const DEFAULT_SUBNET: &str = "10.213.0.0/16";
/// The workloads' resolvers unless the provider names others: Cloudflare and Quad9.
pub const DEFAULT_DNS: [Ipv4Addr; 2] = [Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(9, 9, 9, 9)];

/// Destinations a workload never reaches: RFC 1918 private, loopback, link-local (cloud
/// metadata), CGNAT, "this network", IETF protocol assignments, benchmarking, multicast and
/// the reserved 240/4 with broadcast.
pub const BLOCKED: [&str; 11] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// An IPv4 network, `a.b.c.d/n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    /// First address (host bits zero).
    pub base: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/n` with host bits zero.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IPv4 network a.b.c.d/n");
        let (a, p) = s.trim().split_once('/').ok_or_else(bad)?;
        let base: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let n = Self { base, prefix };
        if u32::from(base) & !n.mask() != 0 {
            return Err(format!(
                "{s:?} has host bits set (the network is {}/{prefix})",
                Ipv4Addr::from(u32::from(base) & n.mask())
            ));
        }
        Ok(n)
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// Whether `a` is in this network.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.base)
    }

    /// Whether all of `self` lies in `outer`.
    pub fn within(&self, outer: &Subnet) -> bool {
        self.prefix >= outer.prefix && outer.contains(self.base)
    }

    /// How many /30 workload networks it holds.
    pub fn slots(&self) -> u32 {
        if self.prefix > 30 {
            0
        } else {
            1u32.checked_shl(30 - u32::from(self.prefix))
                .unwrap_or(u32::MAX)
        }
    }

    /// Slot `n`'s host-end (gateway) and workload addresses.
    pub fn slot(&self, n: u32) -> (Ipv4Addr, Ipv4Addr) {
        let net = u32::from(self.base).wrapping_add(n.wrapping_mul(4));
        (Ipv4Addr::from(net + 1), Ipv4Addr::from(net + 2))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Whether `a` is in one of the [`BLOCKED`] ranges.
pub fn is_blocked(a: Ipv4Addr) -> bool {
    BLOCKED
        .iter()
        .filter_map(|s| Subnet::parse(s).ok())
        .any(|n| n.contains(a))
}

/// What the provider configures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressConfig {
    /// The workloads' addresses: a /30 each, inside RFC 1918 space.
    pub subnet: Subnet,
    /// Resolvers written to the workloads' `/etc/resolv.conf` (public addresses).
    pub dns: Vec<Ipv4Addr>,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            subnet: Subnet {
                base: Ipv4Addr::new(10, 213, 0, 0),
                prefix: 16,
            },
            dns: DEFAULT_DNS.to_vec(),
        }
    }
}

impl EgressConfig {
    /// The subnet is private and holds at least four workloads; one to three resolvers,
    /// each reachable from a workload (not in [`BLOCKED`]).
    pub fn validate(&self) -> Result<(), String> {
        let private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
            .map(|s| Subnet::parse(s).expect("constant network"));
        if !private.iter().any(|p| self.subnet.within(p)) {
            return Err(format!(
                "subnet {} is not private: it must lie in 10.0.0.0/8, 172.16.0.0/12 or \
                 192.168.0.0/16",
                self.subnet
            ));
        }
        if self.subnet.slots() < 4 {
            return Err(format!(
                "subnet {} is too small: each workload takes a /30, at least a /28 is needed",
                self.subnet
            ));
        }
        if self.dns.is_empty() || self.dns.len() > 3 {
            return Err("dns must name one to three resolvers".into());
        }
        if let Some(a) = self.dns.iter().find(|a| is_blocked(**a)) {
            return Err(format!(
                "dns resolver {a} is in a range workloads cannot reach (private, loopback, \
                 link-local, ...): name public resolvers"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_bad_ones_are_refused() {
        let s = Subnet::parse("10.213.0.0/16").unwrap();
        assert_eq!(s.slots(), 16_384);
        assert_eq!(
            s.slot(1),
            (Ipv4Addr::new(10, 213, 0, 5), Ipv4Addr::new(10, 213, 0, 6))
        );
        assert!(s.contains(Ipv4Addr::new(10, 213, 255, 254)));
        assert!(!s.contains(Ipv4Addr::new(10, 214, 0, 1)));
        for (bad, want) in [
            ("10.213.0.0", "not an IPv4 network"),
            ("10.213.0.0/33", "not an IPv4 network"),
            ("10.213.0.1/16", "host bits set"),
            ("ten/8", "not an IPv4 network"),
        ] {
            let e = Subnet::parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let cfg = |s: &str, dns: Vec<Ipv4Addr>| EgressConfig {
            subnet: Subnet::parse(s).unwrap(),
            dns,
        };
        let one = DEFAULT_DNS.to_vec();
        assert!(EgressConfig::default().validate().is_ok());
        assert!(cfg("192.168.7.0/28", one.clone()).validate().is_ok());
        for (c, want) in [
            (cfg("192.168.7.0/29", one.clone()), "too small"),
            (cfg("8.8.0.0/16", one.clone()), "not private"),
            (cfg("172.0.0.0/8", one.clone()), "not private"),
            (cfg("10.0.0.0/16", vec![]), "one to three"),
            (
                cfg("10.0.0.0/16", vec![Ipv4Addr::new(127, 0, 0, 53)]),
                "cannot reach",
            ),
            (
                cfg("10.0.0.0/16", vec![Ipv4Addr::new(169, 254, 169, 254)]),
                "cannot reach",
            ),
        ] {
            let e = c.validate().unwrap_err();
            assert!(e.contains(want), "{c:?}: {e}");
        }
    }

    #[test]
    fn blocked_ranges_cover_the_host_side_of_the_world() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
        ] {
            assert!(is_blocked(a.parse().unwrap()), "{a}");
        }
        for a in ["1.1.1.1", "203.0.113.1", "8.8.8.8", "172.32.0.1"] {
            assert!(!is_blocked(a.parse().unwrap()), "{a}");
        }
    }
}
