//! The miner daemon: register chips, answer every challenge, keep it all recoverable.
//!
//! One task drives everything from finalized blocks, so there is a single writer of the
//! persistent state:
//!
//! 1. *connect*: `unet_status` (chain id, parameters, genesis hash checked against the state
//!    file), then one WebSocket with four subscriptions in this order: `events/challenge`,
//!    `events/chip_status`, `events/reward`, `newBlocks`. The node sends a block's
//!    notifications in subscription order, so when block `h` arrives all of `h`'s events
//!    have been seen.
//! 2. *catch up*: read every chip (`unet_getChip`, batched): not on chain -> registration
//!    queue; owned by someone else or revoked -> reported; a pending challenge not answered
//!    yet -> answered now. Transactions in flight from before are re-checked.
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

use crate::{
    backend::{ChipBackend, ChipInfo},
    home::MinerHome,
    metrics::Metrics,
    state::{Inflight, InflightKind, MinerState},
};
use anyhow::{anyhow, bail, Context as _, Result};
use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::Signer;
use futures::{SinkExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};
use unet_client::{Client, ClientError};
use unet_types::{
    chip::ChipId,
    hexser,
    liveness::{response_digest, LivenessResponse, MAX_RESPONSES_PER_TX},
    Address, Digest, Payload, PrivateKey, SignedTx, Transaction,
};

/// JSON-RPC code of a refused transaction.
const INVALID_TX: i64 = -32010;
/// JSON-RPC code of "not found".
const NOT_FOUND: i64 = -32004;
/// `unet_getChip` calls per batch during a catch-up.
const CHIP_BATCH: usize = 200;

/// How the daemon runs.
#[derive(Clone, Debug)]
pub struct MinerConfig {
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

/// A challenge of one of the miner's chips, open until its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Challenge {
    height: u64,
    beacon: Digest,
    /// Last block height the answer may land in.
    deadline: u64,
}

/// What the chain says about a chip.
#[derive(Clone, Debug, PartialEq, Eq)]
enum OnChain {
    /// Not read yet.
    Unknown,
    /// Not registered.
    Missing,
    /// Registered to another owner.
    Foreign { owner: String },
    /// Registered to this miner's owner.
    Mine { status: String },
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
    dirty: bool,
    chain: Option<ChainInfo>,
    /// The owner's finalized account nonce (as last read or implied by finalized txs).
    account_nonce: u64,
    metrics: Metrics,
    rewards_base: BTreeMap<ChipId, u128>,
    rpc_index: usize,
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
            dirty: false,
            chain: None,
            account_nonce: 0,
            metrics,
            rewards_base: BTreeMap::new(),
            rpc_index: 0,
            register_bar: None,
            last_status_line: Instant::now(),
        })
    }

    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    pub fn owner(&self) -> &Address {
        &self.owner
    }

    /// Runs until `shutdown` resolves (or a fatal error): sessions with reconnection.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
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
        loop {
            let rpc = self.cfg.rpcs[self.rpc_index % self.cfg.rpcs.len()].clone();
            let started = self.state.last_height;
            let result = tokio::select! {
                _ = &mut shutdown => {
                    self.save()?;
                    info!("miner stopped");
                    return Ok(());
                }
                r = self.session(&rpc) => r,
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
            self.rpc_index += 1;
            warn!(node = %rpc, error = %format!("{err:#}"), retry_in_ms = backoff.as_millis() as u64, "connection to node lost; reconnecting");
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
        self.state.save(&self.cfg.home.state_path())?;
        self.dirty = false;
        Ok(())
    }

    fn chain(&self) -> Result<&ChainInfo> {
        self.chain
            .as_ref()
            .ok_or_else(|| anyhow!("no chain parameters yet"))
    }

    /// One connection: subscribe, catch up, follow.
    async fn session(&mut self, rpc: &str) -> Result<()> {
        let client = Client::new(rpc);
        let status = client.status().await.context("unet_status")?;
        match &self.state.genesis_hash {
            Some(g) if *g != status.genesis_hash => {
                return Err(Fatal(format!(
                    "{} belongs to the chain with genesis {g}, but {rpc} serves genesis {}; \
                     move the state file away to start over on this chain",
                    self.cfg.home.state_path().display(),
                    status.genesis_hash
                ))
                .into())
            }
            Some(_) => {}
            None => {
                self.state.genesis_hash = Some(status.genesis_hash.clone());
                self.dirty = true;
            }
        }
        self.chain = Some(ChainInfo {
            chain_id: status.chain_id,
            response_window: status.params.response_window,
            max_registrations: u64::from(status.params.max_registrations_per_block).max(1),
            fee: self.cfg.fee.unwrap_or(status.params.min_fee),
        });

        let (mut ws, sids) = subscribe(&client).await?;
        info!(node = %rpc, finalized = status.finalized_height, "connected");
        self.catch_up(&client).await?;

        let mut reconcile = tokio::time::interval(self.cfg.reconcile_every);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reconcile.tick().await;
        loop {
            tokio::select! {
                msg = tokio::time::timeout(self.cfg.idle_timeout, ws.next()) => {
                    let first = match msg {
                        Err(_) => bail!("no notification for {:?}", self.cfg.idle_timeout),
                        Ok(m) => m,
                    };
                    // Take every notification already received, then do the per-block work
                    // once for all of them: a miner that fell behind catches up in one step
                    // instead of answering block by block.
                    let mut blocks = Vec::new();
                    let mut next = Some(first);
                    while let Some(msg) = next.take() {
                        match msg {
                            None => bail!("socket closed"),
                            Some(Err(e)) => bail!("socket error: {e}"),
                            Some(Ok(Message::Text(t))) => self.on_text(&t, &sids, &mut blocks),
                            Some(Ok(Message::Ping(p))) => {
                                ws.send(Message::Pong(p)).await.ok();
                            }
                            Some(Ok(Message::Close(_))) => bail!("node closed the socket"),
                            Some(Ok(_)) => {}
                        }
                        next = futures::FutureExt::now_or_never(ws.next());
                    }
                    if !blocks.is_empty() {
                        self.on_blocks(&client, blocks).await?;
                    }
                }
                _ = reconcile.tick() => {
                    self.reconcile(&client, false).await?;
                }
            }
        }
    }

    /// One notification; block notifications are collected into `blocks`.
    fn on_text(&mut self, text: &str, sids: &Sids, blocks: &mut Vec<(u64, Vec<String>)>) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            warn!("ignoring a notification that is not JSON");
            return;
        };
        let sid = v["params"]["subscription"].as_u64();
        let result = &v["params"]["result"];
        match sid {
            Some(s) if s == sids.challenge => self.on_challenges(result),
            Some(s) if s == sids.chip_status => self.on_chip_status(result),
            Some(s) if s == sids.reward => self.on_rewards(result),
            Some(s) if s == sids.blocks => {
                let Some(height) = result["height"].as_u64() else {
                    warn!("block notification without a height");
                    return;
                };
                let hashes = result["transactions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                blocks.push((height, hashes));
            }
            _ => debug!("ignoring message {text:.200}"),
        }
    }

    /// Re-reads everything after a (re)connection.
    async fn catch_up(&mut self, client: &Client) -> Result<()> {
        self.refresh_nonce(client).await?;
        self.check_balance(client).await;
        self.reconcile(client, true).await?;
        let finalized = client.status().await?.finalized_height;
        // Everything in flight from before is settled now (re-sent if the node lost it).
        let all: Vec<Inflight> = self
            .state
            .inflight
            .iter()
            .map(|t| Inflight {
                last_sent: 0,
                ..t.clone()
            })
            .collect();
        self.resolve(client, all, finalized.max(self.cfg.resend_after_blocks))
            .await?;
        self.answer_pending(client, finalized).await?;
        self.register_some(client, finalized).await?;
        if finalized > self.state.last_height {
            self.state.last_height = finalized;
            self.dirty = true;
        }
        self.save()?;
        Ok(())
    }

    async fn refresh_nonce(&mut self, client: &Client) -> Result<()> {
        let account = client.account(&self.owner).await?;
        self.account_nonce = self.account_nonce.max(account.nonce);
        Ok(())
    }

    async fn check_balance(&self, client: &Client) {
        let Ok(chain) = self.chain() else { return };
        if let Ok(a) = client.account(&self.owner).await {
            let needed = chain.fee.saturating_mul(100);
            if a.balance < needed {
                warn!(
                    owner = %self.owner_hex,
                    balance = %a.balance_unc,
                    "the owner account can pay fewer than 100 transactions; fund it or chips \
                     will miss challenges"
                );
            }
        }
    }

    /// Reads every chip from the chain; queues registrations and unanswered challenges.
    async fn reconcile(&mut self, client: &Client, initial: bool) -> Result<()> {
        let ids: Vec<ChipId> = self.chips.keys().copied().collect();
        let bar = self.bar(initial && ids.len() > 1, ids.len() as u64, "catching up");
        for chunk in ids.chunks(CHIP_BATCH) {
            let calls: Vec<(&str, Value)> = chunk
                .iter()
                .map(|id| ("unet_getChip", json!([hex::encode(id)])))
                .collect();
            let replies = client.batch(&calls).await?;
            for (id, reply) in chunk.iter().zip(replies) {
                self.apply_chip_view(id, reply)?;
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        self.update_gauges();
        if initial {
            let registered = self
                .view
                .values()
                .filter(|v| matches!(v, OnChain::Mine { .. }))
                .count();
            info!(
                chips = self.chips.len(),
                registered,
                to_register = self.to_register.len(),
                open_challenges = self.pending.len(),
                "caught up with the chain"
            );
        }
        Ok(())
    }

    /// Applies one `unet_getChip` reply.
    fn apply_chip_view(
        &mut self,
        id: &ChipId,
        reply: std::result::Result<Value, ClientError>,
    ) -> Result<()> {
        let window = self.chain()?.response_window;
        let idh = hex::encode(id);
        let v = match reply {
            Ok(v) => v,
            Err(ClientError::Rpc {
                code: NOT_FOUND, ..
            }) => {
                if self
                    .view
                    .get(id)
                    .is_some_and(|v| matches!(v, OnChain::Mine { .. }))
                {
                    warn!(chip = %idh, "chip is no longer registered (deregistered); registering it again");
                }
                self.view.insert(*id, OnChain::Missing);
                self.pending.remove(id);
                if !self.register_in_flight(&idh) {
                    self.to_register.insert(*id);
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let owner = v["owner"].as_str().unwrap_or_default().to_string();
        let status = v["status"].as_str().unwrap_or("unknown").to_string();
        self.to_register.remove(id);
        if owner != self.owner_hex {
            if self.reported.insert((*id, format!("foreign:{owner}"))) {
                warn!(chip = %idh, %owner, "chip is registered to another owner (transferred?); not answering its challenges");
            }
            self.view.insert(*id, OnChain::Foreign { owner });
            self.pending.remove(id);
            return Ok(());
        }
        if status == "revoked" && self.reported.insert((*id, "revoked".into())) {
            warn!(chip = %idh, "chip is revoked by governance; it earns nothing and cannot be registered again");
        }
        if let Some(total) = v["rewards"]["total"].as_str().and_then(|s| s.parse().ok()) {
            self.rewards_base.insert(*id, total);
        }
        self.view.insert(
            *id,
            OnChain::Mine {
                status: status.clone(),
            },
        );
        if status == "revoked" {
            self.pending.remove(id);
            return Ok(());
        }
        let p = &v["liveness"]["pending_challenge"];
        if let (Some(h), Some(b)) = (p["height"].as_u64(), p["beacon"].as_str()) {
            let beacon: Digest = hexser::from_hex(b).map_err(|e| anyhow!("beacon: {e}"))?;
            self.state.last_challenge.insert(idh.clone(), h);
            if !self.state.is_answered(&idh, h) {
                self.pending.insert(
                    *id,
                    Challenge {
                        height: h,
                        beacon,
                        deadline: h + window,
                    },
                );
            }
        }
        Ok(())
    }

    fn register_in_flight(&self, idh: &str) -> bool {
        self.state
            .inflight
            .iter()
            .any(|t| matches!(&t.what, InflightKind::Register { chip_id } if chip_id == idh))
    }

    fn update_gauges(&self) {
        let mut registered = 0;
        let mut online = 0;
        let mut unresponsive = 0;
        let mut revoked = 0;
        let mut foreign = 0;
        for v in self.view.values() {
            match v {
                OnChain::Mine { status } => {
                    registered += 1;
                    match status.as_str() {
                        "online" => online += 1,
                        "unresponsive" => unresponsive += 1,
                        "revoked" => revoked += 1,
                        _ => {}
                    }
                }
                OnChain::Foreign { .. } => foreign += 1,
                _ => {}
            }
        }
        self.metrics.chips_registered.set(registered);
        self.metrics.chips_online.set(online);
        self.metrics.chips_unresponsive.set(unresponsive);
        self.metrics.chips_revoked.set(revoked);
        self.metrics.chips_foreign.set(foreign);
        let total: u128 = self.rewards_base.values().sum();
        self.metrics
            .rewards_earned_unc
            .set(total as f64 / unet_types::UNC as f64);
    }

    fn is_mine(&self, id: &ChipId) -> bool {
        matches!(self.view.get(id), Some(OnChain::Mine { status }) if status != "revoked")
    }

    fn on_challenges(&mut self, events: &Value) {
        let Some(window) = self.chain.as_ref().map(|c| c.response_window) else {
            return;
        };
        for e in events.as_array().into_iter().flatten() {
            if e["kind"] != "challenge" {
                continue;
            }
            let Some(id) = parse_id(&e["chip_id"]) else {
                continue;
            };
            if !self.chips.contains_key(&id) {
                continue;
            }
            let (Some(h), Some(b)) = (e["height"].as_u64(), e["beacon"].as_str()) else {
                warn!("challenge event without height or beacon: {e}");
                continue;
            };
            let Ok(beacon) = hexser::from_hex::<Digest>(b) else {
                warn!("challenge event with a bad beacon: {e}");
                continue;
            };
            let deadline = e["deadline"].as_u64().unwrap_or(h + window);
            let idh = hex::encode(id);
            debug!(chip = %idh, height = h, deadline, "challenged");
            self.state.last_challenge.insert(idh.clone(), h);
            self.dirty = true;
            if !self.state.is_answered(&idh, h) {
                self.pending.insert(
                    id,
                    Challenge {
                        height: h,
                        beacon,
                        deadline,
                    },
                );
            }
        }
    }

    fn on_chip_status(&mut self, events: &Value) {
        for e in events.as_array().into_iter().flatten() {
            if e["kind"] != "chip_status" {
                continue;
            }
            let Some(id) = parse_id(&e["chip_id"]) else {
                continue;
            };
            if !self.chips.contains_key(&id) {
                continue;
            }
            let to = e["to"].as_str().unwrap_or("unknown").to_string();
            let reason = e["reason"].as_str().unwrap_or_default();
            let idh = hex::encode(id);
            match to.as_str() {
                "online" => info!(chip = %idh, reason, "chip is Online again"),
                "unresponsive" => warn!(chip = %idh, reason, "chip became Unresponsive"),
                "revoked" => warn!(chip = %idh, reason, "chip was revoked"),
                _ => info!(chip = %idh, to, reason, "chip status changed"),
            }
            if let Some(OnChain::Mine { status }) = self.view.get_mut(&id) {
                *status = to;
            }
        }
        self.update_gauges();
    }

    fn on_rewards(&mut self, events: &Value) {
        for e in events.as_array().into_iter().flatten() {
            if e["kind"] != "reward" {
                continue;
            }
            let Some(id) = parse_id(&e["chip_id"]) else {
                continue;
            };
            if !self.chips.contains_key(&id) {
                continue;
            }
            let amount: u128 = e["amount"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if e["owner"].as_str() == Some(self.owner_hex.as_str()) {
                *self.rewards_base.entry(id).or_default() += amount;
                debug!(chip = %hex::encode(id), epoch = e["epoch"].as_u64(), amount = %amount, "reward");
            }
        }
        self.update_gauges();
    }

    /// Finalized blocks (usually one): the heart of the loop.
    async fn on_blocks(&mut self, client: &Client, blocks: Vec<(u64, Vec<String>)>) -> Result<()> {
        let mut expected = self.state.last_height + 1;
        let mut gap = false;
        let mut hashes = HashSet::new();
        let mut height = self.state.last_height;
        for (h, txs) in blocks {
            if h < expected {
                continue;
            }
            gap |= h > expected;
            expected = h + 1;
            height = h;
            hashes.extend(txs);
        }
        if height == self.state.last_height {
            return Ok(());
        }
        if gap {
            // The socket skipped blocks (the node drops notifications to slow readers):
            // their events are lost, so read the chips again.
            warn!(
                up_to = height,
                "missed block notifications; re-reading chips"
            );
            self.refresh_nonce(client).await?;
            self.reconcile(client, false).await?;
        }
        // Our transactions in these blocks, and those not final for a while.
        let after = self.cfg.resend_after_blocks;
        let check: Vec<Inflight> = self
            .state
            .inflight
            .iter()
            .filter(|t| gap || hashes.contains(&t.hash) || t.last_sent + after <= height)
            .cloned()
            .collect();
        self.resolve(client, check, height).await?;
        self.expire(height);
        self.answer_pending(client, height).await?;
        self.register_some(client, height).await?;
        self.state.last_height = height;
        self.metrics.finalized_height.set(height as i64);
        self.save()?;
        if self.last_status_line.elapsed() >= Duration::from_secs(10) {
            self.last_status_line = Instant::now();
            self.status_line(height);
        }
        Ok(())
    }

    fn status_line(&self, height: u64) {
        info!(
            height,
            chips = self.chips.len(),
            online = self.metrics.chips_online.get(),
            unresponsive = self.metrics.chips_unresponsive.get(),
            answered = self.state.totals.answered,
            missed = self.state.totals.missed,
            open_challenges = self.pending.len(),
            in_flight = self.state.inflight.len(),
            rewards_unc = format!("{:.6}", self.metrics.rewards_earned_unc.get()),
            "status"
        );
    }

    /// A transaction of ours is final with `receipt`.
    async fn finish_tx(&mut self, client: &Client, tx: &Inflight, receipt: &Value) -> Result<()> {
        self.state.inflight.retain(|t| t.hash != tx.hash);
        self.account_nonce = self.account_nonce.max(tx.nonce + 1);
        self.dirty = true;
        let ok = receipt["status"] == "ok";
        let code = receipt["code"].as_str().unwrap_or_default().to_string();
        match &tx.what {
            InflightKind::Liveness { responses } => {
                if ok {
                    // Answers apply one by one: the receipt lists those that did not. One
                    // already answered (someone relayed the same proof first) is done; any
                    // other is re-read and may be answered again.
                    let skipped: BTreeMap<usize, &str> = receipt["skipped"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| {
                                    Some((s["index"].as_u64()? as usize, s["code"].as_str()?))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut retry = Vec::new();
                    for (i, (chip, h)) in responses.iter().enumerate() {
                        match skipped.get(&i) {
                            None | Some(&"liveness_already_answered") => {
                                if let Some(id) = parse_id(&json!(chip)) {
                                    if self.pending.get(&id).is_some_and(|c| c.height == *h) {
                                        self.pending.remove(&id);
                                    }
                                }
                            }
                            Some(code) => {
                                warn!(tx = %tx.hash, chip = %chip, code, "answer skipped; re-reading the chip");
                                self.state.forget_answer(chip, *h);
                                retry.push(chip.as_str());
                            }
                        }
                    }
                    let landed = (responses.len() - retry.len()) as u64;
                    self.state.totals.answered += landed;
                    self.state.totals.liveness_txs += 1;
                    self.metrics.challenges_answered.inc_by(landed);
                    self.metrics.liveness_txs.inc();
                    debug!(tx = %tx.hash, answers = landed, skipped = skipped.len(), "answers final");
                    if !retry.is_empty() {
                        self.reread(client, retry).await?;
                    }
                } else {
                    self.state.totals.failed_txs += 1;
                    self.metrics.failed_txs.inc();
                    warn!(tx = %tx.hash, %code, reason = %receipt["reason"], "liveness transaction failed; re-reading its chips");
                    for (chip, h) in responses {
                        self.state.forget_answer(chip, *h);
                    }
                    self.reread(client, responses.iter().map(|(c, _)| c.as_str()))
                        .await?;
                }
            }
            InflightKind::Register { chip_id } => {
                let Some(id) = parse_id(&json!(chip_id)) else {
                    return Ok(());
                };
                if ok {
                    self.state.totals.registered += 1;
                    self.metrics.registrations.inc();
                    if let Some(bar) = &self.register_bar {
                        bar.inc(1);
                    }
                    info!(chip = %chip_id, model = %self.chips.get(&id).map(|c| c.model.as_str()).unwrap_or("?"), "chip registered");
                    self.to_register.remove(&id);
                    self.view.insert(
                        id,
                        OnChain::Mine {
                            status: "online".into(),
                        },
                    );
                    self.update_gauges();
                } else {
                    self.state.totals.failed_txs += 1;
                    self.metrics.failed_txs.inc();
                    let permanent = code.starts_with("evidence_")
                        || matches!(code.as_str(), "unknown_model" | "chip_revoked" | "revoked");
                    if permanent {
                        let n = self.register_failures.entry(id).or_default();
                        *n += 1;
                        if *n >= 3 {
                            self.to_register.remove(&id);
                            tracing::error!(chip = %chip_id, %code, reason = %receipt["reason"], "chip cannot be registered; giving up on it");
                            return Ok(());
                        }
                    }
                    warn!(chip = %chip_id, %code, reason = %receipt["reason"], "registration failed; will retry");
                    self.reread(client, [chip_id.as_str()]).await?;
                }
            }
        }
        Ok(())
    }

    /// Reads some chips again (after a failure).
    async fn reread<'a>(
        &mut self,
        client: &Client,
        chips: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        let ids: Vec<ChipId> = chips
            .into_iter()
            .filter_map(|c| parse_id(&json!(c)))
            .collect();
        for chunk in ids.chunks(CHIP_BATCH) {
            let calls: Vec<(&str, Value)> = chunk
                .iter()
                .map(|id| ("unet_getChip", json!([hex::encode(id)])))
                .collect();
            let replies = client.batch(&calls).await?;
            for (id, reply) in chunk.iter().zip(replies) {
                self.apply_chip_view(id, reply)?;
            }
        }
        Ok(())
    }

    /// Challenges whose last block has passed without our answer landing are misses.
    fn expire(&mut self, height: u64) {
        let expired: Vec<(ChipId, Challenge)> = self
            .pending
            .iter()
            .filter(|(_, c)| c.deadline <= height)
            .map(|(id, c)| (*id, *c))
            .collect();
        for (id, c) in expired {
            self.pending.remove(&id);
            let idh = hex::encode(id);
            let in_flight = self.state.inflight.iter().any(|t| match &t.what {
                InflightKind::Liveness { responses } => {
                    responses.iter().any(|(ch, h)| *ch == idh && *h == c.height)
                }
                _ => false,
            });
            if in_flight {
                // Its answer may still have landed in time; the receipt decides.
                continue;
            }
            self.state.totals.missed += 1;
            self.metrics.challenges_missed.inc();
            self.dirty = true;
            warn!(chip = %idh, challenge = c.height, deadline = c.deadline, "challenge window closed without an answer");
        }
    }

    /// Settles transactions in flight: final (receipt), still pending, or lost (re-sent, or
    /// judged from the chain when their nonce was consumed). One batched call.
    async fn resolve(&mut self, client: &Client, txs: Vec<Inflight>, height: u64) -> Result<()> {
        if txs.is_empty() {
            return Ok(());
        }
        let mut replies = Vec::with_capacity(txs.len());
        for chunk in txs.chunks(CHIP_BATCH) {
            let calls: Vec<(&str, Value)> = chunk
                .iter()
                .map(|t| ("unet_getTransaction", json!([t.hash])))
                .collect();
            replies.extend(client.batch(&calls).await?);
        }
        let mut unknown = Vec::new();
        for (tx, reply) in txs.into_iter().zip(replies) {
            match reply {
                Ok(v) if v["status"] == "finalized" => {
                    self.finish_tx(client, &tx, &v["receipt"]).await?
                }
                Ok(v) if v["status"] == "pending" => self.touch(&tx.hash, height),
                Ok(_) | Err(ClientError::Rpc { .. }) => {
                    if tx.last_sent + self.cfg.resend_after_blocks <= height {
                        unknown.push(tx);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        self.refresh_nonce(client).await?;
        for tx in unknown {
            if tx.nonce < self.account_nonce {
                // Its nonce was consumed, but this node does not know the transaction (it
                // restarted, or the block came while we were away): the chain state of its
                // chips tells whether it applied.
                self.settle_unknown(client, &tx).await?;
            } else {
                self.resend(client, &tx, height).await?;
            }
        }
        Ok(())
    }

    fn touch(&mut self, hash: &str, height: u64) {
        if let Some(t) = self.state.inflight.iter_mut().find(|t| t.hash == hash) {
            t.last_sent = height;
            self.dirty = true;
        }
    }

    /// A transaction whose nonce was used but whose receipt we cannot get.
    async fn settle_unknown(&mut self, client: &Client, tx: &Inflight) -> Result<()> {
        self.state.inflight.retain(|t| t.hash != tx.hash);
        self.dirty = true;
        match &tx.what {
            InflightKind::Liveness { responses } => {
                // Chip state is read after the account nonce, so it reflects the block that
                // consumed the nonce: a chip still pending on the same challenge means the
                // answer did not apply.
                let ids: Vec<&str> = responses.iter().map(|(c, _)| c.as_str()).collect();
                let mut replies = Vec::new();
                for chunk in ids.chunks(CHIP_BATCH) {
                    let calls: Vec<(&str, Value)> = chunk
                        .iter()
                        .map(|id| ("unet_getChip", json!([id])))
                        .collect();
                    replies.extend(client.batch(&calls).await?);
                }
                // Answers apply one by one: count those whose challenge is no longer pending.
                let mut applied = 0u64;
                for ((chip, h), reply) in responses.iter().zip(replies) {
                    let still = reply
                        .as_ref()
                        .ok()
                        .and_then(|v| v["liveness"]["pending_challenge"]["height"].as_u64())
                        == Some(*h);
                    if still {
                        self.state.forget_answer(chip, *h);
                    } else {
                        applied += 1;
                        if let Some(id) = parse_id(&json!(chip)) {
                            if self.pending.get(&id).is_some_and(|c| c.height == *h) {
                                self.pending.remove(&id);
                            }
                        }
                    }
                }
                if applied > 0 {
                    self.state.totals.answered += applied;
                    self.state.totals.liveness_txs += 1;
                    self.metrics.challenges_answered.inc_by(applied);
                    self.metrics.liveness_txs.inc();
                }
                if applied < responses.len() as u64 {
                    warn!(tx = %tx.hash, missing = responses.len() as u64 - applied, "some answers did not apply; answering again");
                }
                self.reread(client, ids).await?;
            }
            InflightKind::Register { chip_id } => {
                self.reread(client, [chip_id.as_str()]).await?;
            }
        }
        Ok(())
    }

    /// Sends a recorded transaction again, byte for byte.
    async fn resend(&mut self, client: &Client, tx: &Inflight, height: u64) -> Result<()> {
        let raw = hex::decode(&tx.raw).map_err(|e| anyhow!("state: bad raw tx: {e}"))?;
        let stx = SignedTx::decode(commonware_codec::Copying(raw.as_slice()))
            .map_err(|e| anyhow!("state: bad raw tx: {e}"))?;
        debug!(tx = %tx.hash, nonce = tx.nonce, "re-sending");
        match client.send_transaction(&stx).await {
            Ok(_) => self.touch(&tx.hash, height),
            Err(e) => match refusal(&e) {
                Some("duplicate") => self.touch(&tx.hash, height),
                Some("nonce_too_low") => {
                    self.refresh_nonce(client).await?;
                    self.settle_unknown(client, tx).await?;
                }
                Some(check) => {
                    warn!(tx = %tx.hash, check, error = %e, "node refuses a transaction in flight; dropping it");
                    self.drop_tx(tx);
                }
                None => return Err(e.into()),
            },
        }
        Ok(())
    }

    /// Forgets a transaction that can never land; its answers may be sent again.
    fn drop_tx(&mut self, tx: &Inflight) {
        self.state.inflight.retain(|t| t.hash != tx.hash);
        if let InflightKind::Liveness { responses } = &tx.what {
            for (chip, h) in responses {
                self.state.forget_answer(chip, *h);
            }
        }
        self.dirty = true;
    }

    /// The lowest nonce not held by a transaction in flight.
    fn next_nonce(&self, taken: &BTreeSet<u64>) -> u64 {
        let mut n = self.account_nonce;
        while taken.contains(&n) {
            n += 1;
        }
        n
    }

    /// Answers every open challenge not answered yet, in batches of up to 128.
    async fn answer_pending(&mut self, client: &Client, height: u64) -> Result<()> {
        let todo: Vec<(ChipId, Challenge)> = self
            .pending
            .iter()
            .filter(|(id, c)| {
                c.deadline > height
                    && self.is_mine(id)
                    && !self.state.is_answered(&hex::encode(id), c.height)
            })
            .map(|(id, c)| (*id, *c))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let chain = self.chain()?.clone();
        let jobs: Vec<(ChipId, u64, [u8; 32])> = todo
            .iter()
            .map(|(id, c)| {
                (
                    *id,
                    c.height,
                    response_digest(chain.chain_id, c.height, &c.beacon, id),
                )
            })
            .collect();
        let signed = sign_all(self.backend.clone(), jobs, |b, (id, h, digest)| {
            b.answer(&id, &digest).map(|proof| LivenessResponse {
                chip_id: id,
                challenge_height: h,
                proof,
            })
        })
        .await;
        let mut responses = Vec::new();
        for r in signed {
            match r {
                Ok(r) => responses.push(r),
                Err(e) => warn!(error = %e, "chip could not answer"),
            }
        }
        // A transaction is all-or-nothing: one late answer would sink the others with it.
        // Answers close to their deadline go in transactions of their own kind.
        let deadline: BTreeMap<ChipId, u64> =
            todo.iter().map(|(id, c)| (*id, c.deadline)).collect();
        let urgent =
            |r: &LivenessResponse| deadline.get(&r.chip_id).copied().unwrap_or(0) <= height + 2;
        let (near, far): (Vec<LivenessResponse>, Vec<LivenessResponse>) =
            responses.into_iter().partition(urgent);
        let batches: Vec<&[LivenessResponse]> = near
            .chunks(MAX_RESPONSES_PER_TX)
            .chain(far.chunks(MAX_RESPONSES_PER_TX))
            .collect();
        let count = near.len() + far.len();
        let mut txs = Vec::new();
        let mut taken = self.state.inflight_nonces();
        for batch in batches {
            let nonce = self.next_nonce(&taken);
            taken.insert(nonce);
            let stx = self.sign_tx(
                &chain,
                nonce,
                Payload::Liveness {
                    responses: batch.to_vec(),
                },
            );
            let answers: Vec<(String, u64)> = batch
                .iter()
                .map(|r| (hex::encode(r.chip_id), r.challenge_height))
                .collect();
            for (chip, h) in &answers {
                self.state.answered.insert(chip.clone(), *h);
            }
            let rec = Inflight {
                hash: hex::encode(stx.hash()),
                nonce,
                raw: hex::encode(stx.encode()),
                sent_at: height,
                last_sent: height,
                what: InflightKind::Liveness { responses: answers },
            };
            self.state.inflight.push(rec.clone());
            txs.push((stx, rec));
        }
        debug!(answers = count, txs = txs.len(), "answering");
        self.send_recorded(client, txs).await
    }

    fn sign_tx(&self, chain: &ChainInfo, nonce: u64, payload: Payload) -> SignedTx {
        Transaction {
            chain_id: chain.chain_id,
            sender: self.owner.clone(),
            nonce,
            fee: chain.fee,
            payload,
        }
        .sign(&self.key)
    }

    /// Saves the state (write-ahead), then sends; handles refusals.
    async fn send_recorded(
        &mut self,
        client: &Client,
        txs: Vec<(SignedTx, Inflight)>,
    ) -> Result<()> {
        if txs.is_empty() {
            return Ok(());
        }
        self.save()?;
        let signed: Vec<SignedTx> = txs.iter().map(|(s, _)| s.clone()).collect();
        let results = match client.send_transactions(&signed).await {
            Ok(r) => r,
            // Unknown whether the node took them: they stay in flight and are re-sent.
            Err(e) => return Err(e.into()),
        };
        let mut refreshed = false;
        for ((_, rec), result) in txs.iter().zip(results) {
            let Err(e) = result else { continue };
            match refusal(&e) {
                Some("duplicate") => {}
                check => {
                    warn!(tx = %rec.hash, nonce = rec.nonce, check = check.unwrap_or("?"), error = %e, "transaction refused");
                    self.drop_tx(rec);
                    if matches!(check, Some("nonce_too_low")) && !refreshed {
                        refreshed = true;
                        self.refresh_nonce(client).await?;
                    }
                }
            }
        }
        self.save()
    }

    /// Sends registrations for queued chips (at most the chain's per-block limit in flight).
    async fn register_some(&mut self, client: &Client, height: u64) -> Result<()> {
        if self.to_register.is_empty() {
            if let Some(bar) = self.register_bar.take() {
                bar.finish_and_clear();
            }
            return Ok(());
        }
        let chain = self.chain()?.clone();
        let in_flight: HashSet<String> = self
            .state
            .inflight
            .iter()
            .filter_map(|t| match &t.what {
                InflightKind::Register { chip_id } => Some(chip_id.clone()),
                _ => None,
            })
            .collect();
        // All of ours may land in one block: more than the per-block limit would leave some out,
        // and every later nonce (answers!) would wait behind them.
        let room = chain
            .max_registrations
            .saturating_sub(in_flight.len() as u64);
        let chips: Vec<ChipId> = self
            .to_register
            .iter()
            .filter(|id| !in_flight.contains(&hex::encode(id)))
            .take(room as usize)
            .copied()
            .collect();
        if chips.is_empty() {
            return Ok(());
        }
        if self.register_bar.is_none() {
            let total = self.to_register.len() as u64;
            let bar = self.bar(true, total, "registering");
            self.register_bar = Some(bar);
        }
        // Only the anchor comes from the node; the nonce is derived here for our own owner,
        // so a lying node cannot make the chips sign a registration to someone else.
        let anchor = crate::register::fetch_anchor(client, chain.chain_id, &self.owner).await?;
        let (nonce, anchor_height) = (anchor.nonce, anchor.height);
        let evidence = sign_all(self.backend.clone(), chips.clone(), move |b, id| {
            b.registration_evidence(&id, &nonce).map(|e| (id, e))
        })
        .await;
        let mut txs = Vec::new();
        let mut taken = self.state.inflight_nonces();
        for r in evidence {
            let (id, evidence) = match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "no registration evidence");
                    continue;
                }
            };
            let n = self.next_nonce(&taken);
            taken.insert(n);
            let stx = self.sign_tx(
                &chain,
                n,
                Payload::RegisterChip {
                    anchor_height,
                    evidence,
                },
            );
            let rec = Inflight {
                hash: hex::encode(stx.hash()),
                nonce: n,
                raw: hex::encode(stx.encode()),
                sent_at: height,
                last_sent: height,
                what: InflightKind::Register {
                    chip_id: hex::encode(id),
                },
            };
            self.state.inflight.push(rec.clone());
            txs.push((stx, rec));
        }
        debug!(registrations = txs.len(), "registering");
        self.send_recorded(client, txs).await
    }

    fn bar(&self, show: bool, len: u64, what: &'static str) -> ProgressBar {
        if !(show && self.cfg.progress) {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} chips {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what);
        bar
    }
}

/// Subscription ids of a session.
struct Sids {
    challenge: u64,
    chip_status: u64,
    reward: u64,
    blocks: u64,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the socket and subscribes (events first, blocks last; see the module docs).
async fn subscribe(client: &Client) -> Result<(Socket, Sids)> {
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(client.ws_url()),
    )
    .await
    .map_err(|_| anyhow!("WebSocket connect timed out"))??;
    let topics = [
        json!(["events", {"kind": "challenge"}]),
        json!(["events", {"kind": "chip_status"}]),
        json!(["events", {"kind": "reward"}]),
        json!(["newBlocks"]),
    ];
    let mut ids = [0u64; 4];
    for (i, params) in topics.iter().enumerate() {
        let req =
            json!({"jsonrpc": "2.0", "id": i + 1, "method": "unet_subscribe", "params": params});
        ws.send(Message::Text(req.to_string().into())).await?;
        // Notifications of earlier subscriptions may come first; they are re-derived by the
        // catch-up that follows, so skipping them loses nothing.
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .map_err(|_| anyhow!("no reply to unet_subscribe"))?
                .ok_or_else(|| anyhow!("socket closed while subscribing"))??;
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t)?;
            if v["id"].as_u64() != Some(i as u64 + 1) {
                continue;
            }
            if let Some(e) = v.get("error") {
                bail!("unet_subscribe {params}: {e}");
            }
            ids[i] = v["result"]
                .as_u64()
                .ok_or_else(|| anyhow!("subscription id missing: {v}"))?;
            break;
        }
    }
    Ok((
        ws,
        Sids {
            challenge: ids[0],
            chip_status: ids[1],
            reward: ids[2],
            blocks: ids[3],
        },
    ))
}

/// Runs `f` over `jobs` on blocking threads, in parallel chunks; results in job order.
async fn sign_all<J, T, F>(
    backend: Arc<dyn ChipBackend>,
    jobs: Vec<J>,
    f: F,
) -> Vec<std::result::Result<T, crate::backend::BackendError>>
where
    J: Send + 'static,
    T: Send + 'static,
    F: Fn(&dyn ChipBackend, J) -> std::result::Result<T, crate::backend::BackendError>
        + Send
        + Sync
        + Copy
        + 'static,
{
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 64);
    let per = jobs.len().div_ceil(threads).max(8);
    let mut chunks: Vec<Vec<J>> = Vec::new();
    let mut it = jobs.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(per).collect());
    }
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let b = backend.clone();
            tokio::task::spawn_blocking(move || {
                chunk
                    .into_iter()
                    .map(|j| f(b.as_ref(), j))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        match h.await {
            Ok(rs) => out.extend(rs),
            Err(e) => out.push(Err(crate::backend::BackendError::Setup(format!(
                "signing thread failed: {e}"
            )))),
        }
    }
    out
}

/// The refusal check of a transaction the node did not admit, if that is what `e` is.
fn refusal(e: &ClientError) -> Option<&str> {
    match e {
        ClientError::Rpc {
            code: INVALID_TX,
            data,
            ..
        } => Some(
            data.as_ref()
                .and_then(|d| d["check"].as_str())
                .unwrap_or("refused"),
        ),
        _ => None,
    }
}

fn parse_id(v: &Value) -> Option<ChipId> {
    hex::decode(v.as_str()?).ok()?.try_into().ok()
}

fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    rand::fill(&mut b);
    let frac = f64::from(u16::from_be_bytes(b)) / f64::from(u16::MAX);
    d.mul_f64(0.75 + frac * 0.5)
}
