//! Full nodes in the deterministic runtime: four validators serve followers over the follow
//! protocol (authenticated streams on the runtime's simulated sockets); full nodes follow
//! them across epoch changes and reshares, verify every certificate under the genesis group
//! key, execute every block, forward transactions, and drop an upstream that sends a forged
//! certificate or a tampered block.

mod common;

use common::{follow::*, *};
use commonware_codec::{Decode, Encode};
use commonware_cryptography::{ed25519, Digestible, Signer};
use commonware_runtime::{
    deterministic, Clock, Listener as _, Network as _, Runner as _, Spawner, Storage as _,
    Supervisor,
};
use commonware_stream::Upgrader as _;
use std::{net::SocketAddr, sync::atomic::Ordering, time::Duration};
use unet_node::{
    follow::{
        self,
        sync::SyncSettings,
        wire::{ToFollower, ToUpstream, NAMESPACE},
        FullNode, SyncMode, Upstream,
    },
    gossip,
    run::MAX_MESSAGE_SIZE,
    shared::NodeRole,
};
use unet_types::{PrivateKey, UNC};

fn runner(seed: u64) -> deterministic::Runner {
    common::runner(seed, 900)
}

/// Four validators, two full nodes (one from the start, one joining at height 40), 75 blocks
/// across two epoch boundaries and their reshares. Both full nodes hold every block the
/// validators finalized, the same state root, and a transfer submitted to a full node lands.
#[test]
fn full_nodes_follow_across_epochs_and_reshares_and_forward_transactions() {
    runner(11).start(|context| async move {
        let (net, vs, upstreams) = validators_serving(&context).await;
        let early = full_node(&context, &net, "full-a", upstreams[..2].to_vec()).await;
        assert_eq!(early.shared.role, NodeRole::Full);

        // A transfer submitted to the full node: admitted there, forwarded, finalized.
        let bob = PrivateKey::from_seed(4242);
        let tx = transfer(&faucet(), 0, &bob.public_key(), 5 * UNC);
        let admitted = gossip::admit(&early.shared, vec![tx.clone()]).await;
        assert!(admitted[0].is_ok(), "{admitted:?}");
        early.gossip.publish(tx);

        wait_height(&context, &[&vs[0]], 40).await;
        let late = full_node(&context, &net, "full-b", vec![upstreams[2].clone()]).await;
        let target = 2 * EPOCH_LENGTH + 15;
        wait_height(&context, &vs.iter().collect::<Vec<_>>(), target).await;
        wait_full(&context, &early, target).await;
        wait_full(&context, &late, target).await;

        for h in 1..=target {
            let want = digest_at(&vs[0], h).await.expect("validator block");
            for f in [&early, &late] {
                let got = f.shared.block_at(h).await.map(|b| b.digest());
                assert_eq!(got, Some(want), "height {h}");
            }
            // Every block crossed the epoch boundaries with the same epoch in its round.
        }
        // Same state at the same height (read in one request each, at `target`).
        let root = |s: &std::sync::Arc<unet_node::shared::Shared<Ctx>>| {
            let s = s.clone();
            async move {
                s.applied_at_least(target).await;
                s.history
                    .get()
                    .expect("history")
                    .block(target)
                    .await
                    .expect("block")
                    .state_root
            }
        };
        assert_eq!(root(&early.shared).await, root(&vs[0].shared).await);
        assert_eq!(root(&late.shared).await, root(&vs[0].shared).await);
        let at_validator = balance(&vs[0], &bob.public_key()).await;
        assert_eq!(at_validator, 5 * UNC, "the forwarded transfer landed");
        let at_full = {
            let who = bob.public_key();
            late.shared
                .chain(move |c| Box::pin(async move { c.account(&who).await.unwrap() }))
                .await
                .unwrap()
                .balance
        };
        assert_eq!(at_full, 5 * UNC);
        // Every height has a certificate stored by the full node, or a later one covers it.
        let history = late.shared.history.get().unwrap();
        assert!(
            history.finalization(target).await.is_some()
                || history.finalization(target + 1).await.is_some()
        );
        assert_eq!(early.stats.misbehaved.load(Ordering::Relaxed), 0);
        assert_eq!(late.stats.misbehaved.load(Ordering::Relaxed), 0);
        assert!(late.stats.applied.load(Ordering::Relaxed) >= target);
    });
}

/// What a byzantine upstream sends.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// Block 1 with block 2's certificate re-pointed at block 1 (its signature no longer
    /// matches).
    ForgedCertificate,
    /// Block 1 with its timestamp changed, and the real certificate of block 1.
    TamperedBlock,
    /// Block 2 first (a height gap).
    SkippedHeight,
    /// Nothing at all after the handshake.
    Silence,
}

/// Takes the next connection on `listener` through the follow handshake as `key`: `None` when
/// the listener failed, `Some(None)` when the handshake did.
async fn accept(
    context: &Ctx,
    listener: &mut <Ctx as commonware_runtime::Network>::Listener,
    key: &ed25519::PrivateKey,
) -> Option<Option<follow::Session<Ctx, Upgrader>>> {
    let (_, sink, stream) = listener.accept().await.ok()?;
    let upgraded = upgrader(key.clone())
        .listen(
            context.child("hs"),
            NAMESPACE,
            MAX_MESSAGE_SIZE,
            |_| async { true },
            stream,
            sink,
        )
        .await;
    Some(
        upgraded
            .ok()
            .map(|(_, sender, receiver)| (sender, receiver)),
    )
}

/// Serves one lie to every follower that connects, on `address`, under `key`.
async fn byzantine(
    context: &Ctx,
    v: &Running,
    key: ed25519::PrivateKey,
    address: SocketAddr,
    lie: Lie,
) {
    let mut listener = context.bind(address).await.expect("bind");
    let history = v.shared.history.get().expect("history").clone();
    let block1 = (*history.block(1).await.expect("block 1")).clone();
    let block2 = (*history.block(2).await.expect("block 2")).clone();
    let cert1 = history.finalization(1).await.expect("certificate 1");
    let cert2 = history.finalization(2).await.expect("certificate 2");
    let message = match lie {
        Lie::ForgedCertificate => {
            let mut forged = cert2;
            forged.proposal.payload = block1.digest();
            ToFollower::Block {
                block: Box::new(block1),
                certificate: Some(Box::new(forged)),
            }
        }
        Lie::TamperedBlock => {
            let mut tampered = block1;
            tampered.timestamp += 1;
            ToFollower::Block {
                block: Box::new(tampered),
                certificate: Some(Box::new(cert1)),
            }
        }
        Lie::SkippedHeight | Lie::Silence => ToFollower::Block {
            block: Box::new(block2),
            certificate: Some(Box::new(cert2)),
        },
    };
    context.child("byzantine").spawn(move |context| async move {
        loop {
            let Some(session) = accept(&context, &mut listener, &key).await else {
                return;
            };
            let Some((mut sender, mut receiver)) = session else {
                continue;
            };
            let hello = receiver.recv().await.expect("hello");
            assert!(matches!(
                ToUpstream::decode_cfg(hello, &()),
                Ok(ToUpstream::Follow { from: 1, .. })
            ));
            if !matches!(lie, Lie::Silence) {
                let _ = sender.send(message.encode()).await;
            }
            // Hold the connection: the follower must hang up by itself.
            let _ = receiver.recv().await;
        }
    });
}

/// A full node whose first upstream lies is not fooled: it drops that upstream (naming why),
/// follows the honest one, and ends with the validators' blocks.
#[test]
fn an_upstream_that_lies_is_dropped_and_the_full_node_follows_an_honest_one() {
    for (seed, lie, why) in [
        (21, Lie::ForgedCertificate, "forged certificate"),
        (22, Lie::TamperedBlock, "finalizes another block"),
        (23, Lie::SkippedHeight, "where 1 was next"),
        (24, Lie::Silence, ""),
    ] {
        runner(seed).start(|context| async move {
            let (net, vs, upstreams) = validators_serving(&context).await;
            wait_height(&context, &[&vs[0]], 5).await;
            let liar_key = ed25519::PrivateKey::from_seed(0xbad);
            let liar_address = SocketAddr::from(([127, 0, 0, 1], 7_100));
            byzantine(&context, &vs[0], liar_key.clone(), liar_address, lie).await;
            let liar = Upstream {
                key: liar_key.public_key(),
                address: liar_address,
            };
            let f = full_node(&context, &net, "full-x", vec![liar, upstreams[1].clone()]).await;
            wait_height(&context, &vs.iter().collect::<Vec<_>>(), 20).await;
            wait_full(&context, &f, 20).await;
            if matches!(lie, Lie::Silence) {
                // Not a lie, but it must not hold the node: left after the stall timeout.
                assert!(f.stats.disconnects.load(Ordering::Relaxed) >= 1);
            } else {
                assert!(
                    f.stats.misbehaved.load(Ordering::Relaxed) >= 1,
                    "{lie:?} not caught"
                );
                let last = f
                    .stats
                    .last_misbehaviour
                    .lock()
                    .unwrap()
                    .clone()
                    .unwrap_or_default();
                assert!(last.contains(why), "{lie:?}: {last}");
            }
            for h in 1..=20 {
                assert_eq!(
                    f.shared.block_at(h).await.map(|b| b.digest()),
                    digest_at(&vs[0], h).await,
                    "height {h}"
                );
            }
        });
    }
}

/// A full node restarted from its own storage resumes where it stopped (it asks for the first
/// height it lacks, not genesis), and the blocks it stored before the crash still serve.
#[test]
fn a_full_node_resumes_from_its_own_storage_after_a_crash() {
    runner(31).start(|context| async move {
        let (net, vs, upstreams) = validators_serving(&context).await;
        let (tx, rx) = commonware_utils::channel::oneshot::channel();
        let cfg = full_config(&net, "full-r", upstreams.clone());
        let crashing = context.child("crashing").spawn({
            move |context| async move {
                let f = follow::start_full(
                    context.child("full"),
                    cfg,
                    upgrader(ed25519::PrivateKey::from_seed(0xf0f0)),
                )
                .await
                .expect("full node");
                wait_full(&context, &f, 12).await;
                let _ = tx.send(f.shared.status().finalized_height);
                futures::future::pending::<()>().await;
            }
        });
        let before = rx.await.expect("followed");
        crashing.abort();
        let _ = crashing.await;
        wait_height(&context, &[&vs[0]], before + 10).await;
        let f = full_node(&context, &net, "full-r", upstreams).await;
        assert!(
            f.shared.status().finalized_height >= before,
            "reopened at its applied height"
        );
        wait_full(&context, &f, before + 10).await;
        for h in 1..=before + 10 {
            assert_eq!(
                f.shared.block_at(h).await.map(|b| b.digest()),
                digest_at(&vs[0], h).await,
                "height {h}"
            );
        }
    });
}

/// What a byzantine state-sync upstream does.
#[derive(Clone, Copy, Debug)]
enum SyncLie {
    /// Offers the real state with the previous block's certificate re-pointed at its block.
    ForgedCertificate,
    /// Offers the real block and certificate with a target whose ops root is another one.
    WrongState,
    /// Offers the real state honestly, then changes every operation it sends.
    TamperedChunks,
    /// Offers the real block and certificate with a target one operation short (its proof
    /// would make every honest upstream's chunks fail).
    WrongSize,
}

fn tamper(op: unet_store::SyncOp) -> unet_store::SyncOp {
    match op {
        unet_store::SyncOp::Update(mut update) => {
            update.value.push(0xff);
            unet_store::SyncOp::Update(update)
        }
        unet_store::SyncOp::CommitFloor(value, floor) => {
            let mut value = value.unwrap_or_default();
            value.push(1);
            unet_store::SyncOp::CommitFloor(Some(value), floor)
        }
        delete => unet_store::SyncOp::CommitFloor(Some(delete.encode().to_vec()), 0u64.into()),
    }
}

/// Serves state sync with one lie, on `address`, from validator `v`'s state.
async fn sync_liar(
    context: &Ctx,
    v: &Running,
    key: ed25519::PrivateKey,
    address: SocketAddr,
    lie: SyncLie,
) {
    let mut listener = context.bind(address).await.expect("bind");
    let shared = v.shared.clone();
    context.child("sync_liar").spawn(move |context| async move {
        loop {
            let Some(session) = accept(&context, &mut listener, &key).await else {
                return;
            };
            let Some((mut sender, mut receiver)) = session else {
                continue;
            };
            // It serves state sync only (the follower comes to it later, block by block).
            let Ok(hello) = receiver.recv().await else {
                continue;
            };
            if !matches!(
                ToUpstream::decode_cfg(hello, &()),
                Ok(ToUpstream::Sync { .. })
            ) {
                continue;
            }
            // The applied state at a height that has its own certificate (and the one before).
            let history = shared.history.get().expect("history").clone();
            let (mut target, block, mut certificate) = loop {
                let target = shared.state_sync.target().await.expect("target");
                let h = target.height;
                if let (Some(b), Some(c), Some(_)) = (
                    history.block(h).await,
                    history.finalization(h).await,
                    history.finalization(h - 1).await,
                ) {
                    break (target, b, c);
                }
                context.sleep(Duration::from_millis(100)).await;
            };
            match lie {
                SyncLie::ForgedCertificate => {
                    certificate = history.finalization(target.height - 1).await.unwrap();
                    certificate.proposal.payload = block.digest();
                }
                SyncLie::WrongState => target.ops_root = block.parent,
                SyncLie::TamperedChunks => {}
                SyncLie::WrongSize => target.size -= 1,
            }
            let true_size = target.size + matches!(lie, SyncLie::WrongSize) as u64;
            let offer = ToFollower::SyncTarget {
                block: Box::new((*block).clone()),
                certificate: Box::new(certificate),
                target: Box::new(target),
            };
            if sender.send(offer.encode()).await.is_err() {
                continue;
            }
            let mut answered = 0;
            while let Ok(m) = receiver.recv().await {
                let Ok(ToUpstream::SyncOps(request)) = ToUpstream::decode_cfg(m, &()) else {
                    break;
                };
                answered += 1;
                let tampers = matches!(lie, SyncLie::TamperedChunks) && answered > 1;
                // It answers from the state it really has.
                let request = match request {
                    unet_store::SyncRequest::Boundary { start, .. } => {
                        unet_store::SyncRequest::Boundary {
                            size: true_size.into(),
                            start,
                        }
                    }
                    unet_store::SyncRequest::Operations { start, max_ops, .. } => {
                        unet_store::SyncRequest::Operations {
                            size: true_size.into(),
                            start,
                            max_ops,
                        }
                    }
                };
                let Ok(response) = shared.state_sync.serve(request, 1 << 20).await else {
                    break;
                };
                let response = match response {
                    unet_store::SyncResponse::Operations { proof, operations } if tampers => {
                        unet_store::SyncResponse::Operations {
                            proof,
                            operations: operations.into_iter().map(tamper).collect(),
                        }
                    }
                    unet_store::SyncResponse::Boundary {
                        proof,
                        op,
                        pinned_nodes,
                    } if tampers => unet_store::SyncResponse::Boundary {
                        proof,
                        op: tamper(op),
                        pinned_nodes,
                    },
                    honest => honest,
                };
                let message = ToFollower::SyncOps(Box::new(response));
                if sender.send(message.encode()).await.is_err() {
                    break;
                }
            }
        }
    });
}

/// A full node joining a chain past `sync_min_height` syncs the state of a certified block
/// instead of replaying: it never fetches a block below that height, reaches the validators'
/// state root and follows on block by block. An upstream that offers a forged certificate,
/// a state that is not the certified block's, an offer whose size is not its root's, or
/// chunks that do not match their proofs is caught (named, counted, benched) and the sync
/// completes from the honest upstreams.
#[test]
fn a_late_full_node_syncs_state_and_lying_upstreams_are_caught() {
    for (seed, lie, why) in [
        (41, None, ""),
        (42, Some(SyncLie::ForgedCertificate), "forged certificate"),
        (43, Some(SyncLie::WrongState), "not the certified block's"),
        (
            44,
            Some(SyncLie::TamperedChunks),
            "sent state that does not match its proof",
        ),
        (45, Some(SyncLie::WrongSize), "offer's first chunk"),
    ] {
        runner(seed).start(|context| async move {
            let (net, vs, upstreams) = validators_serving(&context).await;
            wait_height(&context, &[&vs[0]], 30).await;
            let mut ups = upstreams[1..3].to_vec();
            if let Some(lie) = lie {
                let key = ed25519::PrivateKey::from_seed(0xbad5);
                let address = SocketAddr::from(([127, 0, 0, 1], 7_200));
                sync_liar(&context, &vs[0], key.clone(), address, lie).await;
                let liar = Upstream {
                    key: key.public_key(),
                    address,
                };
                // Asked first: it makes the offer (and the chunk liar proves it honestly, then
                // lies in the chunks the sync asks it for).
                ups.insert(0, liar);
            }
            let mut cfg = full_config(&net, "full-s", ups);
            cfg.sync = SyncMode::State;
            cfg.sync_settings = SyncSettings { min_height: 20 };
            let f = follow::start_full(
                context.child("full"),
                cfg,
                upgrader(ed25519::PrivateKey::from_seed(0xf055)),
            )
            .await
            .expect("full node");
            let synced = f.stats.synced_height.load(Ordering::Relaxed);
            assert!(synced >= 30, "synced at {synced}");
            assert_eq!(f.shared.status().finalized_height, synced);
            // Nothing below the synced height was fetched.
            assert!(f.shared.block_at(synced - 1).await.is_none());
            assert!(f.shared.block_at(1).await.is_none());

            let target = synced + 15;
            wait_height(&context, &vs.iter().collect::<Vec<_>>(), target).await;
            wait_full(&context, &f, target).await;
            for h in synced..=target {
                assert_eq!(
                    f.shared.block_at(h).await.map(|b| b.digest()),
                    digest_at(&vs[0], h).await,
                    "height {h}"
                );
            }
            let applied = f.stats.applied.load(Ordering::Relaxed);
            let height = f.shared.status().finalized_height;
            assert_eq!(
                applied,
                height - synced,
                "only blocks after the synced one ran"
            );
            let root = |s: &std::sync::Arc<unet_node::shared::Shared<Ctx>>| {
                let s = s.clone();
                async move {
                    s.applied_at_least(target).await;
                    s.history
                        .get()
                        .unwrap()
                        .block(target)
                        .await
                        .unwrap()
                        .state_root
                }
            };
            assert_eq!(root(&f.shared).await, root(&vs[0].shared).await);
            // The synced state answers reads: the faucet's balance is the validators'.
            let faucet = faucet().public_key();
            let at_full = {
                let who = faucet.clone();
                f.shared
                    .chain(move |c| Box::pin(async move { c.account(&who).await.unwrap() }))
                    .await
                    .unwrap()
                    .balance
            };
            let at_validator = {
                let v = &vs[0];
                v.shared
                    .applied_at_least(f.shared.status().finalized_height)
                    .await;
                balance(v, &faucet).await
            };
            assert_eq!(at_full, at_validator);

            let misbehaved = f.stats.misbehaved.load(Ordering::Relaxed);
            match lie {
                None => assert_eq!(misbehaved, 0),
                Some(lie) => {
                    assert!(
                        misbehaved >= 1,
                        "{lie:?} not caught ({} disconnects)",
                        f.stats.disconnects.load(Ordering::Relaxed)
                    );
                    let last = f.stats.last_misbehaviour.lock().unwrap().clone();
                    assert!(last.unwrap_or_default().contains(why), "{lie:?}");
                }
            }
        });
    }
}

/// A full node killed in the middle of a state sync (its marker partition written, the sync
/// not finished) finishes the sync when it restarts from its own storage, never replays, and
/// follows on at the validators' blocks.
#[test]
fn a_full_node_killed_mid_sync_syncs_again_on_restart() {
    runner(51).start(|context| async move {
        let (net, vs, upstreams) = validators_serving(&context).await;
        wait_height(&context, &[&vs[0]], 30).await;
        let config = || {
            let mut cfg = full_config(&net, "full-k", upstreams[1..].to_vec());
            cfg.sync = SyncMode::State;
            cfg.sync_settings = SyncSettings { min_height: 20 };
            cfg
        };
        let first = context.child("first").spawn({
            let cfg = config();
            move |context| async move {
                let f = follow::start_full(
                    context.child("full"),
                    cfg,
                    upgrader(ed25519::PrivateKey::from_seed(0xf0f1)),
                )
                .await
                .expect("full node");
                futures::future::pending::<FullNode<Ctx>>().await;
                drop(f);
            }
        });
        // Kill it as soon as the sync has started (the marker is written before the first
        // request; a restart without it would take whatever the sync wrote for a store).
        let mut polls = 0;
        while !matches!(context.scan("full-k-statesync").await, Ok(b) if !b.is_empty()) {
            polls += 1;
            assert!(polls < 100_000, "the sync never started");
            context.sleep(Duration::from_micros(100)).await;
        }
        first.abort();
        let _ = first.await;
        // Its descendants (the tasks holding its storage) are aborted too, but each is
        // dropped only when the runtime next polls it: let them go before the restart opens
        // the same partitions, as a killed process's handles are gone before it restarts.
        context.sleep(Duration::from_millis(50)).await;
        assert!(
            matches!(context.scan("full-k-statesync").await, Ok(b) if !b.is_empty()),
            "killed before the sync finished"
        );

        let f = follow::start_full(
            context.child("second"),
            config(),
            upgrader(ed25519::PrivateKey::from_seed(0xf0f1)),
        )
        .await
        .expect("full node");
        let synced = f.stats.synced_height.load(Ordering::Relaxed);
        assert!(synced >= 30, "synced at {synced} after the restart");
        assert!(
            matches!(context.scan("full-k-statesync").await, Ok(b) if b.is_empty())
                || context.scan("full-k-statesync").await.is_err(),
            "the marker is gone once the synced block is stored"
        );
        let target = synced + 10;
        wait_height(&context, &[&vs[1]], target).await;
        wait_full(&context, &f, target).await;
        for h in synced..=target {
            assert_eq!(
                f.shared.block_at(h).await.map(|b| b.digest()),
                digest_at(&vs[1], h).await,
                "height {h}"
            );
        }
    });
}
