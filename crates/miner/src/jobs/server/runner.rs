//! Running queued jobs on the workers, signing their receipts, storing their results
//! (0600, replaced atomically) and pruning old ones.

use super::{now_ms, JobState, Queued, Shared};
use crate::jobs::{exec, onnx, receipt, JobSpec, JobView, Outcome, ResultDoc};
use base64::Engine as _;
use std::{sync::Arc, time::Duration};
use tokio::sync::mpsc;
use tracing::{info, warn};
use unet_types::chip::ChipId;

pub(super) async fn worker(s: Arc<Shared>, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Queued>>>) {
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
        let log = s
            .logs
            .lock()
            .ok()
            .and_then(|l| l.get(&job_id).map(|e| e.1.clone()));
        match run_job(&s, job, log.clone()).await {
            Ok(view) => info!(job = %job_id, "job done: {}", view.state),
            Err(e) => warn!(job = %job_id, error = %format!("{e:#}"), "job could not be recorded"),
        }
        if let Ok(mut live) = s.live.lock() {
            live.remove(&job_id);
        }
        if let Some(l) = log {
            l.finish();
        }
        if let Some(e) = s.logs.lock().ok().as_mut().and_then(|l| l.get_mut(&job_id)) {
            e.2 = Some(std::time::Instant::now());
        }
    }
}

async fn run_job(
    s: &Arc<Shared>,
    job: Queued,
    live: Option<Arc<unet_sandbox::LiveLog>>,
) -> anyhow::Result<JobView> {
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
            let gpu = s.backend.gpu_index(&job.chip);
            let image = match image.as_deref().map(crate::jobs::images::ImageRef::parse) {
                None => None,
                Some(Err(e)) => return finish_failed(s, &job.job_hash, job.chip, doc, e).await,
                Some(Ok(r)) => {
                    let store = match sb.image_store() {
                        Ok(st) => st,
                        Err(e) => return finish_failed(s, &job.job_hash, job.chip, doc, e).await,
                    };
                    let got =
                        crate::jobs::images::resolve(store, lease, &r, &s.cfg.insecure_registries)
                            .await;
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
                exec::run(
                    &sb,
                    &id,
                    lease,
                    &argv,
                    &limits,
                    exec::RunsOn {
                        image: image.as_ref(),
                        gpu,
                    },
                    live,
                )
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
            let model = match base64::engine::general_purpose::STANDARD.decode(&model) {
                Ok(m) => m,
                Err(e) => {
                    let e = format!("model is not base64: {e}");
                    return finish_failed(s, &job.job_hash, job.chip, doc, e).await;
                }
            };
            let sb = s.cfg.sandbox.clone();
            let (id, lease) = (job.job_id.clone(), job.lease_id);
            let out = tokio::task::spawn_blocking(move || {
                onnx::run(&sb, &id, lease, &model, &inputs, wall)
            })
            .await?;
            match out {
                onnx::OnnxOutcome::Outputs(outputs) => doc.outputs = Some(outputs),
                onnx::OnnxOutcome::Failed(e) => {
                    doc.status = Outcome::Failed;
                    doc.error = Some(e);
                }
                onnx::OnnxOutcome::Stopped(limit, said) => {
                    doc.status = Outcome::LimitExceeded;
                    doc.limit = Some(limit);
                    doc.error = (!said.is_empty()).then_some(said);
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
        state: JobState::Done,
        result_json: Some(result_json),
        receipt: Some(receipt),
    };
    unet_types::private_file::write_atomic(
        &s.result_path(&doc.job_id),
        serde_json::to_string(&view)?.as_bytes(),
    )?;
    Ok(view)
}

/// Deletes results older than the retention period, hourly.
pub(super) async fn prune(s: Arc<Shared>) {
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
