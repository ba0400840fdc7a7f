//! Services and live logs: the documents of `POST /v1/service`, `GET /v1/service`,
//! `POST /v1/service/stop`, `GET /v1/service/logs/{offset}` and `GET /v1/jobs/{id}/logs/{offset}`,
//! and the client calls that send them. Formats: docs/jobs.md.
//!
//! A service is an image (pinned by digest) with a command and environment that runs in the
//! sandbox for the life of the lease; the miner forwards one host port (the `endpoint`) to
//! one port of the container. One service per lease.

use crate::client::{JobClient, RenterError};
use serde::{Deserialize, Serialize};

/// The body of `POST /v1/service`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRequest {
    /// The lease (must equal the signed `x-unet-lease`).
    pub lease: u64,
    /// The chip of the lease it runs on [default: the first this miner manages].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip: Option<String>,
    /// The image, pinned by digest (`sha256:<hex>` uploaded on this lease, or
    /// `REGISTRY/REPO@sha256:<hex>`).
    pub image: String,
    /// The command; empty means the image's `Cmd` (its `Entrypoint` always comes first).
    #[serde(default)]
    pub argv: Vec<String>,
    /// Extra `KEY=VALUE` pairs of its environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// The container port the miner forwards to (1024..=65535: the workload has no
    /// capabilities, so it cannot bind a lower port).
    pub port: u16,
}

/// Running, or not any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Its image is being prepared and its container started.
    Starting,
    /// The container runs and its port is forwarded.
    Running,
    /// Stopped: by the renter, the lease's end, the miner, or its command exited.
    Stopped,
}

/// The miner's answer about a lease's service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// The lease.
    pub lease_id: u64,
    /// The chip it runs on (hex).
    pub chip_id: String,
    /// Running or stopped.
    pub state: ServiceState,
    /// Where the forwarded port is reached: `http://HOST:PORT` (any TCP protocol works at
    /// `HOST:PORT`; empty until it runs).
    pub endpoint: String,
    /// The image's manifest digest.
    pub image: String,
    /// The container port.
    pub port: u16,
    /// Why it stopped (`renter`, `lease_closed`, `lease_expired`, `exited`, `miner_shutdown`,
    /// `start_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_because: Option<String>,
    /// The command's exit status when it exited on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Milliseconds since the epoch it started.
    pub started_ms: u64,
}

/// A piece of a workload's live output (`GET .../logs/{offset}`): base64 of the bytes
/// from `offset` (stdout and stderr interleaved as they arrived). The server answers at once
/// when bytes past the asked offset exist or the workload has ended, else after at most
/// `LOG_POLL_MS` with an empty chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunkDoc {
    /// Stream offset of the first byte (past the asked one when older bytes were dropped).
    pub offset: u64,
    /// Base64 of the bytes.
    pub data_b64: String,
    /// Offset just past the last byte written so far.
    pub end: u64,
    /// Nothing more will come: the workload ended (and every byte up to `end` was sent).
    pub done: bool,
}

/// Longest wait of a log request, ms.
pub const LOG_POLL_MS: u64 = 20_000;

/// Most bytes of one log answer.
pub const LOG_CHUNK_MAX: usize = 256 << 10;

impl JobClient {
    /// Starts the lease's service.
    pub async fn service_start(&self, req: &ServiceRequest) -> Result<ServiceView, RenterError> {
        let body = serde_json::to_vec(req).map_err(|e| RenterError::Other(e.to_string()))?;
        let v = self.send("POST", "/v1/service", body).await?;
        serde_json::from_value(v).map_err(|e| RenterError::Other(format!("service view: {e}")))
    }

    /// The lease's service.
    pub async fn service_status(&self) -> Result<ServiceView, RenterError> {
        let v = self.send("GET", "/v1/service", Vec::new()).await?;
        serde_json::from_value(v).map_err(|e| RenterError::Other(format!("service view: {e}")))
    }

    /// Stops the lease's service.
    pub async fn service_stop(&self) -> Result<ServiceView, RenterError> {
        let v = self.send("POST", "/v1/service/stop", Vec::new()).await?;
        serde_json::from_value(v).map_err(|e| RenterError::Other(format!("service view: {e}")))
    }

    /// One long poll of a log: `job` names a job, `None` the lease's service.
    pub async fn logs(&self, job: Option<&str>, offset: u64) -> Result<LogChunkDoc, RenterError> {
        let path = match job {
            Some(id) => format!("/v1/jobs/{id}/logs/{offset}"),
            None => format!("/v1/service/logs/{offset}"),
        };
        let v = self.send("GET", &path, Vec::new()).await?;
        serde_json::from_value(v).map_err(|e| RenterError::Other(format!("log chunk: {e}")))
    }

    /// Follows a log from its start until the workload ends, handing each piece of bytes to
    /// `sink` as it arrives (a note replaces bytes dropped past the miner's cap).
    pub async fn follow_logs(
        &self,
        job: Option<&str>,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(), RenterError> {
        use base64::Engine as _;
        let mut offset = 0u64;
        loop {
            let c = self.logs(job, offset).await?;
            if c.offset > offset {
                sink(format!("\n[{} bytes dropped]\n", c.offset - offset).as_bytes());
            }
            let data = base64::engine::general_purpose::STANDARD
                .decode(&c.data_b64)
                .map_err(|e| RenterError::Other(format!("log chunk: {e}")))?;
            sink(&data);
            offset = c.offset + data.len() as u64;
            if c.done && offset >= c.end {
                return Ok(());
            }
        }
    }
}
