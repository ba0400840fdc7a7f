//! POCI at scale, deterministic and without a network (`unet simulate`).
//!
//! [`Simulation::build`] makes a state with N registered chips (owners, models and device keys
//! drawn from fixed pools, see `world.rs`); [`Simulation::run_epoch`] then runs the real state
//! transition block by block: challenges from a deterministic beacon, answers signed by the
//! chips' keys (a configured share is never answered), expiries, status changes, the reward
//! settlement cursor and the committee choice. Each epoch returns its [`EpochFigures`]: the
//! validator's work per block split into its phases (loading touched entries, executing,
//! applying writes), the answer checks done at mempool admission (off the block's path, as
//! transaction signatures are), the liveness bytes per block and the peak resident memory.
//!
//! Answers are checked once, when they are admitted (`unet_state::admit_answers`, on all
//! cores), and the block's execution skips the proofs this validator already verified
//! (`unet_state::execute_with`). [`SimConfig::recheck_in_block`] turns that off (every proof is
//! checked in the block, as a validator that saw none of the answers before the block would);
//! that is the reference the figures compare against. Both paths must leave the same state,
//! which the tests check ([`Simulation::state_root`]).
//!
//! The state lives in memory (a hash map standing in for the authenticated store), so the
//! figures are the execution cost without disk I/O or merkleization. Only the validator's work
//! is timed; the chips' signing is not.

#![forbid(unsafe_code)]

mod keys;
mod world;

use anyhow::{anyhow, bail, Result};
use commonware_codec::{DecodeExt, EncodeSize};
use commonware_cryptography::{Hasher, Sha256, Signer};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::{Duration, Instant},
};
use unet_state::{admit_answers, execute_with, load_touched, BlockEnv, Event, Mode, PreState};
use unet_types::{
    chip::{Chip, ChipStatus},
    keys::chip_key,
    liveness::{response_digest, LivenessResponse, MAX_RESPONSES_PER_TX},
    tx::MAX_TX_BYTES,
    Address, Digest, Params, Payload, PrivateKey, SignedTx, Transaction, UNC,
};

/// What to simulate. The defaults are a million chips at today's challenge rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Registered chips (at least 1).
    pub chips: u64,
    /// Blocks per epoch (at least 10; 3000 = 5 minutes of 100 ms blocks).
    pub epoch_length: u64,
    /// Challenges per chip per epoch.
    pub challenges_per_epoch: u32,
    /// Share of challenges left unanswered, in basis points (100 = 1%, at most 10,000).
    pub miss_bps: u64,
    /// Chip owners (chips are spread evenly; at least 1).
    pub owners: u64,
    /// Distinct device keys the chips share (at least 1; verification cost is the same).
    pub key_pool: usize,
    /// Check every answer's proof inside the block instead of once at admission.
    pub recheck_in_block: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            chips: 1_000_000,
            epoch_length: 3000,
            challenges_per_epoch: 2,
            miss_bps: 100,
            owners: 10_000,
            key_pool: 64,
            recheck_in_block: false,
        }
    }
}

impl SimConfig {
    /// Refuses a configuration the simulation cannot run.
    pub fn validate(&self) -> Result<()> {
        if self.chips == 0 || self.owners == 0 || self.key_pool == 0 || self.epoch_length < 10 {
            bail!("chips, owners and key pool must be positive, epoch length at least 10");
        }
        if self.miss_bps > 10_000 {
            bail!("miss_bps is at most 10000 (every answer missed)");
        }
        Ok(())
    }
}

/// Time spent per phase over an epoch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Phases {
    /// Answer checks at mempool admission (zero with `recheck_in_block`).
    pub admit: Duration,
    /// Reading the entries each block touches.
    pub load: Duration,
    /// Executing the blocks.
    pub exec: Duration,
    /// Applying their writes.
    pub apply: Duration,
    /// The stand-in store's own upkeep between blocks (growing or rehashing its hash map so
    /// that a block's inserts never do): the simulator's bookkeeping, reported apart.
    pub upkeep: Duration,
}

/// One epoch's figures.
#[derive(Clone, Debug)]
pub struct EpochFigures {
    /// The epoch (1 = the first one simulated).
    pub epoch: u64,
    /// Blocks in the epoch.
    pub blocks: u64,
    /// Validator time for the epoch's blocks (load + exec + apply).
    pub work: Duration,
    /// The slowest block.
    pub max_block: Duration,
    /// The epoch's last block (rollover, committee choice).
    pub boundary: Duration,
    /// Extra time of the settlement half: first half minus second half of the epoch, or zero.
    pub settle_extra: Duration,
    /// Time per phase.
    pub phases: Phases,
    /// Liveness answers included.
    pub answers: u64,
    /// Bytes of liveness transactions included.
    pub bytes: usize,
    /// Liveness transactions included.
    pub txs: usize,
    /// Chips unresponsive at the end of the epoch.
    pub unresponsive: i64,
    /// Peak resident memory of this process, MiB (`VmHWM`; `None` where /proc is absent).
    pub peak_rss_mib: Option<f64>,
}

impl EpochFigures {
    /// Milliseconds per block of a duration summed over the epoch.
    pub fn per_block_ms(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1e3 / self.blocks as f64
    }
}

/// A running simulation: the state and the chips' side of the protocol.
#[derive(Clone)]
pub struct Simulation {
    config: SimConfig,
    world: world::World,
    proposer: Address,
    height: u64,
    epoch: u64,
    /// Challenges issued last block and not yet answered: (height, beacon, chip).
    pending: Vec<(u64, Digest, [u8; 32])>,
    nonces: HashMap<usize, u64>,
    unresponsive: i64,
}

impl Simulation {
    /// Builds the starting state (a million chips take tens of seconds).
    pub fn build(config: SimConfig) -> Result<Self> {
        config.validate()?;
        let world = world::build(&config)?;
        Ok(Self {
            config,
            world,
            proposer: PrivateKey::from_seed(10).public_key(),
            height: 0,
            epoch: 0,
            pending: Vec::new(),
            nonces: HashMap::new(),
            unresponsive: 0,
        })
    }

    /// Sets where answer proofs are checked (see [`SimConfig::recheck_in_block`]); with
    /// [`Clone`], one state can be run both ways.
    pub fn set_recheck_in_block(&mut self, recheck: bool) {
        self.config.recheck_in_block = recheck;
    }

    /// The chain parameters in force.
    pub fn params(&self) -> &Params {
        &self.world.params
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The last executed height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Bytes a block full of transfers holds (the capacity liveness bytes are compared with).
    pub fn block_capacity_bytes(&self) -> usize {
        transfer_bytes() * self.world.params.max_block_txs as usize
    }

    /// A digest of the whole state (sorted entries), to compare two runs.
    pub fn state_root(&self) -> Digest {
        let sorted: BTreeMap<&Digest, &Vec<u8>> = self.world.state.iter().collect();
        let mut all = Vec::new();
        for (k, v) in sorted {
            all.extend_from_slice(k.as_ref());
            all.extend_from_slice(&(v.len() as u64).to_be_bytes());
            all.extend_from_slice(v);
        }
        Sha256::hash(&[&all])
    }

    /// A chip's current entry (chip `index` as built).
    pub fn chip(&self, index: u64) -> Result<Chip> {
        let id = Sha256::hash(&[b"sim-chip", &index.to_be_bytes()]);
        let id: [u8; 32] = id.as_ref().try_into().expect("a sha256 digest is 32 bytes");
        let raw = self
            .world
            .state
            .get(&chip_key(&id))
            .ok_or_else(|| anyhow!("chip {index} is not in the state"))?;
        Chip::decode(raw.clone()).map_err(|e| anyhow!("chip entry: {e}"))
    }

    /// The chips' answers to last block's challenges, as liveness transactions (one per owner
    /// per `MAX_RESPONSES_PER_TX` answers). Signing is the miners' work: not timed.
    fn answer_pending(&mut self) -> Result<(Vec<SignedTx>, u64)> {
        let mut by_owner: BTreeMap<usize, Vec<LivenessResponse>> = BTreeMap::new();
        for (h, beacon, id) in self.pending.drain(..) {
            if missed(&id, h, self.config.miss_bps) {
                continue;
            }
            let digest = response_digest(1, h, &beacon, &id);
            let proof = self.world.pool[self.world.key_of[&id]].sign(&digest)?;
            by_owner
                .entry(self.world.owner_of[&id])
                .or_default()
                .push(LivenessResponse {
                    chip_id: id,
                    challenge_height: h,
                    proof,
                });
        }
        let mut txs = Vec::new();
        let mut answers = 0;
        for (owner, responses) in by_owner {
            for chunk in responses.chunks(MAX_RESPONSES_PER_TX) {
                let nonce = self.nonces.entry(owner).or_default();
                let tx = Transaction {
                    chain_id: 1,
                    sender: self.world.owners[owner].public_key(),
                    nonce: *nonce,
                    fee: 0,
                    payload: Payload::Liveness {
                        responses: chunk.to_vec(),
                    },
                }
                .sign(&self.world.owners[owner]);
                *nonce += 1;
                answers += chunk.len() as u64;
                debug_assert!(tx.encode_size() <= MAX_TX_BYTES);
                txs.push(tx);
            }
        }
        Ok((txs, answers))
    }

    /// What a validator's mempool does as answers arrive: read each answered chip and check
    /// its proof. Returns the answers admitted.
    fn admit(&self, txs: &[SignedTx]) -> Result<HashSet<Digest>> {
        let mut batch = Vec::new();
        for tx in txs {
            if let Payload::Liveness { responses } = &tx.tx.payload {
                for r in responses {
                    let chip = self
                        .world
                        .state
                        .get(&chip_key(&r.chip_id))
                        .ok_or_else(|| anyhow!("answered chip absent"))?;
                    let chip =
                        Chip::decode(chip.clone()).map_err(|e| anyhow!("chip entry: {e}"))?;
                    batch.push((chip, r.clone()));
                }
            }
        }
        admit_answers(1, &batch)
            .into_iter()
            .map(|k| k.map_err(|e| anyhow!("answer refused: {e}")))
            .collect()
    }

    /// Runs one epoch of blocks and returns its figures.
    pub fn run_epoch(&mut self) -> Result<EpochFigures> {
        self.epoch += 1;
        let length = self.config.epoch_length;
        let mut f = EpochFigures {
            epoch: self.epoch,
            blocks: length,
            work: Duration::ZERO,
            max_block: Duration::ZERO,
            boundary: Duration::ZERO,
            settle_extra: Duration::ZERO,
            phases: Phases::default(),
            answers: 0,
            bytes: 0,
            txs: 0,
            unresponsive: 0,
            peak_rss_mib: None,
        };
        let (mut first_half, mut second_half) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..length {
            self.height += 1;
            let height = self.height;
            let (txs, answers) = self.answer_pending()?;
            f.answers += answers;
            f.txs += txs.len();
            f.bytes += txs.iter().map(EncodeSize::encode_size).sum::<usize>();
            let params = &self.world.params;
            let env = BlockEnv {
                chain_id: 1,
                params,
                proposer: self.proposer.clone(),
                height,
                parent: Sha256::hash(&[&height.to_be_bytes()]),
                timestamp_ms: height * params.block_time_ms,
                beacon: Sha256::hash(&[b"sim-beacon", &height.to_be_bytes()]),
                treasury: Some(self.world.treasury.clone()),
            };

            // Timed apart: the admission checks (before the block).
            let admitted = if self.config.recheck_in_block {
                HashSet::new()
            } else {
                let t = Instant::now();
                let admitted = self.admit(&txs)?;
                f.phases.admit += t.elapsed();
                admitted
            };

            // Timed apart: room in the stand-in map for any block's writes. A hash map grows
            // (or clears the tombstones of removed entries) by rehashing every entry, which at
            // a million chips stalls one insert for a second: a cost of this stand-in, not of
            // the state transition, so it is paid here, between blocks.
            let state = &mut self.world.state;
            let t = Instant::now();
            state.reserve(STORE_HEADROOM);
            f.phases.upkeep += t.elapsed();

            // Timed: what a validator does for the block.
            let t = Instant::now();
            let pre: PreState = load_touched(&env, &txs, |keys| {
                Ok::<_, std::convert::Infallible>(
                    keys.iter().map(|k| state.get(k).cloned()).collect(),
                )
            })?;
            let loaded = t.elapsed();
            let known = |key: &Digest| admitted.contains(key);
            let out = execute_with(&env, &pre, &txs, Mode::Verify, &known)
                .map_err(|e| anyhow!("block {height}: {e}"))?;
            let executed = t.elapsed();
            for (k, v) in out.writes {
                match v {
                    Some(v) => state.insert(k, v),
                    None => state.remove(&k),
                };
            }
            let spent = t.elapsed();
            f.phases.load += loaded;
            f.phases.exec += executed - loaded;
            f.phases.apply += spent - executed;
            f.work += spent;
            f.max_block = f.max_block.max(spent);
            if height.is_multiple_of(length) {
                f.boundary = spent;
            }
            if height % length < length / 2 {
                first_half += spent;
            } else {
                second_half += spent;
            }
            for e in out.events {
                match e {
                    Event::Challenge {
                        chip_id,
                        height,
                        beacon,
                        ..
                    } => self.pending.push((height, beacon, chip_id)),
                    Event::ChipStatus { to, .. } => {
                        self.unresponsive += if to == ChipStatus::Unresponsive {
                            1
                        } else {
                            -1
                        }
                    }
                    _ => {}
                }
            }
        }
        f.settle_extra = first_half.saturating_sub(second_half);
        f.unresponsive = self.unresponsive;
        f.peak_rss_mib = peak_rss_mib();
        Ok(f)
    }
}

/// Free slots kept in the stand-in map before each block: more than any block writes (a block
/// at a million chips writes a few thousand entries).
const STORE_HEADROOM: usize = 1 << 16;

/// Bytes of one typical transfer transaction (for block-capacity figures).
fn transfer_bytes() -> usize {
    let k = PrivateKey::from_seed(1);
    Transaction {
        chain_id: 1,
        sender: k.public_key(),
        nonce: 1,
        fee: UNC / 1000,
        payload: Payload::Transfer {
            to: k.public_key(),
            amount: UNC,
        },
    }
    .sign(&k)
    .encode_size()
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Deterministic "does this answer get lost" draw.
fn missed(chip: &[u8; 32], height: u64, miss_bps: u64) -> bool {
    let h = Sha256::hash(&[b"sim-miss", chip, &height.to_be_bytes()]);
    let v = u64::from_be_bytes(h.as_ref()[..8].try_into().expect("8 bytes"));
    v % 10_000 < miss_bps
}

#[cfg(test)]
mod tests;
