//! The HTTP handlers of `/v1/info`, `POST /v1/jobs` and `GET /v1/jobs/{id}`: authenticate,
//! validate, enqueue or answer from the live table and the stored results.

use super::{json_ok, ApiError, JobState, Queued, Shared, MAX_ARGS, MAX_ARG_LEN};
use crate::jobs::{JobRequest, JobSpec, JobView};
use axum::{
    body::Bytes,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use base64::Engine as _;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::info;
use unet_renter::job::EndpointInfo;
use unet_types::chip::ChipId;

pub(super) async fn info_handler(State(s): State<Arc<Shared>>) -> Response {
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
        &EndpointInfo {
            chain_id,
            chips: s.chips.iter().cloned().collect(),
            workers: s.cfg.workers,
            queue_capacity: s.cfg.queue,
            queued,
            max_body: s.cfg.max_body,
            max_exec: s.cfg.max_exec,
            onnx_wall_ms: s.cfg.onnx_wall_ms,
            max_onnx_wall_ms: s.cfg.max_onnx_wall_ms,
            kinds: if onnx_runner(&s).is_ok() {
                vec!["onnx".into(), "exec".into()]
            } else {
                vec!["exec".into()]
            },
            max_image_bytes: s.cfg.max_image_bytes,
        },
    )
}

/// The ONNX runner this miner starts in the sandbox, if it has one.
fn onnx_runner(s: &Shared) -> Result<crate::jobs::onnx::Runner, String> {
    crate::jobs::onnx::find_runner(s.cfg.sandbox.onnx_runner.as_deref())
}

/// The chip a workload of `lease` runs on: `named` (a chip of the lease this miner
/// manages), or the first chip of the lease this miner manages.
pub(super) fn pick_chip(
    s: &Shared,
    lease: &super::LeaseInfo,
    named: Option<&str>,
) -> Result<(String, ChipId), ApiError> {
    let chip_hex = match named {
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
    Ok((chip_hex, chip))
}

pub(super) fn bad_job(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "bad_job", msg.into())
}

pub(super) async fn submit_handler(
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
    let (chip_hex, chip) = pick_chip(&s, &lease, req.chip.as_deref())?;
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
                let r = crate::jobs::images::ImageRef::parse(image).map_err(bad_job)?;
                if let crate::jobs::images::ImageRef::Digest(d) = &r {
                    let store =
                        s.cfg.sandbox.image_store().map_err(|e| {
                            ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", e)
                        })?;
                    if !crate::jobs::images::granted(&store, lease.id, d) {
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
            onnx_runner(&s).map_err(|e| bad_job(format!("this miner runs no ONNX jobs: {e}")))?;
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
    let log_cap = match &req.job {
        JobSpec::Exec { limits, .. } => usize::try_from(limits.output_bytes).unwrap_or(0),
        JobSpec::Onnx { .. } => 0,
    };
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
                    let mut logs = s.logs.lock().unwrap_or_else(|e| e.into_inner());
                    logs.retain(|_, (_, _, ended)| {
                        ended.is_none_or(|t| t.elapsed() < super::services::FINISHED_LOG_KEPT)
                    });
                    logs.insert(
                        job_id.clone(),
                        (
                            lease.id,
                            Arc::new(unet_sandbox::LiveLog::new(log_cap)),
                            None,
                        ),
                    );
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
            state: JobState::Queued,
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
        return Some(JobView {
            job_id: job_id.to_string(),
            lease_id,
            state,
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

pub(super) async fn get_handler(
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
