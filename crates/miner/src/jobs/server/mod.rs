//! The miner's job endpoint (axum).
//!
//! ```text
//! GET  /v1/info        unauthenticated: chain id, chips managed here, limits, queue
//! POST /v1/jobs        signed; body = JobRequest (JSON) -> 202 JobView (queued), or 200
//!                      with the existing job when this exact body was submitted before
//! GET  /v1/jobs/{id}   signed (empty body) -> JobView (queued | running | done + receipt)
//! POST /v1/images      signed; body = OCI image-layout archive -> {"digest", "config"}
//!                      (see [`super::images`])
//! GET  /v1/jobs/{id}/logs/{offset}   signed -> the job's live output (long poll)
//! POST /v1/service, GET /v1/service, POST /v1/service/stop, GET /v1/service/logs/{offset}
//!                      signed: the lease's service (see `services` and [`super::services`])
//! GET  /v1/volume      signed -> a tar of the lease's volume (while it serves and during its
//!                      grace period; see [`super::volumes`])
//! ```
//!
//! Refusals are JSON `{"error": {"code", "message"}}` with a 4xx/5xx status; see
//! docs/jobs.md for the codes. Nothing a client sends can panic the server.
//!
//! This module holds the configuration, the shared state, start-up and request
//! authentication (signature, single use, the lease on chain); [`chain`] what the server
//! reads from the chain; `handlers` the HTTP handlers (validation, enqueueing, answers from
//! the live table and the stored results); `runner` the workers that run jobs, sign their
//! receipts and store their results.

use super::{
    auth::{AuthError, SignedHeaders},
    exec::{self, ExecLimits},
    replay::ReplayGuard,
    JobSpec,
};
use crate::backend::ChipBackend;
use anyhow::Context as _;
use axum::{
    extract::DefaultBodyLimit,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, OnceCell};
use tracing::info;
use unet_api::market::LeaseState;
use unet_renter::{
    job::{ErrorReply, JobState},
    lease::close_reason_name,
};
use unet_types::chip::ChipId;

/// Longest accepted request body (an ONNX model travels in it, base64).
pub const DEFAULT_MAX_BODY: usize = 64 << 20;
/// Most arguments of an exec job.
pub const MAX_ARGS: usize = 256;
/// Longest argument of an exec job, bytes.
pub const MAX_ARG_LEN: usize = 4096;

pub use unet_renter::lease::LeaseInfo;

pub mod chain;
mod handlers;
mod runner;
mod services;
#[cfg(test)]
pub(crate) mod tests;
mod volume;

pub use chain::{ChainUnavailable, ChainView, RpcChain};
use handlers::{get_handler, info_handler, submit_handler};
use runner::{prune, worker};

/// How the job server runs.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// Where the job API listens.
    pub listen: SocketAddr,
    /// Job working directories (`run/`) and finished results (`results/`).
    pub dir: PathBuf,
    /// Jobs running at once.
    pub workers: usize,
    /// Jobs waiting at most (beyond that: `queue_full`).
    pub queue: usize,
    /// Longest accepted request body, bytes (default [`DEFAULT_MAX_BODY`]).
    pub max_body: usize,
    /// Upper bounds of what a job may ask for.
    pub max_exec: ExecLimits,
    /// Wall time of an inference when the job names none, ms.
    pub onnx_wall_ms: u64,
    /// The most wall time an inference job may name, ms.
    pub max_onnx_wall_ms: u64,
    /// Finished results are deleted after this long.
    pub retention: Duration,
    /// Where and how jobs run in the sandbox (runc).
    pub sandbox: exec::SandboxConfig,
    /// Longest uploaded image archive, bytes.
    pub max_image_bytes: usize,
    /// Registries (`host:port`) pulled from over plain HTTP instead of HTTPS.
    pub insecure_registries: Vec<String>,
    /// Renters' services: port range, lease watch.
    pub services: super::services::ServicesConfig,
}

impl JobsConfig {
    /// Defaults for a server listening on `listen` with its files under `dir` (one worker per
    /// core).
    pub fn new(listen: SocketAddr, dir: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            listen,
            // Leave a core to the liveness daemon.
            workers: cores.saturating_sub(1).max(1),
            queue: 64,
            max_body: DEFAULT_MAX_BODY,
            max_exec: ExecLimits::max(),
            onnx_wall_ms: 60_000,
            max_onnx_wall_ms: 600_000,
            retention: Duration::from_secs(7 * 24 * 3600),
            sandbox: exec::SandboxConfig::for_jobs_dir(&dir),
            max_image_bytes: super::images::DEFAULT_MAX_IMAGE_BYTES,
            insecure_registries: Vec::new(),
            services: Default::default(),
            dir,
        }
    }
}

struct Queued {
    job_id: String,
    job_hash: [u8; 32],
    lease_id: u64,
    chip: ChipId,
    spec: JobSpec,
}

pub(super) struct Shared {
    pub(super) cfg: JobsConfig,
    backend: Arc<dyn ChipBackend>,
    chips: BTreeSet<String>,
    chain: Arc<dyn ChainView>,
    chain_id: OnceCell<u64>,
    replay: ReplayGuard,
    /// Jobs not finished yet: id -> (lease, renter, state: queued or running). Finished
    /// jobs live on disk.
    live: Mutex<HashMap<String, (u64, String, JobState)>>,
    /// Live output of jobs, queued to a few minutes after they end: id -> (lease, log,
    /// when it ended).
    logs: Mutex<HashMap<String, JobLog>>,
    queue: mpsc::Sender<Queued>,
    services: Arc<super::services::Services>,
}

type JobLog = (u64, Arc<unet_sandbox::LiveLog>, Option<std::time::Instant>);

/// A refusal: HTTP status, code, message.
#[derive(Debug)]
pub struct ApiError(StatusCode, &'static str, String);

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: String) -> Self {
        Self(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&ErrorReply::new(self.1, self.2)).unwrap_or_default(),
        )
            .into_response()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::Replay => StatusCode::CONFLICT,
            AuthError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        ApiError(status, e.code(), e.to_string())
    }
}

fn unavailable(e: ChainUnavailable) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "node_unavailable",
        format!("cannot read the chain: {}", e.0),
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn json_ok(status: StatusCode, v: &impl serde::Serialize) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(v).unwrap_or_else(|_| "{}".into()),
    )
        .into_response()
}

/// A running job server; dropping it does not stop it (it lives as long as the runtime).
pub struct JobServer {
    /// The address the server actually listens on (the port chosen when `listen` had port 0).
    pub local_addr: SocketAddr,
    services: Arc<super::services::Services>,
}

impl JobServer {
    /// Binds `cfg.listen` and starts serving and the workers.
    pub async fn start(
        cfg: JobsConfig,
        backend: Arc<dyn ChipBackend>,
        chain: Arc<dyn ChainView>,
    ) -> anyhow::Result<Self> {
        for sub in ["run", "results"] {
            let d = cfg.dir.join(sub);
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&cfg.dir, std::fs::Permissions::from_mode(0o700))?;
        }
        // Working directories of jobs cut short by a restart.
        if let Ok(entries) = std::fs::read_dir(cfg.dir.join("run")) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let services = super::services::Services::new(
            cfg.services.clone(),
            cfg.sandbox.clone(),
            chain.clone(),
        );
        tokio::task::spawn_blocking({
            let services = services.clone();
            move || services.remove_leftovers()
        })
        .await?;
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        let chips = backend
            .chips()
            .iter()
            .map(|c| hex::encode(c.chip_id))
            .collect();
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            backend,
            chips,
            chain,
            chain_id: OnceCell::new(),
            replay: ReplayGuard::default(),
            live: Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
            queue: tx,
            services: services.clone(),
        });
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..cfg.workers.max(1) {
            tokio::spawn(worker(shared.clone(), rx.clone()));
        }
        tokio::spawn(prune(shared.clone()));
        tokio::spawn({
            let (sb, chain) = (cfg.sandbox.clone(), shared.chain.clone());
            async move {
                loop {
                    tokio::time::sleep(super::volumes::SWEEP_EVERY).await;
                    super::volumes::sweep(&sb, chain.as_ref()).await;
                    // The egress firewall back in place if something flushed it.
                    if let Some(egress) = sb.egress.clone() {
                        match tokio::task::spawn_blocking(move || egress.ensure_installed()).await {
                            Ok(Ok(true)) => tracing::warn!("egress firewall was gone: reinstalled"),
                            Ok(Err(e)) => tracing::warn!(error = %e, "egress firewall"),
                            _ => {}
                        }
                    }
                }
            }
        });
        let app = Router::new()
            .route("/v1/info", get(info_handler))
            .route("/v1/jobs", post(submit_handler))
            .route("/v1/jobs/{id}", get(get_handler))
            .route(
                "/v1/jobs/{id}/logs/{offset}",
                get(services::job_logs_handler),
            )
            .route(
                "/v1/service",
                post(services::start_handler).get(services::status_handler),
            )
            .route("/v1/service/stop", post(services::stop_handler))
            .route("/v1/volume", get(volume::volume_handler))
            .route(
                "/v1/service/logs/{offset}",
                get(services::service_logs_handler),
            )
            .route(
                "/v1/images",
                post(super::images::upload_handler)
                    .layer(DefaultBodyLimit::max(cfg.max_image_bytes)),
            )
            .layer(DefaultBodyLimit::max(cfg.max_body))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("binding the job endpoint on {}", cfg.listen))?;
        let local_addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "job server stopped");
            }
        });
        info!(%local_addr, workers = cfg.workers, queue = cfg.queue, "serving jobs");
        Ok(Self {
            local_addr,
            services,
        })
    }

    /// Stops every renter's service (call it when the miner shuts down); returns once
    /// their containers are gone.
    pub async fn stop_services(&self) {
        self.services.stop_all("miner_shutdown").await;
    }
}

impl Shared {
    async fn chain_id(&self) -> Result<u64, ApiError> {
        self.chain_id
            .get_or_try_init(|| self.chain.chain_id())
            .await
            .copied()
            .map_err(unavailable)
    }

    fn result_path(&self, job_id: &str) -> PathBuf {
        self.cfg.dir.join("results").join(format!("{job_id}.json"))
    }

    /// Authenticates a request: signature, then the lease on chain and its renter.
    /// `for_submit`: the lease must also be open and not past its end.
    pub(super) async fn authenticate(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        body: &[u8],
        for_submit: bool,
    ) -> Result<(SignedHeaders, LeaseInfo), ApiError> {
        let h = SignedHeaders::parse(|n| headers.get(n).and_then(|v| v.to_str().ok()))?;
        let chain_id = self.chain_id().await?;
        let now = now_ms();
        h.verify(chain_id, method, path, body, now)?;
        let lease = self
            .chain
            .lease(h.lease_id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                ApiError(
                    StatusCode::NOT_FOUND,
                    "unknown_lease",
                    format!("no lease {} on chain", h.lease_id),
                )
            })?;
        let signer = unet_types::hexser::to_hex(&h.key);
        if signer != lease.renter {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "not_renter",
                format!(
                    "request signed by {signer}, but lease {} is rented by {}",
                    lease.id, lease.renter
                ),
            ));
        }
        if for_submit {
            if lease.status != LeaseState::Open {
                return Err(ApiError(
                    StatusCode::FORBIDDEN,
                    "lease_closed",
                    format!(
                        "lease {} is closed ({})",
                        lease.id,
                        lease
                            .close_reason
                            .map_or_else(|| "closed".to_string(), close_reason_name)
                    ),
                ));
            }
            if lease.height >= lease.end {
                return Err(ApiError(
                    StatusCode::FORBIDDEN,
                    "lease_expired",
                    format!(
                        "lease {} ended at height {} (chain at {})",
                        lease.id, lease.end, lease.height
                    ),
                ));
            }
        }
        self.replay.check_and_record(&h.key, h.nonce, now)?;
        Ok((h, lease))
    }
}
