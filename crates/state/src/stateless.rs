//! Stateless transaction checks for a whole block, with batched signature verification.

use commonware_codec::{Encode, EncodeSize};
use commonware_cryptography::{ed25519, BatchEntry, BatchVerifier, Hasher, Sha256};
use commonware_parallel::Sequential;
use rand::{Rng, SeedableRng};
use unet_types::{tx::MAX_TX_BYTES, Amount, Digest, SignedTx, TxError, TX_NAMESPACE};

/// Checks every transaction's chain id, size, fee floor and signature.
///
/// `known_valid` lets the caller skip signatures it has already verified (the mempool keeps
/// the hashes of transactions it admitted). Signatures that remain are batch-verified; if the
/// batch fails, each is checked alone to name the first bad transaction.
///
/// # The batch randomizers are secret
///
/// A batch check tests one random linear combination `sum z_i * (s_i*B - R_i - k_i*A_i) = 0`.
/// If the `z_i` can be predicted, two signatures whose errors cancel (a forged transfer from a
/// victim plus a transaction of the attacker's own, built from the victim's error) pass the
/// batch although neither is valid alone. So the randomizers come from a generator seeded
/// with fresh operating-system randomness *and* a hash of the whole batch (every
/// transaction's hash binds its sender, message and signature): an attacker can neither
/// predict the seed nor choose a signature after seeing it. A valid batch passes for every
/// seed and an invalid one fails except with probability about 2^-128, which is what keeps the
/// verdict the same on every validator.
pub fn check_stateless_batch(
    txs: &[SignedTx],
    chain_id: u64,
    min_fee: Amount,
    known_valid: impl Fn(&Digest) -> bool,
) -> Result<(), (usize, TxError)> {
    let mut unverified = Vec::new();
    for (i, stx) in txs.iter().enumerate() {
        if stx.tx.chain_id != chain_id {
            let got = stx.tx.chain_id;
            return Err((
                i,
                TxError::WrongChain {
                    expected: chain_id,
                    got,
                },
            ));
        }
        let size = stx.encode_size();
        if size > MAX_TX_BYTES {
            return Err((i, TxError::TooLarge(size)));
        }
        if stx.tx.fee < min_fee {
            return Err((
                i,
                TxError::FeeTooLow {
                    min: min_fee,
                    got: stx.tx.fee,
                },
            ));
        }
        if matches!(
            stx.tx.payload,
            unet_types::Payload::Transfer { amount: 0, .. }
        ) {
            return Err((i, TxError::ZeroAmount));
        }
        if !known_valid(&stx.hash()) {
            unverified.push((i, stx.tx.encode()));
        }
    }
    if unverified.is_empty() {
        return Ok(());
    }
    let mut rng = batch_rng(txs, &unverified);
    let ok = ed25519::PublicKey::verify_batch(
        &mut rng,
        &unverified,
        |_, (i, msg)| BatchEntry {
            public_key: &txs[*i].tx.sender,
            namespace: TX_NAMESPACE,
            message: msg.as_ref(),
            signature: &txs[*i].signature,
        },
        &Sequential,
    );
    if ok {
        return Ok(());
    }
    for (i, _) in &unverified {
        txs[*i].check_signature().map_err(|e| (*i, e))?;
    }
    Ok(())
}

/// The generator for one batch's randomizers: SHA-256 over a domain tag, the hash of every
/// transaction in the batch (sender, message and signature) and 32 bytes of fresh OS
/// randomness. See [`check_stateless_batch`] for why it must be unpredictable.
fn batch_rng(txs: &[SignedTx], unverified: &[(usize, impl AsRef<[u8]>)]) -> rand::rngs::StdRng {
    let mut hasher = Sha256::default();
    hasher.update(b"UNET_TX_BATCH_RANDOMIZERS_V1");
    for (i, _) in unverified {
        hasher.update(txs[*i].hash().as_ref());
    }
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    hasher.update(&fresh);
    let (_, digest) = hasher.finalize();
    let mut seed = [0u8; 32];
    seed.copy_from_slice(digest.as_ref());
    rand::rngs::StdRng::from_seed(seed)
}
