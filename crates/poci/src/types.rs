//! Values the verifiers return: who the chip is, what it runs, and how it proves liveness.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::VerifyError;

/// Which kind of evidence registered a chip. The byte is the evidence container's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EvidenceKind {
    /// A vendor root certifies the chip's device key in an X.509 certificate; the chip signs the challenge.
    VendorX509 = 1,
    /// A real NVIDIA H100/H200/B200 SPDM 1.1 GET_MEASUREMENTS report and its certificate chain.
    NvidiaSpdm = 2,
}

impl EvidenceKind {
    /// The tag byte used in the evidence container.
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// Inverse of [`EvidenceKind::tag`].
    pub fn from_tag(tag: u8) -> Result<Self, VerifyError> {
        match tag {
            1 => Ok(Self::VendorX509),
            2 => Ok(Self::NvidiaSpdm),
            other => Err(VerifyError::UnsupportedEvidenceKind(other)),
        }
    }
}

/// The elliptic curve of a chip key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Curve {
    /// NIST P-256 (secp256r1); signatures are 64-byte r||s.
    P256,
    /// NIST P-384 (secp384r1); signatures are 96-byte r||s.
    P384,
}

impl Curve {
    /// Length of an uncompressed SEC1 point (0x04 || X || Y).
    pub fn point_len(self) -> usize {
        match self {
            Curve::P256 => 65,
            Curve::P384 => 97,
        }
    }

    /// Length of a raw r||s signature.
    pub fn signature_len(self) -> usize {
        match self {
            Curve::P256 => 64,
            Curve::P384 => 96,
        }
    }
}

/// A chip public key: its curve and its **uncompressed** SEC1 encoding (0x04 || X || Y).
///
/// Keys are always normalised to the uncompressed form when parsed, so the same key has one encoding
/// and therefore one [`chip_id`](DevicePublicKey::chip_id) per evidence kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DevicePublicKey {
    /// curve of the key
    pub curve: Curve,
    /// uncompressed SEC1 point
    pub sec1: Vec<u8>,
}

impl DevicePublicKey {
    /// Parse a SEC1 point (compressed or uncompressed) and normalise it to the uncompressed form.
    pub fn from_sec1(curve: Curve, bytes: &[u8]) -> Result<Self, VerifyError> {
        crate::crypto::VerifyingKey::from_sec1(curve, bytes)
            .map(|k| k.to_device_key())
            .ok_or(VerifyError::InvalidPublicKey)
    }

    /// The chip id this key has when registered through evidence of `kind`: [`chip_id`].
    pub fn chip_id(&self, kind: EvidenceKind) -> [u8; 32] {
        chip_id(kind, &self.sec1)
    }
}

/// Domain tag of chip ids ([`chip_id`]).
pub const CHIP_ID_DOMAIN: &[u8] = b"UNET-POCI/chip-id/v1";

/// `chip_id = SHA-256(CHIP_ID_DOMAIN || kind tag (1 byte) || uncompressed SEC1 point of the
/// DeviceID key)`.
///
/// The evidence kind is part of the id, so one key can never name two chips of different kinds:
/// a key certified by a vendor-x509 CA and the same key in an NVIDIA chain (or the same bytes
/// under any future kind) are two distinct ids, and revoking, registering or answering for one
/// never touches the other. The curve is implied by the length (65 bytes for P-256, 97 for
/// P-384), so keys on different curves never share an encoding.
pub fn chip_id(kind: EvidenceKind, sec1: &[u8]) -> [u8; 32] {
    Sha256::digest([CHIP_ID_DOMAIN, &[kind.tag()], sec1].concat()).into()
}

/// How a registered chip proves, later, that it is online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LivenessMethod {
    /// The DeviceID key signs the 32-byte challenge digest ([`crate::verify_liveness`]).
    DeviceKeySignature,
    /// The chip cannot sign arbitrary data with its DeviceID key (NVIDIA: the BROM key only certifies
    /// the firmware alias key), so it answers with a fresh attestation whose requester nonce is the
    /// challenge digest ([`crate::verify_liveness_attestation`]).
    FreshAttestation,
}

/// Firmware facts that the evidence signs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareInfo {
    /// GPU driver version (NVIDIA opaque field DRIVER_VERSION), e.g. "550.90.07".
    pub driver_version: Option<String>,
    /// VBIOS version (NVIDIA opaque field VBIOS_VERSION) in NVIDIA's notation, e.g. "96.00.9F.00.01".
    pub vbios_version: Option<String>,
    /// The firmware measurement (FWID) that the report and the leaf's DICE extension both carry.
    pub fwid: Option<Vec<u8>>,
}

/// A chip whose evidence verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipIdentity {
    /// The chip id: [`chip_id`] of the DeviceID public key for `kind`.
    pub chip_id: [u8; 32],
    /// Evidence kind that registered the chip.
    pub kind: EvidenceKind,
    /// Model name used for the rating table, e.g. "H100" or a vendor model such as "BM1684X".
    pub model: String,
    /// Every signed fact the model was derived from, in a canonical string
    /// (NVIDIA: `GH100 PROJECT=1010 PROJECT_SKU=0200 CHIP_SKU=882`; vendor-x509: the CN).
    pub model_detail: String,
    /// Chip serial (NVIDIA: the BROM certificate's serialNumber; vendor-x509: the serialNumber attribute).
    pub serial: String,
    /// The DeviceID public key (`chip_id` is its hash).
    pub device_public_key: DevicePublicKey,
    /// How liveness is proven for this chip.
    pub liveness: LivenessMethod,
    /// Firmware facts (empty for vendor-x509).
    pub firmware: FirmwareInfo,
    /// SHA-256 of the pinned root's DER that anchored the chain.
    pub root_fingerprint: [u8; 32],
    /// [`crate::certificate_id`] (identity by subject key, not by encoding) of every chain
    /// certificate other than the leaf and a copy of the pinned root (NVIDIA: BROM, provisioner
    /// ICA, GH100 identity; vendor-x509: the intermediates), so a later revocation of one of them
    /// can be matched against registered chips.
    pub chain_fingerprints: Vec<[u8; 32]>,
    /// True when the anchoring root is pinned as devnet-only.
    pub devnet: bool,
}

impl ChipIdentity {
    /// `chip_id` as lowercase hex.
    pub fn chip_id_hex(&self) -> String {
        hex::encode(self.chip_id)
    }
}
