//! Online proofs, rewards and committee choice through the state transition, block by block.
//!
//! The harness in `common` keeps an independent model of which chips are Online at the end of
//! every block and computes each chip's expected reward from the emission schedule; the chain
//! must pay exactly that. The supply invariant and the mined cap are checked after every block.

mod common;

use common::*;
use commonware_cryptography::{Hasher, Sha256, Signer};
use unet_poci::certificate_id;
use unet_state::{Event, TxStatus};
use unet_types::{
    chip::{Approval, ChipStatus, GovAction, GOV_NAMESPACE},
    epoch::Committee,
    liveness::{challenge_positions, response_digest},
    market::keys::chip_market_key,
    Address, Amount, Payload, PrivateKey, UNC,
};

#[test]
fn answering_chips_earn_exactly_their_share_and_an_offline_chip_stops_then_recovers() {
    let owners: Vec<PrivateKey> = (1..=3).map(PrivateKey::from_seed).collect();
    let mut net = Net::new(&owners.iter().collect::<Vec<_>>());
    let a = make_chip(1, "SMALL", owners[0].clone());
    let b = make_chip(2, "BIG", owners[1].clone());
    let c = make_chip(3, "SMALL", owners[2].clone());
    let txs = vec![net.register(&a), net.register(&b), net.register(&c)];
    assert!(net.block(&txs).iter().all(|s| *s == TxStatus::Ok));
    for chip in [&a, &b, &c] {
        assert_eq!(net.chip(&chip.id()).unwrap().status, ChipStatus::Online);
    }

    // Epochs 0..=2: everyone answers. Epoch 3 onwards: c's miner is down until height 100.
    let down = 3 * L..100;
    run(
        &mut net,
        &[&a, &b, &c],
        |chip, h| !(chip.id() == c.id() && down.contains(&h)),
        8 * L,
    );

    // c went Unresponsive exactly one window after its first unanswered challenge, and came
    // back Online when it answered again.
    let first_missed = net
        .events
        .iter()
        .find_map(|(h, e)| match e {
            Event::Challenge { chip_id, .. } if *chip_id == c.id() && down.contains(&(h + 1)) => {
                Some(*h)
            }
            _ => None,
        })
        .expect("c was challenged while down");
    let went_down = net.events.iter().find_map(|(h, e)| match e {
        Event::ChipStatus { chip_id, to, .. }
            if *chip_id == c.id() && *to == ChipStatus::Unresponsive =>
        {
            Some(*h)
        }
        _ => None,
    });
    assert_eq!(went_down, Some(first_missed + WINDOW + 1));
    let came_back = net.events.iter().find_map(|(h, e)| match e {
        Event::ChipStatus {
            chip_id, from, to, ..
        } if *chip_id == c.id()
            && *from == ChipStatus::Unresponsive
            && *to == ChipStatus::Online =>
        {
            Some(*h)
        }
        _ => None,
    });
    let came_back = came_back.expect("c recovered");
    assert!(came_back >= 100);
    assert_eq!(net.chip(&c.id()).unwrap().status, ChipStatus::Online);

    // Every settled epoch paid exactly the model's shares (epochs 1..=6 are settled by now).
    let mut paid_total = 0;
    for epoch in 1..=6 {
        for chip in [&a, &b, &c] {
            let want = expected(&net, &chip.id(), epoch);
            let got = rewards_of(&net, &chip.id(), epoch).unwrap_or(0);
            let forfeited = chip.id() == c.id() && {
                let misses = net
                    .events
                    .iter()
                    .filter(|(h, e)| {
                        h / L == epoch
                            && matches!(e, Event::ChipStatus { chip_id, to, .. }
                                if *chip_id == c.id() && *to == ChipStatus::Unresponsive)
                    })
                    .count();
                misses >= 2
            };
            if !forfeited {
                assert_eq!(got, want, "epoch {epoch} chip {}", hex::encode(chip.id()));
            }
            paid_total += got;
        }
    }
    assert!(paid_total > 0);
    // While fully down (an epoch inside 60..100 where c was unresponsive throughout), c earns
    // nothing; a and b earn in proportion 1:3.
    let fully_down = (3..=4)
        .find(|e| !net.weight.contains_key(&(*e, c.id())))
        .expect("an epoch with c offline throughout");
    assert_eq!(rewards_of(&net, &c.id(), fully_down), None);
    let (ra, rb) = (
        rewards_of(&net, &a.id(), fully_down).unwrap(),
        rewards_of(&net, &b.id(), fully_down).unwrap(),
    );
    assert!(
        rb == 3 * ra || rb == 3 * ra + 1 || rb + 1 == 3 * ra,
        "{ra} {rb}"
    );
    // c earns again after recovering.
    assert!(rewards_of(&net, &c.id(), 6).unwrap_or(0) > 0);
    // The chip record remembers its recent epochs exactly, and the lifetime total.
    for chip in [&a, &b] {
        let live = net.chip(&chip.id()).unwrap().live;
        for epoch in 5..=6 {
            assert_eq!(live.reward_of(epoch), rewards_of(&net, &chip.id(), epoch));
        }
        let total: Amount = (0..8).filter_map(|e| rewards_of(&net, &chip.id(), e)).sum();
        assert_eq!(live.total_rewards, total);
    }

    // Dust went to the treasury: every settled epoch's emission is fully accounted for.
    for (_, e) in &net.events {
        if let Event::EpochSettled {
            emission,
            paid,
            to_treasury,
            ..
        } = e
        {
            assert_eq!(paid + to_treasury, *emission);
        }
    }
}

#[test]
fn a_revoked_chip_stops_earning_at_once() {
    let owners: Vec<PrivateKey> = (1..=2).map(PrivateKey::from_seed).collect();
    let mut net = Net::new(&owners.iter().collect::<Vec<_>>());
    let a = make_chip(11, "SMALL", owners[0].clone());
    let r = make_chip(12, "SMALL", owners[1].clone());
    let txs = vec![net.register(&a), net.register(&r)];
    net.block(&txs);
    run(&mut net, &[&a, &r], |_, _| true, 2 * L + 5);
    let action = GovAction::RevokeChip { chip_id: r.id() };
    let msg = action.approval_message(CHAIN, 0);
    let approvals = vec![Approval {
        governor: gov().public_key(),
        signature: gov().sign(GOV_NAMESPACE, &msg),
    }];
    let tx = net.tx(&gov(), Payload::Govern { action, approvals });
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    let revoked_at = net.height;
    assert_eq!(net.chip(&r.id()).unwrap().status, ChipStatus::Revoked);
    run(&mut net, &[&a, &r], |_, _| true, 5 * L);
    // r forfeits the epoch it was revoked in and earns nothing after; a keeps earning.
    for epoch in (revoked_at / L)..=3 {
        assert_eq!(rewards_of(&net, &r.id(), epoch), None, "epoch {epoch}");
        assert!(rewards_of(&net, &a.id(), epoch).unwrap() > 0);
    }
    assert!(rewards_of(&net, &r.id(), 1).unwrap() > 0);
    // Its answers are refused.
    let resp = net.response(&r, net.height);
    let tx = net.tx(
        &owners[1],
        Payload::Liveness {
            responses: vec![resp],
        },
    );
    let s = net.block(&[tx]);
    assert!(code(&s[0]).starts_with("liveness_"), "{s:?}");
}

#[test]
fn bad_liveness_answers_are_refused_with_their_own_codes() {
    let owners: Vec<PrivateKey> = (1..=2).map(PrivateKey::from_seed).collect();
    let mut net = Net::new(&owners.iter().collect::<Vec<_>>());
    let a = make_chip(21, "SMALL", owners[0].clone());
    let b = make_chip(22, "SMALL", owners[1].clone());
    let txs = vec![net.register(&a), net.register(&b)];
    net.block(&txs);
    // Advance until a is challenged.
    let challenged_at = loop {
        net.block(&[]);
        if net.challenges_at(net.height).contains(&a.id()) {
            break net.height;
        }
        assert!(net.height < 10 * L, "a never challenged");
    };
    let good = net.response(&a, challenged_at);
    let o = &owners[0];

    // Not challenged at that height.
    let mut r = good.clone();
    r.challenge_height -= 1;
    let t = net.tx(o, Payload::Liveness { responses: vec![r] });
    // Signed by another chip's key.
    let mut forged = good.clone();
    let digest = response_digest(
        CHAIN,
        challenged_at,
        &Sha256::hash(&[b"beacon", &challenged_at.to_be_bytes()]),
        &a.id(),
    );
    forged.proof = b.se.sign_digest(&digest).unwrap();
    let t2 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![forged],
        },
    );
    // Signed by a's key but over b's digest (an answer for another chip).
    let mut other = good.clone();
    let digest_b = response_digest(
        CHAIN,
        challenged_at,
        &Sha256::hash(&[b"beacon", &challenged_at.to_be_bytes()]),
        &b.id(),
    );
    other.proof = a.se.sign_digest(&digest_b).unwrap();
    let t3 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![other],
        },
    );
    // Garbage proof bytes.
    let mut garbage = good.clone();
    garbage.proof = vec![0xff; 7];
    let t4 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![garbage],
        },
    );
    // Unknown chip.
    let mut unknown = good.clone();
    unknown.chip_id = [9; 32];
    let t5 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![unknown],
        },
    );
    // The good answer twice in one transaction: the first applies, the copy is skipped.
    let t6 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![good.clone(), good.clone()],
        },
    );
    // The same answer again in the same block: already answered.
    let t7 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![good.clone()],
        },
    );
    let codes: Vec<String> = net
        .block(&[t, t2, t3, t4, t5, t6, t7])
        .iter()
        .map(code)
        .collect();
    assert_eq!(
        codes,
        vec![
            "liveness_not_challenged",
            "liveness_bad_proof",
            "liveness_bad_proof",
            "liveness_bad_proof",
            "liveness_unknown_chip",
            "ok",
            "liveness_already_answered",
        ]
    );
    // Failed receipts list the answer too; the applied one lists only its skipped copy.
    let skipped: Vec<(u32, String)> = net.receipts[5]
        .skipped
        .iter()
        .map(|s| (s.index, s.code.clone()))
        .collect();
    assert_eq!(skipped, vec![(1, "liveness_duplicate".to_string())]);
    assert_eq!(net.receipts[5].skipped[0].chip_id, a.id());
    assert_eq!(net.receipts[1].skipped.len(), 1);
    assert_eq!(net.chip(&a.id()).unwrap().live.pending, None);

    // Outside the window: wait for b's next challenge and answer one block too late.
    let at = loop {
        net.block(&[]);
        if net.challenges_at(net.height).contains(&b.id()) {
            break net.height;
        }
    };
    for _ in 0..WINDOW {
        net.block(&[]);
    }
    let late = net.response(&b, at);
    let t = net.tx(
        &owners[1],
        Payload::Liveness {
            responses: vec![late],
        },
    );
    assert_eq!(code(&net.block(&[t])[0]), "liveness_late");
    assert_eq!(
        net.chip(&b.id()).unwrap().status,
        ChipStatus::Unresponsive,
        "the unanswered challenge expired"
    );
}

#[test]
fn the_committee_follows_online_attested_compute() {
    let owner = PrivateKey::from_seed(50);
    let mut net = Net::new(&[&owner]);
    let genesis_committee = net.committee(0);
    assert_eq!(genesis_committee.members.len(), 4);
    assert_eq!(
        net.committee(2),
        Committee {
            epoch: 2,
            ..genesis_committee.clone()
        }
    );
    let mut fill: Vec<Address> = genesis_committee
        .members
        .iter()
        .map(|m| m.node_key.clone())
        .collect();
    fill.sort();

    // The chip owner registers a chip and then a validator node.
    let node = PrivateKey::from_seed(51).public_key();
    let chip = make_chip(31, "BIG", owner.clone());
    let c = net.register(&chip);
    let reg = net.tx(
        &owner,
        Payload::RegisterValidator {
            node_key: node.clone(),
            p2p_address: "127.0.0.1:4100".into(),
        },
    );
    let bad = net.tx(
        &owner,
        Payload::RegisterValidator {
            node_key: genesis_committee.members[0].node_key.clone(),
            p2p_address: "127.0.0.1:4101".into(),
        },
    );
    let bad_addr = net.tx(
        &owner,
        Payload::RegisterValidator {
            node_key: node.clone(),
            p2p_address: "not an address".into(),
        },
    );
    let codes: Vec<String> = net
        .block(&[c, reg, bad, bad_addr])
        .iter()
        .map(code)
        .collect();
    assert_eq!(
        codes,
        vec![
            "ok",
            "ok",
            "validator_node_key_taken",
            "validator_bad_address"
        ]
    );
    // At the first block of epoch 1 the committee of epoch 4 is chosen by the compute floor
    // over epoch 0, which the chip joined halfway: still the genesis committee.
    run(&mut net, &[&chip], |_, _| true, L);
    assert_eq!(net.committee(4).members, genesis_committee.members);
    // Online for the whole of epoch 1: the committee of epoch 5 (chosen at 2L) holds the new
    // validator (96 TOPS) plus the three genesis members with the lowest node keys as fill.
    run(&mut net, &[&chip], |_, _| true, 2 * L);
    let c5 = net.committee(5);
    assert_eq!(c5.members.len(), 4);
    assert_eq!(
        c5.member(&node).expect("new validator chosen").weight,
        96_000
    );
    for k in &fill[..3] {
        assert!(c5.member(k).is_some());
    }
    assert!(c5.member(&fill[3]).is_none());

    // A second operator with a smaller chip joins in epoch 2; in epoch 3 the first one's chip
    // goes offline. The committee of epoch 7 (chosen at 4L, floors over epoch 3) ranks the
    // second operator first, and the first one no longer carries any weight (at most it is
    // kept as fill, with weight 1).
    let owner2 = PrivateKey::from_seed(60);
    let fund = net.tx(
        &owner,
        Payload::Transfer {
            to: owner2.public_key(),
            amount: UNC,
        },
    );
    net.block(&[fund]);
    let node2 = PrivateKey::from_seed(61).public_key();
    let chip2 = make_chip(32, "SMALL", owner2.clone());
    let c2 = net.register(&chip2);
    let reg2 = net.tx(
        &owner2,
        Payload::RegisterValidator {
            node_key: node2.clone(),
            p2p_address: "127.0.0.1:4102".into(),
        },
    );
    assert!(net.block(&[c2, reg2]).iter().all(|s| *s == TxStatus::Ok));
    run(&mut net, &[&chip, &chip2], |_, _| true, 3 * L);
    // Chosen at 3L: the second operator joined during epoch 2, so it does not count yet.
    let c6 = net.committee(6);
    assert_eq!(c6.member(&node).unwrap().weight, 96_000);
    assert!(c6.member(&node2).is_none());
    run(
        &mut net,
        &[&chip, &chip2],
        |c, _| c.id() == chip2.id(),
        4 * L,
    );
    assert_eq!(
        net.chip(&chip.id()).unwrap().status,
        ChipStatus::Unresponsive
    );
    let c7 = net.committee(7);
    assert_eq!(c7.members.len(), 4);
    assert_eq!(c7.member(&node2).unwrap().weight, 32_000);
    assert!(c7.member(&node).is_none_or(|m| m.weight == 1));
    assert_eq!(c7.total_weight(), 32_000 + 3);
}

/// Liveness blocks load their pre-state in as many planning rounds as fetches: challenged
/// positions name chips, chips name their owners' entries, and the round that declares the
/// last of those looks only at loaded values, so no round runs just to find nothing
/// missing. What is loaded is the whole fixpoint (a plan from scratch finds nothing more).
#[test]
fn liveness_blocks_load_without_a_confirming_round() {
    let (mut net, chips) = registered(3);
    let all: Vec<&TestChip> = chips.iter().collect();
    let mut seen = Vec::new();
    // Two epochs: challenges, answers, expiries and the settlement cursor's payments.
    while net.height < 3 * L {
        let env = net.next_env();
        // `load_counted` also checks the pre-state is the whole fixpoint.
        let (_, fetches, rounds) = net.state.load_counted(&env, &[]);
        seen.push((env.height, fetches, rounds));
        let next = net.height + 1;
        run(&mut net, &all, |_, _| true, next);
    }
    // Blocks that read chips take three or four fetches (registry and cursor, positions,
    // records, what the records name), each its own round. A block that reads no chip
    // fetches once and needs a second round, because its first round waited for the
    // registry entry.
    assert!(seen.iter().filter(|(_, f, _)| *f >= 3).count() > 2 * L as usize / 2);
    for (height, fetches, rounds) in &seen {
        let expected = if *fetches >= 2 { *fetches } else { 2 };
        assert_eq!(*rounds, expected, "height {height}: {seen:?}");
    }
}

/// An expiring challenge takes the chip offline only if it is still pending, so only then is
/// the chip's market entry (which a chip going offline closes) loaded: a chip that answered
/// in time is read at the expiry but not planned as going offline. Execution stays right
/// either way (it reads only what the plan loaded; the harness checks the fixpoint).
#[test]
fn an_answered_chip_is_not_planned_offline_at_its_expiry() {
    let (mut net, chips) = registered(4);
    let all: Vec<&TestChip> = chips.iter().collect();
    // The first chip never answers; the others always do.
    let silent = chips[0].id();
    let (mut answered_checked, mut silent_checked) = (false, false);
    while net.height < 4 * L && !(answered_checked && silent_checked) {
        let env = net.next_env();
        let height = env.height;
        let expiring = net.challenges_at(height.saturating_sub(WINDOW + 1));
        let pre = net.state.load(&env, &[]);
        let planned: Vec<([u8; 32], bool)> = expiring
            .iter()
            .filter(|id| net.chip(id).unwrap().status == ChipStatus::Online)
            .map(|id| (*id, pre.contains_key(&chip_market_key(id))))
            .collect();
        run(&mut net, &all, |c, _| c.id() != silent, height);
        // A chip challenged again in this block is planned for that reason.
        let challenged = net.challenges_at(height);
        for (id, planned) in planned {
            if id == silent {
                assert!(planned, "height {height}: a silent chip's expiry");
                silent_checked = true;
            } else if !challenged.contains(&id) {
                assert!(!planned, "height {height}: an answered chip");
                answered_checked = true;
            }
        }
    }
    assert!(answered_checked && silent_checked);
}

/// The block's up-front answer checks decode each answered chip and hand that record to the
/// answer (`Working::stash_chip`). A transfer earlier in the same block rewrites the record:
/// the answer must build on the transferred record, or it would write the old owner back
/// and undo the transfer.
#[test]
fn an_answer_after_a_transfer_in_the_same_block_keeps_the_new_owner() {
    let (mut net, chips) = registered(1);
    let chip = &chips[0];
    let challenged_at = loop {
        net.block(&[]);
        if net.challenges_at(net.height).contains(&chip.id()) {
            break net.height;
        }
        assert!(net.height < 10 * L, "never challenged");
    };
    let buyer = PrivateKey::from_seed(77);
    let transfer = net.tx(
        &chip.owner,
        Payload::TransferChip {
            chip_id: chip.id(),
            to: buyer.public_key(),
        },
    );
    let response = net.response(chip, challenged_at);
    let answer = net.tx(
        &chip.owner,
        Payload::Liveness {
            responses: vec![response],
        },
    );
    assert_eq!(net.block(&[transfer, answer]), vec![TxStatus::Ok; 2]);
    assert!(net.receipts.iter().all(|r| r.skipped.is_empty()));
    let after = net.chip(&chip.id()).unwrap();
    assert_eq!(after.owner, buyer.public_key(), "the transfer stands");
    assert_eq!(after.live.pending, None, "the answer was applied");
    assert_eq!(after.live.last_response, net.height);
}

/// A challenge revokes a chip when a certificate of its chain is revoked, and only for such a
/// chip does the planner read its owner's compute entries and chip list. Here the vendor
/// intermediate is revoked in the very block whose beacon challenges the chip, and the
/// revocation runs before the challenges: the plan must still load what revoking the chip
/// changes (the harness fails a block whose execution reads an unplanned key, and checks the
/// compute and supply invariants after it).
#[test]
fn a_certificate_revoked_in_the_block_that_challenges_its_chip_revokes_the_chip_there() {
    let (mut net, chips) = registered(4);
    let all: Vec<&TestChip> = chips.iter().collect();
    let victim = loop {
        assert!(net.height < 10 * L, "no chip was challenged while idle");
        let env = net.next_env();
        let positions = challenge_positions(
            &env.beacon,
            env.height,
            chips.len() as u64,
            net.params.challenges_per_epoch,
            net.params.epoch_length,
        );
        let idle = chips.iter().find(|c| {
            let chip = net.chip(&c.id()).unwrap();
            positions.contains(&chip.index) && chip.live.pending.is_none()
        });
        if let Some(c) = idle {
            break c;
        }
        let next = net.height + 1;
        run(&mut net, &all, |_, _| true, next);
    };
    let action = GovAction::RevokeCertificate {
        fingerprint: certificate_id(ca().intermediate_der()).unwrap(),
    };
    let msg = action.approval_message(CHAIN, 0);
    let approvals = vec![Approval {
        governor: gov().public_key(),
        signature: gov().sign(GOV_NAMESPACE, &msg),
    }];
    // Anyone may carry the governors' approvals: a funded owner does.
    let carrier = chips[0].owner.clone();
    let tx = net.tx(&carrier, Payload::Govern { action, approvals });
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    assert_eq!(net.chip(&victim.id()).unwrap().status, ChipStatus::Revoked);
    assert!(net.events.iter().any(|(h, e)| *h == net.height
        && matches!(e, Event::ChipStatus { chip_id, to: ChipStatus::Revoked, .. }
            if *chip_id == victim.id())));
}
