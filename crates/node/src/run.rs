//! Runs one node as a process: tokio runtime, storage under the home's data directory, the
//! API, and either the validator's authenticated TCP p2p (`lookup`: the peers of each epoch
//! and their addresses come from the epoch's directory, genesis first, then the finalized
//! boundary blocks) with consensus, or a full node's follower ([`crate::follow`]). Either
//! serves followers of its own on `[follow] listen`. A validator with `[follow] upstreams`
//! that drops out of every committee stops its validator side and goes on as a full node on
//! the same storage ([`crate::retire`]).

use crate::{
    engine::{self, Timeouts},
    follow,
    home::Home,
    rpc::{self, ApiState},
};
use anyhow::{anyhow, Context as _, Result};
use commonware_consensus::marshal;
use commonware_cryptography::{ChaCha20Poly1305, Signer};
use commonware_glue::dkg::network::AddressableManager;
use commonware_p2p::authenticated::lookup;
use commonware_runtime::{
    tokio as cw_tokio, Metrics, Network as _, Quota, Runner as _, Spawner, Supervisor,
};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZUsize, NZU32};
use std::{net::SocketAddr, num::NonZeroUsize, sync::Arc, time::Duration};
use tracing::info;

/// Largest p2p message (a full block of transactions plus framing).
pub const MAX_MESSAGE_SIZE: u32 = 16 * 1024 * 1024;

/// Channel numbers on the p2p network.
pub mod channel {
    /// Consensus votes.
    pub const VOTES: u64 = 0;
    /// Consensus certificates.
    pub const CERTIFICATES: u64 = 1;
    /// Consensus resolver (fetching missing certificates).
    pub const RESOLVER: u64 = 2;
    /// Block broadcast.
    pub const BLOCKS: u64 = 3;
    /// Marshal backfill (fetching finalized blocks a node lacks).
    pub const BACKFILL: u64 = 4;
    /// Transaction gossip.
    pub const TXS: u64 = 5;
    /// Threshold-key reshare messages.
    pub const RESHARE: u64 = 6;
}

/// Runs the node in `home` until the process is stopped.
///
/// Fails at once, naming the address, when the P2P or API address cannot be bound (taken by
/// another process, or not an address of this machine).
pub fn run(home: Home) -> Result<()> {
    check_bindable(home.config.p2p_listen, "P2P")?;
    check_bindable(home.config.rpc_listen, "API")?;
    if let Some(listen) = home.config.follow.listen {
        check_bindable(listen, "follow")?;
    }
    let data = home.data_dir();
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    loop {
        let cfg = cw_tokio::Config::new()
            .with_storage_directory(data.clone())
            .with_catch_panics(false);
        let runner = cw_tokio::Runner::new(cfg);
        // Every task of the run is stopped when `start` returns, and its storage closed.
        match runner.start(|context| node(context, &home))? {
            Stopped::Retired { epoch } => {
                crate::retire::mark_retired(&data, epoch)
                    .with_context(|| format!("marking {} retired", data.display()))?;
                info!(
                    epoch,
                    "out of every committee: continuing as a full node on the same storage"
                );
            }
        }
    }
}

/// Why a run of the node ended without an error.
enum Stopped {
    /// The validator dropped out of every committee from `epoch` on.
    Retired { epoch: u64 },
}

/// Binds `addr` once and releases it: an address that is taken or not local is reported here as
/// an error naming it, instead of as a panic deep in the network stack after storage is open.
/// (Another process can still take it in between; then the component that binds it stops and
/// the node exits with an error.)
pub fn check_bindable(addr: SocketAddr, what: &str) -> Result<()> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .with_context(|| format!("cannot listen on the {what} address {addr} (config.toml)"))
}

async fn node(context: cw_tokio::Context, home: &Home) -> Result<Stopped> {
    let genesis = home.genesis.clone();
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: home.identity.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let full = home.is_full_node();
    let (shared, gossip, handles) = if full {
        let node = follow::start_full(
            context.child("full"),
            follow::FullConfig {
                partition_prefix: "unet".into(),
                genesis: genesis.clone(),
                epoch_zero: home.epoch_zero.clone(),
                upstreams: home.config.follow.upstreams.clone(),
                mempool: home.config.mempool,
                freezer_table_initial_size: 1 << 16,
                tx_index_keep: home.config.tx_index_keep,
                retry: Duration::from_secs(1),
                sync: home.config.follow.sync,
                sync_settings: follow::sync::SyncSettings {
                    min_height: home.config.follow.sync_min_height,
                },
                retired: home.is_retired(),
            },
            handshake.clone(),
        )
        .await?;
        (node.shared, node.gossip, node.handles)
    } else {
        validator(&context, home, handshake.clone()).await?
    };
    let mut all = handles;
    if let Some(listen) = home.config.follow.listen {
        let listener = context
            .bind(listen)
            .await
            .with_context(|| format!("cannot listen on the follow address {listen}"))?;
        all.push(follow::server::serve(
            context.child("follow"),
            listener,
            handshake,
            home.config.follow.max_followers,
            shared.clone(),
            gossip.clone(),
        ));
    }
    let status = shared.status();
    info!(
        name = home.config.name,
        chain_id = genesis.chain_id,
        role = shared.role.as_str(),
        p2p = %home.config.p2p_listen,
        rpc = %home.config.rpc_listen,
        finalized_height = status.finalized_height,
        "node started"
    );

    let metrics_ctx = context.child("metrics");
    let retiring = shared.clone();
    let api = Arc::new(ApiState::new(
        shared,
        gossip,
        Arc::new(move || metrics_ctx.encode()),
        home.config.rpc_limits(),
    ));
    let rpc_addr = home.config.rpc_listen;
    let rpc_handle = context.child("rpc").spawn(move |_| async move {
        if let Err(e) = rpc::serve(rpc_addr, api).await {
            tracing::error!(address = %rpc_addr, error = %e, "API server stopped");
        }
    });

    all.push(rpc_handle);
    let stopped = futures::future::select_all(all);
    if full || home.config.follow.upstreams.is_empty() {
        if !full {
            info!("no [follow] upstreams: out of every committee, this validator would stop");
        }
        let (res, _, _) = stopped.await;
        return Err(anyhow!("a node component stopped: {res:?}"));
    }
    let me = home.identity.public_key();
    let retired = std::pin::pin!(crate::retire::out_of_committees(&retiring, &me));
    match futures::future::select(stopped, retired).await {
        futures::future::Either::Left(((res, _, _), _)) => {
            Err(anyhow!("a node component stopped: {res:?}"))
        }
        futures::future::Either::Right((epoch, _)) => Ok(Stopped::Retired { epoch }),
    }
}

/// Starts the validator side: the committee's p2p network and the consensus engine.
async fn validator(
    context: &cw_tokio::Context,
    home: &Home,
    handshake: Cups<Sake<commonware_cryptography::ed25519::PrivateKey>, ChaCha20Poly1305>,
) -> Result<(
    Arc<crate::shared::Shared<cw_tokio::Context>>,
    crate::gossip::TxGossip,
    Vec<commonware_runtime::Handle<()>>,
)> {
    let genesis = home.genesis.clone();
    let me = home.identity.public_key();
    // Each epoch tracks its dealers, players and next players (up to three committees); the
    // peers of every epoch come from the epoch's directory (genesis, then finalized blocks).
    // The bound also sizes the network's inbound buffers, so keep it to what genesis allows.
    let committee = (genesis.params.committee_size as usize)
        .max(genesis.validators.len())
        .clamp(1, unet_types::epoch::MAX_COMMITTEE);
    let p2p_cfg = lookup::Config::local(
        handshake,
        unet_types::P2P_NAMESPACE,
        home.config.p2p_listen,
        NonZeroUsize::new(3 * committee).unwrap_or(NZUsize!(1)),
        MAX_MESSAGE_SIZE,
        NZUsize!(4096),
    );
    let (mut network, oracle) = lookup::Network::new(context.child("network"), p2p_cfg);
    let manager = AddressableManager::new(oracle.clone());

    // Per-peer message rates. The network preallocates one burst per retained peer and channel
    // (peers per set x tracked sets), so these also bound its memory: 10,000/s for 48 peers x 4
    // sets cost gigabytes. A peer sends a handful of votes per view and one block per height.
    let consensus_quota = Quota::per_second(NZU32!(1_000));
    let votes = network.register(channel::VOTES, consensus_quota);
    let certificates = network.register(channel::CERTIFICATES, consensus_quota);
    let resolver = network.register(channel::RESOLVER, consensus_quota);
    let blocks = network.register(channel::BLOCKS, Quota::per_second(NZU32!(1_000)));
    let backfill = network.register(channel::BACKFILL, Quota::per_second(NZU32!(1_000)));
    let txs = network.register(channel::TXS, Quota::per_second(NZU32!(1_000)));
    let reshare = network.register(channel::RESHARE, Quota::per_second(NZU32!(100)));
    let network_handle = network.start();

    let backfill = marshal::resolver::p2p::init(
        context.child("backfill"),
        engine::backfill_config(me.clone(), manager.clone(), oracle.clone()),
        backfill,
    );
    let (shared, gossip, mut handles) = engine::start(
        context.child("engine"),
        engine::Config {
            blocker: oracle.clone(),
            manager,
            partition_prefix: "unet".into(),
            signer: home.identity.clone(),
            epoch_zero: home.epoch_zero.clone(),
            secrets: home.secrets.clone(),
            genesis: genesis.clone(),
            timeouts: Timeouts::default(),
            mempool: home.config.mempool,
            freezer_table_initial_size: 1 << 16,
            tx_index_keep: home.config.tx_index_keep,
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
    .await?;
    handles.push(network_handle);
    Ok((shared, gossip, handles))
}
