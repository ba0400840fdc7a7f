//! Online proofs, rewards and committee choice through the state transition, block by block.
//!
//! An independent model in this file tracks which chips are Online at the end of every block
//! and computes each chip's expected reward from the emission schedule; the chain must pay
//! exactly that. The supply invariant and the mined cap are checked after every block.

use commonware_codec::DecodeExt;
use commonware_cryptography::{Hasher, Sha256, Signer};
use std::collections::BTreeMap;
use unet_poci::{secure_element::DevnetVendorCa, Curve, Evidence, VendorX509Evidence};
use unet_state::{
    execute, genesis_writes, load_touched, BlockEnv, Event, Mode, PreState, TxStatus,
};
use unet_types::{
    chip::{registration_nonce, Approval, Chip, ChipStatus, GovAction, Model, GOV_NAMESPACE},
    epoch::{committee_key, Committee},
    genesis::{Allocation, GenesisRoot, PociGenesis, Validator},
    keys::{account_key, chip_key, supply_key, Account, Supply},
    liveness::{response_digest, LivenessResponse},
    rewards::{epoch_emission, epochs_per_era, MINED_CAP},
    Address, Amount, Digest, Genesis, Params, Payload, PrivateKey, SignedTx, Transaction, UNC,
};

const CHAIN: u64 = 77;
const NOW_MS: u64 = 1_795_305_600_000;
const L: u64 = 20;
const WINDOW: u64 = 4;

struct TestChip {
    se: unet_poci::secure_element::SoftSecureElement,
    chain: Vec<Vec<u8>>,
    owner: PrivateKey,
}

impl TestChip {
    fn id(&self) -> [u8; 32] {
        self.se.chip_id()
    }
}

struct Net {
    entries: BTreeMap<Digest, Vec<u8>>,
    params: Params,
    height: u64,
    hashes: Vec<Digest>,
    nonces: BTreeMap<Address, u64>,
    treasury: Address,
    /// Model: online weight per (epoch, chip) and total per epoch.
    weight: BTreeMap<(u64, [u8; 32]), u128>,
    total: BTreeMap<u64, u128>,
    events: Vec<(u64, Event)>,
    /// Chip ids registered through this harness.
    known: Vec<[u8; 32]>,
    /// Every account that can hold a balance.
    addresses: std::collections::BTreeSet<Address>,
}

fn gov() -> PrivateKey {
    PrivateKey::from_seed(9_000)
}

fn ca() -> DevnetVendorCa {
    DevnetVendorCa::from_seed(b"liveness vendor").unwrap()
}

impl Net {
    fn new(funded: &[&PrivateKey]) -> Self {
        let params = Params {
            min_fee: 1,
            registration_window: 16,
            epoch_length: L,
            response_window: WINDOW,
            challenges_per_epoch: 2,
            committee_size: 4,
            max_misses_per_epoch: 2,
            ..Params::default()
        };
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
            height: 0,
            hashes: vec![Sha256::hash(&[b"genesis"])],
            nonces: BTreeMap::new(),
            treasury: gov().public_key(),
            weight: BTreeMap::new(),
            total: BTreeMap::new(),
            events: Vec::new(),
            known: Vec::new(),
            addresses: funded.iter().map(|k| k.public_key()).collect(),
        };
        net.block(&[]);
        net
    }

    fn block(&mut self, txs: &[SignedTx]) -> Vec<TxStatus> {
        self.height += 1;
        let env = BlockEnv {
            chain_id: CHAIN,
            params: &self.params,
            proposer: PrivateKey::from_seed(100).public_key(),
            height: self.height,
            parent: *self.hashes.last().unwrap(),
            timestamp_ms: NOW_MS + self.height * 1000,
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
        let epoch = self.height / L;
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
        out.receipts.into_iter().map(|r| r.status).collect()
    }

    fn chips(&self) -> BTreeMap<Digest, Chip> {
        self.known
            .iter()
            .filter_map(|id| self.chip(id).map(|c| (chip_key(id), c)))
            .collect()
    }

    fn chip(&self, id: &[u8; 32]) -> Option<Chip> {
        self.entries
            .get(&chip_key(id))
            .map(|b| Chip::decode(b.clone()).unwrap())
    }

    fn supply(&self) -> Supply {
        Supply::decode(self.entries[&supply_key()].clone()).unwrap()
    }

    fn assert_invariants(&self) {
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

    fn tx(&mut self, from: &PrivateKey, payload: Payload) -> SignedTx {
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

    fn register(&mut self, chip: &TestChip) -> SignedTx {
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
    fn challenges_at(&self, height: u64) -> Vec<[u8; 32]> {
        self.events
            .iter()
            .filter(|(h, _)| *h == height)
            .filter_map(|(_, e)| match e {
                Event::Challenge { chip_id, .. } => Some(*chip_id),
                _ => None,
            })
            .collect()
    }

    fn response(&self, chip: &TestChip, height: u64) -> LivenessResponse {
        let beacon = Sha256::hash(&[b"beacon", &height.to_be_bytes()]);
        let digest = response_digest(CHAIN, height, &beacon, &chip.id());
        LivenessResponse {
            chip_id: chip.id(),
            challenge_height: height,
            proof: chip.se.sign_digest(&digest).unwrap(),
        }
    }

    fn committee(&self, epoch: u64) -> Committee {
        Committee::decode(self.entries[&committee_key(epoch)].clone()).unwrap()
    }
}

fn make_chip(n: u8, model: &str, owner: PrivateKey) -> TestChip {
    let (se, chain) = ca()
        .provision_chip([n; 16], &[n], Curve::P256, model, &format!("SN-{n}"))
        .unwrap();
    TestChip { se, chain, owner }
}

fn code(s: &TxStatus) -> String {
    match s {
        TxStatus::Failed { code, .. } => code.clone(),
        TxStatus::Ok => "ok".into(),
    }
}

/// Runs blocks until `until`, with each chip in `answering` answering every challenge in the
/// block right after it (one transaction per owner).
fn run(net: &mut Net, chips: &[&TestChip], answering: impl Fn(&TestChip, u64) -> bool, until: u64) {
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
    }
}

fn rewards_of(net: &Net, chip: &[u8; 32], epoch: u64) -> Option<Amount> {
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

fn expected(net: &Net, chip: &[u8; 32], epoch: u64) -> Amount {
    let per_era = epochs_per_era(net.params.halving_blocks, L);
    let e = epoch_emission(epoch, per_era);
    let w = net.weight.get(&(epoch, *chip)).copied().unwrap_or(0);
    let t = net.total[&epoch];
    // 256-bit-safe reference: e = q * t + r.
    (e / t) * w + (e % t) * w / t
}

#[test]
fn answering_chips_earn_exactly_their_share_and_an_offline_chip_stops_then_recovers() {
    let owners: Vec<PrivateKey> = (1..=3).map(PrivateKey::from_seed).collect();
    let mut net = Net::new(&owners.iter().collect::<Vec<_>>());
    let a = make_chip(1, "SMALL", owners[0].clone());
    let b = make_chip(2, "BIG", owners[1].clone());
    let c = make_chip(3, "SMALL", owners[2].clone());
    let txs = vec![net.register(&a), net.register(&b), net.register(&c)];
    assert!(net.block(&txs).iter().all(|s| *s == TxStatus::Ok));
    for chip in [&a, &b, &c] {
        assert_eq!(net.chip(&chip.id()).unwrap().status, ChipStatus::Online);
    }

    // Epochs 0..=2: everyone answers. Epoch 3 onwards: c's miner is down until height 100.
    let down = 3 * L..100;
    run(
        &mut net,
        &[&a, &b, &c],
        |chip, h| !(chip.id() == c.id() && down.contains(&h)),
        8 * L,
    );

    // c went Unresponsive exactly one window after its first unanswered challenge, and came
    // back Online when it answered again.
    let first_missed = net
        .events
        .iter()
        .find_map(|(h, e)| match e {
            Event::Challenge { chip_id, .. } if *chip_id == c.id() && down.contains(&(h + 1)) => {
                Some(*h)
            }
            _ => None,
        })
        .expect("c was challenged while down");
    let went_down = net.events.iter().find_map(|(h, e)| match e {
        Event::ChipStatus { chip_id, to, .. }
            if *chip_id == c.id() && *to == ChipStatus::Unresponsive =>
        {
            Some(*h)
        }
        _ => None,
    });
    assert_eq!(went_down, Some(first_missed + WINDOW + 1));
    let came_back = net.events.iter().find_map(|(h, e)| match e {
        Event::ChipStatus {
            chip_id, from, to, ..
        } if *chip_id == c.id()
            && *from == ChipStatus::Unresponsive
            && *to == ChipStatus::Online =>
        {
            Some(*h)
        }
        _ => None,
    });
    let came_back = came_back.expect("c recovered");
    assert!(came_back >= 100);
    assert_eq!(net.chip(&c.id()).unwrap().status, ChipStatus::Online);

    // Every settled epoch paid exactly the model's shares (epochs 1..=6 are settled by now).
    let mut paid_total = 0;
    for epoch in 1..=6 {
        for chip in [&a, &b, &c] {
            let want = expected(&net, &chip.id(), epoch);
            let got = rewards_of(&net, &chip.id(), epoch).unwrap_or(0);
            let forfeited = chip.id() == c.id() && {
                let misses = net
                    .events
                    .iter()
                    .filter(|(h, e)| {
                        h / L == epoch
                            && matches!(e, Event::ChipStatus { chip_id, to, .. }
                                if *chip_id == c.id() && *to == ChipStatus::Unresponsive)
                    })
                    .count();
                misses >= 2
            };
            if !forfeited {
                assert_eq!(got, want, "epoch {epoch} chip {}", hex::encode(chip.id()));
            }
            paid_total += got;
        }
    }
    assert!(paid_total > 0);
    // While fully down (an epoch inside 60..100 where c was unresponsive throughout), c earns
    // nothing; a and b earn in proportion 1:3.
    let fully_down = (3..=4)
        .find(|e| !net.weight.contains_key(&(*e, c.id())))
        .expect("an epoch with c offline throughout");
    assert_eq!(rewards_of(&net, &c.id(), fully_down), None);
    let (ra, rb) = (
        rewards_of(&net, &a.id(), fully_down).unwrap(),
        rewards_of(&net, &b.id(), fully_down).unwrap(),
    );
    assert!(
        rb == 3 * ra || rb == 3 * ra + 1 || rb + 1 == 3 * ra,
        "{ra} {rb}"
    );
    // c earns again after recovering.
    assert!(rewards_of(&net, &c.id(), 6).unwrap_or(0) > 0);
    // The chip record remembers its recent epochs exactly, and the lifetime total.
    for chip in [&a, &b] {
        let live = net.chip(&chip.id()).unwrap().live;
        for epoch in 5..=6 {
            assert_eq!(live.reward_of(epoch), rewards_of(&net, &chip.id(), epoch));
        }
        let total: Amount = (0..8).filter_map(|e| rewards_of(&net, &chip.id(), e)).sum();
        assert_eq!(live.total_rewards, total);
    }

    // Dust went to the treasury: every settled epoch's emission is fully accounted for.
    for (_, e) in &net.events {
        if let Event::EpochSettled {
            emission,
            paid,
            to_treasury,
            ..
        } = e
        {
            assert_eq!(paid + to_treasury, *emission);
        }
    }
}

#[test]
fn a_revoked_chip_stops_earning_at_once() {
    let owners: Vec<PrivateKey> = (1..=2).map(PrivateKey::from_seed).collect();
    let mut net = Net::new(&owners.iter().collect::<Vec<_>>());
    let a = make_chip(11, "SMALL", owners[0].clone());
    let r = make_chip(12, "SMALL", owners[1].clone());
    let txs = vec![net.register(&a), net.register(&r)];
    net.block(&txs);
    run(&mut net, &[&a, &r], |_, _| true, 2 * L + 5);
    let action = GovAction::RevokeChip { chip_id: r.id() };
    let msg = action.approval_message(CHAIN, 0);
    let approvals = vec![Approval {
        governor: gov().public_key(),
        signature: gov().sign(GOV_NAMESPACE, &msg),
    }];
    let tx = net.tx(&gov(), Payload::Govern { action, approvals });
    assert_eq!(net.block(&[tx]), vec![TxStatus::Ok]);
    let revoked_at = net.height;
    assert_eq!(net.chip(&r.id()).unwrap().status, ChipStatus::Revoked);
    run(&mut net, &[&a, &r], |_, _| true, 5 * L);
    // r forfeits the epoch it was revoked in and earns nothing after; a keeps earning.
    for epoch in (revoked_at / L)..=3 {
        assert_eq!(rewards_of(&net, &r.id(), epoch), None, "epoch {epoch}");
        assert!(rewards_of(&net, &a.id(), epoch).unwrap() > 0);
    }
    assert!(rewards_of(&net, &r.id(), 1).unwrap() > 0);
    // Its answers are refused.
    let resp = net.response(&r, net.height);
    let tx = net.tx(
        &owners[1],
        Payload::Liveness {
            responses: vec![resp],
        },
    );
    let s = net.block(&[tx]);
    assert!(code(&s[0]).starts_with("liveness_"), "{s:?}");
}

#[test]
fn bad_liveness_answers_are_refused_with_their_own_codes() {
    let owners: Vec<PrivateKey> = (1..=2).map(PrivateKey::from_seed).collect();
    let mut net = Net::new(&owners.iter().collect::<Vec<_>>());
    let a = make_chip(21, "SMALL", owners[0].clone());
    let b = make_chip(22, "SMALL", owners[1].clone());
    let txs = vec![net.register(&a), net.register(&b)];
    net.block(&txs);
    // Advance until a is challenged.
    let challenged_at = loop {
        net.block(&[]);
        if net.challenges_at(net.height).contains(&a.id()) {
            break net.height;
        }
        assert!(net.height < 10 * L, "a never challenged");
    };
    let good = net.response(&a, challenged_at);
    let o = &owners[0];

    // Not challenged at that height.
    let mut r = good.clone();
    r.challenge_height -= 1;
    let t = net.tx(o, Payload::Liveness { responses: vec![r] });
    // Signed by another chip's key.
    let mut forged = good.clone();
    let digest = response_digest(
        CHAIN,
        challenged_at,
        &Sha256::hash(&[b"beacon", &challenged_at.to_be_bytes()]),
        &a.id(),
    );
    forged.proof = b.se.sign_digest(&digest).unwrap();
    let t2 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![forged],
        },
    );
    // Signed by a's key but over b's digest (an answer for another chip).
    let mut other = good.clone();
    let digest_b = response_digest(
        CHAIN,
        challenged_at,
        &Sha256::hash(&[b"beacon", &challenged_at.to_be_bytes()]),
        &b.id(),
    );
    other.proof = a.se.sign_digest(&digest_b).unwrap();
    let t3 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![other],
        },
    );
    // Garbage proof bytes.
    let mut garbage = good.clone();
    garbage.proof = vec![0xff; 7];
    let t4 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![garbage],
        },
    );
    // Duplicated inside one transaction.
    let t5 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![good.clone(), good.clone()],
        },
    );
    // Unknown chip.
    let mut unknown = good.clone();
    unknown.chip_id = [9; 32];
    let t6 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![unknown],
        },
    );
    // The good one, then the same answer again in the same block.
    let t7 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![good.clone()],
        },
    );
    let t8 = net.tx(
        o,
        Payload::Liveness {
            responses: vec![good.clone()],
        },
    );
    let codes: Vec<String> = net
        .block(&[t, t2, t3, t4, t5, t6, t7, t8])
        .iter()
        .map(code)
        .collect();
    assert_eq!(
        codes,
        vec![
            "liveness_not_challenged",
            "liveness_bad_proof",
            "liveness_bad_proof",
            "liveness_bad_proof",
            "liveness_duplicate",
            "liveness_unknown_chip",
            "ok",
            "liveness_not_challenged",
        ]
    );
    assert_eq!(net.chip(&a.id()).unwrap().live.pending, None);

    // Outside the window: wait for b's next challenge and answer one block too late.
    let at = loop {
        net.block(&[]);
        if net.challenges_at(net.height).contains(&b.id()) {
            break net.height;
        }
    };
    for _ in 0..WINDOW {
        net.block(&[]);
    }
    let late = net.response(&b, at);
    let t = net.tx(
        &owners[1],
        Payload::Liveness {
            responses: vec![late],
        },
    );
    assert_eq!(code(&net.block(&[t])[0]), "liveness_late");
    assert_eq!(
        net.chip(&b.id()).unwrap().status,
        ChipStatus::Unresponsive,
        "the unanswered challenge expired"
    );
}

#[test]
fn the_committee_follows_online_attested_compute() {
    let owner = PrivateKey::from_seed(50);
    let mut net = Net::new(&[&owner]);
    let genesis_committee = net.committee(0);
    assert_eq!(genesis_committee.members.len(), 4);
    assert_eq!(
        net.committee(2),
        Committee {
            epoch: 2,
            ..genesis_committee.clone()
        }
    );

    // The chip owner registers a validator node and a chip.
    let node = PrivateKey::from_seed(51).public_key();
    let chip = make_chip(31, "BIG", owner.clone());
    let reg = net.tx(
        &owner,
        Payload::RegisterValidator {
            node_key: node.clone(),
            p2p_address: "127.0.0.1:4100".into(),
        },
    );
    let bad = net.tx(
        &owner,
        Payload::RegisterValidator {
            node_key: genesis_committee.members[0].node_key.clone(),
            p2p_address: "127.0.0.1:4101".into(),
        },
    );
    let bad_addr = net.tx(
        &owner,
        Payload::RegisterValidator {
            node_key: node.clone(),
            p2p_address: "not an address".into(),
        },
    );
    let c = net.register(&chip);
    let codes: Vec<String> = net
        .block(&[reg, bad, bad_addr, c])
        .iter()
        .map(code)
        .collect();
    assert_eq!(
        codes,
        vec![
            "ok",
            "validator_node_key_taken",
            "validator_bad_address",
            "ok"
        ]
    );
    // At the first block of epoch 1 the committee of epoch 4 is chosen: the new validator
    // (96 TOPS online) plus the three genesis members with the lowest node keys as fill.
    run(&mut net, &[&chip], |_, _| true, L);
    let c3 = net.committee(4);
    assert_eq!(c3.members.len(), 4);
    let m = c3.member(&node).expect("new validator chosen");
    assert_eq!(m.weight, 96_000);
    let mut fill: Vec<Address> = genesis_committee
        .members
        .iter()
        .map(|m| m.node_key.clone())
        .collect();
    fill.sort();
    for k in &fill[..3] {
        assert!(c3.member(k).is_some());
    }
    assert!(c3.member(&fill[3]).is_none());

    // A second operator with a smaller chip joins; then the first one's chip goes offline.
    // The committee of epoch 6 (chosen at height 3L) ranks the second operator first, and the
    // first one no longer carries any weight (at most it is kept as fill, with weight 1).
    let owner2 = PrivateKey::from_seed(60);
    let fund = net.tx(
        &owner,
        Payload::Transfer {
            to: owner2.public_key(),
            amount: UNC,
        },
    );
    net.block(&[fund]);
    let node2 = PrivateKey::from_seed(61).public_key();
    let chip2 = make_chip(32, "SMALL", owner2.clone());
    let reg2 = net.tx(
        &owner2,
        Payload::RegisterValidator {
            node_key: node2.clone(),
            p2p_address: "127.0.0.1:4102".into(),
        },
    );
    let c2 = net.register(&chip2);
    assert!(net.block(&[reg2, c2]).iter().all(|s| *s == TxStatus::Ok));
    run(
        &mut net,
        &[&chip, &chip2],
        |c, _| c.id() == chip2.id(),
        3 * L,
    );
    assert_eq!(
        net.chip(&chip.id()).unwrap().status,
        ChipStatus::Unresponsive
    );
    let c5 = net.committee(6);
    assert_eq!(c5.members.len(), 4);
    assert_eq!(c5.member(&node2).unwrap().weight, 32_000);
    assert!(c5.member(&node).is_none_or(|m| m.weight == 1));
    assert_eq!(c5.total_weight(), 32_000 + 3);
}
