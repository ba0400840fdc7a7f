//! Attacks on online proofs and rewards, each performed through the state transition:
//! voiding a miner's batch with a copied answer, dodging the miss penalty, and parameters or
//! inputs at the ends of the integer range.

mod common;

use common::*;
use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::Signer;
use unet_state::{Event, TxStatus};
use unet_types::{
    chip::ChipStatus,
    liveness::{LivenessResponse, MAX_RESPONSES_PER_TX},
    rewards::{epoch_state_key, EpochState},
    Payload, PrivateKey,
};

/// Issue 12, item 6. A miner answers 128 challenges in one transaction; an attacker copies
/// answer 77 into its own transaction and gets it included first. The copy credits chip 77
/// (it is the chip's own signature), and the miner's transaction still credits the other 127:
/// its receipt lists answer 77 as `liveness_already_answered`.
#[test]
fn a_copied_answer_landed_first_does_not_void_the_miner_batch() {
    let miner = PrivateKey::from_seed(1);
    let attacker = PrivateKey::from_seed(2);
    // Dense challenges: every chip waits on one within a couple of blocks.
    let mut net = Net::with(&[&miner, &attacker], |p| p.challenges_per_epoch = 100, 0);
    let chips: Vec<TestChip> = (0..MAX_RESPONSES_PER_TX as u8)
        .map(|i| make_chip(100 + i, "SMALL", miner.clone()))
        .collect();
    for part in chips.chunks(64) {
        let txs: Vec<_> = part.iter().map(|c| net.register(c)).collect();
        assert!(net.block(&txs).iter().all(|s| *s == TxStatus::Ok));
    }
    // Let challenges accumulate (within the response window) until all 128 chips wait.
    let pending = |net: &Net| -> Vec<LivenessResponse> {
        chips
            .iter()
            .filter_map(|c| {
                let p = net.chip(&c.id()).unwrap().live.pending?;
                Some(net.response(c, p.height))
            })
            .collect()
    };
    while pending(&net).len() < chips.len() {
        net.block(&[]);
        assert!(net.height < 10, "chips never all challenged");
    }
    let answers = pending(&net);
    assert_eq!(answers.len(), MAX_RESPONSES_PER_TX);
    assert!(chips
        .iter()
        .all(|c| net.chip(&c.id()).unwrap().status == ChipStatus::Online));

    let k = 77;
    let copied = net.tx(
        &attacker,
        Payload::Liveness {
            responses: vec![answers[k].clone()],
        },
    );
    let batch = net.tx(
        &miner,
        Payload::Liveness {
            responses: answers.clone(),
        },
    );
    let statuses = net.block(&[copied, batch]);
    assert_eq!(statuses, vec![TxStatus::Ok, TxStatus::Ok]);
    assert!(net.receipts[0].skipped.is_empty());
    let skipped: Vec<(u32, [u8; 32], String)> = net.receipts[1]
        .skipped
        .iter()
        .map(|s| (s.index, s.chip_id, s.code.clone()))
        .collect();
    assert_eq!(
        skipped,
        vec![(
            k as u32,
            chips[k].id(),
            "liveness_already_answered".to_string()
        )]
    );
    // Every chip's challenge is answered in this block; none will be counted as a miss.
    let h = net.height;
    for c in &chips {
        let live = net.chip(&c.id()).unwrap().live;
        assert_eq!(live.last_response, h);
        assert!(live.pending.is_none_or(|p| p.height == h));
    }
}

/// Issue 12, item 8b. A chip that missed `max_misses_per_epoch` challenges in epoch `e`
/// forfeits `e`. Misses used to be kept for one epoch only, so missing one more challenge early
/// in `e + 1`, before the cursor reached the chip, erased the misses of `e` and the chip was
/// paid in full. Now the misses of `e` are kept until `e` is paid.
#[test]
fn missing_again_in_the_next_epoch_does_not_erase_the_penalty() {
    let owner = PrivateKey::from_seed(3);
    let mut net = Net::with(&[&owner], |p| p.challenges_per_epoch = 20, 0);
    // Six chips: the cursor pays one per block, so the last one (the dodger) is paid at the
    // sixth block of each epoch, after a miss early in the epoch could land.
    let chips: Vec<TestChip> = (0..6)
        .map(|i| make_chip(40 + i, "SMALL", owner.clone()))
        .collect();
    let txs: Vec<_> = chips.iter().map(|c| net.register(c)).collect();
    assert!(net.block(&txs).iter().all(|s| *s == TxStatus::Ok));
    let x = chips[5].id();
    assert_eq!(net.chip(&x).unwrap().index, 5);
    // The dodger stays silent from the middle of each even epoch into the next one.
    let silent = |h: u64| {
        let even = (h / L).is_multiple_of(2);
        even && h % L >= 6 || !even && h % L < 7
    };
    let epochs = 12;
    run(
        &mut net,
        &chips.iter().collect::<Vec<_>>(),
        |c, h| !(c.id() == x && h >= 2 * L && silent(h)),
        epochs * L + 6,
    );
    // Model of the dodger's misses: each challenge it left unanswered expires `WINDOW + 1`
    // blocks later, counted in the epoch of that block.
    let misses: Vec<u64> = net
        .events
        .iter()
        .filter_map(|(h, e)| match e {
            Event::Challenge { chip_id, .. } if *chip_id == x => Some(*h),
            _ => None,
        })
        .filter(|h| *h >= 2 * L && silent(h + 1))
        .map(|h| h + WINDOW + 1)
        .collect();
    let paid_at = |e: u64| (e + 1) * L + 5;
    let mut dodges = 0;
    for e in 2..epochs - 1 {
        let in_e = misses.iter().filter(|m| **m / L == e).count();
        let early_next = misses.iter().any(|m| (e + 1) * L <= *m && *m <= paid_at(e));
        let weight = net.weight.get(&(e, x)).copied().unwrap_or(0);
        if in_e >= 2 && early_next && weight > 0 {
            dodges += 1;
            assert_eq!(rewards_of(&net, &x, e), None, "epoch {e}: penalty dodged");
        }
        if in_e < 2 {
            assert_eq!(rewards_of(&net, &x, e), Some(expected(&net, &x, e)));
        }
    }
    assert!(dodges > 0, "no epoch set up the dodge: {misses:?}");
    // The honest chips were paid exactly their share throughout.
    for e in 1..epochs - 1 {
        for c in &chips[..5] {
            assert_eq!(
                rewards_of(&net, &c.id(), e),
                Some(expected(&net, &c.id(), e))
            );
        }
    }
}

/// Issue 12, item 9. An answer naming a challenge height at the end of the range used to
/// overflow `challenge_height + response_window` (a panic in a debug build, a wrap to "late"
/// otherwise); it is an answer to no challenge.
#[test]
fn an_answer_for_height_u64_max_is_refused_not_a_panic() {
    let owner = PrivateKey::from_seed(4);
    let mut net = Net::new(&[&owner]);
    let chip = make_chip(60, "SMALL", owner.clone());
    let tx = net.register(&chip);
    net.block(&[tx]);
    for h in [u64::MAX, u64::MAX - WINDOW + 1, u64::MAX - 1] {
        let mut r = net.response(&chip, net.height);
        r.challenge_height = h;
        let tx = net.tx(&owner, Payload::Liveness { responses: vec![r] });
        assert_eq!(code(&net.block(&[tx])[0]), "liveness_not_challenged");
    }
}

/// Issue 12, item 9. Extreme but valid parameters (a response window of half the height range,
/// an epoch as long as the range, `u32::MAX` challenges per epoch) near the top of the height
/// range: a challenge whose deadline lies past `u64::MAX` never expires instead of overflowing,
/// and its answer is accepted.
#[test]
fn extreme_parameters_at_the_end_of_the_height_range() {
    let owner = PrivateKey::from_seed(5);
    let window = u64::MAX / 2;
    let epoch_length = u64::MAX - 1;
    let per_epoch = u32::MAX;
    // The last block of epoch 0 that challenges a chip when the registry holds one.
    let total = u128::from(per_epoch);
    let i = ((total - 1) * u128::from(epoch_length)).div_ceil(total) - 1;
    let challenged = u64::try_from(i).unwrap();
    assert!(challenged > u64::MAX - window);
    let mut net = Net::with(
        &[&owner],
        |p| {
            p.response_window = window;
            p.epoch_length = epoch_length;
            p.challenges_per_epoch = per_epoch;
            p.halving_blocks = u64::MAX;
        },
        challenged - 3,
    );
    // Registered in the block before the one that challenges it.
    let chip = make_chip(61, "BIG", owner.clone());
    let tx = net.register(&chip);
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    assert_eq!(net.height, challenged - 1);
    net.block(&[]);
    assert_eq!(net.challenges_at(challenged), vec![chip.id()]);
    let pending = net.chip(&chip.id()).unwrap().live.pending.unwrap();
    assert_eq!(pending.height, challenged);
    let answer = net.response(&chip, challenged);
    let tx = net.tx(
        &owner,
        Payload::Liveness {
            responses: vec![answer],
        },
    );
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    let live = net.chip(&chip.id()).unwrap().live;
    assert_eq!(live.last_response, challenged + 1);
    // A few more blocks: the chip stays Online and nothing overflows.
    for _ in 0..4 {
        net.block(&[]);
    }
    assert_eq!(net.chip(&chip.id()).unwrap().status, ChipStatus::Online);
    let state = EpochState::decode(net.entries[&epoch_state_key()].clone()).unwrap();
    assert!(state.weight > 0);
}

/// Issue 12, item 9. Shares can never add up past an epoch's emission: with a settlement whose
/// total weight is (corruptly) below one chip's weight, that chip's share is capped at what is
/// left, the settlement still closes with `paid + to_treasury == emission`, and the supply
/// invariant holds. Before, `emission - paid` underflowed at the end of the settlement.
#[test]
fn a_settlement_never_pays_more_than_its_emission() {
    let owner = PrivateKey::from_seed(6);
    let mut net = Net::new(&[&owner]);
    let chips: Vec<TestChip> = (0..2)
        .map(|i| make_chip(70 + i, "SMALL", owner.clone()))
        .collect();
    let txs: Vec<_> = chips.iter().map(|c| net.register(c)).collect();
    net.block(&txs);
    let refs: Vec<&TestChip> = chips.iter().collect();
    // The boundary block pays chip 0; chip 1 is paid in the next block.
    run(&mut net, &refs, |_, _| true, 2 * L);
    let mut state = EpochState::decode(net.entries[&epoch_state_key()].clone()).unwrap();
    let mut s = state.settling.expect("epoch 1 is being paid");
    assert_eq!((s.epoch, s.cursor, s.end), (1, 1, 2));
    assert!(s.paid > 0);
    s.total_weight = 1;
    state.settling = Some(s);
    net.entries
        .insert(epoch_state_key(), state.encode().to_vec());
    run(&mut net, &refs, |_, _| true, 2 * L + 1);
    let settled = net
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::EpochSettled {
                epoch: 1,
                emission,
                paid,
                to_treasury,
            } => Some((*emission, *paid, *to_treasury)),
            _ => None,
        })
        .expect("epoch 1 settled");
    assert_eq!(settled.1 + settled.2, settled.0);
    assert_eq!(settled.1, settled.0, "chip 1 got exactly what was left");
}
