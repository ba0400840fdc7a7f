//! Replays the committed fuzz corpora (fuzz/corpus/<target>/) and the seed inputs through the
//! same functions the cargo-fuzz targets call, on stable, as part of the normal test run.

use std::path::PathBuf;
use unet_fuzzing::{decode, poci, stateful};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    inputs("corpus", target)
}

/// The files of fuzz/<kind>/<target>/, sorted by name.
fn inputs(kind: &str, target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("corpus file"))
        .collect()
}

fn replay(target: &str, seeds: Vec<Vec<u8>>, run: fn(&[u8])) {
    let inputs = corpus(target);
    assert!(!inputs.is_empty(), "corpus of {target} is empty");
    for input in inputs.iter().chain(&seeds) {
        run(input);
    }
}

#[test]
fn tx_decode_corpus() {
    replay("tx_decode", decode::seeds("tx_decode"), decode::tx_decode);
}

#[test]
fn block_decode_corpus() {
    replay(
        "block_decode",
        decode::seeds("block_decode"),
        decode::block_decode,
    );
}

#[test]
fn poci_evidence_corpus() {
    replay(
        "poci_evidence",
        poci::seeds("poci_evidence"),
        poci::poci_evidence,
    );
}

#[test]
fn nvidia_spdm_corpus() {
    replay("nvidia_spdm", poci::seeds("nvidia_spdm"), poci::nvidia_spdm);
}

#[test]
fn x509_chain_corpus() {
    replay("x509_chain", poci::seeds("x509_chain"), poci::x509_chain);
}

#[test]
fn state_blocks_corpus() {
    replay("state_blocks", stateful::seeds(), stateful::state_blocks);
}

/// Inputs that once crashed a target, each named after its bug (fuzz/regressions/):
/// `state_blocks/transfer-chip-in-its-payout-block` is issue 12 item 2, found by this target:
/// a `TransferChip` in the block where the reward cursor pays that chip; the planner loaded
/// only the old owner's reward tally, execution failed with a missing key and proposing
/// failed (the chain halts). Fails before 0d04d1d (new owners in the read-set).
#[test]
fn state_blocks_regressions() {
    let input = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/state_blocks/transfer-chip-in-its-payout-block"),
    )
    .expect("regression input");
    stateful::state_blocks(&input);
}

/// Found by `state_blocks` (fuzz/README.md): governance sets a model's rating to `u64::MAX`
/// milli-TOPS, a chip of that model registers, and the epoch's settlement paid out more than
/// the emission: `emission - paid` in `rewards::finish` underflowed. Fixed by capping each
/// share at what is left of the emission and checked arithmetic in `finish`.
#[test]
fn state_blocks_model_compute_u64_max() {
    let input = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/state_blocks/model-compute-u64-max-overpays-epoch"),
    )
    .expect("regression input");
    stateful::state_blocks(&input);
}

/// Writes the seed inputs into fuzz/corpus/ (run once with `--ignored` before fuzzing).
#[test]
#[ignore]
fn write_seeds() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let all = [
        ("tx_decode", decode::seeds("tx_decode")),
        ("block_decode", decode::seeds("block_decode")),
        ("poci_evidence", poci::seeds("poci_evidence")),
        ("nvidia_spdm", poci::seeds("nvidia_spdm")),
        ("x509_chain", poci::seeds("x509_chain")),
        ("state_blocks", stateful::seeds()),
    ];
    for (target, seeds) in all {
        std::fs::create_dir_all(root.join(target)).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(root.join(target).join(format!("seed-{i}")), s).unwrap();
        }
    }
}
