//! Stateless transaction checks for a whole block, with batched signature verification.

use commonware_codec::{Encode, EncodeSize};
use commonware_cryptography::{ed25519, BatchEntry, BatchVerifier};
use commonware_parallel::Sequential;
use rand::SeedableRng;
use unet_types::{tx::MAX_TX_BYTES, Amount, Digest, SignedTx, TxError, TX_NAMESPACE};

/// Checks every transaction's chain id, size, fee floor and signature.
///
/// `known_valid` lets the caller skip signatures it has already verified (the mempool keeps
/// the hashes of transactions it admitted). Signatures that remain are batch-verified; if the
/// batch fails, each is checked alone to name the first bad transaction.
///
/// The batch verifier's randomness only speeds verification up: the verdict is the same for
/// every seed, so this stays deterministic across validators.
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
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x554e_4554);
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
