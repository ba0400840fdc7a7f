//! Chips registered through consensus: evidence from a software secure element, bound to a
//! recent block and the owner, verified by every validator, and visible in everyone's state.

mod common;

use common::*;
use commonware_cryptography::Signer;
use commonware_runtime::Runner as _;
use std::time::Duration;
use unet_poci::{secure_element::DevnetVendorCa, Curve, Evidence, VendorX509Evidence};
use unet_state::TxStatus;
use unet_types::{
    chip::{registration_nonce, Chip, ChipStatus},
    keys::chip_key,
    Payload, Transaction,
};

#[test]
fn chip_registration_is_final_on_every_validator() {
    // Certificates are checked at the block timestamp: start the clock in 2026.
    runner_in_2026(11, 600).start(|context| async move {
        let net = network(&context, 4, good_link()).await;
        let mut vs = Vec::new();
        for i in 0..4 {
            vs.push(start(&context, &net, i).await);
        }
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, 5).await;

        // A chip of the devnet vendor CA pinned in genesis, its registration anchored at the
        // finalized tip of validator 1, as unet_registrationNonce reports it.
        let owner = faucet();
        let (se, tx) = register_chip_tx(&vs[1], 3, &owner, 0).await;
        let hash = tx.hash();
        for r in submit(&vs[2], vec![tx]).await {
            r.unwrap();
        }

        // Wait until every validator has the receipt, then compare.
        loop {
            let mut done = 0;
            for v in &vs {
                if landed(v, hash).await.is_some() {
                    done += 1;
                }
            }
            if done == vs.len() {
                break;
            }
            commonware_runtime::Clock::sleep(&context, Duration::from_millis(50)).await;
        }
        let id = se.chip_id();
        for v in &vs {
            let at = landed(v, hash).await.expect("finalized");
            assert_eq!(at.receipt.status, TxStatus::Ok);
            let chip: Chip = entry(v, chip_key(&id)).await.expect("chip");
            assert_eq!(chip.owner, owner.public_key());
            assert_eq!(chip.model, "BM1684X");
            assert_eq!(chip.status, ChipStatus::Online);
            let chips = v
                .shared
                .chain(|c| Box::pin(async move { c.registry().await.unwrap().chip_count }))
                .await
                .unwrap();
            assert_eq!(chips, 1);
        }
    });
}

/// Three chips registered through consensus answer their challenges with their hardware keys
/// (chip C's miner is down for a while). Checked on the finalized chain of four validators:
/// C goes Unresponsive and comes back; in the epochs C is down, A and B split the emission
/// exactly by rated compute; every settled epoch pays `emission = paid + to_treasury`; the
/// supply invariant holds; all validators agree.
#[test]
fn chips_answer_challenges_through_consensus_and_earn_exact_shares() {
    use std::collections::{BTreeMap, BTreeSet};
    use unet_state::Event;
    use unet_types::{
        liveness::{response_digest, LivenessResponse},
        rewards::{epoch_emission, epochs_per_era, MINED_CAP},
        PrivateKey, PublicKey, UNC,
    };
    const DOWN: std::ops::Range<u64> = 40..130;
    const END: u64 = 6 * EPOCH_LENGTH + 25;
    runner_in_2026(12, 1800).start(|context| async move {
        let net = common::network_with(&context, 4, 4, good_link(), |g| {
            g.params.response_window = 5;
            g.params.challenges_per_epoch = 4;
        })
        .await;
        let mut vs = Vec::new();
        for i in 0..4 {
            vs.push(start(&context, &net, i).await);
        }
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, 2).await;

        // Fund three owners, then each registers one chip.
        let owners: Vec<PrivateKey> = (0..3).map(|i| PrivateKey::from_seed(700 + i)).collect();
        let fund: Vec<_> = owners
            .iter()
            .enumerate()
            .map(|(i, o)| transfer(&faucet(), i as u64, &o.public_key(), 10 * UNC))
            .collect();
        for r in submit(&vs[0], fund).await {
            r.unwrap();
        }
        let h = vs[0].shared.status().finalized_height;
        wait_height(&context, &refs, h + 3).await;
        let ca = DevnetVendorCa::from_seed(unet_devnet::DEVNET_CA_SEED).unwrap();
        let models = ["BM1684X", "H100", "BM1684X"];
        let chips: Vec<_> = (0..3u8)
            .map(|i| {
                ca.provision_chip([40 + i; 16], &[i], Curve::P256, models[i as usize], "SN")
                    .unwrap()
            })
            .collect();
        let (anchor_height, anchor_hash) = anchor(&vs[0]).await;
        let mut nonces = [0u64; 3];
        let mut regs = Vec::new();
        for (i, (se, chain)) in chips.iter().enumerate() {
            let owner = &owners[i];
            let nonce = registration_nonce(CHAIN_ID, &anchor_hash, &owner.public_key());
            let evidence = Evidence::VendorX509(VendorX509Evidence {
                nonce,
                chain: chain.clone(),
                signature: se.sign_registration(&nonce).unwrap(),
            })
            .encode()
            .unwrap();
            regs.push(
                Transaction {
                    chain_id: CHAIN_ID,
                    sender: owner.public_key(),
                    nonce: 0,
                    fee: 10_000,
                    payload: Payload::RegisterChip {
                        anchor_height,
                        evidence,
                    },
                }
                .sign(owner),
            );
            nonces[i] = 1;
        }
        for r in submit(&vs[1], regs).await {
            r.unwrap();
        }

        // The miners: answer every pending challenge of their chip as soon as it is final
        // (chip 2's miner is down while the finalized height is in DOWN).
        let mut answered: BTreeSet<(usize, u64)> = BTreeSet::new();
        loop {
            let height = vs[0].shared.status().finalized_height;
            if height >= END {
                break;
            }
            for (i, (se, _)) in chips.iter().enumerate() {
                if i == 2 && DOWN.contains(&height) {
                    continue;
                }
                let chip: Option<Chip> = entry(&vs[0], chip_key(&se.chip_id())).await;
                let Some(p) = chip.and_then(|c| c.live.pending) else {
                    continue;
                };
                if !answered.insert((i, p.height)) {
                    continue;
                }
                let digest = response_digest(CHAIN_ID, p.height, &p.beacon, &se.chip_id());
                let tx = Transaction {
                    chain_id: CHAIN_ID,
                    sender: owners[i].public_key(),
                    nonce: nonces[i],
                    fee: 10_000,
                    payload: Payload::Liveness {
                        responses: vec![LivenessResponse {
                            chip_id: se.chip_id(),
                            challenge_height: p.height,
                            proof: se.sign_digest(&digest).unwrap(),
                        }],
                    },
                }
                .sign(&owners[i]);
                nonces[i] += 1;
                for r in submit(&vs[i % 4], vec![tx]).await {
                    r.unwrap();
                }
            }
            commonware_runtime::Clock::sleep(&context, Duration::from_millis(20)).await;
        }
        wait_height(&context, &refs, END).await;

        // Every validator finalized the same chain.
        let d = digest_at(&vs[0], END).await.expect("block");
        for v in &vs[1..] {
            assert_eq!(digest_at(v, END).await, Some(d));
        }

        // The event log of the finalized chain.
        let events: Vec<(u64, Event)> = {
            let recent = vs[0].shared.recent.lock().unwrap();
            (1..=END)
                .flat_map(|h| {
                    let fb = recent.get(&h).expect("recent block kept");
                    fb.events
                        .iter()
                        .cloned()
                        .map(move |e| (h, e))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let ids: Vec<[u8; 32]> = chips.iter().map(|(se, _)| se.chip_id()).collect();
        let changes = |i: usize| -> Vec<(u64, ChipStatus)> {
            events
                .iter()
                .filter_map(|(h, e)| match e {
                    Event::ChipStatus { chip_id, to, .. } if *chip_id == ids[i] => Some((*h, *to)),
                    _ => None,
                })
                .collect()
        };
        assert!(changes(0).is_empty(), "A always answered: {:?}", changes(0));
        assert!(changes(1).is_empty(), "B always answered: {:?}", changes(1));
        let c = changes(2);
        assert!(c.len() >= 2, "C went down and came back: {c:?}");
        let (down_at, _) = c[0];
        assert_eq!(c[0].1, ChipStatus::Unresponsive);
        assert!(
            DOWN.contains(&down_at) && down_at < 2 * EPOCH_LENGTH,
            "{c:?}"
        );
        let (up_at, up) = c[1];
        assert_eq!(up, ChipStatus::Online);
        assert!(up_at >= DOWN.end, "{c:?}");

        // Epochs 2 and 3 (heights 60..=119): only A and B online, every block.
        let rewards: BTreeMap<(usize, u64), u128> = events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Reward {
                    chip_id,
                    epoch,
                    amount,
                    ..
                } => Some(((ids.iter().position(|x| x == chip_id)?, *epoch), *amount)),
                _ => None,
            })
            .collect();
        let per_era = epochs_per_era(net.genesis.params.halving_blocks, EPOCH_LENGTH);
        let (a, b) = (32_000u128, 1_979_000u128);
        for epoch in 2..=3 {
            let e = epoch_emission(epoch, per_era);
            assert_eq!(rewards[&(0, epoch)], e * a / (a + b), "A in epoch {epoch}");
            assert_eq!(rewards[&(1, epoch)], e * b / (a + b), "B in epoch {epoch}");
            assert!(
                !rewards.contains_key(&(2, epoch)),
                "C earns nothing while down"
            );
        }
        // C earns again once back.
        assert!(rewards[&(2, 5)] > 0);
        let mut settled = 0;
        for (_, e) in &events {
            if let Event::EpochSettled {
                emission,
                paid,
                to_treasury,
                ..
            } = e
            {
                assert_eq!(paid + to_treasury, *emission);
                settled += 1;
            }
        }
        assert!(settled >= 5, "epochs 0..=4 settled");

        // Supply invariant over every account that can hold a balance.
        for v in &vs {
            let mut accounts: Vec<PublicKey> = net.participants.clone();
            accounts.extend(owners.iter().map(|o| o.public_key()));
            accounts.push(faucet().public_key());
            accounts.push(governor().public_key());
            let (s, sum) = supply_and_balances(v, accounts).await;
            assert_eq!(s.genesis + s.minted - s.burned, sum + s.escrowed);
            assert!(s.minted > 0 && s.minted <= MINED_CAP);
        }
    });
}
