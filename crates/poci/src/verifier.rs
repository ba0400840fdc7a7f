//! One interface over every evidence kind, and the liveness checks.

use crate::crypto::{SigFailure, VerifyingKey};
use crate::error::VerifyError;
use crate::evidence::Evidence;
use crate::nvidia::NvidiaAttestation;
use crate::trust::TrustStore;
use crate::types::{ChipIdentity, DevicePublicKey, EvidenceKind};

/// Verifies registration evidence (the container of [`crate::evidence`]) into a [`ChipIdentity`].
///
/// Implementations are deterministic: same inputs, same answer, on every node; no network, no clock
/// (time comes in as `now_unix`, seconds since the Unix epoch, normally the block timestamp).
pub trait EvidenceVerifier {
    /// Verify `evidence` for the challenge `expected_nonce` at time `now_unix` against `trust`.
    fn verify_registration(
        &self,
        evidence: &[u8],
        expected_nonce: &[u8; 32],
        now_unix: u64,
        trust: &TrustStore,
    ) -> Result<ChipIdentity, VerifyError>;
}

/// Verifier for [`EvidenceKind::NvidiaSpdm`] only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NvidiaSpdmVerifier;

/// Verifier for [`EvidenceKind::VendorX509`] only.
#[derive(Debug, Clone, Copy, Default)]
pub struct VendorX509Verifier;

/// Verifier for every kind: dispatches on the container's kind tag.
#[derive(Debug, Clone, Copy, Default)]
pub struct PociVerifier;

fn verify_decoded(
    evidence: &Evidence,
    only: Option<EvidenceKind>,
    nonce: &[u8; 32],
    now: u64,
    trust: &TrustStore,
) -> Result<ChipIdentity, VerifyError> {
    if only.is_some_and(|k| k != evidence.kind()) {
        return Err(VerifyError::UnsupportedEvidenceKind(evidence.kind().tag()));
    }
    match evidence {
        Evidence::VendorX509(e) => crate::x509::verify(e, nonce, now, trust),
        Evidence::NvidiaSpdm(e) => crate::nvidia::verify(e, nonce, now, trust).map(|a| a.identity),
    }
}

impl EvidenceVerifier for NvidiaSpdmVerifier {
    fn verify_registration(
        &self,
        evidence: &[u8],
        expected_nonce: &[u8; 32],
        now_unix: u64,
        trust: &TrustStore,
    ) -> Result<ChipIdentity, VerifyError> {
        let e = Evidence::decode(evidence)?;
        verify_decoded(
            &e,
            Some(EvidenceKind::NvidiaSpdm),
            expected_nonce,
            now_unix,
            trust,
        )
    }
}

impl EvidenceVerifier for VendorX509Verifier {
    fn verify_registration(
        &self,
        evidence: &[u8],
        expected_nonce: &[u8; 32],
        now_unix: u64,
        trust: &TrustStore,
    ) -> Result<ChipIdentity, VerifyError> {
        let e = Evidence::decode(evidence)?;
        verify_decoded(
            &e,
            Some(EvidenceKind::VendorX509),
            expected_nonce,
            now_unix,
            trust,
        )
    }
}

impl EvidenceVerifier for PociVerifier {
    fn verify_registration(
        &self,
        evidence: &[u8],
        expected_nonce: &[u8; 32],
        now_unix: u64,
        trust: &TrustStore,
    ) -> Result<ChipIdentity, VerifyError> {
        let e = Evidence::decode(evidence)?;
        verify_decoded(&e, None, expected_nonce, now_unix, trust)
    }
}

/// Liveness for chips whose DeviceID key signs ([`crate::LivenessMethod::DeviceKeySignature`]):
/// `signature` is a raw low-S r||s ECDSA signature by `key` over the 32 bytes of `digest` as the
/// message (P-256 with SHA-256, P-384 with SHA-384): 64 or 96 bytes.
pub fn verify_liveness(
    key: &DevicePublicKey,
    digest: &[u8; 32],
    signature: &[u8],
) -> Result<(), VerifyError> {
    let key = VerifyingKey::from_device_key(key).ok_or(VerifyError::InvalidPublicKey)?;
    key.verify_raw(digest, signature, true)
        .map_err(|e| match e {
            SigFailure::Malformed => VerifyError::MalformedSignature,
            SigFailure::Invalid => VerifyError::LivenessSignatureInvalid,
        })
}

/// Liveness for chips that answer with a fresh attestation
/// ([`crate::LivenessMethod::FreshAttestation`], NVIDIA): the evidence container must verify with
/// the challenge `digest` as its nonce and come from the registered chip.
pub fn verify_liveness_attestation(
    chip: &ChipIdentity,
    evidence: &[u8],
    digest: &[u8; 32],
    now_unix: u64,
    trust: &TrustStore,
) -> Result<ChipIdentity, VerifyError> {
    let fresh = PociVerifier.verify_registration(evidence, digest, now_unix, trust)?;
    if fresh.chip_id != chip.chip_id || fresh.kind != chip.kind {
        return Err(VerifyError::ChipMismatch);
    }
    Ok(fresh)
}

/// Full NVIDIA result (measurements, opaque fields) from a container, for callers that want more
/// than the [`ChipIdentity`].
pub fn verify_nvidia_container(
    evidence: &[u8],
    expected_nonce: &[u8; 32],
    now_unix: u64,
    trust: &TrustStore,
) -> Result<NvidiaAttestation, VerifyError> {
    match Evidence::decode(evidence)? {
        Evidence::NvidiaSpdm(e) => crate::nvidia::verify(&e, expected_nonce, now_unix, trust),
        other => Err(VerifyError::UnsupportedEvidenceKind(other.kind().tag())),
    }
}

/// [`verify_nvidia_container`] with the chain looked up in and stored into `cache`: a repeat
/// report from a known chip costs one P-384 verification plus parsing. Same verdict as
/// [`verify_nvidia_container`] for every input (see [`crate::nvidia::ChainCache`]).
pub fn verify_nvidia_container_cached(
    evidence: &[u8],
    expected_nonce: &[u8; 32],
    now_unix: u64,
    trust: &TrustStore,
    cache: &crate::nvidia::ChainCache,
) -> Result<NvidiaAttestation, VerifyError> {
    match Evidence::decode(evidence)? {
        Evidence::NvidiaSpdm(e) => {
            crate::nvidia::verify_cached(&e, expected_nonce, now_unix, trust, cache)
        }
        other => Err(VerifyError::UnsupportedEvidenceKind(other.kind().tag())),
    }
}
