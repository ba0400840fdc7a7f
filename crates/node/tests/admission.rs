//! One admission worker for every source: API calls, followers' forwarded transactions and
//! peers' gossip join one queue, and what waits there is verified as one batch. Performed on a
//! validator in the deterministic runtime.

mod common;

use common::*;
use commonware_cryptography::Signer;
use commonware_runtime::{Runner as _, Spawner, Supervisor};
use unet_types::{PrivateKey, SignedTx, TxError};

const CALLS: usize = 8;
const PER_CALL: usize = 10;

/// Eight API-sized calls submitted at once are verified in fewer batches than calls, and a
/// call holding a forged signature neither sinks the others nor loses its own valid
/// transactions: the forgery alone is refused, as `BadSignature`.
#[test]
fn concurrent_submissions_share_a_batch_and_a_forgery_stays_in_its_call() {
    runner_in_2026(11, 600).start(|context| async move {
        let net = network(&context, 4, good_link()).await;
        let v = start(&context, &net, 0).await;
        let faucet = faucet();
        let to = PrivateKey::from_seed(42).public_key();
        let mallory = PrivateKey::from_seed(666);
        let forged_at = (3, 4);
        let calls: Vec<Vec<SignedTx>> = (0..CALLS)
            .map(|c| {
                (0..PER_CALL)
                    .map(|i| {
                        let nonce = (c * PER_CALL + i) as u64;
                        if (c, i) == forged_at {
                            // The faucet's transfer, signed by mallory.
                            transfer(&faucet, nonce, &to, 1).tx.sign(&mallory)
                        } else {
                            transfer(&faucet, nonce, &to, 1)
                        }
                    })
                    .collect()
            })
            .collect();
        let before = v.gossip.admission_batches();
        let handles: Vec<_> = calls
            .into_iter()
            .map(|txs| {
                let (gossip, shared) = (v.gossip.clone(), v.shared.clone());
                context
                    .child("call")
                    .spawn(move |_| async move { gossip.admit(&shared, txs).await })
            })
            .collect();
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await.expect("call"));
        }
        let batches = v.gossip.admission_batches() - before;
        assert!(
            (1..CALLS as u64).contains(&batches),
            "{CALLS} concurrent calls took {batches} batches"
        );
        for (c, call) in results.iter().enumerate() {
            assert_eq!(call.len(), PER_CALL);
            for (i, r) in call.iter().enumerate() {
                if (c, i) == forged_at {
                    assert!(matches!(r, Err(TxError::BadSignature)), "forgery: {r:?}");
                } else {
                    assert!(r.is_ok(), "call {c} tx {i}: {r:?}");
                }
            }
        }
    });
}
