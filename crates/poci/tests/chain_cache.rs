//! [`ChainCache`]: a verified chain is looked up by fingerprint, and the verdict is the same with
//! and without the cache, cold or warm, whatever trust-store changes happened in between
//! (revocations, removed roots, the devnet switch, time). Validators fill their caches from
//! different histories, so any difference here could split them.

mod common;

use common::*;
use unet_poci::nvidia::{self, ChainCache};
use unet_poci::secure_element::DevnetVendorCa;
use unet_poci::{EvidenceKind, NvidiaEvidence, TrustStore, VerifyError};

/// Every sample with the nonce it answers.
fn samples() -> Vec<(NvidiaEvidence, [u8; 32])> {
    let gpu = multi_gpu_hopper().swap_remove(0);
    vec![
        (evidence(), nonce()),
        (blackwell(), nonce()),
        (switch(), nonce()),
        (gpu, multi_gpu_nonce()),
    ]
}

/// Trust stores a validator may hold at some height: the base one and every change governance
/// can make to what a chain check reads.
fn trust_variants() -> Vec<(String, TrustStore)> {
    let mut out = vec![("base".to_string(), nvidia_trust())];
    // Each position of the Blackwell chain (root included), and the H100's BROM.
    for (i, cert) in blackwell().chain.iter().enumerate() {
        let mut t = nvidia_trust();
        t.revoke_certificate_der(cert).unwrap();
        out.push((format!("Blackwell certificate {i} revoked"), t));
    }
    let mut t = nvidia_trust();
    t.revoke_certificate_der(&evidence().chain[1]).unwrap();
    out.push(("H100 BROM revoked".into(), t));
    let hopper = nvidia::verify(&evidence(), &nonce(), NOW, &nvidia_trust()).unwrap();
    let mut t = nvidia_trust();
    t.revoke_chip(hopper.identity.chip_id);
    out.push(("H100 chip revoked".into(), t));
    out.push(("NVIDIA root removed".into(), TrustStore::new()));
    // Another root pinned before NVIDIA's changes the roots the chain is anchored against.
    let ca = DevnetVendorCa::from_seed(b"cache test").unwrap();
    let mut t = TrustStore::devnet();
    t.add_root(EvidenceKind::NvidiaSpdm, ca.root_der(), true)
        .unwrap();
    t.add_root_pem(EvidenceKind::NvidiaSpdm, ROOT, false)
        .unwrap();
    out.push(("extra devnet root first".into(), t));
    // NVIDIA's root pinned as devnet-only, then the devnet switch turned off.
    let mut t = TrustStore::devnet();
    t.add_root_pem(EvidenceKind::NvidiaSpdm, ROOT, true)
        .unwrap();
    out.push(("NVIDIA root devnet-only, devnet allowed".into(), t.clone()));
    t.allow_devnet_roots = false;
    out.push(("NVIDIA root devnet-only, devnet refused".into(), t));
    out
}

/// Times on both sides of every validity edge of the samples.
const TIMES: [u64; 5] = [
    NOW,
    LATEST_NOT_BEFORE - 1,
    1_687_219_199, // 2023-06-19T23:59:59Z, before Blackwell's latest notBefore
    253_402_300_799,
    253_402_300_800, // after every notAfter (9999-12-31T23:59:59Z)
];

#[test]
fn same_verdict_cold_and_warm_under_every_trust_change() {
    // One cache warmed under the base trust store, then used under every variant; and a fresh
    // cache per check. Both must agree with the uncached verifier on every input.
    let warm = ChainCache::default();
    for (e, n) in samples() {
        nvidia::verify_cached(&e, &n, NOW, &nvidia_trust(), &warm).unwrap();
    }
    let mut checks = 0;
    for (label, trust) in trust_variants() {
        for (s, (e, n)) in samples().iter().enumerate() {
            for now in TIMES {
                let mut wrong = *n;
                wrong[0] ^= 1;
                let mut bad_sig = e.clone();
                let last = bad_sig.report.len() - 1;
                bad_sig.report[last] ^= 1;
                for (case, e, n) in [("valid", e, n), ("nonce", e, &wrong), ("sig", &bad_sig, n)] {
                    let cold = nvidia::verify(e, n, now, &trust);
                    let fresh = ChainCache::default();
                    let first = nvidia::verify_cached(e, n, now, &trust, &fresh);
                    let again = nvidia::verify_cached(e, n, now, &trust, &fresh);
                    let shared = nvidia::verify_cached(e, n, now, &trust, &warm);
                    let at = format!("{label} / sample {s} / {case} / t={now}");
                    assert_eq!(cold, first, "{at}: fresh cache");
                    assert_eq!(cold, again, "{at}: second lookup");
                    assert_eq!(cold, shared, "{at}: cache warmed under another trust store");
                    checks += 1;
                }
            }
        }
        // Put the entries back for the next variant (a failing re-check evicted them).
        for (e, n) in samples() {
            nvidia::verify_cached(&e, &n, NOW, &nvidia_trust(), &warm).unwrap();
        }
    }
    assert!(checks > 500, "{checks}");
}

#[test]
fn a_repeat_report_is_a_hit_and_a_revoked_certificate_evicts() {
    let cache = ChainCache::default();
    let trust = nvidia_trust();
    let e = blackwell();
    let cold = nvidia::verify_cached(&e, &nonce(), NOW, &trust, &cache).unwrap();
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.stats().misses, 1);
    let warm = nvidia::verify_cached(&e, &nonce(), NOW, &trust, &cache).unwrap();
    assert_eq!(cold, warm);
    assert_eq!(cache.stats().hits, 1);

    // Attack: governance revokes the GB100 provisioner CA after the chip's chain was cached.
    // The cached chain must not keep the chip alive: refused with the same error as a cold
    // verification, and evicted.
    let mut revoked = nvidia_trust();
    revoked.revoke_certificate_der(&e.chain[2]).unwrap();
    let err = nvidia::verify_cached(&e, &nonce(), NOW, &revoked, &cache).unwrap_err();
    assert!(
        matches!(err, VerifyError::CertificateRevoked { index: 2, .. }),
        "{err:?}"
    );
    assert_eq!(
        err,
        nvidia::verify(&e, &nonce(), NOW, &revoked).unwrap_err()
    );
    assert_eq!(cache.stats().evicted_on_recheck, 1);
    assert!(cache.is_empty());
    // Still refused on the next report (now a cold path again).
    assert_eq!(
        nvidia::verify_cached(&e, &nonce(), NOW, &revoked, &cache).unwrap_err(),
        err
    );
    assert!(cache.is_empty(), "a refused chain is never cached");

    // A revoked chip is refused on a hit too (chip revocation is never cached).
    nvidia::verify_cached(&e, &nonce(), NOW, &trust, &cache).unwrap();
    let mut t = nvidia_trust();
    t.revoke_chip(cold.identity.chip_id);
    assert!(matches!(
        nvidia::verify_cached(&e, &nonce(), NOW, &t, &cache),
        Err(VerifyError::ChipRevoked(_))
    ));
}

#[test]
fn a_cached_chain_does_not_vouch_for_another_report() {
    // The chain is cached; a report signed by another chip, presented with it, still fails on
    // its signature, and the cached chain's FWID is still compared with the new report's.
    let cache = ChainCache::default();
    let trust = nvidia_trust();
    let gpus = multi_gpu_hopper();
    let n = multi_gpu_nonce();
    for g in &gpus {
        nvidia::verify_cached(g, &n, NOW, &trust, &cache).unwrap();
    }
    for (a, ga) in gpus.iter().enumerate() {
        for (b, gb) in gpus.iter().enumerate() {
            if a != b {
                let e = NvidiaEvidence {
                    report: ga.report.clone(),
                    chain: gb.chain.clone(),
                };
                assert_eq!(
                    nvidia::verify_cached(&e, &n, NOW, &trust, &cache).unwrap_err(),
                    VerifyError::ReportSignatureInvalid
                );
            }
        }
    }
    assert_eq!(cache.stats().misses, 4);
}

#[test]
fn capacity_is_bounded() {
    let cache = ChainCache::new(2);
    let trust = nvidia_trust();
    let n = multi_gpu_nonce();
    for g in multi_gpu_hopper() {
        nvidia::verify_cached(&g, &n, NOW, &trust, &cache).unwrap();
        assert!(cache.len() <= 2);
    }
    assert_eq!(cache.len(), 2);
    // The evicted chains verify again in full, with the same result.
    let first = &multi_gpu_hopper()[0];
    assert_eq!(
        nvidia::verify_cached(first, &n, NOW, &trust, &cache),
        nvidia::verify(first, &n, NOW, &trust)
    );
}
