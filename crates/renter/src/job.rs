//! The job endpoint's documents: what a renter submits ([`JobRequest`]) and what the miner
//! answers ([`JobView`], with the [`ResultDoc`] its receipt covers). Formats: docs/jobs.md.

use crate::receipt::Receipt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of `POST /v1/jobs`: which chip of the lease runs it (default: the first chip of
/// the lease this miner manages), the job, and a free salt so that the same job can be
/// submitted twice as two jobs (a byte-identical body is the same job: its id is the
/// SHA-256 of the body).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// The lease (must equal the signed `x-unet-lease`; it makes the job hash name it).
    pub lease: u64,
    /// The chip (hex chip id) that runs the job; it must be a chip of the lease. None: the first
    /// chip of the lease that this miner manages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip: Option<String>,
    /// Free text that only changes the job id, so an identical job can be submitted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// What to run.
    pub job: JobSpec,
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSpec {
    /// An ONNX model (base64 of the protobuf) and its inputs.
    Onnx {
        /// The ONNX model: base64 of its protobuf bytes.
        model: String,
        /// The model's inputs: by name when every one is named, otherwise in graph order.
        inputs: Vec<TensorIn>,
        /// Wall time, ms [default: the miner's `onnx_wall_ms`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wall_ms: Option<u64>,
    },
    /// A command (argv, no shell) with limits, on an image or on the busybox root.
    Exec {
        /// The command; with an image, empty means the image's `Cmd` (its `Entrypoint`, if
        /// any, always comes first).
        argv: Vec<String>,
        /// Wall time, memory, output and file-size limits; each within the miner's maximum.
        #[serde(default)]
        limits: ExecLimits,
        /// The image, pinned by digest: `sha256:<hex>` (uploaded on this lease with
        /// `POST /v1/images`) or `REGISTRY/REPO@sha256:<hex>` (pulled). None: busybox.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
}

impl JobSpec {
    /// The wire name of the kind (`onnx` or `exec`), as in the result's `kind`.
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
    /// The job id: hex SHA-256 of the request body.
    pub job_id: String,
    /// The lease the job ran under.
    pub lease_id: u64,
    /// The chip (hex chip id) that ran the job and signed the receipt.
    pub chip_id: String,
    /// `onnx` or `exec` ([`JobSpec::kind`]).
    pub kind: String,
    /// How the job ended.
    pub status: Outcome,
    /// With [`Outcome::LimitExceeded`]: which limit stopped the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// With [`Outcome::Failed`]: why, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Unix ms when the job started running.
    pub started_ms: u64,
    /// Unix ms when the job finished running (not before `started_ms`).
    pub finished_ms: u64,
    /// Inference outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<TensorOut>>,
    /// Exec: the exit code, when the command exited (not killed by a signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Exec: the signal that killed the command, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Exec: the command's standard output, base64, at most `output_bytes` with stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_b64: Option<String>,
    /// Exec: the command's standard error, base64, at most `output_bytes` with stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_b64: Option<String>,
    /// Exec: true when the output was cut at `output_bytes`.
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

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// On a worker.
    Running,
    /// Finished: the view carries the result and the receipt.
    Done,
}

impl JobState {
    /// The wire name (`queued`, `running`, `done`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /v1/jobs/{id}`: the job's state; once finished, the result document (as a string:
/// its bytes are hashed) and the chip's receipt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// The job id: hex SHA-256 of the request body.
    pub job_id: String,
    /// The lease the job runs under.
    pub lease_id: u64,
    /// `queued`, `running` or `done`.
    pub state: JobState,
    /// Once `done`: the result document ([`ResultDoc`]) as JSON text; the receipt hashes these
    /// exact bytes, so it is kept as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_json: Option<String>,
    /// Once `done`: the receipt the chip signed over the job and its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

impl JobView {
    /// Checks that the receipt covers exactly this result and names this job; returns the
    /// parsed result. (The chip's signature is checked by [`Receipt::verify_signature`].)
    pub fn check_binding(&self) -> Result<ResultDoc, String> {
        let (Some(text), Some(r)) = (&self.result_json, &self.receipt) else {
            return Err("the job has no result yet".into());
        };
        if r.result_hash != hex::encode(unet_types::sha256(&[text.as_bytes()])) {
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

/// A tensor in a request: element type, shape, and the elements in row-major order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorIn {
    /// The graph input this tensor feeds. Inputs are matched by name when every one is
    /// named, otherwise by position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `f32`, `f64`, `i32` or `i64`.
    pub dtype: String,
    /// Dimensions, outermost first; their product is the number of elements in `data`.
    pub shape: Vec<usize>,
    /// The elements, row-major, as JSON numbers of `dtype`.
    pub data: Vec<Value>,
}

/// Elements of an output tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TensorData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit floats.
    F64(Vec<f64>),
    /// 32-bit signed integers.
    I32(Vec<i32>),
    /// 64-bit signed integers.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
}

/// A tensor in a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorOut {
    /// The graph output's name.
    pub name: String,
    /// Element type: `f32`, `f64`, `i32`, `i64` or `bool`.
    pub dtype: String,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// The elements, row-major.
    pub data: TensorData,
}

/// Limits of one command. Missing fields take the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecLimits {
    /// Wall time, milliseconds.
    pub wall_ms: u64,
    /// Memory of all the job's processes together, MiB (memory cgroup, swap included).
    pub memory_mib: u64,
    /// Stdout and stderr captured together, bytes.
    pub output_bytes: u64,
    /// Largest file the job may write (`RLIMIT_FSIZE`), and the size of its `/tmp` tmpfs,
    /// bytes.
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

/// Which limit stopped a job (the `limit` of its result).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// `wall_time`: the job ran past its wall time.
    WallTime,
    /// `memory`: the kernel's OOM killer fired in the job's memory cgroup.
    Memory,
    /// `output`: stdout and stderr together passed `output_bytes`.
    Output,
    /// `file_size`: the job wrote a file past `file_bytes`.
    FileSize,
}

/// A refusal of the job endpoint, sent with a 4xx/5xx status:
/// `{"error": {"code", "message"}}` (codes: docs/jobs.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The body of an [`ErrorReply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code (`bad_signature`, `lease_closed`, `queue_full`, ...).
    pub code: String,
    /// Why, in words.
    pub message: String,
}

impl ErrorReply {
    /// The reply for `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// The answer to `POST /v1/images`: the uploaded image's manifest digest (what a job's
/// `image` names), the lease it was granted to, and its OCI configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageUploaded {
    /// `sha256:<hex>` of the manifest.
    pub digest: String,
    /// The lease that may run it.
    pub lease_id: u64,
    /// The image's configuration (`cmd`, `entrypoint`, `env`, ...), as the miner read it.
    pub config: Value,
}

/// `GET /v1/info` (unauthenticated): what the endpoint serves and its limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// The chain the miner serves (null while the node cannot be reached).
    pub chain_id: Option<u64>,
    /// The chips this miner manages (hex).
    pub chips: Vec<String>,
    /// Jobs running at once.
    pub workers: usize,
    /// Jobs waiting at most.
    pub queue_capacity: usize,
    /// Jobs waiting now.
    pub queued: usize,
    /// Longest request body, bytes.
    pub max_body: usize,
    /// The most an exec job may ask for.
    pub max_exec: ExecLimits,
    /// Wall time of an inference that names none.
    pub onnx_wall_ms: u64,
    /// The most an inference may name.
    pub max_onnx_wall_ms: u64,
    /// Job kinds served (`onnx`, `exec`).
    pub kinds: Vec<String>,
    /// Longest image archive, bytes.
    pub max_image_bytes: usize,
}
