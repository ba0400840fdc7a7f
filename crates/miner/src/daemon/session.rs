//! One connection to a node: connect, catch up, then follow blocks and events.

use super::{
    chain::{MinerChain, Notification, Notifications},
    ChainInfo, Fatal, Miner,
};
use crate::state::Inflight;
use anyhow::{bail, Result};
use futures::{FutureExt as _, StreamExt as _};
use std::{collections::HashSet, time::Instant};
use tracing::{info, warn};

/// A finalized block: height and the hashes of its transactions.
pub(super) type BlockTxs = (u64, Vec<String>);

impl Miner {
    /// One connection: subscribe, catch up, follow. Returns only with the error that ended it.
    pub(super) async fn session(&mut self, chain: &dyn MinerChain) -> Result<()> {
        let finalized = self.connect(chain).await?;
        let mut events = chain.subscribe().await?;
        info!(node = %chain.name(), finalized, "connected");
        self.catch_up(chain).await?;

        let mut reconcile = tokio::time::interval(self.cfg.reconcile_every);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reconcile.tick().await;
        loop {
            tokio::select! {
                msg = tokio::time::timeout(self.cfg.idle_timeout, events.next()) => {
                    let Ok(first) = msg else {
                        bail!("no notification for {:?}", self.cfg.idle_timeout);
                    };
                    self.on_events(chain, first, &mut events).await?;
                }
                _ = reconcile.tick() => {
                    self.reconcile(chain, false).await?;
                }
            }
        }
    }

    /// `first` and every notification already received after it, then the per-block work
    /// once for all of them: a miner that fell behind catches up in one step instead of
    /// answering block by block. `None` (the stream ended) ends the session.
    pub(super) async fn on_events(
        &mut self,
        chain: &dyn MinerChain,
        first: Option<Result<Notification>>,
        events: &mut Notifications,
    ) -> Result<()> {
        let mut blocks = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                None => bail!("socket closed"),
                Some(Err(e)) => return Err(e),
                Some(Ok(n)) => self.on_notification(n, &mut blocks),
            }
            next = events.next().now_or_never();
        }
        if blocks.is_empty() {
            return Ok(());
        }
        self.on_blocks(chain, blocks).await
    }

    /// Reads the chain's status: checks the genesis against the state file and keeps the
    /// parameters. Returns the finalized height.
    pub(super) async fn connect(&mut self, chain: &dyn MinerChain) -> Result<u64> {
        let status = chain.status().await?;
        match &self.state.genesis_hash {
            Some(g) if *g != status.genesis_hash => {
                return Err(Fatal(format!(
                    "{} belongs to the chain with genesis {g}, but {} serves genesis {}; \
                     move the state file away to start over on this chain",
                    self.cfg.home.state_path().display(),
                    chain.name(),
                    status.genesis_hash
                ))
                .into())
            }
            Some(_) => {}
            None => self.state.genesis_hash = Some(status.genesis_hash.clone()),
        }
        self.chain = Some(ChainInfo {
            chain_id: status.chain_id,
            response_window: status.response_window,
            max_registrations: u64::from(status.max_registrations_per_block).max(1),
            fee: self.cfg.fee.unwrap_or(status.min_fee),
        });
        Ok(status.finalized_height)
    }

    /// One notification; block notifications are collected into `blocks`.
    pub(super) fn on_notification(&mut self, n: Notification, blocks: &mut Vec<BlockTxs>) {
        match n {
            Notification::Challenges(events) => self.on_challenges(&events),
            Notification::ChipStatus(events) => self.on_chip_status(&events),
            Notification::Rewards(events) => self.on_rewards(&events),
            Notification::Block { height, txs } => blocks.push((height, txs)),
        }
    }

    /// Re-reads everything after a (re)connection.
    pub(super) async fn catch_up(&mut self, chain: &dyn MinerChain) -> Result<()> {
        self.refresh_nonce(chain).await?;
        self.check_balance(chain).await;
        self.reconcile(chain, true).await?;
        let finalized = chain.status().await?.finalized_height;
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
        self.resolve(chain, all, finalized.max(self.cfg.resend_after_blocks))
            .await?;
        self.answer_pending(chain, finalized).await?;
        self.register_some(chain, finalized).await?;
        if finalized > self.state.last_height {
            self.state.last_height = finalized;
        }
        self.save()
    }

    /// Finalized blocks (usually one): the heart of the loop.
    pub(super) async fn on_blocks(
        &mut self,
        chain: &dyn MinerChain,
        blocks: Vec<BlockTxs>,
    ) -> Result<()> {
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
            self.refresh_nonce(chain).await?;
            self.reconcile(chain, false).await?;
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
        self.resolve(chain, check, height).await?;
        self.expire(height);
        self.answer_pending(chain, height).await?;
        self.register_some(chain, height).await?;
        self.state.last_height = height;
        self.metrics.finalized_height.set(height as i64);
        self.save()?;
        if self.last_status_line.elapsed() >= std::time::Duration::from_secs(10) {
            self.last_status_line = Instant::now();
            self.status_line(height);
        }
        Ok(())
    }
}
