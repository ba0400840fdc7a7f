//! A validator that drops out of every committee goes on as a full node on its own storage.

mod common;

use common::{follow::*, *};
use commonware_cryptography::{ed25519, Digestible, Signer};
use commonware_runtime::{Clock, Runner as _, Supervisor};
use unet_node::{
    follow,
    shared::{ConsensusRole, NodeRole},
};

/// Five nodes, four genesis validators. Node 4 registers as a validator; committee 5 takes it
/// in and leaves one genesis validator out, and the committees chosen after it leave that one
/// out too. The left-out validator notices (`out_of_committees`) as soon as it registers
/// epoch 5 as a verifier, stops its validator side and starts a full node on the same storage
/// that follows the other four. It then holds every block of the chain, the ones it finalized
/// as a validator (marshal's archives) and the ones it followed, equal to the validators', and
/// the same state, ten epochs in.
#[test]
fn a_validator_out_of_every_committee_goes_on_as_a_full_node() {
    runner_in_2026(51, 1800).start(|context| async move {
        let net = network_with(&context, 5, 4, good_link(), |g| {
            // Nobody answers liveness challenges in this test: keep the chip online.
            g.params.challenges_per_epoch = 0;
        })
        .await;
        let mut vs = Vec::new();
        let mut upstreams = Vec::new();
        for i in 0..5 {
            let v = start(&context, &net, i).await;
            upstreams.push(serve(&context, &net, &v, i).await);
            vs.push(v);
        }
        wait_height(&context, &vs[..4].iter().collect::<Vec<_>>(), 3).await;
        register_validator(&context, &net, &vs, 4).await;

        // Committee 5 is chosen at height 60.
        wait_height(&context, &[&vs[0]], 2 * EPOCH_LENGTH + 1).await;
        let out = left_out(&net, &vs[0], 5).await;
        let me = net.participants[out].clone();
        // Not yet: its role in the newest registered epoch is still a signer's.
        assert_ne!(vs[out].shared.role(2), Some(ConsensusRole::Verifier));

        let epoch = unet_node::retire::out_of_committees(&vs[out].shared, &me).await;
        assert_eq!(epoch, 5, "out from the first epoch it does not sign in");
        assert_eq!(vs[out].shared.role(5), Some(ConsensusRole::Verifier));
        for later in 6..=8 {
            assert_eq!(
                left_out(&net, &vs[0], later).await,
                out,
                "committee {later}"
            );
        }
        let retired_at = vs[out].shared.status().finalized_height;
        tracing::info!(out, retired_at, "validator retires");

        // What `unet node` does: stop every task of the validator, then a full node on the
        // same storage, following the others.
        let validator = vs.remove(out);
        validator.task.abort();
        drop(validator);
        context.sleep(std::time::Duration::from_millis(100)).await;
        let mut cfg = full_config(&net, &format!("v{out}"), {
            let mut ups = upstreams.clone();
            ups.remove(out);
            ups
        });
        cfg.retired = true;
        let full = follow::start_full(
            context.child("retired"),
            cfg,
            upgrader(ed25519::PrivateKey::from_seed(0x5e7)),
        )
        .await
        .expect("full node");
        assert_eq!(full.shared.role, NodeRole::Full);
        assert!(
            full.shared.status().finalized_height >= retired_at,
            "goes on from the state it applied as a validator"
        );

        let end = 10 * EPOCH_LENGTH;
        wait_height(&context, &vs.iter().collect::<Vec<_>>(), end).await;
        wait_full(&context, &full, end).await;
        for h in 1..=end {
            let want = digest_at(&vs[0], h).await.expect("validator block");
            let got = full.shared.block_at(h).await.map(|b| b.digest());
            assert_eq!(got, Some(want), "height {h}");
        }
        // A certificate from its validator days is still served.
        let history = full.shared.history.get().expect("history");
        let mut kept = 0;
        for h in 1..=retired_at {
            kept += usize::from(history.finalization(h).await.is_some());
        }
        assert!(
            kept > 0,
            "no certificate kept from heights 1..={retired_at}"
        );
        // Its own state (not the block's claim): the root at its applied height is the one
        // the validators certified for that height.
        let (height, root) = full
            .shared
            .chain(|c| Box::pin(async move { (c.applied_height(), c.root()) }))
            .await
            .unwrap();
        assert!(height >= end);
        let certified = vs[0]
            .shared
            .block_at(height)
            .await
            .expect("block")
            .state_root;
        assert_eq!(root, certified, "same state at height {height}");
        assert_eq!(
            full.stats
                .misbehaved
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    });
}
