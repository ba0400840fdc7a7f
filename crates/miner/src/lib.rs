//! The UtilityNet miner agent.
//!
//! One daemon per machine next to its chips: it discovers them through a [`ChipBackend`]
//! (emulated chips for devnets and tests, NVIDIA GPUs through NVML behind the `nvml`
//! feature), registers every chip not yet on chain with evidence bound to the registration
//! nonce it computes itself for its own owner ([`register`]), follows finalized blocks over the node's WebSocket API and answers
//! each of its chips' liveness challenges in batched transactions, keeping what it did in
//! its home directory so that restarts and dropped connections never lose or repeat an
//! answer. See [`daemon`] for the loop and [`state`] for the exactly-once rules.
// No unsafe code here (the workspace denies it; only unet-sandbox allows it, per item).
#![forbid(unsafe_code)]

pub mod backend;
pub mod daemon;
pub mod home;
pub mod jobs;
pub mod metrics;
#[cfg(feature = "nvml")]
pub mod nvml;
pub mod provider;
pub mod register;
pub mod soft;
pub mod state;
pub mod status;

pub use backend::{BackendError, ChipBackend, ChipInfo};
pub use daemon::{Miner, MinerConfig};
pub use home::MinerHome;
pub use metrics::Metrics;
pub use soft::{ChipFile, SoftBackend};
pub use state::MinerState;

/// Opens the backend named `name` for `home` (`soft`: the home's `chips/` directory;
/// `nvml`: the NVIDIA GPUs of this machine, when built with the `nvml` feature).
pub fn open_backend(
    name: &str,
    home: &MinerHome,
) -> anyhow::Result<std::sync::Arc<dyn ChipBackend>> {
    match name {
        "soft" => Ok(std::sync::Arc::new(SoftBackend::open(&home.chips_dir())?)),
        #[cfg(feature = "nvml")]
        "nvml" => Ok(std::sync::Arc::new(nvml::NvmlBackend::open()?)),
        #[cfg(not(feature = "nvml"))]
        "nvml" => anyhow::bail!(
            "this unet was built without NVML support; rebuild with `--features nvml`"
        ),
        other => anyhow::bail!("unknown backend {other:?}: soft or nvml"),
    }
}
