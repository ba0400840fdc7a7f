//! Liveness answer proofs: the check itself, the block's up-front check of every answer on
//! all cores, and the admission check whose verdicts a node may remember.
//!
//! # Checking once, at admission
//!
//! A device-key answer (every kind but NVIDIA SPDM) is valid or not by a fixed function of
//! three byte strings: the chip's device public key, the digest it signs
//! (`response_digest(chain_id, height, beacon, chip_id)` of the pending challenge) and the
//! proof. [`admit_answer`] checks an answer when it enters the mempool and, if it verifies,
//! returns its [`answer_key`]: SHA-256 over a domain tag and those three strings (lengths
//! prefixed). A node keeps these keys; when it executes a block, [`crate::execute_with`]
//! recomputes the key of every answer *from the block's own pre-state* (the device key in the
//! chip record, the digest from the chip's pending challenge) and the proof bytes in the
//! block, and skips the signature check only when the node holds that exact key.
//!
//! Why a byzantine leader gains nothing: the key is not taken from the block, it is derived
//! from what the verifier itself reads; any other device key, challenge or proof gives
//! another key (SHA-256 collision resistance), which no honest node holds, so that answer is
//! checked in full. A key is only ever added after this node verified the same triple, so
//! a hit means "already checked here", never "someone said so". Skipping the check cannot
//! change a verdict, so the block's result is the same on every node whatever each one has
//! cached. NVIDIA SPDM answers are never cached: their verdict also depends on the block's
//! time and the trust store (roots, revocations).

use crate::{working::Working, BlockEnv, BlockError};
use commonware_cryptography::{Hasher, Sha256};
use std::collections::HashMap;
use unet_poci::{verify_liveness, Curve, DevicePublicKey};
use unet_types::{
    chip::{kind, Chip, ChipId},
    keys::chip_key,
    liveness::{response_digest, LivenessResponse},
    Digest, Payload, SignedTx,
};

/// The key under which a node remembers that it verified a device-key answer: SHA-256 over
/// a domain tag, the device key, the signed digest and the proof (see the module docs).
pub fn answer_key(device_key: &[u8], digest: &[u8; 32], proof: &[u8]) -> Digest {
    let mut h = Sha256::default();
    h.update(b"UNET_VERIFIED_ANSWER_V1");
    h.update(&(device_key.len() as u32).to_be_bytes());
    h.update(device_key);
    h.update(digest);
    h.update(&(proof.len() as u32).to_be_bytes());
    h.update(proof);
    let (_, digest) = h.finalize();
    digest
}

/// Why an answer was not admitted with a key to remember.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The chip has no pending challenge at the answer's height (in the state checked).
    #[error("no pending challenge at height {0}")]
    NotChallenged(u64),
    /// NVIDIA SPDM answers are checked in the block only (see the module docs).
    #[error("attestation answers are checked in the block")]
    NotCacheable,
    /// The proof does not verify with the chip's key.
    #[error("bad proof: {0}")]
    BadProof(String),
}

/// Checks one answer at admission against `chip` as the node's current state holds it:
/// its challenge must be pending and its proof must verify with the chip's device key.
/// Returns the [`answer_key`] to remember.
pub fn admit_answer(
    chain_id: u64,
    chip: &Chip,
    r: &LivenessResponse,
) -> Result<Digest, AdmitError> {
    if chip.kind == kind::NVIDIA_SPDM {
        return Err(AdmitError::NotCacheable);
    }
    let pending = chip
        .live
        .pending
        .filter(|p| p.height == r.challenge_height)
        .ok_or(AdmitError::NotChallenged(r.challenge_height))?;
    let digest = response_digest(chain_id, pending.height, &pending.beacon, &r.chip_id);
    verify_device_key(chip, &digest, &r.proof).map_err(AdmitError::BadProof)?;
    Ok(answer_key(&chip.device_key, &digest, &r.proof))
}

/// [`admit_answer`] for many answers, on all cores.
pub fn admit_answers(
    chain_id: u64,
    answers: &[(Chip, LivenessResponse)],
) -> Vec<Result<Digest, AdmitError>> {
    par_map(answers, |(chip, r)| admit_answer(chain_id, chip, r))
        .into_iter()
        .map(|v| v.unwrap_or_else(|| Err(AdmitError::BadProof("verification failed".into()))))
        .collect()
}

fn verify_device_key(chip: &Chip, digest: &[u8; 32], proof: &[u8]) -> Result<(), String> {
    let curve = if chip.device_key.len() == 65 {
        Curve::P256
    } else {
        Curve::P384
    };
    let key = DevicePublicKey {
        curve,
        sec1: chip.device_key.clone(),
    };
    verify_liveness(&key, digest, proof).map_err(|e| e.to_string())
}

/// Checks one proof against the chip's registered key.
pub(crate) fn check_proof(
    env: &BlockEnv<'_>,
    chip: &Chip,
    chip_id: &ChipId,
    digest: &[u8; 32],
    proof: &[u8],
    trust: &unet_poci::TrustStore,
) -> Result<(), String> {
    match chip.kind {
        kind::NVIDIA_SPDM => {
            // Verified chains by fingerprint: a repeat answer costs one P-384 verification. The
            // verdict is the same with or without the cache (unet_poci::nvidia::ChainCache), so
            // validators whose caches differ still agree.
            static CHAINS: std::sync::LazyLock<unet_poci::nvidia::ChainCache> =
                std::sync::LazyLock::new(Default::default);
            let fresh = unet_poci::verify_nvidia_container_cached(
                proof,
                digest,
                env.timestamp_ms / 1000,
                trust,
                &CHAINS,
            )
            .map_err(|e| e.to_string())?
            .identity;
            if fresh.chip_id != *chip_id {
                return Err("attestation is from another chip".into());
            }
            Ok(())
        }
        _ => verify_device_key(chip, digest, proof),
    }
}

/// `f` over `items`, in order, split across the machine's cores (at most 16) when there are
/// enough. An item whose worker thread panicked has no result (`None`).
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<Option<R>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(16));
    if threads < 2 || items.len() < 32 {
        return items.iter().map(|i| Some(f(i))).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let worker = s.spawn(move || part.iter().map(f).collect::<Vec<_>>());
                (worker, part.len())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(worker, len)| match worker.join() {
                Ok(results) => results.into_iter().map(Some).collect::<Vec<_>>(),
                Err(_) => (0..len).map(|_| None).collect(),
            })
            .collect()
    })
}

/// Proof checks of every answer in a block, done up front on all cores.
///
/// A proof's validity depends only on the chip's device key (fixed at registration) and the
/// pending challenge it answers; both are read from the block's pre-state. An answer whose
/// challenge is not pending there cannot be accepted anyway, so it is left out (and checked
/// inline if it ever gets that far). Every chip it decodes is stashed in the working set for
/// the answer that follows (`Working::take_chip`). A device-key answer whose [`answer_key`] (computed
/// here, from the pre-state and the proof) is `known` was verified by this node at admission
/// and is not verified again. Results are keyed by (transaction, response) position, so
/// execution stays a pure function of its inputs.
pub(crate) fn preverify(
    w: &mut Working<'_>,
    env: &BlockEnv<'_>,
    trust: &unet_poci::TrustStore,
    txs: &[SignedTx],
    known: &(dyn Fn(&Digest) -> bool + Sync),
) -> Result<Proofs, BlockError> {
    let mut jobs = Vec::new();
    let mut results = HashMap::new();
    for (t, stx) in txs.iter().enumerate() {
        let Payload::Liveness { responses } = &stx.tx.payload else {
            continue;
        };
        for (r, resp) in responses.iter().enumerate() {
            let key = chip_key(&resp.chip_id);
            let Some(chip) = w.get::<Chip>(&key)? else {
                continue;
            };
            let Some(p) = chip
                .live
                .pending
                .filter(|p| p.height == resp.challenge_height)
            else {
                w.stash_chip(key, chip);
                continue;
            };
            let digest = response_digest(env.chain_id, p.height, &p.beacon, &resp.chip_id);
            if chip.kind != kind::NVIDIA_SPDM
                && known(&answer_key(&chip.device_key, &digest, &resp.proof))
            {
                results.insert((t, r), Ok(()));
                w.stash_chip(key, chip);
                continue;
            }
            jobs.push(((t, r), key, chip, resp, digest));
        }
    }
    let checked = par_map(&jobs, |(pos, _, chip, resp, digest)| {
        let ok = check_proof(env, chip, &resp.chip_id, digest, &resp.proof, trust);
        (*pos, ok)
    });
    // A check whose worker failed is left out: the answer is checked inline.
    results.extend(checked.into_iter().flatten());
    for (_, key, chip, ..) in jobs {
        w.stash_chip(key, chip);
    }
    Ok(Proofs(results))
}

/// Proof results computed by [`preverify`], by (transaction, response) position.
#[derive(Default)]
pub(crate) struct Proofs(HashMap<(usize, usize), Result<(), String>>);

impl Proofs {
    /// The verdict on response `response` of transaction `tx`, if it was checked up front.
    pub(crate) fn get(&self, tx: usize, response: usize) -> Option<&Result<(), String>> {
        self.0.get(&(tx, response))
    }
}
