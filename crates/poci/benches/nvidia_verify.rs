//! NVIDIA report verification throughput: full verification (chain of 4 P-384 signatures + the
//! report's P-384 signature + parsing) and its parts; a repeat report with the chain cached
//! ([`nvidia::ChainCache`]); liveness signature checks for comparison.
//!
//! `cargo bench -p unet-poci --bench nvidia_verify` (ring backend, the default) and
//! `cargo bench -p unet-poci --bench nvidia_verify --no-default-features` (pure RustCrypto).
//!
//! At the end it prints the warm-report cost as a ratio of a bare P-384 signature verification
//! measured in the same run, interleaved (goal of issue 16: at most 1.25x).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use unet_poci::nvidia::{self, parse_report, ChainCache};
use unet_poci::secure_element::SoftSecureElement;
use unet_poci::{verify_liveness, Curve, EvidenceKind, NvidiaEvidence, TrustStore};

const REPORT: &str = include_str!("../tests/vectors/hopperAttestationReport.txt");
const CHAIN: &str = include_str!("../tests/vectors/hopperCertChain.txt");
const ROOT: &str = include_str!("../tests/vectors/verifier_device_root.pem");
const NOW: u64 = 1_795_305_600;

fn bench(c: &mut Criterion) {
    let evidence = NvidiaEvidence::from_hex_and_pem(REPORT, CHAIN).unwrap();
    let nonce: [u8; 32] =
        hex::decode("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
            .unwrap()
            .try_into()
            .unwrap();
    let mut trust = TrustStore::new();
    trust
        .add_root_pem(EvidenceKind::NvidiaSpdm, ROOT, false)
        .unwrap();
    nvidia::verify(&evidence, &nonce, NOW, &trust).unwrap();

    let mut g = c.benchmark_group("nvidia");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_full_chain_root_included", |b| {
        b.iter(|| nvidia::verify(&evidence, &nonce, NOW, &trust).unwrap())
    });
    g.bench_function("parse_report_only", |b| {
        b.iter(|| parse_report(&evidence.report).unwrap())
    });
    let cache = ChainCache::default();
    nvidia::verify_cached(&evidence, &nonce, NOW, &trust, &cache).unwrap();
    g.bench_function("verify_repeat_report_chain_cached", |b| {
        b.iter(|| nvidia::verify_cached(&evidence, &nonce, NOW, &trust, &cache).unwrap())
    });
    g.finish();

    // Liveness answers from the software secure element (one ECDSA verification each).
    let mut g = c.benchmark_group("liveness");
    g.throughput(Throughput::Elements(1));
    for curve in [Curve::P256, Curve::P384] {
        let se = SoftSecureElement::provision([1; 16], b"bench", curve).unwrap();
        let key = se.public_key();
        let digest = [7u8; 32];
        let sig = se.sign_digest(&digest).unwrap();
        g.bench_function(format!("{curve:?}"), |b| {
            b.iter(|| verify_liveness(&key, &digest, &sig).unwrap())
        });
    }
    g.finish();
    println!("verification backend: {}", unet_poci::VERIFY_BACKEND);
    warm_report_ratio(&evidence, &nonce, &trust);
}

/// Warm report vs bare P-384 verification, measured interleaved in rounds so that load on a
/// shared machine hits both alike; prints the median of the per-round ratios.
fn warm_report_ratio(evidence: &NvidiaEvidence, nonce: &[u8; 32], trust: &TrustStore) {
    let se = SoftSecureElement::provision([2; 16], b"ratio", Curve::P384).unwrap();
    let key = se.public_key();
    let digest = [7u8; 32];
    let sig = se.sign_digest(&digest).unwrap();
    let cache = ChainCache::default();
    nvidia::verify_cached(evidence, nonce, NOW, trust, &cache).unwrap();
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..50 {
            f();
        }
        start.elapsed() / 50
    };
    let (mut ratios, mut cold_ratios) = (Vec::new(), Vec::new());
    let (mut bare_sum, mut warm_sum, mut cold_sum) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..15 {
        let bare = time(&|| verify_liveness(&key, &digest, &sig).unwrap());
        let warm = time(&|| {
            nvidia::verify_cached(evidence, nonce, NOW, trust, &cache).unwrap();
        });
        let cold = time(&|| {
            nvidia::verify(evidence, nonce, NOW, trust).unwrap();
        });
        ratios.push(warm.as_secs_f64() / bare.as_secs_f64());
        cold_ratios.push(cold.as_secs_f64() / bare.as_secs_f64());
        (bare_sum, warm_sum, cold_sum) = (bare_sum + bare, warm_sum + warm, cold_sum + cold);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "repeat NVIDIA report, chain cached: {:.3}x a bare P-384 verification (median of 15 \
         interleaved rounds; means: cached {:?}, bare P-384 {:?}); full verification {:.2}x \
         ({:?}); cache {:?}",
        median(&mut ratios),
        warm_sum / 15,
        bare_sum / 15,
        median(&mut cold_ratios),
        cold_sum / 15,
        cache.stats(),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
