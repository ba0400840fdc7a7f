//! A node's home directory: configuration, genesis, keys; and generating a whole testnet.
//!
//! ```text
//! HOME/config.toml         name, listen addresses, data directory, log filter
//! HOME/genesis.toml        the network's genesis document (same on every node)
//! HOME/genesis_epoch.hex   epoch zero's public description (threshold output, committee,
//!                          directory), hex; same on every node, committed by the genesis block
//! HOME/keys/identity.key   ed25519 identity (consensus participant + p2p), hex, mode 0600
//! HOME/keys/secrets.json   threshold shares and reshare secrets by epoch, mode 0600
//! HOME/data/               storage (state, blocks, certificates, consensus and reshare journals)
//! ```
//!
//! A node whose identity is not a genesis validator runs as a follower (it verifies and
//! applies finalized blocks) until the state selects it into a committee; glue's reshare then
//! deals it a share and it starts signing.

use crate::epochs::{genesis_committee, transport_address, SecretStore};
use anyhow::{anyhow, bail, Context as _, Result};
use commonware_codec::{Decode, DecodeExt, Encode};
use commonware_consensus::types::Epoch;
use commonware_cryptography::{
    bls12381::{
        dkg::feldman_desmedt::{deal, Output},
        primitives::{
            group::Share,
            sharing::{Mode, ModeVersion, Sharing},
            variant::MinSig,
        },
    },
    ed25519, Signer,
};
use commonware_glue::dkg::types::{EpochInfo as GlueEpochInfo, EpochOutcome};
use commonware_utils::{
    ordered::{Map, Set},
    N3f1, NZU32,
};
use serde::{Deserialize, Serialize};
use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
};
use unet_types::{
    block::{max_sharing_mode, EpochInfo, MAX_PARTICIPANTS},
    genesis::Validator,
    Genesis, PublicKey,
};

/// Most validators a genesis polynomial may describe (decoding bound).
pub const MAX_VALIDATORS: u32 = 1024;

/// `config.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeConfig {
    /// The node's name, shown in its logs (`node<i>` in a generated testnet).
    pub name: String,
    /// Where the p2p endpoint listens.
    pub p2p_listen: SocketAddr,
    /// Where the JSON-RPC/WebSocket API listens.
    pub rpc_listen: SocketAddr,
    /// Storage directory, relative to the home directory unless absolute.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `tracing` filter (e.g. `info`, `unet_node=debug`).
    #[serde(default = "default_log")]
    pub log: String,
    /// API requests per second this node serves, all clients together (each call in a batch
    /// counts).
    #[serde(default = "default_rate")]
    pub rpc_rate_limit: u32,
    /// Per-client API limits: requests per second, connections, subscriptions (`[rpc]`).
    #[serde(default)]
    pub rpc: crate::rpc::RpcLimits,
    /// Mempool bounds and expiry (`[mempool]`).
    #[serde(default)]
    pub mempool: crate::mempool::MempoolLimits,
    /// Finalized heights whose transactions `unet_getTransaction` keeps answering; older
    /// ones are pruned from the transaction index. 0 (the default) keeps every height.
    /// `unet node --tx-index-keep N` overrides it.
    #[serde(default)]
    pub tx_index_keep: u64,
    /// Following and being followed (`[follow]`): the follow address this node serves, and
    /// for a full node the upstreams it follows.
    #[serde(default)]
    pub follow: crate::follow::FollowConfig,
}

impl NodeConfig {
    /// A node named `name` listening on these addresses, everything else at its default.
    pub fn new(name: &str, p2p_listen: SocketAddr, rpc_listen: SocketAddr) -> Self {
        Self {
            name: name.into(),
            p2p_listen,
            rpc_listen,
            data_dir: default_data_dir(),
            log: default_log(),
            rpc_rate_limit: default_rate(),
            rpc: Default::default(),
            mempool: Default::default(),
            tx_index_keep: 0,
            follow: Default::default(),
        }
    }

    /// Every API limit, the node-wide rate included.
    pub fn rpc_limits(&self) -> crate::rpc::RpcLimits {
        crate::rpc::RpcLimits {
            rate_limit: self.rpc_rate_limit,
            ..self.rpc
        }
    }
}

fn default_rate() -> u32 {
    crate::rpc::DEFAULT_RATE_LIMIT
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_log() -> String {
    "info".into()
}

/// Everything loaded from a home directory.
pub struct Home {
    /// The home directory.
    pub dir: PathBuf,
    /// `config.toml`.
    pub config: NodeConfig,
    /// `genesis.toml`.
    pub genesis: Genesis,
    /// This node's ed25519 identity (`keys/identity.key`).
    pub identity: ed25519::PrivateKey,
    /// Epoch zero's public description (from `genesis_epoch.hex`).
    pub epoch_zero: EpochInfo,
    /// This node's shares and reshare secrets (`keys/secrets.json`).
    pub secrets: SecretStore,
}

/// File name of epoch zero's info in a home (and in a `unet testnet` output directory).
pub const GENESIS_EPOCH_FILE: &str = "genesis_epoch.hex";
/// Path of the secret store inside a home.
pub const SECRETS_FILE: &str = "keys/secrets.json";

impl Home {
    /// Loads a home directory: config, genesis, identity, epoch zero and secrets, checking that
    /// the epoch-zero info matches the genesis.
    pub fn load(dir: &Path) -> Result<Self> {
        let config: NodeConfig = toml::from_str(
            &fs::read_to_string(dir.join("config.toml"))
                .with_context(|| format!("reading {}", dir.join("config.toml").display()))?,
        )
        .context("parsing config.toml")?;
        let genesis = Genesis::from_toml(
            &fs::read_to_string(dir.join("genesis.toml")).context("reading genesis.toml")?,
        )?;
        let identity: ed25519::PrivateKey = read_key(&dir.join("keys/identity.key"))?;
        let epoch_zero = decode_epoch_zero(
            &fs::read_to_string(dir.join(GENESIS_EPOCH_FILE))
                .with_context(|| format!("reading {}", dir.join(GENESIS_EPOCH_FILE).display()))?,
        )?;
        check_epoch_zero(&genesis, &epoch_zero)?;
        let secrets = SecretStore::open(&dir.join(SECRETS_FILE))?;
        let me = identity.public_key();
        if epoch_zero.output.players().position(&me).is_some()
            && secrets.share(Epoch::zero()).is_none()
        {
            tracing::warn!(
                "genesis validator without an epoch-zero share: it cannot sign in epoch 0"
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            genesis,
            identity,
            epoch_zero,
            secrets,
        })
    }

    /// Whether this home runs as a full node: `[follow] full = true`, it retired from
    /// validating ([`crate::retire`]), or it names upstreams while holding no key share and not
    /// being a genesis validator.
    pub fn is_full_node(&self) -> bool {
        let me = self.identity.public_key();
        self.config.follow.full
            || self.is_retired()
            || (!self.config.follow.upstreams.is_empty()
                && !self.secrets.holds_any_share()
                && self.epoch_zero.output.players().position(&me).is_none())
    }

    /// Whether this node was a validator and dropped out of every committee.
    pub fn is_retired(&self) -> bool {
        crate::retire::is_retired(&self.data_dir())
    }

    /// Absolute storage directory.
    pub fn data_dir(&self) -> PathBuf {
        if self.config.data_dir.is_absolute() {
            self.config.data_dir.clone()
        } else {
            self.dir.join(&self.config.data_dir)
        }
    }
}

/// Decodes epoch zero's info (hex).
pub fn decode_epoch_zero(hex_str: &str) -> Result<EpochInfo> {
    let bytes = hex::decode(hex_str.trim()).context("genesis epoch info is not hex")?;
    EpochInfo::decode_cfg(bytes, &(MAX_PARTICIPANTS, max_sharing_mode()))
        .map_err(|e| anyhow!("invalid genesis epoch info: {e}"))
}

/// Checks that epoch zero's info belongs to this genesis: epoch 0, a successful output whose
/// group polynomial is the genesis `consensus_polynomial`, dealt to the genesis validators.
pub fn check_epoch_zero(genesis: &Genesis, info: &EpochInfo) -> Result<()> {
    if info.epoch != Epoch::zero() {
        bail!("genesis epoch info is for epoch {}", info.epoch);
    }
    let polynomial = hex::encode(info.output.public().encode());
    if !polynomial.eq_ignore_ascii_case(genesis.consensus_polynomial.trim()) {
        bail!("genesis epoch info does not match the genesis consensus_polynomial");
    }
    if info.output.players() != &participants(genesis) {
        bail!("genesis epoch info is not dealt to the genesis validators");
    }
    Ok(())
}

/// Epoch zero's info for a genesis whose threshold key `output` was dealt to its validators:
/// players are `participants(0) = committee(1)`, next players `committee(2)` (both the genesis
/// validators, see [`crate::epochs`]), and the directory holds their p2p addresses.
pub fn epoch_zero_info(genesis: &Genesis, output: Output<MinSig, PublicKey>) -> EpochInfo {
    let members = |e: u64| -> Set<PublicKey> {
        Set::from_iter_dedup(
            genesis_committee(genesis, e)
                .members
                .into_iter()
                .map(|m| m.node_key),
        )
    };
    let players = members(1);
    let next_players = members(2);
    let peers = Set::from_iter_dedup(
        output
            .players()
            .iter()
            .chain(players.iter())
            .chain(next_players.iter())
            .cloned(),
    );
    let addresses: Map<PublicKey, String> = Map::from_iter_dedup(
        genesis
            .validators
            .iter()
            .map(|v| (v.public_key.clone(), v.p2p_address.clone())),
    );
    let directory = peers
        .iter()
        .map(|p| {
            let addr = addresses.get_value(p).cloned().unwrap_or_default();
            (p.clone(), transport_address(&addr))
        })
        .collect();
    GlueEpochInfo {
        outcome: EpochOutcome::Success,
        epoch: Epoch::zero(),
        output,
        players,
        next_players,
        directory,
    }
}

/// Deals a threshold key to the genesis validators with a trusted dealer: returns the public
/// output and each validator's share.
pub fn deal_genesis(
    rng: impl rand::CryptoRng,
    validators: &[Validator],
) -> Result<(Output<MinSig, PublicKey>, Map<PublicKey, Share>)> {
    let set = Set::from_iter_dedup(validators.iter().map(|v| v.public_key.clone()));
    deal::<MinSig, _, N3f1>(rng, Mode::NonZeroCounter, set)
        .map_err(|e| anyhow!("dealing key shares: {e:?}"))
}

/// The ordered validator set of a genesis (ordering defines share indices).
pub fn participants(genesis: &Genesis) -> Set<PublicKey> {
    Set::from_iter_dedup(genesis.validators.iter().map(|v| v.public_key.clone()))
}

/// Decodes the genesis threshold polynomial.
pub fn decode_polynomial(hex_str: &str) -> Result<Sharing<MinSig>> {
    let bytes = hex::decode(hex_str.trim()).context("consensus_polynomial is not hex")?;
    Sharing::<MinSig>::decode_cfg(bytes, &(NZU32!(MAX_VALIDATORS), ModeVersion::v0()))
        .map_err(|e| anyhow!("invalid consensus_polynomial: {e}"))
}

/// Writes a secret as hex to a file readable only by its owner (0600), atomically.
pub fn write_secret(path: &Path, value: &impl Encode) -> Result<()> {
    let text = format!("{}\n", hex::encode(value.encode()));
    unet_types::private_file::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a hex-encoded key file, refusing files others can read.
pub fn read_key<T: DecodeExt<()>>(path: &Path) -> Result<T> {
    if let Some(why) = unet_types::private_file::exposed(path)
        .with_context(|| format!("reading {}", path.display()))?
    {
        bail!(why);
    }
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes =
        hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
    T::decode(bytes).map_err(|e| anyhow!("{} is not a valid key: {e}", path.display()))
}

/// Decodes a hex-encoded codec value with a config (helper for callers outside this module).
pub fn decode_hex_cfg<T: Decode>(s: &str, cfg: &T::Cfg) -> Result<T> {
    let bytes = hex::decode(s.trim())?;
    T::decode_cfg(bytes, cfg).map_err(|e| anyhow!("{e}"))
}
