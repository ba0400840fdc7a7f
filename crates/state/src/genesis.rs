//! The state written at height 0.

use commonware_codec::Encode;
use std::collections::BTreeMap;
use unet_types::{
    genesis::GenesisError,
    keys::{account_key, registry_key, supply_key, Account, Supply},
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
    Ok(writes)
}
