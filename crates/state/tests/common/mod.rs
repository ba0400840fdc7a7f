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
use unet_poci::{secure_element::DevnetVendorCa, Curve, Evidence, VendorX509Evidence};
use unet_state::{
    execute, genesis_writes, load_touched, BlockEnv, Event, Mode, PreState, Receipt, TxStatus,
};
use unet_types::{
    chip::{registration_nonce, Chip, ChipStatus, Model},
    epoch::{committee_key, Committee},
    genesis::{Allocation, GenesisRoot, PociGenesis, Validator},
    keys::{account_key, chip_key, supply_key, Account, Supply},
    liveness::{response_digest, LivenessResponse},
    rewards::{epoch_emission, epochs_per_era, MINED_CAP},
    Address, Amount, Digest, Genesis, Params, Payload, PrivateKey, SignedTx, Transaction, UNC,
};

pub const CHAIN: u64 = 77;
pub const NOW_MS: u64 = 1_795_305_600_000;
pub const L: u64 = 20;
pub const WINDOW: u64 = 4;

pub struct TestChip {
    pub se: unet_poci::secure_element::SoftSecureElement,
    pub chain: Vec<Vec<u8>>,
    pub owner: PrivateKey,
}

impl TestChip {
    pub fn id(&self) -> [u8; 32] {
        self.se.chip_id()
    }
}

pub struct Net {
    pub entries: BTreeMap<Digest, Vec<u8>>,
    pub params: Params,
    pub height: u64,
    pub hashes: Vec<Digest>,
    pub nonces: BTreeMap<Address, u64>,
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

pub fn gov() -> PrivateKey {
    PrivateKey::from_seed(9_000)
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
        let mut params = Params {
            min_fee: 1,
            registration_window: 16,
            epoch_length: L,
            response_window: WINDOW,
            challenges_per_epoch: 2,
            committee_size: 4,
            max_misses_per_epoch: 2,
            ..Params::default()
        };
        tweak(&mut params);
        let validators = (0..4)
            .map(|i| Validator {
                name: format!("v{i}"),
                public_key: PrivateKey::from_seed(100 + i).public_key(),
                p2p_address: format!("127.0.0.1:{}", 4000 + i),
            })
            .collect();
        let genesis = Genesis {
            chain_id: CHAIN,
            chain_name: "liveness".into(),
            genesis_time_ms: NOW_MS,
            params: params.clone(),
            consensus_polynomial: String::new(),
            validators,
            allocations: funded
                .iter()
                .map(|k| Allocation {
                    address: k.public_key(),
                    amount: 1_000 * UNC,
                    label: String::new(),
                })
                .collect(),
            poci: PociGenesis {
                allow_devnet_roots: true,
                models: vec![
                    Model {
                        name: "SMALL".into(),
                        compute_milli_tops: 32_000,
                    },
                    Model {
                        name: "BIG".into(),
                        compute_milli_tops: 96_000,
                    },
                ],
                roots: vec![GenesisRoot {
                    kind: "vendor-x509".into(),
                    der_hex: hex::encode(ca().root_der()),
                    devnet_only: true,
                    label: "test".into(),
                }],
                governance: vec![hex::encode(gov().public_key())],
                governance_threshold: 1,
            },
            treasury: Some(hex::encode(gov().public_key())),
        };
        genesis.validate().unwrap();
        let entries = genesis_writes(&genesis).unwrap().into_iter().collect();
        let mut net = Self {
            entries,
            params,
            height: start,
            hashes: vec![Sha256::hash(&[b"genesis"])],
            nonces: BTreeMap::new(),
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

    /// Executes a block (verify mode) and returns each receipt's status.
    pub fn block(&mut self, txs: &[SignedTx]) -> Vec<TxStatus> {
        self.height += 1;
        let env = BlockEnv {
            chain_id: CHAIN,
            params: &self.params,
            proposer: PrivateKey::from_seed(100).public_key(),
            height: self.height,
            parent: *self.hashes.last().unwrap(),
            timestamp_ms: NOW_MS + (self.height - self.start) * 1000,
            beacon: Sha256::hash(&[b"beacon", &self.height.to_be_bytes()]),
            treasury: Some(self.treasury.clone()),
        };
        let pre: PreState = load_touched(&env, txs, |keys| {
            Ok::<_, ()>(keys.iter().map(|k| self.entries.get(k).cloned()).collect())
        })
        .unwrap();
        let out = execute(&env, &pre, txs, Mode::Verify).expect("block is valid");
        for (k, v) in out.writes {
            match v {
                Some(v) => self.entries.insert(k, v),
                None => self.entries.remove(&k),
            };
        }
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
        self.entries
            .get(&chip_key(id))
            .map(|b| Chip::decode(b.clone()).unwrap())
    }

    pub fn supply(&self) -> Supply {
        Supply::decode(self.entries[&supply_key()].clone()).unwrap()
    }

    pub fn assert_invariants(&self) {
        let s = self.supply();
        let mut addresses = self.addresses.clone();
        addresses.insert(self.treasury.clone());
        addresses.insert(PrivateKey::from_seed(100).public_key());
        let balances: Amount = addresses
            .iter()
            .filter_map(|a| self.entries.get(&account_key(a)))
            .map(|v| Account::decode(v.clone()).unwrap().balance)
            .sum();
        assert_eq!(
            s.genesis + s.minted - s.burned,
            balances + s.escrowed,
            "supply invariant at height {}",
            self.height
        );
        assert!(s.minted <= MINED_CAP);
    }

    pub fn tx(&mut self, from: &PrivateKey, payload: Payload) -> SignedTx {
        if let Payload::Transfer { to, .. } = &payload {
            self.addresses.insert(to.clone());
        }
        let n = self.nonces.entry(from.public_key()).or_default();
        let tx = Transaction {
            chain_id: CHAIN,
            sender: from.public_key(),
            nonce: *n,
            fee: 1,
            payload,
        }
        .sign(from);
        *n += 1;
        tx
    }

    pub fn register(&mut self, chip: &TestChip) -> SignedTx {
        let anchor = self.height;
        let hash = *self.hashes.last().unwrap();
        let nonce = registration_nonce(CHAIN, &hash, &chip.owner.public_key());
        let evidence = Evidence::VendorX509(VendorX509Evidence {
            nonce,
            chain: chip.chain.clone(),
            signature: chip.se.sign_registration(&nonce).unwrap(),
        })
        .encode()
        .unwrap();
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
        let beacon = Sha256::hash(&[b"beacon", &height.to_be_bytes()]);
        let digest = response_digest(CHAIN, height, &beacon, &chip.id());
        LivenessResponse {
            chip_id: chip.id(),
            challenge_height: height,
            proof: chip.se.sign_digest(&digest).unwrap(),
        }
    }

    pub fn committee(&self, epoch: u64) -> Committee {
        Committee::decode(self.entries[&committee_key(epoch)].clone()).unwrap()
    }
}

pub fn make_chip(n: u8, model: &str, owner: PrivateKey) -> TestChip {
    let (se, chain) = ca()
        .provision_chip([n; 16], &[n], Curve::P256, model, &format!("SN-{n}"))
        .unwrap();
    TestChip { se, chain, owner }
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
