//! NVIDIA GPUs through NVML (cargo feature `nvml`).
//!
//! What NVML gives, and therefore what this backend does:
//! - **discovery**: every GPU NVML sees (`nvmlDeviceGetCount`, name, UUID, serial);
//! - **identity**: the device certificate chain (`nvmlDeviceGetConfComputeGpuCertificate`,
//!   PEM, leaf first); the chip id is the SHA-256 of the key of its BROM certificate, as the
//!   chain computes it;
//! - **evidence and answers**: a signed SPDM attestation report over a caller-chosen 32-byte
//!   nonce (`nvmlDeviceGetConfComputeGpuAttestationReport`). With the registration nonce this
//!   is registration evidence; with a challenge's response digest it is the liveness answer
//!   (the DeviceID key of an NVIDIA GPU cannot sign arbitrary data, so it answers with a fresh
//!   attestation).
//!
//! What it cannot do: both attestation calls work only on GPUs with confidential computing
//! support (Hopper H100/H200 and later) with CC mode (or CC dev-tools mode) enabled and a
//! driver that exposes them (R535+); elsewhere NVML returns `NotSupported` and the GPU is
//! listed but skipped with the reason. NVML does not verify anything: the chain verifies the
//! report and chain against NVIDIA's root (see docs/poci.md). NVIDIA's attestation SDK adds
//! what NVML lacks here — RIM (reference measurement) comparison and OCSP revocation checks
//! of the certificate chain — which the chain does not do (docs/poci.md compares the checks).
//! Reports of every architecture in `unet_poci::nvidia::arch::ARCHITECTURES` verify (Hopper,
//! Blackwell); each GPU of a multi-GPU host is its own chip. This backend is compiled in CI but
//! only runs where a GPU and `libnvidia-ml.so` exist.

use crate::backend::{BackendError, ChipBackend, ChipInfo, KIND_NVIDIA_SPDM};
use nvml_wrapper::Nvml;
use std::sync::Mutex;
use unet_poci::{pem_chain_to_der, Evidence, NvidiaEvidence};
use unet_types::chip::ChipId;

struct Gpu {
    info: ChipInfo,
    index: u32,
    uuid: String,
    chain: Vec<Vec<u8>>,
}

/// The NVIDIA GPUs of this machine.
pub struct NvmlBackend {
    nvml: Mutex<Nvml>,
    gpus: Vec<Gpu>,
    /// GPUs seen but unusable, with the reason (logged at startup).
    pub skipped: Vec<(String, String)>,
}

impl NvmlBackend {
    /// Loads NVML and reads every GPU's identity.
    pub fn open() -> Result<Self, BackendError> {
        let nvml = Nvml::init()
            .map_err(|e| BackendError::Setup(format!("cannot load NVML (libnvidia-ml.so): {e}")))?;
        let count = nvml
            .device_count()
            .map_err(|e| BackendError::Setup(format!("NVML device count: {e}")))?;
        let mut gpus = Vec::new();
        let mut skipped = Vec::new();
        for index in 0..count {
            let device = match nvml.device_by_index(index) {
                Ok(d) => d,
                Err(e) => {
                    skipped.push((format!("GPU {index}"), e.to_string()));
                    continue;
                }
            };
            let name = device.name().unwrap_or_else(|_| "NVIDIA GPU".into());
            let uuid = match device.uuid() {
                Ok(u) => u,
                Err(e) => {
                    skipped.push((format!("GPU {index} ({name})"), format!("no UUID: {e}")));
                    continue;
                }
            };
            let label = format!("GPU {index} ({name}, {uuid})");
            let chain = match device.confidential_compute_gpu_certificate() {
                Ok(c) => c,
                Err(e) => {
                    skipped.push((
                        label,
                        format!("no attestation certificate chain (confidential computing off or unsupported): {e}"),
                    ));
                    continue;
                }
            };
            let pem = String::from_utf8_lossy(&chain.attestation_cert_chain).into_owned();
            let chain = match pem_chain_to_der(&pem) {
                Ok(c) => c,
                Err(e) => {
                    skipped.push((label, format!("certificate chain: {e}")));
                    continue;
                }
            };
            let chip_id = match chip_id_of(&chain) {
                Ok(id) => id,
                Err(e) => {
                    skipped.push((label, e));
                    continue;
                }
            };
            let serial = device.serial().unwrap_or_else(|_| uuid.clone());
            gpus.push(Gpu {
                info: ChipInfo {
                    chip_id,
                    model: model_of(&name),
                    serial,
                    kind: KIND_NVIDIA_SPDM,
                    source: label,
                },
                index,
                uuid,
                chain,
            });
        }
        for (gpu, why) in &skipped {
            tracing::warn!(%gpu, reason = %why, "GPU skipped");
        }
        Ok(Self {
            nvml: Mutex::new(nvml),
            gpus,
            skipped,
        })
    }

    fn gpu(&self, id: &ChipId) -> Result<&Gpu, BackendError> {
        self.gpus
            .iter()
            .find(|g| g.info.chip_id == *id)
            .ok_or_else(|| BackendError::UnknownChip(hex::encode(id)))
    }

    /// A fresh attestation over `nonce`, as an evidence container.
    fn attest(&self, id: &ChipId, nonce: &[u8; 32]) -> Result<Vec<u8>, BackendError> {
        let gpu = self.gpu(id)?;
        let engine = |reason: String| BackendError::Engine {
            chip: hex::encode(id),
            reason,
        };
        let report = {
            let nvml = self.nvml.lock().unwrap_or_else(|p| p.into_inner());
            let device = nvml
                .device_by_uuid(gpu.uuid.as_str())
                .map_err(|e| engine(format!("GPU {} not found: {e}", gpu.uuid)))?;
            device
                .confidential_compute_gpu_attestation_report(*nonce)
                .map_err(|e| engine(format!("attestation report: {e}")))?
        };
        Evidence::NvidiaSpdm(NvidiaEvidence {
            report: report.attestation_report,
            chain: gpu.chain.clone(),
        })
        .encode()
        .map_err(|e| engine(e.to_string()))
    }
}

/// The chip id the chain will compute: from the BROM certificate's key.
fn chip_id_of(chain: &[Vec<u8>]) -> Result<ChipId, String> {
    let probe = Evidence::NvidiaSpdm(NvidiaEvidence {
        report: Vec::new(),
        chain: chain.to_vec(),
    })
    .encode()
    .map_err(|e| e.to_string())?;
    unet_poci::claimed_identity(&probe)
        .map(|c| c.chip_id)
        .map_err(|e| format!("device certificate: {e}"))
}

/// A display model from NVML's product name (the chain decides from the certificate).
fn model_of(name: &str) -> String {
    let upper = name.to_uppercase();
    ["GB200", "B200", "B100", "H200", "H100", "GH200"]
        .into_iter()
        .find(|m| upper.contains(m))
        .map(str::to_string)
        .unwrap_or_else(|| name.to_string())
}

impl ChipBackend for NvmlBackend {
    fn name(&self) -> &'static str {
        "nvml"
    }

    fn chips(&self) -> Vec<ChipInfo> {
        self.gpus.iter().map(|g| g.info.clone()).collect()
    }

    fn gpu_index(&self, chip: &ChipId) -> Option<u32> {
        self.gpus
            .iter()
            .find(|g| &g.info.chip_id == chip)
            .map(|g| g.index)
    }

    fn registration_evidence(
        &self,
        chip: &ChipId,
        nonce: &[u8; 32],
    ) -> Result<Vec<u8>, BackendError> {
        self.attest(chip, nonce)
    }

    fn answer(&self, chip: &ChipId, digest: &[u8; 32]) -> Result<Vec<u8>, BackendError> {
        self.attest(chip, digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_from_nvml_product_names() {
        assert_eq!(model_of("NVIDIA H100 80GB HBM3"), "H100");
        assert_eq!(model_of("NVIDIA H200"), "H200");
        assert_eq!(model_of("NVIDIA B200"), "B200");
        assert_eq!(model_of("NVIDIA GB200"), "GB200");
        assert_eq!(model_of("Tesla T4"), "Tesla T4");
    }

    #[test]
    fn chip_id_from_nvidias_sample_chain_matches_the_verifier() {
        let pem = include_str!("../../poci/tests/vectors/hopperCertChain.txt");
        let chain = pem_chain_to_der(pem).unwrap();
        let id = chip_id_of(&chain).unwrap();
        assert_ne!(id, [0u8; 32]);
    }

    #[test]
    fn open_without_a_driver_is_an_error_not_a_panic() {
        // On machines without libnvidia-ml this must fail cleanly; with a GPU it succeeds.
        match NvmlBackend::open() {
            Ok(b) => assert_eq!(b.name(), "nvml"),
            Err(e) => assert!(e.to_string().contains("NVML"), "{e}"),
        }
    }
}
