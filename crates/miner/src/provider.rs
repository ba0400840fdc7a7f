//! The provider's configuration of renters' workloads: `HOME/provider.toml` (or
//! `unet miner run --provider-config FILE`), validated on load.
//!
//! ```toml
//! [runtime]
//! runc = "/usr/sbin/runc"        # default: UNET_RUNC, else runc on PATH
//! onnx_runner = "/usr/local/bin/unet-onnx-run"  # default: beside unet, else on PATH
//!
//! [ids]
//! uid_base = 3000000000          # lease n runs as host uids uid_base + (n % 16384) * 65536 ..
//!
//! [resources]                    # per chip: each job or service of a lease
//! memory_mib = 4096              # memory (swap included) of one service; most one job may ask
//! pids = 256                     # processes and threads
//! cpu_millis = 2000              # CPU, thousandths of a core
//! volume_mib = 1024              # each lease's volume (its own filesystem: a disk quota)
//! volume_grace_blocks = 36000    # kept this long after the lease ended, then deleted
//!
//! [network]                      # a policy for every job and service of this miner
//! egress = "off"                 # "on": workloads reach the Internet, never the host, private
//!                                # ranges (LAN, cloud metadata) or each other (needs nftables)
//! subnet = "10.213.0.0/16"       # private subnet, a /30 per workload (at least a /28)
//! dns = ["1.1.1.1", "9.9.9.9"]   # public resolvers for the workloads' /etc/resolv.conf
//!
//! [services]
//! ports = "28600-28699"          # host ports forwarded to renters' services
//! public_host = "gpu1.example.com"  # default: the host the renter's request named
//! ```
//!
//! Every key is optional; an unknown key, a value out of range, a subnet that is not private,
//! smaller than a /28 or (with egress on) overlapping one of the host's routes, a resolver
//! workloads cannot reach, or `egress = "on"` on a host without `nft` or `ip` is refused with
//! a message naming the key. With egress on the miner
//! sets `net.ipv4.ip_forward = 1` and owns the nftables table `inet unet_egress`
//! ([`unet_sandbox::egress`], docs/jobs.md).

use crate::jobs::server::JobsConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `path`, named by config key `key`, is an absolute path to an executable file; `install`
/// says how to get it.
fn executable(key: &str, path: &Path, install: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if !path.is_absolute() {
        return Err(format!(
            "{key} = {:?} must be an absolute path",
            path.display()
        ));
    }
    let m = std::fs::metadata(path)
        .map_err(|e| format!("{key} = {:?}: {e} ({install})", path.display()))?;
    if !m.is_file() || m.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "{key} = {:?} is not an executable file",
            path.display()
        ));
    }
    Ok(())
}

/// Lease slots of the uid ranges (`lease % SLOTS`), 65536 ids each.
const SLOTS: u64 = 16_384;

/// `[runtime]`
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// The runc binary (absolute path).
    pub runc: Option<PathBuf>,
    /// The ONNX runner started inside the sandbox for inference jobs (absolute path).
    pub onnx_runner: Option<PathBuf>,
}

/// `[ids]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct IdsSection {
    /// First host uid and gid of the workloads' ranges.
    pub uid_base: u32,
}

impl Default for IdsSection {
    fn default() -> Self {
        Self {
            uid_base: 3_000_000_000,
        }
    }
}

/// `[resources]`: what one chip's workload gets.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ResourcesSection {
    /// Memory of one service, and the most one job may ask, MiB.
    pub memory_mib: u64,
    /// Processes and threads of one workload.
    pub pids: u64,
    /// CPU of one workload, thousandths of a core.
    pub cpu_millis: u64,
    /// Size of each lease's volume (its own filesystem), MiB.
    pub volume_mib: u64,
    /// Blocks a lease's volume is kept after the lease ended, then deleted.
    pub volume_grace_blocks: u64,
}

impl Default for ResourcesSection {
    fn default() -> Self {
        Self {
            memory_mib: 1024,
            pids: 256,
            cpu_millis: 1000,
            volume_mib: 1024,
            volume_grace_blocks: 36_000,
        }
    }
}

/// `[network]`: egress is a provider policy, applied to every workload (job and service)
/// of this miner.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// Egress of workloads to the outside: `off` (loopback only) or `on`
    /// ([`unet_sandbox::egress`]).
    pub egress: String,
    /// The workloads' private IPv4 subnet (a /30 each), with egress on.
    pub subnet: String,
    /// Resolvers in the workloads' `/etc/resolv.conf` (public IPv4), with egress on.
    pub dns: Vec<String>,
}

impl Default for NetworkSection {
    fn default() -> Self {
        Self {
            egress: "off".into(),
            subnet: unet_sandbox::egress::DEFAULT_SUBNET.into(),
            dns: unet_sandbox::egress::DEFAULT_DNS
                .iter()
                .map(|a| a.to_string())
                .collect(),
        }
    }
}

impl NetworkSection {
    /// The egress configuration when egress is on, None when off.
    pub fn egress(&self) -> Result<Option<unet_sandbox::egress::EgressConfig>, String> {
        let on = match self.egress.as_str() {
            "off" => false,
            "on" => true,
            other => {
                return Err(format!(
                    "network.egress = {other:?} must be \"on\" or \"off\""
                ))
            }
        };
        let subnet = unet_sandbox::egress::Subnet::parse(&self.subnet)
            .map_err(|e| format!("network.subnet = {e}"))?;
        let dns = self
            .dns
            .iter()
            .map(|d| {
                d.parse()
                    .map_err(|_| format!("network.dns: {d:?} is not an IPv4 address"))
            })
            .collect::<Result<Vec<std::net::Ipv4Addr>, String>>()?;
        let cfg = unet_sandbox::egress::EgressConfig { subnet, dns };
        cfg.validate().map_err(|e| format!("network: {e}"))?;
        if !on {
            return Ok(None);
        }
        if let Some(missing) = unet_sandbox::egress::missing_tools().first() {
            return Err(format!("network.egress = \"on\" needs {missing}"));
        }
        unet_sandbox::egress::check_routes(&subnet)?;
        Ok(Some(cfg))
    }
}

/// `[services]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesSection {
    /// Host ports forwarded to services, `FIRST-LAST`.
    pub ports: String,
    /// The host name renters reach those ports at.
    pub public_host: Option<String>,
}

impl Default for ServicesSection {
    fn default() -> Self {
        Self {
            ports: "28600-28699".into(),
            public_host: None,
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// `[runtime]`
    pub runtime: RuntimeSection,
    /// `[ids]`
    pub ids: IdsSection,
    /// `[resources]`
    pub resources: ResourcesSection,
    /// `[network]`
    pub network: NetworkSection,
    /// `[services]`
    pub services: ServicesSection,
}

/// File name of the provider configuration in a miner home.
pub const PROVIDER_CONFIG: &str = "provider.toml";

fn in_range(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), String> {
    if v < lo || v > hi {
        return Err(format!("{key} = {v} must be within {lo}..={hi}"));
    }
    Ok(())
}

impl ProviderConfig {
    /// Parses and validates `text` (the contents of `path`, named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, String> {
        let cfg: Self = toml::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?;
        cfg.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(cfg)
    }

    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text, path)
    }

    /// `path` when given, else `home/provider.toml` when it exists, else the defaults;
    /// returns the file read, if any.
    pub fn for_home(home: &Path, path: Option<&Path>) -> Result<(Self, Option<PathBuf>), String> {
        let p = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let p = home.join(PROVIDER_CONFIG);
                if !p.exists() {
                    return Ok((Self::default(), None));
                }
                p
            }
        };
        Ok((Self::load(&p)?, Some(p)))
    }

    /// The service port range.
    pub fn ports(&self) -> Result<(u16, u16), String> {
        let bad = || {
            format!(
                "services.ports = {:?} must be FIRST-LAST with 1024 <= FIRST <= LAST <= 65535",
                self.services.ports
            )
        };
        let (a, b) = self.services.ports.split_once('-').ok_or_else(bad)?;
        let a: u16 = a.trim().parse().map_err(|_| bad())?;
        let b: u16 = b.trim().parse().map_err(|_| bad())?;
        if a < 1024 || a > b {
            return Err(bad());
        }
        Ok((a, b))
    }

    /// Every rule; the first broken one is the error.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(runc) = &self.runtime.runc {
            executable("runtime.runc", runc, "apt-get install runc")?;
        }
        if let Some(runner) = &self.runtime.onnx_runner {
            executable(
                "runtime.onnx_runner",
                runner,
                "cargo build --release builds unet-onnx-run beside unet",
            )?;
        }
        let base = u64::from(self.ids.uid_base);
        let top = base + SLOTS * 65_536;
        if base < 100_000 || top > u64::from(u32::MAX) {
            return Err(format!(
                "ids.uid_base = {base} must be within 100000..={} (above login users; \
                 {SLOTS} ranges of 65536 ids must fit below 2^32)",
                u64::from(u32::MAX) - SLOTS * 65_536
            ));
        }
        let r = &self.resources;
        in_range("resources.memory_mib", r.memory_mib, 16, 1 << 24)?;
        in_range("resources.pids", r.pids, 8, 1 << 22)?;
        in_range("resources.cpu_millis", r.cpu_millis, 10, 1 << 20)?;
        in_range("resources.volume_mib", r.volume_mib, 8, 1 << 20)?;
        in_range(
            "resources.volume_grace_blocks",
            r.volume_grace_blocks,
            0,
            1 << 32,
        )?;
        self.network.egress()?;
        self.ports()?;
        if let Some(h) = &self.services.public_host {
            let ok = !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
            if !ok {
                return Err(format!(
                    "services.public_host = {h:?} must be a host name or address"
                ));
            }
        }
        Ok(())
    }

    /// Applies it to the job server's configuration.
    pub fn apply(&self, jc: &mut JobsConfig) -> Result<(), String> {
        self.validate()?;
        jc.sandbox.runc = self.runtime.runc.clone();
        jc.sandbox.onnx_runner = self.runtime.onnx_runner.clone();
        jc.sandbox.uid_base = self.ids.uid_base;
        jc.sandbox.pids = self.resources.pids;
        jc.sandbox.cpu_millis = self.resources.cpu_millis;
        jc.sandbox.volume_mib = self.resources.volume_mib;
        jc.sandbox.volume_grace_blocks = self.resources.volume_grace_blocks;
        jc.sandbox.service_memory_mib = self.resources.memory_mib;
        jc.max_exec.memory_mib = self.resources.memory_mib;
        jc.services.ports = self.ports()?;
        jc.services.public_host = self.services.public_host.clone();
        jc.sandbox.egress = match self.network.egress()? {
            Some(cfg) => Some(jc.sandbox.egress_for(cfg)?),
            None => None,
        };
        Ok(())
    }

    /// One line for `unet miner doctor`.
    pub fn summary(&self) -> String {
        let r = &self.resources;
        format!(
            "runc {}, uids from {}, per chip {} MiB / {} pids / {} millicores, egress {}{}, \
             service ports {}",
            self.runtime
                .runc
                .as_ref()
                .map_or("from PATH".into(), |p| p.display().to_string()),
            self.ids.uid_base,
            r.memory_mib,
            r.pids,
            r.cpu_millis,
            self.network.egress,
            if self.network.egress == "on" {
                format!(
                    " ({}, dns {})",
                    self.network.subnet,
                    self.network.dns.join(" ")
                )
            } else {
                String::new()
            },
            self.services.ports
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProviderConfig, String> {
        ProviderConfig::parse(text, Path::new("provider.toml"))
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, ProviderConfig::default());
        assert_eq!(c.ports().unwrap(), (28600, 28699));
    }

    #[test]
    fn bad_configs_are_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("not-runc");
        std::fs::write(&plain, "x").unwrap();
        let not_exec = format!("[runtime]\nrunc = {:?}", plain.display().to_string());
        for (text, want) in [
            ("[runtime]\nrunc = \"runc\"", "must be an absolute path"),
            (
                "[runtime]\nrunc = \"/nonexistent/runc\"",
                "apt-get install runc",
            ),
            (not_exec.as_str(), "not an executable file"),
            (
                "[runtime]\nonnx_runner = \"/nonexistent/unet-onnx-run\"",
                "runtime.onnx_runner = \"/nonexistent/unet-onnx-run\": No such file",
            ),
            (
                "[ids]\nuid_base = 1000",
                "ids.uid_base = 1000 must be within",
            ),
            ("[ids]\nuid_base = 4000000000", "must fit below 2^32"),
            (
                "[resources]\nmemory_mib = 0",
                "resources.memory_mib = 0 must be within",
            ),
            ("[resources]\npids = 1", "resources.pids = 1"),
            ("[resources]\nvolume_mib = 1", "resources.volume_mib = 1"),
            ("[network]\negress = \"maybe\"", "must be \"on\" or \"off\""),
            ("[network]\nsubnet = \"10.213.0.0\"", "network.subnet = "),
            ("[network]\nsubnet = \"10.213.0.1/16\"", "host bits set"),
            ("[network]\nsubnet = \"8.8.8.0/24\"", "not private"),
            ("[network]\nsubnet = \"10.213.0.0/30\"", "too small"),
            ("[network]\ndns = [\"one\"]", "not an IPv4 address"),
            ("[network]\ndns = [\"127.0.0.53\"]", "cannot reach"),
            ("[network]\ndns = []", "one to three"),
            (
                "[services]\nports = \"80-90\"",
                "services.ports = \"80-90\"",
            ),
            ("[services]\nports = \"30000-29000\"", "FIRST <= LAST"),
            ("[services]\nports = \"x\"", "FIRST-LAST"),
            ("[services]\npublic_host = \"a b\"", "public_host"),
            ("[resources]\nmemory = 5", "unknown field `memory`"),
            ("[resources]\nmemory_mib = \"lots\"", "invalid type"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with("provider.toml: "), "{e}");
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    /// The configured memory, pids and CPU are what a service's runtime spec carries, and
    /// the most a job may ask.
    #[test]
    fn the_configured_limits_reach_the_runtime_spec() {
        let c = parse(
            "[resources]\nmemory_mib = 300\npids = 64\ncpu_millis = 1500\n\
             [ids]\nuid_base = 2000000000\n[services]\nports = \"23100-23109\"",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut jc = JobsConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("jobs"));
        jc.sandbox.dir = dir.path().join("sandbox");
        c.apply(&mut jc).unwrap();
        assert_eq!(jc.max_exec.memory_mib, 300);
        assert_eq!(jc.services.ports, (23100, 23109));
        let w = crate::jobs::exec::Workload {
            container: "unet-svc-5".into(),
            hostname: "service",
            lease: 5,
            argv: &["/bin/true".to_string()],
            env: &[],
            image: None,
            program: None,
            memory_bytes: jc.sandbox.service_memory_mib << 20,
            file_bytes: 1 << 20,
            gpu: None,
        };
        let p = match crate::jobs::exec::prepare(&jc.sandbox, &w) {
            Ok(p) => p,
            // Without runc or busybox (scripts/ci-deps installs them) the spec is not built.
            Err(e) => panic!("this test needs root, runc and busybox-static: {e}"),
        };
        let v = serde_json::to_value(p.spec.build().unwrap()).unwrap();
        let res = &v["linux"]["resources"];
        assert_eq!(res["memory"]["limit"], 300i64 << 20);
        assert_eq!(res["pids"]["limit"], 64);
        assert_eq!(res["cpu"]["quota"], 150_000);
        assert_eq!(
            v["linux"]["uidMappings"][0]["hostID"],
            2_000_000_000u64 + 5 * 65_536
        );
    }
}
