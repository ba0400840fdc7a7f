//! What one transfer costs a validator, part by part, beside the batched signature check the
//! `unet bench` ceiling counts (issue 16, item 1).
//!
//! `cargo bench -p unet-state --bench tx_path` runs the criterion groups, then prints each part
//! as a ratio of one batched verification (batches of 1,000 transfers from 200 senders, the
//! bench's mix) measured interleaved in the same run. `-- ratio_only` prints only the ratios.

use std::time::{Duration, Instant};

use commonware_codec::{Copying, DecodeExt, Encode};
use commonware_cryptography::{ed25519, Signer};
use criterion::{criterion_group, Criterion, Throughput};
use unet_state::check_stateless_batch;
use unet_types::{Payload, PrivateKey, SignedTx, Transaction};

const CHAIN_ID: u64 = 1;
const BATCH: usize = 1_000;
const SENDERS: u64 = 200;

fn transfers(first_seed: u64) -> Vec<SignedTx> {
    let to = PrivateKey::from_seed(0xdead).public_key();
    (0..BATCH)
        .map(|i| {
            let key = PrivateKey::from_seed(first_seed + i as u64 % SENDERS);
            Transaction {
                chain_id: CHAIN_ID,
                sender: key.public_key(),
                nonce: i as u64,
                fee: 1,
                payload: Payload::Transfer {
                    to: to.clone(),
                    amount: 1,
                },
            }
            .sign(&key)
        })
        .collect()
}

fn decode_all(encoded: &[Vec<u8>]) -> usize {
    encoded
        .iter()
        .map(|b| SignedTx::decode(Copying(b.as_slice())).map_or(0, |t| t.tx.nonce as usize))
        .sum()
}

fn decompress_all(keys: &[[u8; 32]]) -> usize {
    keys.iter()
        .map(|k| usize::from(ed25519::PublicKey::decode(Copying(k.as_slice())).is_ok()))
        .sum()
}

fn bench(c: &mut Criterion) {
    let txs = transfers(0x7000);
    let encoded: Vec<Vec<u8>> = txs.iter().map(|t| t.encode().to_vec()).collect();
    let keys: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.tx.sender.as_ref().try_into().expect("32 bytes"))
        .collect();
    let mut g = c.benchmark_group("tx_path");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("batch_verify_1000", |b| {
        b.iter(|| check_stateless_batch(&txs, CHAIN_ID, 1, |_| false).unwrap())
    });
    g.bench_function("decode_1000", |b| b.iter(|| decode_all(&encoded)));
    g.bench_function("decompress_key_1000", |b| b.iter(|| decompress_all(&keys)));
    g.finish();
    ratios();
}

/// Each part per transfer as a ratio of one batched verification, rounds interleaved so a
/// shared machine slows both alike; medians of the per-round ratios.
fn ratios() {
    let txs = transfers(0x9000);
    let encoded: Vec<Vec<u8>> = txs.iter().map(|t| t.encode().to_vec()).collect();
    let keys: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.tx.sender.as_ref().try_into().expect("32 bytes"))
        .collect();
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut decode, mut decompress) = (Vec::new(), Vec::new());
    let mut verify_total = Duration::ZERO;
    for _ in 0..15 {
        let verify = time(&|| assert!(check_stateless_batch(&txs, CHAIN_ID, 1, |_| false).is_ok()));
        let d = time(&|| assert_eq!(decode_all(&encoded), (0..BATCH).sum::<usize>()));
        let k = time(&|| assert_eq!(decompress_all(&keys), BATCH));
        verify_total += verify;
        decode.push(d.as_secs_f64() / verify.as_secs_f64());
        decompress.push(k.as_secs_f64() / verify.as_secs_f64());
    }
    // Smaller batches (a gossip message, an API request) cost more per signature: the
    // multiscalar multiplication shares less work across fewer points.
    let mut sizes = Vec::new();
    for n in [25usize, 100, 250, 1_000] {
        let mut r = Vec::new();
        for _ in 0..15 {
            let whole =
                time(&|| assert!(check_stateless_batch(&txs, CHAIN_ID, 1, |_| false).is_ok()));
            let part = time(&|| {
                for chunk in txs.chunks(n) {
                    assert!(check_stateless_batch(chunk, CHAIN_ID, 1, |_| false).is_ok());
                }
            });
            r.push(part.as_secs_f64() / whole.as_secs_f64());
        }
        sizes.push(format!("{n}: {:.2}x", median(&mut r)));
    }
    println!(
        "tx_path batch size (per signature, vs batches of {BATCH}): {}",
        sizes.join(", ")
    );
    println!(
        "tx_path ratios (per transfer, vs one batched verification of {:.2} us): decode with its keys cached {:.2}x, one key decompression {:.2}x",
        verify_total.as_secs_f64() * 1e6 / (15 * BATCH) as f64,
        median(&mut decode),
        median(&mut decompress)
    );
}

fn ratio_only() -> bool {
    std::env::args().any(|a| a == "ratio_only")
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}

fn main() {
    if ratio_only() {
        ratios();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
