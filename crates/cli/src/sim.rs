//! `unet simulate`: POCI at scale, deterministic and without a network.
//!
//! Builds a state with N registered chips (owners, models and device keys drawn from
//! fixed pools), then runs the real state transition block by block over several epochs:
//! challenges from a deterministic beacon, answers signed by the chips' software secure
//! elements (a configured share is never answered), expiries, status changes, the reward
//! settlement cursor and the committee choice. It prints, per epoch, the validator's work
//! per block as a share of the block time, split into its phases (loading touched entries,
//! executing, applying writes), the answer checks done at mempool admission (off the block's
//! path, as transaction signatures are), the bytes of liveness answers per block, and the peak
//! resident memory.
//!
//! Answers are checked once, when they are admitted (`unet_state::admit_answers`, on all
//! cores), and the block's execution skips the proofs this validator already verified
//! (`unet_state::execute_with`). `--recheck-in-block` turns that off (every proof is checked
//! in the block, as a validator that saw none of the answers before the block would), which
//! is the reference the figures compare against.
//!
//! The state lives in memory (a hash map standing in for the authenticated store), so the
//! figures are the execution cost without disk I/O or merkleization.

use anyhow::{anyhow, Result};
use clap::Args;
use commonware_codec::{DecodeExt, Encode, EncodeSize};
use commonware_cryptography::{Hasher, Sha256, Signer};
use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};
use unet_state::{
    admit_answers, execute_with, genesis_writes, load_touched, BlockEnv, Event, Mode, PreState,
};
use unet_types::{
    chip::{kind, Chip, ChipStatus, Model, Registry},
    genesis::{Allocation, PociGenesis, Validator},
    keys::{account_key, chip_index_key, chip_key, registry_key, Account},
    liveness::{
        network_compute_key, owner_compute_key, response_digest, ChipLiveness, LivenessResponse,
        NetworkCompute, MAX_RESPONSES_PER_TX,
    },
    tx::MAX_TX_BYTES,
    Digest, Genesis, Params, Payload, PrivateKey, SignedTx, Transaction, UNC,
};

#[derive(Args)]
pub struct SimArgs {
    /// Registered chips.
    #[arg(long, default_value_t = 1_000_000)]
    chips: u64,
    /// Epochs to run.
    #[arg(long, default_value_t = 3)]
    epochs: u64,
    /// Blocks per epoch (3000 = 5 minutes of 100 ms blocks).
    #[arg(long, default_value_t = 3000)]
    epoch_length: u64,
    /// Challenges per chip per epoch.
    #[arg(long, default_value_t = 2)]
    challenges_per_epoch: u32,
    /// Share of challenges left unanswered, in basis points (100 = 1%).
    #[arg(long, default_value_t = 100)]
    miss_bps: u64,
    /// Chip owners (chips are spread evenly).
    #[arg(long, default_value_t = 10_000)]
    owners: u64,
    /// Distinct device keys (chips share keys from this pool; verification cost is the same;
    /// the answers are signed with ring, standing in for the chips' secure elements).
    #[arg(long, default_value_t = 64)]
    key_pool: usize,
    /// Check every answer's proof inside the block instead of once at admission (the
    /// reference: a validator that saw none of the answers before the block).
    #[arg(long)]
    recheck_in_block: bool,
}

/// Time spent per phase over an epoch.
#[derive(Default)]
struct Phases {
    admit: Duration,
    load: Duration,
    exec: Duration,
    apply: Duration,
}

/// A chip's P-256 device key (stands in for a secure element: same curve, same answers).
struct ChipKey {
    pair: ring::signature::EcdsaKeyPair,
    public: Vec<u8>,
    rng: ring::rand::SystemRandom,
}

impl ChipKey {
    fn generate() -> Result<Self> {
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow!("cannot generate a P-256 key"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow!("cannot load a P-256 key"))?;
        let public = pair.public_key().as_ref().to_vec();
        Ok(Self { pair, public, rng })
    }

    /// The answer proof: ECDSA P-256 over the digest, raw r||s, low-S (as the chain requires).
    fn sign(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        let sig = self
            .pair
            .sign(&self.rng, digest)
            .map_err(|_| anyhow!("signing failed"))?;
        let sig = p256::ecdsa::Signature::from_slice(sig.as_ref())
            .map_err(|_| anyhow!("ring produced a malformed signature"))?;
        Ok(sig.normalize_s().to_bytes().to_vec())
    }
}

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

pub fn run(args: SimArgs) -> Result<()> {
    if args.chips == 0 || args.owners == 0 || args.key_pool == 0 || args.epoch_length < 10 {
        return Err(anyhow!(
            "chips, owners and key pool must be positive, epoch length at least 10"
        ));
    }
    let params = Params {
        epoch_length: args.epoch_length,
        challenges_per_epoch: args.challenges_per_epoch,
        response_window: 20,
        ..Params::default()
    };
    let models = [("SIM-S", 32_000u64), ("SIM-M", 96_000), ("SIM-L", 989_000)];
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
            models: models
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

    eprintln!(
        "building a state with {} chips ({} owners, {} device keys)...",
        args.chips, args.owners, args.key_pool
    );
    let started = Instant::now();
    let pool: Vec<ChipKey> = (0..args.key_pool)
        .map(|_| ChipKey::generate())
        .collect::<Result<_>>()?;
    let owners: Vec<PrivateKey> = (0..args.owners)
        .map(|i| PrivateKey::from_seed(1_000 + i))
        .collect();
    let mut state: HashMap<Digest, Vec<u8>> = genesis_writes(&genesis)?.into_iter().collect();
    let mut net = NetworkCompute::default();
    let mut owner_compute: BTreeMap<usize, u128> = BTreeMap::new();
    let mut ids = Vec::with_capacity(args.chips as usize);
    for i in 0..args.chips {
        let digest = Sha256::hash(&[b"sim-chip", &i.to_be_bytes()]);
        let id: [u8; 32] = digest.as_ref().try_into().expect("32 bytes");
        let (model, compute) = models[(i % 3) as usize];
        let owner = (i % args.owners) as usize;
        let key = &pool[(i as usize) % pool.len()];
        let chip = Chip {
            owner: owners[owner].public_key(),
            model: model.into(),
            kind: kind::VENDOR_X509,
            device_key: key.public.clone(),
            serial: format!("SIM-{i}"),
            registered_height: 1,
            status: ChipStatus::Online,
            root: [0; 32],
            chain: Vec::new(),
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
        ids.push(id);
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
    registry.chip_count = args.chips;
    state.insert(registry_key(), registry.encode().to_vec());
    let key_of: HashMap<[u8; 32], usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i % pool.len()))
        .collect();
    let owner_of: HashMap<[u8; 32], usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i % args.owners as usize))
        .collect();
    eprintln!(
        "state ready in {:.1} s; running {} epochs of {} blocks",
        started.elapsed().as_secs_f64(),
        args.epochs,
        args.epoch_length
    );

    let transfer = transfer_bytes();
    let capacity_bytes = transfer * params.max_block_txs as usize;
    println!(
        "chips {}  epoch_length {}  challenges/chip/epoch {}  miss {}%  block capacity {} txs ({:.2} MB of transfers)",
        args.chips,
        args.epoch_length,
        args.challenges_per_epoch,
        args.miss_bps as f64 / 100.0,
        params.max_block_txs,
        capacity_bytes as f64 / 1e6
    );
    println!(
        "answer proofs checked {}",
        if args.recheck_in_block {
            "in the block (reference)"
        } else {
            "once, at mempool admission"
        }
    );
    println!(
        "{:>5} {:>10} {:>9} {:>7} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>10} {:>9} {:>8} {:>9} {:>7}",
        "epoch",
        "work_s",
        "avg_ms",
        "%block",
        "max_ms",
        "bound_ms",
        "settle_s",
        "load_ms",
        "exec_ms",
        "apply_ms",
        "admit_ms",
        "%admit",
        "answers",
        "bytes/blk",
        "%bytes",
        "txs/blk",
        "unresp",
        "rss_MiB"
    );
    let mut admitted: std::collections::HashSet<Digest> = std::collections::HashSet::new();

    let mut nonces: HashMap<usize, u64> = HashMap::new();
    let mut pending: Vec<(u64, Digest, [u8; 32])> = Vec::new();
    let mut unresponsive = 0i64;
    let proposer = PrivateKey::from_seed(10).public_key();
    let mut height = 0u64;
    for epoch in 1..=args.epochs {
        let mut work = Duration::ZERO;
        let mut max_block = Duration::ZERO;
        let mut boundary = Duration::ZERO;
        let (mut first_half, mut second_half) = (Duration::ZERO, Duration::ZERO);
        let (mut answers, mut bytes, mut txs_total) = (0u64, 0usize, 0usize);
        let mut phases = Phases::default();
        for _ in 0..args.epoch_length {
            height += 1;
            // The miners answer last block's challenges (signing is their work, not timed).
            let mut by_owner: BTreeMap<usize, Vec<LivenessResponse>> = BTreeMap::new();
            for (h, beacon, id) in pending.drain(..) {
                if missed(&id, h, args.miss_bps) {
                    continue;
                }
                let digest = response_digest(1, h, &beacon, &id);
                let proof = pool[key_of[&id]].sign(&digest)?;
                by_owner
                    .entry(owner_of[&id])
                    .or_default()
                    .push(LivenessResponse {
                        chip_id: id,
                        challenge_height: h,
                        proof,
                    });
            }
            let mut txs: Vec<SignedTx> = Vec::new();
            for (owner, responses) in by_owner {
                for chunk in responses.chunks(MAX_RESPONSES_PER_TX) {
                    let nonce = nonces.entry(owner).or_default();
                    let tx = Transaction {
                        chain_id: 1,
                        sender: owners[owner].public_key(),
                        nonce: *nonce,
                        fee: 0,
                        payload: Payload::Liveness {
                            responses: chunk.to_vec(),
                        },
                    }
                    .sign(&owners[owner]);
                    *nonce += 1;
                    answers += chunk.len() as u64;
                    bytes += tx.encode_size();
                    debug_assert!(tx.encode_size() <= MAX_TX_BYTES);
                    txs.push(tx);
                }
            }
            txs_total += txs.len();
            let beacon = Sha256::hash(&[b"sim-beacon", &height.to_be_bytes()]);
            let env = BlockEnv {
                chain_id: 1,
                params: &params,
                proposer: proposer.clone(),
                height,
                parent: Sha256::hash(&[&height.to_be_bytes()]),
                timestamp_ms: height * params.block_time_ms,
                beacon,
                treasury: Some(treasury.clone()),
            };

            // Timed apart: what the validator's mempool does as the answers arrive (before
            // the block): read each answered chip and check the proof.
            if !args.recheck_in_block {
                let t = Instant::now();
                let mut batch = Vec::new();
                for tx in &txs {
                    if let Payload::Liveness { responses } = &tx.tx.payload {
                        for r in responses {
                            let chip = state
                                .get(&chip_key(&r.chip_id))
                                .ok_or_else(|| anyhow!("answered chip absent"))?;
                            let chip = Chip::decode(chip.clone())
                                .map_err(|e| anyhow!("chip entry: {e}"))?;
                            batch.push((chip, r.clone()));
                        }
                    }
                }
                for key in admit_answers(1, &batch) {
                    admitted.insert(key.map_err(|e| anyhow!("answer refused: {e}"))?);
                }
                phases.admit += t.elapsed();
            }

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
            phases.load += loaded;
            phases.exec += executed - loaded;
            phases.apply += spent - executed;
            admitted.clear();

            work += spent;
            max_block = max_block.max(spent);
            if height.is_multiple_of(args.epoch_length) {
                boundary = spent;
            }
            if height % args.epoch_length < args.epoch_length / 2 {
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
                    } => pending.push((height, beacon, chip_id)),
                    Event::ChipStatus { to, .. } => {
                        unresponsive += if to == ChipStatus::Unresponsive {
                            1
                        } else {
                            -1
                        }
                    }
                    _ => {}
                }
            }
        }
        let l = args.epoch_length as f64;
        let per_block = |d: Duration| d.as_secs_f64() * 1e3 / l;
        let block_ms = params.block_time_ms as f64;
        println!(
            "{:>5} {:>10.2} {:>9.2} {:>6.1}% {:>9.2} {:>9.2} {:>10.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6.1}% {:>9} {:>10.0} {:>8.2}% {:>8.1} {:>9} {:>7.0}",
            epoch,
            work.as_secs_f64(),
            per_block(work),
            100.0 * per_block(work) / block_ms,
            max_block.as_secs_f64() * 1e3,
            boundary.as_secs_f64() * 1e3,
            (first_half.as_secs_f64() - second_half.as_secs_f64()).max(0.0),
            per_block(phases.load),
            per_block(phases.exec),
            per_block(phases.apply),
            per_block(phases.admit),
            100.0 * per_block(phases.admit) / block_ms,
            answers,
            bytes as f64 / l,
            100.0 * bytes as f64 / l / capacity_bytes as f64,
            txs_total as f64 / l,
            unresponsive,
            peak_rss_mib().unwrap_or(0.0)
        );
    }
    println!(
        "columns: work_s = validator time for the epoch's blocks (load + exec + apply); avg_ms and %block = that per block, and as a share of the {} ms block time; load/exec/apply_ms = its phases per block; admit_ms and %admit = answer checks at mempool admission per block (off the block's path; 0 with --recheck-in-block); bound_ms = the epoch's first block (rollover, committee choice); settle_s = extra time of the settlement half (first half minus second half of the epoch); %bytes = liveness bytes per block / block capacity in transfers",
        params.block_time_ms
    );
    Ok(())
}
