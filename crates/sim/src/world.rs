//! The starting state: a genesis, then N chips registered directly into it (owners, models and
//! device keys drawn from fixed pools), as registration transactions would have left them.

use crate::{keys::ChipKey, SimConfig};
use anyhow::Result;
use commonware_codec::Encode;
use commonware_cryptography::{Hasher, Sha256, Signer};
use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};
use unet_state::genesis_writes;
use unet_types::{
    chip::{kind, Chip, ChipStatus, Model, Registry},
    genesis::{Allocation, PociGenesis, Validator},
    keys::{account_key, chip_index_key, chip_key, registry_key, Account},
    liveness::{network_compute_key, owner_compute_key, ChipLiveness, NetworkCompute},
    Address, Digest, Genesis, Params, PrivateKey, UNC,
};

/// The three models the simulated chips are spread over (name, rated milli-TOPS).
pub(crate) const MODELS: [(&str, u64); 3] =
    [("SIM-S", 32_000), ("SIM-M", 96_000), ("SIM-L", 989_000)];

/// Intermediate certificates in each chip's chain, as in NVIDIA's device chains (device
/// certificate, three intermediates, root): every rule that reads a chip checks whether any
/// of them is revoked. The chips of a model share their intermediates.
const INTERMEDIATES: usize = 3;

/// The certificate ids (`Chip::chain`) of the intermediates of `model`'s chain.
fn chain_of(model: &str) -> Vec<[u8; 32]> {
    (0..INTERMEDIATES as u8)
        .map(|i| {
            let d = Sha256::hash(&[b"sim-intermediate", model.as_bytes(), &[i]]);
            d.as_ref().try_into().expect("a sha256 digest is 32 bytes")
        })
        .collect()
}

/// The in-memory stand-in for the authenticated store.
pub(crate) type Store = HashMap<Digest, Vec<u8>, foldhash::fast::RandomState>;

/// The state and everything the block loop needs beside it. Cloning shares the keys.
#[derive(Clone)]
pub(crate) struct World {
    pub(crate) params: Params,
    /// The state, standing in for the authenticated store (keys are SHA-256 digests, so a
    /// fast hasher suffices, as in the store's own index).
    pub(crate) state: Store,
    pub(crate) pool: Arc<Vec<ChipKey>>,
    pub(crate) owners: Arc<Vec<PrivateKey>>,
    /// Chip id -> index into `pool`.
    pub(crate) key_of: Arc<HashMap<[u8; 32], usize>>,
    /// Chip id -> index into `owners`.
    pub(crate) owner_of: Arc<HashMap<[u8; 32], usize>>,
    pub(crate) treasury: Address,
}

/// The genesis the simulation starts from: 4 validators, one funded treasury, the three models.
fn genesis(params: &Params) -> Result<Genesis> {
    let validators: Vec<Validator> = (0..4)
        .map(|i| Validator {
            name: format!("v{i}"),
            public_key: PrivateKey::from_seed(10 + i).public_key(),
            p2p_address: format!("127.0.0.1:{}", 4000 + i),
        })
        .collect();
    let treasury = PrivateKey::from_seed(99).public_key();
    let genesis = Genesis {
        chain_id: 1,
        chain_name: "sim".into(),
        genesis_time_ms: 0,
        params: params.clone(),
        consensus_polynomial: String::new(),
        validators,
        allocations: vec![Allocation {
            address: treasury.clone(),
            amount: UNC,
            label: "treasury".into(),
        }],
        poci: PociGenesis {
            allow_devnet_roots: true,
            models: MODELS
                .iter()
                .map(|(n, c)| Model {
                    name: (*n).into(),
                    compute_milli_tops: *c,
                })
                .collect(),
            ..Default::default()
        },
        treasury: Some(unet_types::hexser::to_hex(&treasury)),
    };
    genesis.validate()?;
    Ok(genesis)
}

/// Builds the genesis state plus `config.chips` online chips.
pub(crate) fn build(config: &SimConfig) -> Result<World> {
    let params = Params {
        epoch_length: config.epoch_length,
        challenges_per_epoch: config.challenges_per_epoch,
        response_window: 20,
        ..Params::default()
    };
    let genesis = genesis(&params)?;
    let treasury = PrivateKey::from_seed(99).public_key();
    let pool: Vec<ChipKey> = (0..config.key_pool)
        .map(|_| ChipKey::generate())
        .collect::<Result<_>>()?;
    let owners: Vec<PrivateKey> = (0..config.owners)
        .map(|i| PrivateKey::from_seed(1_000 + i))
        .collect();
    let mut state: Store = genesis_writes(&genesis)?.into_iter().collect();
    let mut net = NetworkCompute::default();
    let mut owner_compute: BTreeMap<usize, u128> = BTreeMap::new();
    let chains: Vec<Vec<[u8; 32]>> = MODELS.iter().map(|(m, _)| chain_of(m)).collect();
    let mut key_of = HashMap::with_capacity(config.chips as usize);
    let mut owner_of = HashMap::with_capacity(config.chips as usize);
    for i in 0..config.chips {
        let digest = Sha256::hash(&[b"sim-chip", &i.to_be_bytes()]);
        let id: [u8; 32] = digest
            .as_ref()
            .try_into()
            .expect("a sha256 digest is 32 bytes");
        let (model, compute) = MODELS[(i % 3) as usize];
        let owner = (i % config.owners) as usize;
        let key = (i as usize) % pool.len();
        let chip = Chip {
            owner: owners[owner].public_key(),
            model: model.into(),
            kind: kind::VENDOR_X509,
            device_key: pool[key].public.clone(),
            serial: format!("SIM-{i}"),
            registered_height: 1,
            status: ChipStatus::Online,
            root: [0; 32],
            chain: chains[(i % 3) as usize].clone(),
            index: i,
            live: ChipLiveness {
                compute,
                online_since: 1,
                ..Default::default()
            },
        };
        state.insert(chip_key(&id), chip.encode().to_vec());
        state.insert(chip_index_key(i), id.encode().to_vec());
        net.adjust(model, compute, true);
        *owner_compute.entry(owner).or_default() += u128::from(compute);
        key_of.insert(id, key);
        owner_of.insert(id, owner);
    }
    for (owner, c) in owner_compute {
        state.insert(
            owner_compute_key(&owners[owner].public_key()),
            c.encode().to_vec(),
        );
    }
    for o in &owners {
        let a = Account {
            balance: 0,
            nonce: 0,
        };
        state.insert(account_key(&o.public_key()), a.encode().to_vec());
    }
    state.insert(network_compute_key(), net.encode().to_vec());
    let mut registry: Registry = genesis.registry()?;
    registry.chip_count = config.chips;
    state.insert(registry_key(), registry.encode().to_vec());
    Ok(World {
        params,
        state,
        pool: Arc::new(pool),
        owners: Arc::new(owners),
        key_of: Arc::new(key_of),
        owner_of: Arc::new(owner_of),
        treasury,
    })
}
