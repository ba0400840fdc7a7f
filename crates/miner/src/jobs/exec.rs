//! Bounded machine time: one command (argv, no shell) in its own fresh working directory,
//! with a wall-time limit, an address-space limit (`RLIMIT_AS`), a file-size limit
//! (`RLIMIT_FSIZE`) and a cap on captured output.
//!
//! The command starts in a new process group with an empty environment (only `PATH`, `HOME`
//! = its working directory, `TMPDIR` = the same), stdin from `/dev/null`. When it runs past
//! its wall time or its output passes the cap, the whole process group is SIGKILLed and the
//! job is reported `limit_exceeded` with the limit named; it never hangs the miner. When the
//! command ends, anything left in its process group is killed too.
//!
//! Memory: `RLIMIT_AS` makes allocations beyond the limit fail inside the job; what the
//! program then does is its own business (most abort or exit non-zero). The job is reported
//! `limit_exceeded` / `memory` when it ended abnormally and either its memory (address space
//! sampled every 10 ms, peak RSS from `wait4`) reached half the limit (allocators grow by
//! doubling, so the failing request is often the one that would have passed it) or its
//! stderr carries a standard out-of-memory message; otherwise `failed` with its exit status.

use serde::{Deserialize, Serialize};
use std::{
    io::Read,
    path::Path,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

/// Limits of one command. Missing fields take the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecLimits {
    /// Wall time, milliseconds.
    pub wall_ms: u64,
    /// Address space of each process of the job, MiB (`RLIMIT_AS`).
    pub memory_mib: u64,
    /// Stdout and stderr captured together, bytes.
    pub output_bytes: u64,
    /// Largest file the job may write, bytes (`RLIMIT_FSIZE`).
    pub file_bytes: u64,
}

impl Default for ExecLimits {
    fn default() -> Self {
        Self {
            wall_ms: 60_000,
            memory_mib: 1024,
            output_bytes: 1 << 20,
            file_bytes: 64 << 20,
        }
    }
}

impl ExecLimits {
    /// The most a miner allows by default (`MinerJobsConfig::max_exec`).
    pub fn max() -> Self {
        Self {
            wall_ms: 600_000,
            memory_mib: 16_384,
            output_bytes: 16 << 20,
            file_bytes: 1 << 30,
        }
    }

    /// Refuses limits of zero or above `max` (named in the error).
    pub fn check(&self, max: &ExecLimits) -> Result<(), String> {
        for (name, v, m) in [
            ("wall_ms", self.wall_ms, max.wall_ms),
            ("memory_mib", self.memory_mib, max.memory_mib),
            ("output_bytes", self.output_bytes, max.output_bytes),
            ("file_bytes", self.file_bytes, max.file_bytes),
        ] {
            if v == 0 || v > m {
                return Err(format!("limit {name} = {v} must be within 1..={m}"));
            }
        }
        Ok(())
    }
}

/// Which limit stopped a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    WallTime,
    Memory,
    Output,
    FileSize,
}

/// What happened to the command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The limit that stopped it, if any.
    pub limit: Option<Limit>,
    /// Exit code when it exited normally.
    pub exit_code: Option<i32>,
    /// Signal that ended it, if any.
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The output cap cut stdout/stderr.
    pub truncated: bool,
    pub wall_ms: u64,
    /// Could not be started at all (not found, not executable, ...).
    pub spawn_error: Option<String>,
}

impl ExecOutcome {
    /// Exited with status 0 within its limits.
    pub fn succeeded(&self) -> bool {
        self.limit.is_none() && self.exit_code == Some(0) && self.spawn_error.is_none()
    }
}

const OOM_MARKERS: &[&str] = &[
    "memory allocation of",
    "Cannot allocate memory",
    "MemoryError",
    "out of memory",
    "std::bad_alloc",
];

fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Virtual memory size of `pid` in bytes (Linux `/proc`), if readable.
fn vm_size(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmSize:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs `argv` in `workdir` (which must exist and be empty) under `limits`. Blocks until the
/// command ends or is stopped; always returns within the wall time plus a short grace.
pub fn run(argv: &[String], workdir: &Path, limits: &ExecLimits) -> ExecOutcome {
    let started = Instant::now();
    let mut outcome = ExecOutcome {
        limit: None,
        exit_code: None,
        signal: None,
        stdout: Vec::new(),
        stderr: Vec::new(),
        truncated: false,
        wall_ms: 0,
        spawn_error: None,
    };
    let Some(program) = argv.first() else {
        outcome.spawn_error = Some("empty argv".into());
        return outcome;
    };
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .current_dir(workdir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", workdir)
        .env("TMPDIR", workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mem = limits.memory_mib.saturating_mul(1 << 20);
    let fsize = limits.file_bytes;
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec only async-signal-safe calls (setpgid, setrlimit)
        // are made, on stack values.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // If the miner dies, the command dies with it (the forking thread waits for
                // the command, so it outlives it).
                #[cfg(target_os = "linux")]
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                for (res, v) in [
                    (libc::RLIMIT_AS, mem),
                    (libc::RLIMIT_FSIZE, fsize),
                    (libc::RLIMIT_CORE, 0),
                ] {
                    let lim = libc::rlimit {
                        rlim_cur: v as libc::rlim_t,
                        rlim_max: v as libc::rlim_t,
                    };
                    if libc::setrlimit(res, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            outcome.spawn_error = Some(format!("cannot start {program:?}: {e}"));
            outcome.wall_ms = started.elapsed().as_millis() as u64;
            return outcome;
        }
    };
    let pid = child.id();
    let pgid = i32::try_from(pid).unwrap_or(0);

    // Readers: stdout and stderr share one output budget; passing it kills the group.
    let used = Arc::new(AtomicU64::new(0));
    let over = Arc::new(AtomicBool::new(false));
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        let used = used.clone();
        let over = over.clone();
        let cap = limits.output_bytes;
        let buf = Arc::new(Mutex::new(Vec::new()));
        let out = buf.clone();
        let handle = std::thread::spawn(move || {
            let Some(mut pipe) = pipe else { return };
            let mut chunk = [0u8; 8192];
            loop {
                let n = match pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let before = used.fetch_add(n as u64, Ordering::SeqCst);
                let room = cap.saturating_sub(before) as usize;
                let take = n.min(room);
                if let Ok(mut b) = out.lock() {
                    b.extend_from_slice(&chunk[..take]);
                }
                if take < n {
                    over.store(true, Ordering::SeqCst);
                    kill_group(pgid);
                    return;
                }
            }
        });
        (handle, buf)
    };
    let (h_out, b_out) = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let (h_err, b_err) = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );

    let deadline = started + Duration::from_millis(limits.wall_ms);
    let mut peak = 0u64;
    // wait4 rather than Child::try_wait: it also gives the child's peak RSS.
    let wait = |flags: i32, peak: &mut u64| -> Option<i32> {
        let mut status = 0i32;
        // SAFETY: an all-zero rusage is a valid value; wait4 writes into both out-params.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: plain syscall on our own child's pid with valid pointers.
        let r = unsafe { libc::wait4(pgid, &mut status, flags, &mut ru) };
        if r == pgid {
            *peak = (*peak).max(
                u64::try_from(ru.ru_maxrss)
                    .unwrap_or(0)
                    .saturating_mul(1024),
            );
            Some(status)
        } else {
            None
        }
    };
    let status = loop {
        if let Some(st) = wait(libc::WNOHANG, &mut peak) {
            break Some(st);
        }
        if let Some(v) = vm_size(pid) {
            peak = peak.max(v);
        }
        if Instant::now() >= deadline {
            outcome.limit = Some(Limit::WallTime);
            kill_group(pgid);
            break wait(0, &mut peak);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(child);
    // Whatever the command left running in its group goes too, so the pipes close.
    kill_group(pgid);
    let _ = h_out.join();
    let _ = h_err.join();
    outcome.wall_ms = started.elapsed().as_millis() as u64;
    outcome.stdout = std::mem::take(&mut *b_out.lock().unwrap_or_else(|e| e.into_inner()));
    outcome.stderr = std::mem::take(&mut *b_err.lock().unwrap_or_else(|e| e.into_inner()));
    outcome.truncated = over.load(Ordering::SeqCst);
    if let Some(st) = status {
        if libc::WIFEXITED(st) {
            outcome.exit_code = Some(libc::WEXITSTATUS(st));
        } else if libc::WIFSIGNALED(st) {
            outcome.signal = Some(libc::WTERMSIG(st));
        }
    }
    if outcome.limit.is_none() && outcome.truncated {
        outcome.limit = Some(Limit::Output);
    }
    // SIGXFSZ on the command itself, or a shell reporting it for the command it ran.
    if outcome.limit.is_none()
        && (outcome.signal == Some(libc::SIGXFSZ) || outcome.exit_code == Some(128 + libc::SIGXFSZ))
    {
        outcome.limit = Some(Limit::FileSize);
    }
    let abnormal = outcome.exit_code != Some(0);
    if outcome.limit.is_none() && abnormal {
        let stderr = String::from_utf8_lossy(&outcome.stderr);
        let near = peak.saturating_mul(2) >= mem;
        if near || OOM_MARKERS.iter().any(|m| stderr.contains(m)) {
            outcome.limit = Some(Limit::Memory);
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runs_in_its_own_directory_with_a_clean_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("UNET_SECRET_TEST_VAR", "leak");
        let out = run(
            &argv(&[
                "/bin/sh",
                "-c",
                "pwd; env; echo err >&2; echo x > f; exit 3",
            ]),
            dir.path(),
            &ExecLimits::default(),
        );
        let stdout = String::from_utf8(out.stdout.clone()).unwrap();
        assert!(
            stdout.starts_with(&format!("{}\n", dir.path().display())),
            "{stdout}"
        );
        assert!(!stdout.contains("UNET_SECRET_TEST_VAR"), "{stdout}");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.limit, None);
        assert!(!out.succeeded());
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"x\n");
    }

    #[test]
    fn wall_time_is_enforced_on_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let limits = ExecLimits {
            wall_ms: 300,
            ..Default::default()
        };
        let t = Instant::now();
        // A child in the background holding the pipe open must not keep the job alive.
        let out = run(
            &argv(&["/bin/sh", "-c", "sleep 30 & sleep 30"]),
            dir.path(),
            &limits,
        );
        assert_eq!(out.limit, Some(Limit::WallTime));
        assert_eq!(out.signal, Some(libc::SIGKILL));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(out.wall_ms >= 300);
    }

    #[test]
    fn output_cap_stops_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let limits = ExecLimits {
            output_bytes: 1000,
            ..Default::default()
        };
        let out = run(&argv(&["/usr/bin/yes"]), dir.path(), &limits);
        assert_eq!(out.limit, Some(Limit::Output));
        assert!(out.truncated);
        assert_eq!(out.stdout.len() + out.stderr.len(), 1000);
    }

    #[test]
    fn memory_limit_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let limits = ExecLimits {
            memory_mib: 64,
            ..Default::default()
        };
        // `head -c` of 200 MiB into a shell variable: the shell's allocation fails.
        let out = run(
            &argv(&[
                "/bin/sh",
                "-c",
                "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}",
            ]),
            dir.path(),
            &limits,
        );
        assert_eq!(out.limit, Some(Limit::Memory), "{out:?}");
        assert!(!out.succeeded());
    }

    #[test]
    fn file_size_limit_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let limits = ExecLimits {
            file_bytes: 4096,
            ..Default::default()
        };
        let out = run(
            &argv(&["/bin/sh", "-c", "head -c 100000 /dev/zero > big"]),
            dir.path(),
            &limits,
        );
        // The writer (head) gets SIGXFSZ; the shell exits with 128 + SIGXFSZ.
        assert_eq!(out.limit, Some(Limit::FileSize), "{out:?}");
        assert!(std::fs::metadata(dir.path().join("big")).unwrap().len() <= 4096);
    }

    #[test]
    fn missing_program_and_bad_limits_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(
            &argv(&["/nonexistent/prog"]),
            dir.path(),
            &ExecLimits::default(),
        );
        assert!(out.spawn_error.unwrap().contains("/nonexistent/prog"));
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
}
