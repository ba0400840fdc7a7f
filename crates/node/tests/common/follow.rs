//! Following helpers: validators serving followers over the follow protocol on the runtime's
//! simulated sockets, and full nodes following them.

use super::*;
use commonware_cryptography::{ed25519, ChaCha20Poly1305, Signer};
use commonware_runtime::{Clock, Network as _, Supervisor};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use std::{net::SocketAddr, time::Duration};
use unet_node::{
    follow::{self, sync::SyncSettings, FullConfig, FullNode, SyncMode, Upstream},
    mempool::MempoolLimits,
};

pub type Upgrader = Cups<Sake<ed25519::PrivateKey>, ChaCha20Poly1305>;

pub fn upgrader(key: ed25519::PrivateKey) -> Upgrader {
    Cups::new(
        Sake {
            signer: key,
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    )
}

pub fn follow_address(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7_000 + i as u16))
}

/// Validator `i` serves followers on its follow address.
pub async fn serve(context: &Ctx, net: &Net, v: &Running, i: usize) -> Upstream {
    let listener = context.bind(follow_address(i)).await.expect("bind");
    follow::server::serve(
        context.child("follow").with_attribute("index", i),
        listener,
        upgrader(net.keys[i].clone()),
        8,
        v.shared.clone(),
        v.gossip.clone(),
    );
    Upstream {
        key: net.keys[i].public_key(),
        address: follow_address(i),
    }
}

/// Four validators, each serving followers; their upstream entries in the same order.
pub async fn validators_serving(context: &Ctx) -> (Net, Vec<Running>, Vec<Upstream>) {
    let net = network(context, 4, good_link()).await;
    let mut vs = Vec::new();
    let mut upstreams = Vec::new();
    for i in 0..4 {
        let v = start(context, &net, i).await;
        upstreams.push(serve(context, &net, &v, i).await);
        vs.push(v);
    }
    (net, vs, upstreams)
}

/// What a full node named `name` (its storage prefix) following `upstreams` starts with.
pub fn full_config(net: &Net, name: &str, upstreams: Vec<Upstream>) -> FullConfig {
    FullConfig {
        partition_prefix: name.into(),
        genesis: net.genesis.clone(),
        epoch_zero: net.epoch_zero.clone(),
        upstreams,
        mempool: MempoolLimits::default(),
        freezer_table_initial_size: 1 << 12,
        tx_index_keep: 0,
        retry: Duration::from_millis(200),
        // These tests are about following block by block (state sync has its own below).
        sync: SyncMode::Replay,
        sync_settings: SyncSettings::default(),
        retired: false,
    }
}

/// Starts a full node named `name` following `upstreams` (storage under its own prefix).
pub async fn full_node(
    context: &Ctx,
    net: &Net,
    name: &str,
    upstreams: Vec<Upstream>,
) -> FullNode<Ctx> {
    // A full node's identity only names it in the handshake; any key will do.
    let key = ed25519::PrivateKey::from_seed(0xf011);
    follow::start_full(
        context.child("full").with_attribute("name", name),
        full_config(net, name, upstreams),
        upgrader(key),
    )
    .await
    .expect("full node")
}

pub async fn wait_full(context: &Ctx, f: &FullNode<Ctx>, height: u64) {
    while f.shared.status().finalized_height < height {
        context.sleep(Duration::from_millis(50)).await;
    }
}
