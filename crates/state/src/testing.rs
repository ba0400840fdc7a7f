//! The one harness every state test drives blocks through (feature `testing`): the state
//! crate's integration tests, the stateful fuzz target and its corpus replay.
//!
//! - [`TestGenesis`]: the genesis the tests share (four validators, two chip models, a devnet
//!   vendor root, one governor who is also the treasury), with the parts a test varies.
//! - [`MemState`]: the state in a map. Every block is loaded with exactly the keys the
//!   [`crate::PreStateLoader`] asks for, so a key the read-sets miss fails the block;
//!   [`MemState::verify_block`] executes a block as a verifier does, and
//!   [`MemState::propose_and_verify`] first as its proposer, then as a verifier on what the
//!   proposer included, and requires the same writes and receipts.
//! - [`MemState::assert_supply`]: `genesis + minted - burned == balances + escrowed`, and
//!   nothing minted past the cap.
//! - [`Nonces`], [`TestChip`]: signed transactions with running nonces; devnet chips with
//!   their registration evidence and liveness answers.
//!
//! Never part of a node: the feature is enabled by dev-dependencies and the fuzzing crate.

use crate::{
    execute, genesis_writes, BlockEnv, BlockError, Mode, Outcome, PreState, PreStateLoader,
};
use commonware_codec::DecodeExt;
use commonware_cryptography::{Hasher, Sha256, Signer};
use std::collections::BTreeMap;
use unet_poci::{
    secure_element::{DevnetVendorCa, SoftSecureElement},
    Curve, Evidence, VendorX509Evidence,
};
use unet_types::{
    chip::{registration_nonce, ChipId, Model},
    genesis::{Allocation, GenesisRoot, PociGenesis, Validator},
    keys::{account_key, supply_key, Account, Supply},
    liveness::{response_digest, LivenessResponse},
    rewards::MINED_CAP,
    Address, Amount, Digest, Genesis, Params, Payload, PrivateKey, SignedTx, Transaction, UNC,
};

/// 2026-11-22, inside the devnet certificates' validity.
pub const NOW_MS: u64 = 1_795_305_600_000;

/// The governor (threshold 1) and treasury of every test genesis.
pub fn governor() -> PrivateKey {
    PrivateKey::from_seed(9_000)
}

/// Validator `i` (0..4) of every test genesis.
pub fn validator(i: u64) -> PrivateKey {
    PrivateKey::from_seed(100 + i)
}

/// The parameters the block-by-block tests share: fee floor 1, 16-block registration window,
/// 2 challenges per chip and epoch, committees of 4, 2 misses forfeit an epoch's reward.
pub fn params(epoch_length: u64, response_window: u64) -> Params {
    Params {
        min_fee: 1,
        registration_window: 16,
        epoch_length,
        response_window,
        challenges_per_epoch: 2,
        committee_size: 4,
        max_misses_per_epoch: 2,
        ..Params::default()
    }
}

/// The test genesis, field by field what a test may vary.
pub struct TestGenesis {
    /// The chain id transactions are signed for.
    pub chain_id: u64,
    /// The chain's name (genesis `chain_name`).
    pub chain_name: String,
    /// Protocol parameters (usually [`params`]).
    pub params: Params,
    /// Accounts holding 1,000 UNC each at genesis.
    pub funded: Vec<Address>,
    /// Chip models and their rating (milli-TOPS).
    pub models: Vec<(String, u64)>,
    /// The pinned vendor root (DER).
    pub root_der: Vec<u8>,
    /// Label of the pinned root.
    pub root_label: String,
    /// First p2p port of the four validators (`127.0.0.1:PORT+i`).
    pub p2p_port: u16,
}

impl TestGenesis {
    /// Models SMALL (32 TOPS) and BIG (96 TOPS), root label "test", validators on port 4000+.
    pub fn new(chain_id: u64, chain_name: &str, params: Params, ca: &DevnetVendorCa) -> Self {
        Self {
            chain_id,
            chain_name: chain_name.into(),
            params,
            funded: Vec::new(),
            models: vec![("SMALL".into(), 32_000), ("BIG".into(), 96_000)],
            root_der: ca.root_der().to_vec(),
            root_label: "test".into(),
            p2p_port: 4000,
        }
    }

    /// The genesis document.
    pub fn genesis(&self) -> Genesis {
        let genesis = Genesis {
            chain_id: self.chain_id,
            chain_name: self.chain_name.clone(),
            genesis_time_ms: NOW_MS,
            params: self.params.clone(),
            consensus_polynomial: String::new(),
            validators: (0..4)
                .map(|i| Validator {
                    name: format!("v{i}"),
                    public_key: validator(i).public_key(),
                    p2p_address: format!("127.0.0.1:{}", u64::from(self.p2p_port) + i),
                })
                .collect(),
            allocations: self
                .funded
                .iter()
                .map(|a| Allocation {
                    address: a.clone(),
                    amount: 1_000 * UNC,
                    label: String::new(),
                })
                .collect(),
            poci: PociGenesis {
                allow_devnet_roots: true,
                models: self
                    .models
                    .iter()
                    .map(|(name, c)| Model {
                        name: name.clone(),
                        compute_milli_tops: *c,
                    })
                    .collect(),
                roots: vec![GenesisRoot {
                    kind: "vendor-x509".into(),
                    der_hex: hex::encode(&self.root_der),
                    devnet_only: true,
                    label: self.root_label.clone(),
                }],
                governance: vec![hex::encode(governor().public_key())],
                governance_threshold: 1,
            },
            treasury: Some(hex::encode(governor().public_key())),
        };
        genesis.validate().expect("test genesis is valid");
        genesis
    }

    /// The state at genesis.
    pub fn state(&self) -> MemState {
        MemState {
            entries: genesis_writes(&self.genesis())
                .expect("genesis writes")
                .into_iter()
                .collect(),
        }
    }
}

/// A state held in a map.
#[derive(Clone, Debug, Default)]
pub struct MemState {
    /// Every entry (absent = not stored).
    pub entries: BTreeMap<Digest, Vec<u8>>,
}

impl MemState {
    /// The pre-state of a block: exactly the keys the loader asks for.
    pub fn load(&self, env: &BlockEnv<'_>, txs: &[SignedTx]) -> PreState {
        self.load_counted(env, txs).0
    }

    /// [`MemState::load`], with the number of fetches and of planning rounds it took.
    pub fn load_counted(&self, env: &BlockEnv<'_>, txs: &[SignedTx]) -> (PreState, u32, u32) {
        let mut loader = PreStateLoader::new(env, txs);
        let mut fetches = 0;
        loop {
            let keys = loader.missing();
            if keys.is_empty() {
                break;
            }
            fetches += 1;
            let values = keys.iter().map(|k| self.entries.get(k).cloned()).collect();
            loader.supply(keys, values);
        }
        let rounds = loader.rounds();
        // At most one round (after a round that waited for a value) finds nothing to fetch.
        assert!(rounds <= fetches + 1, "planning rounds without a fetch");
        let pre = loader.into_pre_state();
        // The loader's rounds only fetch what each adds; a plan from scratch on what they
        // loaded must find nothing more (the same fixpoint).
        let unloaded: Vec<_> = crate::touched_keys(env, txs, &pre)
            .into_iter()
            .filter(|k| !pre.contains_key(k))
            .collect();
        assert!(
            unloaded.is_empty(),
            "incremental loading missed {unloaded:?}"
        );
        (pre, fetches, rounds)
    }

    /// Executes a block on this state without applying it.
    pub fn execute(
        &self,
        env: &BlockEnv<'_>,
        txs: &[SignedTx],
        mode: Mode,
    ) -> Result<Outcome, BlockError> {
        execute(env, &self.load(env, txs), txs, mode)
    }

    /// Applies a block's writes.
    pub fn apply(&mut self, writes: &BTreeMap<Digest, Option<Vec<u8>>>) {
        for (k, v) in writes {
            match v {
                Some(v) => self.entries.insert(*k, v.clone()),
                None => self.entries.remove(k),
            };
        }
    }

    /// Executes a block as a verifier does and applies it; the block must be valid.
    pub fn verify_block(&mut self, env: &BlockEnv<'_>, txs: &[SignedTx]) -> Outcome {
        let out = self
            .execute(env, txs, Mode::Verify)
            .unwrap_or_else(|e| panic!("block {} is invalid: {e}", env.height));
        self.apply(&out.writes);
        out
    }

    /// Builds a block from `candidates` as a proposer does, executes what it included as a
    /// verifier does, requires the same writes and receipts, and applies the block. Returns
    /// the verified outcome and the included transactions; `Err` says which step failed.
    pub fn propose_and_verify(
        &mut self,
        env: &BlockEnv<'_>,
        candidates: &[SignedTx],
    ) -> Result<(Outcome, Vec<SignedTx>), String> {
        let proposed = self
            .execute(env, candidates, Mode::Propose)
            .map_err(|e| format!("proposing block {} failed: {e}", env.height))?;
        let included: Vec<SignedTx> = proposed
            .included
            .iter()
            .map(|&i| candidates[i].clone())
            .collect();
        let verified = self
            .execute(env, &included, Mode::Verify)
            .map_err(|e| format!("block {} fails verification: {e}", env.height))?;
        if proposed.writes != verified.writes {
            return Err(format!("block {} verifies to other writes", env.height));
        }
        if proposed.receipts != verified.receipts {
            return Err(format!("block {} verifies to other receipts", env.height));
        }
        self.apply(&verified.writes);
        Ok((verified, included))
    }

    /// Decodes a stored entry (`None` = absent); a corrupt entry panics.
    pub fn get<T: DecodeExt<()>>(&self, key: &Digest) -> Option<T> {
        self.entries
            .get(key)
            .map(|b| T::decode(b.clone()).expect("stored entry decodes"))
    }

    /// An account (default when absent).
    pub fn account(&self, a: &Address) -> Account {
        self.get(&account_key(a)).unwrap_or_default()
    }

    /// The supply counters.
    pub fn supply(&self) -> Supply {
        self.get(&supply_key()).expect("supply entry")
    }

    /// Panics unless `balances + escrowed + burned == genesis + minted` (balances of
    /// `addresses`, every account that can hold one) and `minted <= MINED_CAP`.
    pub fn assert_supply<'a>(&self, addresses: impl IntoIterator<Item = &'a Address>, at: &str) {
        let s = self.supply();
        let mut unique: Vec<&Address> = addresses.into_iter().collect();
        unique.sort();
        unique.dedup();
        let balances: Amount = unique.iter().map(|a| self.account(a).balance).sum();
        assert_eq!(
            balances + s.escrowed + s.burned,
            s.genesis + s.minted,
            "supply invariant at {at}"
        );
        assert!(s.minted <= MINED_CAP, "minted beyond the cap at {at}");
    }
}

/// Signs transactions with each sender's next nonce.
#[derive(Clone, Debug, Default)]
pub struct Nonces(pub BTreeMap<Address, u64>);

impl Nonces {
    /// `payload` from `from`, with its next nonce and `fee`, signed.
    pub fn tx(
        &mut self,
        chain_id: u64,
        from: &PrivateKey,
        fee: Amount,
        payload: Payload,
    ) -> SignedTx {
        let n = self.0.entry(from.public_key()).or_default();
        let tx = Transaction {
            chain_id,
            sender: from.public_key(),
            nonce: *n,
            fee,
            payload,
        }
        .sign(from);
        *n += 1;
        tx
    }
}

/// A devnet chip: its software secure element and vendor certificate chain.
pub struct TestChip {
    /// The chip's software secure element (holds its device key).
    pub se: SoftSecureElement,
    /// Its evidence chain, DER each: device certificate, then the vendor intermediate.
    pub chain: Vec<Vec<u8>>,
}

impl TestChip {
    /// Chip `n` of `ca` (P-256, serial `SN-n`) of `model`.
    pub fn provision(ca: &DevnetVendorCa, n: u8, model: &str) -> Self {
        let (se, chain) = ca
            .provision_chip([n; 16], &[n], Curve::P256, model, &format!("SN-{n}"))
            .expect("provision a devnet chip");
        Self { se, chain }
    }

    /// The chip's id.
    pub fn id(&self) -> ChipId {
        self.se.chip_id()
    }

    /// Registration evidence for `owner`, anchored on the block whose hash is `anchor_hash`.
    pub fn evidence(&self, chain_id: u64, anchor_hash: &Digest, owner: &Address) -> Vec<u8> {
        let nonce = registration_nonce(chain_id, anchor_hash, owner);
        Evidence::VendorX509(VendorX509Evidence {
            nonce,
            chain: self.chain.clone(),
            signature: self
                .se
                .sign_registration(&nonce)
                .expect("sign registration"),
        })
        .encode()
        .expect("encode evidence")
    }

    /// The chip's answer to the challenge of `height` with `beacon`.
    pub fn answer(&self, chain_id: u64, height: u64, beacon: &Digest) -> LivenessResponse {
        let digest = response_digest(chain_id, height, beacon, &self.id());
        LivenessResponse {
            chip_id: self.id(),
            challenge_height: height,
            proof: self.se.sign_digest(&digest).expect("sign answer"),
        }
    }
}

/// The beacon the test chains use at `height`: `sha256("beacon" || height)`.
pub fn beacon(height: u64) -> Digest {
    Sha256::hash(&[b"beacon", &height.to_be_bytes()])
}
