//! A deterministic multi-validator network for tests: N validators over commonware's
//! simulated p2p network in the deterministic runtime.

#![allow(dead_code)]

use commonware_consensus::{marshal, types::Epoch};
use commonware_cryptography::{bls12381::primitives::group::Share, ed25519, Signer};
use commonware_glue::dkg::network::AddressableManager;
use commonware_p2p::simulated::{Link, Network, Oracle};
use commonware_runtime::{deterministic, Clock, Handle, Quota, Spawner, Supervisor};
use commonware_utils::{channel::oneshot, ordered::Map, NZUsize, NZU32};
use std::{sync::Arc, time::Duration};
use unet_node::{
    engine::{self, Timeouts},
    epochs::SecretStore,
    gossip::{self, TxGossip},
    mempool::MempoolLimits,
    shared::{Scheme, Shared},
};
use unet_types::{
    block::EpochInfo,
    genesis::{Allocation, Validator},
    Genesis, Params, Payload, PrivateKey, PublicKey, SignedTx, Transaction, UNC,
};

pub type Ctx = deterministic::Context;

pub mod follow;

pub const CHAIN_ID: u64 = 77;
pub const FAUCET_BALANCE: u128 = 1_000_000 * UNC;
const QUOTA: Quota = Quota::per_second(NZU32!(10_000));
/// Blocks per epoch in simulations: short, so tests cross several epoch boundaries.
pub const EPOCH_LENGTH: u64 = 30;
/// p2p channels a node registers (votes, certificates, resolver, blocks, backfill, txs,
/// reshare).
const CHANNELS: u64 = 7;

/// The faucet account funded at genesis.
pub fn faucet() -> PrivateKey {
    PrivateKey::from_seed(424242)
}

/// The devnet governance key.
pub fn governor() -> PrivateKey {
    PrivateKey::from_seed(515151)
}

pub fn genesis(participants: &[PublicKey]) -> Genesis {
    Genesis {
        chain_id: CHAIN_ID,
        chain_name: "unet-sim".into(),
        genesis_time_ms: 0,
        params: Params {
            min_fee: 1_000,
            fee_burn_bps: 5_000,
            max_block_txs: 2_000,
            block_time_ms: 50,
            epoch_length: EPOCH_LENGTH,
            committee_size: 4,
            ..Params::default()
        },
        consensus_polynomial: String::new(),
        // filled in by `network` once the key is dealt
        validators: participants
            .iter()
            .enumerate()
            .map(|(i, pk)| Validator {
                name: format!("v{i}"),
                public_key: pk.clone(),
                p2p_address: format!("127.0.0.1:{}", 30000 + i),
            })
            .collect(),
        allocations: vec![Allocation {
            address: faucet().public_key(),
            amount: FAUCET_BALANCE,
            label: "faucet".into(),
        }],
        poci: unet_devnet::devnet_poci(&governor().public_key()).expect("devnet poci"),
        treasury: Some(unet_types::hexser::to_hex(&governor().public_key())),
    }
}

pub fn transfer(from: &PrivateKey, nonce: u64, to: &PublicKey, amount: u128) -> SignedTx {
    Transaction {
        chain_id: CHAIN_ID,
        sender: from.public_key(),
        nonce,
        fee: 10_000,
        payload: Payload::Transfer {
            to: to.clone(),
            amount,
        },
    }
    .sign(from)
}

/// A running validator as the test sees it.
pub struct Running {
    pub shared: Arc<Shared<Ctx>>,
    pub gossip: TxGossip,
    pub task: Handle<()>,
}

pub struct Net {
    pub oracle: Oracle<PublicKey, Ctx>,
    /// Identity keys of every node (genesis validators first).
    pub keys: Vec<ed25519::PrivateKey>,
    /// Their public keys, in the same order.
    pub participants: Vec<PublicKey>,
    pub genesis: Genesis,
    pub epoch_zero: EpochInfo,
    /// Epoch-zero shares of the genesis validators.
    pub shares: Map<PublicKey, Share>,
    /// Each node's secret store (in memory; survives a node's restart within a test).
    pub stores: Vec<SecretStore>,
}

impl Net {
    /// The p2p address node `i` listens on (genesis validators and later ones alike).
    pub fn p2p_address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", 30000 + i)
    }

    /// The epoch-zero signing scheme of genesis validator `i` (for byzantine test actors).
    pub fn epoch_zero_scheme(&self, i: usize) -> Scheme {
        let share = self
            .shares
            .get_value(&self.participants[i])
            .expect("genesis validator share")
            .clone();
        Scheme::signer(
            unet_types::CONSENSUS_NAMESPACE,
            self.epoch_zero.output.players().clone(),
            self.epoch_zero.output.public().clone(),
            share,
        )
        .expect("share matches")
    }
}

pub async fn network(context: &Ctx, n: u32, link: Link) -> Net {
    network_with(context, n as usize, n as usize, link, |_| {}).await
}

/// `total` nodes, the first `validators` of which are genesis validators (the others start as
/// followers); `tweak` adjusts the genesis before the key is dealt.
pub async fn network_with(
    context: &Ctx,
    total: usize,
    validators: usize,
    link: Link,
    tweak: impl FnOnce(&mut Genesis),
) -> Net {
    let (network, oracle) = Network::new(
        context.child("network"),
        commonware_p2p::simulated::Config {
            max_size: 8 * 1024 * 1024,
            // Sizes inbound buffers: no more peers than nodes in the test.
            max_peers_per_set: std::num::NonZeroUsize::new(total).unwrap(),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(4),
        },
    );
    network.start();
    let keys: Vec<ed25519::PrivateKey> = (0..total as u64)
        .map(|i| ed25519::PrivateKey::from_seed(0x5eed + i))
        .collect();
    let participants: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
    for a in &participants {
        for b in &participants {
            if a != b {
                oracle
                    .add_link(a.clone(), b.clone(), link.clone())
                    .await
                    .unwrap();
            }
        }
    }
    let mut genesis = genesis(&participants[..validators]);
    tweak(&mut genesis);
    let rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0x5eed);
    let (output, shares) = unet_node::home::deal_genesis(rng, &genesis.validators).expect("deal");
    genesis.consensus_polynomial = hex::encode(commonware_codec::Encode::encode(output.public()));
    let epoch_zero = unet_node::home::epoch_zero_info(&genesis, output);
    unet_node::home::check_epoch_zero(&genesis, &epoch_zero).expect("epoch zero");
    let stores = participants
        .iter()
        .map(|p| {
            let store = SecretStore::memory();
            if let Some(share) = shares.get_value(p) {
                store.insert_share(Epoch::zero(), share).unwrap();
            }
            store
        })
        .collect();
    Net {
        oracle,
        keys,
        participants,
        genesis,
        epoch_zero,
        shares,
        stores,
    }
}

pub fn good_link() -> Link {
    Link {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(2),
        success_rate: commonware_utils::probability!(1.0),
    }
}

/// Starts node `i` inside its own task, so aborting the task crashes it (storage stays).
pub async fn start(context: &Ctx, net: &Net, i: usize) -> Running {
    start_with(context, net, i, MempoolLimits::default()).await
}

/// [`start`] with the given mempool bounds.
pub async fn start_with(context: &Ctx, net: &Net, i: usize, mempool: MempoolLimits) -> Running {
    let signer: ed25519::PrivateKey = net.keys[i].clone();
    let pk = signer.public_key();
    let control = net.oracle.control(pk.clone());
    let mut channels = Vec::new();
    for c in 0..CHANNELS {
        channels.push(control.register(c, QUOTA).await.unwrap());
    }
    let genesis = net.genesis.clone();
    let epoch_zero = net.epoch_zero.clone();
    let secrets = net.stores[i].clone();
    let manager = AddressableManager::new(net.oracle.socket_manager());
    let (tx, rx) = oneshot::channel();
    let task =
        context
            .child("validator")
            .with_attribute("index", i)
            .spawn(move |context| async move {
                let mut channels = channels.into_iter();
                let votes = channels.next().unwrap();
                let certificates = channels.next().unwrap();
                let resolver = channels.next().unwrap();
                let blocks = channels.next().unwrap();
                let backfill = channels.next().unwrap();
                let txs = channels.next().unwrap();
                let reshare = channels.next().unwrap();
                let backfill = marshal::resolver::p2p::init(
                    context.child("backfill"),
                    engine::backfill_config(pk.clone(), manager.clone(), control.clone()),
                    backfill,
                );
                let (shared, gossip, _handles) = engine::start(
                    context.child("engine"),
                    engine::Config {
                        blocker: control.clone(),
                        manager,
                        partition_prefix: format!("v{i}"),
                        signer,
                        epoch_zero,
                        secrets,
                        genesis,
                        timeouts: Timeouts::default(),
                        mempool,
                        freezer_table_initial_size: 1 << 12,
                        tx_index_keep: 0,
                    },
                    engine::Channels {
                        votes,
                        certificates,
                        resolver,
                        blocks,
                        reshare,
                        txs,
                    },
                    backfill,
                )
                .await
                .expect("engine");
                let _ = tx.send((shared, gossip));
                futures::future::pending::<()>().await;
            });
    let (shared, gossip) = rx.await.expect("validator started");
    Running {
        shared,
        gossip,
        task,
    }
}

/// Submits transactions through validator `v` (admission + gossip), as the API does.
pub async fn submit(
    v: &Running,
    txs: Vec<SignedTx>,
) -> Vec<Result<unet_types::Digest, unet_types::TxError>> {
    let results = gossip::admit(&v.shared, txs.clone()).await;
    for (t, r) in txs.into_iter().zip(&results) {
        if r.is_ok() {
            v.gossip.publish(t);
        }
    }
    results
}

/// Waits (in simulated time) until every given validator finalized at least `height`.
pub async fn wait_height(context: &Ctx, vs: &[&Running], height: u64) {
    loop {
        if vs
            .iter()
            .all(|v| v.shared.status().finalized_height >= height)
        {
            return;
        }
        context.sleep(Duration::from_millis(50)).await;
    }
}

/// The finalized block digest at `height` as recorded by a validator.
pub async fn digest_at(v: &Running, height: u64) -> Option<unet_types::Digest> {
    use commonware_cryptography::Digestible;
    v.shared.block_at(height).await.map(|b| b.digest())
}

/// Finalized balance of an account at a validator.
pub async fn balance(v: &Running, who: &PublicKey) -> u128 {
    account(v, who).await.balance
}

/// Finalized account of `who` at a validator (through the chain's owner).
pub async fn account(v: &Running, who: &PublicKey) -> unet_types::keys::Account {
    let who = who.clone();
    v.shared
        .chain(move |c| Box::pin(async move { c.account(&who).await.unwrap() }))
        .await
        .unwrap()
}

/// The supply counters and the summed finalized balances of `accounts` at a validator, read
/// in one request to the chain's owner (so no block lands in between).
pub async fn supply_and_balances(
    v: &Running,
    accounts: Vec<PublicKey>,
) -> (unet_types::keys::Supply, u128) {
    v.shared
        .chain(move |c| {
            Box::pin(async move {
                let mut sum = 0u128;
                for a in &accounts {
                    sum += c.account(a).await.unwrap().balance;
                }
                (c.supply, sum)
            })
        })
        .await
        .unwrap()
}

/// A finalized state entry at a validator, decoded (`None` if absent).
pub async fn entry<T: commonware_codec::DecodeExt<()> + Send + 'static>(
    v: &Running,
    key: unet_types::Digest,
) -> Option<T> {
    v.shared
        .chain(move |c| Box::pin(async move { c.get_decoded::<T>(&key).await.unwrap() }))
        .await
        .unwrap()
}

/// Where a finalized transaction landed, at a validator.
pub async fn landed(
    v: &Running,
    hash: unet_types::Digest,
) -> Option<unet_node::tx_index::TxLocation> {
    v.shared
        .chain(move |c| Box::pin(async move { c.transaction(&hash).await.unwrap() }))
        .await
        .unwrap()
}

/// 2026-11-22T00:00:00Z: inside every devnet and NVIDIA certificate's validity window, which
/// chip evidence is checked against at the block timestamp.
pub const START_2026: u64 = 1_795_305_600;

/// A deterministic runner with `seed` that fails after `timeout_s` simulated seconds, logging
/// through the test writer (`RUST_LOG` filters).
pub fn runner(seed: u64, timeout_s: u64) -> deterministic::Runner {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(timeout_s))),
    )
}

/// A deterministic runner with `seed`, its clock starting at [`START_2026`], failing after
/// `timeout_s` simulated seconds.
pub fn runner_in_2026(seed: u64, timeout_s: u64) -> deterministic::Runner {
    let cfg = deterministic::Config::default()
        .with_seed(seed)
        .with_start_time(std::time::UNIX_EPOCH + Duration::from_secs(START_2026))
        .with_timeout(Some(Duration::from_secs(timeout_s)));
    deterministic::Runner::new(cfg)
}

/// A registration anchor as `unet_registrationNonce` reports it: the validator's finalized
/// tip (height and block digest).
pub async fn anchor(v: &Running) -> (u64, unet_types::Digest) {
    v.shared
        .chain(|c| Box::pin(async move { (c.applied_height(), c.applied_digest()) }))
        .await
        .unwrap()
}

/// A devnet chip (`n` names it) and its signed registration by `owner` with `nonce`,
/// anchored at validator `v`'s finalized tip.
pub async fn register_chip_tx(
    v: &Running,
    n: u8,
    owner: &PrivateKey,
    nonce: u64,
) -> (unet_poci::secure_element::SoftSecureElement, SignedTx) {
    use unet_poci::{secure_element::DevnetVendorCa, Curve, Evidence, VendorX509Evidence};
    use unet_types::chip::registration_nonce;
    let ca = DevnetVendorCa::from_seed(unet_devnet::DEVNET_CA_SEED).unwrap();
    let (se, chain) = ca
        .provision_chip(
            [n; 16],
            format!("chip-{n}").as_bytes(),
            Curve::P256,
            "BM1684X",
            &format!("SN-{n}"),
        )
        .unwrap();
    let (anchor_height, anchor_hash) = anchor(v).await;
    let binding = registration_nonce(CHAIN_ID, &anchor_hash, &owner.public_key());
    let evidence = Evidence::VendorX509(VendorX509Evidence {
        nonce: binding,
        chain,
        signature: se.sign_registration(&binding).unwrap(),
    })
    .encode()
    .unwrap();
    let tx = Transaction {
        chain_id: CHAIN_ID,
        sender: owner.public_key(),
        nonce,
        fee: 10_000,
        payload: Payload::RegisterChip {
            anchor_height,
            evidence,
        },
    }
    .sign(owner);
    (se, tx)
}

/// The faucet account registers a chip (so its account weighs in committee choice), then
/// node `i` as its validator, through validator 2; waits until both landed with success.
/// Uses the faucet's nonces 0 and 1.
pub async fn register_validator(context: &Ctx, net: &Net, vs: &[Running], i: usize) {
    let operator = faucet();
    let (_, chip) = register_chip_tx(&vs[1], 4, &operator, 0).await;
    let txs = vec![
        chip,
        Transaction {
            chain_id: CHAIN_ID,
            sender: operator.public_key(),
            nonce: 1,
            fee: 10_000,
            payload: Payload::RegisterValidator {
                node_key: net.participants[i].clone(),
                p2p_address: net.p2p_address(i),
            },
        }
        .sign(&operator),
    ];
    let hashes: Vec<_> = txs.iter().map(|t| t.hash()).collect();
    for r in submit(&vs[2], txs).await {
        r.unwrap();
    }
    loop {
        let mut found = Vec::new();
        for h in &hashes {
            found.extend(landed(&vs[0], *h).await);
        }
        if found.len() == hashes.len() {
            for at in &found {
                tracing::info!(receipt = ?at.receipt, "registration receipt");
                assert_eq!(at.receipt.status, unet_state::TxStatus::Ok);
            }
            return;
        }
        context.sleep(Duration::from_millis(50)).await;
    }
}

/// The genesis validator (index among the first four) that committee `epoch` leaves out, once
/// node 4 joined; panics unless exactly one does.
pub async fn left_out(net: &Net, v: &Running, epoch: u64) -> usize {
    use unet_types::epoch::{committee_key, Committee};
    let committee: Committee = entry(v, committee_key(epoch))
        .await
        .expect("committee chosen");
    let removed: Vec<usize> = (0..4)
        .filter(|i| committee.member(&net.participants[*i]).is_none())
        .collect();
    assert_eq!(removed.len(), 1, "one genesis validator leaves");
    removed[0]
}
