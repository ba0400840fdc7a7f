//! Block building must never stop: random transactions of every kind, at random heights.
//!
//! Each block is built the way a proposer builds it (`execute` in `Mode::Propose` on exactly
//! the keys the loader asks for, through `unet_state::testing`), then re-executed the way every other validator checks
//! it (`Mode::Verify` on the included transactions only). Proposing must succeed at every
//! height, verification must reproduce the proposer's writes byte for byte, and the supply
//! invariant `genesis + minted - burned == balances + escrowed` must hold after every block.
//!
//! The transactions are drawn from a seeded generator: valid and invalid transfers, chip
//! registrations (fresh and stale anchors), chip transfers and deregistrations (by the owner
//! and by strangers), liveness answers (right, wrong, late, copied), governance revocations,
//! validator registrations and every market payload, across epoch boundaries and the reward
//! cursor's payout window. A failure prints the seed and height to replay.

use commonware_codec::DecodeExt;
use commonware_cryptography::{Hasher, Sha256, Signer};
use rand::{seq::IndexedRandom, Rng, RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use unet_poci::secure_element::DevnetVendorCa;
use unet_state::{
    testing::{self, MemState, TestChip, TestGenesis},
    BlockEnv, Event,
};
use unet_types::{
    chip::{Approval, Chip, GovAction, Registry, GOV_NAMESPACE},
    keys::{chip_index_key, chip_key, registry_key, supply_key, Account, Supply},
    liveness::LivenessResponse,
    market::{Capabilities, OfferTerms},
    rewards::{epoch_state_key, owner_rewards_key, EpochState},
    Address, Digest, Params, Payload, PrivateKey, SignedTx, Transaction, UNC,
};

const CHAIN: u64 = 91;
const L: u64 = 20;
const WINDOW: u64 = 4;

fn gov() -> PrivateKey {
    testing::governor()
}

fn ca() -> DevnetVendorCa {
    DevnetVendorCa::from_seed(b"chaos vendor").unwrap()
}

/// An in-memory chain driven block by block.
struct Chain {
    state: MemState,
    params: Params,
    height: u64,
    hashes: Vec<Digest>,
    /// Every account that can hold a balance (the invariant sums them).
    keys: Vec<PrivateKey>,
    validators: Vec<PrivateKey>,
    /// Challenges by the height that issued them.
    challenges: BTreeMap<u64, Vec<[u8; 32]>>,
}

impl Chain {
    fn new(funded: &[PrivateKey], keys: Vec<PrivateKey>) -> Self {
        let params = testing::params(L, WINDOW);
        let validators: Vec<PrivateKey> = (0..4).map(testing::validator).collect();
        let mut genesis = TestGenesis::new(CHAIN, "chaos", params.clone(), &ca());
        genesis.funded = funded.iter().map(|k| k.public_key()).collect();
        let mut keys = keys;
        keys.extend(validators.iter().cloned());
        keys.push(gov());
        Self {
            state: genesis.state(),
            params,
            height: 0,
            hashes: vec![Sha256::hash(&[b"genesis"])],
            keys,
            validators,
            challenges: BTreeMap::new(),
        }
    }

    fn env<'a>(&self, params: &'a Params) -> BlockEnv<'a> {
        let height = self.height + 1;
        BlockEnv {
            chain_id: CHAIN,
            params,
            proposer: self.validators[(height % 4) as usize].public_key(),
            height,
            parent: *self.hashes.last().unwrap(),
            timestamp_ms: testing::NOW_MS + height * 1000,
            beacon: testing::beacon(height),
            treasury: Some(gov().public_key()),
        }
    }

    /// Proposes a block from `candidates`, verifies it as a peer would, applies it, and
    /// checks the invariants. Returns the events.
    fn block(&mut self, candidates: &[SignedTx], context: &str) -> Vec<Event> {
        let params = self.params.clone();
        let env = self.env(&params);
        let (verified, _) = self
            .state
            .propose_and_verify(&env, candidates)
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        let height = env.height;
        self.height = height;
        self.hashes
            .push(Sha256::hash(&[b"block", &height.to_be_bytes()]));
        for e in &verified.events {
            if let Event::Challenge { chip_id, .. } = e {
                self.challenges.entry(height).or_default().push(*chip_id);
            }
        }
        let addresses: Vec<Address> = self.keys.iter().map(|k| k.public_key()).collect();
        self.state
            .assert_supply(&addresses, &format!("{context}: height {height}"));
        verified.events
    }

    fn get<T: DecodeExt<()>>(&self, key: &Digest) -> Option<T> {
        self.state.get(key)
    }

    fn account(&self, a: &Address) -> Account {
        self.state.account(a)
    }

    fn tx(&self, from: &PrivateKey, nonce: u64, payload: Payload) -> SignedTx {
        Transaction {
            chain_id: CHAIN,
            sender: from.public_key(),
            nonce,
            fee: 1,
            payload,
        }
        .sign(from)
    }

    fn registration(&self, chip: &TestChip, owner: &PrivateKey, anchor: u64) -> Payload {
        let anchor = anchor.min(self.height);
        let hash = self.hashes[anchor as usize];
        Payload::RegisterChip {
            anchor_height: anchor,
            evidence: chip.evidence(CHAIN, &hash, &owner.public_key()),
        }
    }

    fn response(&self, chip: &TestChip, height: u64) -> LivenessResponse {
        chip.answer(CHAIN, height, &testing::beacon(height))
    }

    fn chip(&self, id: &[u8; 32]) -> Option<Chip> {
        self.get(&chip_key(id))
    }

    fn governance(&self, action: GovAction) -> Payload {
        let registry: Registry = self.get(&registry_key()).unwrap();
        let msg = action.approval_message(CHAIN, registry.gov_nonce);
        Payload::Govern {
            action,
            approvals: vec![Approval {
                governor: gov().public_key(),
                signature: gov().sign(GOV_NAMESPACE, &msg),
            }],
        }
    }
}

/// One random transaction (about a third of them invalid in some way). `next` holds each
/// sender's next nonce within the block being built (a mempool sends them in order).
fn random_tx<R: Rng>(
    chain: &Chain,
    chips: &[TestChip],
    next: &mut BTreeMap<Address, u64>,
    rng: &mut R,
) -> SignedTx {
    let from = chain.keys.choose(rng).unwrap().clone();
    let other = chain.keys.choose(rng).unwrap().public_key();
    let chip = chips.choose(rng).unwrap();
    let owned: Vec<[u8; 32]> = chips
        .iter()
        .map(TestChip::id)
        .filter(|id| chain.chip(id).is_some_and(|c| c.owner == from.public_key()))
        .collect();
    // Mostly a chip the sender owns, sometimes anyone's.
    let some_chip = |rng: &mut R| -> [u8; 32] {
        if !owned.is_empty() && rng.random_bool(0.8) {
            *owned.choose(rng).unwrap()
        } else {
            chip.id()
        }
    };
    let payload = match rng.random_range(0..17u32) {
        0..=2 => Payload::Transfer {
            to: other,
            amount: if rng.random_bool(0.8) {
                rng.random_range(1..=20 * UNC)
            } else {
                rng.random_range(1..=u128::MAX / 4)
            },
        },
        3 | 4 => {
            let anchor = if rng.random_bool(0.8) {
                chain.height
            } else {
                rng.random_range(0..=chain.height)
            };
            chain.registration(chip, &from, anchor)
        }
        5 | 6 => Payload::TransferChip {
            chip_id: some_chip(rng),
            to: other,
        },
        // Deregistrations and revocations are rare, so chips stay around long enough to be
        // paid, transferred and leased.
        7 if rng.random_bool(0.15) => Payload::DeregisterChip {
            chip_id: some_chip(rng),
        },
        7 => Payload::TransferChip {
            chip_id: some_chip(rng),
            to: other,
        },
        8 | 9 => {
            let mut responses = Vec::new();
            for h in chain.height.saturating_sub(WINDOW + 1)..=chain.height {
                for id in chain.challenges.get(&h).into_iter().flatten() {
                    if let Some(c) = chips.iter().find(|c| c.id() == *id) {
                        if rng.random_bool(0.9) {
                            responses.push(chain.response(c, h));
                        }
                    }
                }
            }
            if responses.is_empty() || rng.random_bool(0.1) {
                // An answer to nothing, or for a height never challenged.
                responses.push(
                    chain.response(chip, chain.height.saturating_sub(rng.random_range(0..8))),
                );
            }
            Payload::Liveness { responses }
        }
        10 => {
            if rng.random_bool(0.01) {
                let n = next
                    .entry(gov().public_key())
                    .or_insert_with(|| chain.account(&gov().public_key()).nonce);
                let action = GovAction::RevokeChip { chip_id: chip.id() };
                let tx = chain.tx(&gov(), *n, chain.governance(action));
                *n += 1;
                return tx;
            }
            Payload::RegisterValidator {
                node_key: other,
                p2p_address: format!("127.0.0.1:{}", rng.random_range(20_000..30_000u32)),
            }
        }
        11 => Payload::DeregisterValidator,
        12 => {
            let mut chips: Vec<[u8; 32]> = owned.clone();
            if chips.is_empty() || rng.random_bool(0.2) {
                chips.push(chip.id());
            }
            chips.truncate(rng.random_range(1..=chips.len()));
            let min_blocks = rng.random_range(1..6);
            let terms = OfferTerms {
                chips,
                price_per_block: rng.random_range(1..1_000_000u128),
                min_blocks,
                max_blocks: min_blocks + rng.random_range(0..40),
                endpoint: "http://127.0.0.1:8600".into(),
                capabilities: Capabilities {
                    model: "SMALL".into(),
                    memory_mib: 1024,
                    tags: vec![],
                },
            };
            if rng.random_bool(0.3) {
                Payload::UpdateOffer {
                    offer_id: rng.random_range(0..6),
                    terms,
                }
            } else {
                Payload::CreateOffer { terms }
            }
        }
        13 => Payload::WithdrawOffer {
            offer_id: rng.random_range(0..6),
        },
        14 => Payload::OpenLease {
            offer_id: rng.random_range(0..6),
            chips: vec![some_chip(rng)],
            deposit: rng.random_range(1..=50 * UNC),
        },
        15 => Payload::TopUp {
            lease_id: rng.random_range(0..6),
            amount: rng.random_range(1..=5 * UNC),
        },
        _ => Payload::CloseLease {
            lease_id: rng.random_range(0..6),
        },
    };
    let n = next
        .entry(from.public_key())
        .or_insert_with(|| chain.account(&from.public_key()).nonce);
    let nonce = match rng.random_range(0..20u32) {
        0 => n.saturating_sub(1),
        1 => *n + 1,
        _ => {
            *n += 1;
            *n - 1
        }
    };
    chain.tx(&from, nonce, payload)
}

fn setup() -> (Chain, Vec<TestChip>) {
    let keys: Vec<PrivateKey> = (1..=10).map(PrivateKey::from_seed).collect();
    // Keys 9 and 10 are never funded.
    let chain = Chain::new(&keys[..8], keys.clone());
    let chips = (1..=8)
        .map(|n| TestChip::provision(&ca(), n, if n % 2 == 0 { "BIG" } else { "SMALL" }))
        .collect();
    (chain, chips)
}

fn run_seed(seed: u64, blocks: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut chain, chips) = setup();
    let context = format!("seed {seed}");
    // Register most chips early so the cursor has chips to pay.
    let owners: Vec<PrivateKey> = chain.keys[..6].to_vec();
    let regs: Vec<SignedTx> = chips
        .iter()
        .take(6)
        .enumerate()
        .map(|(i, c)| {
            let o = &owners[i % owners.len()];
            chain.tx(o, 0, chain.registration(c, o, 0))
        })
        .collect();
    chain.block(&regs, &context);
    let mut kinds = BTreeSet::new();
    while chain.height < blocks {
        let n = rng.random_range(0..12);
        let mut next = BTreeMap::new();
        let txs: Vec<SignedTx> = (0..n)
            .map(|_| random_tx(&chain, &chips, &mut next, &mut rng))
            .collect();
        for t in &txs {
            kinds.insert(t.tx.payload.kind());
        }
        chain.block(&txs, &context);
    }
    assert_eq!(
        kinds.len(),
        14,
        "{context}: every payload kind was thrown: {kinds:?}"
    );
    let s: Supply = chain.get(&supply_key()).unwrap();
    assert!(s.minted > 0, "{context}: rewards were paid");
}

#[test]
fn random_blocks_of_every_kind_always_propose_verify_and_keep_supply() {
    for seed in 1..=3 {
        run_seed(seed, 1_200);
    }
}

/// The halt found by review: a chip transfer in the very block where the reward cursor pays
/// that chip. The planner loaded the old owner's entries, the cursor paid the new owner, and
/// execution failed for a missing key at every proposer.
#[test]
fn chip_transferred_in_its_payout_block_pays_the_new_owner() {
    let (mut chain, chips) = setup();
    let owner = chain.keys[0].clone();
    let buyer = chain.keys[8].clone(); // never funded: only the reward can credit it
    let regs: Vec<SignedTx> = chips
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, c)| chain.tx(&owner, i as u64, chain.registration(c, &owner, 0)))
        .collect();
    chain.block(&regs, "setup");
    // Answer every challenge until the first payout window opens.
    while chain.height < L - 1 {
        let mut responses = Vec::new();
        for id in chain.challenges.get(&chain.height).into_iter().flatten() {
            let c = chips.iter().find(|c| c.id() == *id).unwrap();
            responses.push(chain.response(c, chain.height));
        }
        let txs = if responses.is_empty() {
            vec![]
        } else {
            let nonce = chain.account(&owner.public_key()).nonce;
            vec![chain.tx(&owner, nonce, Payload::Liveness { responses })]
        };
        chain.block(&txs, "warm-up");
    }
    // Walk the payout window; in the block where the cursor (after the transactions) pays
    // the chip at index 1, transfer that chip to the buyer.
    let target = chips[1].id();
    loop {
        let height = chain.height + 1;
        assert!(height < 2 * L, "the cursor never reached the chip");
        let state: EpochState = chain.get(&epoch_state_key()).unwrap();
        let registry: Registry = chain.get(&registry_key()).unwrap();
        let ranges =
            unet_state::rewards::cursor_ranges(&state, &chain.params, height, registry.chip_count);
        // The last range is the step after the transactions.
        let pays_target_after_txs = height % L != 0
            && ranges.last().is_some_and(|(_, from, to)| {
                (*from..*to).any(|p| chain.get::<[u8; 32]>(&chip_index_key(p)) == Some(target))
            });
        if !pays_target_after_txs {
            chain.block(&[], "payout walk");
            continue;
        }
        let nonce = chain.account(&owner.public_key()).nonce;
        let tx = chain.tx(
            &owner,
            nonce,
            Payload::TransferChip {
                chip_id: target,
                to: buyer.public_key(),
            },
        );
        let events = chain.block(&[tx], "transfer in payout block");
        let paid = events.iter().find_map(|e| match e {
            Event::Reward {
                chip_id,
                owner,
                amount,
                ..
            } if *chip_id == target => Some((owner.clone(), *amount)),
            _ => None,
        });
        let (paid_to, amount) = paid.expect("the chip was paid in this block");
        assert_eq!(paid_to, buyer.public_key());
        assert!(amount > 0);
        assert_eq!(chain.account(&buyer.public_key()).balance, amount);
        let recorded: u128 = chain
            .get(&owner_rewards_key(&buyer.public_key(), 0))
            .unwrap();
        assert_eq!(recorded, amount);
        return;
    }
}
