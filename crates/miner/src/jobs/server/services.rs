//! The HTTP handlers of services and live logs:
//!
//! ```text
//! POST /v1/service                  signed; body = ServiceRequest -> ServiceView (running)
//! GET  /v1/service                  signed -> ServiceView
//! POST /v1/service/stop             signed -> ServiceView (stopped)
//! GET  /v1/service/logs/{offset}    signed -> LogChunkDoc (long poll)
//! GET  /v1/jobs/{id}/logs/{offset}  signed -> LogChunkDoc (long poll)
//! ```

use super::{
    handlers::{bad_job, pick_chip},
    json_ok, ApiError, Shared, MAX_ARGS, MAX_ARG_LEN,
};
use crate::jobs::{
    images::{granted, resolve, ImageRef},
    services::{StartArgs, StartError},
};
use axum::{
    body::Bytes,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use base64::Engine as _;
use std::{sync::Arc, time::Duration};
use unet_renter::service::{LogChunkDoc, ServiceRequest, LOG_CHUNK_MAX, LOG_POLL_MS};
use unet_sandbox::LiveLog;

/// Most environment variables of a service.
pub const MAX_ENV: usize = 128;

/// How long a finished job's live log stays readable before `logs` answers from its
/// stored result.
pub(super) const FINISHED_LOG_KEPT: Duration = Duration::from_secs(300);

fn no_service(lease: u64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_service",
        format!("lease {lease} has no service (`unet service start` first)"),
    )
}

/// Checks a service request's fields.
fn check(req: &ServiceRequest) -> Result<ImageRef, ApiError> {
    if req.port < 1024 {
        return Err(bad_job(format!(
            "port {} is below 1024: the workload has no capabilities, so it cannot bind it; \
             listen on 1024..=65535",
            req.port
        )));
    }
    if req.argv.len() > MAX_ARGS || req.env.len() > MAX_ENV {
        return Err(bad_job(format!(
            "at most {MAX_ARGS} arguments and {MAX_ENV} environment variables"
        )));
    }
    if req
        .argv
        .iter()
        .chain(&req.env)
        .any(|a| a.len() > MAX_ARG_LEN || a.contains('\0'))
    {
        return Err(bad_job(format!(
            "an argument or variable is longer than {MAX_ARG_LEN} bytes or contains NUL"
        )));
    }
    for e in &req.env {
        let ok = e.split_once('=').is_some_and(|(n, _)| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if !ok {
            return Err(bad_job(format!(
                "environment entry {e:?} is not NAME=VALUE"
            )));
        }
    }
    ImageRef::parse(&req.image).map_err(bad_job)
}

/// The host name in the request's `Host` header, when it is a plain name or address.
fn request_host(headers: &HeaderMap) -> Option<String> {
    let h = headers.get(axum::http::header::HOST)?.to_str().ok()?;
    let host = match h.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => h.rsplit_once(':').map_or(h, |(a, _)| a),
    };
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
    ok.then(|| host.to_string())
}

pub(super) async fn start_handler(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (h, lease) = s
        .authenticate(&headers, "POST", "/v1/service", &body, true)
        .await?;
    let req: ServiceRequest =
        serde_json::from_slice(&body).map_err(|e| bad_job(format!("service request: {e}")))?;
    if req.lease != h.lease_id {
        return Err(bad_job(format!(
            "the body names lease {}, the signature lease {}",
            req.lease, h.lease_id
        )));
    }
    let image = check(&req)?;
    let (chip_hex, chip) = pick_chip(&s, &lease, req.chip.as_deref())?;
    let internal = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e);
    let store = s.cfg.sandbox.image_store().map_err(internal)?;
    if let ImageRef::Digest(d) = &image {
        if !granted(&store, lease.id, d) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_image",
                format!(
                    "image {d} was not uploaded on lease {}: POST /v1/images first",
                    lease.id
                ),
            ));
        }
    }
    if let Some(v) = s.services.view(lease.id) {
        if v.state != unet_renter::service::ServiceState::Stopped {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "service_running",
                StartError::AlreadyRunning(lease.id).to_string(),
            ));
        }
    }
    let img = resolve(store, lease.id, &image, &s.cfg.insecure_registries)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_image", format!("image: {e}")))?;
    let host = s
        .services
        .config()
        .public_host
        .clone()
        .or_else(|| request_host(&headers))
        .unwrap_or_else(|| s.cfg.listen.ip().to_string());
    let args = StartArgs {
        chip: chip_hex,
        image: img,
        bind: s.cfg.listen.ip(),
        host,
        gpu: s.backend.gpu_index(&chip),
    };
    match s.services.start(req, args).await {
        Ok(v) => Ok(json_ok(StatusCode::OK, &v)),
        Err(e @ StartError::AlreadyRunning(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "service_running",
            e.to_string(),
        )),
        Err(e @ StartError::NoPort(..)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_port",
            e.to_string(),
        )),
        Err(e @ StartError::Failed(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "service_failed",
            e.to_string(),
        )),
    }
}

pub(super) async fn status_handler(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, lease) = s
        .authenticate(&headers, "GET", "/v1/service", b"", false)
        .await?;
    let v = s
        .services
        .view(lease.id)
        .ok_or_else(|| no_service(lease.id))?;
    Ok(json_ok(StatusCode::OK, &v))
}

pub(super) async fn stop_handler(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (_, lease) = s
        .authenticate(&headers, "POST", "/v1/service/stop", &body, false)
        .await?;
    let v = s
        .services
        .stop(lease.id, "renter")
        .await
        .ok_or_else(|| no_service(lease.id))?;
    Ok(json_ok(StatusCode::OK, &v))
}

/// Answers from `log` at `offset`: at once when there are bytes or the workload ended,
/// else after [`LOG_POLL_MS`] with none.
async fn long_poll(log: Arc<LiveLog>, offset: u64) -> Response {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(LOG_POLL_MS);
    // Subscribed before each read: a write in between still wakes the wait below.
    let mut changed = log.subscribe();
    loop {
        changed.mark_unchanged();
        let c = log.read(offset, LOG_CHUNK_MAX);
        if !c.data.is_empty() || c.done || tokio::time::Instant::now() >= deadline {
            return json_ok(
                StatusCode::OK,
                &LogChunkDoc {
                    offset: c.offset,
                    data_b64: base64::engine::general_purpose::STANDARD.encode(&c.data),
                    end: c.end,
                    done: c.done && c.offset + c.data.len() as u64 >= c.end,
                },
            );
        }
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

fn parse_offset(o: &str) -> Result<u64, ApiError> {
    o.parse()
        .map_err(|_| bad_job(format!("log offset {o:?} is not a number")))
}

pub(super) async fn service_logs_handler(
    State(s): State<Arc<Shared>>,
    UrlPath(offset): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = format!("/v1/service/logs/{offset}");
    let (_, lease) = s.authenticate(&headers, "GET", &path, b"", false).await?;
    let offset = parse_offset(&offset)?;
    let log = s
        .services
        .log(lease.id)
        .ok_or_else(|| no_service(lease.id))?;
    Ok(long_poll(log, offset).await)
}

pub(super) async fn job_logs_handler(
    State(s): State<Arc<Shared>>,
    UrlPath((id, offset)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = format!("/v1/jobs/{id}/logs/{offset}");
    let (_, lease) = s.authenticate(&headers, "GET", &path, b"", false).await?;
    let offset = parse_offset(&offset)?;
    let id = id.to_lowercase();
    // A job id is 64 hex digits; anything else never reaches a file name.
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_job(format!("{id:?} is not a job id (64 hex digits)")));
    }
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_job",
            format!("no job {id} of lease {}", lease.id),
        )
    };
    let live = s
        .logs
        .lock()
        .ok()
        .and_then(|l| l.get(&id).cloned())
        .filter(|(l, _, _)| *l == lease.id);
    if let Some((_, log, _)) = live {
        return Ok(long_poll(log, offset).await);
    }
    // Finished a while ago: its stored output (stdout, then stderr).
    let text = tokio::fs::read_to_string(s.result_path(&id))
        .await
        .map_err(|_| unknown())?;
    let view: crate::jobs::JobView = serde_json::from_str(&text).map_err(|_| unknown())?;
    if view.lease_id != lease.id {
        return Err(unknown());
    }
    let doc = view
        .check_binding()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let log = LiveLog::new(usize::MAX);
    for part in [&doc.stdout_b64, &doc.stderr_b64] {
        log.write(
            &part
                .as_deref()
                .and_then(|t| b64.decode(t).ok())
                .unwrap_or_default(),
        );
    }
    log.finish();
    Ok(long_poll(Arc::new(log), offset).await)
}
