//! Which state entries a block reads and writes.
//!
//! Some keys depend on values: a challenged registry position names a chip id, the chip
//! names its owner. [`touched_keys`] is therefore a fixpoint: call it with what has been
//! loaded so far, load the keys it returns that are not loaded yet, and call again until it
//! returns nothing new (at most four rounds). The cost follows the number of chips the block
//! touches, never the number of chips registered.

use crate::{liveness::challenged_positions, registry, rewards::cursor_ranges, BlockEnv, PreState};
use commonware_codec::DecodeExt;
use std::collections::{BTreeMap, BTreeSet};
use unet_types::{
    chip::{Chip, ChipId, ChipList, GovAction, Registry},
    epoch::{
        committee_key, validator_key, validator_list_key, validator_node_key, AddressList,
        ValidatorInfo, MAX_VALIDATORS,
    },
    keys::{
        account_key, block_hash_key, chip_index_key, chip_key, owner_chips_key, registry_key,
        revoked_cert_key, revoked_chip_key, supply_key,
    },
    liveness::{challenge_due_key, network_compute_key, owner_compute_keys},
    rewards::{epoch_state_key, owner_rewards_key, EpochState},
    Address, Digest, Payload, SignedTx,
};

fn value<'a>(pre: &'a PreState, key: &Digest) -> Option<&'a [u8]> {
    pre.get(key).and_then(|v| v.as_deref())
}

fn decoded<T: DecodeExt<()>>(pre: &PreState, key: &Digest) -> Option<T> {
    value(pre, key).and_then(|b| T::decode(b.to_vec()).ok())
}

/// Every key execution may read or write for this block, given the entries loaded so far.
pub fn touched_keys(env: &BlockEnv<'_>, txs: &[SignedTx], pre: &PreState) -> BTreeSet<Digest> {
    let params = env.params;
    let window = params.registration_window.max(1);
    let l = params.epoch_length.max(1);
    let mut keys = BTreeSet::new();
    // Chips whose record (and owner/chain entries) the block may use; settlement chips also
    // need the owner's account and reward tally of the settled epoch.
    let mut chips: BTreeSet<ChipId> = BTreeSet::new();
    let mut settle: BTreeMap<ChipId, Vec<u64>> = BTreeMap::new();
    let mut accounts: BTreeSet<Address> = BTreeSet::new();

    for k in [
        supply_key(),
        registry_key(),
        epoch_state_key(),
        network_compute_key(),
        challenge_due_key(env.height),
        block_hash_key(env.height.saturating_sub(1) % window),
    ] {
        keys.insert(k);
    }
    accounts.insert(env.proposer.clone());
    if let Some(t) = &env.treasury {
        accounts.insert(t.clone());
    }

    let registry: Option<Registry> = decoded(pre, &registry_key());
    let chip_count = registry.as_ref().map_or(0, |r| r.chip_count);
    let index_slot = |keys: &mut BTreeSet<Digest>, pos: u64| -> Option<ChipId> {
        let k = chip_index_key(pos);
        keys.insert(k);
        decoded::<[u8; 32]>(pre, &k)
    };
    if registry.is_some() {
        for pos in challenged_positions(env, chip_count) {
            if let Some(id) = index_slot(&mut keys, pos) {
                chips.insert(id);
            }
        }
        if let Some(state) = decoded::<EpochState>(pre, &epoch_state_key()) {
            for (epoch, from, to) in cursor_ranges(&state, params, env.height, chip_count) {
                for pos in from..to {
                    if let Some(id) = index_slot(&mut keys, pos) {
                        chips.insert(id);
                        settle.entry(id).or_default().push(epoch);
                    }
                }
            }
        }
    }
    if let Some(ChipList(due)) = decoded(pre, &challenge_due_key(env.height)) {
        chips.extend(due);
    }

    // Committee choice at an epoch's first block.
    let mut validators: BTreeSet<Address> = BTreeSet::new();
    if env.height > 0 && env.height.is_multiple_of(l) {
        keys.insert(validator_list_key());
        keys.insert(committee_key(env.height / l + 2));
        if let Some(AddressList(list)) = decoded(pre, &validator_list_key()) {
            validators.extend(list);
        }
    }

    let mut registrations = 0u64;
    // Owners a chip may have after this block's chip transfers (the settlement after the
    // transactions pays whoever owns the chip then).
    let mut new_owners: BTreeMap<ChipId, BTreeSet<Address>> = BTreeMap::new();
    let mut validator_registrations = 0usize;
    for stx in txs {
        let sender = &stx.tx.sender;
        accounts.insert(sender.clone());
        match &stx.tx.payload {
            Payload::Transfer { to, .. } => {
                accounts.insert(to.clone());
            }
            Payload::RegisterChip {
                anchor_height,
                evidence,
            } => {
                registry::registration_keys(&mut keys, sender, *anchor_height, window, evidence);
                keys.insert(chip_index_key(chip_count + registrations));
                keys.extend(owner_compute_keys(sender));
                registrations += 1;
            }
            Payload::TransferChip { chip_id, to } => {
                chips.insert(*chip_id);
                // The reward cursor may pay this chip after the transfer, to its new owner.
                new_owners.entry(*chip_id).or_default().insert(to.clone());
                keys.insert(owner_chips_key(sender));
                keys.insert(owner_chips_key(to));
                keys.extend(owner_compute_keys(to));
            }
            Payload::DeregisterChip { chip_id } => {
                chips.insert(*chip_id);
                keys.insert(owner_chips_key(sender));
            }
            Payload::Govern { action, .. } => match action {
                GovAction::RevokeChip { chip_id } => {
                    chips.insert(*chip_id);
                    keys.insert(revoked_chip_key(chip_id));
                }
                GovAction::RevokeCertificate { fingerprint } => {
                    keys.insert(revoked_cert_key(fingerprint));
                }
                _ => {}
            },
            Payload::Liveness { responses } => {
                chips.extend(responses.iter().map(|r| r.chip_id));
            }
            Payload::RegisterValidator { node_key, .. } => {
                keys.insert(validator_list_key());
                keys.insert(validator_node_key(node_key));
                validators.insert(sender.clone());
                validator_registrations += 1;
            }
            Payload::DeregisterValidator => {
                keys.insert(validator_list_key());
                validators.insert(sender.clone());
            }
            // Market payloads: planned by `crate::market::plan`.
            Payload::CreateOffer { .. }
            | Payload::UpdateOffer { .. }
            | Payload::WithdrawOffer { .. }
            | Payload::OpenLease { .. }
            | Payload::TopUp { .. }
            | Payload::CloseLease { .. } => {}
        }
    }

    // A registration into a full list displaces the weakest entry: every entry is read.
    if validator_registrations > 0 {
        if let Some(AddressList(list)) = decoded(pre, &validator_list_key()) {
            if list.len() + validator_registrations > MAX_VALIDATORS {
                validators.extend(list);
            }
        }
    }
    for account in &validators {
        let k = validator_key(account);
        keys.insert(k);
        keys.extend(owner_compute_keys(account));
        if let Some(info) = decoded::<ValidatorInfo>(pre, &k) {
            keys.insert(validator_node_key(&info.node_key));
        }
    }
    for id in &chips {
        let k = chip_key(id);
        keys.insert(k);
        if let Some(chip) = decoded::<Chip>(pre, &k) {
            keys.extend(owner_compute_keys(&chip.owner));
            keys.insert(owner_chips_key(&chip.owner));
            for fp in &chip.chain {
                keys.insert(revoked_cert_key(fp));
            }
            if let Some(epochs) = settle.get(id) {
                let owners =
                    std::iter::once(&chip.owner).chain(new_owners.get(id).into_iter().flatten());
                for owner in owners {
                    accounts.insert(owner.clone());
                    for e in epochs {
                        keys.insert(owner_rewards_key(owner, *e));
                    }
                }
            }
        }
    }
    crate::market::plan(env, txs, pre, &mut keys, &mut accounts);
    for a in &accounts {
        keys.insert(account_key(a));
    }
    keys
}

/// Loads the touched keys of a block through `load` until the set is complete.
///
/// `load` returns the current value of a key (`None` = absent). Rounds stop when no new key
/// appears; every round only adds keys, so this terminates.
pub fn load_touched<E>(
    env: &BlockEnv<'_>,
    txs: &[SignedTx],
    mut load: impl FnMut(&[Digest]) -> Result<Vec<Option<Vec<u8>>>, E>,
) -> Result<PreState, E> {
    let mut pre = PreState::new();
    loop {
        let missing: Vec<Digest> = touched_keys(env, txs, &pre)
            .into_iter()
            .filter(|k| !pre.contains_key(k))
            .collect();
        if missing.is_empty() {
            return Ok(pre);
        }
        let values = load(&missing)?;
        pre.extend(missing.into_iter().zip(values));
    }
}
