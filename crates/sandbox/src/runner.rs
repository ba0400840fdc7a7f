//! Runs one workload under `runc` and always takes it down.
//!
//! The bundle (`config.json`) is written to a fresh directory, the container is started
//! with `runc run --keep` in the foreground with stdin from `/dev/null` and stdout/stderr
//! piped (one output budget for both). At the end, whatever happened (exit, wall time,
//! output cap), `runc kill --all KILL` and `runc delete --force` remove every process of
//! the container and its cgroups: the workload runs in its own pid namespace, so nothing
//! it started (`setsid`, double fork) survives its init, and nothing can escape the
//! cgroup. Memory: the cgroup's limit includes swap; when the kernel's OOM killer fired in
//! the cgroup (`memory.oom_control` / `memory.failcnt`), the job is reported as stopped by
//! the memory limit.

use crate::{log::LiveLog, spec::WorkloadSpec};
use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

/// Which limit stopped a workload (serialized `wall_time`, `memory`, `output`,
/// `file_size`: the `limit` of a job's result).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// The workload ran past its wall time.
    WallTime,
    /// The memory cgroup's OOM killer fired.
    Memory,
    /// Stdout and stderr together passed their byte limit.
    Output,
    /// A process wrote a file past `RLIMIT_FSIZE`.
    FileSize,
}

/// What happened to a workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// The limit that stopped the workload, if one did.
    pub stopped: Option<Stopped>,
    /// The container init's exit status, when it exited on its own.
    pub exit_code: Option<i32>,
    /// Signal that ended the container's init, if any.
    pub signal: Option<i32>,
    /// What the workload wrote to stdout (up to the output limit).
    pub stdout: Vec<u8>,
    /// What the workload wrote to stderr (up to the output limit).
    pub stderr: Vec<u8>,
    /// Whether output was dropped at the output limit.
    pub truncated: bool,
    /// Wall time from start to exit, milliseconds.
    pub wall_ms: u64,
    /// The runtime could not start it (bad image, missing runc, ...).
    pub start_error: Option<String>,
}

impl RunOutcome {
    /// A workload that could not be started (`error` says why).
    pub fn failed_to_start(error: String) -> Self {
        Self {
            start_error: Some(error),
            ..Self::default()
        }
    }

    /// Exited with status 0 within its limits.
    pub fn succeeded(&self) -> bool {
        self.stopped.is_none() && self.exit_code == Some(0) && self.start_error.is_none()
    }
}

/// Where runc is and where it keeps its state.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// The `runc` binary.
    pub runc: PathBuf,
    /// runc's `--root` (container state), private to the miner.
    pub state_root: PathBuf,
}

impl Runtime {
    /// Finds `runc` on `PATH` (or `UNET_RUNC`), state under `state_root`.
    pub fn detect(state_root: PathBuf) -> Result<Self, String> {
        let runc = find_runc().ok_or_else(|| {
            "runc not found: install it (Debian/Ubuntu: apt-get install runc) or set UNET_RUNC"
                .to_string()
        })?;
        Ok(Self { runc, state_root })
    }

    pub(crate) fn cmd(&self) -> Command {
        let mut c = Command::new(&self.runc);
        c.arg("--root").arg(&self.state_root);
        c
    }

    /// Stops every process of container `id` and deletes it with its cgroups. Idempotent.
    pub fn destroy(&self, id: &str) {
        let _ = self
            .cmd()
            .args(["kill", "--all", id, "KILL"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self
            .cmd()
            .args(["delete", "--force", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Runs `spec` as container `id` with bundle directory `bundle` (created, then
    /// removed), for at most `wall` and `output_cap` bytes of stdout+stderr.
    pub fn run(
        &self,
        id: &str,
        bundle: &Path,
        spec: &WorkloadSpec,
        wall: Duration,
        output_cap: u64,
    ) -> RunOutcome {
        self.run_logged(id, bundle, spec, wall, output_cap, None)
    }

    /// [`Runtime::run`], also writing stdout and stderr as they arrive (within the same
    /// output cap) to `live`, which is finished when the workload has ended.
    pub fn run_logged(
        &self,
        id: &str,
        bundle: &Path,
        spec: &WorkloadSpec,
        wall: Duration,
        output_cap: u64,
        live: Option<Arc<LiveLog>>,
    ) -> RunOutcome {
        let out = self.run_inner(id, bundle, spec, wall, output_cap, live.clone());
        if let Some(l) = live {
            l.finish();
        }
        out
    }

    fn run_inner(
        &self,
        id: &str,
        bundle: &Path,
        spec: &WorkloadSpec,
        wall: Duration,
        output_cap: u64,
        live: Option<Arc<LiveLog>>,
    ) -> RunOutcome {
        let started = Instant::now();
        let mut out = RunOutcome::default();
        if let Err(e) = self.prepare(id, bundle, spec) {
            out.start_error = Some(e);
            return out;
        }
        let child = self
            .cmd()
            .args(["run", "--keep", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                out.start_error = Some(format!("cannot start runc: {e}"));
                let _ = std::fs::remove_dir_all(bundle);
                return out;
            }
        };
        let used = Arc::new(AtomicU64::new(0));
        let over = Arc::new(AtomicBool::new(false));
        let reader = |pipe: Option<Box<dyn Read + Send>>| {
            let (used, over, live) = (used.clone(), over.clone(), live.clone());
            let buf = Arc::new(Mutex::new(Vec::new()));
            let b = buf.clone();
            let h = std::thread::spawn(move || {
                let Some(mut pipe) = pipe else { return };
                let mut chunk = [0u8; 8192];
                loop {
                    let n = match pipe.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let before = used.fetch_add(n as u64, Ordering::SeqCst);
                    let take = n.min(output_cap.saturating_sub(before) as usize);
                    if let Ok(mut v) = b.lock() {
                        v.extend_from_slice(&chunk[..take]);
                    }
                    if let Some(l) = &live {
                        l.write(&chunk[..take]);
                    }
                    if take < n {
                        over.store(true, Ordering::SeqCst);
                        // Keep draining so runc never blocks on a full pipe; the main loop
                        // kills the container.
                    }
                }
            });
            (h, buf)
        };
        let (h_out, b_out) = reader(child.stdout.take().map(|p| Box::new(p) as _));
        let (h_err, b_err) = reader(child.stderr.take().map(|p| Box::new(p) as _));
        let deadline = started + wall;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) => {}
                Err(_) => break None,
            }
            if over.load(Ordering::SeqCst) {
                out.stopped = Some(Stopped::Output);
                self.destroy_keep_cgroup_info(id, &mut out);
                break child.wait().ok();
            }
            if Instant::now() >= deadline {
                out.stopped = Some(Stopped::WallTime);
                self.destroy_keep_cgroup_info(id, &mut out);
                break child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let oom = oom_fired(&spec.cgroup);
        self.destroy(id);
        let _ = h_out.join();
        let _ = h_err.join();
        let _ = std::fs::remove_dir_all(bundle);
        out.wall_ms = started.elapsed().as_millis() as u64;
        out.stdout = std::mem::take(&mut *b_out.lock().unwrap_or_else(|e| e.into_inner()));
        out.stderr = std::mem::take(&mut *b_err.lock().unwrap_or_else(|e| e.into_inner()));
        out.truncated = over.load(Ordering::SeqCst);
        if let Some(st) = status {
            use std::os::unix::process::ExitStatusExt;
            // runc run returns the container's exit status, 128+N for a signal.
            if let Some(code) = st.code() {
                if code > 128 && code < 128 + 65 {
                    out.signal = Some(code - 128);
                } else {
                    out.exit_code = Some(code);
                }
            } else {
                out.signal = st.signal();
            }
        }
        if out.stopped.is_none() && oom {
            out.stopped = Some(Stopped::Memory);
        }
        if out.stopped.is_none() && out.signal == Some(libc::SIGXFSZ) {
            out.stopped = Some(Stopped::FileSize);
        }
        if out.stopped.is_none() && out.exit_code == Some(128 + libc::SIGXFSZ) {
            out.stopped = Some(Stopped::FileSize);
        }
        // runc itself failed before the workload ran (its own errors go to stderr).
        if out.stopped.is_none() && out.exit_code == Some(1) && runc_failed(&out.stderr) {
            out.start_error = Some(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        out
    }

    fn destroy_keep_cgroup_info(&self, id: &str, _out: &mut RunOutcome) {
        let _ = self
            .cmd()
            .args(["kill", "--all", id, "KILL"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    pub(crate) fn prepare(
        &self,
        id: &str,
        bundle: &Path,
        spec: &WorkloadSpec,
    ) -> Result<(), String> {
        if !valid_id(id) {
            return Err(format!("bad container id {id:?}"));
        }
        std::fs::create_dir_all(&self.state_root)
            .map_err(|e| format!("runc state {}: {e}", self.state_root.display()))?;
        // A container left by a crashed miner with the same id goes first.
        self.destroy(id);
        let _ = std::fs::remove_dir_all(bundle);
        std::fs::create_dir_all(bundle).map_err(|e| format!("bundle: {e}"))?;
        let config = spec.build()?;
        config
            .save(bundle.join("config.json"))
            .map_err(|e| format!("config.json: {e}"))?;
        Ok(())
    }
}

fn runc_failed(stderr: &[u8]) -> bool {
    let s = String::from_utf8_lossy(stderr);
    s.contains("runc run failed") || s.contains("level=error")
}

/// Container ids: what runc accepts and nothing a path could abuse.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether the kernel's OOM killer fired in the v1 memory cgroup `cgroup`.
fn oom_fired(cgroup: &str) -> bool {
    let base = Path::new("/sys/fs/cgroup/memory").join(cgroup.trim_start_matches('/'));
    if let Ok(s) = std::fs::read_to_string(base.join("memory.oom_control")) {
        for l in s.lines() {
            if let Some(n) = l.strip_prefix("oom_kill ") {
                if n.trim().parse::<u64>().unwrap_or(0) > 0 {
                    return true;
                }
            }
        }
    }
    // cgroup v2
    let v2 = Path::new("/sys/fs/cgroup").join(cgroup.trim_start_matches('/'));
    if let Ok(s) = std::fs::read_to_string(v2.join("memory.events")) {
        for l in s.lines() {
            if let Some(n) = l.strip_prefix("oom_kill ") {
                return n.trim().parse::<u64>().unwrap_or(0) > 0;
            }
        }
    }
    false
}

/// `UNET_RUNC`, else `runc` on `PATH`, else the usual places.
pub fn find_runc() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("UNET_RUNC") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join("runc"))
        .find(|p| p.is_file())
}

/// Creates (if missing) a writable volume directory owned by the workload's mapped root
/// (`ids.host_base`), mode 0700: only that uid range can read it, not another lease's.
pub fn prepare_volume(dir: &Path, ids: crate::IdRange) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("volume {}: {e}", dir.display()))?;
    std::os::unix::fs::chown(dir, Some(ids.host_base), Some(ids.host_base))
        .map_err(|e| format!("volume {}: chown: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("volume {}: {e}", dir.display()))
}
