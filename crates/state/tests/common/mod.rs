//! The block-by-block harness shared by the state transition's integration tests: a genesis
//! with two models, a devnet vendor CA and one governor (also the treasury); every block is
//! executed in verify mode from exactly the keys `load_touched` asks for, and the supply
//! invariant and the mined cap are checked after each.
//!
//! An independent model tracks which chips are Online at the end of every block and computes
//! each chip's expected reward from the emission schedule.

#![allow(dead_code)]

use commonware_codec::DecodeExt;
use commonware_cryptography::{Hasher, Sha256, Signer};
use std::collections::BTreeMap;
use unet_poci::secure_element::DevnetVendorCa;
use unet_state::{
    testing::{self, MemState, Nonces, TestGenesis},
    BlockEnv, Event, Receipt, TxStatus,
};
use unet_types::{
    chip::{Chip, ChipStatus},
    epoch::{committee_key, Committee},
    keys::{chip_key, Supply},
    liveness::LivenessResponse,
    rewards::{epoch_emission, epochs_per_era},
    Address, Amount, Digest, Params, Payload, PrivateKey, SignedTx,
};

pub const CHAIN: u64 = 77;
pub const NOW_MS: u64 = testing::NOW_MS;
pub const L: u64 = 20;
pub const WINDOW: u64 = 4;

/// A devnet chip and the key of its owner.
pub struct TestChip {
    pub chip: testing::TestChip,
    pub owner: PrivateKey,
}

impl std::ops::Deref for TestChip {
    type Target = testing::TestChip;
    fn deref(&self) -> &testing::TestChip {
        &self.chip
    }
}

pub struct Net {
    pub state: MemState,
    pub params: Params,
    pub height: u64,
    pub hashes: Vec<Digest>,
    pub nonces: Nonces,
    pub treasury: Address,
    /// Model: online weight per (epoch, chip) and total per epoch.
    pub weight: BTreeMap<(u64, [u8; 32]), u128>,
    pub total: BTreeMap<u64, u128>,
    pub events: Vec<(u64, Event)>,
    /// Chip ids registered through this harness.
    pub known: Vec<[u8; 32]>,
    /// Every account that can hold a balance.
    pub addresses: std::collections::BTreeSet<Address>,
    /// Receipts of the last block.
    pub receipts: Vec<Receipt>,
    /// Height before the first block (timestamps count from there).
    pub start: u64,
}

/// `net.entries` is the state's map.
impl std::ops::Deref for Net {
    type Target = MemState;
    fn deref(&self) -> &MemState {
        &self.state
    }
}

impl std::ops::DerefMut for Net {
    fn deref_mut(&mut self) -> &mut MemState {
        &mut self.state
    }
}

pub fn gov() -> PrivateKey {
    testing::governor()
}

pub fn ca() -> DevnetVendorCa {
    DevnetVendorCa::from_seed(b"liveness vendor").unwrap()
}

impl Net {
    /// A chain with 20-block epochs, a 4-block response window and 2 challenges per chip and
    /// epoch, at height 1.
    pub fn new(funded: &[&PrivateKey]) -> Self {
        Self::with(funded, |_| {}, 0)
    }

    /// Like [`Net::new`] with `tweak` applied to the parameters, and its first block at
    /// height `start + 1` (the state is genesis until then).
    pub fn with(funded: &[&PrivateKey], tweak: impl FnOnce(&mut Params), start: u64) -> Self {
        let mut params = testing::params(L, WINDOW);
        tweak(&mut params);
        let mut genesis = TestGenesis::new(CHAIN, "liveness", params.clone(), &ca());
        genesis.funded = funded.iter().map(|k| k.public_key()).collect();
        let mut net = Self {
            state: genesis.state(),
            params,
            height: start,
            hashes: vec![Sha256::hash(&[b"genesis"])],
            nonces: Nonces::default(),
            treasury: gov().public_key(),
            weight: BTreeMap::new(),
            total: BTreeMap::new(),
            events: Vec::new(),
            known: Vec::new(),
            addresses: funded.iter().map(|k| k.public_key()).collect(),
            receipts: Vec::new(),
            start,
        };
        net.block(&[]);
        net
    }

    /// The environment of the next block.
    pub fn next_env(&self) -> BlockEnv<'_> {
        let height = self.height + 1;
        BlockEnv {
            chain_id: CHAIN,
            params: &self.params,
            proposer: PrivateKey::from_seed(100).public_key(),
            height,
            parent: *self.hashes.last().unwrap(),
            timestamp_ms: NOW_MS + (height - self.start) * 1000,
            beacon: testing::beacon(height),
            treasury: Some(self.treasury.clone()),
        }
    }

    /// Executes a block (verify mode) and returns each receipt's status.
    pub fn block(&mut self, txs: &[SignedTx]) -> Vec<TxStatus> {
        let params = self.params.clone();
        let env = BlockEnv {
            params: &params,
            ..self.next_env()
        };
        let out = self.state.verify_block(&env, txs);
        self.height += 1;
        self.hashes
            .push(Sha256::hash(&[&self.height.to_be_bytes()]));
        // Model: every chip Online at the end of the block earns weight for this block.
        let epoch = self.height / self.params.epoch_length;
        let chips: Vec<Chip> = self.chips().into_values().collect();
        for c in chips {
            if c.status == ChipStatus::Online {
                let kind = unet_poci::EvidenceKind::from_tag(c.kind).unwrap();
                let id32 = unet_poci::chip_id(kind, &c.device_key);
                *self.weight.entry((epoch, id32)).or_default() += u128::from(c.live.compute);
                *self.total.entry(epoch).or_default() += u128::from(c.live.compute);
            }
        }
        self.assert_invariants();
        for e in out.events {
            self.events.push((self.height, e));
        }
        self.receipts = out.receipts;
        self.receipts.iter().map(|r| r.status.clone()).collect()
    }

    pub fn chips(&self) -> BTreeMap<Digest, Chip> {
        self.known
            .iter()
            .filter_map(|id| self.chip(id).map(|c| (chip_key(id), c)))
            .collect()
    }

    pub fn chip(&self, id: &[u8; 32]) -> Option<Chip> {
        self.state.get(&chip_key(id))
    }

    pub fn supply(&self) -> Supply {
        self.state.supply()
    }

    pub fn assert_invariants(&self) {
        let mut addresses = self.addresses.clone();
        addresses.insert(self.treasury.clone());
        addresses.insert(PrivateKey::from_seed(100).public_key());
        self.state
            .assert_supply(&addresses, &format!("height {}", self.height));
    }

    pub fn tx(&mut self, from: &PrivateKey, payload: Payload) -> SignedTx {
        if let Payload::Transfer { to, .. } = &payload {
            self.addresses.insert(to.clone());
        }
        self.nonces.tx(CHAIN, from, 1, payload)
    }

    pub fn register(&mut self, chip: &TestChip) -> SignedTx {
        let anchor = self.height;
        let hash = *self.hashes.last().unwrap();
        let evidence = chip.evidence(CHAIN, &hash, &chip.owner.public_key());
        self.known.push(chip.id());
        self.tx(
            &chip.owner,
            Payload::RegisterChip {
                anchor_height: anchor,
                evidence,
            },
        )
    }

    /// Challenges issued at `height`.
    pub fn challenges_at(&self, height: u64) -> Vec<[u8; 32]> {
        self.events
            .iter()
            .filter(|(h, _)| *h == height)
            .filter_map(|(_, e)| match e {
                Event::Challenge { chip_id, .. } => Some(*chip_id),
                _ => None,
            })
            .collect()
    }

    pub fn response(&self, chip: &TestChip, height: u64) -> LivenessResponse {
        chip.answer(CHAIN, height, &testing::beacon(height))
    }

    pub fn committee(&self, epoch: u64) -> Committee {
        Committee::decode(self.entries[&committee_key(epoch)].clone()).unwrap()
    }
}

/// A chain with `n` SMALL chips registered in its first block, chip `i` owned by the key of
/// seed `i + 1`.
pub fn registered(n: u8) -> (Net, Vec<TestChip>) {
    let owners: Vec<PrivateKey> = (1..=u64::from(n)).map(PrivateKey::from_seed).collect();
    let mut net = Net::new(&owners.iter().collect::<Vec<_>>());
    let chips: Vec<TestChip> = (1..=n)
        .zip(&owners)
        .map(|(i, owner)| make_chip(i, "SMALL", owner.clone()))
        .collect();
    let txs: Vec<_> = chips.iter().map(|c| net.register(c)).collect();
    assert!(net.block(&txs).iter().all(|s| *s == TxStatus::Ok));
    (net, chips)
}

pub fn make_chip(n: u8, model: &str, owner: PrivateKey) -> TestChip {
    TestChip {
        chip: testing::TestChip::provision(&ca(), n, model),
        owner,
    }
}

pub fn code(s: &TxStatus) -> String {
    match s {
        TxStatus::Failed { code, .. } => code.clone(),
        TxStatus::Ok => "ok".into(),
    }
}

/// Runs blocks until `until`, with each chip in `answering` answering every challenge in the
/// block right after it (one transaction per owner).
pub fn run(
    net: &mut Net,
    chips: &[&TestChip],
    answering: impl Fn(&TestChip, u64) -> bool,
    until: u64,
) {
    while net.height < until {
        let last = net.height;
        let challenged = net.challenges_at(last);
        let mut by_owner: BTreeMap<Address, (PrivateKey, Vec<LivenessResponse>)> = BTreeMap::new();
        for c in chips {
            if challenged.contains(&c.id()) && answering(c, net.height + 1) {
                by_owner
                    .entry(c.owner.public_key())
                    .or_insert_with(|| (c.owner.clone(), Vec::new()))
                    .1
                    .push(net.response(c, last));
            }
        }
        let txs: Vec<SignedTx> = by_owner
            .into_values()
            .map(|(k, responses)| net.tx(&k, Payload::Liveness { responses }))
            .collect();
        let statuses = net.block(&txs);
        assert!(statuses.iter().all(|s| *s == TxStatus::Ok), "{statuses:?}");
        assert!(net.receipts.iter().all(|r| r.skipped.is_empty()));
    }
}

pub fn rewards_of(net: &Net, chip: &[u8; 32], epoch: u64) -> Option<Amount> {
    net.events.iter().find_map(|(_, e)| match e {
        Event::Reward {
            chip_id,
            epoch: ep,
            amount,
            ..
        } if chip_id == chip && *ep == epoch => Some(*amount),
        _ => None,
    })
}

pub fn expected(net: &Net, chip: &[u8; 32], epoch: u64) -> Amount {
    let per_era = epochs_per_era(net.params.halving_blocks, net.params.epoch_length);
    let e = epoch_emission(epoch, per_era);
    let w = net.weight.get(&(epoch, *chip)).copied().unwrap_or(0);
    let t = net.total[&epoch];
    // 256-bit-safe reference: e = q * t + r.
    (e / t) * w + (e % t) * w / t
}
