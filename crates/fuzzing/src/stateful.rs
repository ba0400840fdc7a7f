//! Random blocks against the state transition (target `state_blocks`).
//!
//! A funded set of keys sends every transaction kind (transfers, chip registrations with real
//! devnet evidence, chip transfers and deregistrations, governance with valid approvals,
//! liveness answers to the challenges actually issued, validator registrations, offers and
//! leases), signed and mostly well formed, with amounts, nonces, anchors and ids chosen by the
//! fuzzer, over epochs of 8 blocks. Every block is executed as a proposer would
//! (`Mode::Propose`, from exactly the keys the state crate's loader asks for, out of an
//! in-memory map), then re-executed as a verifier would (`Mode::Verify`) on the included
//! transactions only, through the shared harness `unet_state::testing`. Checked after every
//! block:
//!
//! - proposing never fails (a failure there halts the chain) and never panics;
//! - the verifier accepts the proposal and computes the same writes and receipts;
//! - the supply invariant: sum of balances + escrowed + burned == genesis + minted, and
//!   minted <= the mined cap.

use commonware_cryptography::{Hasher, Sha256, Signer};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use unet_poci::secure_element::DevnetVendorCa;
use unet_state::{
    check_stateless_batch,
    testing::{self, MemState, TestChip, TestGenesis},
    BlockEnv, Event,
};
use unet_types::{
    chip::{Approval, GovAction, Model, Registry, GOV_NAMESPACE},
    keys::{registry_key, Account},
    liveness::{response_digest, LivenessResponse},
    market::{Capabilities, OfferTerms},
    Address, Amount, Digest, Params, Payload, PrivateKey, SignedTx, Transaction, UNC,
};

const CHAIN: u64 = 4242;
const NOW_MS: u64 = 1_795_305_600_000;
const EPOCH: u64 = 8;
const ACCOUNTS: usize = 6;
const CHIPS: usize = 4;
/// Most blocks one input runs (runs of empty blocks count).
pub const MAX_BLOCKS: u64 = 96;
const MAX_TXS: usize = 8;

/// Blocks executed by [`state_blocks`] in this process (each proposed and verified).
pub static BLOCKS: AtomicU64 = AtomicU64::new(0);

struct Chip {
    chip: TestChip,
    id: [u8; 32],
}

struct Fixture {
    accounts: Vec<PrivateKey>,
    gov: PrivateKey,
    validators: Vec<PrivateKey>,
    /// Addresses that hold no key here but may receive funds.
    strangers: Vec<Address>,
    chips: Vec<Chip>,
    params: Params,
    genesis: MemState,
    /// Fingerprint of the devnet intermediate (for certificate revocation).
    intermediate: [u8; 32],
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let ca = DevnetVendorCa::from_seed(b"fuzz state vendor").expect("devnet CA");
        let accounts: Vec<PrivateKey> = (1..=ACCOUNTS as u64).map(PrivateKey::from_seed).collect();
        let gov = testing::governor();
        let validators: Vec<PrivateKey> = (0..4).map(testing::validator).collect();
        let strangers = (0..2)
            .map(|i| PrivateKey::from_seed(50_000 + i).public_key())
            .collect();
        let chips = (0..CHIPS as u8)
            .map(|n| {
                let model = if n % 2 == 0 { "SMALL" } else { "BIG" };
                let chip = TestChip::provision(&ca, n, model);
                let id = chip.id();
                Chip { chip, id }
            })
            .collect::<Vec<_>>();
        let params = testing::params(EPOCH, 3);
        let mut spec = TestGenesis::new(CHAIN, "fuzz", params.clone(), &ca);
        spec.funded = accounts.iter().map(|k| k.public_key()).collect();
        spec.root_label = "fuzz".into();
        spec.p2p_port = 28_000;
        let genesis = spec.state();
        let intermediate: [u8; 32] = Sha256::hash(&[ca.intermediate_der()])
            .as_ref()
            .try_into()
            .expect("32 bytes");
        Fixture {
            accounts,
            gov,
            validators,
            strangers,
            chips,
            params,
            genesis,
            intermediate,
        }
    })
}

/// One chain being driven by one input.
struct Net {
    f: &'static Fixture,
    state: MemState,
    height: u64,
    /// Hash of every executed block, by height (index 0: genesis).
    hashes: Vec<Digest>,
    /// Challenges issued: (chip, height, beacon).
    challenges: Vec<([u8; 32], u64, Digest)>,
    /// Every address that can hold a balance.
    addresses: BTreeSet<Address>,
}

impl Net {
    fn new() -> Self {
        let f = fixture();
        let mut addresses: BTreeSet<Address> = f.accounts.iter().map(|k| k.public_key()).collect();
        addresses.extend(f.validators.iter().map(|k| k.public_key()));
        addresses.extend(f.strangers.iter().cloned());
        addresses.insert(f.gov.public_key());
        Self {
            f,
            state: f.genesis.clone(),
            height: 0,
            hashes: vec![Sha256::hash(&[b"fuzz genesis"])],
            challenges: Vec::new(),
            addresses,
        }
    }

    fn account(&self, a: &Address) -> Account {
        self.state.account(a)
    }

    fn gov_nonce(&self) -> u64 {
        self.state
            .get::<Registry>(&registry_key())
            .map_or(0, |r| r.gov_nonce)
    }

    fn address(&self, input: &mut crate::Input) -> Address {
        let f = self.f;
        let i = input.below(ACCOUNTS + f.strangers.len() + 2);
        if i < ACCOUNTS {
            f.accounts[i].public_key()
        } else if i < ACCOUNTS + f.strangers.len() {
            f.strangers[i - ACCOUNTS].clone()
        } else if i == ACCOUNTS + f.strangers.len() {
            f.gov.public_key()
        } else {
            f.validators[0].public_key()
        }
    }

    fn amount(&self, input: &mut crate::Input, sender: &Address) -> Amount {
        let balance = self.account(sender).balance;
        match input.below(9) {
            0 => 0,
            1 => 1,
            2 => 1_000,
            3 => UNC,
            4 => 100 * UNC,
            5 => balance,
            6 => balance.saturating_add(1),
            7 => Amount::MAX,
            _ => u128::from(input.u64()),
        }
    }

    fn chip_ids(&self, input: &mut crate::Input) -> Vec<[u8; 32]> {
        let mask = input.u8();
        let mut ids: Vec<[u8; 32]> = (0..CHIPS)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| self.f.chips[i].id)
            .collect();
        if mask & 0x80 != 0 {
            if let Some(first) = ids.first().copied() {
                ids.push(first); // a duplicate
            }
        }
        ids
    }

    fn terms(&self, input: &mut crate::Input) -> OfferTerms {
        let min_blocks = input.below(6) as u64;
        OfferTerms {
            chips: self.chip_ids(input),
            price_per_block: [0, 1, 1_000, UNC, Amount::MAX][input.below(5)],
            min_blocks,
            max_blocks: min_blocks + input.below(24) as u64,
            endpoint: ["https://m.example/jobs", "ftp://x", ""][input.below(3)].into(),
            capabilities: Capabilities {
                model: "SMALL".into(),
                memory_mib: 1024,
                tags: vec!["onnx".into()],
            },
        }
    }

    fn gov_action(&self, input: &mut crate::Input) -> GovAction {
        let chip = self.f.chips[input.below(CHIPS)].id;
        match input.below(5) {
            0 => GovAction::RevokeChip { chip_id: chip },
            1 => GovAction::SetModel(Model {
                name: ["SMALL", "BIG", "NEW"][input.below(3)].into(),
                compute_milli_tops: [0, 1, 64_000, u64::MAX][input.below(4)],
            }),
            2 => GovAction::RemoveModel {
                name: ["SMALL", "BIG", "NEW"][input.below(3)].into(),
            },
            3 => GovAction::RevokeCertificate {
                fingerprint: self.f.intermediate,
            },
            _ => GovAction::RemoveRoot {
                fingerprint: self.f.intermediate,
            },
        }
    }

    /// A payload of a kind chosen by the input, mostly well formed.
    fn payload(&self, input: &mut crate::Input, sender: &PrivateKey) -> Payload {
        let f = self.f;
        let me = sender.public_key();
        match input.below(17) {
            0..=2 => Payload::Transfer {
                to: self.address(input),
                amount: self.amount(input, &me),
            },
            3 => {
                let chip = &f.chips[input.below(CHIPS)];
                let back = input.below(20) as u64;
                let anchor = match input.below(4) {
                    0 => self.height + 1, // the future
                    _ => self.height.saturating_sub(back),
                };
                let hash = self
                    .hashes
                    .get(anchor as usize)
                    .copied()
                    .unwrap_or_else(|| Sha256::hash(&[b"unknown"]));
                let owner = if input.below(8) == 0 {
                    self.address(input) // evidence bound to someone else
                } else {
                    me.clone()
                };
                let mut evidence = chip.chip.evidence(CHAIN, &hash, &owner);
                if input.below(8) == 0 && !evidence.is_empty() {
                    let i = input.below(evidence.len());
                    evidence[i] ^= input.u8() | 1;
                }
                Payload::RegisterChip {
                    anchor_height: anchor,
                    evidence,
                }
            }
            4 => Payload::TransferChip {
                chip_id: f.chips[input.below(CHIPS)].id,
                to: self.address(input),
            },
            5 => Payload::DeregisterChip {
                chip_id: f.chips[input.below(CHIPS)].id,
            },
            6 => {
                let action = self.gov_action(input);
                let nonce = match input.below(8) {
                    0 => self.gov_nonce() + 1,
                    _ => self.gov_nonce(),
                };
                let signature = f
                    .gov
                    .sign(GOV_NAMESPACE, &action.approval_message(CHAIN, nonce));
                Payload::Govern {
                    action,
                    approvals: vec![Approval {
                        governor: f.gov.public_key(),
                        signature,
                    }],
                }
            }
            7..=9 => {
                let mut responses = Vec::new();
                let open: Vec<_> = self
                    .challenges
                    .iter()
                    .filter(|(_, h, _)| h + 2 * f.params.response_window >= self.height)
                    .collect();
                let n = input.below(4);
                for _ in 0..n {
                    if open.is_empty() {
                        break;
                    }
                    let (id, h, beacon) = open[input.below(open.len())];
                    let chip = f
                        .chips
                        .iter()
                        .find(|c| c.id == *id)
                        .expect("challenged chips are ours");
                    let (height, beacon) = match input.below(8) {
                        0 => (h + 1, *beacon),
                        1 => (*h, Sha256::hash(&[b"wrong beacon"])),
                        _ => (*h, *beacon),
                    };
                    let digest = response_digest(CHAIN, height, &beacon, id);
                    responses.push(LivenessResponse {
                        chip_id: *id,
                        challenge_height: *h,
                        proof: chip.chip.se.sign_digest(&digest).expect("sign"),
                    });
                }
                Payload::Liveness { responses }
            }
            10 => Payload::RegisterValidator {
                node_key: self.address(input),
                p2p_address: "127.0.0.1:28100".into(),
            },
            11 => Payload::DeregisterValidator,
            12 => Payload::CreateOffer {
                terms: self.terms(input),
            },
            13 => Payload::UpdateOffer {
                offer_id: input.below(4) as u64,
                terms: self.terms(input),
            },
            14 => Payload::WithdrawOffer {
                offer_id: input.below(4) as u64,
            },
            15 => Payload::OpenLease {
                offer_id: input.below(4) as u64,
                chips: self.chip_ids(input),
                deposit: self.amount(input, &me),
            },
            _ => match input.below(2) {
                0 => Payload::TopUp {
                    lease_id: input.below(4) as u64,
                    amount: self.amount(input, &me),
                },
                _ => Payload::CloseLease {
                    lease_id: input.below(4) as u64,
                },
            },
        }
    }

    /// The transactions of the next block.
    fn txs(&self, input: &mut crate::Input) -> Vec<SignedTx> {
        let f = self.f;
        let n = input.below(MAX_TXS + 1);
        let mut nonces: BTreeMap<usize, u64> = BTreeMap::new();
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            let who = input.below(ACCOUNTS);
            let sender = &f.accounts[who];
            let next = nonces
                .entry(who)
                .or_insert_with(|| self.account(&sender.public_key()).nonce);
            let nonce = match input.below(16) {
                0 => next.saturating_sub(1),
                1 => *next + 1,
                _ => *next,
            };
            if nonce == *next {
                *next += 1;
            }
            let fee = match input.below(8) {
                0 => UNC,
                1 => Amount::MAX,
                _ => 1,
            };
            let payload = self.payload(input, sender);
            let tx = Transaction {
                chain_id: CHAIN,
                sender: sender.public_key(),
                nonce,
                fee,
                payload,
            }
            .sign(sender);
            // What the mempool would refuse never reaches a block.
            if tx.check_stateless(CHAIN, f.params.min_fee).is_ok() {
                txs.push(tx);
            }
        }
        txs
    }

    /// Proposes, verifies and applies one block; checks every property.
    fn block(&mut self, txs: &[SignedTx], beacon_salt: u8) {
        let f = self.f;
        assert_eq!(
            check_stateless_batch(txs, CHAIN, f.params.min_fee, |_| false),
            Ok(()),
            "valid signatures refused by the batch check"
        );
        self.height += 1;
        let env = BlockEnv {
            chain_id: CHAIN,
            params: &f.params,
            proposer: f.validators[(self.height % 4) as usize].public_key(),
            height: self.height,
            parent: *self.hashes.last().expect("genesis hash"),
            timestamp_ms: NOW_MS + self.height * 1000,
            beacon: Sha256::hash(&[b"beacon", &self.height.to_be_bytes(), &[beacon_salt]]),
            treasury: Some(f.gov.public_key()),
        };
        let (proposed, included) = self
            .state
            .propose_and_verify(&env, txs)
            .unwrap_or_else(|e| {
                let kinds: Vec<String> = txs
                    .iter()
                    .map(|t| format!("{:?}", t.tx.payload).chars().take(160).collect())
                    .collect();
                panic!("{e} (a failed proposal halts the chain)\ntxs: {kinds:#?}")
            });
        for e in &proposed.events {
            if let Event::Challenge {
                chip_id,
                height,
                beacon,
                ..
            } = e
            {
                self.challenges.push((*chip_id, *height, *beacon));
            }
        }
        let keep = self.height.saturating_sub(4 * f.params.response_window);
        self.challenges.retain(|(_, h, _)| *h >= keep);
        for tx in &included {
            if let Payload::Transfer { to, .. } = &tx.tx.payload {
                self.addresses.insert(to.clone());
            }
        }
        self.hashes
            .push(Sha256::hash(&[b"block", &self.height.to_be_bytes()]));
        self.assert_supply();
        BLOCKS.fetch_add(1, Ordering::Relaxed);
    }

    fn assert_supply(&self) {
        self.state
            .assert_supply(&self.addresses, &format!("height {}", self.height));
    }
}

/// Runs the blocks `data` describes (see the module documentation).
pub fn state_blocks(data: &[u8]) {
    let mut input = crate::Input::new(data);
    let mut net = Net::new();
    while !input.is_empty() && net.height < MAX_BLOCKS {
        match input.below(8) {
            // A run of empty blocks: epochs roll, challenges expire, leases settle.
            0 => {
                for _ in 0..1 + input.below(EPOCH as usize) {
                    net.block(&[], 0);
                }
            }
            _ => {
                let txs = net.txs(&mut input);
                let salt = input.u8();
                net.block(&txs, salt);
            }
        }
    }
}

/// Seed inputs: a few pseudo-random byte strings (every byte string is a valid program).
pub fn seeds() -> Vec<Vec<u8>> {
    (1..=3u64)
        .map(|seed| {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            (0..1024)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

/// Transactions of every kind as the stateful target generates them (seeds for the decoders).
pub fn sample_txs() -> Vec<SignedTx> {
    let mut all = Vec::new();
    for seed in seeds() {
        let mut input = crate::Input::new(&seed);
        let mut net = Net::new();
        while !input.is_empty() && net.height < 24 {
            let txs = net.txs(&mut input);
            net.block(&txs, 0);
            all.extend(txs);
        }
    }
    all
}
