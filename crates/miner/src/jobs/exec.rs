//! Bounded machine time, in the sandbox: one command (argv, no shell) runs under `runc`
//! ([`unet_sandbox`]) in a container of its own, never as the miner's user.
//!
//! The root is the job's image ([`unet_sandbox::image`], unpacked once per digest) or
//! Debian's static busybox ([`unet_sandbox::rootfs`]), read-only either way; the working
//! directory `/work` is the lease's volume (kept across the lease's jobs, owned by the
//! lease's unprivileged uid range, unreadable by other leases); `/tmp` is a tmpfs of
//! `file_bytes`. The container has its own user (mapped to an unprivileged host uid range
//! chosen from the lease), pid, mount, ipc, uts, cgroup and network namespaces (loopback
//! only; with the provider's egress on, also a veth to the outside through the miner's
//! firewall: [`SandboxConfig::egress`]), no capabilities, no new privileges, a seccomp deny list, and cgroup limits:
//! `memory_mib` for all its processes together, a pids limit and a CPU quota from the
//! miner's configuration. The environment is only `PATH`, `HOME=/work`, `TMPDIR=/tmp`.
//!
//! At wall time or past the output cap the whole container is killed and deleted
//! (`runc kill --all`, `runc delete --force`); so is anything left when the command ends.
//! The memory limit is reported (`limit_exceeded` / `memory`) when the kernel's OOM killer
//! fired in the job's memory cgroup.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

pub use unet_renter::job::ExecLimits;

/// Which limit stopped a job: the sandbox runner's own ([`unet_sandbox::Stopped`]).
pub use unet_sandbox::Stopped as Limit;

/// The limit as a job's result names it ([`unet_renter::job::Limit`], the same names).
pub fn result_limit(stopped: Limit) -> unet_renter::job::Limit {
    use unet_renter::job::Limit as L;
    match stopped {
        Limit::WallTime => L::WallTime,
        Limit::Memory => L::Memory,
        Limit::Output => L::Output,
        Limit::FileSize => L::FileSize,
    }
}

/// What happened to the command: the sandbox runner's outcome
/// ([`unet_sandbox::RunOutcome`]; `stopped` names the limit, `start_error` a command that
/// could not be started).
pub use unet_sandbox::RunOutcome as ExecOutcome;

/// Where the sandbox keeps its things and what it gives a job besides the job's own limits.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Busybox root, bundles, volumes, runc state. Every ancestor must be traversable by
    /// others (`o+x`): runc mounts the root from inside the user namespace.
    pub dir: PathBuf,
    /// First host uid of the ranges (lease `n` gets `base + (n % 16384) * 65536`).
    pub uid_base: u32,
    /// Processes and threads of one job.
    pub pids: u64,
    /// CPU of one job, thousandths of a core.
    pub cpu_millis: u64,
    /// Caps of one image (blobs, layers, unpacked bytes and entries).
    pub images: unet_sandbox::image::ImageLimits,
    /// The runc binary [default: `UNET_RUNC`, else `runc` on `PATH`].
    pub runc: Option<PathBuf>,
    /// The ONNX runner run inside the sandbox for inference jobs ([`super::onnx`])
    /// [default: `UNET_ONNX_RUNNER`, else `unet-onnx-run` beside the running binary, else on
    /// `PATH`].
    pub onnx_runner: Option<PathBuf>,
    /// Memory of one service container, MiB (a batch job names its own, up to the
    /// server's maximum).
    pub service_memory_mib: u64,
    /// Size of each lease's volume, MiB: its own ext4 filesystem
    /// ([`unet_sandbox::volume`]), so a workload cannot fill the miner's disk.
    pub volume_mib: u64,
    /// Blocks a lease's volume is kept after the lease ended (closed or ran out), then it
    /// is deleted ([`super::volumes`]).
    pub volume_grace_blocks: u64,
    /// Where the host's GPU device nodes are (`/dev`).
    pub gpu_dev: PathBuf,
    /// Where CDI specs are looked for (`/etc/cdi`, `/var/run/cdi`).
    pub cdi_dirs: Vec<PathBuf>,
    /// Egress to the outside for every workload ([`unet_sandbox::egress`]); None: off,
    /// loopback only.
    pub egress: Option<std::sync::Arc<unet_sandbox::egress::Egress>>,
}

/// Name of the directory that holds every miner's sandbox directory by default
/// (`/var/lib/unet-sandbox`).
pub const SANDBOX_BASE_NAME: &str = "unet-sandbox";

impl SandboxConfig {
    /// The default for a miner whose job directory is `jobs_dir`: under
    /// `/var/lib/unet-sandbox/<hash of jobs_dir>` (`UNET_SANDBOX_DIR` overrides; never give two
    /// miners the same one: see [`remove_leftover_containers`]), since a
    /// miner's home is usually not traversable by others.
    pub fn for_jobs_dir(jobs_dir: &Path) -> Self {
        let dir = match std::env::var_os("UNET_SANDBOX_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                let h = unet_types::sha256(&[jobs_dir.as_os_str().as_encoded_bytes()]);
                PathBuf::from("/var/lib")
                    .join(SANDBOX_BASE_NAME)
                    .join(hex::encode(&h[..8]))
            }
        };
        Self {
            dir,
            uid_base: 3_000_000_000,
            pids: 256,
            cpu_millis: 1000,
            images: unet_sandbox::image::ImageLimits::default(),
            runc: None,
            onnx_runner: None,
            service_memory_mib: 1024,
            volume_mib: 1024,
            // One hour of 100 ms blocks.
            volume_grace_blocks: 36_000,
            gpu_dev: PathBuf::from("/dev"),
            cdi_dirs: vec![PathBuf::from("/etc/cdi"), PathBuf::from("/var/run/cdi")],
            egress: None,
        }
    }

    /// Egress with `cfg` for this sandbox's workloads: namespace files under `<dir>/egress`,
    /// host ends tagged with a hash of `dir` (so the sweep takes only this miner's).
    pub fn egress_for(
        &self,
        cfg: unet_sandbox::egress::EgressConfig,
    ) -> Result<std::sync::Arc<unet_sandbox::egress::Egress>, String> {
        let h = unet_types::sha256(&[self.dir.as_os_str().as_encoded_bytes()]);
        unet_sandbox::egress::Egress::new(cfg, self.dir.join("egress"), &hex::encode(&h[..8]))
            .map(std::sync::Arc::new)
    }

    /// The image store (`<dir>/images`).
    pub fn image_store(&self) -> Result<unet_sandbox::image::ImageStore, String> {
        self.ensure_dir()?;
        unet_sandbox::image::ImageStore::open(&self.dir.join("images"), self.images)
    }

    /// The host uid range of lease `lease`.
    pub fn ids(&self, lease: u64) -> unet_sandbox::IdRange {
        let slot = u32::try_from(lease % 16_384).unwrap_or(0);
        unet_sandbox::IdRange {
            host_base: self.uid_base.saturating_add(slot.saturating_mul(65_536)),
            size: 65_536,
        }
    }

    /// The volume of lease `lease` on the host.
    pub fn volume(&self, lease: u64) -> PathBuf {
        self.dir.join("volumes").join(format!("lease-{lease}"))
    }

    /// The filesystem image holding lease `lease`'s volume.
    pub fn volume_image(&self, lease: u64) -> PathBuf {
        self.dir.join("volumes").join(format!("lease-{lease}.img"))
    }

    /// Mounts lease `lease`'s volume for one workload (unmounted when the last one using it
    /// is dropped).
    pub fn mount_volume(&self, lease: u64) -> Result<unet_sandbox::volume::MountedVolume, String> {
        unet_sandbox::volume::acquire(
            &self.volume_image(lease),
            &self.volume(lease),
            self.volume_mib.saturating_mul(1 << 20),
            self.ids(lease),
        )
    }

    /// runc (the configured binary, else found on `PATH`), its state under `<dir>/runc`.
    pub fn runtime(&self) -> Result<unet_sandbox::Runtime, String> {
        match &self.runc {
            Some(runc) => Ok(unet_sandbox::Runtime {
                runc: runc.clone(),
                state_root: self.dir.join("runc"),
            }),
            None => unet_sandbox::Runtime::detect(self.dir.join("runc")),
        }
    }

    /// Creates the sandbox directory, mode 0711: the workloads' mapped uids pass through it
    /// to their roots and volumes but cannot list it. Its parent too when that is the shared
    /// base (`/var/lib/unet-sandbox`, or any directory of that name): runc creates a missing
    /// state root and all its parents 0700, which would lock every workload out of the roots
    /// below, so the base is repaired here if a runc call ever created it.
    pub(crate) fn ensure_dir(&self) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("sandbox dir {}: {e}", self.dir.display()))?;
        let base = self
            .dir
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == SANDBOX_BASE_NAME));
        for d in base.into_iter().chain([self.dir.as_path()]) {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711))
                .map_err(|e| format!("sandbox dir {}: {e}", d.display()))?;
        }
        Ok(())
    }
}

/// What one workload runs with, besides the sandbox's configuration.
pub struct Workload<'a> {
    /// The container id (`[A-Za-z0-9_-]`, at most 128 bytes).
    pub container: String,
    /// The hostname inside.
    pub hostname: &'a str,
    /// The lease (its uid range and volume).
    pub lease: u64,
    /// The command (after the image's entrypoint; empty: the image's `Cmd`).
    pub argv: &'a [String],
    /// `KEY=VALUE` pairs the renter adds to the image's environment.
    pub env: &'a [String],
    /// The image, or None for the busybox root.
    pub image: Option<&'a unet_sandbox::image::Image>,
    /// A trusted host program (the ONNX runner) to run as `/bin/<name>`, bound read-only
    /// into a root of its own ([`unet_sandbox::rootfs::program_rootfs`]) instead of the
    /// image or busybox; its input files are bound read-only at `/in`.
    pub program: Option<Program<'a>>,
    /// Memory of the whole container, bytes.
    pub memory_bytes: u64,
    /// `/tmp` size and largest file, bytes.
    pub file_bytes: u64,
    /// The host GPU of the chip it runs on ([`crate::ChipBackend::gpu_index`]): that GPU
    /// and no other is given to the container.
    pub gpu: Option<u32>,
}

/// A trusted host program and the directory of its inputs ([`Workload::program`]).
#[derive(Clone, Copy)]
pub struct Program<'a> {
    /// The program on the host.
    pub binary: &'a Path,
    /// Host directory bound read-only at `/in`.
    pub inputs: &'a Path,
}

/// A workload ready to start: the runtime, the container id and its spec.
pub struct Prepared {
    /// runc, with the sandbox's state directory.
    pub runtime: unet_sandbox::Runtime,
    /// The container id.
    pub id: String,
    /// The runtime spec.
    pub spec: unet_sandbox::WorkloadSpec,
    /// Where its bundle goes.
    pub bundle: PathBuf,
    /// The lease's volume, mounted for as long as this is kept.
    pub volume: unet_sandbox::volume::MountedVolume,
    /// Its network with egress on (veth, namespace), taken down when dropped.
    pub egress: Option<unet_sandbox::egress::Attached>,
}

/// The spec of `w` in the sandbox `sb`: the image's entrypoint first; its `Cmd` when
/// `argv` is empty; its environment, working directory and numeric user; the lease's
/// volume at `/work`.
pub fn prepare(sb: &SandboxConfig, w: &Workload<'_>) -> Result<Prepared, String> {
    let mut args: Vec<String> = Vec::new();
    let mut env: Vec<String> = Vec::new();
    let (mut cwd, mut uid, mut gid) = ("/work".to_string(), 0, 0);
    if let Some(img) = w.image {
        args.extend(img.config.entrypoint.iter().cloned());
        if w.argv.is_empty() {
            args.extend(img.config.cmd.iter().cloned());
        }
        env.extend(img.config.env.iter().cloned());
        if let Some(dir) = &img.config.working_dir {
            cwd = dir.clone();
        }
        (uid, gid) = img.config.uid_gid()?;
    }
    args.extend(w.argv.iter().cloned());
    if args.is_empty() {
        return Err("empty argv (and the image names no command)".into());
    }
    // The renter's variables replace the image's of the same name.
    for e in w.env {
        let name = e.split_once('=').map_or(e.as_str(), |(n, _)| n);
        env.retain(|x| x.split_once('=').map_or(x.as_str(), |(n, _)| n) != name);
        env.push(e.clone());
    }
    for (k, v) in [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("HOME", "/work"),
        ("TMPDIR", "/tmp"),
    ] {
        if !env
            .iter()
            .any(|e| e.split_once('=').is_some_and(|(n, _)| n == k))
        {
            env.push(format!("{k}={v}"));
        }
    }
    sb.ensure_dir()?;
    let runtime = sb.runtime()?;
    let rootfs = match (w.program, w.image) {
        (Some(p), _) => {
            unet_sandbox::rootfs::program_rootfs(&sb.dir.join("program-root"), p.binary)?
        }
        (None, Some(img)) => img.rootfs.clone(),
        (None, None) => unet_sandbox::rootfs::busybox_rootfs(&sb.dir.join("busybox-root"))?,
    };
    let ids = sb.ids(w.lease);
    let volume = sb.mount_volume(w.lease)?;
    let id = w.container.clone();
    let mut binds = vec![unet_sandbox::Bind {
        host: volume.dir().to_path_buf(),
        container: "/work".into(),
        read_only: false,
    }];
    if let Some(p) = w.program {
        let name = p.binary.file_name().unwrap_or_default();
        binds.push(unet_sandbox::Bind {
            host: p.binary.to_path_buf(),
            container: Path::new("/bin").join(name),
            read_only: true,
        });
        binds.push(unet_sandbox::Bind {
            host: p.inputs.to_path_buf(),
            container: "/in".into(),
            read_only: true,
        });
    }
    let mut devices = Vec::new();
    if let Some(index) = w.gpu {
        let g = unet_sandbox::gpu::gpu_edits(index, &sb.gpu_dev, &sb.cdi_dirs)
            .map_err(|e| format!("GPU {index} of the leased chip: {e}"))?;
        devices = g.devices;
        binds.extend(g.binds);
        for e in g.env {
            let name = e.split_once('=').map_or(e.as_str(), |(n, _)| n).to_string();
            env.retain(|x| x.split_once('=').map_or(x.as_str(), |(n, _)| n) != name);
            env.push(e);
        }
    }
    let mut spec = unet_sandbox::WorkloadSpec {
        rootfs,
        args,
        env,
        cwd,
        uid,
        gid,
        hostname: w.hostname.into(),
        resources: unet_sandbox::Resources {
            memory_bytes: w.memory_bytes,
            pids: sb.pids,
            cpu_millis: sb.cpu_millis,
            tmpfs_bytes: w.file_bytes,
            file_bytes: w.file_bytes,
        },
        ids,
        binds,
        cgroup: format!("/unet/{id}"),
        devices,
        netns: None,
    };
    // The ONNX runner needs no network: the provider's egress is for renters' own programs.
    let egress = match sb.egress.as_ref().filter(|_| w.program.is_none()) {
        Some(e) => {
            let net = e.attach(&id).map_err(|e| format!("egress: {e}"))?;
            net.apply(&mut spec)?;
            Some(net)
        }
        None => None,
    };
    Ok(Prepared {
        runtime,
        bundle: sb.dir.join("bundles").join(&id),
        id,
        spec,
        volume,
        egress,
    })
}

/// What a job runs on besides the sandbox: its image (None: the busybox root) and the
/// leased chip's host GPU (None: no GPU).
#[derive(Clone, Copy, Default)]
pub struct RunsOn<'a> {
    /// The unpacked image.
    pub image: Option<&'a unet_sandbox::image::Image>,
    /// The host GPU index.
    pub gpu: Option<u32>,
}

/// Runs `argv` as job `job_id` of lease `lease` under `limits` in the sandbox, on `on`'s
/// image or the busybox root with its GPU ([`prepare`]), its output also going to `live`
/// as it arrives.
/// Blocks until the command ends or is stopped; always returns within the wall time plus a
/// short grace.
pub fn run(
    sb: &SandboxConfig,
    job_id: &str,
    lease: u64,
    argv: &[String],
    limits: &ExecLimits,
    on: RunsOn<'_>,
    live: Option<std::sync::Arc<unet_sandbox::LiveLog>>,
) -> ExecOutcome {
    let RunsOn { image, gpu } = on;
    let w = Workload {
        container: format!("unet-{}", &job_id[..job_id.len().min(48)]),
        hostname: "job",
        lease,
        argv,
        env: &[],
        image,
        program: None,
        memory_bytes: limits.memory_mib.saturating_mul(1 << 20),
        file_bytes: limits.file_bytes,
        gpu,
    };
    let p = match prepare(sb, &w) {
        Ok(p) => p,
        Err(e) => {
            if let Some(l) = live {
                l.finish();
            }
            return ExecOutcome::failed_to_start(e);
        }
    };
    p.runtime.run_logged(
        &p.id,
        &p.bundle,
        &p.spec,
        Duration::from_millis(limits.wall_ms),
        limits.output_bytes,
        live,
    )
}

/// Stops and deletes every container in this sandbox's runc state: at miner start nothing of
/// this miner runs yet, so each one (a batch job, an ONNX job or a service) was left by a run
/// that crashed, and must not outlive it (its lease may be over). Returns their ids. The
/// runc state directory is this sandbox's own, so other miners' containers are not touched.
pub fn remove_leftover_containers(sb: &SandboxConfig) -> Vec<String> {
    // Before runc sees the state root: runc would create it and its parents 0700.
    if sb.ensure_dir().is_err() {
        return Vec::new();
    }
    let Ok(rt) = sb.runtime() else {
        return Vec::new();
    };
    let left = rt.list("");
    for id in &left {
        rt.destroy(id);
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// A miner home (0700, with an owner key) and a sandbox dir beside it. Needs root,
    /// runc and busybox-static (scripts/ci-deps).
    fn setup() -> (tempfile::TempDir, SandboxConfig) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join("jobs/run")).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(home.join("owner.key"), "OWNER-SECRET-KEY").unwrap();
        let sb = SandboxConfig {
            dir: dir.path().join("sandbox"),
            ..SandboxConfig::for_jobs_dir(&home.join("jobs"))
        };
        (dir, sb)
    }

    fn job(sb: &SandboxConfig, id: &str, a: &[&str], limits: &ExecLimits) -> ExecOutcome {
        let out = run(sb, id, 7, &argv(a), limits, RunsOn::default(), None);
        if let Some(e) = &out.start_error {
            assert!(!e.contains("not found: install"), "{e}");
        }
        out
    }

    #[test]
    fn runs_in_the_sandbox_with_a_clean_environment() {
        let (_d, sb) = setup();
        std::env::set_var("UNET_SECRET_TEST_VAR", "leak");
        let out = job(
            &sb,
            "j1",
            &[
                "/bin/sh",
                "-c",
                "pwd; env; id -u; echo err >&2; echo x > f; exit 3",
            ],
            &ExecLimits::default(),
        );
        let stdout = String::from_utf8(out.stdout.clone()).unwrap();
        assert!(stdout.starts_with("/work\n"), "{out:?}");
        assert!(!stdout.contains("UNET_SECRET_TEST_VAR"), "{stdout}");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stopped, None);
        assert!(!out.succeeded());
        // The file is in the lease's volume, owned by the lease's unprivileged range.
        let v = sb.mount_volume(7).unwrap();
        let f = v.dir().join("f");
        assert_eq!(std::fs::read(&f).unwrap(), b"x\n");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&f).unwrap().uid(), sb.ids(7).host_base);
    }

    /// A miner that crashed leaves its running jobs' containers behind; the next start
    /// removes them, so a job cannot outlive the miner (and its lease) that way.
    #[test]
    fn containers_left_by_a_crashed_run_are_removed_at_start() {
        let (_d, sb) = setup();
        let running = {
            let sb = sb.clone();
            std::thread::spawn(move || {
                let limits = ExecLimits {
                    wall_ms: 120_000,
                    ..ExecLimits::default()
                };
                job(&sb, "crashed-run-job", &["/bin/sleep", "600"], &limits)
            })
        };
        let rt = sb.runtime().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while rt.list("").is_empty() {
            assert!(Instant::now() < deadline, "the job never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        let started = Instant::now();
        assert_eq!(
            remove_leftover_containers(&sb),
            vec!["unet-crashed-run-job".to_string()]
        );
        let out = running.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(60), "{out:?}");
        // Killed while running (no exit code), or removed between runc's create and start
        // ("container process is already dead", exit 1) when the sweep came that early:
        // either way the job did not run to its end.
        assert!(!out.succeeded(), "{out:?}");
        assert!(
            out.exit_code.is_none() || out.start_error.is_some(),
            "{out:?}"
        );
        assert!(rt.list("").is_empty());
    }

    /// On a clean host the miner's first runc call is the start-up sweep, and runc creates a
    /// missing state root with all its parents 0700, which locked every workload out of its
    /// root (`mount ...: permission denied`) when the base did not exist yet. The sweep now
    /// makes the directories first, and a base that runc did create 0700 is repaired.
    #[test]
    fn a_clean_hosts_first_sweep_leaves_the_sandbox_traversable_and_jobs_start() {
        use std::os::unix::fs::PermissionsExt;
        let (d, sb) = setup();
        let base = d.path().join(SANDBOX_BASE_NAME);
        let sb = SandboxConfig {
            dir: base.join("0123456789abcdef"),
            ..sb
        };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert!(remove_leftover_containers(&sb).is_empty());
        assert_eq!(mode(&base), 0o711);
        assert_eq!(mode(&sb.dir), 0o711);
        let out = job(
            &sb,
            "first-job",
            &["/bin/echo", "hi"],
            &ExecLimits::default(),
        );
        assert_eq!(out.exit_code, Some(0), "{out:?}");
        // A base an older miner let runc create 0700 is repaired by the next sweep.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)).unwrap();
        remove_leftover_containers(&sb);
        assert_eq!(mode(&base), 0o711);
        let out = job(
            &sb,
            "second-job",
            &["/bin/echo", "hi"],
            &ExecLimits::default(),
        );
        assert_eq!(out.exit_code, Some(0), "{out:?}");
    }

    /// The attack of issue 13: a renter's command reading the provider's owner key.
    #[test]
    fn the_miners_home_is_out_of_reach() {
        let (d, sb) = setup();
        let key = d.path().join("home/owner.key");
        let script = format!(
            "cat ../../../owner.key ../../owner.key ../owner.key {k} /proc/1/root{k} /proc/*/root{k}; \
             kill -9 -1; echo done",
            k = key.display()
        );
        let out = job(
            &sb,
            "j2",
            &["/bin/sh", "-c", &script],
            &ExecLimits::default(),
        );
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("OWNER-SECRET"), "{all}");
        assert!(out.stdout.ends_with(b"done\n"), "{out:?}");
    }

    #[test]
    fn wall_time_is_enforced_on_the_whole_container() {
        let (_d, sb) = setup();
        let limits = ExecLimits {
            wall_ms: 300,
            ..Default::default()
        };
        let t = Instant::now();
        let out = job(
            &sb,
            "j3",
            &["/bin/sh", "-c", "setsid sleep 30 & sleep 30"],
            &limits,
        );
        assert_eq!(out.stopped, Some(Limit::WallTime), "{out:?}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(out.wall_ms >= 300);
    }

    #[test]
    fn output_cap_stops_the_job() {
        let (_d, sb) = setup();
        let limits = ExecLimits {
            output_bytes: 1000,
            ..Default::default()
        };
        let out = job(&sb, "j4", &["/bin/yes"], &limits);
        assert_eq!(out.stopped, Some(Limit::Output), "{out:?}");
        assert!(out.truncated);
        assert_eq!(out.stdout.len() + out.stderr.len(), 1000);
    }

    #[test]
    fn memory_limit_is_reported() {
        let (_d, sb) = setup();
        let limits = ExecLimits {
            memory_mib: 32,
            ..Default::default()
        };
        let out = job(
            &sb,
            "j5",
            &[
                "/bin/sh",
                "-c",
                "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo ${#x}",
            ],
            &limits,
        );
        assert_eq!(out.stopped, Some(Limit::Memory), "{out:?}");
        assert!(!out.succeeded());
    }

    /// Filling the disk: every file under the file-size limit, together four times the
    /// lease's volume. The volume is its own filesystem, so the writes stop at its size and
    /// the miner's disk holds at most the volume's image.
    #[test]
    fn a_job_cannot_write_past_its_leases_volume() {
        let (_d, mut sb) = setup();
        sb.volume_mib = 16;
        let out = job(
            &sb,
            "j8",
            &[
                "/bin/sh",
                "-c",
                "for i in 1 2 3 4 5 6 7 8; do head -c 8388608 /dev/zero > f$i; done; \
                 du -sk /work | cut -f1",
            ],
            &ExecLimits::default(),
        );
        let kib: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(u64::MAX);
        assert!(kib <= 16 << 10, "{kib} KiB in a 16 MiB volume: {out:?}");
        let image = unet_sandbox::volume::allocated_bytes(&sb.volume_image(7)).unwrap();
        assert!(
            image <= 16 << 20,
            "the volume occupies {image} bytes on the host"
        );
        // Unmounted once the job ended.
        assert!(!sb.volume(7).join("f1").exists());
    }

    #[test]
    fn file_size_limit_is_reported() {
        let (_d, sb) = setup();
        let limits = ExecLimits {
            file_bytes: 4096,
            ..Default::default()
        };
        let out = job(
            &sb,
            "j6",
            &["/bin/sh", "-c", "head -c 100000 /dev/zero > big"],
            &limits,
        );
        // The write past the limit fails (busybox reports an I/O error; when the writer dies
        // of SIGXFSZ the job is reported `file_size`); the file stays within the limit.
        assert!(!out.succeeded(), "{out:?}");
        let v = sb.mount_volume(7).unwrap();
        assert!(std::fs::metadata(v.dir().join("big")).unwrap().len() <= 4096);
    }

    #[test]
    fn missing_program_and_bad_limits_are_errors() {
        let (_d, sb) = setup();
        let out = job(&sb, "j7", &["/nonexistent/prog"], &ExecLimits::default());
        assert!(!out.succeeded(), "{out:?}");
        let max = ExecLimits::max();
        let bad = ExecLimits {
            wall_ms: 0,
            ..Default::default()
        };
        assert_eq!(
            bad.check(&max).unwrap_err(),
            "limit wall_ms = 0 must be within 1..=600000"
        );
        assert!(ExecLimits::default().check(&max).is_ok());
    }

    /// The chip file names host GPU 2: a workload on that chip gets `/dev/nvidia2` (with
    /// `nvidiactl` and `nvidia-uvm`) and no other GPU; a missing node is an error naming it.
    #[test]
    fn the_leased_chips_gpu_and_no_other_is_in_the_runtime_spec() {
        use crate::{backend::ChipBackend as _, soft::ChipFile, SoftBackend};
        let (d, mut sb) = setup();
        // A fake /dev: four GPUs and the two control nodes (links to real character devices).
        let dev = d.path().join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        for (name, target) in [
            ("nvidia0", "/dev/null"),
            ("nvidia1", "/dev/null"),
            ("nvidia2", "/dev/zero"),
            ("nvidia3", "/dev/null"),
            ("nvidiactl", "/dev/full"),
            ("nvidia-uvm", "/dev/urandom"),
        ] {
            std::os::unix::fs::symlink(target, dev.join(name)).unwrap();
        }
        sb.gpu_dev = dev.clone();
        sb.cdi_dirs = vec![d.path().join("no-cdi")];
        let chips = d.path().join("chips");
        std::fs::create_dir_all(&chips).unwrap();
        let ca = unet_poci::secure_element::DevnetVendorCa::from_seed(b"gpu test").unwrap();
        let mut f = ChipFile::provision(&ca, "BM1684X", None, unet_poci::Curve::P256).unwrap();
        f.gpu_index = Some(2);
        f.save(&chips.join("c.json")).unwrap();
        let backend = SoftBackend::open(&chips).unwrap();
        let chip: unet_types::chip::ChipId = hex::decode(&f.chip_id).unwrap().try_into().unwrap();
        let gpu = backend.gpu_index(&chip);
        assert_eq!(gpu, Some(2));
        let argv = argv(&["/bin/true"]);
        let w = |gpu| Workload {
            container: "unet-gpu".into(),
            hostname: "job",
            lease: 7,
            argv: &argv,
            env: &[],
            image: None,
            program: None,
            memory_bytes: 1 << 30,
            file_bytes: 1 << 20,
            gpu,
        };
        let spec = |gpu| {
            let p = prepare(&sb, &w(gpu)).unwrap();
            serde_json::to_value(p.spec.build().unwrap()).unwrap()
        };
        let v = spec(gpu);
        let nodes: Vec<&str> = v["linux"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert_eq!(nodes, ["/dev/nvidia2", "/dev/nvidiactl", "/dev/nvidia-uvm"]);
        // /dev/zero is 1:5: the devices cgroup allows GPU 2's node, not GPU 0's (1:3).
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(rules[0]["allow"], false);
        assert_eq!(
            (&rules[1]["major"], &rules[1]["minor"]),
            (&1.into(), &5.into())
        );
        assert_eq!(rules.len(), 4);
        // A chip without a GPU: no device at all.
        let v = spec(None);
        assert!(v["linux"]["devices"]
            .as_array()
            .is_none_or(|a| a.is_empty()));
        // Missing nodes are errors naming them.
        std::fs::remove_file(dev.join("nvidia-uvm")).unwrap();
        let e = prepare(&sb, &w(Some(2))).err().unwrap();
        assert!(
            e.contains("GPU 2 of the leased chip") && e.contains("nvidia-uvm"),
            "{e}"
        );
        let e = prepare(&sb, &w(Some(7))).err().unwrap();
        assert!(e.contains("nvidia7"), "{e}");
    }
}
