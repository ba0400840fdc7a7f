//! Answers checked once, at mempool admission: a validator that verified an answer when it
//! arrived skips that signature check in the block (`execute_with`), and a leader cannot use
//! that to slip an unchecked answer past it. The remembered key is derived by the verifier
//! from its own pre-state and the proof bytes in the block, so another proof, or the same
//! proof against another challenge, is checked in full.

mod common;

use common::*;
use commonware_cryptography::Signer;
use std::sync::Mutex;
use unet_state::{
    admit_answer, answer_key, execute, execute_with, AdmitError, BlockEnv, Mode, TxStatus,
};
use unet_types::{
    liveness::{response_digest, LivenessResponse},
    Digest, Payload, PrivateKey, SignedTx,
};

/// A chain with one registered chip of `owner`, run until the chip waits on a challenge.
fn challenged_chip(owner: &PrivateKey) -> (Net, TestChip) {
    let mut net = Net::with(&[owner], |p| p.challenges_per_epoch = 100, 0);
    let chip = make_chip(7, "SMALL", owner.clone());
    let reg = net.register(&chip);
    assert_eq!(net.block(&[reg]), vec![TxStatus::Ok]);
    while net.chip(&chip.id()).unwrap().live.pending.is_none() {
        net.block(&[]);
        assert!(net.height < 20, "chip never challenged");
    }
    (net, chip)
}

/// The environment of the next block, as `Net::block` builds it.
fn next_env(net: &Net) -> BlockEnv<'_> {
    let height = net.height + 1;
    BlockEnv {
        chain_id: CHAIN,
        params: &net.params,
        proposer: PrivateKey::from_seed(100).public_key(),
        height,
        parent: *net.hashes.last().unwrap(),
        timestamp_ms: NOW_MS + (height - net.start) * 1000,
        beacon: unet_state::testing::beacon(height),
        treasury: Some(net.treasury.clone()),
    }
}

fn skipped_codes(out: &unet_state::Outcome) -> Vec<String> {
    out.receipts
        .iter()
        .flat_map(|r| r.skipped.iter().map(|s| s.code.clone()))
        .collect()
}

/// The honest path: the answer admitted at the mempool is the one in the block; execution
/// asks for exactly its key, skips the check, and computes what a full check computes.
#[test]
fn an_answer_admitted_once_is_not_checked_again_and_the_block_is_the_same() {
    let owner = PrivateKey::from_seed(1);
    let (mut net, chip) = challenged_chip(&owner);
    let record = net.chip(&chip.id()).unwrap();
    let pending = record.live.pending.unwrap();
    let answer = net.response(&chip, pending.height);
    let key = admit_answer(CHAIN, &record, &answer).expect("a valid answer is admitted");
    let digest = response_digest(CHAIN, pending.height, &pending.beacon, &chip.id());
    assert_eq!(key, answer_key(&record.device_key, &digest, &answer.proof));

    let tx = net.tx(
        &owner,
        Payload::Liveness {
            responses: vec![answer],
        },
    );
    let txs = [tx];
    let env = next_env(&net);
    let pre = net.state.load(&env, &txs);
    let asked = Mutex::new(Vec::new());
    let known = |k: &Digest| {
        asked.lock().unwrap().push(*k);
        *k == key
    };
    let cached = execute_with(&env, &pre, &txs, Mode::Verify, &known).unwrap();
    let full = execute(&env, &pre, &txs, Mode::Verify).unwrap();
    assert_eq!(*asked.lock().unwrap(), vec![key]);
    assert_eq!(cached.writes, full.writes);
    assert_eq!(cached.receipts, full.receipts);
    assert!(skipped_codes(&cached).is_empty());
}

/// A leader's block carries the chip's answer with another proof than the one this validator
/// admitted. The key of the block's answer is not held, so the proof is checked and refused.
#[test]
fn a_leader_swapping_the_proof_of_an_admitted_answer_is_refused() {
    let owner = PrivateKey::from_seed(1);
    let (mut net, chip) = challenged_chip(&owner);
    let record = net.chip(&chip.id()).unwrap();
    let height = record.live.pending.unwrap().height;
    let honest = net.response(&chip, height);
    let key = admit_answer(CHAIN, &record, &honest).unwrap();
    let mut forged = honest.clone();
    forged.proof[40] ^= 1;

    let tx = net.tx(
        &owner,
        Payload::Liveness {
            responses: vec![forged],
        },
    );
    let txs: Vec<SignedTx> = vec![tx];
    let env = next_env(&net);
    let pre = net.state.load(&env, &txs);
    let out = execute_with(&env, &pre, &txs, Mode::Verify, &|k: &Digest| *k == key).unwrap();
    assert_eq!(skipped_codes(&out), vec!["liveness_bad_proof"]);
    assert!(
        matches!(&out.receipts[0].status, TxStatus::Failed { code, .. } if code == "liveness_bad_proof")
    );
}

/// A proof admitted for one challenge is replayed for the chip's next challenge: the
/// verifier derives the digest from the challenge pending in its own pre-state, so the key
/// differs and the stale proof is checked, and refused.
#[test]
fn an_admitted_proof_replayed_for_a_later_challenge_is_refused() {
    let owner = PrivateKey::from_seed(1);
    let (mut net, chip) = challenged_chip(&owner);
    let record = net.chip(&chip.id()).unwrap();
    let first = record.live.pending.unwrap().height;
    let old = net.response(&chip, first);
    let old_key = admit_answer(CHAIN, &record, &old).unwrap();
    // Answer the first challenge, then wait for the next one.
    let tx = net.tx(
        &owner,
        Payload::Liveness {
            responses: vec![old.clone()],
        },
    );
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    while net
        .chip(&chip.id())
        .unwrap()
        .live
        .pending
        .is_none_or(|p| p.height == first)
    {
        net.block(&[]);
        assert!(net.height < 60, "chip never challenged again");
    }
    let second = net.chip(&chip.id()).unwrap().live.pending.unwrap().height;
    let replay = LivenessResponse {
        challenge_height: second,
        ..old
    };
    let tx = net.tx(
        &owner,
        Payload::Liveness {
            responses: vec![replay],
        },
    );
    let txs = [tx];
    let env = next_env(&net);
    let pre = net.state.load(&env, &txs);
    let out = execute_with(&env, &pre, &txs, Mode::Verify, &|k: &Digest| *k == old_key).unwrap();
    assert_eq!(skipped_codes(&out), vec!["liveness_bad_proof"]);
}

/// Admission refuses what it cannot vouch for: a bad proof, and an answer to a challenge the
/// chip is not waiting on.
#[test]
fn admission_refuses_bad_proofs_and_answers_to_no_pending_challenge() {
    let owner = PrivateKey::from_seed(1);
    let (net, chip) = challenged_chip(&owner);
    let record = net.chip(&chip.id()).unwrap();
    let height = record.live.pending.unwrap().height;
    let mut bad = net.response(&chip, height);
    bad.proof[10] ^= 1;
    assert!(matches!(
        admit_answer(CHAIN, &record, &bad),
        Err(AdmitError::BadProof(_))
    ));
    let early = net.response(&chip, height + 1);
    assert_eq!(
        admit_answer(CHAIN, &record, &early),
        Err(AdmitError::NotChallenged(height + 1))
    );
}
