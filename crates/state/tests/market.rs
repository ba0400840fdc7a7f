//! The compute rental market through the state transition, block by block: offers, leases,
//! streaming payment from escrow, automatic closes, and the refusals. Chips are emulated
//! devnet chips that answer their challenges (carried by a separate miner account, so the
//! provider's balance moves only by its own fees, its mining rewards and its lease income).
//! After every block the supply invariant holds and `Supply.escrowed` equals the deposits of
//! the open leases.

use commonware_cryptography::{Hasher, Sha256, Signer};
use std::collections::BTreeMap;
use unet_poci::secure_element::DevnetVendorCa;
use unet_state::{
    testing::{self, MemState, Nonces, TestGenesis},
    BlockEnv, Event, TxStatus,
};
use unet_types::{
    chip::{Chip, ChipStatus},
    keys::{chip_key, Supply},
    liveness::LivenessResponse,
    market::{
        keys::{lease_key, market_key, offer_key},
        Capabilities, CloseReason, Lease, LeaseStatus, MarketInfo, Offer, OfferTerms,
    },
    Address, Amount, Digest, Params, Payload, PrivateKey, SignedTx, UNC,
};

const CHAIN: u64 = 78;
const L: u64 = 20;
const WINDOW: u64 = 4;
const FEE: Amount = 1;
const PRICE: Amount = 1_000;

/// A devnet chip and the key of its owner.
struct TestChip {
    chip: testing::TestChip,
    owner: PrivateKey,
}

impl std::ops::Deref for TestChip {
    type Target = testing::TestChip;
    fn deref(&self) -> &testing::TestChip {
        &self.chip
    }
}

fn ca() -> DevnetVendorCa {
    DevnetVendorCa::from_seed(b"market vendor").unwrap()
}

fn make_chip(n: u8, owner: &PrivateKey) -> TestChip {
    TestChip {
        chip: testing::TestChip::provision(&ca(), n, "SMALL"),
        owner: owner.clone(),
    }
}

fn gov() -> PrivateKey {
    testing::governor()
}

fn proposer() -> Address {
    testing::validator(0).public_key()
}

struct Net {
    state: MemState,
    params: Params,
    height: u64,
    hashes: Vec<Digest>,
    nonces: Nonces,
    fees: BTreeMap<Address, Amount>,
    events: Vec<(u64, Event)>,
    addresses: std::collections::BTreeSet<Address>,
    /// Carries the liveness answers of every chip.
    miner: PrivateKey,
}

impl Net {
    fn new(funded: &[&PrivateKey]) -> Self {
        let params = Params {
            min_fee: FEE,
            ..testing::params(L, WINDOW)
        };
        let miner = PrivateKey::from_seed(4_242);
        let mut all: Vec<Address> = funded.iter().map(|k| k.public_key()).collect();
        all.push(miner.public_key());
        let mut genesis = TestGenesis::new(CHAIN, "market", params.clone(), &ca());
        genesis.funded = all.clone();
        genesis.models.truncate(1);
        let mut net = Self {
            state: genesis.state(),
            params,
            height: 0,
            hashes: vec![Sha256::hash(&[b"genesis"])],
            nonces: Nonces::default(),
            fees: BTreeMap::new(),
            events: Vec::new(),
            addresses: all.into_iter().collect(),
            miner,
        };
        net.block(&[]);
        net
    }

    fn block(&mut self, txs: &[SignedTx]) -> Vec<TxStatus> {
        self.height += 1;
        let env = BlockEnv {
            chain_id: CHAIN,
            params: &self.params,
            proposer: proposer(),
            height: self.height,
            parent: *self.hashes.last().unwrap(),
            timestamp_ms: testing::NOW_MS + self.height * 1000,
            beacon: testing::beacon(self.height),
            treasury: Some(gov().public_key()),
        };
        let out = self.state.verify_block(&env, txs);
        self.hashes
            .push(Sha256::hash(&[&self.height.to_be_bytes()]));
        for e in out.events {
            self.events.push((self.height, e));
        }
        self.assert_invariants();
        out.receipts.into_iter().map(|r| r.status).collect()
    }

    fn supply(&self) -> Supply {
        self.state.supply()
    }

    fn balance(&self, a: &Address) -> Amount {
        self.state.account(a).balance
    }

    fn leases(&self) -> Vec<Lease> {
        let info = self.market();
        (0..info.next_lease)
            .filter_map(|id| self.lease(id))
            .collect()
    }

    fn lease(&self, id: u64) -> Option<Lease> {
        self.state.get(&lease_key(id))
    }

    fn offer(&self, id: u64) -> Option<Offer> {
        self.state.get(&offer_key(id))
    }

    fn market(&self) -> MarketInfo {
        self.state.get(&market_key()).unwrap_or_default()
    }

    fn chip(&self, id: &[u8; 32]) -> Chip {
        self.state.get(&chip_key(id)).unwrap()
    }

    fn assert_invariants(&self) {
        let s = self.supply();
        let mut addresses = self.addresses.clone();
        addresses.insert(gov().public_key());
        addresses.insert(proposer());
        self.state
            .assert_supply(&addresses, &format!("height {}", self.height));
        let open: Vec<Lease> = self.leases().into_iter().filter(|l| l.is_open()).collect();
        let deposits: Amount = open.iter().map(|l| l.deposit).sum();
        assert_eq!(s.escrowed, deposits, "escrow at height {}", self.height);
        assert_eq!(self.market().open_leases, open.len() as u64);
        for l in self.leases() {
            if !l.is_open() {
                assert_eq!(l.deposit, 0, "closed lease {} holds a deposit", l.id);
            }
        }
    }

    fn tx(&mut self, from: &PrivateKey, payload: Payload) -> SignedTx {
        if let Payload::Transfer { to, .. } = &payload {
            self.addresses.insert(to.clone());
        }
        let tx = self.nonces.tx(CHAIN, from, FEE, payload);
        *self.fees.entry(from.public_key()).or_default() += FEE;
        tx
    }

    fn register(&mut self, chip: &TestChip) -> SignedTx {
        let hash = *self.hashes.last().unwrap();
        let evidence = chip.evidence(CHAIN, &hash, &chip.owner.public_key());
        let anchor = self.height;
        self.tx(
            &chip.owner,
            Payload::RegisterChip {
                anchor_height: anchor,
                evidence,
            },
        )
    }

    fn challenged_at(&self, height: u64) -> Vec<[u8; 32]> {
        self.events
            .iter()
            .filter(|(h, _)| *h == height)
            .filter_map(|(_, e)| match e {
                Event::Challenge { chip_id, .. } => Some(*chip_id),
                _ => None,
            })
            .collect()
    }

    /// One block: the answering chips answer the challenges of the previous block (one
    /// transaction by the miner), then `txs`. Returns the statuses of `txs`.
    fn step(
        &mut self,
        chips: &[&TestChip],
        answering: &[[u8; 32]],
        txs: Vec<SignedTx>,
    ) -> Vec<TxStatus> {
        let last = self.height;
        let challenged = self.challenged_at(last);
        let beacon = testing::beacon(last);
        let responses: Vec<LivenessResponse> = chips
            .iter()
            .filter(|c| challenged.contains(&c.id()) && answering.contains(&c.id()))
            .map(|c| c.answer(CHAIN, last, &beacon))
            .collect();
        let mut all = Vec::new();
        let answered = !responses.is_empty();
        if answered {
            let miner = self.miner.clone();
            all.push(self.tx(&miner, Payload::Liveness { responses }));
        }
        all.extend(txs);
        let mut statuses = self.block(&all);
        if answered {
            assert_eq!(statuses.remove(0), TxStatus::Ok);
        }
        statuses
    }

    fn rewards(&self, owner: &Address) -> Amount {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Reward {
                    owner: o, amount, ..
                } if o == owner => Some(*amount),
                _ => None,
            })
            .sum()
    }

    fn closed(&self, lease: u64) -> Option<(u64, Amount, Amount)> {
        self.events.iter().find_map(|(h, e)| match e {
            Event::LeaseClosed {
                lease_id,
                paid,
                refunded,
                ..
            } if *lease_id == lease => Some((*h, *paid, *refunded)),
            _ => None,
        })
    }
}

fn code(s: &TxStatus) -> String {
    match s {
        TxStatus::Failed { code, .. } => code.clone(),
        TxStatus::Ok => "ok".into(),
    }
}

fn terms(chips: &[&TestChip], min_blocks: u64, max_blocks: u64) -> OfferTerms {
    OfferTerms {
        chips: chips.iter().map(|c| c.id()).collect(),
        price_per_block: PRICE,
        min_blocks,
        max_blocks,
        endpoint: "https://provider.example:8600".into(),
        capabilities: Capabilities {
            model: "SMALL".into(),
            memory_mib: 16_384,
            tags: vec!["onnx".into()],
        },
    }
}

/// Provider with two registered, answering chips and an offer 0 on both.
fn setup() -> (Net, PrivateKey, PrivateKey, TestChip, TestChip) {
    let provider = PrivateKey::from_seed(1);
    let renter = PrivateKey::from_seed(2);
    let mut net = Net::new(&[&provider, &renter]);
    let a = make_chip(1, &provider);
    let b = make_chip(2, &provider);
    let txs = vec![net.register(&a), net.register(&b)];
    assert!(net.block(&txs).iter().all(|s| *s == TxStatus::Ok));
    let offer = net.tx(
        &provider,
        Payload::CreateOffer {
            terms: terms(&[&a, &b], 5, 10_000),
        },
    );
    let ids = [a.id(), b.id()];
    assert_eq!(net.step(&[&a, &b], &ids, vec![offer]), vec![TxStatus::Ok]);
    let o = net.offer(0).unwrap();
    assert_eq!(o.provider, provider.public_key());
    assert_eq!(o.terms.chips, vec![a.id(), b.id()]);
    assert_eq!(net.market().open_offers, 1);
    (net, provider, renter, a, b)
}

/// The provider's balance as the model predicts it: genesis - its fees + its mining rewards +
/// what the market paid it.
fn provider_expected(net: &Net, provider: &PrivateKey, market_income: Amount) -> Amount {
    let p = provider.public_key();
    1_000 * UNC - net.fees.get(&p).copied().unwrap_or(0) + net.rewards(&p) + market_income
}

fn renter_expected(net: &Net, renter: &PrivateKey, spent: Amount) -> Amount {
    1_000 * UNC - net.fees.get(&renter.public_key()).copied().unwrap_or(0) - spent
}

#[test]
fn payments_stream_block_by_block_and_the_renter_gets_the_unused_deposit_back() {
    let (mut net, provider, renter, a, b) = setup();
    let ids = [a.id(), b.id()];
    let deposit = 100_000;
    let open = net.tx(
        &renter,
        Payload::OpenLease {
            offer_id: 0,
            chips: vec![a.id()],
            deposit,
        },
    );
    assert_eq!(net.step(&[&a, &b], &ids, vec![open]), vec![TxStatus::Ok]);
    let start = net.height;
    let lease = net.lease(0).unwrap();
    assert_eq!(lease.start, start);
    assert_eq!(lease.price_per_block, PRICE);
    assert_eq!(lease.next_settle, start + L);
    assert_eq!(lease.end, start + 10_000);
    assert_eq!(lease.deposit, deposit);
    assert_eq!(net.supply().escrowed, deposit);
    assert_eq!(
        net.balance(&renter.public_key()),
        renter_expected(&net, &renter, deposit)
    );

    // 2.5 periods, block by block: served blocks start..=h are paid or accrued, exactly.
    let close_at = start + 2 * L + 10;
    while net.height + 1 < close_at {
        net.step(&[&a, &b], &ids, vec![]);
        let h = net.height;
        let l = net.lease(0).unwrap();
        let served = Amount::from(h + 1 - start) * PRICE;
        assert_eq!(l.total_paid + l.owed_at(h + 1), served, "height {h}");
        assert_eq!(l.total_paid + l.deposit, deposit, "height {h}");
        // Settled at start + L and start + 2L: paid for every block before those.
        let settled_through = start + (h - start) / L * L;
        assert_eq!(l.paid_until, settled_through, "height {h}");
        assert_eq!(l.total_paid, Amount::from(settled_through - start) * PRICE);
        assert_eq!(
            net.balance(&provider.public_key()),
            provider_expected(&net, &provider, l.total_paid),
            "height {h}"
        );
        assert_eq!(
            net.balance(&renter.public_key()),
            renter_expected(&net, &renter, deposit)
        );
    }

    // The renter closes: pays for start..close_at-1, gets the rest back.
    let close = net.tx(&renter, Payload::CloseLease { lease_id: 0 });
    assert_eq!(net.step(&[&a, &b], &ids, vec![close]), vec![TxStatus::Ok]);
    assert_eq!(net.height, close_at);
    let owed = Amount::from(close_at - start) * PRICE; // 50 blocks
    assert_eq!(owed, 50_000);
    let l = net.lease(0).unwrap();
    assert_eq!(
        l.status,
        LeaseStatus::Closed {
            height: close_at,
            reason: CloseReason::Renter
        }
    );
    assert_eq!(l.total_paid, owed);
    assert_eq!(net.closed(0), Some((close_at, 10 * PRICE, deposit - owed)));
    assert_eq!(net.supply().escrowed, 0);
    assert_eq!(
        net.balance(&provider.public_key()),
        provider_expected(&net, &provider, owed)
    );
    assert_eq!(
        net.balance(&renter.public_key()),
        renter_expected(&net, &renter, owed)
    );
    // Nothing more is paid afterwards (the stale schedule entry is ignored), and the chip is
    // free again.
    while net.height < close_at + 2 * L {
        net.step(&[&a, &b], &ids, vec![]);
    }
    assert_eq!(
        net.balance(&provider.public_key()),
        provider_expected(&net, &provider, owed)
    );
    let again = net.tx(
        &renter,
        Payload::OpenLease {
            offer_id: 0,
            chips: vec![a.id(), b.id()],
            deposit: 2 * L as Amount * PRICE * 2,
        },
    );
    assert_eq!(net.step(&[&a, &b], &ids, vec![again]), vec![TxStatus::Ok]);
    assert_eq!(net.lease(1).unwrap().price_per_block, 2 * PRICE);
    // Leased chips keep mining.
    assert!(net.rewards(&provider.public_key()) > 0);
}

#[test]
fn a_lease_closes_when_the_deposit_cannot_cover_the_next_period() {
    let (mut net, provider, renter, a, b) = setup();
    let ids = [a.id(), b.id()];
    // 30 blocks of deposit: the first period (20 blocks) is covered, the second is not.
    let deposit = 30 * PRICE;
    let top_up_amount = 5 * PRICE;
    let open = net.tx(
        &renter,
        Payload::OpenLease {
            offer_id: 0,
            chips: vec![b.id()],
            deposit,
        },
    );
    assert_eq!(net.step(&[&a, &b], &ids, vec![open]), vec![TxStatus::Ok]);
    let start = net.height;
    // A top-up in the middle settles what is owed so far (7 blocks) and adds to the deposit.
    while net.height + 1 < start + 7 {
        net.step(&[&a, &b], &ids, vec![]);
    }
    let t = net.tx(
        &renter,
        Payload::TopUp {
            lease_id: 0,
            amount: top_up_amount,
        },
    );
    assert_eq!(net.step(&[&a, &b], &ids, vec![t]), vec![TxStatus::Ok]);
    let l = net.lease(0).unwrap();
    assert_eq!(l.paid_until, start + 7);
    assert_eq!(l.total_paid, 7 * PRICE);
    assert_eq!(l.deposit, deposit + top_up_amount - 7 * PRICE);
    assert_eq!(l.next_settle, start + L);
    assert_eq!(
        net.balance(&provider.public_key()),
        provider_expected(&net, &provider, 7 * PRICE)
    );

    while net.height < start + L {
        net.step(&[&a, &b], &ids, vec![]);
    }
    // At start + L: 20 blocks paid, 15 left < 20 needed for the next period -> closed.
    let l = net.lease(0).unwrap();
    assert_eq!(
        l.status,
        LeaseStatus::Closed {
            height: start + L,
            reason: CloseReason::DepositExhausted
        }
    );
    let paid = L as Amount * PRICE;
    assert_eq!(l.total_paid, paid);
    assert_eq!(l.deposit, 0);
    let refund = deposit + top_up_amount - paid;
    assert_eq!(refund, 15 * PRICE);
    assert_eq!(net.closed(0), Some((start + L, 13 * PRICE, refund)));
    assert_eq!(
        net.balance(&provider.public_key()),
        provider_expected(&net, &provider, paid)
    );
    assert_eq!(
        net.balance(&renter.public_key()),
        renter_expected(&net, &renter, paid)
    );
    // Never more afterwards.
    for _ in 0..L {
        net.step(&[&a, &b], &ids, vec![]);
    }
    assert_eq!(
        net.balance(&provider.public_key()),
        provider_expected(&net, &provider, paid)
    );
    assert_eq!(net.market().open_leases, 0);
}

#[test]
fn an_unresponsive_chip_closes_its_lease_and_refunds_the_unserved_blocks() {
    let (mut net, provider, renter, a, b) = setup();
    let both = [a.id(), b.id()];
    let deposit = 200 * PRICE;
    let open = net.tx(
        &renter,
        Payload::OpenLease {
            offer_id: 0,
            chips: vec![a.id(), b.id()],
            deposit,
        },
    );
    assert_eq!(net.step(&[&a, &b], &both, vec![open]), vec![TxStatus::Ok]);
    let start = net.height;
    // Chip b's miner goes away after a few blocks; a keeps answering.
    while net.height < start + 3 {
        net.step(&[&a, &b], &both, vec![]);
    }
    let mut down_at = None;
    while down_at.is_none() {
        assert!(net.height < start + 6 * L, "b never went unresponsive");
        net.step(&[&a, &b], &[a.id()], vec![]);
        if net.chip(&b.id()).status == ChipStatus::Unresponsive {
            down_at = Some(net.height);
        }
    }
    let down_at = down_at.unwrap();
    let l = net.lease(0).unwrap();
    assert_eq!(
        l.status,
        LeaseStatus::Closed {
            height: down_at,
            reason: CloseReason::ChipUnresponsive
        }
    );
    let served = Amount::from(down_at - start) * 2 * PRICE;
    assert_eq!(l.total_paid, served);
    let (h, _, refunded) = net.closed(0).unwrap();
    assert_eq!(h, down_at);
    assert_eq!(refunded, deposit - served);
    assert_eq!(
        net.balance(&provider.public_key()),
        provider_expected(&net, &provider, served)
    );
    assert_eq!(
        net.balance(&renter.public_key()),
        renter_expected(&net, &renter, served)
    );
    // Both chips are free again; b cannot be leased while it is offline, a can.
    let retry = net.tx(
        &renter,
        Payload::OpenLease {
            offer_id: 0,
            chips: vec![b.id()],
            deposit: L as Amount * PRICE,
        },
    );
    let ok = net.tx(
        &renter,
        Payload::OpenLease {
            offer_id: 0,
            chips: vec![a.id()],
            deposit: L as Amount * PRICE,
        },
    );
    let s = net.step(&[&a, &b], &[a.id()], vec![retry, ok]);
    assert_eq!(
        s.iter().map(code).collect::<Vec<_>>(),
        ["market_chip_offline", "ok"]
    );
}

#[test]
fn a_chip_is_leased_to_one_renter_at_a_time_and_bad_requests_get_their_own_codes() {
    let (mut net, provider, renter, a, b) = setup();
    let other = PrivateKey::from_seed(3);
    net.addresses.insert(other.public_key());
    let fund = net.tx(
        &provider,
        Payload::Transfer {
            to: other.public_key(),
            amount: 10 * UNC,
        },
    );
    let ids = [a.id(), b.id()];
    assert_eq!(net.step(&[&a, &b], &ids, vec![fund]), vec![TxStatus::Ok]);
    let need = L as Amount * PRICE;
    let mut zero_price = terms(&[&a], 1, 100);
    zero_price.price_per_block = 0;
    let mut bad_duration = terms(&[&a], 10, 5);
    bad_duration.price_per_block = 1;
    let mut bad_endpoint = terms(&[&a], 1, 100);
    bad_endpoint.endpoint = "ftp://x".into();
    let txs = vec![
        net.tx(
            &renter,
            Payload::OpenLease {
                offer_id: 0,
                chips: vec![a.id()],
                deposit: need,
            },
        ),
        // The same chip again, by someone else.
        net.tx(
            &other,
            Payload::OpenLease {
                offer_id: 0,
                chips: vec![a.id()],
                deposit: need,
            },
        ),
        // Deposit below the first period.
        net.tx(
            &other,
            Payload::OpenLease {
                offer_id: 0,
                chips: vec![b.id()],
                deposit: need - 1,
            },
        ),
        net.tx(
            &other,
            Payload::OpenLease {
                offer_id: 7,
                chips: vec![b.id()],
                deposit: need,
            },
        ),
        net.tx(
            &other,
            Payload::OpenLease {
                offer_id: 0,
                chips: vec![b.id(), b.id()],
                deposit: need,
            },
        ),
        net.tx(
            &other,
            Payload::OpenLease {
                offer_id: 0,
                chips: vec![[9; 32]],
                deposit: need,
            },
        ),
        // Offers: not the owner's chip, chip already offered, zero price, bad duration.
        net.tx(
            &other,
            Payload::CreateOffer {
                terms: terms(&[&a], 1, 100),
            },
        ),
        net.tx(
            &provider,
            Payload::CreateOffer {
                terms: terms(&[&a], 1, 100),
            },
        ),
        net.tx(&provider, Payload::CreateOffer { terms: zero_price }),
        net.tx(
            &provider,
            Payload::CreateOffer {
                terms: bad_duration,
            },
        ),
        net.tx(
            &provider,
            Payload::CreateOffer {
                terms: bad_endpoint,
            },
        ),
        net.tx(
            &other,
            Payload::UpdateOffer {
                offer_id: 0,
                terms: terms(&[&a, &b], 1, 100),
            },
        ),
        net.tx(&other, Payload::WithdrawOffer { offer_id: 0 }),
        // Leases: not yours, unknown, zero top-up.
        net.tx(
            &other,
            Payload::TopUp {
                lease_id: 0,
                amount: 1,
            },
        ),
        net.tx(&other, Payload::CloseLease { lease_id: 0 }),
        net.tx(&other, Payload::CloseLease { lease_id: 5 }),
        net.tx(
            &renter,
            Payload::TopUp {
                lease_id: 0,
                amount: 0,
            },
        ),
        net.tx(
            &other,
            Payload::OpenLease {
                offer_id: 0,
                chips: vec![b.id()],
                deposit: 11 * UNC,
            },
        ),
        // Provider removes a leased chip from its offer.
        net.tx(
            &provider,
            Payload::UpdateOffer {
                offer_id: 0,
                terms: terms(&[&b], 1, 100),
            },
        ),
    ];
    let s = net.step(&[&a, &b], &ids, txs);
    assert_eq!(
        s.iter().map(code).collect::<Vec<_>>(),
        [
            "ok",
            "market_chip_leased",
            "market_deposit_too_small",
            "market_unknown_offer",
            "market_duplicate_chip",
            "market_chip_not_offered",
            "market_not_owner",
            "market_chip_offered",
            "market_zero_price",
            "market_bad_duration",
            "market_bad_endpoint",
            "market_not_provider",
            "market_not_provider",
            "market_not_renter",
            "market_not_party",
            "market_unknown_lease",
            "market_zero_amount",
            "insufficient_balance",
            "market_chip_leased",
        ]
    );
    // The provider may close the lease; closing it again is refused.
    let txs = vec![
        net.tx(&provider, Payload::CloseLease { lease_id: 0 }),
        net.tx(&renter, Payload::CloseLease { lease_id: 0 }),
        net.tx(
            &renter,
            Payload::TopUp {
                lease_id: 0,
                amount: 1,
            },
        ),
    ];
    let s = net.step(&[&a, &b], &ids, txs);
    assert_eq!(
        s.iter().map(code).collect::<Vec<_>>(),
        ["ok", "market_lease_closed", "market_lease_closed"]
    );
    assert_eq!(
        net.lease(0).unwrap().status,
        LeaseStatus::Closed {
            height: net.height,
            reason: CloseReason::Provider
        }
    );

    // An offline chip cannot be offered: let b miss challenges until Unresponsive.
    let mut n = 0;
    while net.chip(&b.id()).status == ChipStatus::Online {
        net.step(&[&a, &b], &[a.id()], vec![]);
        n += 1;
        assert!(n < 6 * L);
    }
    let w = net.tx(&provider, Payload::WithdrawOffer { offer_id: 0 });
    let create = net.tx(
        &provider,
        Payload::CreateOffer {
            terms: terms(&[&b], 1, 100),
        },
    );
    let create_a = net.tx(
        &provider,
        Payload::CreateOffer {
            terms: terms(&[&a], 1, 100),
        },
    );
    let s = net.step(&[&a, &b], &[a.id()], vec![w, create, create_a]);
    assert_eq!(
        s.iter().map(code).collect::<Vec<_>>(),
        ["ok", "market_chip_offline", "ok"]
    );
    assert!(net.offer(0).is_none());
    assert_eq!(net.offer(1).unwrap().terms.chips, vec![a.id()]);
    assert_eq!(net.market().open_offers, 1);
}

#[test]
fn open_and_close_in_one_block_and_a_chip_transfer_ends_its_lease() {
    let (mut net, provider, renter, a, b) = setup();
    let ids = [a.id(), b.id()];
    let need = L as Amount * PRICE;
    // Open then close in the same block: nothing served, the whole deposit comes back minus
    // the minimum commitment (5 blocks).
    let txs = vec![
        net.tx(
            &renter,
            Payload::OpenLease {
                offer_id: 0,
                chips: vec![a.id()],
                deposit: need,
            },
        ),
        net.tx(&renter, Payload::CloseLease { lease_id: 0 }),
        net.tx(
            &renter,
            Payload::OpenLease {
                offer_id: 0,
                chips: vec![b.id()],
                deposit: need,
            },
        ),
    ];
    assert!(net
        .step(&[&a, &b], &ids, txs)
        .iter()
        .all(|s| *s == TxStatus::Ok));
    let start = net.height;
    assert_eq!(net.lease(0).unwrap().total_paid, 5 * PRICE);
    // The provider transfers chip b away after 4 blocks: its lease closes, 4 blocks paid.
    while net.height + 1 < start + 4 {
        net.step(&[&a, &b], &ids, vec![]);
    }
    let t = net.tx(
        &provider,
        Payload::TransferChip {
            chip_id: b.id(),
            to: renter.public_key(),
        },
    );
    assert_eq!(net.step(&[&a, &b], &ids, vec![t]), vec![TxStatus::Ok]);
    let l = net.lease(1).unwrap();
    assert_eq!(
        l.status,
        LeaseStatus::Closed {
            height: start + 4,
            reason: CloseReason::ChipRemoved
        }
    );
    assert_eq!(l.total_paid, 4 * PRICE);
    assert_eq!(net.offer(0).unwrap().terms.chips, vec![a.id()]);
    assert_eq!(
        net.balance(&provider.public_key()),
        provider_expected(&net, &provider, 9 * PRICE)
    );
    assert_eq!(
        net.balance(&renter.public_key()),
        renter_expected(&net, &renter, 9 * PRICE)
    );
}
