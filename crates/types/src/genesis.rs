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
}

impl Default for Params {
    fn default() -> Self {
        Self {
            min_fee: UNC / 1000,
            fee_burn_bps: 5000,
            max_block_txs: 10_000,
            block_time_ms: 100,
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
    #[serde(with = "hexser")]
    pub address: Address,
    #[serde(with = "base_units")]
    pub amount: Amount,
    /// What the allocation is for (e.g. "dao", "ecosystem", "faucet").
    #[serde(default)]
    pub label: String,
}

/// The genesis document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub chain_id: u64,
    pub chain_name: String,
    /// Timestamp of the genesis block, milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    pub params: Params,
    /// Threshold-BLS public polynomial of the validator set (commonware codec, hex). Its
    /// constant term is the group key that verifies every certificate and beacon.
    pub consensus_polynomial: String,
    pub validators: Vec<Validator>,
    pub allocations: Vec<Allocation>,
}

/// Why a genesis document is unusable.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("cannot parse genesis: {0}")]
    Parse(String),
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

    /// Sum of all allocations.
    pub fn total_allocated(&self) -> Amount {
        self.allocations.iter().map(|a| a.amount).sum()
    }

    /// Checks internal consistency.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let invalid = |m: String| Err(GenesisError::Invalid(m));
        if self.validators.is_empty() {
            return invalid("no validators".into());
        }
        let keys: BTreeSet<_> = self.validators.iter().map(|v| v.public_key.clone()).collect();
        if keys.len() != self.validators.len() {
            return invalid("duplicate validator key".into());
        }
        if self.params.fee_burn_bps > 10_000 {
            return invalid("fee_burn_bps above 10000".into());
        }
        if self.params.max_block_txs == 0 {
            return invalid("max_block_txs is zero".into());
        }
        let mut total: Amount = 0;
        let mut seen = BTreeSet::new();
        for a in &self.allocations {
            if !seen.insert(a.address.clone()) {
                return invalid(format!("duplicate allocation to {}", hexser::to_hex(&a.address)));
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
