//! `unet testnet`: node homes for a whole local network.

use crate::fixtures::devnet_poci;
use anyhow::{anyhow, bail, Result};
use commonware_codec::Encode;
use commonware_consensus::types::Epoch;
use commonware_cryptography::{ed25519, Signer};
use commonware_math::algebra::Random as _;
use std::{
    fs,
    path::{Path, PathBuf},
};
use unet_node::{
    epochs::SecretStore,
    home::{
        deal_genesis, epoch_zero_info, write_secret, NodeConfig, GENESIS_EPOCH_FILE, SECRETS_FILE,
    },
};
use unet_types::{
    genesis::{Allocation, Validator, GENESIS_ALLOCATION_CAP},
    Genesis, Params, PrivateKey,
};

/// What `unet testnet` generates.
#[derive(Clone, Debug)]
pub struct TestnetSpec {
    /// Genesis validators to generate (node `i` gets ports `base + i`).
    pub validators: usize,
    /// The chain id of the genesis.
    pub chain_id: u64,
    /// The chain name of the genesis.
    pub chain_name: String,
    /// Host the nodes listen on and dial each other at.
    pub host: String,
    /// P2P port of the first node.
    pub base_p2p_port: u16,
    /// API port of the first node.
    pub base_rpc_port: u16,
    /// Protocol parameters of the genesis.
    pub params: Params,
    /// Genesis time, Unix ms.
    pub genesis_time_ms: u64,
    /// Extra nodes that are not genesis validators: they start as followers and join a
    /// committee once registered (`unet validator register`) and selected by the state.
    pub followers: usize,
}

impl Default for TestnetSpec {
    fn default() -> Self {
        Self {
            validators: 4,
            chain_id: 7701,
            chain_name: "unet-devnet".into(),
            host: "127.0.0.1".into(),
            base_p2p_port: 30300,
            base_rpc_port: 8545,
            params: Params::default(),
            genesis_time_ms: 0,
            followers: 0,
        }
    }
}

/// Writes `out/node{i}/` for every validator plus `out/faucet.key` (the account holding the
/// whole genesis allocation on a devnet) and `out/genesis_epoch.hex` (what a node joining
/// later needs next to `genesis.toml`). Epoch zero's threshold shares come from a trusted
/// dealer run here, which is fine for a local network; from then on the validators reshare
/// the key among each epoch's committee themselves (commonware-glue `dkg::reshare`), and a
/// public network would create the first key with glue's one-shot DKG (`dkg::bootstrap`).
pub fn generate_testnet(spec: &TestnetSpec, out: &Path) -> Result<Vec<PathBuf>> {
    let max = unet_types::epoch::MAX_COMMITTEE;
    if spec.validators == 0 || spec.validators > max {
        bail!("validators must be between 1 and {max} (the largest committee)");
    }
    let mut rng = commonware_utils::sys_rng();
    let total = spec.validators + spec.followers;
    if total > u16::MAX as usize {
        bail!("too many nodes");
    }
    let keys: Vec<ed25519::PrivateKey> = (0..total)
        .map(|_| ed25519::PrivateKey::random(&mut rng))
        .collect();
    let faucet = PrivateKey::random(&mut rng);
    let governor = PrivateKey::random(&mut rng);
    let validators: Vec<Validator> = keys[..spec.validators]
        .iter()
        .enumerate()
        .map(|(i, k)| Validator {
            name: format!("node{i}"),
            public_key: k.public_key(),
            p2p_address: format!("{}:{}", spec.host, spec.base_p2p_port + i as u16),
        })
        .collect();
    let (output, shares) = deal_genesis(&mut rng, &validators)?;
    let genesis = Genesis {
        chain_id: spec.chain_id,
        chain_name: spec.chain_name.clone(),
        genesis_time_ms: spec.genesis_time_ms,
        params: spec.params.clone(),
        consensus_polynomial: hex::encode(output.public().encode()),
        validators,
        allocations: vec![Allocation {
            address: faucet.public_key(),
            amount: GENESIS_ALLOCATION_CAP,
            label: "devnet faucet (stands in for the 3% genesis allocation)".into(),
        }],
        poci: devnet_poci(&governor.public_key())?,
        treasury: Some(unet_types::hexser::to_hex(&governor.public_key())),
    };
    genesis.validate()?;
    let epoch_zero = epoch_zero_info(&genesis, output);
    let epoch_zero_hex = format!("{}\n", hex::encode(epoch_zero.encode()));
    fs::create_dir_all(out)?;
    fs::write(out.join(GENESIS_EPOCH_FILE), &epoch_zero_hex)?;
    write_secret(&out.join("faucet.key"), &faucet)?;
    write_secret(&out.join("governance.key"), &governor)?;
    fs::write(out.join("genesis.toml"), genesis.to_toml())?;
    let mut homes = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let home = out.join(format!("node{i}"));
        fs::create_dir_all(home.join("keys"))?;
        let config = NodeConfig::new(
            &format!("node{i}"),
            format!("{}:{}", spec.host, spec.base_p2p_port + i as u16).parse()?,
            format!("{}:{}", spec.host, spec.base_rpc_port + i as u16).parse()?,
        );
        fs::write(home.join("config.toml"), toml::to_string_pretty(&config)?)?;
        fs::write(home.join("genesis.toml"), genesis.to_toml())?;
        fs::write(home.join(GENESIS_EPOCH_FILE), &epoch_zero_hex)?;
        write_secret(&home.join("keys/identity.key"), key)?;
        if i < spec.validators {
            let share = shares
                .get_value(&key.public_key())
                .ok_or_else(|| anyhow!("no share dealt to validator {i}"))?;
            SecretStore::open(&home.join(SECRETS_FILE))?.insert_share(Epoch::zero(), share)?;
        }
        homes.push(home);
    }
    Ok(homes)
}
