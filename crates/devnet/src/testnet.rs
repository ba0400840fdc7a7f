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
    follow::Upstream,
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
    /// Full nodes: they follow the validators (every validator is an upstream) without
    /// voting, serve the API and forward transactions. Their homes come after the others.
    pub full_nodes: usize,
    /// Follow port of the first node (node `i` serves followers on this + `i`).
    pub base_follow_port: u16,
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
            full_nodes: 0,
            base_follow_port: 30350,
        }
    }
}

impl TestnetSpec {
    /// Every node: validators, followers, full nodes.
    pub fn nodes(&self) -> usize {
        self.validators + self.followers + self.full_nodes
    }

    /// Fails if two kinds of port of the nodes would overlap or pass 65535.
    pub fn check_ports(&self) -> Result<()> {
        let n = self.nodes() as u32;
        let ranges = [
            ("P2P", self.base_p2p_port),
            ("API", self.base_rpc_port),
            ("follow", self.base_follow_port),
        ];
        for (name, base) in ranges {
            if base as u32 + n > u16::MAX as u32 + 1 {
                bail!("{n} nodes from {name} port {base} pass 65535");
            }
        }
        for (i, (a, x)) in ranges.iter().enumerate() {
            for (b, y) in &ranges[i + 1..] {
                let (x, y) = (*x as u32, *y as u32);
                if x < y + n && y < x + n {
                    bail!(
                        "the {a} ports {x}.. and the {b} ports {y}.. of {n} nodes overlap; \
                         choose other base ports"
                    );
                }
            }
        }
        Ok(())
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
    let total = spec.nodes();
    spec.check_ports()?;
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
    let follow_address = |i: usize| -> Result<std::net::SocketAddr> {
        Ok(format!("{}:{}", spec.host, spec.base_follow_port + i as u16).parse()?)
    };
    // Every validator is a full node's upstream (tried in turn from a different one each).
    let upstreams = (0..spec.validators)
        .map(|i| {
            Ok(Upstream {
                key: keys[i].public_key(),
                address: follow_address(i)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let first_full = spec.validators + spec.followers;
    let mut homes = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let home = out.join(format!("node{i}"));
        fs::create_dir_all(home.join("keys"))?;
        let mut config = NodeConfig::new(
            &format!("node{i}"),
            format!("{}:{}", spec.host, spec.base_p2p_port + i as u16).parse()?,
            format!("{}:{}", spec.host, spec.base_rpc_port + i as u16).parse()?,
        );
        config.follow.listen = Some(follow_address(i)?);
        if i < spec.validators {
            // The other validators: what it follows if it drops out of every committee.
            let mut order = upstreams.clone();
            order.rotate_left(i);
            order.remove(0);
            config.follow.upstreams = order;
        } else if i >= first_full {
            config.follow.full = true;
            // Full node j tries validator j first (then the rest in turn), so full nodes
            // spread over the validators instead of all filling validator 0's places.
            let mut order = upstreams.clone();
            order.rotate_left((i - first_full) % spec.validators);
            config.follow.upstreams = order;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use unet_node::home::Home;

    /// Full node homes follow every validator (by key and follow address, each from a
    /// different first one) and never hold a share; every node serves followers on its own port; overlapping port ranges are refused.
    #[test]
    fn full_node_homes_follow_every_validator() {
        let dir = tempfile::tempdir().unwrap();
        let spec = TestnetSpec {
            validators: 2,
            full_nodes: 2,
            base_p2p_port: 30000,
            base_follow_port: 30100,
            base_rpc_port: 30200,
            ..TestnetSpec::default()
        };
        let homes = generate_testnet(&spec, dir.path()).unwrap();
        assert_eq!(homes.len(), 4);
        let loaded: Vec<Home> = homes.iter().map(|h| Home::load(h).unwrap()).collect();
        let want: Vec<Upstream> = loaded[..2]
            .iter()
            .enumerate()
            .map(|(i, h)| Upstream {
                key: h.identity.public_key(),
                address: format!("127.0.0.1:{}", 30100 + i).parse().unwrap(),
            })
            .collect();
        for (i, h) in loaded.iter().enumerate() {
            assert_eq!(
                h.config.follow.listen,
                Some(format!("127.0.0.1:{}", 30100 + i).parse().unwrap())
            );
            assert_eq!(h.is_full_node(), i >= 2, "node{i}");
            if i >= 2 {
                // Every validator, starting from a different one for each full node.
                let mut rotated = want.clone();
                rotated.rotate_left(i - 2);
                assert_eq!(h.config.follow.upstreams, rotated);
                assert!(!h.secrets.holds_any_share());
            } else {
                // A genesis validator names the others, never itself: it follows them only
                // once out of every committee.
                let mut others = want.clone();
                others.rotate_left(i);
                others.remove(0);
                assert_eq!(h.config.follow.upstreams, others);
                assert!(h.secrets.holds_any_share());
            }
        }
        let overlapping = TestnetSpec {
            base_follow_port: 30202,
            ..spec
        };
        let err = overlapping.check_ports().unwrap_err().to_string();
        assert!(err.contains("overlap"), "{err}");
    }
}
