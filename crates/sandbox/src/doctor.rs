//! `unet miner doctor`: can this host run renters' workloads, and what is missing?
//!
//! Each [`Check`] names one thing the sandbox needs, whether it is there, what was found and,
//! when it is missing, how to install or enable it. Required checks (root, runc, user
//! namespaces, cgroup controllers, a real container run) decide whether the host can serve
//! jobs; the others (busybox for bare commands, NVIDIA device nodes and a CDI spec for GPU
//! chips) only limit what it can serve. The file-system checks read from [`HostPaths`], so
//! tests point them at a fake `/proc`, `/sys/fs/cgroup` and `/dev`.

use crate::{rootfs, runner, Resources, Runtime, WorkloadSpec};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short name, e.g. `"runc"`.
    pub name: &'static str,
    /// Whether the host passes it.
    pub ok: bool,
    /// Whether the host cannot serve jobs without it.
    pub required: bool,
    /// What was found (or why it failed).
    pub detail: String,
    /// How to fix it, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, required: bool, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok: true,
            required,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &'static str, required: bool, detail: impl Into<String>, fix: &str) -> Self {
        Self {
            name,
            ok: false,
            required,
            detail: detail.into(),
            fix: Some(fix.to_string()),
        }
    }
}

/// Where the host's kernel interfaces are (the real ones by default).
#[derive(Clone, Debug)]
pub struct HostPaths {
    /// `/proc`
    pub proc: PathBuf,
    /// `/sys/fs/cgroup`
    pub cgroup: PathBuf,
    /// `/dev`
    pub dev: PathBuf,
    /// Where CDI specs live (`/etc/cdi`, `/var/run/cdi`).
    pub cdi: Vec<PathBuf>,
}

impl Default for HostPaths {
    fn default() -> Self {
        Self {
            proc: "/proc".into(),
            cgroup: "/sys/fs/cgroup".into(),
            dev: "/dev".into(),
            cdi: vec!["/etc/cdi".into(), "/var/run/cdi".into()],
        }
    }
}

/// Whether every required check passed.
pub fn host_ready(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.ok || !c.required)
}

/// Every check, in order. `work` is a scratch directory for the container run (skipped, and
/// failed, when runc or busybox is missing).
pub fn check_host(paths: &HostPaths, work: &Path) -> Vec<Check> {
    let mut out = vec![
        root(&paths.proc),
        user_namespaces(&paths.proc),
        cgroups(&paths.cgroup),
    ];
    let runc = runc();
    let busybox = busybox();
    out.push(run_container(&runc, &busybox, work));
    out.insert(1, runc.0);
    out.push(busybox.0);
    out.extend(gpu(&paths.dev, &paths.cdi));
    out.push(egress());
    out
}

/// The programs egress needs (`nft`, `ip`, `unshare`, `umount`). Not required: a host
/// without them serves workloads with egress off; `unet miner doctor` makes it required
/// when the provider's configuration turns egress on.
pub fn egress() -> Check {
    let missing = crate::egress::missing_tools();
    if missing.is_empty() {
        let version = std::process::Command::new("nft")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Check::pass("egress", false, format!("{version}, iproute2, util-linux"))
    } else {
        Check::fail(
            "egress",
            false,
            format!("missing {}", missing.join(", ")),
            "apt-get install nftables iproute2 util-linux mount (only for network.egress = \"on\")",
        )
    }
}

/// Runs as root (runc maps each workload to an unprivileged uid range, which needs it).
pub fn root(proc: &Path) -> Check {
    let status = std::fs::read_to_string(proc.join("self/status")).unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u32>().ok());
    match euid {
        Some(0) => Check::pass("root", true, "running as root"),
        Some(uid) => Check::fail(
            "root",
            true,
            format!("running as uid {uid}"),
            "run the miner as root (it maps each workload to an unprivileged uid range)",
        ),
        None => Check::fail("root", true, "cannot read the process's uid", "mount /proc"),
    }
}

/// User namespaces are enabled.
pub fn user_namespaces(proc: &Path) -> Check {
    let read = |p: &str| {
        std::fs::read_to_string(proc.join(p))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    match read("sys/user/max_user_namespaces") {
        Some(n) if n > 0 => Check::pass(
            "user_namespaces",
            true,
            format!("enabled (max_user_namespaces = {n})"),
        ),
        Some(_) => Check::fail(
            "user_namespaces",
            true,
            "disabled (max_user_namespaces = 0)",
            "sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d/ to keep it)",
        ),
        None => Check::fail(
            "user_namespaces",
            true,
            "the kernel has no user namespaces",
            "use a kernel built with CONFIG_USER_NS=y",
        ),
    }
}

/// The cgroup controllers the limits need: memory, pids, cpu (v2 unified, or v1 hierarchies).
pub fn cgroups(cgroup: &Path) -> Check {
    let needed = ["memory", "pids", "cpu"];
    let fix = "enable the memory, pids and cpu cgroup controllers \
               (kernel command line: cgroup_enable=memory; systemd: Delegate=yes)";
    if let Ok(text) = std::fs::read_to_string(cgroup.join("cgroup.controllers")) {
        let have: Vec<&str> = text.split_whitespace().collect();
        let missing: Vec<&str> = needed
            .iter()
            .copied()
            .filter(|c| !have.contains(c))
            .collect();
        return if missing.is_empty() {
            Check::pass("cgroups", true, "cgroup v2 with memory, pids, cpu")
        } else {
            Check::fail(
                "cgroups",
                true,
                format!("cgroup v2 without {}", missing.join(", ")),
                fix,
            )
        };
    }
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|c| !cgroup.join(c).is_dir())
        .collect();
    if missing.is_empty() {
        Check::pass("cgroups", true, "cgroup v1 with memory, pids, cpu")
    } else {
        Check::fail(
            "cgroups",
            true,
            format!("no cgroup hierarchy for {}", missing.join(", ")),
            fix,
        )
    }
}

fn runc() -> (Check, Option<PathBuf>) {
    let fix = "apt-get install runc (Debian/Ubuntu), or set UNET_RUNC to a runc binary";
    let Some(path) = runner::find_runc() else {
        return (Check::fail("runc", true, "not found", fix), None);
    };
    let version = std::process::Command::new(&path)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        });
    match version {
        Some(v) => (
            Check::pass("runc", true, format!("{} ({v})", path.display())),
            Some(path),
        ),
        None => (
            Check::fail(
                "runc",
                true,
                format!("{} does not run", path.display()),
                fix,
            ),
            None,
        ),
    }
}

fn busybox() -> (Check, Option<PathBuf>) {
    match rootfs::find_busybox() {
        Ok(p) => (
            Check::pass("busybox", false, format!("{} (bare commands)", p.display())),
            Some(p),
        ),
        Err(e) => (
            Check::fail(
                "busybox",
                false,
                format!("{e}; jobs without an image are refused"),
                "apt-get install busybox-static",
            ),
            None,
        ),
    }
}

/// Runs `echo` in a real container with the sandbox's full spec (user namespace, no
/// capabilities, seccomp, cgroup limits, own network): the check that covers everything.
fn run_container(
    runc: &(Check, Option<PathBuf>),
    busybox: &(Check, Option<PathBuf>),
    work: &Path,
) -> Check {
    const NAME: &str = "container";
    let fix = "fix the checks above; `runc --debug` on the bundle shows why it fails";
    let (Some(runc), Some(_)) = (&runc.1, &busybox.1) else {
        return Check::fail(NAME, true, "not tried: needs runc and busybox", fix);
    };
    let result = (|| -> Result<String, String> {
        std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            // The workload's mapped root must be able to reach its root file system.
            std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o711))
                .map_err(|e| format!("{}: {e}", work.display()))?;
        }
        let rootfs = rootfs::busybox_rootfs(&work.join("rootfs"))?;
        let rt = Runtime {
            runc: runc.clone(),
            state_root: work.join("runc-state"),
        };
        let id = format!("unet-doctor-{}", std::process::id());
        let spec = WorkloadSpec {
            rootfs,
            args: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo unet-doctor-$((6*7))".into(),
            ],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            hostname: "doctor".into(),
            resources: Resources::default(),
            ids: Default::default(),
            binds: vec![],
            cgroup: format!("/unet-doctor/{id}"),
            devices: vec![],
            netns: None,
        };
        let out = rt.run(
            &id,
            &work.join("bundle"),
            &spec,
            Duration::from_secs(60),
            1 << 16,
        );
        if let Some(e) = &out.start_error {
            return Err(e.clone());
        }
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.succeeded() && stdout == "unet-doctor-42" {
            Ok(format!("ran `echo` in a sandbox in {} ms", out.wall_ms))
        } else {
            Err(format!(
                "exit {:?}, stopped {:?}, stdout {stdout:?}, stderr {:?}",
                out.exit_code,
                out.stopped,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    })();
    let _ = std::fs::remove_dir_all(work);
    match result {
        Ok(detail) => Check::pass(NAME, true, detail),
        Err(e) => Check::fail(NAME, true, e, fix),
    }
}

/// NVIDIA device nodes and a CDI spec (only GPU chips need them).
pub fn gpu(dev: &Path, cdi: &[PathBuf]) -> Vec<Check> {
    let mut gpus: Vec<String> = std::fs::read_dir(dev)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| {
                    n.strip_prefix("nvidia")
                        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
                })
                .collect()
        })
        .unwrap_or_default();
    gpus.sort();
    let control: Vec<&str> = ["nvidiactl", "nvidia-uvm"]
        .into_iter()
        .filter(|n| !dev.join(n).exists())
        .collect();
    let devices = if gpus.is_empty() {
        Check::fail(
            "nvidia_devices",
            false,
            "no /dev/nvidiaN: this host serves no GPU chip",
            "install the NVIDIA driver (nvidia-smi must list the GPUs)",
        )
    } else if !control.is_empty() {
        Check::fail(
            "nvidia_devices",
            false,
            format!("{} present, {} missing", gpus.join(" "), control.join(", ")),
            "load the driver's modules: nvidia-modprobe -u -c=0",
        )
    } else {
        Check::pass(
            "nvidia_devices",
            false,
            format!("{}, nvidiactl, nvidia-uvm", gpus.join(" ")),
        )
    };
    let dirs: Vec<&Path> = cdi.iter().map(PathBuf::as_path).collect();
    let spec = match crate::gpu::find_cdi_spec(&dirs) {
        Ok(Some(_)) => Check::pass("cdi_spec", false, "an nvidia.com/gpu CDI spec (JSON)"),
        Ok(None) => Check::fail(
            "cdi_spec",
            false,
            "no nvidia.com/gpu CDI spec: GPU jobs get the device nodes but no driver libraries",
            "nvidia-ctk cdi generate --format=json --output=/etc/cdi/nvidia.json",
        ),
        Err(e) => Check::fail(
            "cdi_spec",
            false,
            e,
            "nvidia-ctk cdi generate --format=json --output=/etc/cdi/nvidia.json",
        ),
    };
    vec![devices, spec]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn root_and_user_namespaces_read_proc() {
        let d = tempfile::tempdir().unwrap();
        let proc = d.path();
        write(
            &proc.join("self/status"),
            "Name:\tx\nUid:\t1000\t1000\t1000\t1000\n",
        );
        write(&proc.join("sys/user/max_user_namespaces"), "0\n");
        let r = root(proc);
        assert!(!r.ok && r.required && r.detail.contains("1000"), "{r:?}");
        let u = user_namespaces(proc);
        assert!(!u.ok && u.fix.as_deref().unwrap().contains("max_user_namespaces"));
        write(&proc.join("self/status"), "Uid:\t0\t0\t0\t0\n");
        write(&proc.join("sys/user/max_user_namespaces"), "63338\n");
        assert!(root(proc).ok);
        assert!(user_namespaces(proc).ok);
        std::fs::remove_file(proc.join("sys/user/max_user_namespaces")).unwrap();
        assert!(!user_namespaces(proc).ok);
    }

    #[test]
    fn cgroups_v2_and_v1_name_what_is_missing() {
        let d = tempfile::tempdir().unwrap();
        let v2 = d.path().join("v2");
        write(&v2.join("cgroup.controllers"), "cpuset cpu io memory\n");
        let c = cgroups(&v2);
        assert!(!c.ok && c.detail.contains("pids"), "{c:?}");
        write(
            &v2.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids\n",
        );
        assert!(cgroups(&v2).ok);
        let v1 = d.path().join("v1");
        for c in ["memory", "cpu"] {
            std::fs::create_dir_all(v1.join(c)).unwrap();
        }
        let c = cgroups(&v1);
        assert!(!c.ok && c.detail.contains("pids") && !c.detail.contains("memory"));
        std::fs::create_dir_all(v1.join("pids")).unwrap();
        assert!(cgroups(&v1).ok);
    }

    #[test]
    fn gpu_checks_are_optional_and_name_what_is_missing() {
        let d = tempfile::tempdir().unwrap();
        let dev = d.path().join("dev");
        let cdi = d.path().join("cdi");
        std::fs::create_dir_all(&dev).unwrap();
        let checks = gpu(&dev, std::slice::from_ref(&cdi));
        assert!(checks.iter().all(|c| !c.ok && !c.required), "{checks:?}");
        for n in ["nvidia0", "nvidia1", "nvidiactl", "nvidia-modeset"] {
            write(&dev.join(n), "");
        }
        let c = &gpu(&dev, std::slice::from_ref(&cdi))[0];
        assert!(!c.ok && c.detail.contains("nvidia0 nvidia1") && c.detail.contains("nvidia-uvm"));
        write(&dev.join("nvidia-uvm"), "");
        write(
            &cdi.join("nvidia.json"),
            r#"{"kind":"nvidia.com/gpu","devices":[]}"#,
        );
        let checks = gpu(&dev, std::slice::from_ref(&cdi));
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        // A host is ready without GPU checks passing, never without a required one.
        let mut all = checks;
        all.push(Check::fail("cdi_spec", false, "x", "y"));
        assert!(host_ready(&all));
        all.push(Check::fail("runc", true, "x", "y"));
        assert!(!host_ready(&all));
    }
}
