//! Work delivery: renters run jobs on the chips they lease.
//!
//! A miner serves an HTTP endpoint ([`server`]) — the `endpoint` of its market offer. A
//! renter signs every request with its account key ([`auth`]), naming the lease; the miner
//! checks the lease on chain (`unet_getLease`: open, not past its end, signed by its renter,
//! the chip in the lease and managed by this miner) and refuses anything else with a JSON
//! error. Two kinds of jobs: ONNX inference with `tract` ([`onnx`]) and bounded machine time
//! ([`exec`]) in a runc sandbox, on the static busybox root or on an OCI image ([`images`]:
//! uploaded as an image-layout archive, or pulled from a registry, pinned by digest). Jobs run on their own worker threads behind a bounded queue, apart from the
//! liveness daemon, so they never delay a challenge answer. Every finished job carries a
//! [`receipt::Receipt`] signed by the leased chip's hardware key. [`renter`] is the client
//! side (`unet job`). Formats: docs/jobs.md.

pub mod auth;
pub mod exec;
#[cfg(test)]
mod image_tests;
pub mod images;
pub mod onnx;
pub mod pull;
pub mod receipt;
pub mod renter;
pub mod server;

use serde::{Deserialize, Serialize};

/// The body of `POST /v1/jobs`: which chip of the lease runs it (default: the first chip of
/// the lease this miner manages), the job, and a free salt so that the same job can be
/// submitted twice as two jobs (a byte-identical body is the same job: its id is the
/// SHA-256 of the body).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// The lease (must equal the signed `x-unet-lease`; it makes the job hash name it).
    pub lease: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    pub job: JobSpec,
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSpec {
    /// An ONNX model (base64 of the protobuf) and its inputs.
    Onnx {
        model: String,
        inputs: Vec<onnx::TensorIn>,
        /// Wall time, ms [default: the miner's `onnx_wall_ms`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wall_ms: Option<u64>,
    },
    /// A command (argv, no shell) with limits, on an image or on the busybox root.
    Exec {
        /// The command; with an image, empty means the image's `Cmd` (its `Entrypoint`, if
        /// any, always comes first).
        argv: Vec<String>,
        #[serde(default)]
        limits: exec::ExecLimits,
        /// The image, pinned by digest: `sha256:<hex>` (uploaded on this lease with
        /// `POST /v1/images`) or `REGISTRY/REPO@sha256:<hex>` (pulled). None: busybox.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
}

impl JobSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            JobSpec::Onnx { .. } => "onnx",
            JobSpec::Exec { .. } => "exec",
        }
    }
}

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Ran to completion (exec: exit status 0).
    Ok,
    /// Ran and failed (non-zero exit, signal, bad model or inputs, could not start).
    Failed,
    /// Stopped by the limit named in `limit`.
    LimitExceeded,
}

/// The result document of a finished job. Its exact bytes (as served in `result_json`) are
/// what the receipt's `result_hash` covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultDoc {
    pub job_id: String,
    pub lease_id: u64,
    pub chip_id: String,
    pub kind: String,
    pub status: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<exec::Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Unix ms when the job started and finished running.
    pub started_ms: u64,
    pub finished_ms: u64,
    /// Inference outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<onnx::TensorOut>>,
    /// Exec: exit code, signal, output (base64), whether the output was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_b64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_b64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_truncated: Option<bool>,
    /// The manifest digest (`sha256:<hex>`) of the image the job ran on; the receipt's
    /// `result_hash` covers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl ResultDoc {
    /// Checks that the job ran on the image the renter asked for (`requested`: the
    /// request's `image`, a digest or `REF@digest`; None: no image).
    pub fn check_image(&self, requested: Option<&str>) -> Result<(), String> {
        let want = requested.map(|r| r.rsplit_once('@').map_or(r, |(_, d)| d).to_lowercase());
        // A job that ran names its image; one whose image could not be had names none.
        if (self.status == Outcome::Ok || self.image.is_some()) && self.image != want {
            return Err(format!(
                "the result names image {:?}, the job asked for {:?}",
                self.image, want
            ));
        }
        Ok(())
    }
}

/// `GET /v1/jobs/{id}`: the job's state; once finished, the result document (as a string:
/// its bytes are hashed) and the chip's receipt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub job_id: String,
    pub lease_id: u64,
    /// `queued`, `running` or `done`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_json: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<receipt::Receipt>,
}

impl JobView {
    /// Checks that the receipt covers exactly this result and names this job; returns the
    /// parsed result. (The chip's signature is checked by [`receipt::Receipt::verify_signature`].)
    pub fn check_binding(&self) -> Result<ResultDoc, String> {
        let (Some(text), Some(r)) = (&self.result_json, &self.receipt) else {
            return Err("the job has no result yet".into());
        };
        if r.result_hash != hex::encode(auth::sha256(text.as_bytes())) {
            return Err("receipt result_hash is not the hash of result_json".into());
        }
        if r.job_hash != self.job_id {
            return Err("receipt job_hash is not the job id".into());
        }
        if r.lease_id != self.lease_id {
            return Err("receipt names another lease".into());
        }
        let doc: ResultDoc = serde_json::from_str(text).map_err(|e| format!("result_json: {e}"))?;
        if doc.job_id != self.job_id || doc.lease_id != self.lease_id || doc.chip_id != r.chip_id {
            return Err("result document names another job, lease or chip".into());
        }
        Ok(doc)
    }
}
