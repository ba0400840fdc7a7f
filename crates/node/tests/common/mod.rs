//! A deterministic multi-validator network for tests: N validators over commonware's
//! simulated p2p network in the deterministic runtime.

#![allow(dead_code)]

use commonware_consensus::{marshal, simplex::scheme::bls12381_threshold::vrf};
use commonware_cryptography::{
    bls12381::primitives::variant::MinSig, certificate::mocks::Fixture, ed25519, Signer,
};
use commonware_p2p::simulated::{Link, Network, Oracle};
use commonware_runtime::{deterministic, Clock, Handle, Quota, Spawner, Supervisor};
use commonware_utils::{channel::oneshot, NZUsize, NZU32};
use std::{sync::Arc, time::Duration};
use unet_node::{
    engine::{self, Engine, Timeouts},
    gossip::{self, TxGossip},
    mempool::MempoolLimits,
    shared::{Scheme, Shared},
};
use unet_types::{
    genesis::{Allocation, Validator},
    Genesis, Params, Payload, PrivateKey, PublicKey, SignedTx, Transaction, UNC,
};

pub type Ctx = deterministic::Context;

pub const CHAIN_ID: u64 = 77;
pub const FAUCET_BALANCE: u128 = 1_000_000 * UNC;
const QUOTA: Quota = Quota::per_second(NZU32!(10_000));

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
            ..Params::default()
        },
        consensus_polynomial: String::new(),
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
        poci: unet_node::home::devnet_poci(&governor().public_key()).expect("devnet poci"),
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
    pub fixture: Fixture<Scheme>,
    pub genesis: Genesis,
}

pub async fn network(context: &Ctx, n: u32, link: Link) -> Net {
    let (network, oracle) = Network::new(
        context.child("network"),
        commonware_p2p::simulated::Config {
            max_size: 8 * 1024 * 1024,
            max_peers_per_set: NZUsize!(n as usize),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
    );
    network.start();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0x5eed);
    let fixture = vrf::fixture::<MinSig, _>(&mut rng, unet_types::CONSENSUS_NAMESPACE, n);
    let participants: Vec<_> = fixture.participants.clone();
    commonware_p2p::Manager::track(
        &mut oracle.manager(),
        0,
        commonware_utils::ordered::Set::from_iter_dedup(participants.iter().cloned()),
    );
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
    let genesis = genesis(&participants);
    Net {
        oracle,
        fixture,
        genesis,
    }
}

pub fn good_link() -> Link {
    Link {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(2),
        success_rate: commonware_utils::probability!(1.0),
    }
}

/// Starts validator `i` inside its own task, so aborting the task crashes it (storage stays).
pub async fn start(context: &Ctx, net: &Net, i: usize) -> Running {
    let signer: ed25519::PrivateKey = net.fixture.private_keys[i].clone();
    let scheme = net.fixture.schemes[i].clone();
    let pk = signer.public_key();
    let control = net.oracle.control(pk.clone());
    let mut channels = Vec::new();
    for c in 0..6u64 {
        channels.push(control.register(c, QUOTA).await.unwrap());
    }
    let genesis = net.genesis.clone();
    let manager = net.oracle.manager();
    let (tx, rx) = oneshot::channel();
    let task =
        context
            .child("validator")
            .with_attribute("index", i)
            .spawn(move |context| async move {
                let mut channels = channels.into_iter();
                let votes = channels.next().unwrap();
                let certs = channels.next().unwrap();
                let resolver = channels.next().unwrap();
                let blocks = channels.next().unwrap();
                let backfill = channels.next().unwrap();
                let txs = channels.next().unwrap();
                let backfill = marshal::resolver::p2p::init(
                    context.child("backfill"),
                    engine::backfill_config(pk.clone(), manager.clone(), control.clone()),
                    backfill,
                );
                let engine = Engine::new(
                    context.child("engine"),
                    engine::Config {
                        blocker: control.clone(),
                        provider: manager,
                        partition_prefix: format!("v{i}"),
                        me: pk,
                        scheme,
                        genesis,
                        timeouts: Timeouts::default(),
                        mempool: MempoolLimits::default(),
                        freezer_table_initial_size: 1 << 12,
                    },
                )
                .await
                .expect("engine");
                let (shared, gossip, _handles) =
                    engine.start(votes, certs, resolver, blocks, backfill, txs);
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
    v.shared
        .chain
        .lock()
        .await
        .account(who)
        .await
        .unwrap()
        .balance
}
