//! `nvidia-spdm` evidence: a real NVIDIA GPU or NVSwitch attestation report (SPDM 1.1
//! GET_MEASUREMENTS, ECDSA P-384) and its certificate chain to the pinned "NVIDIA Device
//! Identity CA". Hopper (H100/H200), Blackwell (B100/B200/GB200) and the Hopper NVSwitch (LS10)
//! are accepted; what differs between them lives in one table, [`arch::ARCHITECTURES`].
//!
//! Checks, in order (each has its own [`VerifyError`] variant):
//! 1. the report parses strictly ([`spdm::parse_report`]);
//! 2. the raw r||s signature at the end verifies with the leaf certificate's P-384 key over SHA-384
//!    of request || response-without-signature (first, as the cheapest rejection);
//! 3. the requester nonce equals the expected challenge;
//! 4. the chain (leaf first) verifies to a pinned [`EvidenceKind::NvidiaSpdm`] root at `now`,
//!    with revoked certificates rejected ([`crate::verify_certificate_chain`] rules);
//! 5. the leaf's common name names an architecture of the table, and the BROM, provisioner and
//!    identity CA names fit it;
//! 6. the opaque fields the architecture requires are present, each known field at most once;
//! 7. the report's FWID equals the FWID of the leaf's architecture-specific DICE extension
//!    (2.23.133.5.4.1 composite identifier on Hopper, 2.23.133.5.4.1.1 TcbInfo on Blackwell), and
//!    the extension's identity key (when it names one) is the DeviceID (BROM) certificate's key;
//! 8. `chip_id` = [`crate::chip_id`] of the BROM certificate's key for this kind, and is not revoked;
//! 9. the signed driver and VBIOS versions and measurement blocks meet the trust store's
//!    [`FirmwarePolicy`] for the architecture, when governance has set one ([`policy`]).
//!
//! Steps 4, 5 and the certificate half of 7 depend only on the chain: [`ChainCache`] keeps their
//! outcome per chain, so a repeat report costs one P-384 verification plus parsing.

pub mod arch;
mod cache;
pub mod fields;
pub mod policy;
pub mod spdm;

use der::Encode;
use serde::{Deserialize, Serialize};

use crate::chain::{name_attr, verify_chain, ParsedCert, OID_CN, OID_SERIAL_NUMBER};
use crate::crypto::VerifyingKey;
use crate::error::VerifyError;
use crate::evidence::NvidiaEvidence;
use crate::trust::TrustStore;
use crate::types::{
    ChipIdentity, Curve, DevicePublicKey, EvidenceKind, FirmwareInfo, LivenessMethod,
};

pub use arch::{Architecture, DeviceClass, ARCHITECTURES};
pub use cache::{CacheStats, ChainCache};
pub use fields::OpaqueData;
pub use policy::{FirmwarePolicy, MeasurementRule};
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
    /// architecture ([`Architecture::name`]), e.g. "Blackwell"
    pub architecture: String,
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
    verify_with(evidence, expected_nonce, now_unix, trust, None)
}

/// [`verify`], with the chain's outcome looked up in and stored into `cache`. The verdict is the
/// same as [`verify`]'s for every input, whatever the cache holds (see [`ChainCache`]).
pub fn verify_cached(
    evidence: &NvidiaEvidence,
    expected_nonce: &[u8; 32],
    now_unix: u64,
    trust: &TrustStore,
    cache: &ChainCache,
) -> Result<NvidiaAttestation, VerifyError> {
    verify_with(evidence, expected_nonce, now_unix, trust, Some(cache))
}

/// What the chain alone establishes about the device (no report, no nonce): the part of a
/// verification that [`ChainCache`] keeps.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedDevice {
    pub(crate) arch: &'static Architecture,
    pub(crate) leaf_key: VerifyingKey,
    pub(crate) leaf_common_name: String,
    pub(crate) chip_name: String,
    pub(crate) brom_serial: String,
    /// FWID of the leaf's DICE extension (architecture form).
    pub(crate) cert_fwid: Vec<u8>,
    pub(crate) device_public_key: DevicePublicKey,
    pub(crate) chip_id: [u8; 32],
    pub(crate) root_fingerprint: [u8; 32],
    pub(crate) devnet: bool,
    pub(crate) chain_fingerprints: Vec<[u8; 32]>,
}

/// The leaf key, checked to be P-384 (the report is signed with it before the chain is trusted).
fn leaf_key(evidence: &NvidiaEvidence) -> Result<VerifyingKey, VerifyError> {
    if evidence.chain.len() < 2 {
        return Err(VerifyError::MissingField("DeviceID (BROM) certificate"));
    }
    let leaf = ParsedCert::parse(0, &evidence.chain[0])?;
    if leaf.key.curve() != Curve::P384 {
        return Err(VerifyError::UnsupportedAlgorithm { index: 0 });
    }
    Ok(leaf.key)
}

fn common_name(cert: &ParsedCert) -> Option<String> {
    name_attr(cert.subject(), OID_CN).ok().flatten()
}

/// Steps 4, 5 and the certificate half of 7: everything the chain says, for `report_fwid`
/// requirements checked later. `chain_facts` receives what [`ChainCache`] needs to re-check
/// time and revocation.
pub(crate) fn verify_device_chain(
    evidence: &NvidiaEvidence,
    now_unix: u64,
    trust: &TrustStore,
) -> Result<(VerifiedDevice, crate::chain::VerifiedChain), VerifyError> {
    let chain = verify_chain(&evidence.chain, EvidenceKind::NvidiaSpdm, now_unix, trust)?;
    let leaf = &chain.certs[0];
    let leaf_common_name = common_name(leaf).unwrap_or_default();

    // Architecture, from the (now verified) leaf name; every other name must fit it.
    let (arch, name) = arch::architecture_of_leaf(&leaf_common_name)
        .ok_or_else(|| VerifyError::UnknownArchitecture(leaf_common_name.clone()))?;
    let brom = &chain.certs[1];
    let brom_cn =
        common_name(brom).ok_or(VerifyError::MissingField("DeviceID (BROM) certificate"))?;
    if arch::parse_device_name(&brom_cn, "BROM").as_ref() != Some(&name) {
        return Err(VerifyError::ArchitectureMismatch { index: 1 });
    }
    let issuer_cn = |c: &ParsedCert| name_attr(c.issuer_name(), OID_CN).ok().flatten();
    if !issuer_cn(brom).is_some_and(|cn| cn.starts_with(arch.provisioner_ca_prefix)) {
        return Err(VerifyError::ArchitectureMismatch { index: 2 });
    }
    let provisioner = chain
        .certs
        .get(2)
        .ok_or(VerifyError::MissingField("provisioner CA certificate"))?;
    if issuer_cn(provisioner).as_deref() != Some(arch.identity_ca) {
        return Err(VerifyError::ArchitectureMismatch { index: 3 });
    }

    // The certificate's FWID, in the architecture's extension and form.
    let dice_value = leaf
        .extension(arch.fwid_extension)
        .ok_or(VerifyError::DiceExtension(
            "missing from the leaf certificate",
        ))?;
    let dice = fields::parse_dice(dice_value, arch.fwid_form)?;
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
    let brom_serial = match name_attr(brom.subject(), OID_SERIAL_NUMBER).ok().flatten() {
        Some(s) => s,
        None => hex::encode_upper(brom.cert.tbs_certificate().serial_number().as_bytes()),
    };
    let device = VerifiedDevice {
        arch,
        leaf_key: leaf.key.clone(),
        leaf_common_name,
        chip_name: arch.chip.to_string(),
        brom_serial,
        cert_fwid: dice.fwid.1,
        device_public_key,
        chip_id,
        root_fingerprint: chain.anchor.fingerprint,
        devnet: chain.anchor.devnet_only,
        chain_fingerprints: chain.intermediate_ids(),
    };
    Ok((device, chain))
}

fn verify_with(
    evidence: &NvidiaEvidence,
    expected_nonce: &[u8; 32],
    now_unix: u64,
    trust: &TrustStore,
    cache: Option<&ChainCache>,
) -> Result<NvidiaAttestation, VerifyError> {
    let report = parse_report(&evidence.report)?;

    // A chain verified before (same bytes, same pinned roots): only time, revocations and the
    // devnet switch can have changed; they are re-checked below, where the chain is checked.
    let cached = cache.and_then(|c| c.lookup(&evidence.chain, trust));

    // Report signature by the leaf (firmware alias) key, checked first because it is the cheapest
    // rejection (one verification); the leaf itself is only trusted once the chain verifies below.
    let signed = &evidence.report[..report.signed_len];
    let valid = match &cached {
        Some(hit) => hit
            .device
            .leaf_key
            .verify_raw(signed, &report.signature, false),
        None => leaf_key(evidence)?.verify_raw(signed, &report.signature, false),
    };
    if valid.is_err() {
        return Err(VerifyError::ReportSignatureInvalid);
    }

    // Freshness: the requester nonce is our challenge (else: a genuine report, replayed).
    if &report.requester_nonce != expected_nonce {
        return Err(VerifyError::NonceMismatch);
    }

    let device = match cached {
        Some(hit) => hit.recheck(now_unix, trust)?,
        None => {
            let (device, chain) = verify_device_chain(evidence, now_unix, trust)?;
            let device = std::sync::Arc::new(device);
            if let Some(c) = cache {
                c.insert(&evidence.chain, &chain, device.clone(), trust);
            }
            device
        }
    };

    // The report's fields under the architecture's layout; its FWID is the certificate's.
    let opaque = OpaqueData::from_fields(&report.opaque, device.arch)?;
    if device.arch.report_fwid {
        let fwid = opaque.fwid.as_ref().ok_or(VerifyError::FwidMismatch)?;
        if fwid != &device.cert_fwid {
            return Err(VerifyError::FwidMismatch);
        }
    }

    if trust.is_chip_revoked(&device.chip_id) {
        return Err(VerifyError::ChipRevoked(hex::encode(device.chip_id)));
    }
    if let Some(policy) = trust.firmware_policy(device.arch.name) {
        policy.check(&opaque, &report)?;
    }

    let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_string());
    let model_detail = format!(
        "{} PROJECT={} PROJECT_SKU={} CHIP_SKU={}",
        device.chip_name,
        field(&opaque.project),
        field(&opaque.project_sku),
        field(&opaque.chip_sku)
    );
    let identity = ChipIdentity {
        chip_id: device.chip_id,
        kind: EvidenceKind::NvidiaSpdm,
        model: device.arch.default_model.to_string(),
        model_detail,
        serial: device.brom_serial.clone(),
        device_public_key: device.device_public_key.clone(),
        liveness: LivenessMethod::FreshAttestation,
        firmware: FirmwareInfo {
            driver_version: opaque.driver_version.clone(),
            vbios_version: opaque.vbios_version.clone(),
            fwid: opaque.fwid.clone(),
        },
        root_fingerprint: device.root_fingerprint,
        chain_fingerprints: device.chain_fingerprints.clone(),
        devnet: device.devnet,
    };
    Ok(NvidiaAttestation {
        identity,
        report,
        opaque,
        chip_name: device.chip_name.clone(),
        architecture: device.arch.name.to_string(),
        brom_serial: device.brom_serial.clone(),
        leaf_common_name: device.leaf_common_name.clone(),
    })
}
