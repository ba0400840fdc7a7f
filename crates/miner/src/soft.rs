//! Emulated chips: the software secure element of `unet_poci`, one JSON chip file each.
//!
//! A chip file is what `unet chip provision` (or `unet miner init --emulated-chips`) writes:
//! a 128-bit device secret sealing a P-256/P-384 device key, and the device certificate
//! chain issued by the devnet vendor CA. Only a devnet genesis trusts that CA; the files
//! exist so that devnets and tests run the same miner code as real hardware.
//!
//! A file with `"kind": "nvidia-spdm"` is an emulated NVIDIA GPU (`unet_poci::secure_element::
//! EmulatedGpu`, [`ChipFile::provision_gpu`]): its device secret derives the BROM and firmware
//! alias keys, the chain comes from a devnet NVIDIA-shaped CA of its architecture, and it
//! registers and answers with SPDM attestation reports exactly as a GPU behind NVML does. One
//! directory of 8 such files is an 8-GPU host.

use crate::backend::{BackendError, ChipBackend, ChipInfo, KIND_NVIDIA_SPDM, KIND_VENDOR_X509};
use anyhow::{anyhow, Context as _, Result};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};
use unet_poci::{
    secure_element::{DevnetNvidiaCa, DevnetVendorCa, EmulatedGpu, SealedKey, SoftSecureElement},
    Curve, Evidence, VendorX509Evidence,
};
use unet_types::chip::ChipId;

/// An emulated chip on disk.
#[derive(Clone, Serialize, Deserialize)]
pub struct ChipFile {
    /// The chip's model (certified in its device certificate).
    pub model: String,
    /// The chip's serial number.
    pub serial: String,
    /// The chip id, hex (derived from its device key).
    pub chip_id: String,
    /// The 128-bit device secret (the emulator's eFuse).
    pub device_secret: String,
    /// The device key sealed under the secret.
    pub sealed_key: String,
    /// Device certificate, then the vendor intermediate (DER, hex).
    pub chain: Vec<String>,
    /// `nvidia-spdm` for an emulated GPU; absent (or `vendor-x509`) for a secure element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// GPU architecture of an emulated GPU (`Hopper`, `Blackwell`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// The host GPU (`/dev/nvidia<index>`, CDI device `<index>`) that renters' workloads on
    /// this chip get; none: they get no GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_index: Option<u32>,
}

/// The engine behind a chip file.
enum Engine {
    SecureElement(SoftSecureElement),
    Gpu(Box<EmulatedGpu>),
}

impl std::fmt::Debug for ChipFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipFile")
            .field("model", &self.model)
            .field("serial", &self.serial)
            .field("chip_id", &self.chip_id)
            .finish_non_exhaustive()
    }
}

impl ChipFile {
    fn is_gpu(&self) -> bool {
        self.kind.as_deref() == Some(KIND_NVIDIA_SPDM)
    }

    fn secret(&self) -> Result<[u8; 16]> {
        hex::decode(&self.device_secret)?
            .try_into()
            .map_err(|_| anyhow!("device_secret must be 16 bytes"))
    }

    fn decoded_chain(&self) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .chain
            .iter()
            .map(hex::decode)
            .collect::<Result<Vec<_>, _>>()?)
    }

    fn check_id(&self, id: [u8; 32]) -> Result<()> {
        if hex::encode(id) != self.chip_id.to_lowercase() {
            return Err(anyhow!(
                "chip_id {} is not the id of the chip's key ({})",
                self.chip_id,
                hex::encode(id)
            ));
        }
        Ok(())
    }

    /// Opens the secure element; checks that it is the chip the file names.
    pub fn open(&self) -> Result<(SoftSecureElement, Vec<Vec<u8>>)> {
        if self.is_gpu() {
            return Err(anyhow!("an emulated GPU has no secure element to open"));
        }
        let secret = self.secret()?;
        let sealed = SealedKey::from_bytes(&hex::decode(&self.sealed_key)?)
            .map_err(|e| anyhow!("sealed_key: {e}"))?;
        let se = SoftSecureElement::open(secret, sealed).map_err(|e| anyhow!("{e}"))?;
        self.check_id(se.chip_id())?;
        Ok((se, self.decoded_chain()?))
    }

    /// Registration evidence over `nonce` (what a `RegisterChip` transaction carries): an SPDM
    /// report for an emulated GPU, a vendor-x509 signature for a secure element.
    pub fn registration_evidence(&self, nonce: &[u8; 32]) -> Result<Vec<u8>> {
        if self.is_gpu() {
            return self.open_gpu()?.evidence(nonce).map_err(|e| anyhow!("{e}"));
        }
        let (se, chain) = self.open()?;
        let signature = se.sign_registration(nonce).map_err(|e| anyhow!("{e}"))?;
        Evidence::VendorX509(VendorX509Evidence {
            nonce: *nonce,
            chain,
            signature,
        })
        .encode()
        .map_err(|e| anyhow!("{e}"))
    }

    /// Opens an emulated GPU; checks that its chain certifies its keys and that it is the chip
    /// the file names.
    pub fn open_gpu(&self) -> Result<EmulatedGpu> {
        let arch = self
            .architecture
            .as_deref()
            .ok_or_else(|| anyhow!("an emulated GPU file needs its architecture"))?;
        let gpu = EmulatedGpu::open(arch, self.secret()?, self.decoded_chain()?)
            .map_err(|e| anyhow!("{e}"))?;
        self.check_id(gpu.chip_id())?;
        Ok(gpu)
    }

    fn engine(&self) -> Result<Engine> {
        match self.kind.as_deref() {
            None | Some(KIND_VENDOR_X509) => Ok(Engine::SecureElement(self.open()?.0)),
            Some(KIND_NVIDIA_SPDM) => Ok(Engine::Gpu(Box::new(self.open_gpu()?))),
            Some(other) => Err(anyhow!("unknown chip kind {other:?}")),
        }
    }

    /// Manufactures an emulated NVIDIA GPU certified by `ca` (a devnet NVIDIA-shaped CA).
    pub fn provision_gpu(ca: &DevnetNvidiaCa) -> Result<Self> {
        let mut secret = [0u8; 16];
        rand::fill(&mut secret);
        let gpu = ca.manufacture(secret).map_err(|e| anyhow!("{e}"))?;
        Ok(Self {
            model: gpu.model().into(),
            serial: gpu.serial().into(),
            chip_id: hex::encode(gpu.chip_id()),
            device_secret: hex::encode(secret),
            sealed_key: String::new(),
            chain: gpu.chain().iter().map(hex::encode).collect(),
            kind: Some(KIND_NVIDIA_SPDM.into()),
            architecture: Some(gpu.architecture().into()),
            gpu_index: None,
        })
    }

    /// Manufactures a chip certified by `ca` (the devnet vendor CA).
    pub fn provision(
        ca: &DevnetVendorCa,
        model: &str,
        serial: Option<&str>,
        curve: Curve,
    ) -> Result<Self> {
        let mut secret = [0u8; 16];
        let mut key_seed = [0u8; 32];
        rand::fill(&mut secret);
        rand::fill(&mut key_seed);
        let se =
            SoftSecureElement::provision(secret, &key_seed, curve).map_err(|e| anyhow!("{e}"))?;
        let id = se.chip_id();
        let serial = serial
            .map(str::to_string)
            .unwrap_or_else(|| format!("EMU-{}", hex::encode(&id[..6]).to_uppercase()));
        let cert = ca
            .issue_device_cert(&se.public_key(), model, &serial)
            .map_err(|e| anyhow!("{e}"))?;
        let chain = ca.chain_for(cert);
        Ok(Self {
            model: model.into(),
            serial,
            chip_id: hex::encode(id),
            device_secret: hex::encode(secret),
            sealed_key: hex::encode(se.sealed_key().to_bytes()),
            chain: chain.iter().map(hex::encode).collect(),
            kind: None,
            architecture: None,
            gpu_index: None,
        })
    }

    /// Reads a chip file (JSON) from `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a chip file", path.display()))
    }

    /// Writes the file (mode 0600); refuses to overwrite.
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write as _;
        let mut f = crate::home::create_private(path, false)?;
        writeln!(f, "{}", serde_json::to_string_pretty(self)?)?;
        f.sync_all()?;
        Ok(())
    }
}

struct SoftChip {
    info: ChipInfo,
    engine: Engine,
    chain: Vec<Vec<u8>>,
    gpu_index: Option<u32>,
}

/// A directory of chip files (`*.json`), each an emulated chip.
pub struct SoftBackend {
    chips: BTreeMap<ChipId, SoftChip>,
}

impl SoftBackend {
    /// Opens every `*.json` chip file in `dir`. A file that is not a valid chip is an error
    /// naming it (a miner silently skipping a chip would lose its rewards).
    pub fn open(dir: &Path) -> Result<Self> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading chip directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut chips = BTreeMap::new();
        for path in paths {
            let file = ChipFile::load(&path)?;
            let engine = file
                .engine()
                .with_context(|| format!("opening chip {}", path.display()))?;
            let (chip_id, kind) = match &engine {
                Engine::SecureElement(se) => (se.chip_id(), KIND_VENDOR_X509),
                Engine::Gpu(gpu) => (gpu.chip_id(), KIND_NVIDIA_SPDM),
            };
            let info = ChipInfo {
                chip_id,
                model: file.model.clone(),
                serial: file.serial.clone(),
                kind,
                source: path.display().to_string(),
            };
            let chain = file.decoded_chain()?;
            if chips
                .insert(
                    chip_id,
                    SoftChip {
                        info,
                        engine,
                        chain,
                        gpu_index: file.gpu_index,
                    },
                )
                .is_some()
            {
                return Err(anyhow!(
                    "chip {} appears twice in {} (second copy: {})",
                    hex::encode(chip_id),
                    dir.display(),
                    path.display()
                ));
            }
        }
        Ok(Self { chips })
    }

    fn chip(&self, id: &ChipId) -> Result<&SoftChip, BackendError> {
        self.chips
            .get(id)
            .ok_or_else(|| BackendError::UnknownChip(hex::encode(id)))
    }
}

impl ChipBackend for SoftBackend {
    fn name(&self) -> &'static str {
        "soft"
    }

    fn chips(&self) -> Vec<ChipInfo> {
        self.chips.values().map(|c| c.info.clone()).collect()
    }

    fn gpu_index(&self, chip: &ChipId) -> Option<u32> {
        self.chips.get(chip).and_then(|c| c.gpu_index)
    }

    fn registration_evidence(
        &self,
        id: &ChipId,
        nonce: &[u8; 32],
    ) -> Result<Vec<u8>, BackendError> {
        let chip = self.chip(id)?;
        let engine = |e: &dyn std::fmt::Display| BackendError::Engine {
            chip: hex::encode(id),
            reason: e.to_string(),
        };
        let se = match &chip.engine {
            Engine::SecureElement(se) => se,
            Engine::Gpu(gpu) => return gpu.evidence(nonce).map_err(|e| engine(&e)),
        };
        let signature = se.sign_registration(nonce).map_err(|e| engine(&e))?;
        Evidence::VendorX509(VendorX509Evidence {
            nonce: *nonce,
            chain: chip.chain.clone(),
            signature,
        })
        .encode()
        .map_err(|e| engine(&e))
    }

    fn answer(&self, id: &ChipId, digest: &[u8; 32]) -> Result<Vec<u8>, BackendError> {
        let engine = |e: &dyn std::fmt::Display| BackendError::Engine {
            chip: hex::encode(id),
            reason: e.to_string(),
        };
        match &self.chip(id)?.engine {
            Engine::SecureElement(se) => se.sign_digest(digest).map_err(|e| engine(&e)),
            // An NVIDIA GPU answers with a fresh attestation over the challenge digest.
            Engine::Gpu(gpu) => gpu.evidence(digest).map_err(|e| engine(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unet_poci::{verify_liveness, EvidenceVerifier, PociVerifier};

    fn ca() -> DevnetVendorCa {
        DevnetVendorCa::from_seed(b"miner test ca").unwrap()
    }

    #[test]
    fn backend_loads_chip_files_and_its_proofs_verify() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        let a = ChipFile::provision(&ca, "BM1684X", Some("A"), Curve::P256).unwrap();
        let b = ChipFile::provision(&ca, "BM1684", None, Curve::P384).unwrap();
        a.save(&dir.path().join("a.json")).unwrap();
        b.save(&dir.path().join("b.json")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a chip").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("a.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let backend = SoftBackend::open(dir.path()).unwrap();
        let chips = backend.chips();
        assert_eq!(chips.len(), 2);
        let ids: Vec<String> = chips.iter().map(|c| hex::encode(c.chip_id)).collect();
        assert!(ids.contains(&a.chip_id) && ids.contains(&b.chip_id));

        for chip in &chips {
            // A liveness answer verifies with the chip's device key.
            let digest = [9u8; 32];
            let proof = backend.answer(&chip.chip_id, &digest).unwrap();
            let file = if hex::encode(chip.chip_id) == a.chip_id {
                &a
            } else {
                &b
            };
            let (se, _) = file.open().unwrap();
            verify_liveness(&se.public_key(), &digest, &proof).unwrap();
            // Registration evidence carries the nonce and names this chip.
            let nonce = [4u8; 32];
            let ev = backend
                .registration_evidence(&chip.chip_id, &nonce)
                .unwrap();
            let claimed = unet_poci::claimed_identity(&ev).unwrap();
            assert_eq!(claimed.chip_id, chip.chip_id);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let verified = PociVerifier
                .verify_registration(&ev, &nonce, now, &ca.trust_store())
                .unwrap();
            assert_eq!(verified.chip_id, chip.chip_id);
        }
        assert!(matches!(
            backend.answer(&[0u8; 32], &[0u8; 32]),
            Err(BackendError::UnknownChip(_))
        ));
    }

    #[test]
    fn an_eight_gpu_host_is_eight_chips_each_answering_only_for_itself() {
        let dir = tempfile::tempdir().unwrap();
        let gpu_ca = DevnetNvidiaCa::from_seed(b"miner test gpus", "Blackwell").unwrap();
        let files: Vec<ChipFile> = (0..8)
            .map(|i| {
                let f = ChipFile::provision_gpu(&gpu_ca).unwrap();
                f.save(&dir.path().join(format!("gpu{i}.json"))).unwrap();
                f
            })
            .collect();
        ChipFile::provision(&ca(), "BM1684X", None, Curve::P256)
            .unwrap()
            .save(&dir.path().join("se.json"))
            .unwrap();
        let backend = SoftBackend::open(dir.path()).unwrap();
        let chips = backend.chips();
        assert_eq!(chips.len(), 9);
        let gpus: Vec<_> = chips
            .iter()
            .filter(|c| c.kind == KIND_NVIDIA_SPDM)
            .collect();
        assert_eq!(gpus.len(), 8);
        for f in &files {
            assert!(gpus.iter().any(|c| hex::encode(c.chip_id) == f.chip_id));
            assert_eq!(f.model, "B200");
        }
        let trust = gpu_ca.trust_store();
        let now = 1_795_305_600;
        let nonce = [3u8; 32];
        let ids: Vec<_> = gpus
            .iter()
            .map(|c| {
                let ev = backend.registration_evidence(&c.chip_id, &nonce).unwrap();
                let id = PociVerifier
                    .verify_registration(&ev, &nonce, now, &trust)
                    .unwrap();
                assert_eq!(id.chip_id, c.chip_id);
                assert_eq!(id.model, "B200");
                id
            })
            .collect();
        let digest = [8u8; 32];
        for (a, chip) in gpus.iter().enumerate() {
            let answer = backend.answer(&chip.chip_id, &digest).unwrap();
            for (b, id) in ids.iter().enumerate() {
                let r = unet_poci::verify_liveness_attestation(id, &answer, &digest, now, &trust);
                if a == b {
                    r.unwrap();
                } else {
                    assert_eq!(r.unwrap_err(), unet_poci::VerifyError::ChipMismatch);
                }
            }
        }
        // A GPU file whose chain is another GPU's does not open.
        let mut swapped = files[0].clone();
        swapped.chain = files[1].chain.clone();
        assert!(swapped.open_gpu().is_err());
        let mut wrong_id = files[0].clone();
        wrong_id.chip_id = files[1].chip_id.clone();
        assert!(wrong_id.open_gpu().is_err());
    }

    #[test]
    fn bad_chip_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.json"), "{\"model\": 1}").unwrap();
        let err = SoftBackend::open(dir.path()).err().unwrap();
        assert!(format!("{err:#}").contains("broken.json"), "{err:#}");
        // A file whose id does not match its key is refused.
        let ca = ca();
        let mut a = ChipFile::provision(&ca, "BM1684X", None, Curve::P256).unwrap();
        a.chip_id = hex::encode([1u8; 32]);
        assert!(a.open().is_err());
    }
}
