//! Egress to the outside for workloads, when the provider allows it (`[network] egress =
//! "on"`); nothing else of the network.
//!
//! For each workload [`Egress::attach`] makes a network namespace (held as a bind mount of
//! its nsfs file under the egress directory, made with `unshare --net=FILE`) before the
//! container starts; runc joins it through the spec's network namespace `path`. The
//! namespace belongs to the host's user namespace, so the workload (root only of its own
//! user namespace) has no `CAP_NET_ADMIN` over it: it cannot change its address, routes or
//! firewall. A veth pair joins it to the host: the host end `unetv<10 hex>` (its alias
//! names the miner that owns it), the workload's end `eth0`, a /30 per workload out of the
//! provider's private subnet (default [`DEFAULT_SUBNET`]), default route via the host end.
//! IPv4 only: IPv6 is disabled in the namespace and on the host end, and the firewall drops
//! any IPv6 from a workload.
//!
//! One nftables table, [`TABLE`] (`inet`), owned by the miner and replaced atomically by
//! [`Egress::install`], with [`ruleset`]:
//! - input: anything arriving from `unetv*` is dropped: a workload reaches no address of the
//!   host itself (its LAN and public addresses where the node's API, P2P and the miner's job
//!   port may listen, and the veth's own host address);
//! - forward: to `unetv*` only established/related traffic (no inbound connections, no
//!   workload to workload); from `unetv*`: IPv6, a source outside the subnet, and every
//!   destination in [`BLOCKED`] (private, loopback, link-local with the cloud metadata
//!   address 169.254.169.254, CGNAT, multicast, reserved) are dropped, the rest accepted;
//! - postrouting: the subnet is masqueraded behind the host's outgoing address.
//!
//! [`Egress::install`] also sets `net.ipv4.ip_forward = 1` (host-wide). DNS: the workload's
//! `/etc/resolv.conf` is a read-only bind of a file naming the provider's resolvers
//! (default [`DEFAULT_DNS`], Cloudflare's and Quad9's public resolvers). Dropping the
//! [`Attached`] workload deletes its veth and unmounts its namespace; [`Egress::sweep`] removes
//! what a crashed miner left (its `unetv*` links by alias, its namespace files).
//!
//! Needs `ip` (iproute2), `nft` (nftables), `unshare` and `umount` (util-linux, mount).

mod config;
mod host;
mod rules;

pub use config::{is_blocked, EgressConfig, Subnet, BLOCKED, DEFAULT_DNS, DEFAULT_SUBNET};
pub use host::{find_program, host_links, missing_tools};
pub use rules::{check_routes, conflicting_routes, resolv_conf, ruleset};

use crate::spec::Bind;
use host::{host_ipv4_addresses, ip, remove_link, run, run_stdin, unmount_netns};
use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
};

/// The miner's nftables table (family `inet`).
pub const TABLE: &str = "unet_egress";
/// Host ends of the workloads' veth pairs are named `unetv` and 10 hex digits.
pub const HOST_IF_PREFIX: &str = "unetv";
/// The alias of a host end: this prefix, then the owner (see [`Egress::new`]).
const ALIAS_PREFIX: &str = "unet-egress:";

/// Egress for the workloads of one miner.
#[derive(Debug)]
pub struct Egress {
    cfg: EgressConfig,
    dir: PathBuf,
    owner: String,
    installed: Mutex<bool>,
    slots: Arc<Mutex<BTreeSet<u32>>>,
}

impl Egress {
    /// Egress with `cfg` (validated), keeping the workloads' namespace and resolv.conf
    /// files in `dir`; `owner` (`[A-Za-z0-9_-]`, at most 40 bytes) tags the host ends of
    /// its veth pairs so that [`Egress::sweep`] removes this miner's leftovers only.
    pub fn new(cfg: EgressConfig, dir: PathBuf, owner: &str) -> Result<Self, String> {
        cfg.validate()?;
        if owner.len() > 40 || !crate::runner::valid_id(owner) {
            return Err(format!("bad egress owner {owner:?}"));
        }
        Ok(Self {
            cfg,
            dir,
            owner: owner.to_string(),
            installed: Mutex::new(false),
            slots: Arc::new(Mutex::new(BTreeSet::new())),
        })
    }

    /// Its configuration.
    pub fn config(&self) -> &EgressConfig {
        &self.cfg
    }

    /// Sets `net.ipv4.ip_forward = 1` and (re)places the [`TABLE`] with [`ruleset`]; refuses
    /// a subnet that overlaps a route of the host (its LAN, a VPN, a Docker bridge), which
    /// would make workloads' addresses ambiguous, and a subnet other than the one of the
    /// table in place while another miner's workloads use it (the table is one per host:
    /// replacing it would cut their egress off).
    pub fn install(&self) -> Result<(), String> {
        check_routes(&self.cfg.subnet)?;
        let current = Command::new("nft")
            .args(["list", "table", "inet", TABLE])
            .output()
            .map_err(|e| host::not_installed("nft", e))?;
        let ours = format!("ip saddr != {} drop", self.cfg.subnet);
        if current.status.success() && !String::from_utf8_lossy(&current.stdout).contains(&ours) {
            let alias = format!("{ALIAS_PREFIX}{}", self.owner);
            let others: Vec<String> = host_links()
                .into_iter()
                .filter(|(n, a)| {
                    n.starts_with(HOST_IF_PREFIX)
                        && a.as_deref()
                            .is_some_and(|a| a.starts_with(ALIAS_PREFIX) && a != alias)
                })
                .map(|(n, _)| n)
                .collect();
            if !others.is_empty() {
                return Err(format!(
                    "another miner on this host runs egress workloads ({}) with a different \
                     subnet: miners sharing a host must use the same network.subnet",
                    others.join(", ")
                ));
            }
        }
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1\n")
            .map_err(|e| format!("net.ipv4.ip_forward = 1: {e}"))?;
        run_stdin(
            Command::new("nft").args(["-f", "-"]),
            &ruleset(&self.cfg.subnet),
            "nft",
        )?;
        if let Ok(mut done) = self.installed.lock() {
            *done = true;
        }
        Ok(())
    }

    /// Installs the table unless it is in place: not yet installed by this miner, or gone
    /// since (`nft flush ruleset`, a firewall service restarted). Returns whether it had to.
    /// Run before each workload starts and every minute by the miner, so a flushed firewall
    /// never lets a new workload out unfiltered and running ones for a minute at most.
    pub fn ensure_installed(&self) -> Result<bool, String> {
        let done = self.installed.lock().map(|d| *d).unwrap_or(false);
        let present = || {
            Command::new("nft")
                .args(["list", "table", "inet", TABLE])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if done && present() {
            Ok(false)
        } else {
            self.install().map(|()| true)
        }
    }

    /// The host end's name for container `id` (stable, 15 bytes: the kernel's limit).
    pub fn host_if(&self, id: &str) -> String {
        let h = <sha2::Sha256 as sha2::Digest>::digest(format!("{}/{id}", self.owner));
        format!("{HOST_IF_PREFIX}{}", &hex::encode(h)[..10])
    }

    /// Makes container `id`'s network namespace with its veth, addresses, default route and
    /// resolv.conf; installs the firewall first if this miner has not yet.
    pub fn attach(&self, id: &str) -> Result<Attached, String> {
        if !crate::runner::valid_id(id) {
            return Err(format!("bad container id {id:?}"));
        }
        self.ensure_installed()?;
        let slot = self.claim_slot()?;
        let a = Attached {
            netns: self.dir.join(format!("{id}.netns")),
            resolv_conf: self.dir.join(format!("{id}.resolv.conf")),
            host_if: self.host_if(id),
            gateway: self.cfg.subnet.slot(slot).0,
            address: self.cfg.subnet.slot(slot).1,
            slot,
            slots: self.slots.clone(),
        };
        // On error `a` is dropped, which removes whatever was made.
        self.build(&a)?;
        Ok(a)
    }

    fn build(&self, a: &Attached) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("egress dir {}: {e}", self.dir.display()))?;
        // The workload (an unprivileged host uid) reads resolv.conf through this directory.
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| format!("egress dir {}: {e}", self.dir.display()))?;
        // Leftovers of a crashed run with the same id go first.
        remove_link(&a.host_if);
        unmount_netns(&a.netns);
        std::fs::write(&a.netns, b"").map_err(|e| format!("{}: {e}", a.netns.display()))?;
        run(
            Command::new("unshare")
                .arg(format!("--net={}", a.netns.display()))
                .arg("true"),
            "unshare --net",
        )?;
        let ns =
            std::fs::File::open(&a.netns).map_err(|e| format!("{}: {e}", a.netns.display()))?;
        // `ip ... netns PID` names the namespace of this process's main thread: the miner's
        // (only short-lived helper threads ever join another one).
        let me = std::process::id().to_string();
        let prefix = "/30";
        let (host_if, gw, addr) = (a.host_if.clone(), a.gateway, a.address);
        // Inside the namespace: the veth (its peer moved to this process's namespace), IPv6
        // off, addresses and the default route.
        crate::netns::run_in(&ns, move || -> Result<(), String> {
            for knob in ["all", "default"] {
                match std::fs::write(
                    format!("/proc/sys/net/ipv6/conf/{knob}/disable_ipv6"),
                    "1\n",
                ) {
                    // A kernel without IPv6 (ipv6.disable=1) has no such file: nothing to do.
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(format!("disable IPv6 in the workload's namespace: {e}"))
                    }
                    _ => {}
                }
            }
            ip(&[
                "link", "add", "eth0", "type", "veth", "peer", "name", &host_if, "netns", &me,
            ])?;
            ip(&["link", "set", "lo", "up"])?;
            ip(&["addr", "add", &format!("{addr}{prefix}"), "dev", "eth0"])?;
            ip(&["link", "set", "eth0", "up"])?;
            ip(&["route", "add", "default", "via", &gw.to_string()])
        })??;
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", a.host_if),
            "1\n",
        );
        ip(&[
            "link",
            "set",
            &a.host_if,
            "alias",
            &format!("{ALIAS_PREFIX}{}", self.owner),
        ])?;
        ip(&["addr", "add", &format!("{gw}{prefix}"), "dev", &a.host_if])?;
        ip(&["link", "set", &a.host_if, "up"])?;
        std::fs::write(&a.resolv_conf, resolv_conf(&self.cfg.dns))
            .and_then(|()| {
                std::fs::set_permissions(&a.resolv_conf, std::fs::Permissions::from_mode(0o644))
            })
            .map_err(|e| format!("{}: {e}", a.resolv_conf.display()))
    }

    /// A free /30: not held by this miner and not on any host interface (another miner's).
    fn claim_slot(&self) -> Result<u32, String> {
        let on_host = host_ipv4_addresses();
        let mut held = self.slots.lock().map_err(|_| "egress slots poisoned")?;
        let n = self.cfg.subnet.slots();
        let free =
            (0..n).find(|s| !held.contains(s) && !on_host.contains(&self.cfg.subnet.slot(*s).0));
        let Some(s) = free else {
            return Err(format!(
                "no free workload network left in subnet {} ({n} in use)",
                self.cfg.subnet
            ));
        };
        held.insert(s);
        Ok(s)
    }

    /// Removes what a previous run of this miner left: its `unetv*` links (by alias) and
    /// the namespace and resolv.conf files in its directory. Returns what it removed.
    pub fn sweep(&self) -> Vec<String> {
        let mut removed = Vec::new();
        let alias = format!("{ALIAS_PREFIX}{}", self.owner);
        for (name, a) in host_links() {
            if name.starts_with(HOST_IF_PREFIX) && a.as_deref() == Some(alias.as_str()) {
                remove_link(&name);
                removed.push(name);
            }
        }
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".netns") {
                unmount_netns(&p);
                removed.push(name);
            } else if name.ends_with(".resolv.conf") {
                let _ = std::fs::remove_file(&p);
            }
        }
        removed
    }
}

/// A workload's network while it runs; dropping it removes the veth pair and namespace and
/// frees its addresses.
#[derive(Debug)]
pub struct Attached {
    netns: PathBuf,
    resolv_conf: PathBuf,
    host_if: String,
    gateway: Ipv4Addr,
    address: Ipv4Addr,
    slot: u32,
    slots: Arc<Mutex<BTreeSet<u32>>>,
}

impl Attached {
    /// The namespace file runc joins (the spec's network namespace `path`).
    pub fn netns(&self) -> &Path {
        &self.netns
    }

    /// The workload's address.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The host end's address (the workload's default route).
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The host end's interface name.
    pub fn host_if(&self) -> &str {
        &self.host_if
    }

    /// The read-only bind of the resolv.conf at `/etc/resolv.conf`.
    pub fn resolv_bind(&self) -> Bind {
        Bind {
            host: self.resolv_conf.clone(),
            container: "/etc/resolv.conf".into(),
            read_only: true,
        }
    }

    /// Applies it to `spec`: join the namespace, the resolv.conf bind. The bind needs a
    /// mount point in the (read-only, shared) root: an empty `/etc/resolv.conf` is created
    /// when the image has none; one that is not a regular file (a symlink: where it points
    /// is the image's choice) or an `/etc` that is not a directory is an error.
    pub fn apply(&self, spec: &mut crate::WorkloadSpec) -> Result<(), String> {
        resolv_mount_point(&spec.rootfs)?;
        spec.netns = Some(self.netns.clone());
        spec.binds.push(self.resolv_bind());
        Ok(())
    }
}

/// Makes sure `root/etc/resolv.conf` is a regular file, never following a link.
fn resolv_mount_point(root: &Path) -> Result<(), String> {
    let etc = root.join("etc");
    match std::fs::symlink_metadata(&etc) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err("the image's /etc is not a directory".into()),
        Err(_) => std::fs::create_dir(&etc).map_err(|e| format!("image /etc: {e}"))?,
    }
    let f = etc.join("resolv.conf");
    match std::fs::symlink_metadata(&f) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(
            "the image's /etc/resolv.conf is not a regular file (a link?): egress binds the \
             provider's resolvers there"
                .into(),
        ),
        // O_CREAT|O_EXCL: fails on anything there, a dangling link included.
        Err(_) => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&f)
            .map(drop)
            .map_err(|e| format!("image /etc/resolv.conf: {e}")),
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        remove_link(&self.host_if);
        unmount_netns(&self.netns);
        let _ = std::fs::remove_file(&self.resolv_conf);
        if let Ok(mut s) = self.slots.lock() {
            s.remove(&self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ends_fit_the_kernels_name_limit_and_differ_per_owner() {
        let a = Egress::new(EgressConfig::default(), "/x".into(), "a").unwrap();
        let b = Egress::new(EgressConfig::default(), "/x".into(), "b").unwrap();
        assert_eq!(a.host_if("unet-job-1").len(), 15);
        assert!(a.host_if("unet-job-1").starts_with("unetv"));
        assert_ne!(a.host_if("unet-job-1"), a.host_if("unet-job-2"));
        assert_ne!(a.host_if("unet-job-1"), b.host_if("unet-job-1"));
        assert!(Egress::new(EgressConfig::default(), "/x".into(), "a/b").is_err());
        assert!(a.attach("../x").is_err());
    }

    /// The spec of an egress workload joins the prepared namespace by path, binds the
    /// resolv.conf read-only and mounts no sysfs; hostile roots are refused.
    #[test]
    fn the_spec_joins_the_namespace_and_binds_resolv_conf_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let a = Attached {
            netns: dir.path().join("w.netns"),
            resolv_conf: dir.path().join("w.resolv.conf"),
            host_if: "unetvunittest0".into(),
            gateway: Ipv4Addr::new(10, 213, 0, 1),
            address: Ipv4Addr::new(10, 213, 0, 2),
            slot: 0,
            slots: Arc::default(),
        };
        let mut spec = crate::WorkloadSpec {
            rootfs: root.clone(),
            args: vec!["/bin/sh".into()],
            env: vec![],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            hostname: "job".into(),
            resources: crate::Resources::default(),
            ids: crate::IdRange::default(),
            binds: vec![],
            cgroup: "/unet/x".into(),
            devices: vec![],
            netns: None,
        };
        a.apply(&mut spec).unwrap();
        // The mount point exists now (an empty regular file in the image's /etc).
        assert_eq!(std::fs::read(root.join("etc/resolv.conf")).unwrap(), b"");
        let v = serde_json::to_value(spec.build().unwrap()).unwrap();
        let net: Vec<&serde_json::Value> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == "network")
            .collect();
        assert_eq!(net.len(), 1);
        assert_eq!(
            net[0]["path"],
            dir.path().join("w.netns").display().to_string()
        );
        let mounts = v["mounts"].as_array().unwrap();
        let resolv: Vec<_> = mounts
            .iter()
            .filter(|m| m["destination"] == "/etc/resolv.conf")
            .collect();
        assert_eq!(resolv.len(), 1);
        assert_eq!(
            resolv[0]["source"],
            dir.path().join("w.resolv.conf").display().to_string()
        );
        assert!(resolv[0]["options"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("ro")));
        assert!(mounts.iter().all(|m| m["destination"] != "/sys"));
        // Without egress: a new namespace (no path) and sysfs as before.
        spec.netns = None;
        let v = serde_json::to_value(spec.build().unwrap()).unwrap();
        assert!(v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/sys"));
        // An image whose resolv.conf is a link (to the host's, say) or whose /etc is a link.
        std::fs::remove_file(root.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("etc/resolv.conf")).unwrap();
        let e = a.apply(&mut spec).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::remove_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let e = a.apply(&mut spec).unwrap_err();
        assert!(e.contains("/etc is not a directory"), "{e}");
    }
}
