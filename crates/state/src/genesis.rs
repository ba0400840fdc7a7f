//! The state written at height 0.

use commonware_codec::Encode;
use std::collections::BTreeMap;
use unet_types::{
    epoch::{
        committee_key, validator_key, validator_list_key, validator_node_key, AddressList,
        Committee, CommitteeMember, ValidatorInfo,
    },
    genesis::GenesisError,
    keys::{account_key, registry_key, supply_key, Account, Supply},
    rewards::{epoch_state_key, EpochState},
    Digest, Genesis,
};

/// Every entry the genesis document creates: one account per allocation, the supply
/// counters (`genesis` = sum of allocations), and the POCI registry (models, vendor roots,
/// governance).
pub fn genesis_writes(genesis: &Genesis) -> Result<BTreeMap<Digest, Vec<u8>>, GenesisError> {
    let mut writes = BTreeMap::new();
    for a in &genesis.allocations {
        let account = Account {
            balance: a.amount,
            nonce: 0,
        };
        writes.insert(account_key(&a.address), account.encode().to_vec());
    }
    let supply = Supply {
        genesis: genesis.total_allocated(),
        ..Default::default()
    };
    writes.insert(supply_key(), supply.encode().to_vec());
    writes.insert(registry_key(), genesis.registry()?.encode().to_vec());

    // Genesis validators are registered validators (their node key is their account), and
    // form the committees of epochs 0 to 3 with weight 1 each.
    let mut accounts = Vec::new();
    let mut members = Vec::new();
    for v in &genesis.validators {
        let info = ValidatorInfo {
            account: v.public_key.clone(),
            node_key: v.public_key.clone(),
            p2p_address: v.p2p_address.clone(),
            registered_height: 0,
        };
        writes.insert(validator_key(&v.public_key), info.encode().to_vec());
        writes.insert(
            validator_node_key(&v.public_key),
            v.public_key.encode().to_vec(),
        );
        accounts.push(v.public_key.clone());
        members.push(CommitteeMember {
            node_key: v.public_key.clone(),
            account: v.public_key.clone(),
            p2p_address: v.p2p_address.clone(),
            weight: 1,
        });
    }
    accounts.sort();
    members.sort_by(|a, b| a.node_key.cmp(&b.node_key));
    writes.insert(
        validator_list_key(),
        AddressList(accounts).encode().to_vec(),
    );
    for epoch in 0..=3 {
        let committee = Committee {
            epoch,
            members: members.clone(),
        };
        writes.insert(committee_key(epoch), committee.encode().to_vec());
    }
    writes.insert(epoch_state_key(), EpochState::default().encode().to_vec());
    Ok(writes)
}
