//! `vendor-x509` evidence: a pinned vendor root certifies the chip's DeviceID key (P-256 or P-384)
//! in an X.509 certificate; the chip proves possession by signing the registration challenge.
//!
//! Device certificate profile: subject `CN = <model>` and `serialNumber = <serial>` (each exactly
//! once, UTF8String/PrintableString/IA5String); keyUsage, if present, includes `digitalSignature`;
//! not a CA.
//!
//! Registration: `nonce == expected`, then a raw low-S r||s ECDSA signature by the device key over
//! the 32 bytes [`registration_digest`]`(nonce)` as the message (P-256 with SHA-256, P-384 with
//! SHA-384). Liveness: the same signature scheme over the protocol's 32-byte challenge digest
//! ([`crate::verify_liveness`]).

use crate::chain::{name_attr, verify_chain, OID_CN, OID_SERIAL_NUMBER};
use crate::crypto::{sha256, SigFailure};
use crate::error::VerifyError;
use crate::evidence::VendorX509Evidence;
use crate::trust::TrustStore;
use crate::types::{ChipIdentity, EvidenceKind, FirmwareInfo, LivenessMethod};

/// Domain tag of the registration digest.
pub const REGISTRATION_DOMAIN: &[u8] = b"UNET-POCI/vendor-x509/register/v1";

/// What the device signs at registration: `SHA-256(REGISTRATION_DOMAIN || nonce)`. The domain keeps a
/// registration signature from ever being a valid liveness answer, and the reverse.
pub fn registration_digest(nonce: &[u8; 32]) -> [u8; 32] {
    sha256(&[REGISTRATION_DOMAIN, nonce.as_slice()].concat())
}

/// Verify vendor-x509 evidence at `now_unix` against `trust`, for the challenge `expected_nonce`.
pub fn verify(
    evidence: &VendorX509Evidence,
    expected_nonce: &[u8; 32],
    now_unix: u64,
    trust: &TrustStore,
) -> Result<ChipIdentity, VerifyError> {
    let chain = verify_chain(&evidence.chain, EvidenceKind::VendorX509, now_unix, trust)?;
    let leaf = &chain.certs[0];
    if leaf.is_ca() {
        return Err(VerifyError::KeyUsageViolation { index: 0 });
    }
    let bad_name = |_| VerifyError::MalformedCertificate {
        index: 0,
        reason: "subject attribute repeated or not a string".into(),
    };
    let model = name_attr(leaf.subject(), OID_CN)
        .map_err(bad_name)?
        .filter(|m| !m.is_empty())
        .ok_or(VerifyError::MissingField("model (subject CN)"))?;
    let serial = name_attr(leaf.subject(), OID_SERIAL_NUMBER)
        .map_err(bad_name)?
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MissingField("serial (subject serialNumber)"))?;

    if &evidence.nonce != expected_nonce {
        return Err(VerifyError::NonceMismatch);
    }
    leaf.key
        .verify_raw(
            &registration_digest(&evidence.nonce),
            &evidence.signature,
            true,
        )
        .map_err(|e| match e {
            SigFailure::Malformed => VerifyError::MalformedSignature,
            SigFailure::Invalid => VerifyError::EvidenceSignatureInvalid,
        })?;

    let device_public_key = leaf.key.to_device_key();
    let chip_id = device_public_key.chip_id(EvidenceKind::VendorX509);
    if trust.is_chip_revoked(&chip_id) {
        return Err(VerifyError::ChipRevoked(hex::encode(chip_id)));
    }
    Ok(ChipIdentity {
        chip_id,
        kind: EvidenceKind::VendorX509,
        model_detail: model.clone(),
        model,
        serial,
        device_public_key,
        liveness: LivenessMethod::DeviceKeySignature,
        firmware: FirmwareInfo::default(),
        root_fingerprint: chain.anchor.fingerprint,
        chain_fingerprints: chain.intermediate_ids(),
        devnet: chain.anchor.devnet_only,
    })
}
