//! Results about chips: one chip, lists, the POCI registry, registration anchors.

use crate::hex;
use serde::{Deserialize, Serialize};
use unet_types::{
    amount::base_units,
    chip::{kind, ChipStatus, Model},
    hexser, Address, Amount, Digest,
};

/// How a chip proves its identity (the evidence kind of its registration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// An X.509 chain from a vendor root (`vendor-x509`).
    VendorX509,
    /// An NVIDIA SPDM attestation report (`nvidia-spdm`).
    NvidiaSpdm,
    /// A tag this API does not know.
    Unknown,
}

impl EvidenceKind {
    /// The kind of a stored evidence tag.
    pub fn from_tag(tag: u8) -> Self {
        match tag {
            kind::VENDOR_X509 => Self::VendorX509,
            kind::NVIDIA_SPDM => Self::NvidiaSpdm,
            _ => Self::Unknown,
        }
    }

    /// The wire name (`vendor-x509`, ...), as `unet_types::chip::kind::name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VendorX509 => "vendor-x509",
            Self::NvidiaSpdm => "nvidia-spdm",
            Self::Unknown => "unknown",
        }
    }
}

/// A challenge waiting for the chip's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChallengeView {
    /// The block that challenged.
    pub height: u64,
    /// Its beacon (what the chip signs).
    #[serde(with = "hexser")]
    pub beacon: Digest,
}

/// A chip's liveness record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivenessView {
    /// The challenge not yet answered.
    pub pending_challenge: Option<PendingChallengeView>,
    /// Height of the last challenge.
    pub last_challenge: u64,
    /// Height of the last accepted answer.
    pub last_response: u64,
    /// Since when it is Online (null when it is not).
    pub online_since: Option<u64>,
    /// The epoch `misses` counts in.
    pub misses_epoch: u64,
    /// Challenges missed in that epoch.
    pub misses: u32,
}

/// A chip's rewards in short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardSummaryView {
    /// The last epoch paid.
    pub last_epoch: u64,
    /// What it paid, base units.
    #[serde(with = "base_units")]
    pub last_amount: Amount,
    /// Lifetime total, base units.
    #[serde(with = "base_units")]
    pub total: Amount,
}

/// `unet_getChip`: a registered chip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipView {
    /// Its id.
    #[serde(with = "hex::id")]
    pub chip_id: [u8; 32],
    /// Who owns it.
    #[serde(with = "hexser")]
    pub owner: Address,
    /// Its model.
    pub model: String,
    /// The model's rated compute (null if the model was removed).
    pub compute_milli_tops: Option<u64>,
    /// Its evidence kind.
    pub kind: EvidenceKind,
    /// Its serial number.
    pub serial: String,
    /// Online, unresponsive or revoked (revocation of an intermediate applied).
    pub status: ChipStatus,
    /// When it registered.
    pub registered_height: u64,
    /// Its DeviceID key (uncompressed SEC1).
    #[serde(with = "hex::bytes")]
    pub device_key: Vec<u8>,
    /// Hash of the vendor root its chain ends in.
    #[serde(with = "hex::id")]
    pub root: [u8; 32],
    /// Its position in the registry's index.
    pub index: u64,
    /// Challenges and answers.
    pub liveness: LivenessView,
    /// Rewards.
    pub rewards: RewardSummaryView,
}

/// `unet_listChips`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipList {
    /// The finalized height that answered.
    pub height: u64,
    /// The chips of this page.
    pub chips: Vec<ChipView>,
    /// The cursor of the next page (null at the end).
    pub next: Option<u64>,
    /// Chips ever registered.
    pub total_registered: u64,
}

/// A pinned vendor root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootView {
    /// The evidence kind it anchors.
    pub kind: EvidenceKind,
    /// SHA-256 of its DER.
    #[serde(with = "hex::id")]
    pub fingerprint: [u8; 32],
    /// Trusted only where devnet roots are allowed.
    pub devnet_only: bool,
}

/// `unet_listModels`: the POCI registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelsView {
    /// Chip models and their rated compute.
    pub models: Vec<Model>,
    /// Pinned vendor roots.
    pub roots: Vec<RootView>,
    /// Whether devnet-only roots are trusted.
    pub allow_devnet_roots: bool,
    /// Governor keys.
    #[serde(with = "addresses")]
    pub governance: Vec<Address>,
    /// Approvals a governance action needs.
    pub governance_threshold: u8,
    /// Next governance nonce.
    pub governance_nonce: u64,
    /// Chips ever registered.
    pub chips_registered: u64,
    /// Governance's firmware policies, one per NVIDIA architecture (empty: none in force).
    #[serde(default)]
    pub firmware_policies: Vec<FirmwarePolicyView>,
}

/// A firmware policy in force (`GovAction::SetFirmwarePolicy`): what every NVIDIA report of
/// the architecture must meet, at registration and on every liveness answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwarePolicyView {
    /// Architecture name ("Hopper", "Blackwell", "Hopper NVSwitch").
    pub architecture: String,
    /// Lowest accepted driver version (decimal components), if any.
    pub min_driver: Option<String>,
    /// Lowest accepted VBIOS version (hexadecimal components), if any.
    pub min_vbios: Option<String>,
    /// Reference values by measurement index.
    pub measurements: Vec<MeasurementRuleView>,
}

/// The values one measurement block may take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasurementRuleView {
    /// Measurement block index.
    pub index: u8,
    /// Allowed values, hex.
    pub allowed: Vec<String>,
}

/// `unet_registrationNonce`: what a new registration signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationNonceView {
    /// The anchor block (latest finalized).
    pub anchor_height: u64,
    /// Its hash.
    #[serde(with = "hexser")]
    pub anchor_hash: Digest,
    /// The nonce the chip signs for the owner.
    #[serde(with = "hex::id")]
    pub nonce: [u8; 32],
    /// Blocks after the anchor the registration stays valid.
    pub valid_for_blocks: u64,
}

/// A list of addresses as hex.
pub(crate) mod addresses {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};
    use unet_types::{hexser, Address};

    pub fn serialize<S: Serializer>(v: &[Address], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hexser::to_hex))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Address>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| hexser::from_hex(s).map_err(D::Error::custom))
            .collect()
    }
}

/// `unet_getChipProof`: a chip's registry entry in the finalized state with its proof against
/// the state root of block `height` (check it with `unet_getFinalizedHeader` of that height:
/// `unet_client::light`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipProofView {
    /// The chip.
    #[serde(with = "hex::id")]
    pub chip_id: [u8; 32],
    /// Its state key.
    #[serde(with = "hexser")]
    pub key: Digest,
    /// The finalized height proven.
    pub height: u64,
    /// That block's hash.
    #[serde(with = "hexser")]
    pub block: Digest,
    /// The state root the proof is against.
    #[serde(with = "hexser")]
    pub state_root: Digest,
    /// The encoded chip entry (`unet_types::chip::Chip`; null: proven absent).
    #[serde(with = "hex::opt_bytes")]
    pub value: Option<Vec<u8>>,
    /// The encoded proof (`unet_store::StateProof`).
    #[serde(with = "hex::bytes")]
    pub proof: Vec<u8>,
}
