//! Emulated NVIDIA GPUs (devnet): a host of 8 Blackwell or Hopper GPUs whose evidence takes the
//! real verifier's path; each GPU is its own chip and answers only for itself; the devnet root
//! never counts on a production trust store.

mod common;

use common::NOW;
use unet_poci::nvidia::{self, ChainCache};
use unet_poci::secure_element::DevnetNvidiaCa;
use unet_poci::{
    verify_liveness_attestation, verify_nvidia_container, EvidenceVerifier, PociVerifier,
    TrustStore, VerifyError,
};

fn host(arch: &str) -> (DevnetNvidiaCa, Vec<unet_poci::secure_element::EmulatedGpu>) {
    let ca = DevnetNvidiaCa::from_seed(b"emulated host test", arch).unwrap();
    let gpus = (0..8u8)
        .map(|i| ca.manufacture([i + 1; 16]).unwrap())
        .collect();
    (ca, gpus)
}

#[test]
fn eight_gpus_of_a_host_are_eight_chips_on_the_real_path() {
    for (arch, model, chip) in [("Blackwell", "B200", "GB100"), ("Hopper", "H100", "GH100")] {
        let (ca, gpus) = host(arch);
        let trust = ca.trust_store();
        let nonce = [0x5a; 32];
        let mut ids = Vec::new();
        for gpu in &gpus {
            let ev = gpu.evidence(&nonce).unwrap();
            let att = verify_nvidia_container(&ev, &nonce, NOW, &trust).unwrap();
            assert_eq!(att.architecture, arch);
            assert_eq!(att.chip_name, chip);
            let id = att.identity;
            assert_eq!(id.model, model);
            assert_eq!(id.chip_id, gpu.chip_id());
            assert_eq!(id.serial, gpu.serial());
            assert!(id.devnet);
            assert_eq!(
                id.chain_fingerprints.len(),
                3,
                "BROM, provisioner, identity"
            );
            ids.push(id);
        }
        let mut distinct: Vec<_> = ids.iter().map(|i| i.chip_id).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 8);

        // Liveness: each GPU's fresh report answers its own challenge and no other GPU's.
        let digest = [0x11; 32];
        for (a, gpu) in gpus.iter().enumerate() {
            let answer = gpu.evidence(&digest).unwrap();
            for (b, id) in ids.iter().enumerate() {
                let r = verify_liveness_attestation(id, &answer, &digest, NOW, &trust);
                if a == b {
                    r.unwrap();
                } else {
                    assert_eq!(r.unwrap_err(), VerifyError::ChipMismatch, "{a} for {b}");
                }
            }
            // Its registration report does not answer a challenge.
            let old = gpu.evidence(&nonce).unwrap();
            assert_eq!(
                verify_liveness_attestation(&ids[a], &old, &digest, NOW, &trust).unwrap_err(),
                VerifyError::NonceMismatch
            );
        }
    }
}

#[test]
fn a_devnet_gpu_never_passes_a_production_trust_store() {
    let (ca, gpus) = host("Blackwell");
    let ev = gpus[0].evidence(&[1; 32]).unwrap();
    let mut production = TrustStore::new();
    ca.pin_into(&mut production);
    assert_eq!(
        PociVerifier
            .verify_registration(&ev, &[1; 32], NOW, &production)
            .unwrap_err(),
        VerifyError::DevnetRootNotAllowed
    );
    assert_eq!(
        PociVerifier
            .verify_registration(&ev, &[1; 32], NOW, &TrustStore::with_nvidia_root())
            .unwrap_err(),
        VerifyError::UnknownRoot
    );
    // Another architecture's devnet CA does not anchor it either.
    let hopper = DevnetNvidiaCa::from_seed(b"emulated host test", "Hopper").unwrap();
    assert_eq!(
        PociVerifier
            .verify_registration(&ev, &[1; 32], NOW, &hopper.trust_store())
            .unwrap_err(),
        VerifyError::UnknownRoot
    );
    assert!(DevnetNvidiaCa::from_seed(b"x", "Hopper NVSwitch").is_err());
}

#[test]
fn emulated_chains_are_cached_like_real_ones() {
    let (ca, gpus) = host("Blackwell");
    let trust = ca.trust_store();
    let cache = ChainCache::default();
    for round in 0..2 {
        for gpu in &gpus {
            let digest = [round; 32];
            let ev = unet_poci::Evidence::decode(&gpu.evidence(&digest).unwrap()).unwrap();
            let unet_poci::Evidence::NvidiaSpdm(e) = ev else {
                panic!("not NVIDIA evidence")
            };
            assert_eq!(
                nvidia::verify_cached(&e, &digest, NOW, &trust, &cache),
                nvidia::verify(&e, &digest, NOW, &trust)
            );
        }
    }
    assert_eq!(cache.stats().misses, 8);
    assert_eq!(cache.stats().hits, 8);
}
