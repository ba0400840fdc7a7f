//! `nvidia-spdm` evidence: a real NVIDIA H100/H200/B200 attestation report (SPDM 1.1
//! GET_MEASUREMENTS, ECDSA P-384) and its certificate chain to the pinned "NVIDIA Device Identity CA".
//!
//! Checks, in order (each has its own [`VerifyError`] variant):
//! 1. the report parses strictly ([`spdm::parse_report`]);
//! 2. the raw r||s signature at the end verifies with the leaf certificate's P-384 key over SHA-384
//!    of request || response-without-signature (first, as the cheapest rejection);
//! 3. the requester nonce equals the expected challenge;
//! 4. the chain (leaf first) verifies to a pinned [`EvidenceKind::NvidiaSpdm`] root at `now`,
//!    with revoked certificates rejected ([`crate::verify_certificate_chain`] rules);
//! 5. the report's FWID TLV equals an FWID in the leaf's TCG DICE extension, and the extension's
//!    identity key (when present) is the DeviceID (BROM) certificate's key;
//! 6. `chip_id` = [`crate::chip_id`] of the BROM certificate's key for this kind, and is not revoked.

pub mod fields;
pub mod spdm;

use der::Encode;
use serde::{Deserialize, Serialize};

use crate::chain::{
    name_attr, verify_chain, ParsedCert, OID_CN, OID_DICE_TCB_INFO, OID_SERIAL_NUMBER,
};
use crate::error::VerifyError;
use crate::evidence::NvidiaEvidence;
use crate::trust::TrustStore;
use crate::types::{ChipIdentity, Curve, EvidenceKind, FirmwareInfo, LivenessMethod};

pub use fields::{model_for_chip, OpaqueData};
pub use spdm::{parse_report, MeasurementBlock, OpaqueField, SpdmReport};

/// NVIDIA's "NVIDIA Device Identity CA" root (verifier_device_root.pem from NVIDIA's local GPU
/// verifier, BSD-3-Clause; see tests/vectors/LICENSE.nvidia.txt).
pub const NVIDIA_DEVICE_IDENTITY_CA_PEM: &str =
    include_str!("../../tests/vectors/verifier_device_root.pem");

/// Everything a verified NVIDIA report says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvidiaAttestation {
    /// the chip identity derived from the evidence
    pub identity: ChipIdentity,
    /// the parsed report (measurement blocks, nonces, raw opaque TLVs)
    pub report: SpdmReport,
    /// decoded opaque fields
    pub opaque: OpaqueData,
    /// chip name from the BROM certificate CN, e.g. "GH100"
    pub chip_name: String,
    /// serial of the BROM (DeviceID) certificate, e.g. "41431D480FE5E87274"
    pub brom_serial: String,
    /// the leaf certificate's CN, e.g. "GH100 A01 GSP FMC LF"
    pub leaf_common_name: String,
}

/// Verify NVIDIA evidence at `now` (unix seconds) against `trust`, for the challenge `expected_nonce`.
pub fn verify(
    evidence: &NvidiaEvidence,
    expected_nonce: &[u8; 32],
    now_unix: u64,
    trust: &TrustStore,
) -> Result<NvidiaAttestation, VerifyError> {
    let report = parse_report(&evidence.report)?;
    if evidence.chain.len() < 2 {
        return Err(VerifyError::MissingField("DeviceID (BROM) certificate"));
    }

    // Report signature by the leaf (firmware alias) key, checked first because it is the cheapest
    // rejection (one verification); the leaf itself is only trusted once the chain verifies below.
    let leaf = ParsedCert::parse(0, &evidence.chain[0])?;
    if leaf.key.curve() != Curve::P384 {
        return Err(VerifyError::UnsupportedAlgorithm { index: 0 });
    }
    let signed = &evidence.report[..report.signed_len];
    if leaf
        .key
        .verify_raw(signed, &report.signature, false)
        .is_err()
    {
        return Err(VerifyError::ReportSignatureInvalid);
    }

    // Freshness: the requester nonce is our challenge (else: a genuine report, replayed).
    if &report.requester_nonce != expected_nonce {
        return Err(VerifyError::NonceMismatch);
    }

    let chain = verify_chain(&evidence.chain, EvidenceKind::NvidiaSpdm, now_unix, trust)?;
    let leaf = &chain.certs[0];

    // Firmware binding: report FWID == DICE FWID of the leaf.
    let opaque = OpaqueData::from_fields(&report.opaque)?;
    let dice_value = leaf
        .extension(OID_DICE_TCB_INFO)
        .ok_or(VerifyError::DiceExtension(
            "missing from the leaf certificate",
        ))?;
    let dice = fields::parse_dice(dice_value)?;
    let fwid = opaque.fwid.as_ref().ok_or(VerifyError::FwidMismatch)?;
    if !dice.fwids.iter().any(|(_, d)| d == fwid) {
        return Err(VerifyError::FwidMismatch);
    }

    // DeviceID: the BROM certificate, which must directly issue the leaf.
    let brom_cn = name_attr(chain.certs[1].subject(), OID_CN)
        .ok()
        .flatten()
        .filter(|cn| cn.contains("BROM"))
        .ok_or(VerifyError::MissingField("DeviceID (BROM) certificate"))?;
    let brom = &chain.certs[1];
    if let Some(identity) = &dice.identity_spki {
        let brom_spki = brom
            .cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|_| VerifyError::DiceIdentityMismatch)?;
        if identity != &brom_spki {
            return Err(VerifyError::DiceIdentityMismatch);
        }
    }
    let device_public_key = brom.key.to_device_key();
    let chip_id = device_public_key.chip_id(EvidenceKind::NvidiaSpdm);
    if trust.is_chip_revoked(&chip_id) {
        return Err(VerifyError::ChipRevoked(hex::encode(chip_id)));
    }

    let brom_serial = match name_attr(brom.subject(), OID_SERIAL_NUMBER).ok().flatten() {
        Some(s) => s,
        None => hex::encode_upper(brom.cert.tbs_certificate().serial_number().as_bytes()),
    };
    let chip_name = brom_cn
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_string());
    let model_detail = format!(
        "{chip_name} PROJECT={} PROJECT_SKU={} CHIP_SKU={}",
        field(&opaque.project),
        field(&opaque.project_sku),
        field(&opaque.chip_sku)
    );
    let leaf_common_name = name_attr(leaf.subject(), OID_CN)
        .ok()
        .flatten()
        .unwrap_or_default();

    let identity = ChipIdentity {
        chip_id,
        kind: EvidenceKind::NvidiaSpdm,
        model: model_for_chip(&chip_name),
        model_detail,
        serial: brom_serial.clone(),
        device_public_key,
        liveness: LivenessMethod::FreshAttestation,
        firmware: FirmwareInfo {
            driver_version: opaque.driver_version.clone(),
            vbios_version: opaque.vbios_version.clone(),
            fwid: opaque.fwid.clone(),
        },
        root_fingerprint: chain.anchor.fingerprint,
        chain_fingerprints: chain.intermediate_ids(),
        devnet: chain.anchor.devnet_only,
    };
    Ok(NvidiaAttestation {
        identity,
        report,
        opaque,
        chip_name,
        brom_serial,
        leaf_common_name,
    })
}
