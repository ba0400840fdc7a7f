//! Every single-byte change to the NVIDIA evidence must make verification fail.

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

#[test]
fn every_report_byte_flip_fails() {
    let base = evidence();
    verify(&base).unwrap();
    let start = Instant::now();
    let n = base.report.len();
    // Every byte with the low bit flipped, every byte inverted; the high bit on every 7th byte.
    for (mask, step) in [(0x01u8, 1), (0xFF, 1), (0x80, 7)] {
        let passed = all_fail(n.div_ceil(step), |k| {
            let mut e = base.clone();
            e.report[k * step] ^= mask;
            verify(&e)
        });
        assert!(
            passed.is_empty(),
            "mask {mask:#x}: flips that still verified at {passed:?}"
        );
    }
    println!("report flips over {n} bytes in {:?}", start.elapsed());
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
fn every_certificate_byte_flip_fails() {
    let base = evidence();
    let start = Instant::now();
    let mut total = 0;
    for c in 0..base.chain.len() {
        let n = base.chain[c].len();
        total += n;
        let passed = all_fail(n, |i| {
            let mut e = base.clone();
            e.chain[c][i] ^= 0x01;
            verify(&e)
        });
        assert!(
            passed.is_empty(),
            "certificate {c}: flips that still verified at {passed:?}"
        );
    }
    println!("{total} certificate flips in {:?}", start.elapsed());
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
