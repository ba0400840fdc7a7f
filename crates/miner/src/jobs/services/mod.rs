//! Renters' services: an image that runs in the sandbox for the life of the lease, one per
//! lease, with one container port forwarded from a host port ([`forward`]).
//!
//! A service runs in the same sandbox as a batch job ([`super::exec::prepare`]: user, pid,
//! mount, ipc, uts, cgroup and network namespaces, no capabilities, seccomp, cgroup limits,
//! the lease's volume at `/work`); its network namespace keeps only loopback (with the
//! provider's egress on, also its veth to the outside, [`exec::SandboxConfig::egress`]). The miner
//! listens on a port of its configured range and, for each accepted connection, connects
//! into the container's namespace ([`unet_sandbox::netns`]) and copies bytes both ways.
//!
//! A service stops when its renter stops it, when its command exits, when the lease is
//! closed (by the renter, the provider, an exhausted deposit or an unresponsive chip) or
//! past its end — a watcher reads the lease from the chain every `watch_every` — and when
//! the miner shuts down. A chain that cannot be read does not stop it. Services are not
//! restarted after a miner restart: the miner removes the containers a crashed run left
//! ([`Services::remove_leftovers`]) and the renter starts the service again (its volume is
//! kept).

pub mod forward;

use super::{exec, server::ChainView};
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::watch;
use tracing::{info, warn};
use unet_api::market::LeaseState;
use unet_renter::service::{ServiceRequest, ServiceState, ServiceView};
use unet_sandbox::{LiveLog, ServiceContainer};

/// Container ids of services start with this, then a hash of the sandbox directory (two
/// miners on one host never share a container id or cgroup), then the lease.
pub const CONTAINER_PREFIX: &str = "unet-svc-";

/// How services run.
#[derive(Clone, Debug)]
pub struct ServicesConfig {
    /// Host ports given to services, inclusive.
    pub ports: (u16, u16),
    /// The host name renters reach the ports at [default: the host the renter's request
    /// named].
    pub public_host: Option<String>,
    /// How often each service's lease is read from the chain.
    pub watch_every: Duration,
    /// Connections forwarded to one service at once (more are closed at once).
    pub max_connections: usize,
    /// Bytes of a service's newest output kept for `logs`.
    pub log_bytes: usize,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            ports: (28600, 28699),
            public_host: None,
            watch_every: Duration::from_secs(5),
            max_connections: 256,
            log_bytes: 1 << 20,
        }
    }
}

/// Why a service could not start.
#[derive(Debug)]
pub enum StartError {
    /// The lease already runs one.
    AlreadyRunning(u64),
    /// Every port of the range is taken.
    NoPort(u16, u16),
    /// The sandbox refused or the container did not start.
    Failed(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AlreadyRunning(l) => write!(
                f,
                "lease {l} already runs a service; stop it first (`unet service stop`)"
            ),
            Self::NoPort(a, b) => write!(f, "every service port of {a}-{b} is taken"),
            Self::Failed(e) => write!(f, "the service did not start: {e}"),
        }
    }
}

struct Entry {
    view: Mutex<ServiceView>,
    container: Mutex<Option<ServiceContainer>>,
    log: Arc<LiveLog>,
    stop: watch::Sender<bool>,
}

/// The services of this miner, by lease.
pub struct Services {
    cfg: ServicesConfig,
    sandbox: exec::SandboxConfig,
    chain: Arc<dyn ChainView>,
    map: Mutex<HashMap<u64, Arc<Entry>>>,
}

/// What [`Services::start`] needs besides the renter's request.
pub struct StartArgs {
    /// The lease's chip that runs it (hex).
    pub chip: String,
    /// The unpacked image.
    pub image: unet_sandbox::image::Image,
    /// The address the miner listens on (its port is replaced from the range).
    pub bind: IpAddr,
    /// The host name of the endpoint URL.
    pub host: String,
    /// The host GPU of the chip, given to the container.
    pub gpu: Option<u32>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Services {
    /// No services yet.
    pub fn new(
        cfg: ServicesConfig,
        sandbox: exec::SandboxConfig,
        chain: Arc<dyn ChainView>,
    ) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            sandbox,
            chain,
            map: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ServicesConfig {
        &self.cfg
    }

    fn entry(&self, lease: u64) -> Option<Arc<Entry>> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&lease)
            .cloned()
    }

    /// `unet-svc-<hash of the sandbox directory>-`: this miner's service containers.
    pub fn container_prefix(&self) -> String {
        let h = unet_types::sha256(&[self.sandbox.dir.as_os_str().as_encoded_bytes()]);
        format!("{CONTAINER_PREFIX}{}-", hex::encode(&h[..4]))
    }

    /// Removes the containers (services, batch and ONNX jobs) a previous run of the miner
    /// left behind ([`super::exec::remove_leftover_containers`]), then, with egress on, the
    /// workloads' veth pairs and network namespaces it left, and installs the firewall
    /// ([`unet_sandbox::egress`]). Called at start, before any workload of this run.
    pub fn remove_leftovers(&self) {
        for id in super::exec::remove_leftover_containers(&self.sandbox) {
            warn!(container = %id, "removed a container left by a previous run");
        }
        if let Some(egress) = &self.sandbox.egress {
            for left in egress.sweep() {
                warn!(network = %left, "removing a workload network left by a previous run");
            }
            if let Err(e) = egress.install() {
                warn!(error = %e, "egress firewall not installed: workloads will not start");
            }
        }
    }

    /// The view of lease `lease`'s service, if it ever started one.
    pub fn view(&self, lease: u64) -> Option<ServiceView> {
        self.entry(lease)
            .map(|e| e.view.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// The live output of lease `lease`'s service.
    pub fn log(&self, lease: u64) -> Option<Arc<LiveLog>> {
        self.entry(lease).map(|e| e.log.clone())
    }

    /// Starts the service of `req.lease`: reserves the lease, binds a port of the range,
    /// starts the container, then forwards the port and watches the lease.
    pub async fn start(
        self: &Arc<Self>,
        req: ServiceRequest,
        args: StartArgs,
    ) -> Result<ServiceView, StartError> {
        let lease = req.lease;
        let (stop_tx, stop_rx) = watch::channel(false);
        let entry = Arc::new(Entry {
            view: Mutex::new(ServiceView {
                lease_id: lease,
                chip_id: args.chip.clone(),
                state: ServiceState::Starting,
                endpoint: String::new(),
                image: args.image.digest.clone(),
                port: req.port,
                stopped_because: None,
                exit_code: None,
                started_ms: now_ms(),
            }),
            container: Mutex::new(None),
            log: Arc::new(LiveLog::new(self.cfg.log_bytes)),
            stop: stop_tx,
        });
        {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(old) = map.get(&lease) {
                let state = old.view.lock().unwrap_or_else(|e| e.into_inner()).state;
                if state != ServiceState::Stopped {
                    return Err(StartError::AlreadyRunning(lease));
                }
            }
            map.insert(lease, entry.clone());
        }
        let fail = |e: StartError| {
            let mut v = entry.view.lock().unwrap_or_else(|e| e.into_inner());
            v.state = ServiceState::Stopped;
            v.stopped_because = Some("start_failed".into());
            e
        };
        let (a, b) = self.cfg.ports;
        let listener = (a..=b)
            .find_map(|p| std::net::TcpListener::bind((args.bind, p)).ok())
            .ok_or_else(|| fail(StartError::NoPort(a, b)))?;
        let host_port = listener
            .local_addr()
            .map_err(|e| fail(StartError::Failed(e.to_string())))?
            .port();
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
            .map_err(|e| fail(StartError::Failed(e.to_string())))?;
        let sb = self.sandbox.clone();
        let log = entry.log.clone();
        let container = format!("{}{lease}", self.container_prefix());
        let started = tokio::task::spawn_blocking(move || {
            let w = exec::Workload {
                container,
                hostname: "service",
                lease,
                argv: &req.argv,
                env: &req.env,
                image: Some(&args.image),
                program: None,
                memory_bytes: sb.service_memory_mib.saturating_mul(1 << 20),
                file_bytes: 64 << 20,
                gpu: args.gpu,
            };
            let p = exec::prepare(&sb, &w)?;
            let mut started = p.runtime.start_service(&p.id, &p.bundle, &p.spec, log)?;
            started.hold_volume(p.volume);
            if let Some(net) = p.egress {
                started.hold_network(net);
            }
            Ok(started)
        })
        .await
        .map_err(|e| fail(StartError::Failed(e.to_string())))?
        .map_err(|e| fail(StartError::Failed(e)))?;
        let Some(netns) = started.netns() else {
            tokio::task::spawn_blocking(move || drop(started));
            return Err(fail(StartError::Failed(
                "the container's network namespace is not open".into(),
            )));
        };
        let view = {
            let mut v = entry.view.lock().unwrap_or_else(|e| e.into_inner());
            if v.stopped_because.is_some() {
                // Stopped (lease closed, miner shutdown) while it was starting.
                drop(v);
                tokio::task::spawn_blocking(move || drop(started));
                return Err(StartError::Failed("stopped while starting".into()));
            }
            *entry.container.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
            v.state = ServiceState::Running;
            v.endpoint = format!("http://{}:{host_port}", bracket(&args.host));
            v.clone()
        };
        tokio::spawn(forward::serve(
            listener,
            netns,
            view.port,
            self.cfg.max_connections,
            stop_rx.clone(),
        ));
        tokio::spawn(self.clone().watch(lease, stop_rx));
        info!(lease, endpoint = %view.endpoint, image = %view.image, "service started");
        Ok(view)
    }

    /// Stops lease `lease`'s service (`because` is recorded in its view); waits until the
    /// container is gone. `None` when the lease never started one.
    pub async fn stop(&self, lease: u64, because: &str) -> Option<ServiceView> {
        let e = self.entry(lease)?;
        // `stopped_because` marks a stop under way; the state turns `stopped` once the
        // container is gone.
        let container = {
            let mut v = e.view.lock().unwrap_or_else(|e| e.into_inner());
            if v.stopped_because.is_some() {
                return Some(v.clone());
            }
            v.stopped_because = Some(because.to_string());
            e.container.lock().unwrap_or_else(|e| e.into_inner()).take()
        };
        let _ = e.stop.send(true);
        let code = match container {
            Some(mut c) => tokio::task::spawn_blocking(move || {
                c.stop();
                c.exit_code()
            })
            .await
            .ok()
            .flatten(),
            None => None,
        };
        {
            let mut v = e.view.lock().unwrap_or_else(|e| e.into_inner());
            v.state = ServiceState::Stopped;
            if because == "exited" {
                v.exit_code = code;
            }
        }
        info!(lease, because, "service stopped");
        self.view(lease)
    }

    /// Stops every running service (miner shutdown).
    pub async fn stop_all(&self, because: &str) {
        let leases: Vec<u64> = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        for l in leases {
            self.stop(l, because).await;
        }
    }

    /// Until the service stops: every `watch_every`, stops it when its command exited or
    /// its lease is closed or past its end.
    async fn watch(self: Arc<Self>, lease: u64, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.watch_every) => {}
                _ = stop.changed() => return,
            }
            let exited = self.entry(lease).is_some_and(|e| {
                e.container
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                    .is_some_and(|c| c.has_exited())
            });
            if exited {
                self.stop(lease, "exited").await;
                return;
            }
            let reason = match self.chain.lease(lease).await {
                Ok(None) => Some("lease_closed"),
                Ok(Some(l)) if l.status != LeaseState::Open => Some("lease_closed"),
                Ok(Some(l)) if l.height >= l.end => Some("lease_expired"),
                Ok(Some(_)) => None,
                Err(e) => {
                    warn!(lease, error = %e.0, "cannot read the lease; the service keeps running");
                    None
                }
            };
            if let Some(r) = reason {
                self.stop(lease, r).await;
                return;
            }
        }
    }
}

/// An IPv6 literal in brackets for a URL.
fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}
