//! NVIDIA report verification throughput: full verification (chain of 4 P-384 signatures + the
//! report's P-384 signature + parsing) and its parts; liveness signature checks for comparison.
//!
//! `cargo bench -p unet-poci --bench nvidia_verify` (ring backend, the default) and
//! `cargo bench -p unet-poci --bench nvidia_verify --no-default-features` (pure RustCrypto).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use unet_poci::nvidia::{self, parse_report};
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
