//! The genesis document: chain identity, validator set, initial allocations, parameters.
//!
//! Stored as TOML (`genesis.toml`). Amounts are decimal strings of base units (u128 does not fit
//! JSON/TOML integers). The genesis hash is SHA-256 of the canonical JSON form of the document;
//! it becomes the parent digest of the genesis block, so two networks with different genesis
//! documents can never share a block.

use crate::{amount::base_units, hexser, Address, Amount, Digest, UNC};
use commonware_cryptography::{Hasher, Sha256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Share of the maximum supply that may be allocated at genesis (3%).
pub const GENESIS_ALLOCATION_CAP: Amount = crate::amount::MAX_SUPPLY / 100 * 3;

/// Protocol parameters fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Lowest fee a transaction may offer, in base units.
    #[serde(with = "base_units")]
    pub min_fee: Amount,
    /// Share of each fee that is burned, in basis points (the rest goes to the proposer).
    pub fee_burn_bps: u16,
    /// Most transactions per block.
    pub max_block_txs: u32,
    /// Minimum time between a block and its parent, in milliseconds (block pacing).
    pub block_time_ms: u64,
    /// How many blocks a registration anchor (the block hash in its nonce) stays valid.
    #[serde(default = "default_registration_window")]
    pub registration_window: u64,
    /// Most chip registrations per block (each costs a few ms of signature checks).
    #[serde(default = "default_max_registrations")]
    pub max_registrations_per_block: u32,
    /// Blocks per epoch (validator committees, reward periods and challenge targets are per
    /// epoch).
    #[serde(default = "default_epoch_length")]
    pub epoch_length: u64,
    /// Most validators in one epoch's committee.
    #[serde(default = "default_committee_size")]
    pub committee_size: u32,
    /// How many times each chip is challenged per epoch, on average.
    #[serde(default = "default_challenges_per_epoch")]
    pub challenges_per_epoch: u32,
    /// Blocks a challenged chip has to land its response (the response may be in any block
    /// `h + 1 ..= h + response_window` after the challenge at `h`).
    #[serde(default = "default_response_window")]
    pub response_window: u64,
    /// Misses within one epoch at which a chip forfeits that whole epoch's reward.
    #[serde(default = "default_max_misses")]
    pub max_misses_per_epoch: u32,
    /// Blocks between emission halvings (two years of blocks at `block_time_ms`).
    #[serde(default = "default_halving_blocks")]
    pub halving_blocks: u64,
}

fn default_epoch_length() -> u64 {
    600
}

fn default_committee_size() -> u32 {
    16
}

/// Most challenge positions a block draws per registered chip (see [`Genesis::validate`]): a
/// chip holds at most one pending challenge, so more draws only cost the validators work.
pub const MAX_CHALLENGE_DRAWS_PER_BLOCK: u32 = 8;

fn default_challenges_per_epoch() -> u32 {
    2
}

fn default_response_window() -> u64 {
    20
}

fn default_max_misses() -> u32 {
    2
}

/// Two years of 100 ms blocks.
fn default_halving_blocks() -> u64 {
    2 * 365 * 24 * 3600 * 10
}

fn default_registration_window() -> u64 {
    256
}

fn default_max_registrations() -> u32 {
    64
}

impl Default for Params {
    fn default() -> Self {
        Self {
            min_fee: UNC / 1000,
            fee_burn_bps: 5000,
            max_block_txs: 10_000,
            block_time_ms: 100,
            registration_window: default_registration_window(),
            max_registrations_per_block: default_max_registrations(),
            epoch_length: default_epoch_length(),
            committee_size: default_committee_size(),
            challenges_per_epoch: default_challenges_per_epoch(),
            response_window: default_response_window(),
            max_misses_per_epoch: default_max_misses(),
            halving_blocks: default_halving_blocks(),
        }
    }
}

/// One genesis validator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    /// Human-readable name.
    pub name: String,
    /// ed25519 identity key (consensus participant and p2p identity), hex.
    #[serde(with = "hexser")]
    pub public_key: Address,
    /// Where its p2p endpoint listens (`host:port`).
    pub p2p_address: String,
}

/// An initial balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The funded account (hex in TOML/JSON).
    #[serde(with = "hexser")]
    pub address: Address,
    /// Initial balance, base units (a decimal string).
    #[serde(with = "base_units")]
    pub amount: Amount,
    /// What the allocation is for (e.g. "dao", "ecosystem", "faucet").
    #[serde(default)]
    pub label: String,
}

/// A vendor root pinned at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisRoot {
    /// `vendor-x509` or `nvidia-spdm`.
    pub kind: String,
    /// The root certificate, DER as hex.
    pub der_hex: String,
    /// Trusted only on chains that allow devnet roots.
    #[serde(default)]
    pub devnet_only: bool,
    /// Free text (e.g. "NVIDIA Device Identity CA").
    #[serde(default)]
    pub label: String,
}

/// POCI settings at genesis: chip models, vendor roots, governance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PociGenesis {
    /// Whether devnet-only vendor roots (the software secure element's CA) are trusted. A
    /// production genesis sets false.
    #[serde(default)]
    pub allow_devnet_roots: bool,
    /// Chip models and their ratings (the initial model table).
    #[serde(default)]
    pub models: Vec<crate::chip::Model>,
    /// Vendor roots pinned at genesis.
    #[serde(default)]
    pub roots: Vec<GenesisRoot>,
    /// Governance members (hex keys); `governance_threshold` of them approve an action.
    #[serde(default)]
    pub governance: Vec<String>,
    /// Approvals a governance action needs (1 ..= the number of governors when there are any).
    #[serde(default)]
    pub governance_threshold: u8,
}

/// The genesis document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The chain id every transaction signs (replay protection across chains).
    pub chain_id: u64,
    /// Human-readable chain name (e.g. `unet-devnet`).
    pub chain_name: String,
    /// Timestamp of the genesis block, milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Protocol parameters (epochs, challenges, fees, rewards, market).
    pub params: Params,
    /// Threshold-BLS public polynomial of the validator set (commonware codec, hex). Its
    /// constant term is the group key that verifies every certificate and beacon.
    pub consensus_polynomial: String,
    /// The genesis validator set (node keys, accounts, p2p addresses).
    pub validators: Vec<Validator>,
    /// Initial balances.
    pub allocations: Vec<Allocation>,
    /// POCI settings: models, vendor roots, governance.
    #[serde(default)]
    pub poci: PociGenesis,
    /// Account (hex) that receives reward rounding dust and the rewards of epochs in which no
    /// chip was online. Without one, those amounts are never minted.
    #[serde(default)]
    pub treasury: Option<String>,
}

/// Why a genesis document is unusable.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The TOML does not parse into a genesis document (the parser's message).
    #[error("cannot parse genesis: {0}")]
    Parse(String),
    /// The document parses but breaks a rule (which one, in words).
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

impl Genesis {
    /// Parses and validates a TOML genesis document.
    pub fn from_toml(s: &str) -> Result<Self, GenesisError> {
        let g: Genesis = toml::from_str(s).map_err(|e| GenesisError::Parse(e.to_string()))?;
        g.validate()?;
        Ok(g)
    }

    /// Serializes to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("genesis serializes")
    }

    /// SHA-256 of the canonical JSON encoding.
    pub fn hash(&self) -> Digest {
        let json = serde_json::to_vec(self).expect("genesis serializes");
        Sha256::hash(&[b"UNET_GENESIS", &json])
    }

    /// The treasury account, if the genesis names one.
    pub fn treasury_address(&self) -> Result<Option<Address>, GenesisError> {
        match &self.treasury {
            None => Ok(None),
            Some(h) => hexser::from_hex(h)
                .map(Some)
                .map_err(|e| GenesisError::Invalid(format!("treasury {h}: {e}"))),
        }
    }

    /// Sum of all allocations.
    pub fn total_allocated(&self) -> Amount {
        self.allocations.iter().map(|a| a.amount).sum()
    }

    /// The POCI registry this genesis starts with.
    pub fn registry(&self) -> Result<crate::chip::Registry, GenesisError> {
        use crate::chip::{kind, Registry, Root};
        let invalid = |m: String| GenesisError::Invalid(m);
        let mut registry = Registry {
            allow_devnet_roots: self.poci.allow_devnet_roots,
            threshold: self.poci.governance_threshold,
            ..Default::default()
        };
        for m in &self.poci.models {
            if m.name.is_empty() || m.name.len() > crate::chip::MAX_NAME {
                return Err(invalid(format!(
                    "model name {:?} empty or too long",
                    m.name
                )));
            }
            if registry.model(&m.name).is_some() {
                return Err(invalid(format!("model {} listed twice", m.name)));
            }
            registry.set_model(m.clone());
        }
        for r in &self.poci.roots {
            let kind = match r.kind.as_str() {
                "vendor-x509" => kind::VENDOR_X509,
                "nvidia-spdm" => kind::NVIDIA_SPDM,
                other => return Err(invalid(format!("unknown root kind {other:?}"))),
            };
            let der = hex::decode(r.der_hex.trim())
                .map_err(|e| invalid(format!("root {:?}: {e}", r.label)))?;
            if der.len() > crate::chip::MAX_ROOT_DER {
                return Err(invalid(format!("root {:?} too large", r.label)));
            }
            registry.roots.push(Root {
                kind,
                der,
                devnet_only: r.devnet_only,
            });
        }
        for g in &self.poci.governance {
            let key: Address =
                hexser::from_hex(g).map_err(|e| invalid(format!("governor {g}: {e}")))?;
            registry.governance.push(key);
        }
        if !registry.governance.is_empty()
            && (registry.threshold == 0 || registry.threshold as usize > registry.governance.len())
        {
            return Err(invalid(
                "governance_threshold must be between 1 and the number of governors".into(),
            ));
        }
        Ok(registry)
    }

    /// Checks internal consistency.
    pub fn validate(&self) -> Result<(), GenesisError> {
        self.registry()?;
        let invalid = |m: String| Err(GenesisError::Invalid(m));
        if self.validators.is_empty() {
            return invalid("no validators".into());
        }
        let keys: BTreeSet<_> = self
            .validators
            .iter()
            .map(|v| v.public_key.clone())
            .collect();
        if keys.len() != self.validators.len() {
            return invalid("duplicate validator key".into());
        }
        if self.params.fee_burn_bps > 10_000 {
            return invalid("fee_burn_bps above 10000".into());
        }
        if self.params.max_block_txs == 0 {
            return invalid("max_block_txs is zero".into());
        }
        let p = &self.params;
        if p.response_window
            .max(1)
            .checked_mul(2)
            .is_none_or(|w| p.epoch_length < w)
        {
            return invalid("epoch_length must be at least twice response_window".into());
        }
        // Each block draws `challenges_per_epoch * chips / epoch_length` positions: bounded
        // by MAX_CHALLENGE_DRAWS_PER_BLOCK draws per chip, however many chips register.
        if u128::from(p.challenges_per_epoch)
            > u128::from(p.epoch_length) * u128::from(MAX_CHALLENGE_DRAWS_PER_BLOCK)
        {
            return invalid(format!(
                "challenges_per_epoch above {MAX_CHALLENGE_DRAWS_PER_BLOCK} x epoch_length"
            ));
        }
        if p.response_window == 0 {
            return invalid("response_window is zero".into());
        }
        if p.committee_size == 0 || p.committee_size as usize > crate::epoch::MAX_COMMITTEE {
            return invalid(format!(
                "committee_size must be 1..={}",
                crate::epoch::MAX_COMMITTEE
            ));
        }
        if p.halving_blocks < p.epoch_length {
            return invalid("halving_blocks shorter than one epoch".into());
        }
        if self.validators.len() > crate::epoch::MAX_COMMITTEE {
            return invalid("too many genesis validators".into());
        }
        self.treasury_address()?;
        let mut total: Amount = 0;
        let mut seen = BTreeSet::new();
        for a in &self.allocations {
            if !seen.insert(a.address.clone()) {
                return invalid(format!(
                    "duplicate allocation to {}",
                    hexser::to_hex(&a.address)
                ));
            }
            total = match total.checked_add(a.amount) {
                Some(t) => t,
                None => return invalid("allocations overflow".into()),
            };
        }
        if total > GENESIS_ALLOCATION_CAP {
            return invalid(format!(
                "allocations total {total} exceed the genesis cap of 3% of max supply ({GENESIS_ALLOCATION_CAP})"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer;

    fn genesis(tweak: impl FnOnce(&mut Params)) -> Genesis {
        let mut params = Params::default();
        tweak(&mut params);
        Genesis {
            chain_id: 1,
            chain_name: "params".into(),
            genesis_time_ms: 0,
            params,
            consensus_polynomial: String::new(),
            validators: vec![Validator {
                name: "v0".into(),
                public_key: crate::PrivateKey::from_seed(1).public_key(),
                p2p_address: "127.0.0.1:1".into(),
            }],
            allocations: Vec::new(),
            poci: Default::default(),
            treasury: None,
        }
    }

    /// A response window so large that twice it overflows is refused, not a panic (debug) or a
    /// wrapped comparison that accepts it (release).
    #[test]
    fn response_window_near_the_top_of_u64_is_refused_without_overflow() {
        for window in [u64::MAX, u64::MAX / 2 + 1] {
            let g = genesis(|p| {
                p.response_window = window;
                p.epoch_length = u64::MAX;
                p.halving_blocks = u64::MAX;
            });
            assert!(matches!(g.validate(), Err(GenesisError::Invalid(m)) if m.contains("twice")));
        }
        let g = genesis(|p| {
            p.response_window = u64::MAX / 2;
            p.epoch_length = u64::MAX - 1;
            p.halving_blocks = u64::MAX;
        });
        g.validate().unwrap();
    }

    /// More challenge draws per block than the bound (which would let the per-block challenge
    /// list grow without limit with the registry) are refused; the bound itself is accepted.
    #[test]
    fn challenges_per_epoch_is_bounded_by_the_epoch_length() {
        let at = |per_epoch: u32| {
            genesis(|p| {
                p.epoch_length = 100;
                p.response_window = 10;
                p.challenges_per_epoch = per_epoch;
                p.halving_blocks = 100;
            })
            .validate()
        };
        at(100 * MAX_CHALLENGE_DRAWS_PER_BLOCK).unwrap();
        assert!(matches!(
            at(100 * MAX_CHALLENGE_DRAWS_PER_BLOCK + 1),
            Err(GenesisError::Invalid(m)) if m.contains("challenges_per_epoch")
        ));
        assert!(at(u32::MAX).is_err());
    }
}
