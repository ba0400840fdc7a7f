//! Replays the committed corpus of the `job_auth` fuzz target (fuzz/corpus/job_auth/) through
//! the function the target calls, on stable, as part of the normal test run.

use commonware_cryptography::Signer;
use std::path::PathBuf;
use unet_miner::jobs::replay::{fuzz_request, FUZZ_CHAIN_ID};
use unet_renter::auth::sign_request;
use unet_types::PrivateKey;

/// A correctly signed request in the target's input format.
fn signed_seed() -> Vec<u8> {
    let key = PrivateKey::from_seed(1);
    let body = br#"{"lease":3,"job":{"kind":"exec","argv":["true"]}}"#;
    let headers = sign_request(
        &key,
        FUZZ_CHAIN_ID,
        3,
        "POST",
        "/v1/jobs",
        body,
        1_700_000_000_000,
    );
    let mut data = Vec::new();
    for (_, v) in headers {
        data.extend_from_slice(v.as_bytes());
        data.push(b'\n');
    }
    data.extend_from_slice(b"POST\n/v1/jobs\n");
    data.extend_from_slice(body);
    data
}

#[test]
fn job_auth_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/job_auth");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    assert!(!files.is_empty(), "corpus of job_auth is empty");
    for f in files {
        fuzz_request(&std::fs::read(&f).expect("corpus file"));
    }
}

#[test]
fn the_seed_request_verifies_and_a_flipped_byte_does_not() {
    let seed = signed_seed();
    assert!(fuzz_request(&seed));
    let mut body_changed = seed.clone();
    *body_changed.last_mut().unwrap() ^= 1;
    assert!(!fuzz_request(&body_changed));
}

/// Writes the seed into fuzz/corpus/job_auth/ (run once with `--ignored` before fuzzing).
#[test]
#[ignore]
fn write_seed() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/job_auth");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("seed-0"), signed_seed()).unwrap();
}
