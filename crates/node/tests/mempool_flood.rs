//! The mempool jam attack (issue 12, item 4), performed against a 4-validator network in the
//! deterministic runtime: 100,000 junk transactions flood one validator (through the same
//! admission the API uses) while three chips answer their liveness challenges through that
//! same validator and an honest account keeps sending transfers there.
//!
//! The junk: 40,000 from 50 unfunded keys (800 nonces each), 20,000 with bad signatures,
//! 20,000 with bad nonces (replays and nonces far ahead), 2,000 oversized, and 18,000 from
//! funded spam accounts at the minimum fee (half of them stuck behind a nonce gap). Before the
//! fix the unfunded junk alone filled the pool, answers were refused and chips went
//! Unresponsive. Asserted: every answer and transfer is admitted and finalized, no chip ever
//! goes Unresponsive and every chip is paid in every epoch of the flood, every junk
//! transaction is refused for its reason or (funded spam) bounded by the pool, and the flooded
//! node's pool never exceeds its bounds.

mod common;

use common::*;
use commonware_cryptography::Signer;
use commonware_runtime::{Clock, Runner as _};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};
use unet_node::mempool::MempoolLimits;
use unet_poci::{secure_element::DevnetVendorCa, Curve, Evidence, VendorX509Evidence};
use unet_state::{Event, TxStatus};
use unet_types::{
    chip::{registration_nonce, Chip, ChipStatus},
    keys::chip_key,
    liveness::{response_digest, LivenessResponse},
    Digest, Payload, PrivateKey, PublicKey, SignedTx, Transaction, UNC,
};

const JUNK: usize = 100_000;
const BATCH: usize = 1_000;
/// Spam accounts (half start behind a nonce gap).
const SPAMMERS: u64 = 18;
const SPAM_FEE: u128 = 1_000;
/// The flooded validator's pool: small, so the funded spam overflows it.
const LIMITS: MempoolLimits = MempoolLimits {
    max_txs: 2_000,
    max_bytes: 1024 * 1024,
    max_per_sender: 4_096,
    ttl_blocks: 60,
};
const END: u64 = 5 * EPOCH_LENGTH + 10;

fn signed(key: &PrivateKey, nonce: u64, fee: u128, payload: Payload) -> SignedTx {
    Transaction {
        chain_id: CHAIN_ID,
        sender: key.public_key(),
        nonce,
        fee,
        payload,
    }
    .sign(key)
}

fn pay(key: &PrivateKey, nonce: u64, fee: u128, to: &PublicKey, amount: u128) -> SignedTx {
    signed(
        key,
        nonce,
        fee,
        Payload::Transfer {
            to: to.clone(),
            amount,
        },
    )
}

/// What a junk transaction is, and so why it must be refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Unfunded,
    BadSignature,
    BadNonce,
    Oversized,
    Spam,
}

/// The `i`-th junk transaction.
struct Junk {
    unfunded: Vec<PrivateKey>,
    mallory: PrivateKey,
    /// Mallory's nonce once funded (replays use nonces below it).
    mallory_nonce: u64,
    spammers: Vec<PrivateKey>,
    spam_nonces: Vec<u64>,
    victim: PrivateKey,
    sink: PublicKey,
    counts: BTreeMap<Kind, u64>,
}

impl Junk {
    fn next(&mut self, i: usize) -> (Kind, SignedTx) {
        let kind = match i % 50 {
            0..20 => Kind::Unfunded,
            20..30 => Kind::BadSignature,
            30..40 => Kind::BadNonce,
            40 => Kind::Oversized,
            _ => Kind::Spam,
        };
        let n = *self.counts.entry(kind).and_modify(|c| *c += 1).or_insert(0);
        let tx = match kind {
            Kind::Unfunded => {
                let key = &self.unfunded[(n % 50) as usize];
                pay(key, n / 50, SPAM_FEE, &self.sink, 1)
            }
            Kind::BadSignature => {
                // Claims to come from a funded account, signed by another key.
                let mut tx = pay(&self.victim, n, 10 * SPAM_FEE, &self.sink, 1).tx;
                tx.sender = self.victim.public_key();
                tx.sign(&self.mallory)
            }
            Kind::BadNonce if n.is_multiple_of(2) => pay(
                &self.mallory,
                self.mallory_nonce + 4_096 + n,
                SPAM_FEE,
                &self.sink,
                1,
            ),
            Kind::BadNonce => pay(
                &self.mallory,
                n % self.mallory_nonce,
                SPAM_FEE,
                &self.sink,
                u128::from(n) + 1,
            ),
            Kind::Oversized => signed(
                &self.mallory,
                self.mallory_nonce,
                SPAM_FEE,
                Payload::Liveness {
                    responses: (0..2)
                        .map(|r| LivenessResponse {
                            chip_id: [r; 32],
                            challenge_height: n,
                            proof: vec![7; 17 * 1024],
                        })
                        .collect(),
                },
            ),
            Kind::Spam => {
                let s = (n % SPAMMERS) as usize;
                let nonce = self.spam_nonces[s];
                self.spam_nonces[s] += 1;
                pay(&self.spammers[s], nonce, SPAM_FEE, &self.sink, 1)
            }
        };
        (kind, tx)
    }
}

#[test]
fn junk_flood_does_not_stop_transfers_or_liveness() {
    runner_in_2026(21, 3_600).start(|context| async move {
        let net = common::network_with(&context, 4, 4, good_link(), |g| {
            g.params.response_window = 5;
            g.params.challenges_per_epoch = 4;
        })
        .await;
        let mut vs = vec![start_with(&context, &net, 0, LIMITS).await];
        for i in 1..4 {
            vs.push(start(&context, &net, i).await);
        }
        let refs: Vec<_> = vs.iter().collect();
        let target = &vs[0];
        wait_height(&context, &refs, 2).await;

        // Fund three chip owners, an honest sender, mallory and her spam accounts.
        let faucet = faucet();
        let owners: Vec<PrivateKey> = (0..3).map(|i| PrivateKey::from_seed(700 + i)).collect();
        let alice = PrivateKey::from_seed(800);
        let mallory = PrivateKey::from_seed(900);
        let spammers: Vec<PrivateKey> = (0..SPAMMERS)
            .map(|i| PrivateKey::from_seed(1_000 + i))
            .collect();
        let mut funded: Vec<(PublicKey, u128)> =
            owners.iter().map(|o| (o.public_key(), 10 * UNC)).collect();
        funded.push((alice.public_key(), 10 * UNC));
        funded.push((mallory.public_key(), UNC));
        funded.extend(spammers.iter().map(|s| (s.public_key(), UNC)));
        let mut faucet_nonce = 0;
        let fund: Vec<_> = funded
            .iter()
            .map(|(to, amount)| {
                faucet_nonce += 1;
                pay(&faucet, faucet_nonce - 1, 10_000, to, *amount)
            })
            .collect();
        for r in submit(target, fund).await {
            r.unwrap();
        }
        // Mallory uses a few nonces (so replays exist).
        let mallory_nonce = 5;
        let warmup: Vec<_> = (0..mallory_nonce)
            .map(|n| pay(&mallory, n, SPAM_FEE, &faucet.public_key(), 1))
            .collect();
        let h = target.shared.status().finalized_height;
        wait_height(&context, &refs, h + 3).await;
        for r in submit(target, warmup).await {
            r.unwrap();
        }

        // Three chips, registered through the flooded validator.
        let ca = DevnetVendorCa::from_seed(unet_devnet::DEVNET_CA_SEED).unwrap();
        let models = ["BM1684X", "H100", "BM1684X"];
        let chips: Vec<_> = (0..3u8)
            .map(|i| {
                ca.provision_chip([60 + i; 16], &[i], Curve::P256, models[i as usize], "SN")
                    .unwrap()
            })
            .collect();
        let (anchor_height, anchor_hash) = anchor(target).await;
        let mut nonces = [0u64; 3];
        let mut regs = Vec::new();
        for (i, (se, chain)) in chips.iter().enumerate() {
            let nonce = registration_nonce(CHAIN_ID, &anchor_hash, &owners[i].public_key());
            let evidence = Evidence::VendorX509(VendorX509Evidence {
                nonce,
                chain: chain.clone(),
                signature: se.sign_registration(&nonce).unwrap(),
            })
            .encode()
            .unwrap();
            regs.push(signed(
                &owners[i],
                0,
                10_000,
                Payload::RegisterChip {
                    anchor_height,
                    evidence,
                },
            ));
            nonces[i] = 1;
        }
        for r in submit(target, regs).await {
            r.unwrap();
        }
        let ids: Vec<[u8; 32]> = chips.iter().map(|(se, _)| se.chip_id()).collect();
        loop {
            let mut registered = 0;
            for id in &ids {
                if entry::<Chip>(target, chip_key(id)).await.is_some() {
                    registered += 1;
                }
            }
            if registered == 3 {
                break;
            }
            context.sleep(Duration::from_millis(50)).await;
        }
        let flood_from = target.shared.status().finalized_height;

        // The flood, one batch every other step, while the miners answer and alice pays.
        let mut junk = Junk {
            unfunded: (0..50).map(|i| PrivateKey::from_seed(5_000 + i)).collect(),
            mallory: mallory.clone(),
            mallory_nonce,
            spammers: spammers.clone(),
            spam_nonces: (0..SPAMMERS)
                .map(|s| u64::from(s >= SPAMMERS / 2))
                .collect(),
            victim: alice.clone(),
            sink: PrivateKey::from_seed(6_000).public_key(),
            counts: BTreeMap::new(),
        };
        let mut outcomes: BTreeMap<(Kind, String), u64> = BTreeMap::new();
        let mut sent = 0usize;
        let mut answered: BTreeSet<(usize, u64)> = BTreeSet::new();
        let mut refused_answers = Vec::new();
        let mut refused_transfers = Vec::new();
        let mut transfers: Vec<Digest> = Vec::new();
        let mut alice_nonce = 0;
        let (mut max_len, mut max_bytes) = (0, 0);
        let mut flood_until = flood_from;
        let mut step = 0u64;
        loop {
            let height = target.shared.status().finalized_height;
            if height >= END {
                break;
            }
            step += 1;
            if sent < JUNK && step.is_multiple_of(2) {
                let (kinds, txs): (Vec<Kind>, Vec<SignedTx>) =
                    (sent..sent + BATCH).map(|i| junk.next(i)).unzip();
                sent += BATCH;
                for (kind, r) in kinds.into_iter().zip(submit(target, txs).await) {
                    let what = match r {
                        Ok(_) => "admitted".to_string(),
                        Err(e) => e.code().to_string(),
                    };
                    *outcomes.entry((kind, what)).or_default() += 1;
                }
                flood_until = height;
            }
            // The miners answer every pending challenge through the flooded validator.
            for (i, (se, _)) in chips.iter().enumerate() {
                let chip: Option<Chip> = entry(target, chip_key(&ids[i])).await;
                let Some(p) = chip.and_then(|c| c.live.pending) else {
                    continue;
                };
                if !answered.insert((i, p.height)) {
                    continue;
                }
                let digest = response_digest(CHAIN_ID, p.height, &p.beacon, &se.chip_id());
                let tx = signed(
                    &owners[i],
                    nonces[i],
                    10_000,
                    Payload::Liveness {
                        responses: vec![LivenessResponse {
                            chip_id: se.chip_id(),
                            challenge_height: p.height,
                            proof: se.sign_digest(&digest).unwrap(),
                        }],
                    },
                );
                nonces[i] += 1;
                if let Err(e) = submit(target, vec![tx]).await.remove(0) {
                    refused_answers.push((i, p.height, e));
                }
            }
            // Alice pays someone every few steps.
            if step.is_multiple_of(5) && height < END - 10 {
                let tx = pay(&alice, alice_nonce, 10_000, &faucet.public_key(), UNC / 100);
                alice_nonce += 1;
                transfers.push(tx.hash());
                if let Err(e) = submit(target, vec![tx]).await.remove(0) {
                    refused_transfers.push((height, e));
                }
            }
            {
                let m = target.shared.mempool.figures().await;
                max_len = max_len.max(m.len);
                max_bytes = max_bytes.max(m.bytes);
                assert!(m.len <= LIMITS.max_txs, "{} pending", m.len);
                assert!(m.bytes <= LIMITS.max_bytes, "{} bytes pending", m.bytes);
            }
            context.sleep(Duration::from_millis(20)).await;
        }
        wait_height(&context, &refs, END).await;
        let went_down: Vec<(u64, String)> = {
            let recent = target.shared.recent.lock().unwrap();
            (1..=END)
                .flat_map(|h| recent[&h].events.iter().map(move |e| (h, e)))
                .filter_map(|(h, e)| match e {
                    Event::ChipStatus { chip_id, to, .. } if *to == ChipStatus::Unresponsive => {
                        Some((h, hex::encode(chip_id)))
                    }
                    _ => None,
                })
                .collect()
        };
        println!(
            "refused: {} of {} answers, {} of {} transfers; chips gone Unresponsive: {went_down:?}",
            refused_answers.len(),
            answered.len(),
            refused_transfers.len(),
            transfers.len()
        );
        assert!(
            went_down.is_empty(),
            "chips went Unresponsive (height, chip): {went_down:?}"
        );
        assert_eq!(sent, JUNK, "the whole flood was sent before height {END}");
        assert!(
            refused_transfers.is_empty(),
            "{} transfers refused, first: {:?}",
            refused_transfers.len(),
            refused_transfers.first()
        );
        assert!(
            refused_answers.is_empty(),
            "{} answers refused, first: {:?}",
            refused_answers.len(),
            refused_answers.first()
        );

        // Every junk transaction got what it deserved.
        let count = |kind: Kind, what: &str| {
            outcomes
                .get(&(kind, what.to_string()))
                .copied()
                .unwrap_or(0)
        };
        let total = |kind: Kind| {
            outcomes
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|(_, n)| n)
                .sum::<u64>()
        };
        assert_eq!(
            count(Kind::Unfunded, "cannot_pay_fee"),
            40_000,
            "{outcomes:?}"
        );
        assert_eq!(
            count(Kind::BadSignature, "bad_signature"),
            20_000,
            "{outcomes:?}"
        );
        assert_eq!(
            count(Kind::BadNonce, "nonce_gap") + count(Kind::BadNonce, "nonce_too_low"),
            20_000,
            "{outcomes:?}"
        );
        assert_eq!(count(Kind::Oversized, "too_large"), 2_000, "{outcomes:?}");
        assert_eq!(total(Kind::Spam), 18_000);
        assert!(count(Kind::Spam, "admitted") > 0, "{outcomes:?}");
        assert!(max_len <= LIMITS.max_txs && max_bytes <= LIMITS.max_bytes);
        assert!(
            max_len >= LIMITS.max_txs / 2,
            "the spam filled the pool: at most {max_len}"
        );
        println!(
            "flood: {sent} junk transactions, outcomes {outcomes:?}; flooded pool at most \
             {max_len} transactions / {max_bytes} bytes; {} answers, {} transfers; {:?}",
            answered.len(),
            transfers.len(),
            target.shared.mempool.figures().await.stats
        );

        // Every transfer of alice finalized, on every validator alike.
        let d = digest_at(&vs[0], END).await.expect("block");
        for v in &vs[1..] {
            assert_eq!(digest_at(v, END).await, Some(d));
        }
        {
            for h in &transfers {
                let at = landed(target, *h)
                    .await
                    .unwrap_or_else(|| panic!("transfer {} not finalized", hex::encode(h)));
                assert_eq!(at.receipt.status, TxStatus::Ok);
            }
            assert_eq!(
                account(target, &alice.public_key()).await.nonce,
                alice_nonce
            );
        }

        // Every chip was paid for every epoch of the flood.
        let recent = target.shared.recent.lock().unwrap();
        let events: Vec<&Event> = (1..=END).flat_map(|h| recent[&h].events.iter()).collect();
        let paid: BTreeSet<([u8; 32], u64)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Reward {
                    chip_id,
                    epoch,
                    amount,
                    ..
                } if *amount > 0 => Some((*chip_id, *epoch)),
                _ => None,
            })
            .collect();
        let (first, last) = (flood_from / EPOCH_LENGTH + 1, flood_until / EPOCH_LENGTH);
        assert!(
            last > first,
            "the flood spans whole epochs ({flood_from}..{flood_until})"
        );
        for epoch in first..last {
            for id in &ids {
                assert!(
                    paid.contains(&(*id, epoch)),
                    "chip {} unpaid in epoch {epoch}",
                    hex::encode(id)
                );
            }
        }
    });
}
