//! The miner's nftables table, the workloads' resolv.conf, and the host routes a subnet
//! must not overlap.

use super::{host::not_installed, Subnet, BLOCKED, HOST_IF_PREFIX, TABLE};
use std::{net::Ipv4Addr, process::Command};

/// The nftables script that replaces [`TABLE`] atomically (`nft -f -`).
pub fn ruleset(subnet: &Subnet) -> String {
    let p = HOST_IF_PREFIX;
    format!(
        "table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n\
         \tset blocked {{\n\
         \t\ttype ipv4_addr; flags interval;\n\
         \t\telements = {{ {blocked} }}\n\
         \t}}\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter - 10; policy accept;\n\
         \t\tiifname \"{p}*\" drop\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter - 10; policy accept;\n\
         \t\toifname \"{p}*\" ct state established,related accept\n\
         \t\toifname \"{p}*\" drop\n\
         \t\tiifname \"{p}*\" meta nfproto ipv6 drop\n\
         \t\tiifname \"{p}*\" ip saddr != {subnet} drop\n\
         \t\tiifname \"{p}*\" ip daddr @blocked drop\n\
         \t}}\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {subnet} oifname != \"{p}*\" masquerade\n\
         \t}}\n\
         }}\n",
        blocked = BLOCKED.join(", "),
    )
}

/// The workload's `/etc/resolv.conf`.
pub fn resolv_conf(dns: &[Ipv4Addr]) -> String {
    let mut s = String::from("# written by the UtilityNet miner: the provider's resolvers\n");
    for a in dns {
        s.push_str(&format!("nameserver {a}\n"));
    }
    s.push_str("options timeout:2 attempts:2\n");
    s
}

/// Refuses `subnet` when it overlaps a route of this host (other than the workloads' own).
pub fn check_routes(subnet: &Subnet) -> Result<(), String> {
    let routes = Command::new("ip")
        .args(["-j", "-4", "route", "show"])
        .output()
        .map_err(|e| not_installed("ip", e))?;
    let clash = conflicting_routes(&routes.stdout, subnet);
    if clash.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the egress subnet {subnet} overlaps the host's route(s) {}: choose another \
             network.subnet",
            clash.join(", ")
        ))
    }
}

/// The routes in `ip -j -4 route show` output that overlap `subnet`, other than the
/// workloads' own (`unetv*`), as `DST dev DEV`.
pub fn conflicting_routes(json: &[u8], subnet: &Subnet) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let dst = r["dst"].as_str()?;
            let dev = r["dev"].as_str().unwrap_or("");
            if dev.starts_with(HOST_IF_PREFIX) || dst == "default" {
                return None;
            }
            let net = if dst.contains('/') {
                Subnet::parse(dst).ok()?
            } else {
                Subnet {
                    base: dst.parse().ok()?,
                    prefix: 32,
                }
            };
            (net.within(subnet) || subnet.within(&net)).then(|| format!("{dst} dev {dev}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::DEFAULT_DNS;

    #[test]
    fn the_ruleset_names_every_hook_and_range() {
        let r = ruleset(&Subnet::parse("10.213.0.0/16").unwrap());
        assert!(r.starts_with("table inet unet_egress\ndelete table inet unet_egress\n"));
        for want in [
            "hook input",
            "iifname \"unetv*\" drop",
            "hook forward",
            "oifname \"unetv*\" ct state established,related accept",
            "oifname \"unetv*\" drop",
            "meta nfproto ipv6 drop",
            "ip saddr != 10.213.0.0/16 drop",
            "ip daddr @blocked drop",
            "169.254.0.0/16",
            "hook postrouting",
            "ip saddr 10.213.0.0/16 oifname != \"unetv*\" masquerade",
        ] {
            assert!(r.contains(want), "{want}: {r}");
        }
        assert_eq!(
            resolv_conf(&DEFAULT_DNS),
            "# written by the UtilityNet miner: the provider's resolvers\n\
             nameserver 1.1.1.1\nnameserver 9.9.9.9\noptions timeout:2 attempts:2\n"
        );
    }

    #[test]
    fn a_subnet_overlapping_a_host_route_is_found() {
        let routes = br#"[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},
            {"dst":"192.0.2.0/24","dev":"eth0"},{"dst":"10.213.0.4/30","dev":"unetv0123456789"},
            {"dst":"10.0.0.0/8","dev":"wg0"},{"dst":"10.213.7.9","dev":"tun0"},
            {"dst":"10.214.0.0/16","dev":"br0"}]"#;
        let s = Subnet::parse("10.213.0.0/16").unwrap();
        assert_eq!(
            conflicting_routes(routes, &s),
            ["10.0.0.0/8 dev wg0", "10.213.7.9 dev tun0"]
        );
        let other = Subnet::parse("172.20.0.0/16").unwrap();
        assert!(conflicting_routes(routes, &other).is_empty());
        assert!(conflicting_routes(b"not json", &s).is_empty());
    }
}
