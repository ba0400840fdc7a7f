//! The batch-verification forgery (issue: "anyone can forge a transaction from any account").
//!
//! Batch verification checks one random linear combination of all signatures' equations. If
//! the randomizers are predictable, an attacker can pair a forged transfer from a victim
//! (whose equation is off by `z0*k0*A_victim`) with a transaction of its own whose `R` is
//! chosen to cancel exactly that error: the pair passes the batch although neither signature
//! is valid alone. This test builds that pair against the randomizers a fixed seed would give
//! (showing the attack is real) and asserts the stateless checks refuse it.

use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::{
    ed25519,
    transcript::{Summary, Transcript, Version},
    BatchEntry, BatchVerifier, Signer,
};
use commonware_math::algebra::Random;
use commonware_parallel::Sequential;
use curve25519_dalek::{
    constants::ED25519_BASEPOINT_POINT as B,
    edwards::{CompressedEdwardsY, EdwardsPoint},
    scalar::Scalar,
};
use rand::{Rng, SeedableRng};
use sha2::{Digest as _, Sha512};
use unet_state::check_stateless_batch;
use unet_types::{tx::Transaction, Payload, SignedTx, TxError, TX_NAMESPACE};

const CHAIN_ID: u64 = 7;
const MIN_FEE: u128 = 1_000;
/// The constant the batch verifier used to be seeded with.
const PUBLIC_SEED: u64 = 0x554e_4554;

/// The randomizers commonware's ed25519 batch verifier draws, sequentially, from `rng`.
fn randomizers(rng: &mut impl rand::CryptoRng, n: usize) -> Vec<Scalar> {
    let seed = Summary::random(&mut *rng);
    let mut transcript = Transcript::resume(seed, Version::V1);
    transcript.commit(0u64.encode());
    let mut noise = transcript.noise(b"batch_verify");
    (0..n)
        .map(|_| {
            let mut b = [0u8; 16];
            noise.fill_bytes(&mut b);
            Scalar::from(u128::from_le_bytes(b))
        })
        .collect()
}

/// ed25519's challenge `k = H(R || A || namespaced message)`, as the verifier computes it.
fn challenge(r: &EdwardsPoint, a: &[u8; 32], message: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r.compress().as_bytes());
    h.update(a);
    h.update([TX_NAMESPACE.len() as u8]); // varint length prefix (< 128)
    h.update(TX_NAMESPACE);
    h.update(message);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

fn random_scalar(rng: &mut impl Rng) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn signature(r: &EdwardsPoint, s: &Scalar) -> ed25519::Signature {
    let mut raw = Vec::with_capacity(64);
    raw.extend_from_slice(r.compress().as_bytes());
    raw.extend_from_slice(s.as_bytes());
    ed25519::Signature::decode(raw).expect("64 bytes")
}

/// A forged transfer out of `victim` plus a transaction of the attacker's own, built to
/// pass a batch check whose randomizers are `z`.
fn forged_pair(victim: &ed25519::PublicKey, z: &[Scalar]) -> (SignedTx, SignedTx) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    // The attacker's own key, as a raw scalar.
    let a1 = random_scalar(&mut rng);
    let a1_point = a1 * B;
    let attacker =
        ed25519::PublicKey::decode(a1_point.compress().as_bytes().to_vec()).expect("valid point");
    let victim_bytes: [u8; 32] = victim.encode().as_ref().try_into().unwrap();
    let a0 = CompressedEdwardsY(victim_bytes).decompress().expect("key");

    // The victim "signs" a transfer of everything to the attacker: R0 = r0*B, s0 = r0.
    let stolen = Transaction {
        chain_id: CHAIN_ID,
        sender: victim.clone(),
        nonce: 0,
        fee: MIN_FEE,
        payload: Payload::Transfer {
            to: attacker.clone(),
            amount: 1_000_000_000,
        },
    };
    let r0 = random_scalar(&mut rng);
    let big_r0 = r0 * B;
    let k0 = challenge(&big_r0, &victim_bytes, &stolen.encode());
    let forged = SignedTx::new(stolen, signature(&big_r0, &r0));

    // The attacker's transaction cancels the victim's error z0*k0*A0.
    let own = Transaction {
        chain_id: CHAIN_ID,
        sender: attacker.clone(),
        nonce: 0,
        fee: MIN_FEE,
        payload: Payload::Transfer {
            to: attacker.clone(),
            amount: 1,
        },
    };
    let r1 = random_scalar(&mut rng);
    let big_r1 = r1 * B - (z[0] * k0 * z[1].invert()) * a0;
    let k1 = challenge(&big_r1, a1_point.compress().as_bytes(), &own.encode());
    let s1 = r1 + k1 * a1;
    let helper = SignedTx::new(own, signature(&big_r1, &s1));
    (forged, helper)
}

fn batch_passes(txs: &[SignedTx], rng: &mut impl rand::CryptoRng) -> bool {
    let messages: Vec<_> = txs.iter().map(|t| t.tx.encode()).collect();
    ed25519::PublicKey::verify_batch(
        rng,
        &messages,
        |i, m| BatchEntry {
            public_key: &txs[i].tx.sender,
            namespace: TX_NAMESPACE,
            message: m.as_ref(),
            signature: &txs[i].signature,
        },
        &Sequential,
    )
}

#[test]
fn forged_transfer_paired_with_a_cancelling_signature_is_refused() {
    let victim = ed25519::PrivateKey::from_seed(1).public_key();
    let z = randomizers(&mut rand::rngs::StdRng::seed_from_u64(PUBLIC_SEED), 2);
    let (forged, helper) = forged_pair(&victim, &z);

    // Neither signature is valid on its own...
    assert_eq!(forged.check_signature(), Err(TxError::BadSignature));
    assert_eq!(helper.check_signature(), Err(TxError::BadSignature));
    // ...yet together they pass a batch check whose randomizers are known in advance.
    let pair = vec![forged.clone(), helper.clone()];
    assert!(batch_passes(
        &pair,
        &mut rand::rngs::StdRng::seed_from_u64(PUBLIC_SEED)
    ));

    // The chain's stateless checks (mempool admission, block verification) refuse the pair,
    // naming the forged transfer, every time.
    for _ in 0..32 {
        assert_eq!(
            check_stateless_batch(&pair, CHAIN_ID, MIN_FEE, |_| false),
            Err((0, TxError::BadSignature))
        );
    }
    // In either order.
    let swapped = vec![helper, forged];
    assert!(check_stateless_batch(&swapped, CHAIN_ID, MIN_FEE, |_| false).is_err());
}

#[test]
fn valid_batches_still_pass() {
    let txs: Vec<SignedTx> = (0..64u64)
        .map(|i| {
            let key = ed25519::PrivateKey::from_seed(i);
            Transaction {
                chain_id: CHAIN_ID,
                sender: key.public_key(),
                nonce: i,
                fee: MIN_FEE,
                payload: Payload::Transfer {
                    to: ed25519::PrivateKey::from_seed(i + 1).public_key(),
                    amount: 5,
                },
            }
            .sign(&key)
        })
        .collect();
    for _ in 0..8 {
        assert_eq!(
            check_stateless_batch(&txs, CHAIN_ID, MIN_FEE, |_| false),
            Ok(())
        );
    }
}
