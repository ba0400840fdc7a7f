//! A whole GPU host on a devnet: one owner registers the 8 emulated Blackwell GPUs of one host
//! through consensus (NVIDIA SPDM evidence, the path real GPUs take, anchored in the devnet
//! genesis's NVIDIA-shaped Blackwell root) and keeps all 8 online by answering every challenge
//! with each GPU's own fresh attestation. Checked on four validators' finalized chains.

mod common;

use common::*;
use commonware_cryptography::Signer;
use commonware_runtime::Runner as _;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use unet_poci::secure_element::DevnetNvidiaCa;
use unet_state::{Event, TxStatus};
use unet_types::{
    chip::{kind, registration_nonce, Chip, ChipStatus},
    keys::chip_key,
    liveness::{response_digest, LivenessResponse},
    Payload, PrivateKey, Transaction, UNC,
};

#[test]
fn one_host_registers_and_keeps_eight_blackwell_gpus_online() {
    const END: u64 = 4 * EPOCH_LENGTH + 10;
    runner_in_2026(17, 1800).start(|context| async move {
        let net = common::network_with(&context, 4, 4, good_link(), |g| {
            g.params.response_window = 5;
            g.params.challenges_per_epoch = 3;
        })
        .await;
        let mut vs = Vec::new();
        for i in 0..4 {
            vs.push(start(&context, &net, i).await);
        }
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, 2).await;

        let owner = PrivateKey::from_seed(1717);
        for r in submit(
            &vs[0],
            vec![transfer(&faucet(), 0, &owner.public_key(), 10 * UNC)],
        )
        .await
        {
            r.unwrap();
        }
        let h = vs[0].shared.status().finalized_height;
        wait_height(&context, &refs, h + 3).await;

        // The host: 8 GPUs from the devnet Blackwell CA that genesis pins (devnet-only).
        let ca =
            DevnetNvidiaCa::from_seed(unet_devnet::DEVNET_NVIDIA_CA_SEED, "Blackwell").unwrap();
        let gpus: Vec<_> = (0..8u8)
            .map(|i| ca.manufacture([0xB0 + i; 16]).unwrap())
            .collect();
        let (anchor_height, anchor_hash) = anchor(&vs[0]).await;
        let nonce = registration_nonce(CHAIN_ID, &anchor_hash, &owner.public_key());
        let mut next_nonce = 0u64;
        let regs: Vec<_> = gpus
            .iter()
            .map(|gpu| {
                let tx = Transaction {
                    chain_id: CHAIN_ID,
                    sender: owner.public_key(),
                    nonce: next_nonce,
                    fee: 10_000,
                    payload: Payload::RegisterChip {
                        anchor_height,
                        evidence: gpu.evidence(&nonce).unwrap(),
                    },
                }
                .sign(&owner);
                next_nonce += 1;
                tx
            })
            .collect();
        let hashes: Vec<_> = regs.iter().map(|t| t.hash()).collect();
        for r in submit(&vs[1], regs).await {
            r.unwrap();
        }

        // The miner: every pending challenge of every GPU answered by that GPU's own report
        // over the challenge digest, all of one round in one transaction.
        let ids: Vec<[u8; 32]> = gpus.iter().map(|g| g.chip_id()).collect();
        let mut answered: BTreeSet<(usize, u64)> = BTreeSet::new();
        loop {
            let height = vs[0].shared.status().finalized_height;
            if height >= END {
                break;
            }
            let mut responses = Vec::new();
            for (i, gpu) in gpus.iter().enumerate() {
                let chip: Option<Chip> = entry(&vs[0], chip_key(&ids[i])).await;
                let Some(p) = chip.and_then(|c| c.live.pending) else {
                    continue;
                };
                if !answered.insert((i, p.height)) {
                    continue;
                }
                let digest = response_digest(CHAIN_ID, p.height, &p.beacon, &ids[i]);
                responses.push(LivenessResponse {
                    chip_id: ids[i],
                    challenge_height: p.height,
                    proof: gpu.evidence(&digest).unwrap(),
                });
            }
            if !responses.is_empty() {
                let tx = Transaction {
                    chain_id: CHAIN_ID,
                    sender: owner.public_key(),
                    nonce: next_nonce,
                    fee: 10_000,
                    payload: Payload::Liveness { responses },
                }
                .sign(&owner);
                next_nonce += 1;
                for r in submit(&vs[next_nonce as usize % 4], vec![tx]).await {
                    r.unwrap();
                }
            }
            commonware_runtime::Clock::sleep(&context, Duration::from_millis(20)).await;
        }
        wait_height(&context, &refs, END).await;

        let d = digest_at(&vs[0], END).await.expect("block");
        for v in &vs[1..] {
            assert_eq!(digest_at(v, END).await, Some(d));
        }
        for v in &vs {
            for (i, hash) in hashes.iter().enumerate() {
                assert_eq!(
                    landed(v, *hash)
                        .await
                        .expect("registration finalized")
                        .receipt
                        .status,
                    TxStatus::Ok,
                    "GPU {i} registered"
                );
            }
            for id in &ids {
                let chip: Chip = entry(v, chip_key(id)).await.unwrap();
                assert_eq!(chip.model, "B200");
                assert_eq!(chip.kind, kind::NVIDIA_SPDM);
                assert_eq!(chip.owner, owner.public_key());
                assert_eq!(chip.status, ChipStatus::Online);
            }
        }

        // All 8 answered every challenge (no status change) and each earned in every settled
        // epoch after registering, the same amount (same model, same time online).
        let events: Vec<Event> = {
            let recent = vs[0].shared.recent.lock().unwrap();
            (1..=END)
                .flat_map(|h| {
                    let block = recent.get(&h).expect("recent block");
                    block.events.iter().cloned().collect::<Vec<_>>()
                })
                .collect()
        };
        for e in &events {
            if let Event::ChipStatus { chip_id, to, .. } = e {
                assert!(!ids.contains(chip_id), "a GPU changed status to {to:?}");
            }
        }
        let mut rewards: BTreeMap<u64, Vec<u128>> = BTreeMap::new();
        for e in &events {
            if let Event::Reward {
                chip_id,
                epoch,
                amount,
                ..
            } = e
            {
                if ids.contains(chip_id) {
                    rewards.entry(*epoch).or_default().push(*amount);
                }
            }
        }
        let full: Vec<_> = rewards.iter().filter(|(_, a)| a.len() == 8).collect();
        assert!(full.len() >= 2, "epochs with all 8 GPUs paid: {rewards:?}");
        for (epoch, amounts) in full {
            assert!(
                amounts.iter().all(|a| *a == amounts[0] && *a > 0),
                "{epoch}: {amounts:?}"
            );
        }
    });
}
