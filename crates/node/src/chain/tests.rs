//! Block building, finalization and the unfinalized branches of the chain.

use super::*;
use commonware_cryptography::Signer;
use commonware_runtime::{deterministic, Runner as _};
use unet_types::{
    genesis::{Allocation, Validator},
    keys::chip_key,
    Params, Payload, PrivateKey, Transaction, UNC,
};

const CHAIN_ID: u64 = 5;

pub(super) fn genesis(funded: &[&PrivateKey]) -> Genesis {
    Genesis {
        chain_id: CHAIN_ID,
        chain_name: "build".into(),
        genesis_time_ms: 0,
        params: Params {
            min_fee: 1,
            ..Params::default()
        },
        consensus_polynomial: String::new(),
        validators: (0..4)
            .map(|i| Validator {
                name: format!("v{i}"),
                public_key: PrivateKey::from_seed(100 + i).public_key(),
                p2p_address: format!("127.0.0.1:{}", 4000 + i),
            })
            .collect(),
        allocations: funded
            .iter()
            .map(|k| Allocation {
                address: k.public_key(),
                amount: 100 * UNC,
                label: String::new(),
            })
            .collect(),
        poci: Default::default(),
        treasury: None,
    }
}

fn tx(from: &PrivateKey, nonce: u64, payload: Payload) -> SignedTx {
    Transaction {
        chain_id: CHAIN_ID,
        sender: from.public_key(),
        nonce,
        fee: 1,
        payload,
    }
    .sign(from)
}

/// A transaction whose execution fails for an internal reason (here: the chip entry it
/// reads is corrupt) must not stop block building: it is dropped and the rest is built.
#[test]
fn a_transaction_that_fails_execution_is_dropped_not_fatal() {
    deterministic::Runner::default().start(|ctx| async move {
        let (a, b, c) = (
            PrivateKey::from_seed(1),
            PrivateKey::from_seed(2),
            PrivateKey::from_seed(3),
        );
        let others: Vec<PrivateKey> = (10..30).map(PrivateKey::from_seed).collect();
        let mut funded = vec![&a, &c];
        funded.extend(others.iter());
        let mut chain = Chain::open(ctx, "build", genesis(&funded)).await.unwrap();
        let chip = [7u8; 32];
        let mut batch = chain.db.new_batch();
        batch.put(chip_key(&chip), vec![0xff, 0x00, 0x13]).unwrap();
        let m = batch.merkleize(1).await.unwrap();
        chain.db.apply(&m).await.unwrap();

        let transfer = |from: &PrivateKey, nonce| {
            tx(
                from,
                nonce,
                Payload::Transfer {
                    to: b.public_key(),
                    amount: UNC,
                },
            )
        };
        let poison = tx(
            &a,
            1,
            Payload::TransferChip {
                chip_id: chip,
                to: b.public_key(),
            },
        );
        let candidates = vec![transfer(&a, 0), poison.clone(), transfer(&c, 0)];
        let params = chain.genesis.params.clone();
        let env = BlockEnv {
            chain_id: CHAIN_ID,
            params: &params,
            proposer: PrivateKey::from_seed(100).public_key(),
            height: 2,
            parent: chain.applied_digest(),
            timestamp_ms: 1,
            beacon: Digest::from([1u8; 32]),
            treasury: None,
        };
        let parent = chain.applied_digest();
        // Executing the candidates as they are fails the whole block...
        assert!(matches!(
            chain
                .execute_on(&parent, &env, &candidates, Mode::Propose)
                .await,
            Err(ExecError::Invalid(_))
        ));
        // ...building drops exactly the poisonous transaction and keeps the others.
        let built = chain
            .build_on(&parent, &env, candidates.clone())
            .await
            .unwrap();
        assert_eq!(built.dropped.len(), 1);
        assert_eq!(built.dropped[0].0, poison);
        assert_eq!(
            built.txs,
            vec![candidates[0].clone(), candidates[2].clone()]
        );
        // The block verifies as a peer would check it.
        let (verified, state) = chain
            .execute_on(&parent, &env, &built.txs, Mode::Verify)
            .await
            .unwrap();
        assert_eq!(state.root(), built.state.root());
        assert_eq!(verified.writes, built.outcome.writes);

        // Many poisonous transactions cost a bounded number of drops, and the block still
        // carries what executes.
        let many: Vec<SignedTx> = std::iter::once(transfer(&c, 0))
            .chain(others.iter().map(|k| {
                tx(
                    k,
                    0,
                    Payload::TransferChip {
                        chip_id: chip,
                        to: b.public_key(),
                    },
                )
            }))
            .collect();
        let built = chain.build_on(&parent, &env, many.clone()).await.unwrap();
        assert_eq!(built.dropped.len(), MAX_DROPPED_PER_PROPOSAL);
        assert_eq!(built.txs, vec![many[0].clone()]);
    });
}

/// Proposals on an unfinalized parent learn each sender's nonce after the unfinalized
/// blocks (so the mempool does not hand them the same transactions again), and only from
/// the branch they build on.
#[test]
fn nonces_after_follows_the_unfinalized_branch() {
    use commonware_consensus::types::{Epoch, Height, Round, View};
    deterministic::Runner::default().start(|ctx| async move {
        let (a, c) = (PrivateKey::from_seed(1), PrivateKey::from_seed(3));
        let mut chain = Chain::open(ctx, "nonces", genesis(&[&a, &c]))
            .await
            .unwrap();
        let pay = |from: &PrivateKey, nonce| {
            tx(
                from,
                nonce,
                Payload::Transfer {
                    to: PrivateKey::from_seed(2).public_key(),
                    amount: UNC,
                },
            )
        };
        let params = chain.genesis.params.clone();
        let leader = PrivateKey::from_seed(100).public_key();
        // Builds, on `parent`, the block carrying `txs` and caches it as consensus does.
        let build = async |chain: &mut Chain<_>, parent: Digest, height: u64, view, txs| {
            let block = Block::new(
                unet_types::Context {
                    round: Round::new(Epoch::zero(), View::new(view)),
                    leader: leader.clone(),
                    parent: (View::zero(), parent),
                },
                parent,
                Height::new(height),
                height,
                None,
                Digest::from([0u8; 32]),
                txs,
            );
            let env = chain.env(&block, &params);
            let built = chain
                .build_on(&parent, &env, block.txs.clone())
                .await
                .unwrap();
            assert_eq!(built.txs, block.txs);
            let digest = block.digest();
            chain.remember(digest, &block, built.state, built.outcome);
            digest
        };
        let root = chain.applied_digest();
        assert!(chain.nonces_after(&root).is_empty());
        let b1 = build(&mut chain, root, 1, 1, vec![pay(&a, 0), pay(&c, 0)]).await;
        let b2 = build(&mut chain, b1, 2, 2, vec![pay(&a, 1), pay(&a, 2)]).await;
        // A sibling of b2 on b1 (another view's proposal).
        let b2x = build(&mut chain, b1, 2, 3, vec![pay(&c, 1)]).await;
        let after = |d| {
            let mut v: Vec<_> = chain.nonces_after(&d).into_iter().collect();
            v.sort_by_key(|(s, _)| s.clone());
            v
        };
        let mut want = vec![(a.public_key(), 3), (c.public_key(), 1)];
        want.sort_by_key(|(s, _)| s.clone());
        assert_eq!(after(b2), want);
        let mut want = vec![(a.public_key(), 1), (c.public_key(), 2)];
        want.sort_by_key(|(s, _)| s.clone());
        assert_eq!(after(b2x), want);
        // An unknown tip contributes nothing.
        assert!(chain.nonces_after(&Digest::from([9u8; 32])).is_empty());
    });
}

/// A finalized block this node never executed is executed at finalization, skipping the
/// signature checks of the transactions it admitted (`known_valid`, the mempool's pending
/// hashes). The hash a transaction is known by covers its signature: a block carrying an
/// admitted transaction's body under another signature is checked, and refused.
#[test]
fn a_finalized_block_skips_only_the_signatures_admitted_under_the_same_hash() {
    use commonware_consensus::types::{Epoch, Height, Round, View};
    deterministic::Runner::default().start(|ctx| async move {
        let (a, c, mallory) = (
            PrivateKey::from_seed(1),
            PrivateKey::from_seed(3),
            PrivateKey::from_seed(666),
        );
        let mut chain = Chain::open(ctx, "finalize", genesis(&[&a, &c]))
            .await
            .unwrap();
        let to = PrivateKey::from_seed(2).public_key();
        let body = |from: &PrivateKey| Transaction {
            chain_id: CHAIN_ID,
            sender: from.public_key(),
            nonce: 0,
            fee: 1,
            payload: Payload::Transfer {
                to: to.clone(),
                amount: UNC,
            },
        };
        let from_a = body(&a).sign(&a);
        let from_c = body(&c).sign(&c);
        // c's transfer under mallory's signature: same body, another hash.
        let forged = SignedTx::new(from_c.tx.clone(), body(&c).sign(&mallory).signature);
        assert_ne!(forged.hash(), from_c.hash());
        let admitted = [from_a.hash(), from_c.hash()];
        let known = |h: &Digest| admitted.contains(h);

        let params = chain.genesis.params.clone();
        let leader = PrivateKey::from_seed(100).public_key();
        let parent = chain.applied_digest();
        let block = |root, txs| {
            Block::new(
                unet_types::Context {
                    round: Round::new(Epoch::zero(), View::new(1)),
                    leader: leader.clone(),
                    parent: (View::zero(), parent),
                },
                parent,
                Height::new(1),
                1,
                None,
                root,
                txs,
            )
        };
        // Each block carries the root its execution gives (execution does not look at
        // signatures, so both have the same root): only the signature check tells them apart.
        let draft = block(Digest::from([0u8; 32]), Vec::new());
        let env = chain.env(&draft, &params);
        let honest = vec![from_a.clone(), from_c.clone()];
        let root = chain.build_on(&parent, &env, honest.clone()).await.unwrap();
        assert_eq!(root.txs, honest);
        let root = root.state.root();
        let bad = block(root, vec![from_a.clone(), forged]);
        match chain.finalize(&bad, known).await {
            Err(ExecError::Invalid(reason)) => {
                assert!(reason.contains("transaction 1"), "{reason}")
            }
            other => panic!("a forged signature was applied: {other:?}"),
        }
        assert_eq!(chain.applied_height(), 0);
        let good = block(root, honest);
        let receipts = chain.finalize(&good, known).await.unwrap().unwrap();
        assert_eq!(receipts.len(), 2);
        assert_eq!(chain.applied_height(), 1);
    });
}
