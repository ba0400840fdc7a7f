//! The miner daemon: register chips, answer every challenge, keep it all recoverable.
//!
//! One task drives everything from finalized blocks, so there is a single writer of the
//! persistent state:
//!
//! 1. *connect*: chain status (chain id, parameters, genesis hash checked against the state
//!    file), then one subscription to challenge, chip status and reward events and to
//!    finalized blocks, delivered so that when block `h` arrives all of `h`'s events have
//!    been seen.
//! 2. *catch up*: read every chip: not on chain -> registration queue; owned by someone else
//!    or revoked -> reported; a pending challenge not answered yet -> answered now.
//!    Transactions in flight from before are re-checked.
//! 3. *follow*: per finalized block, resolve the miner's transactions in it (receipts),
//!    expire challenges whose window closed, answer new challenges (signed in parallel on
//!    blocking threads, up to 128 answers per transaction, usually one transaction per
//!    block), send registrations (at most the chain's per-block limit in flight), re-send
//!    transactions that did not land, and save the state.
//!
//! Any error of a session (socket closed, node down, a gap in the block stream that the
//! socket cannot explain) ends it; the daemon reconnects with exponential backoff, rotating
//! over the configured nodes, and catches up again. Answers are exactly-once: see
//! [`crate::state`].
//!
//! The seams, one file each:
//! - [`chain`]: the [`MinerChain`] trait, everything the daemon asks of a node, with typed
//!   answers; [`rpc`] is its one implementation over the node API (and [`wire`] reads the
//!   node's JSON);
//! - `session`: one connection (subscribe, catch up, follow blocks and events);
//! - `view`: the daemon's view of its chips on chain and reconciling it with the chain;
//! - `txs`: the transaction lifecycle (nonces, write-ahead send, receipts, re-sends,
//!   outcomes judged from the chain when a receipt is lost);
//! - `answer`: answering challenges; `registration`: registering chips;
//! - `progress`: gauges, progress bars and the status line.

pub mod chain;
pub mod rpc;
pub mod wire;

mod answer;
mod progress;
mod registration;
mod session;
mod txs;
mod view;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use chain::MinerChain;
pub use rpc::RpcChain;

use crate::{
    backend::{ChipBackend, ChipInfo},
    home::MinerHome,
    metrics::Metrics,
    state::MinerState,
};
use anyhow::{anyhow, bail, Result};
use commonware_cryptography::Signer;
use indicatif::ProgressBar;
use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};
use tracing::{info, warn};
use unet_types::{chip::ChipId, hexser, Address, PrivateKey};
use view::{Challenge, OnChain};

/// How the daemon runs.
#[derive(Clone, Debug)]
pub struct MinerConfig {
    /// The miner's home: owner key, chip files, state file.
    pub home: MinerHome,
    /// Node API URLs; the daemon uses the first that answers and rotates on failures.
    pub rpcs: Vec<String>,
    /// Where to serve `/metrics`, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Fee per transaction [default: the chain's minimum].
    pub fee: Option<u128>,
    /// Draw progress bars (registration, catch-up) on a terminal.
    pub progress: bool,
    /// Blocks after which a transaction not yet final is checked and re-sent.
    pub resend_after_blocks: u64,
    /// How often every chip is read again (transfers, revocations, anything missed).
    pub reconcile_every: Duration,
    /// Longest silence on the socket before the connection counts as dead.
    pub idle_timeout: Duration,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
}

impl MinerConfig {
    /// The defaults for a miner at `home` following the nodes at `rpcs`.
    pub fn new(home: MinerHome, rpcs: Vec<String>) -> Self {
        Self {
            home,
            rpcs,
            metrics: None,
            fee: None,
            progress: true,
            resend_after_blocks: 5,
            reconcile_every: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(20),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Why a session ended without a retry making sense.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Fatal(String);

/// Chain facts a session reads once.
#[derive(Clone, Debug)]
struct ChainInfo {
    chain_id: u64,
    response_window: u64,
    max_registrations: u64,
    fee: u128,
}

/// The daemon.
pub struct Miner {
    cfg: MinerConfig,
    backend: Arc<dyn ChipBackend>,
    key: PrivateKey,
    owner: Address,
    owner_hex: String,
    chips: BTreeMap<ChipId, ChipInfo>,
    view: BTreeMap<ChipId, OnChain>,
    pending: BTreeMap<ChipId, Challenge>,
    /// Chips to register.
    to_register: BTreeSet<ChipId>,
    /// Failed registration attempts per chip (permanent failures only).
    register_failures: BTreeMap<ChipId, u32>,
    reported: HashSet<(ChipId, String)>,
    state: MinerState,
    chain: Option<ChainInfo>,
    /// The owner's finalized account nonce (as last read or implied by finalized txs).
    account_nonce: u64,
    metrics: Metrics,
    rewards_base: BTreeMap<ChipId, u128>,
    register_bar: Option<ProgressBar>,
    last_status_line: Instant,
}

impl Miner {
    /// A miner over `backend`'s chips with the home's owner key and state.
    pub fn new(cfg: MinerConfig, backend: Arc<dyn ChipBackend>) -> Result<Self> {
        if cfg.rpcs.is_empty() {
            bail!("no node API URL given");
        }
        let key = cfg.home.owner_key()?;
        let owner = key.public_key();
        let state = MinerState::load(&cfg.home.state_path())?;
        let chips: BTreeMap<ChipId, ChipInfo> = backend
            .chips()
            .into_iter()
            .map(|c| (c.chip_id, c))
            .collect();
        let metrics = Metrics::new();
        metrics.chips.set(chips.len() as i64);
        metrics.challenges_answered.inc_by(state.totals.answered);
        metrics.challenges_missed.inc_by(state.totals.missed);
        metrics.registrations.inc_by(state.totals.registered);
        metrics.liveness_txs.inc_by(state.totals.liveness_txs);
        metrics.failed_txs.inc_by(state.totals.failed_txs);
        let view = chips.keys().map(|id| (*id, OnChain::Unknown)).collect();
        Ok(Self {
            owner_hex: hexser::to_hex(&owner),
            cfg,
            backend,
            key,
            owner,
            chips,
            view,
            pending: BTreeMap::new(),
            to_register: BTreeSet::new(),
            register_failures: BTreeMap::new(),
            reported: HashSet::new(),
            state,
            chain: None,
            account_nonce: 0,
            metrics,
            rewards_base: BTreeMap::new(),
            register_bar: None,
            last_status_line: Instant::now(),
        })
    }

    /// The miner's metrics (shared: they keep counting while the daemon runs).
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The owner address every chip is registered to.
    pub fn owner(&self) -> &Address {
        &self.owner
    }

    /// Runs until `shutdown` resolves (or a fatal error): sessions over the configured
    /// nodes' APIs, with reconnection.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let rpcs = self.cfg.rpcs.clone();
        self.run_on(
            move |i| Box::new(RpcChain::new(&rpcs[i % rpcs.len()])) as Box<dyn MinerChain>,
            shutdown,
        )
        .await
    }

    /// Runs until `shutdown` resolves (or a fatal error): session `i` (from 0) talks to
    /// `connect(i)`; after a session fails the daemon waits (exponential backoff) and
    /// starts the next.
    pub async fn run_on(
        mut self,
        mut connect: impl FnMut(usize) -> Box<dyn MinerChain>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        if let Some(addr) = self.cfg.metrics {
            let local = self.metrics.clone().serve(addr).await?;
            info!(%local, "serving /metrics");
        }
        info!(
            owner = %self.owner_hex,
            chips = self.chips.len(),
            backend = self.backend.name(),
            "miner starting"
        );
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(250);
        let mut attempt = 0;
        loop {
            let chain = connect(attempt);
            attempt += 1;
            let started = self.state.last_height;
            let result = tokio::select! {
                _ = &mut shutdown => {
                    self.save()?;
                    info!("miner stopped");
                    return Ok(());
                }
                r = self.session(chain.as_ref()) => r,
            };
            // A session that made progress resets the backoff.
            if self.state.last_height > started {
                backoff = Duration::from_millis(250);
            }
            let err = match result {
                Ok(()) => anyhow!("session ended"),
                Err(e) => e,
            };
            if let Some(f) = err.downcast_ref::<Fatal>() {
                return Err(anyhow!("{f}"));
            }
            self.save()?;
            self.metrics.reconnects.inc();
            warn!(node = %chain.name(), error = %format!("{err:#}"), retry_in_ms = backoff.as_millis() as u64, "connection to node lost; reconnecting");
            tokio::select! {
                _ = &mut shutdown => {
                    self.save()?;
                    info!("miner stopped");
                    return Ok(());
                }
                _ = tokio::time::sleep(jitter(backoff)) => {}
            }
            backoff = (backoff * 2).min(self.cfg.max_backoff);
        }
    }

    fn save(&mut self) -> Result<()> {
        self.state.save(&self.cfg.home.state_path())
    }

    fn chain(&self) -> Result<&ChainInfo> {
        self.chain
            .as_ref()
            .ok_or_else(|| anyhow!("no chain parameters yet"))
    }
}

fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    rand::fill(&mut b);
    let frac = f64::from(u16::from_be_bytes(b)) / f64::from(u16::MAX);
    d.mul_f64(0.75 + frac * 0.5)
}
