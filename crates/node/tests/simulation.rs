//! Deterministic multi-validator tests: finality with transfers, crash and restart, partitions,
//! and supply accounting — all in commonware's deterministic runtime over its simulated network.

mod common;

use common::*;
use commonware_cryptography::Signer;
use commonware_runtime::{deterministic, Clock, Runner as _};
use std::time::Duration;
use unet_types::{PrivateKey, UNC};

fn runner(seed: u64) -> deterministic::Runner {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(600))),
    )
}

#[test]
fn four_validators_finalize_100_blocks_with_transfers() {
    runner(1).start(|context| async move {
        let net = network(&context, 4, good_link()).await;
        let mut vs = Vec::new();
        for i in 0..4 {
            vs.push(start(&context, &net, i).await);
        }
        let faucet = faucet();
        let recipients: Vec<PrivateKey> =
            (0..10).map(|i| PrivateKey::from_seed(1000 + i)).collect();
        let mut nonce = 0;
        let mut sent = vec![0u128; recipients.len()];
        // Ten rounds of ten transfers, spread over the validators.
        for round in 0..10u64 {
            let mut txs = Vec::new();
            for (j, r) in recipients.iter().enumerate() {
                let amount = (round as u128 + 1) * UNC + j as u128;
                txs.push(transfer(&faucet, nonce, &r.public_key(), amount));
                sent[j] += amount;
                nonce += 1;
            }
            let via = &vs[(round % 4) as usize];
            for r in submit(via, txs).await {
                r.expect("admitted");
            }
            context.sleep(Duration::from_millis(300)).await;
        }
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, 100).await;

        // Every validator agrees on every block and on every balance.
        for h in 1..=100 {
            let d = digest_at(&vs[0], h).await.expect("block recorded");
            for v in &vs[1..] {
                assert_eq!(digest_at(v, h).await, Some(d), "height {h}");
            }
        }
        for v in &vs {
            for (j, r) in recipients.iter().enumerate() {
                assert_eq!(balance(v, &r.public_key()).await, sent[j]);
            }
            let chain = v.shared.chain.lock().await;
            assert_eq!(
                chain.account(&faucet.public_key()).await.unwrap().nonce,
                100
            );
            // Supply invariant: genesis + minted - burned == sum of balances + escrow.
            let supply = chain.supply;
            let mut sum = chain.account(&faucet.public_key()).await.unwrap().balance;
            for r in &recipients {
                sum += chain.account(&r.public_key()).await.unwrap().balance;
            }
            for p in &net.participants {
                sum += chain.account(p).await.unwrap().balance;
            }
            assert_eq!(
                supply.genesis + supply.minted - supply.burned,
                sum + supply.escrowed
            );
            assert_eq!(supply.burned, 100 * 5_000, "half of each 10_000 fee burned");
        }
    });
}

#[test]
fn determinism_same_seed_same_chain() {
    let run = |seed| {
        runner(seed).start(|context| async move {
            let net = network(&context, 4, good_link()).await;
            let mut vs = Vec::new();
            for i in 0..4 {
                vs.push(start(&context, &net, i).await);
            }
            let refs: Vec<_> = vs.iter().collect();
            // Past the first epoch boundary (reshare ceremony and the second engine included).
            wait_height(&context, &refs, EPOCH_LENGTH + 5).await;
            digest_at(&vs[0], EPOCH_LENGTH + 5).await.unwrap()
        })
    };
    assert_eq!(run(7), run(7));
}

#[test]
fn crashed_validator_restarts_and_catches_up() {
    runner(3).start(|context| async move {
        let net = network(&context, 4, good_link()).await;
        let mut vs = Vec::new();
        for i in 0..4 {
            vs.push(start(&context, &net, i).await);
        }
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, 20).await;

        // Crash validator 3 (abort all its tasks; its storage survives).
        let crashed = vs.pop().unwrap();
        let before = crashed.shared.status().finalized_height;
        crashed.task.abort();
        drop(crashed);
        context.sleep(Duration::from_millis(100)).await;

        // The other three keep finalizing, with transfers.
        let faucet = faucet();
        let bob = PrivateKey::from_seed(5).public_key();
        let txs = (0..20).map(|n| transfer(&faucet, n, &bob, UNC)).collect();
        for r in submit(&vs[0], txs).await {
            r.unwrap();
        }
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, before + 40).await;

        // Restart it from its own storage: it resumes and catches up from peers.
        tracing::info!(before, "restarting validator 3");
        let restarted = start(&context, &net, 3).await;
        tracing::info!(
            height = restarted.shared.status().finalized_height,
            "validator 3 restarted"
        );
        // It resumes from its own storage, not from genesis.
        assert!(restarted.shared.status().finalized_height >= before);
        let target = vs[0].shared.status().finalized_height + 10;
        vs.push(restarted);
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, target).await;
        for h in [before, before + 20, target] {
            let d = digest_at(&vs[0], h).await;
            assert!(d.is_some());
            assert_eq!(digest_at(&vs[3], h).await, d, "height {h}");
        }
        assert_eq!(balance(&vs[3], &bob).await, 20 * UNC);
    });
}

#[test]
fn partitioned_validator_heals() {
    runner(4).start(|context| async move {
        let net = network(&context, 4, good_link()).await;
        let mut vs = Vec::new();
        for i in 0..4 {
            vs.push(start(&context, &net, i).await);
        }
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, 10).await;

        // Cut validator 0 off from everyone.
        let p = &net.participants;
        for other in &p[1..] {
            net.oracle
                .remove_link(p[0].clone(), other.clone())
                .await
                .unwrap();
            net.oracle
                .remove_link(other.clone(), p[0].clone())
                .await
                .unwrap();
        }
        let stuck = vs[0].shared.status().finalized_height;
        let refs: Vec<_> = vs[1..].iter().collect();
        wait_height(&context, &refs, stuck + 30).await;
        // The isolated validator cannot finalize alone (needs 3 of 4).
        assert!(vs[0].shared.status().finalized_height <= stuck + 1);

        // Heal: it catches up and agrees.
        for other in &p[1..] {
            net.oracle
                .add_link(p[0].clone(), other.clone(), good_link())
                .await
                .unwrap();
            net.oracle
                .add_link(other.clone(), p[0].clone(), good_link())
                .await
                .unwrap();
        }
        let target = vs[1].shared.status().finalized_height + 10;
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, target).await;
        for h in (1..=target).step_by(7) {
            assert_eq!(
                digest_at(&vs[0], h).await,
                digest_at(&vs[1], h).await,
                "height {h}"
            );
        }
    });
}

#[test]
fn equivocating_validator_cannot_stop_or_split_honest_nodes() {
    use commonware_consensus::simplex::mocks::conflicter::{Config, Conflicter};
    use commonware_cryptography::sha256::Sha256;
    use commonware_runtime::{Quota, Supervisor};
    runner(5).start(|context| async move {
        let net = network(&context, 4, good_link()).await;
        // Validator 0 is byzantine: for every notarize vote it sees, it signs a conflicting
        // notarize (and finalize) for a random payload in the same round, and sends both.
        let byz = net.participants[0].clone();
        let control = net.oracle.control(byz);
        let quota = Quota::per_second(commonware_utils::NZU32!(10_000));
        let (sender, receiver) = control.register(0, quota).await.unwrap();
        // Consensus messages travel on per-epoch subchannels: equivocate in epoch 0.
        let (mux, mut handle) =
            commonware_p2p::utils::mux::Muxer::new(context.child("byz_mux"), sender, receiver);
        mux.start();
        let votes = handle.register(0).await.unwrap();
        Conflicter::<_, _, Sha256>::new(
            context.child("byzantine"),
            Config {
                scheme: net.epoch_zero_scheme(0),
            },
        )
        .start(votes);

        let mut vs = Vec::new();
        for i in 1..4 {
            vs.push(start(&context, &net, i).await);
        }
        let faucet = faucet();
        let bob = PrivateKey::from_seed(9).public_key();
        let txs = (0..10).map(|n| transfer(&faucet, n, &bob, UNC)).collect();
        for r in submit(&vs[0], txs).await {
            r.unwrap();
        }
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, 40).await;
        for h in 1..=40 {
            let d = digest_at(&vs[0], h).await;
            assert!(d.is_some());
            for v in &vs[1..] {
                assert_eq!(digest_at(v, h).await, d, "honest nodes diverged at {h}");
            }
        }
        for v in &vs {
            assert_eq!(balance(v, &bob).await, 10 * UNC);
        }
    });
}

#[test]
fn whole_network_restarts_from_disk_and_keeps_finalizing() {
    runner(6).start(|context| async move {
        let net = network(&context, 4, good_link()).await;
        let mut vs = Vec::new();
        for i in 0..4 {
            vs.push(start(&context, &net, i).await);
        }
        let faucet = faucet();
        let bob = PrivateKey::from_seed(8).public_key();
        let txs = (0..5).map(|n| transfer(&faucet, n, &bob, UNC)).collect();
        for r in submit(&vs[0], txs).await {
            r.unwrap();
        }
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, 20).await;
        let before: Vec<u64> = vs
            .iter()
            .map(|v| v.shared.status().finalized_height)
            .collect();
        let d20 = digest_at(&vs[0], 20).await;

        // Every validator crashes at once.
        for v in vs.drain(..) {
            v.task.abort();
        }
        context.sleep(Duration::from_millis(500)).await;

        // All restart from their own storage; the chain resumes on top of the finalized tip.
        for i in 0..4 {
            vs.push(start(&context, &net, i).await);
        }
        for (v, b) in vs.iter().zip(&before) {
            assert!(v.shared.status().finalized_height >= *b);
        }
        let refs: Vec<_> = vs.iter().collect();
        let resume = before.iter().max().unwrap() + 20;
        wait_height(&context, &refs, resume).await;
        for v in &vs {
            assert_eq!(digest_at(v, 20).await, d20);
            assert_eq!(balance(v, &bob).await, 5 * UNC);
        }
        let d = digest_at(&vs[0], resume).await;
        for v in &vs[1..] {
            assert_eq!(digest_at(v, resume).await, d);
        }
    });
}
