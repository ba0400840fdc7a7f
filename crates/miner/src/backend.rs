//! Where chips come from: the [`ChipBackend`] interface and its implementations.
//!
//! A backend enumerates the chips of this machine and drives each chip's security engine:
//! registration evidence bound to a nonce, and the proof that answers a liveness challenge.
//! Calls may block (a hardware attestation takes tens to hundreds of milliseconds); the
//! daemon runs them on blocking threads, many chips at once.

use unet_types::chip::ChipId;

/// Kind names as the chain reports them (`unet_getChip` `kind`).
pub const KIND_VENDOR_X509: &str = "vendor-x509";
/// Kind name of NVIDIA SPDM evidence (a GPU's signed attestation report).
pub const KIND_NVIDIA_SPDM: &str = "nvidia-spdm";

/// One chip as the backend sees it, before asking the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChipInfo {
    /// The chip's id as the chain computes it from its evidence kind and DeviceID key.
    pub chip_id: ChipId,
    /// Model the chip claims (the chain decides from its certificate).
    pub model: String,
    /// Serial number the chip claims.
    pub serial: String,
    /// Evidence kind: [`KIND_VENDOR_X509`] or [`KIND_NVIDIA_SPDM`].
    pub kind: &'static str,
    /// Where it lives: a chip file, a GPU's PCI bus id or UUID.
    pub source: String,
}

/// Why a backend could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend has no chip with this id (hex).
    #[error("no chip {0} in this backend")]
    UnknownChip(String),
    /// The chip's security engine (secure element or GPU attestation) failed.
    #[error("security engine of chip {chip}: {reason}")]
    Engine {
        /// The chip, hex id.
        chip: String,
        /// What failed, in words.
        reason: String,
    },
    /// The backend could not be set up (a missing driver, an unreadable chip file, ...).
    #[error("{0}")]
    Setup(String),
}

/// The chips of one machine and their security engines.
pub trait ChipBackend: Send + Sync + 'static {
    /// Short name for logs (`soft`, `nvml`).
    fn name(&self) -> &'static str;
    /// Every chip this backend manages (discovered when it was opened).
    fn chips(&self) -> Vec<ChipInfo>;
    /// The host GPU index of `chip` (`/dev/nvidia<index>`) given to renters' workloads on
    /// it, when it is a GPU this host exposes; None: workloads get no GPU.
    fn gpu_index(&self, _chip: &ChipId) -> Option<u32> {
        None
    }
    /// Registration evidence (an encoded `unet_poci::Evidence`) whose nonce is `nonce`.
    fn registration_evidence(
        &self,
        chip: &ChipId,
        nonce: &[u8; 32],
    ) -> Result<Vec<u8>, BackendError>;
    /// The proof answering a challenge whose response digest is `digest`: a raw `r || s`
    /// signature by the DeviceID key, or a fresh attestation container with `digest` as its
    /// nonce, as the chip's kind requires.
    fn answer(&self, chip: &ChipId, digest: &[u8; 32]) -> Result<Vec<u8>, BackendError>;
}
