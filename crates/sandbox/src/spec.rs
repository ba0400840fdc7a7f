//! The OCI runtime spec (`config.json`) of one workload, built with `oci-spec`.
//!
//! Starts from runc's defaults (the masked and read-only `/proc` and `/sys` paths, the
//! `/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, `/sys` mounts) and tightens them:
//! a user namespace mapped to an unprivileged host uid range, its own pid, mount, ipc, uts,
//! cgroup and network namespaces (the network namespace has only loopback, so nothing on the
//! host's 127.0.0.1 is reachable), a read-only root, no capabilities at all, no new
//! privileges, a seccomp deny list ([`crate::seccomp`]), cgroup limits on memory (swap
//! included), pids and CPU, and rlimits on file size and core dumps.

use crate::seccomp;
use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxIdMappingBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, UserBuilder,
};
use std::collections::HashSet;
use std::path::PathBuf;

/// Resource limits of one workload, enforced by the kernel (cgroups, tmpfs sizes, rlimits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    /// Memory of all the workload's processes together, bytes (swap included).
    pub memory_bytes: u64,
    /// Processes and threads at once.
    pub pids: u64,
    /// CPU, in thousandths of a core (1000 = one core).
    pub cpu_millis: u64,
    /// Size of the writable `/tmp` tmpfs and of the job's `/work` tmpfs, bytes each.
    pub tmpfs_bytes: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`), bytes.
    pub file_bytes: u64,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            memory_bytes: 1 << 30,
            pids: 256,
            cpu_millis: 1000,
            tmpfs_bytes: 64 << 20,
            file_bytes: 64 << 20,
        }
    }
}

/// Host uid/gid range a workload's ids map to: container id 0 is host id `host_base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    /// First host id of the range (container id 0 maps to it).
    pub host_base: u32,
    /// Number of ids mapped; container ids `0..size` are valid.
    pub size: u32,
}

impl Default for IdRange {
    fn default() -> Self {
        // Far above any login user; 65536 ids like a subuid range.
        Self {
            host_base: 3_000_000_000,
            size: 65_536,
        }
    }
}

/// A read-write or read-only directory of the host given to the workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// Path on the host.
    pub host: PathBuf,
    /// Where it appears in the container (absolute).
    pub container: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Everything that makes up one workload's spec.
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    /// The unpacked image (mounted read-only as `/`).
    pub rootfs: PathBuf,
    /// The command, argv (run directly, no shell).
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs.
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub cwd: String,
    /// User and group inside the container (0 = the mapped, unprivileged root).
    pub uid: u32,
    /// Group inside the container.
    pub gid: u32,
    /// The container's hostname (UTS namespace).
    pub hostname: String,
    /// Cgroup limits: memory, pids, CPU, tmpfs and file sizes.
    pub resources: Resources,
    /// The host ids the container's uids and gids map to.
    pub ids: IdRange,
    /// Extra bind mounts (the per-lease volume, ...).
    pub binds: Vec<Bind>,
    /// Cgroup path (`/unet/<id>`), under every v1 controller.
    pub cgroup: String,
    /// Device nodes given to the workload (the leased GPU, [`crate::gpu`]); each is also
    /// allowed in its devices cgroup. Nothing else of the host's `/dev`.
    pub devices: Vec<crate::gpu::DeviceNode>,
    /// A network namespace to join (egress on, [`crate::egress`]) instead of a new one with
    /// loopback only. The workload's user namespace does not own it, so the kernel refuses
    /// it a fresh sysfs: `/sys` is then not mounted at all.
    pub netns: Option<PathBuf>,
}

fn mount(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Result<Mount, String> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|e| e.to_string())
}

impl WorkloadSpec {
    /// The OCI runtime spec.
    pub fn build(&self) -> Result<Spec, String> {
        let e = |e: oci_spec::OciSpecError| e.to_string();
        let r = &self.resources;
        let mut spec = Spec::default();
        spec.set_hostname(Some(self.hostname.clone()));
        spec.set_root(Some(
            RootBuilder::default()
                .path(self.rootfs.clone())
                .readonly(true)
                .build()
                .map_err(e)?,
        ));
        let none: HashSet<oci_spec::runtime::Capability> = HashSet::new();
        let caps = LinuxCapabilitiesBuilder::default()
            .bounding(none.clone())
            .effective(none.clone())
            .inheritable(none.clone())
            .permitted(none.clone())
            .ambient(none)
            .build()
            .map_err(e)?;
        let rlimits = vec![
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitFsize)
                .hard(r.file_bytes)
                .soft(r.file_bytes)
                .build()
                .map_err(e)?,
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitCore)
                .hard(0u64)
                .soft(0u64)
                .build()
                .map_err(e)?,
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .hard(1024u64)
                .soft(1024u64)
                .build()
                .map_err(e)?,
        ];
        spec.set_process(Some(
            ProcessBuilder::default()
                .terminal(false)
                .user(
                    UserBuilder::default()
                        .uid(self.uid)
                        .gid(self.gid)
                        .build()
                        .map_err(e)?,
                )
                .args(self.args.clone())
                .env(self.env.clone())
                .cwd(self.cwd.clone())
                .capabilities(caps)
                .no_new_privileges(true)
                .rlimits(rlimits)
                .build()
                .map_err(e)?,
        ));
        // runc's default mounts, less the cgroup filesystem (the workload has no business
        // with it), plus the tmpfs and the binds.
        let mut mounts: Vec<Mount> = oci_spec::runtime::get_default_mounts()
            .into_iter()
            .filter(|m| m.destination() != &PathBuf::from("/sys/fs/cgroup"))
            .filter(|m| self.netns.is_none() || m.destination() != &PathBuf::from("/sys"))
            .collect();
        let tmp_size = format!("size={}", r.tmpfs_bytes);
        mounts.push(mount(
            "/tmp",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=1777", &tmp_size],
        )?);
        for b in &self.binds {
            let mut opts = vec!["rbind", "nosuid", "nodev"];
            if b.read_only {
                opts.push("ro");
            }
            mounts.push(
                MountBuilder::default()
                    .destination(b.container.clone())
                    .typ("bind")
                    .source(b.host.clone())
                    .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .build()
                    .map_err(e)?,
            );
        }
        spec.set_mounts(Some(mounts));

        let ns = |t| LinuxNamespaceBuilder::default().typ(t).build();
        let namespaces = vec![
            ns(LinuxNamespaceType::User).map_err(e)?,
            ns(LinuxNamespaceType::Pid).map_err(e)?,
            match &self.netns {
                None => ns(LinuxNamespaceType::Network).map_err(e)?,
                Some(path) => LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::Network)
                    .path(path.clone())
                    .build()
                    .map_err(e)?,
            },
            ns(LinuxNamespaceType::Ipc).map_err(e)?,
            ns(LinuxNamespaceType::Uts).map_err(e)?,
            ns(LinuxNamespaceType::Mount).map_err(e)?,
            ns(LinuxNamespaceType::Cgroup).map_err(e)?,
        ];
        let map = LinuxIdMappingBuilder::default()
            .host_id(self.ids.host_base)
            .container_id(0u32)
            .size(self.ids.size)
            .build()
            .map_err(e)?;
        let mem = i64::try_from(r.memory_bytes).map_err(|_| "memory limit too large")?;
        let period: u64 = 100_000;
        let quota = i64::try_from(r.cpu_millis.saturating_mul(period) / 1000)
            .map_err(|_| "cpu limit too large")?
            .max(1000);
        let resources = LinuxResourcesBuilder::default()
            // No device but the defaults runc always allows (null, zero, full, tty,
            // random, urandom, ptmx).
            .devices({
                let mut rules = vec![oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .map_err(e)?];
                for d in &self.devices {
                    rules.push(
                        oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
                            .allow(true)
                            .typ(oci_spec::runtime::LinuxDeviceType::C)
                            .major(d.major)
                            .minor(d.minor)
                            .access("rw")
                            .build()
                            .map_err(e)?,
                    );
                }
                rules
            })
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(mem)
                    .swap(mem)
                    .build()
                    .map_err(e)?,
            )
            .pids(
                LinuxPidsBuilder::default()
                    .limit(i64::try_from(r.pids).map_err(|_| "pids limit too large")?)
                    .build()
                    .map_err(e)?,
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(quota)
                    .period(period)
                    .build()
                    .map_err(e)?,
            )
            .build()
            .map_err(e)?;
        let mut devices = Vec::new();
        for d in &self.devices {
            devices.push(
                oci_spec::runtime::LinuxDeviceBuilder::default()
                    .path(d.path.clone())
                    .typ(oci_spec::runtime::LinuxDeviceType::C)
                    .major(d.major)
                    .minor(d.minor)
                    .file_mode(0o666u32)
                    .uid(0u32)
                    .gid(0u32)
                    .build()
                    .map_err(e)?,
            );
        }
        let linux = LinuxBuilder::default()
            .devices(devices)
            .uid_mappings(vec![map])
            .gid_mappings(vec![map])
            .namespaces(namespaces)
            .resources(resources)
            .cgroups_path(PathBuf::from(&self.cgroup))
            .masked_paths(masked_paths())
            .readonly_paths(oci_spec::runtime::get_default_readonly_paths())
            .seccomp(seccomp::profile().map_err(e)?)
            .build()
            .map_err(e)?;
        spec.set_linux(Some(linux));
        Ok(spec)
    }
}

/// runc's masked paths plus the few later runc versions added.
fn masked_paths() -> Vec<String> {
    let mut v = oci_spec::runtime::get_default_maskedpaths();
    for p in [
        "/proc/kmsg",
        "/proc/sysrq-trigger",
        "/sys/devices/virtual/powercap",
    ] {
        v.push(p.to_string());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WorkloadSpec {
        WorkloadSpec {
            rootfs: "/r".into(),
            args: vec!["/bin/sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/work".into(),
            uid: 0,
            gid: 0,
            hostname: "job".into(),
            resources: Resources::default(),
            ids: IdRange::default(),
            binds: vec![Bind {
                host: "/v".into(),
                container: "/data".into(),
                read_only: false,
            }],
            cgroup: "/unet/x".into(),
            devices: vec![],
            netns: None,
        }
    }

    #[test]
    fn spec_isolates_the_workload() {
        let spec = sample().build().unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(v["process"]["noNewPrivileges"], true);
        for set in [
            "bounding",
            "effective",
            "inheritable",
            "permitted",
            "ambient",
        ] {
            assert_eq!(
                v["process"]["capabilities"][set],
                serde_json::json!([]),
                "{set}"
            );
        }
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        for want in ["user", "pid", "network", "ipc", "uts", "mount", "cgroup"] {
            assert!(ns.contains(&want), "{want} in {ns:?}");
            // A namespace with a path would join the host's.
        }
        assert!(v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.get("path").is_none()));
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], 3_000_000_000u64);
        assert_eq!(v["linux"]["uidMappings"][0]["containerID"], 0);
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 1i64 << 30);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 256);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 100_000);
        let masked = v["linux"]["maskedPaths"].as_array().unwrap();
        assert!(masked.contains(&serde_json::json!("/proc/kcore")));
        assert!(v["linux"]["readonlyPaths"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("/proc/sys")));
        let mounts = v["mounts"].as_array().unwrap();
        assert!(mounts.iter().all(|m| m["destination"] != "/sys/fs/cgroup"));
        assert!(mounts
            .iter()
            .any(|m| m["destination"] == "/tmp" && m["type"] == "tmpfs"));
        let sc = &v["linux"]["seccomp"];
        assert_eq!(sc["defaultAction"], "SCMP_ACT_ALLOW");
        let denied: Vec<&str> = sc["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["names"].as_array().unwrap().iter())
            .map(|n| n.as_str().unwrap())
            .collect();
        for s in [
            "mount",
            "ptrace",
            "kexec_load",
            "bpf",
            "keyctl",
            "unshare",
            "setns",
        ] {
            assert!(denied.contains(&s), "{s}");
        }
    }
}
