//! The miner's job endpoint (axum).
//!
//! ```text
//! GET  /v1/info        unauthenticated: chain id, chips managed here, limits, queue
//! POST /v1/jobs        signed; body = JobRequest (JSON) -> 202 JobView (queued), or 200
//!                      with the existing job when this exact body was submitted before
//! GET  /v1/jobs/{id}   signed (empty body) -> JobView (queued | running | done + receipt)
//! POST /v1/images      signed; body = OCI image-layout archive -> {"digest", "config"}
//!                      (see [`super::images`])
//! ```
//!
//! Refusals are JSON `{"error": {"code", "message"}}` with a 4xx/5xx status; see
//! docs/jobs.md for the codes. Nothing a client sends can panic the server.

use super::{
    auth::{AuthError, SignedHeaders},
    exec::{self, ExecLimits},
    onnx, receipt,
    replay::ReplayGuard,
    JobRequest, JobSpec, JobView, Outcome, ResultDoc,
};
use crate::backend::ChipBackend;
use anyhow::Context as _;
use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use base64::Engine as _;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, OnceCell};
use tracing::{info, warn};
use unet_renter::job::Limit;
use unet_types::chip::ChipId;

/// Longest accepted request body (an ONNX model travels in it, base64).
pub const DEFAULT_MAX_BODY: usize = 64 << 20;
/// Most arguments of an exec job, and the longest argument.
pub const MAX_ARGS: usize = 256;
pub const MAX_ARG_LEN: usize = 4096;

pub use unet_renter::lease::LeaseInfo;

/// Why the chain could not be asked.
#[derive(Debug, Clone)]
pub struct ChainUnavailable(pub String);

/// What the job server reads from the chain.
pub trait ChainView: Send + Sync + 'static {
    fn chain_id(&self) -> BoxFuture<'_, Result<u64, ChainUnavailable>>;
    /// `Ok(None)`: no such lease.
    fn lease(&self, id: u64) -> BoxFuture<'_, Result<Option<LeaseInfo>, ChainUnavailable>>;
}

/// The chain through the node API, rotating over several nodes on failure.
pub struct RpcChain {
    clients: Vec<unet_client::Client>,
    next: std::sync::atomic::AtomicUsize,
}

impl RpcChain {
    pub fn new(urls: &[String]) -> Self {
        Self {
            clients: urls.iter().map(unet_client::Client::new).collect(),
            next: Default::default(),
        }
    }

    async fn call(&self, method: &str, params: Value) -> Result<Option<Value>, ChainUnavailable> {
        use std::sync::atomic::Ordering;
        let n = self.clients.len().max(1);
        let mut last = String::from("no node configured");
        for _ in 0..n {
            let i = self.next.load(Ordering::Relaxed) % n;
            let Some(c) = self.clients.get(i) else { break };
            match c.call(method, params.clone()).await {
                Ok(v) => return Ok(Some(v)),
                Err(e) if e.code() == Some(-32004) => return Ok(None),
                Err(e) => {
                    last = format!("{}: {e}", c.url());
                    self.next.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Err(ChainUnavailable(last))
    }
}

impl ChainView for RpcChain {
    fn chain_id(&self) -> BoxFuture<'_, Result<u64, ChainUnavailable>> {
        Box::pin(async move {
            let v = self
                .call("unet_status", json!([]))
                .await?
                .ok_or_else(|| ChainUnavailable("unet_status: not found".into()))?;
            v["chain_id"]
                .as_u64()
                .ok_or_else(|| ChainUnavailable("unet_status has no chain_id".into()))
        })
    }

    fn lease(&self, id: u64) -> BoxFuture<'_, Result<Option<LeaseInfo>, ChainUnavailable>> {
        Box::pin(async move {
            match self.call("unet_getLease", json!({"id": id})).await? {
                None => Ok(None),
                Some(v) => LeaseInfo::from_json(&v)
                    .map(Some)
                    .ok_or_else(|| ChainUnavailable(format!("unet_getLease answer {v}"))),
            }
        })
    }
}

/// How the job server runs.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    pub listen: SocketAddr,
    /// Job working directories (`run/`) and finished results (`results/`).
    pub dir: PathBuf,
    /// Jobs running at once.
    pub workers: usize,
    /// Jobs waiting at most (beyond that: `queue_full`).
    pub queue: usize,
    pub max_body: usize,
    /// Upper bounds of what a job may ask for.
    pub max_exec: ExecLimits,
    /// Wall time of an inference when the job names none, and the most it may name.
    pub onnx_wall_ms: u64,
    pub max_onnx_wall_ms: u64,
    /// Finished results are deleted after this long.
    pub retention: Duration,
    /// Where and how jobs run in the sandbox (runc).
    pub sandbox: exec::SandboxConfig,
    /// Longest uploaded image archive, bytes.
    pub max_image_bytes: usize,
    /// Registries (`host:port`) pulled from over plain HTTP instead of HTTPS.
    pub insecure_registries: Vec<String>,
}

impl JobsConfig {
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
            dir,
        }
    }
}

#[derive(Clone, Debug)]
enum JobState {
    Queued,
    Running,
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
    /// Jobs not finished yet: id -> (lease, renter, state). Finished jobs live on disk.
    live: Mutex<HashMap<String, (u64, String, JobState)>>,
    queue: mpsc::Sender<Queued>,
}

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
            json!({"error": {"code": self.1, "message": self.2}}).to_string(),
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
    pub local_addr: SocketAddr,
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
            queue: tx,
        });
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..cfg.workers.max(1) {
            tokio::spawn(worker(shared.clone(), rx.clone()));
        }
        tokio::spawn(prune(shared.clone()));
        let app = Router::new()
            .route("/v1/info", get(info_handler))
            .route("/v1/jobs", post(submit_handler))
            .route("/v1/jobs/{id}", get(get_handler))
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
        Ok(Self { local_addr })
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
            if lease.status != "open" {
                return Err(ApiError(
                    StatusCode::FORBIDDEN,
                    "lease_closed",
                    format!(
                        "lease {} is closed ({})",
                        lease.id,
                        lease.close_reason.as_deref().unwrap_or("closed")
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

async fn info_handler(State(s): State<Arc<Shared>>) -> Response {
    let chain_id = s.chain_id().await.ok();
    let queued = s
        .live
        .lock()
        .map(|l| {
            l.values()
                .filter(|v| matches!(v.2, JobState::Queued))
                .count()
        })
        .unwrap_or(0);
    json_ok(
        StatusCode::OK,
        &json!({
            "chain_id": chain_id,
            "chips": s.chips,
            "workers": s.cfg.workers,
            "queue_capacity": s.cfg.queue,
            "queued": queued,
            "max_body": s.cfg.max_body,
            "max_exec": s.cfg.max_exec,
            "onnx_wall_ms": s.cfg.onnx_wall_ms,
            "max_onnx_wall_ms": s.cfg.max_onnx_wall_ms,
            "kinds": ["onnx", "exec"],
            "max_image_bytes": s.cfg.max_image_bytes,
        }),
    )
}

fn bad_job(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "bad_job", msg.into())
}

async fn submit_handler(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (h, lease) = s
        .authenticate(&headers, "POST", "/v1/jobs", &body, true)
        .await?;
    let req: JobRequest =
        serde_json::from_slice(&body).map_err(|e| bad_job(format!("job request: {e}")))?;
    if req.lease != h.lease_id {
        return Err(bad_job(format!(
            "the body names lease {}, the signature lease {}",
            req.lease, h.lease_id
        )));
    }
    // The chip: named, or the first of the lease this miner manages.
    let chip_hex = match &req.chip {
        Some(c) => {
            let c = c.to_lowercase();
            if !lease.chips.contains(&c) {
                return Err(ApiError(
                    StatusCode::FORBIDDEN,
                    "chip_not_in_lease",
                    format!("chip {c} is not in lease {}", lease.id),
                ));
            }
            if !s.chips.contains(&c) {
                return Err(ApiError(
                    StatusCode::FORBIDDEN,
                    "chip_not_managed",
                    format!("chip {c} is not managed by this miner"),
                ));
            }
            c
        }
        None => lease
            .chips
            .iter()
            .find(|c| s.chips.contains(*c))
            .cloned()
            .ok_or_else(|| {
                ApiError(
                    StatusCode::FORBIDDEN,
                    "chip_not_managed",
                    format!("no chip of lease {} is managed by this miner", lease.id),
                )
            })?,
    };
    let chip: ChipId = hex::decode(&chip_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad_job("chip id"))?;
    match &req.job {
        JobSpec::Exec {
            argv,
            limits,
            image,
        } => {
            let min = usize::from(image.is_none());
            if argv.len() < min || argv.len() > MAX_ARGS {
                return Err(bad_job(format!(
                    "argv must have {min}..={MAX_ARGS} entries"
                )));
            }
            if let Some(image) = image {
                let r = super::images::ImageRef::parse(image).map_err(bad_job)?;
                if let super::images::ImageRef::Digest(d) = &r {
                    let store =
                        s.cfg.sandbox.image_store().map_err(|e| {
                            ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", e)
                        })?;
                    if !super::images::granted(&store, lease.id, d) {
                        return Err(ApiError(
                            StatusCode::NOT_FOUND,
                            "unknown_image",
                            format!(
                                "image {d} was not uploaded on lease {}: POST /v1/images first",
                                lease.id
                            ),
                        ));
                    }
                }
            }
            if argv
                .iter()
                .any(|a| a.len() > MAX_ARG_LEN || a.contains('\0'))
            {
                return Err(bad_job(format!(
                    "an argument is longer than {MAX_ARG_LEN} bytes or contains NUL"
                )));
            }
            limits.check(&s.cfg.max_exec).map_err(bad_job)?;
        }
        JobSpec::Onnx { model, wall_ms, .. } => {
            base64::engine::general_purpose::STANDARD
                .decode(model)
                .map_err(|e| bad_job(format!("model is not base64: {e}")))?;
            if let Some(w) = wall_ms {
                if *w == 0 || *w > s.cfg.max_onnx_wall_ms {
                    return Err(bad_job(format!(
                        "wall_ms = {w} must be within 1..={}",
                        s.cfg.max_onnx_wall_ms
                    )));
                }
            }
        }
    }
    let job_hash = unet_types::sha256(&[&body]);
    let job_id = hex::encode(job_hash);
    let renter = unet_types::hexser::to_hex(&h.key);
    // The same body again: the same job (queued, running or finished).
    if let Some(view) = existing(&s, &job_id, lease.id).await {
        return Ok(json_ok(StatusCode::OK, &view));
    }
    let refused = {
        let mut live = s.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.contains_key(&job_id) {
            // Submitted concurrently a moment ago.
            Some(None)
        } else {
            let queued = Queued {
                job_id: job_id.clone(),
                job_hash,
                lease_id: lease.id,
                chip,
                spec: req.job,
            };
            match s.queue.try_send(queued) {
                Ok(()) => {
                    live.insert(job_id.clone(), (lease.id, renter, JobState::Queued));
                    None
                }
                Err(mpsc::error::TrySendError::Full(_)) => Some(Some("queue_full")),
                Err(mpsc::error::TrySendError::Closed(_)) => Some(Some("shutting_down")),
            }
        }
    };
    match refused {
        None => {}
        Some(None) => {
            let view = existing(&s, &job_id, lease.id)
                .await
                .ok_or_else(|| bad_job("the same job was submitted concurrently; retry"))?;
            return Ok(json_ok(StatusCode::OK, &view));
        }
        Some(Some(code)) => {
            return Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                code,
                format!("{} jobs are waiting; retry later", s.cfg.queue),
            ));
        }
    }
    info!(job = %job_id, lease = lease.id, chip = %chip_hex, "job queued");
    Ok(json_ok(
        StatusCode::ACCEPTED,
        &JobView {
            job_id,
            lease_id: lease.id,
            state: "queued".into(),
            result_json: None,
            receipt: None,
        },
    ))
}

/// The job `job_id` of lease `lease_id`, running or finished.
async fn existing(s: &Shared, job_id: &str, lease_id: u64) -> Option<JobView> {
    if let Some((lease, _, state)) = s.live.lock().ok().and_then(|l| l.get(job_id).cloned()) {
        if lease != lease_id {
            return None;
        }
        let state = match state {
            JobState::Queued => "queued",
            JobState::Running => "running",
        };
        return Some(JobView {
            job_id: job_id.to_string(),
            lease_id,
            state: state.into(),
            result_json: None,
            receipt: None,
        });
    }
    let text = tokio::fs::read_to_string(s.result_path(job_id))
        .await
        .ok()?;
    let view: JobView = serde_json::from_str(&text).ok()?;
    (view.lease_id == lease_id).then_some(view)
}

async fn get_handler(
    State(s): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = format!("/v1/jobs/{id}");
    let (_, lease) = s.authenticate(&headers, "GET", &path, b"", false).await?;
    let valid = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let view = if valid {
        existing(&s, &id.to_lowercase(), lease.id).await
    } else {
        None
    };
    view.map(|v| json_ok(StatusCode::OK, &v)).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "unknown_job",
            format!("no job {id} of lease {}", lease.id),
        )
    })
}

async fn worker(s: Arc<Shared>, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Queued>>>) {
    loop {
        let job = {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(j) => j,
                None => return,
            }
        };
        if let Ok(mut live) = s.live.lock() {
            if let Some(e) = live.get_mut(&job.job_id) {
                e.2 = JobState::Running;
            }
        }
        let job_id = job.job_id.clone();
        match run_job(&s, job).await {
            Ok(view) => info!(job = %job_id, "job done: {}", view.state),
            Err(e) => warn!(job = %job_id, error = %format!("{e:#}"), "job could not be recorded"),
        }
        if let Ok(mut live) = s.live.lock() {
            live.remove(&job_id);
        }
    }
}

async fn run_job(s: &Arc<Shared>, job: Queued) -> anyhow::Result<JobView> {
    let started_ms = now_ms();
    let chip_hex = hex::encode(job.chip);
    let mut doc = ResultDoc {
        job_id: job.job_id.clone(),
        lease_id: job.lease_id,
        chip_id: chip_hex,
        kind: job.spec.kind().into(),
        status: Outcome::Ok,
        limit: None,
        error: None,
        started_ms,
        finished_ms: 0,
        outputs: None,
        exit_code: None,
        signal: None,
        stdout_b64: None,
        stderr_b64: None,
        output_truncated: None,
        image: None,
    };
    match job.spec {
        JobSpec::Exec {
            argv,
            limits,
            image,
        } => {
            let sb = s.cfg.sandbox.clone();
            let (id, lease) = (job.job_id.clone(), job.lease_id);
            let image = match image.as_deref().map(super::images::ImageRef::parse) {
                None => None,
                Some(Err(e)) => return finish_failed(s, &job.job_hash, job.chip, doc, e).await,
                Some(Ok(r)) => {
                    let store = match sb.image_store() {
                        Ok(st) => st,
                        Err(e) => return finish_failed(s, &job.job_hash, job.chip, doc, e).await,
                    };
                    let got =
                        super::images::resolve(store, lease, &r, &s.cfg.insecure_registries).await;
                    match got {
                        Ok(img) => {
                            doc.image = Some(r.digest().to_string());
                            Some(img)
                        }
                        Err(e) => {
                            let e = format!("image: {e}");
                            return finish_failed(s, &job.job_hash, job.chip, doc, e).await;
                        }
                    }
                }
            };
            let out = tokio::task::spawn_blocking(move || {
                exec::run(&sb, &id, lease, &argv, &limits, image.as_ref())
            })
            .await?;
            let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
            doc.exit_code = out.exit_code;
            doc.signal = out.signal;
            doc.stdout_b64 = Some(b64(&out.stdout));
            doc.stderr_b64 = Some(b64(&out.stderr));
            doc.output_truncated = Some(out.truncated);
            doc.limit = out.stopped.map(exec::result_limit);
            doc.error = out.start_error.clone();
            doc.status = if out.stopped.is_some() {
                Outcome::LimitExceeded
            } else if out.succeeded() {
                Outcome::Ok
            } else {
                Outcome::Failed
            };
        }
        JobSpec::Onnx {
            model,
            inputs,
            wall_ms,
        } => {
            let wall = Duration::from_millis(wall_ms.unwrap_or(s.cfg.onnx_wall_ms));
            let handle = tokio::task::spawn_blocking(move || {
                let model = base64::engine::general_purpose::STANDARD
                    .decode(&model)
                    .map_err(|e| format!("model is not base64: {e}"))?;
                onnx::run(&model, &inputs)
            });
            tokio::pin!(handle);
            let result = tokio::select! {
                r = &mut handle => Some(r),
                _ = tokio::time::sleep(wall) => None,
            };
            match result {
                Some(Ok(Ok(outputs))) => doc.outputs = Some(outputs),
                Some(Ok(Err(e))) => {
                    doc.status = Outcome::Failed;
                    doc.error = Some(e);
                }
                Some(Err(e)) => {
                    doc.status = Outcome::Failed;
                    doc.error = Some(format!("inference task: {e}"));
                }
                None => {
                    doc.status = Outcome::LimitExceeded;
                    doc.limit = Some(Limit::WallTime);
                    doc.error = Some(format!(
                        "inference ran past {} ms; reported now, its thread is abandoned",
                        wall.as_millis()
                    ));
                    // The worker slot stays taken until the inference returns, so runaway
                    // models cannot pile up; the result is reported right away.
                    let s2 = s.clone();
                    let view = finish(&s2, &job.job_hash, job.chip, doc).await?;
                    let _ = handle.await;
                    return Ok(view);
                }
            }
        }
    }
    finish(s, &job.job_hash, job.chip, doc).await
}

/// Finishes a job that could not run: `Failed` with `error`.
async fn finish_failed(
    s: &Arc<Shared>,
    job_hash: &[u8; 32],
    chip: ChipId,
    mut doc: ResultDoc,
    error: String,
) -> anyhow::Result<JobView> {
    doc.status = Outcome::Failed;
    doc.error = Some(error);
    finish(s, job_hash, chip, doc).await
}

/// Signs the receipt for `doc` with the chip and stores the finished job (0600).
async fn finish(
    s: &Arc<Shared>,
    job_hash: &[u8; 32],
    chip: ChipId,
    mut doc: ResultDoc,
) -> anyhow::Result<JobView> {
    doc.finished_ms = now_ms();
    let result_json = serde_json::to_string(&doc)?;
    let result_hash = unet_types::sha256(&[result_json.as_bytes()]);
    let chain_id = s.chain_id().await.map_err(|e| anyhow::anyhow!("{}", e.2))?;
    let backend = s.backend.clone();
    let job_hash = *job_hash;
    let lease_id = doc.lease_id;
    let receipt = tokio::task::spawn_blocking(move || {
        receipt::sign(
            backend.as_ref(),
            &chip,
            chain_id,
            lease_id,
            &job_hash,
            &result_hash,
        )
    })
    .await??;
    let view = JobView {
        job_id: doc.job_id.clone(),
        lease_id,
        state: "done".into(),
        result_json: Some(result_json),
        receipt: Some(receipt),
    };
    let path = s.result_path(&doc.job_id);
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write as _;
        let mut f = crate::home::create_private(&tmp, true)?;
        f.write_all(serde_json::to_string(&view)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(view)
}

/// Deletes results older than the retention period, hourly.
async fn prune(s: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let Ok(entries) = std::fs::read_dir(s.cfg.dir.join("results")) else {
            continue;
        };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > s.cfg.retention);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jobs::{
        auth::{sign_request, H_NONCE},
        onnx::{example_model, TensorData, TensorIn},
    };
    use crate::soft::{ChipFile, SoftBackend};
    use commonware_codec::{Copying, DecodeExt};
    use commonware_cryptography::Signer;
    use unet_poci::{secure_element::DevnetVendorCa, Curve, TrustStore};
    use unet_renter::client::JobClient;
    use unet_types::PrivateKey;

    pub(crate) const CHAIN: u64 = 77;

    pub(crate) struct FakeChain(pub(crate) Mutex<HashMap<u64, LeaseInfo>>);

    impl ChainView for FakeChain {
        fn chain_id(&self) -> BoxFuture<'_, Result<u64, ChainUnavailable>> {
            Box::pin(async { Ok(CHAIN) })
        }
        fn lease(&self, id: u64) -> BoxFuture<'_, Result<Option<LeaseInfo>, ChainUnavailable>> {
            let l = self.0.lock().unwrap().get(&id).cloned();
            Box::pin(async move { Ok(l) })
        }
    }

    pub(crate) fn key(seed: u8) -> PrivateKey {
        PrivateKey::decode(Copying(&[seed; 32][..])).unwrap()
    }

    pub(crate) struct Fixture {
        pub(crate) _dir: tempfile::TempDir,
        pub(crate) url: String,
        pub(crate) chain: Arc<FakeChain>,
        pub(crate) files: Vec<ChipFile>,
    }

    pub(crate) async fn fixture(workers: usize, queue: usize) -> Fixture {
        fixture_with(workers, queue, |_| {}).await
    }

    /// [`fixture`] with `tweak` applied to the job server's configuration.
    pub(crate) async fn fixture_with(
        workers: usize,
        queue: usize,
        tweak: impl FnOnce(&mut JobsConfig),
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let chips_dir = dir.path().join("chips");
        std::fs::create_dir_all(&chips_dir).unwrap();
        let ca = DevnetVendorCa::from_seed(b"jobs server test").unwrap();
        let files: Vec<ChipFile> = (0..2)
            .map(|i| {
                let f = ChipFile::provision(&ca, "BM1684X", None, Curve::P256).unwrap();
                f.save(&chips_dir.join(format!("{i}.json"))).unwrap();
                f
            })
            .collect();
        let backend = Arc::new(SoftBackend::open(&chips_dir).unwrap());
        let renter = unet_types::hexser::to_hex(&key(1).public_key());
        let mut leases = HashMap::new();
        // Lease 0: open, first chip. Lease 1: closed. Lease 2: a chip of another miner.
        // Lease 3: open but past its end.
        let lease = |id, chips: Vec<String>, status: &str, end| LeaseInfo {
            id,
            renter: renter.clone(),
            chips,
            status: status.into(),
            close_reason: (status == "closed").then(|| "renter".to_string()),
            end,
            height: 50,
        };
        leases.insert(0, lease(0, vec![files[0].chip_id.clone()], "open", 100));
        leases.insert(1, lease(1, vec![files[1].chip_id.clone()], "closed", 100));
        leases.insert(2, lease(2, vec![hex::encode([7u8; 32])], "open", 100));
        leases.insert(3, lease(3, vec![files[1].chip_id.clone()], "open", 50));
        let chain = Arc::new(FakeChain(Mutex::new(leases)));
        let mut cfg = JobsConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("jobs"));
        // Jobs run under runc, which needs a sandbox dir whose ancestors others may traverse.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        }
        cfg.sandbox.dir = dir.path().join("sandbox");
        cfg.workers = workers;
        cfg.queue = queue;
        tweak(&mut cfg);
        let server = JobServer::start(cfg, backend, chain.clone()).await.unwrap();
        Fixture {
            url: format!("http://{}", server.local_addr),
            _dir: dir,
            chain,
            files,
        }
    }

    fn exec_req(lease: u64, argv: &[&str], limits: ExecLimits) -> JobRequest {
        JobRequest {
            lease,
            chip: None,
            salt: None,
            job: JobSpec::Exec {
                argv: argv.iter().map(|s| s.to_string()).collect(),
                limits,
                image: None,
            },
        }
    }

    fn device_key(f: &ChipFile) -> String {
        hex::encode(&f.open().unwrap().0.public_key().sec1)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exec_and_onnx_jobs_return_results_with_chip_receipts() {
        let fx = fixture(2, 8).await;
        let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
        // Exec: output captured, receipt by the lease's chip.
        let v = c
            .submit(&exec_req(0, &["/bin/echo", "hello"], ExecLimits::default()))
            .await
            .unwrap();
        assert_eq!(v.state, "queued");
        let done = c
            .wait(&v.job_id, Duration::from_secs(30), |_| {})
            .await
            .unwrap();
        let doc = done.check_binding().unwrap();
        assert_eq!(doc.status, Outcome::Ok);
        assert_eq!(doc.exit_code, Some(0));
        assert_eq!(doc.stdout_b64.as_deref(), Some("aGVsbG8K")); // "hello\n"
        assert_eq!(doc.chip_id, fx.files[0].chip_id);
        let r = done.receipt.clone().unwrap();
        assert_eq!((r.chain_id, r.lease_id), (CHAIN, 0));
        r.verify_signature(
            "vendor-x509",
            &device_key(&fx.files[0]),
            &TrustStore::new(),
            0,
        )
        .unwrap();
        // The same body again is the same job, already done.
        let again = c
            .submit(&exec_req(0, &["/bin/echo", "hello"], ExecLimits::default()))
            .await
            .unwrap();
        assert_eq!(again, done);

        // ONNX inference.
        use base64::Engine as _;
        let req = JobRequest {
            lease: 0,
            chip: Some(fx.files[0].chip_id.to_uppercase()),
            salt: None,
            job: JobSpec::Onnx {
                model: base64::engine::general_purpose::STANDARD.encode(example_model()),
                inputs: vec![TensorIn {
                    name: Some("x".into()),
                    dtype: "f32".into(),
                    shape: vec![1, 3],
                    data: vec![json!(1.0), json!(2.0), json!(3.0)],
                }],
                wall_ms: None,
            },
        };
        let v = c.submit(&req).await.unwrap();
        let done = c
            .wait(&v.job_id, Duration::from_secs(30), |_| {})
            .await
            .unwrap();
        let doc = done.check_binding().unwrap();
        assert_eq!(doc.status, Outcome::Ok, "{doc:?}");
        let out = doc.outputs.unwrap();
        assert_eq!(out[0].data, TensorData::F32(vec![22.5, 27.0]));
        done.receipt
            .unwrap()
            .verify_signature(
                "vendor-x509",
                &device_key(&fx.files[0]),
                &TrustStore::new(),
                0,
            )
            .unwrap();
        // Tampering with the result breaks the binding.
        let mut forged = c.get(&v.job_id).await.unwrap();
        forged.result_json = forged.result_json.map(|t| t.replace("22.5", "23.5"));
        assert_eq!(
            forged.check_binding().unwrap_err(),
            "receipt result_hash is not the hash of result_json"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn limits_are_enforced_and_reported() {
        let fx = fixture(1, 8).await;
        let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
        let t = std::time::Instant::now();
        let v = c
            .submit(&exec_req(
                0,
                &["/bin/sleep", "30"],
                ExecLimits {
                    wall_ms: 500,
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        let done = c
            .wait(&v.job_id, Duration::from_secs(20), |_| {})
            .await
            .unwrap();
        let doc = done.check_binding().unwrap();
        assert_eq!(doc.status, Outcome::LimitExceeded);
        assert_eq!(doc.limit, Some(Limit::WallTime));
        assert!(t.elapsed() < Duration::from_secs(10));
        let text = done.result_json.unwrap();
        assert!(
            text.contains(r#""status":"limit_exceeded","limit":"wall_time""#),
            "{text}"
        );
        // Limits above the miner's maximum are refused up front.
        let err = c
            .submit(&exec_req(
                0,
                &["/bin/true"],
                ExecLimits {
                    wall_ms: 10_000_000,
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("bad_job"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals() {
        let fx = fixture(1, 1).await;
        let echo = |lease| exec_req(lease, &["/bin/echo"], ExecLimits::default());
        // Signed by someone other than the renter.
        let other = JobClient::new(&fx.url, key(2), CHAIN, 0);
        let err = other.submit(&echo(0)).await.unwrap_err();
        assert_eq!(err.code(), Some("not_renter"), "{err}");
        // Signed for another chain.
        let wrong_chain = JobClient::new(&fx.url, key(1), CHAIN + 1, 0);
        assert_eq!(
            wrong_chain.submit(&echo(0)).await.unwrap_err().code(),
            Some("bad_signature")
        );
        // Closed, expired, unknown leases; a chip of another miner.
        for (lease, code) in [
            (1, "lease_closed"),
            (3, "lease_expired"),
            (9, "unknown_lease"),
            (2, "chip_not_managed"),
        ] {
            let c = JobClient::new(&fx.url, key(1), CHAIN, lease);
            let err = c.submit(&echo(lease)).await.unwrap_err();
            assert_eq!(err.code(), Some(code), "lease {lease}: {err}");
        }
        let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
        // A chip not in the lease; a body naming another lease.
        let mut r = echo(0);
        r.chip = Some(fx.files[1].chip_id.clone());
        assert_eq!(
            c.submit(&r).await.unwrap_err().code(),
            Some("chip_not_in_lease")
        );
        assert_eq!(
            c.submit(&echo(3)).await.unwrap_err().code(),
            Some("bad_job")
        );
        // Unknown job.
        assert_eq!(
            c.get(&"ab".repeat(32)).await.unwrap_err().code(),
            Some("unknown_job")
        );
        assert_eq!(
            c.get("nothex").await.unwrap_err().code(),
            Some("unknown_job")
        );

        // A replayed request (same headers, same body) is refused.
        let body = serde_json::to_vec(&echo(0)).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let headers = sign_request(&key(1), CHAIN, 0, "POST", "/v1/jobs", &body, now);
        let http = reqwest::Client::new();
        let send = || {
            let mut r = http.post(format!("{}/v1/jobs", fx.url)).body(body.clone());
            for (k, v) in &headers {
                r = r.header(*k, v);
            }
            r.send()
        };
        assert_eq!(send().await.unwrap().status().as_u16(), 202);
        let replay = send().await.unwrap();
        assert_eq!(replay.status().as_u16(), 409);
        let v: Value = replay.json().await.unwrap();
        assert_eq!(v["error"]["code"], "replayed_nonce");
        // No auth headers at all.
        let bare = http
            .post(format!("{}/v1/jobs", fx.url))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(bare.status().as_u16(), 401);
        let v: Value = bare.json().await.unwrap();
        assert_eq!(v["error"]["code"], "bad_auth_header");
        let _ = H_NONCE;

        // The lease closes on chain: new jobs are refused, results stay readable.
        let v = c.submit(&echo(0)).await.unwrap();
        fx.chain.0.lock().unwrap().get_mut(&0).unwrap().status = "closed".into();
        assert_eq!(
            c.submit(&echo(0)).await.unwrap_err().code(),
            Some("lease_closed")
        );
        let done = c
            .wait(&v.job_id, Duration::from_secs(20), |_| {})
            .await
            .unwrap();
        assert_eq!(done.state, "done");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_instead_of_waiting() {
        let fx = fixture(1, 1).await;
        let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
        let slow = |salt: &str| {
            let mut r = exec_req(
                0,
                &["/bin/sleep", "2"],
                ExecLimits {
                    wall_ms: 5000,
                    ..Default::default()
                },
            );
            r.salt = Some(salt.into());
            r
        };
        let first = c.submit(&slow("a")).await.unwrap();
        // Let the worker take the first one, then fill the queue (capacity 1).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while c.get(&first.job_id).await.unwrap().state != "running" {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let second = c.submit(&slow("b")).await.unwrap();
        assert_eq!(second.state, "queued");
        let err = c.submit(&slow("c")).await.unwrap_err();
        assert_eq!(err.code(), Some("queue_full"), "{err}");
        // Both accepted jobs finish.
        for id in [&first.job_id, &second.job_id] {
            let v = c.wait(id, Duration::from_secs(20), |_| {}).await.unwrap();
            assert_eq!(v.check_binding().unwrap().status, Outcome::Ok);
        }
    }
}
