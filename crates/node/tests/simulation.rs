//! Deterministic multi-validator tests: finality with transfers, crash and restart, partitions,
//! and supply accounting — all in commonware's deterministic runtime over its simulated network.

mod common;

use common::*;
use commonware_cryptography::Signer;
use commonware_runtime::{deterministic, Clock, Runner as _};
use std::time::Duration;
use unet_node::shared::ConsensusRole;
use unet_types::{PrivateKey, UNC};

fn runner(seed: u64) -> deterministic::Runner {
    common::runner(seed, 600)
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
            assert_eq!(account(v, &faucet.public_key()).await.nonce, 100);
            // Supply invariant: genesis + minted - burned == sum of balances + escrow.
            let mut accounts = vec![faucet.public_key()];
            accounts.extend(recipients.iter().map(|r| r.public_key()));
            accounts.extend(net.participants.iter().cloned());
            let (supply, sum) = supply_and_balances(v, accounts).await;
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

/// Five nodes, four genesis validators; node 4 starts as a follower. Its operator registers a
/// chip (online compute) and then node 4 as a validator with real transactions during epoch 0.
/// Committee weight is the account's compute floor over the epoch before the choice, so the
/// chip counts from epoch 1 on: the state picks node 4 into the committee of epoch 5 (chosen at
/// height 60 from the floors over epoch 1), glue reshares the threshold key to it during epoch
/// 4 and it signs from epoch 5 on; the genesis validator it
/// displaced stops being a participant. The chain finalizes straight across every boundary and
/// all five nodes agree on every block.
#[test]
fn committee_changes_at_epoch_boundary_and_the_new_member_signs() {
    use commonware_cryptography::Digestible;
    use unet_types::epoch::{committee_key, Committee};
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    // Chip certificates are checked at the block timestamp: start the clock in 2026.
    runner_in_2026(12, 1200).start(|context| async move {
        let net = network_with(&context, 5, 4, good_link(), |g| {
            // Nobody answers liveness challenges in this test: keep the chip online.
            g.params.challenges_per_epoch = 0;
        })
        .await;
        let mut vs = Vec::new();
        for i in 0..5 {
            vs.push(start(&context, &net, i).await);
        }
        // Node 4 cannot reach anyone until a committee names it (peers accept only the
        // peers of their recent epochs): wait on the genesis validators.
        let validators: Vec<_> = vs[..4].iter().collect();
        wait_height(&context, &validators, 3).await;

        // The operator (the faucet account) registers a chip, then node 4 as its validator.
        register_validator(&context, &net, &vs, 4).await;
        let new_node = net.participants[4].clone();
        let registered_at = vs[0].shared.status().finalized_height;
        assert!(
            registered_at < EPOCH_LENGTH,
            "registration must land in epoch 0 (at {registered_at})"
        );

        // Committee 4 (chosen at height 30, floors over epoch 0, which the chip joined
        // halfway) is still the genesis one; committee 5 (chosen at height 60) holds node 4
        // and drops one genesis validator.
        wait_height(&context, &validators, 2 * EPOCH_LENGTH + 1).await;
        let genesis_committee: Committee =
            entry(&vs[0], committee_key(4)).await.expect("committee 4");
        assert!(!genesis_committee
            .members
            .iter()
            .any(|m| m.node_key == new_node));
        let committee: Committee = entry(&vs[0], committee_key(5)).await.expect("committee 5");
        tracing::info!(?committee, "committee of epoch 5");
        let members: Vec<_> = committee
            .members
            .iter()
            .map(|m| m.node_key.clone())
            .collect();
        assert_eq!(members.len(), 4);
        assert!(members.contains(&new_node));
        let removed: Vec<_> = net.participants[..4]
            .iter()
            .filter(|p| !members.contains(p))
            .cloned()
            .collect();
        assert_eq!(removed.len(), 1, "one genesis validator leaves");
        let removed = removed[0].clone();
        let removed_index = net.participants.iter().position(|p| *p == removed).unwrap();

        // Committee 5 receives shares during epoch 4 and runs consensus from epoch 5.
        let end = 7 * EPOCH_LENGTH;
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, end).await;
        let mut led_by_new = 0;
        for h in 1..=end {
            let block = vs[0].shared.block_at(h).await.expect("block");
            for v in &vs[1..] {
                assert_eq!(
                    v.shared.block_at(h).await.map(|b| b.digest()),
                    Some(block.digest()),
                    "nodes disagree at height {h}"
                );
            }
            let epoch = h / EPOCH_LENGTH;
            if epoch >= 5 {
                assert_eq!(block.context.round.epoch().get(), epoch);
                assert_ne!(block.proposer(), &removed, "removed member led block {h}");
                if block.proposer() == &new_node {
                    led_by_new += 1;
                }
            }
            if epoch < 5 {
                assert_ne!(
                    block.proposer(),
                    &new_node,
                    "node 4 led block {h} too early"
                );
            }
        }
        assert!(led_by_new > 0, "the new member never led a block");
        // Roles as each node registered them for epoch 5 (and after).
        assert_eq!(vs[4].shared.role(5), Some(ConsensusRole::Signer));
        assert_eq!(
            vs[removed_index].shared.role(5),
            Some(ConsensusRole::Verifier)
        );
        // The chain kept its beacon: every block past height 1 carries a verified seed.
        for h in 2..=end {
            assert!(vs[4].shared.block_at(h).await.unwrap().seed.is_some());
        }
    });
}
