//! Attacks on the validator list and on committee weight, performed through the state
//! transition: filling the list with cheap accounts, and lending compute to an account for
//! the block where the committee is chosen.

mod common;

use common::*;
use commonware_codec::DecodeExt;
use commonware_cryptography::Signer;
use unet_state::TxStatus;
use unet_types::{
    epoch::{validator_key, validator_list_key, AddressList, MAX_VALIDATORS},
    Address, Payload, PrivateKey, SignedTx,
};

fn register_validator(net: &mut Net, account: &PrivateKey, port: u64) -> SignedTx {
    net.tx(
        account,
        Payload::RegisterValidator {
            node_key: account.public_key(),
            p2p_address: format!("127.0.0.1:{}", 10_000 + port),
        },
    )
}

fn listed(net: &Net) -> Vec<Address> {
    AddressList::decode(net.entries[&validator_list_key()].clone())
        .unwrap()
        .0
}

/// Issue 12, item 8a. The validator list has `MAX_VALIDATORS` slots and no bond. Accounts
/// without attested compute cannot take a slot at all. An attacker that passes one chip from
/// account to account can fill the list, but every entry it leaves behind stands at zero
/// compute, so an honest operator with a chip still gets in, and an operator whose compute has
/// been online since the epoch began is never displaced by the attacker.
#[test]
fn the_validator_list_cannot_be_filled_to_keep_operators_out() {
    let rich = PrivateKey::from_seed(1);
    let honest = PrivateKey::from_seed(2);
    // No challenges: the chip passed along stays Online without anyone answering.
    let mut net = Net::with(&[&rich, &honest], |p| p.challenges_per_epoch = 0, 0);
    let genesis = listed(&net);
    assert_eq!(genesis.len(), 4);
    let free = MAX_VALIDATORS - genesis.len();
    let sybils: Vec<PrivateKey> = (0..=free as u64)
        .map(|i| PrivateKey::from_seed(100_000 + i))
        .collect();
    for part in sybils.chunks(500) {
        let txs: Vec<SignedTx> = part
            .iter()
            .map(|k| {
                net.tx(
                    &rich,
                    Payload::Transfer {
                        to: k.public_key(),
                        amount: 100,
                    },
                )
            })
            .collect();
        net.block(&txs);
    }

    // Free accounts: refused, the list does not grow.
    let txs: Vec<SignedTx> = sybils[..50]
        .iter()
        .enumerate()
        .map(|(i, k)| register_validator(&mut net, k, i as u64))
        .collect();
    let statuses = net.block(&txs);
    assert!(
        statuses.iter().all(|s| code(s) == "validator_no_compute"),
        "{statuses:?}"
    );
    assert_eq!(listed(&net).len(), 4);

    // One chip passed along: register, hand the chip to the next account, repeat.
    let chip = make_chip(1, "SMALL", sybils[0].clone());
    let tx = net.register(&chip);
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    let mut txs = Vec::new();
    for (i, k) in sybils[..free].iter().enumerate() {
        txs.push(register_validator(&mut net, k, i as u64));
        txs.push(net.tx(
            k,
            Payload::TransferChip {
                chip_id: chip.id(),
                to: sybils[i + 1].public_key(),
            },
        ));
        if txs.len() >= 400 || i + 1 == free {
            let statuses = net.block(&std::mem::take(&mut txs));
            assert!(statuses.iter().all(|s| *s == TxStatus::Ok), "{statuses:?}");
        }
    }
    assert_eq!(listed(&net).len(), MAX_VALIDATORS);
    // Still within one epoch: every Sybil entry stands at zero (none held the chip since the
    // epoch began).
    assert!(net.height < L, "the fill took more than an epoch");

    // An honest operator with a chip registers: it takes the slot of the newest zero entry
    // (the last fill block's entries; among those, the highest account goes first).
    let last_batch: Vec<Address> = sybils[free - free % 200..free]
        .iter()
        .map(|k| k.public_key())
        .collect();
    let mut newest = last_batch.clone();
    newest.sort();
    let big = make_chip(2, "BIG", honest.clone());
    let tx = net.register(&big);
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    let before = listed(&net);
    let tx = register_validator(&mut net, &honest, 9_999);
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    let list = listed(&net);
    assert_eq!(list.len(), MAX_VALIDATORS);
    assert!(list.contains(&honest.public_key()));
    let gone: Vec<&Address> = before.iter().filter(|a| !list.contains(a)).collect();
    assert_eq!(gone, vec![newest.last().unwrap()]);
    assert!(!net.entries.contains_key(&validator_key(gone[0])));
    for g in &genesis {
        assert!(list.contains(g), "genesis validators have older entries");
    }

    // Next epoch: the operator has been online since the epoch began. The attacker's last
    // holder (online since then too) registers one more account: it displaces the next of
    // the attacker's own zero entries, never the operator.
    run(&mut net, &[&chip, &big], |_, _| true, L + 1);
    let holder = sybils[free].clone();
    let tx = register_validator(&mut net, &holder, 7_777);
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    let after = listed(&net);
    assert_eq!(after.len(), MAX_VALIDATORS);
    assert!(after.contains(&holder.public_key()));
    assert!(after.contains(&honest.public_key()));
    let gone: Vec<&Address> = list.iter().filter(|a| !after.contains(a)).collect();
    assert_eq!(gone, vec![&newest[newest.len() - 2]]);

    // A newcomer without compute is refused even when it could only take a zero slot.
    let tx = register_validator(&mut net, &rich, 5_555);
    assert_eq!(code(&net.block(&[tx])[0]), "validator_no_compute");
}

/// Issue 12, item 8c. Committee weight used to be the account's compute at the one block
/// where the committee is chosen, so a chip owner could lend its chips to a validator for that
/// block. Weight is now the lowest compute of the account over the epoch before: the lent chip
/// counts for neither account, and nothing counts twice.
#[test]
fn compute_lent_for_the_choice_block_does_not_count() {
    let validator = PrivateKey::from_seed(10);
    let lender = PrivateKey::from_seed(11);
    let mut net = Net::new(&[&validator, &lender]);
    let own = make_chip(20, "SMALL", validator.clone());
    let lent = make_chip(21, "BIG", lender.clone());
    let txs = vec![net.register(&own), net.register(&lent)];
    assert!(net.block(&txs).iter().all(|s| *s == TxStatus::Ok));
    let txs = vec![
        register_validator(&mut net, &validator, 1),
        register_validator(&mut net, &lender, 2),
    ];
    assert!(net.block(&txs).iter().all(|s| *s == TxStatus::Ok));
    let refs = [&own, &lent];
    run(&mut net, &refs, |_, _| true, 2 * L - 2);
    // The last block of epoch 1: the lender hands its chip to the validator.
    let tx = net.tx(
        &lender,
        Payload::TransferChip {
            chip_id: lent.id(),
            to: validator.public_key(),
        },
    );
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    assert_eq!(net.height, 2 * L - 1);
    // The committee of epoch 5 is chosen at 2L; the validator returns the chip afterwards
    // (once the cursor is past both chips).
    run(&mut net, &refs, |_, _| true, 2 * L + 3);
    let tx = net.tx(
        &validator,
        Payload::TransferChip {
            chip_id: lent.id(),
            to: lender.public_key(),
        },
    );
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    run(&mut net, &refs, |_, _| true, 3 * L);

    let c5 = net.committee(5);
    let v = c5
        .member(&validator.public_key())
        .expect("validator chosen");
    assert_eq!(v.weight, 32_000, "only its own chip, online all epoch");
    // The lender gave its chip away during epoch 1: it is at most fill (weight 1).
    assert!(c5
        .member(&lender.public_key())
        .is_none_or(|m| m.weight == 1));
    // Epoch 2 (chosen at 3L): the validator held the lent chip only for the first blocks.
    let c6 = net.committee(6);
    assert_eq!(c6.member(&validator.public_key()).unwrap().weight, 32_000);
    assert!(c6
        .member(&lender.public_key())
        .is_none_or(|m| m.weight == 1));
    // Next epoch, with the chip back for all of it, the lender weighs its chip again.
    run(&mut net, &refs, |_, _| true, 4 * L);
    let c7 = net.committee(7);
    assert_eq!(c7.member(&lender.public_key()).unwrap().weight, 96_000);
    assert_eq!(c7.member(&validator.public_key()).unwrap().weight, 32_000);
}
