//! Every single-byte change to NVIDIA evidence (report, chain, nonce) must make verification
//! fail with a named check, for each architecture's sample: Hopper (H100), Blackwell (GB100)
//! and the Hopper NVSwitch (LS10).

mod common;

use std::time::Instant;

use common::*;
use unet_poci::nvidia;
use unet_poci::{NvidiaEvidence, VerifyError};

/// Run `check(i)` for every i in 0..n on two threads; collect the indices that wrongly passed.
fn all_fail(n: usize, check: impl Fn(usize) -> Result<(), VerifyError> + Sync) -> Vec<usize> {
    let threads = 2;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let check = &check;
                s.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .filter(|&i| check(i).is_ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn verify(e: &NvidiaEvidence) -> Result<(), VerifyError> {
    nvidia::verify(e, &nonce(), NOW, &nvidia_trust()).map(|_| ())
}

/// The real samples (all three answer the same nonce) and the stride of the flip loop: every
/// byte of the two GPU generations, every 5th byte of the NVSwitch (runtime).
fn samples() -> [(&'static str, NvidiaEvidence, usize); 3] {
    [
        ("hopper", evidence(), 1),
        ("blackwell", blackwell(), 1),
        ("nvswitch", switch(), 5),
    ]
}

/// The checks a mutated report may fail: each is a distinct, named `VerifyError` variant.
const REPORT_CHECKS: &[&str] = &["malformed_report", "report_signature_invalid", "too_large"];

/// The checks a mutated certificate may fail.
const CHAIN_CHECKS: &[&str] = &[
    "malformed_certificate",
    "unsupported_algorithm",
    "report_signature_invalid",
    "certificate_signature_invalid",
    "issuer_mismatch",
    "not_a_ca",
    "key_usage_violation",
    "unsupported_critical_extension",
    "certificate_not_yet_valid",
    "certificate_expired",
    "unknown_root",
    "unknown_architecture",
    "architecture_mismatch",
    "dice_extension",
    "fwid_mismatch",
    "dice_identity_mismatch",
    "missing_field",
];

#[test]
fn every_byte_flip_fails_with_a_named_check_on_every_sample() {
    let start = Instant::now();
    let flipped = std::sync::Mutex::new(std::collections::BTreeSet::new());
    for (name, base, step) in samples() {
        verify(&base).unwrap();
        let report_len = base.report.len().div_ceil(step);
        let fails = |e: &NvidiaEvidence, allowed: &[&str]| match verify(e) {
            Ok(()) => Err("verified".to_string()),
            Err(err) if allowed.contains(&err.code().as_str()) => Ok(()),
            Err(err) => Err(format!("unexpected check {}", err.code())),
        };
        let bad = std::sync::Mutex::new(Vec::new());
        all_fail(report_len, |k| {
            let i = k * step;
            let mut e = base.clone();
            e.report[i] ^= 0x01;
            if let Err(why) = fails(&e, REPORT_CHECKS) {
                bad.lock().unwrap().push(format!("report byte {i}: {why}"));
            }
            Err(VerifyError::EmptyChain)
        });
        for c in 0..base.chain.len() {
            // NVIDIA's CA certificates shared by samples (root, GH100 Identity) are flipped once.
            if !flipped.lock().unwrap().insert(base.chain[c].clone()) {
                continue;
            }
            all_fail(base.chain[c].len().div_ceil(step), |k| {
                let i = k * step;
                let mut e = base.clone();
                e.chain[c][i] ^= 0x01;
                if let Err(why) = fails(&e, CHAIN_CHECKS) {
                    bad.lock()
                        .unwrap()
                        .push(format!("cert {c} byte {i}: {why}"));
                }
                Err(VerifyError::EmptyChain)
            });
        }
        for i in 0..32 {
            let mut n = nonce();
            n[i] ^= 0x01;
            let err = nvidia::verify(&base, &n, NOW, &nvidia_trust()).unwrap_err();
            assert_eq!(err.code(), "nonce_mismatch", "{name}: nonce byte {i}");
        }
        let bad = bad.into_inner().unwrap();
        assert!(bad.is_empty(), "{name}: {bad:?}");
    }
    println!("flips of three samples in {:?}", start.elapsed());
}

#[test]
fn report_flip_errors_are_the_expected_ones() {
    // Flips inside the signed region after the request header fail the signature; flips in the
    // signature fail the signature.
    let base = evidence();
    let sig_start = base.report.len() - 96;
    for i in (40..base.report.len()).step_by(97) {
        let mut e = base.clone();
        e.report[i] ^= 0x01;
        let err = verify(&e).unwrap_err();
        if i >= sig_start {
            assert_eq!(err, VerifyError::ReportSignatureInvalid, "byte {i}");
        } else {
            assert!(
                matches!(
                    err,
                    VerifyError::ReportSignatureInvalid | VerifyError::MalformedReport { .. }
                ),
                "byte {i}: {err:?}"
            );
        }
    }
}

#[test]
fn truncations_and_extensions_fail() {
    let base = evidence();
    for len in 0..base.report.len() {
        let mut e = base.clone();
        e.report.truncate(len);
        assert!(verify(&e).is_err(), "truncated to {len}");
    }
    let mut e = base.clone();
    e.report.push(0);
    assert!(matches!(
        verify(&e),
        Err(VerifyError::MalformedReport { .. })
    ));
    for c in 0..base.chain.len() {
        for len in [0, 1, 10, base.chain[c].len() / 2, base.chain[c].len() - 1] {
            let mut e = base.clone();
            e.chain[c].truncate(len);
            assert!(verify(&e).is_err());
        }
        let mut e = base.clone();
        e.chain[c].push(0);
        assert!(matches!(
            verify(&e),
            Err(VerifyError::MalformedCertificate { .. })
        ));
    }
}
