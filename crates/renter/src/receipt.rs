//! Job receipts: the leased chip's hardware key vouches for (lease, job, result).
//!
//! ```text
//! digest = SHA-256("UNET_JOB_RECEIPT_V1" || chain_id u64 BE || lease_id u64 BE
//!                  || job_hash [32] || result_hash [32])
//! ```
//!
//! `job_hash` is SHA-256 of the exact request body the renter signed, `result_hash` SHA-256 of
//! the exact result document the miner returns. The chip signs `digest` the way it answers a
//! liveness challenge (`unet_miner`'s `ChipBackend::answer`): an emulated or vendor-x509 chip with a
//! raw ECDSA `r || s` signature by its DeviceID key, an NVIDIA GPU with a fresh SPDM
//! attestation whose nonce is `digest`. The miner signs (`unet_miner::jobs::receipt`); anyone
//! can check a receipt here with the chip's device key as registered on chain
//! (`unet_getChip`) — `unet market verify-receipt`.

use serde::{Deserialize, Serialize};
use unet_poci::{
    verify_liveness, Curve, DevicePublicKey, EvidenceKind, EvidenceVerifier, PociVerifier,
    TrustStore,
};
use unet_types::chip::kind;

/// Domain separator of the receipt digest.
pub const RECEIPT_DOMAIN: &[u8] = b"UNET_JOB_RECEIPT_V1";

/// The digest a chip signs for a receipt.
pub fn receipt_digest(
    chain_id: u64,
    lease_id: u64,
    job_hash: &[u8; 32],
    result_hash: &[u8; 32],
) -> [u8; 32] {
    let mut m = Vec::with_capacity(RECEIPT_DOMAIN.len() + 16 + 64);
    m.extend_from_slice(RECEIPT_DOMAIN);
    m.extend_from_slice(&chain_id.to_be_bytes());
    m.extend_from_slice(&lease_id.to_be_bytes());
    m.extend_from_slice(job_hash);
    m.extend_from_slice(result_hash);
    unet_types::sha256(&[&m])
}

/// A signed receipt, as returned with every finished job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The chain the lease lives on.
    pub chain_id: u64,
    /// The lease the job ran under.
    pub lease_id: u64,
    /// The chip that ran the job and signed (hex).
    pub chip_id: String,
    /// SHA-256 of the signed request body (hex).
    pub job_hash: String,
    /// SHA-256 of the result document (hex).
    pub result_hash: String,
    /// The chip's signature over [`receipt_digest`] (hex).
    pub signature: String,
}

fn hex32(what: &str, s: &str) -> Result<[u8; 32], String> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{what} is not 32 bytes of hex"))
}

impl Receipt {
    /// The digest this receipt claims to sign.
    pub fn digest(&self) -> Result<[u8; 32], String> {
        Ok(receipt_digest(
            self.chain_id,
            self.lease_id,
            &hex32("job_hash", &self.job_hash)?,
            &hex32("result_hash", &self.result_hash)?,
        ))
    }

    /// Checks the signature against the chip's registered device key (`device_key`: SEC1
    /// hex as `unet_getChip` reports it) and evidence kind. For `nvidia-spdm` chips the
    /// signature is an attestation, verified against `trust` at `now_unix`.
    pub fn verify_signature(
        &self,
        kind: &str,
        device_key: &str,
        trust: &TrustStore,
        now_unix: u64,
    ) -> Result<(), String> {
        let digest = self.digest()?;
        let sig = hex::decode(&self.signature).map_err(|_| "signature is not hex".to_string())?;
        let chip_id = hex32("chip_id", &self.chip_id)?;
        if kind == kind::name(kind::NVIDIA_SPDM) {
            let fresh = PociVerifier
                .verify_registration(&sig, &digest, now_unix, trust)
                .map_err(|e| format!("attestation: {e}"))?;
            if fresh.chip_id != chip_id {
                return Err("attestation is from another chip".into());
            }
            return Ok(());
        }
        let sec1 = hex::decode(device_key).map_err(|_| "device key is not hex".to_string())?;
        let curve = match sec1.len() {
            65 => Curve::P256,
            97 => Curve::P384,
            n => {
                return Err(format!(
                    "device key of {n} bytes is not a P-256/P-384 point"
                ))
            }
        };
        let key = DevicePublicKey { curve, sec1 };
        if key.chip_id(EvidenceKind::VendorX509) != chip_id {
            return Err("the device key is not the key of chip_id".into());
        }
        verify_liveness(&key, &digest, &sig).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_the_documented_hash() {
        let d = receipt_digest(1, 2, &[3; 32], &[4; 32]);
        let mut m = b"UNET_JOB_RECEIPT_V1".to_vec();
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        m.extend_from_slice(&[3; 32]);
        m.extend_from_slice(&[4; 32]);
        assert_eq!(d, unet_types::sha256(&[&m]));
        assert_ne!(d, receipt_digest(1, 3, &[3; 32], &[4; 32]));
    }
}
