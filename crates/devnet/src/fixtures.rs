//! What every devnet shares: the public seeds of its devnet-only CAs, the model table it
//! starts with, and its POCI genesis.

use anyhow::{anyhow, Result};
use unet_types::{
    chip::Model,
    genesis::{GenesisRoot, PociGenesis},
    PublicKey,
};

/// Seed of the devnet vendor CA that certifies software secure elements. It is public, which
/// is why its root is devnet-only: a production genesis must never trust it.
pub const DEVNET_CA_SEED: &[u8] = b"utilitynet devnet vendor ca v1";

/// Seed of the devnet NVIDIA-shaped CAs that certify emulated GPUs (one per GPU architecture,
/// `unet_poci::secure_element::DevnetNvidiaCa`). Public, so their roots are devnet-only.
pub const DEVNET_NVIDIA_CA_SEED: &[u8] = b"utilitynet devnet nvidia-shaped ca v1";

/// GPU architectures a devnet can emulate (each gets a devnet-only root in genesis).
pub const DEVNET_GPU_ARCHITECTURES: [&str; 2] = ["Hopper", "Blackwell"];

/// The model table a devnet (and a generated testnet) starts with: rated compute is the
/// vendor's dense INT8 TOPS per chip (NVIDIA datasheets print INT8 Tensor Core TOPS with 2:4
/// sparsity; dense is half): H100/H200 SXM 1,979; HGX B100 3,500 (7 POPS sparse per GPU);
/// HGX B200 4,500 (9 POPS sparse); GB200 NVL72 5,000 per GPU (720 POPS sparse / 72 GPUs).
/// NVIDIA evidence names the die (GB100) and the board (PROJECT / PROJECT_SKU / CHIP_SKU);
/// a Blackwell chip rates as B200 unless governance maps its board to B100 or GB200 with a
/// `model_detail`-named entry (see docs/poci.md).
pub fn default_models() -> Vec<Model> {
    [
        ("BM1684", 17_600),
        ("BM1684X", 32_000),
        ("H100", 1_979_000),
        ("H200", 1_979_000),
        ("B100", 3_500_000),
        ("B200", 4_500_000),
        ("GB200", 5_000_000),
    ]
    .into_iter()
    .map(|(name, compute_milli_tops)| Model {
        name: name.into(),
        compute_milli_tops,
    })
    .collect()
}

/// POCI genesis for a devnet: the model table, the devnet CA (devnet-only) and NVIDIA's root,
/// and one governance key.
pub fn devnet_poci(governor: &PublicKey) -> Result<PociGenesis> {
    let ca = unet_poci::secure_element::DevnetVendorCa::from_seed(DEVNET_CA_SEED)
        .map_err(|e| anyhow!("devnet CA: {e}"))?;
    let nvidia = unet_poci::pem_chain_to_der(unet_poci::nvidia::NVIDIA_DEVICE_IDENTITY_CA_PEM)
        .map_err(|e| anyhow!("NVIDIA root: {e}"))?;
    let mut emulated_gpu_roots = Vec::new();
    for arch in DEVNET_GPU_ARCHITECTURES {
        let ca = unet_poci::secure_element::DevnetNvidiaCa::from_seed(DEVNET_NVIDIA_CA_SEED, arch)
            .map_err(|e| anyhow!("devnet NVIDIA-shaped CA: {e}"))?;
        emulated_gpu_roots.push(GenesisRoot {
            kind: "nvidia-spdm".into(),
            der_hex: hex::encode(ca.root_der()),
            devnet_only: true,
            label: format!("UtilityNet Devnet NVIDIA-shaped CA ({arch}, emulated GPUs)"),
        });
    }
    Ok(PociGenesis {
        allow_devnet_roots: true,
        models: default_models(),
        roots: vec![
            GenesisRoot {
                kind: "vendor-x509".into(),
                der_hex: hex::encode(ca.root_der()),
                devnet_only: true,
                label: "UtilityNet Devnet vendor CA (software secure elements)".into(),
            },
            GenesisRoot {
                kind: "nvidia-spdm".into(),
                der_hex: hex::encode(&nvidia[0]),
                devnet_only: false,
                label: "NVIDIA Device Identity CA".into(),
            },
        ]
        .into_iter()
        .chain(emulated_gpu_roots)
        .collect(),
        governance: vec![unet_types::hexser::to_hex(governor)],
        governance_threshold: 1,
    })
}
