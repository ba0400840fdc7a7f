//! The renter's side of the job endpoint: signed submissions and fetches, and the full
//! check of a result's receipt against the chain (`unet job`, `unet market verify-receipt`).

use crate::{
    auth::sign_request,
    job::{ErrorReply, ImageUploaded, JobRequest, JobState, JobView, ResultDoc},
    lease::LeaseInfo,
};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use unet_poci::TrustStore;
use unet_types::{chip::ChipId, PrivateKey};

/// Why a request to a miner failed.
#[derive(Debug, thiserror::Error)]
pub enum RenterError {
    /// The miner refused it (its JSON error).
    #[error("the miner refused: {code}: {message} (HTTP {status})")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The miner's error code (`http` when the answer was not JSON).
        code: String,
        /// The miner's message.
        message: String,
    },
    /// The request did not reach the miner, or its answer did not arrive.
    #[error("cannot reach the miner at {url}: {reason}")]
    Transport {
        /// Where the request went.
        url: String,
        /// What the HTTP client reported.
        reason: String,
    },
    /// Anything else: an answer that does not parse, a job still running at the deadline.
    #[error("{0}")]
    Other(String),
}

impl RenterError {
    /// The miner's error code, for a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            RenterError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Talks to one miner's job endpoint for one lease, signing every request.
pub struct JobClient {
    http: reqwest::Client,
    endpoint: String,
    key: PrivateKey,
    chain_id: u64,
    lease_id: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl JobClient {
    /// A client of the job endpoint at `endpoint` (the lease's), signing as `key` for lease
    /// `lease_id` on chain `chain_id`.
    pub fn new(endpoint: &str, key: PrivateKey, chain_id: u64, lease_id: u64) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap_or_default(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            key,
            chain_id,
            lease_id,
        }
    }

    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Value, RenterError> {
        self.send_typed(method, path, body, "application/json")
            .await
    }

    async fn send_typed(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Value, RenterError> {
        let url = format!("{}{path}", self.endpoint);
        let headers = sign_request(
            &self.key,
            self.chain_id,
            self.lease_id,
            method,
            path,
            &body,
            now_ms(),
        );
        let mut req = match method {
            "POST" => self.http.post(&url).body(body),
            _ => self.http.get(&url),
        };
        req = req.header("content-type", content_type);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let transport = |e: reqwest::Error| RenterError::Transport {
            url: url.clone(),
            reason: e.to_string(),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(transport)?;
        if status >= 400 {
            return Err(match serde_json::from_str::<ErrorReply>(&text) {
                Ok(r) => RenterError::Refused {
                    status,
                    code: r.error.code,
                    message: r.error.message,
                },
                // A refusal by the HTTP layer (e.g. 413 past the body cap) is not JSON.
                Err(_) if serde_json::from_str::<Value>(&text).is_err() => RenterError::Refused {
                    status,
                    code: "http".into(),
                    message: format!("{text:.200}"),
                },
                Err(_) => RenterError::Refused {
                    status,
                    code: "unknown".into(),
                    message: format!("{text:.200}"),
                },
            });
        }
        serde_json::from_str(&text).map_err(|_| {
            RenterError::Other(format!(
                "the miner answered HTTP {status} with non-JSON: {text:.200}"
            ))
        })
    }

    /// Downloads the lease's volume as a tar into `out` (while the lease serves and during
    /// the miner's grace period after it); returns the bytes written.
    pub async fn download_volume(&self, out: &mut impl std::io::Write) -> Result<u64, RenterError> {
        let path = "/v1/volume";
        let url = format!("{}{path}", self.endpoint);
        let headers = sign_request(
            &self.key,
            self.chain_id,
            self.lease_id,
            "GET",
            path,
            &[],
            now_ms(),
        );
        let mut req = self.http.get(&url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let transport = |e: reqwest::Error| RenterError::Transport {
            url: url.clone(),
            reason: e.to_string(),
        };
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let text = resp.text().await.map_err(transport)?;
            return Err(match serde_json::from_str::<ErrorReply>(&text) {
                Ok(r) => RenterError::Refused {
                    status,
                    code: r.error.code,
                    message: r.error.message,
                },
                Err(_) => RenterError::Refused {
                    status,
                    code: "http".into(),
                    message: format!("{text:.200}"),
                },
            });
        }
        let mut written = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            out.write_all(&chunk)
                .map_err(|e| RenterError::Other(format!("writing the volume: {e}")))?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// Submits a job (the body is `req` serialized once; its hash is the job id).
    pub async fn submit(&self, req: &JobRequest) -> Result<JobView, RenterError> {
        let body = serde_json::to_vec(req).map_err(|e| RenterError::Other(e.to_string()))?;
        let v = self.send("POST", "/v1/jobs", body).await?;
        serde_json::from_value(v).map_err(|e| RenterError::Other(format!("job view: {e}")))
    }

    /// Uploads an OCI image-layout archive for this lease; the answer names its manifest
    /// digest (`sha256:<hex>`, what a job's `image` names).
    pub async fn upload_image(&self, archive: Vec<u8>) -> Result<ImageUploaded, RenterError> {
        let v = self
            .send_typed("POST", "/v1/images", archive, "application/x-tar")
            .await?;
        serde_json::from_value(v)
            .map_err(|e| RenterError::Other(format!("image upload answer: {e}")))
    }

    /// The job's current view.
    pub async fn get(&self, job_id: &str) -> Result<JobView, RenterError> {
        let v = self
            .send("GET", &format!("/v1/jobs/{job_id}"), Vec::new())
            .await?;
        serde_json::from_value(v).map_err(|e| RenterError::Other(format!("job view: {e}")))
    }

    /// Polls until the job is done or `timeout` passes; `progress(state)` after each poll.
    pub async fn wait(
        &self,
        job_id: &str,
        timeout: Duration,
        mut progress: impl FnMut(&str),
    ) -> Result<JobView, RenterError> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.get(job_id).await?;
            progress(v.state.as_str());
            if v.state == JobState::Done {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                return Err(RenterError::Other(format!(
                    "job {job_id} still {} after {} s",
                    v.state,
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A receipt checked against the chain.
#[derive(Clone, Debug)]
pub struct VerifiedReceipt {
    /// The result document the receipt covers.
    pub result: ResultDoc,
    /// The chip that signed (hex, lower case).
    pub chip_id: String,
    /// Its evidence kind as registered (`vendor-x509`, `nvidia-spdm`).
    pub chip_kind: String,
    /// The lease, as the chain reports it.
    pub lease: LeaseInfo,
}

/// Checks a finished job completely: the receipt binds this result, job and lease; the
/// lease exists on the chain the node serves (same chain id) and contains the chip; the
/// chip's signature verifies with its device key as registered on chain.
pub async fn verify_receipt(
    client: &unet_client::Client,
    view: &JobView,
) -> Result<VerifiedReceipt, String> {
    let result = view.check_binding()?;
    let receipt = view.receipt.as_ref().ok_or("no receipt")?;
    let status = client
        .status()
        .await
        .map_err(|e| format!("unet_status: {e}"))?;
    if status.chain_id != receipt.chain_id {
        return Err(format!(
            "the receipt is for chain {}, the node serves chain {}",
            receipt.chain_id, status.chain_id
        ));
    }
    let lease: LeaseInfo = client
        .lease(receipt.lease_id)
        .await
        .map_err(|e| format!("unet_getLease {}: {e}", receipt.lease_id))?
        .into();
    let chip_id = receipt.chip_id.to_lowercase();
    if !lease.chips.contains(&chip_id) {
        return Err(format!("chip {chip_id} is not in lease {}", lease.id));
    }
    let id: ChipId = hex::decode(&chip_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("receipt chip_id is not 32 bytes of hex")?;
    let chip = client
        .chip(&id)
        .await
        .map_err(|e| format!("unet_getChip {chip_id}: {e}"))?;
    let kind = chip.kind.as_str();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    receipt.verify_signature(
        kind,
        &hex::encode(&chip.device_key),
        &TrustStore::with_nvidia_root(),
        now,
    )?;
    Ok(VerifiedReceipt {
        result,
        chip_id,
        chip_kind: kind.to_string(),
        lease,
    })
}
