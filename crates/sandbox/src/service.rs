//! A workload that runs until it is stopped (a renter's service), in the same sandbox as a
//! batch job: the same spec, `runc run` in the foreground with stdout and stderr read into
//! a [`LiveLog`], no wall time. [`ServiceContainer::stop`] (or dropping it) kills every
//! process of the container and deletes it with its cgroups.

use crate::{log::LiveLog, runner::Runtime, spec::WorkloadSpec};
use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

/// How long a container may take to reach `running`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running service container.
#[derive(Debug)]
pub struct ServiceContainer {
    rt: Runtime,
    id: String,
    bundle: PathBuf,
    child: Option<Child>,
    pid: u32,
    /// The container's network namespace, held open from the moment its init was found, so
    /// forwarded connections always reach this container's namespace even if the pid is
    /// reused after it exits.
    netns: Option<Arc<std::fs::File>>,
    log: Arc<LiveLog>,
    exit: Option<i32>,
    /// The lease's volume, kept mounted while the service runs (dropped after the container
    /// is stopped: fields drop after `Drop::drop`).
    volume: Option<crate::volume::MountedVolume>,
    /// Its network with egress on, taken down after the container (like `volume`).
    network: Option<crate::egress::Attached>,
}

impl Runtime {
    /// Starts `spec` as container `id` (bundle directory `bundle`), its output going to
    /// `log`; returns once its init runs, with the init's host pid. A container that does
    /// not start is taken down and its error returned (runc's own message included).
    pub fn start_service(
        &self,
        id: &str,
        bundle: &Path,
        spec: &WorkloadSpec,
        log: Arc<LiveLog>,
    ) -> Result<ServiceContainer, String> {
        self.prepare(id, bundle, spec)?;
        let mut child = self
            .cmd()
            .args(["run", "--keep", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start runc: {e}"))?;
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    log.write(&chunk[..n]);
                }
            });
        }
        let mut svc = ServiceContainer {
            rt: self.clone(),
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            child: Some(child),
            pid: 0,
            netns: None,
            log,
            exit: None,
            volume: None,
            network: None,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(pid) = self.running_pid(id) {
                // Open the namespace, then check the pid is still this container's init: the
                // namespace held is the container's, not a later process's with that pid.
                let ns = crate::netns::open(pid);
                if let (Ok(ns), Some(again)) = (ns, self.running_pid(id)) {
                    if again == pid {
                        svc.pid = pid;
                        svc.netns = Some(Arc::new(ns));
                        return Ok(svc);
                    }
                }
            }
            if svc.has_exited() || Instant::now() >= deadline {
                std::thread::sleep(Duration::from_millis(50));
                let out = svc.log.read(0, 4096);
                let text = String::from_utf8_lossy(&out.data).trim().to_string();
                svc.stop();
                return Err(if text.is_empty() {
                    format!("the container did not start ({:?})", svc.exit)
                } else {
                    format!("the container did not start: {text}")
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The host pid of container `id`'s init while it is running.
    pub fn running_pid(&self, id: &str) -> Option<u32> {
        let out = self
            .cmd()
            .args(["state", id])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        if v["status"] != "running" {
            return None;
        }
        v["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0)
    }

    /// Ids of the containers in this runtime's state whose id starts with `prefix` (left
    /// by a miner that did not stop cleanly).
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let Ok(out) = self
            .cmd()
            .args(["list", "--format", "json"])
            .stderr(Stdio::null())
            .output()
        else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str())
            .filter(|id| id.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }
}

impl ServiceContainer {
    /// The host pid of the container's init.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Keeps `volume` mounted until this service is stopped and dropped.
    pub fn hold_volume(&mut self, volume: crate::volume::MountedVolume) {
        self.volume = Some(volume);
    }

    /// Keeps the workload's egress network until this service is stopped and dropped.
    pub fn hold_network(&mut self, network: crate::egress::Attached) {
        self.network = Some(network);
    }

    /// The container's network namespace (open since the container started).
    pub fn netns(&self) -> Option<Arc<std::fs::File>> {
        self.netns.clone()
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its output so far.
    pub fn log(&self) -> &Arc<LiveLog> {
        &self.log
    }

    /// Whether the container's init has ended (then [`Self::exit_code`] says how).
    pub fn has_exited(&mut self) -> bool {
        if self.exit.is_some() {
            return true;
        }
        let Some(c) = self.child.as_mut() else {
            return true;
        };
        match c.try_wait() {
            Ok(Some(st)) => {
                self.exit = Some(st.code().unwrap_or(-1));
                true
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// The status `runc run` returned (the init's exit status, 128+N for signal N).
    pub fn exit_code(&self) -> Option<i32> {
        self.exit
    }

    /// Kills every process of the container and deletes it. Idempotent.
    pub fn stop(&mut self) {
        self.rt.destroy(&self.id);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            if let Ok(st) = c.wait() {
                self.exit.get_or_insert(st.code().unwrap_or(-1));
            }
        }
        self.log.finish();
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}

impl Drop for ServiceContainer {
    fn drop(&mut self) {
        self.stop();
    }
}
