//! The transaction lifecycle: nonces, write-ahead sending, receipts, re-sends, and outcomes
//! judged from the chain when a receipt is lost.
//!
//! The rules (see [`crate::state`]): a transaction is recorded in the state file before it
//! is sent; a recorded transaction is only ever re-sent byte for byte; its answers are
//! forgotten (may be answered again) only when the chain says it failed or can never land.

use super::{
    chain::{ChipReading, MinerChain, Receipt, SendOutcome, TxLookup},
    view::OnChain,
    ChainInfo, Miner,
};
use crate::state::{Inflight, InflightKind};
use anyhow::{anyhow, bail, Result};
use commonware_codec::DecodeExt;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{debug, info, warn};
use unet_types::{chip::ChipStatus, Payload, SignedTx, Transaction};

impl Miner {
    /// Reads the owner's finalized nonce (it only ever moves forward here).
    pub(super) async fn refresh_nonce(&mut self, chain: &dyn MinerChain) -> Result<()> {
        let account = chain.account(&self.owner).await?;
        self.account_nonce = self.account_nonce.max(account.nonce);
        Ok(())
    }

    /// Warns when the owner can pay for fewer than 100 transactions.
    pub(super) async fn check_balance(&self, chain: &dyn MinerChain) {
        let Ok(info) = self.chain() else { return };
        if let Ok(a) = chain.account(&self.owner).await {
            if a.balance < info.fee.saturating_mul(100) {
                warn!(
                    owner = %self.owner_hex,
                    balance = %unet_types::amount::format_unc(a.balance),
                    "the owner account can pay fewer than 100 transactions; fund it or chips \
                     will miss challenges"
                );
            }
        }
    }

    /// The lowest nonce not held by a transaction in flight.
    pub(super) fn next_nonce(&self, taken: &BTreeSet<u64>) -> u64 {
        let mut n = self.account_nonce;
        while taken.contains(&n) {
            n += 1;
        }
        n
    }

    /// Signs a transaction of the owner.
    pub(super) fn sign_tx(&self, info: &ChainInfo, nonce: u64, payload: Payload) -> SignedTx {
        Transaction {
            chain_id: info.chain_id,
            sender: self.owner.clone(),
            nonce,
            fee: info.fee,
            payload,
        }
        .sign(&self.key)
    }

    /// Records `stx` as in flight (not yet saved) and returns the record.
    pub(super) fn record(
        &mut self,
        stx: &SignedTx,
        nonce: u64,
        height: u64,
        what: InflightKind,
    ) -> Inflight {
        use commonware_codec::Encode as _;
        let rec = Inflight {
            hash: hex::encode(stx.hash()),
            nonce,
            raw: hex::encode(stx.encode()),
            sent_at: height,
            last_sent: height,
            what,
        };
        self.state.inflight.push(rec.clone());
        rec
    }

    /// Saves the state (write-ahead), then sends; handles refusals.
    pub(super) async fn send_recorded(
        &mut self,
        chain: &dyn MinerChain,
        txs: Vec<(SignedTx, Inflight)>,
    ) -> Result<()> {
        if txs.is_empty() {
            return Ok(());
        }
        self.save()?;
        let signed: Vec<SignedTx> = txs.iter().map(|(s, _)| s.clone()).collect();
        // An error: unknown whether the node took them; they stay in flight and are re-sent.
        let outcomes = chain.send(&signed).await?;
        let mut refreshed = false;
        for ((_, rec), outcome) in txs.iter().zip(outcomes) {
            let (check, error) = match outcome {
                SendOutcome::Accepted => continue,
                SendOutcome::Refused { check, .. } if check == "duplicate" => continue,
                SendOutcome::Refused { check, message } => (check, message),
                SendOutcome::Error(e) => ("?".to_string(), e),
            };
            warn!(tx = %rec.hash, nonce = rec.nonce, %check, %error, "transaction refused");
            self.drop_tx(rec);
            if check == "nonce_too_low" && !refreshed {
                refreshed = true;
                self.refresh_nonce(chain).await?;
            }
        }
        self.save()
    }

    /// Settles transactions in flight: final (receipt), still pending, or lost (re-sent, or
    /// judged from the chain when their nonce was consumed).
    pub(super) async fn resolve(
        &mut self,
        chain: &dyn MinerChain,
        txs: Vec<Inflight>,
        height: u64,
    ) -> Result<()> {
        if txs.is_empty() {
            return Ok(());
        }
        let hashes: Vec<String> = txs.iter().map(|t| t.hash.clone()).collect();
        let lookups = chain.transactions(&hashes).await?;
        let mut unknown = Vec::new();
        for (tx, lookup) in txs.into_iter().zip(lookups) {
            match lookup {
                TxLookup::Finalized(receipt) => self.finish_tx(chain, &tx, &receipt).await?,
                TxLookup::Pending => self.touch(&tx.hash, height),
                TxLookup::Unknown => {
                    if tx.last_sent + self.cfg.resend_after_blocks <= height {
                        unknown.push(tx);
                    }
                }
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        self.refresh_nonce(chain).await?;
        for tx in unknown {
            if tx.nonce < self.account_nonce {
                // Its nonce was consumed, but this node does not know the transaction (it
                // restarted, or the block came while we were away): the chain state of its
                // chips tells whether it applied.
                self.settle_unknown(chain, &tx).await?;
            } else {
                self.resend(chain, &tx, height).await?;
            }
        }
        Ok(())
    }

    fn touch(&mut self, hash: &str, height: u64) {
        if let Some(t) = self.state.inflight.iter_mut().find(|t| t.hash == hash) {
            t.last_sent = height;
        }
    }

    /// Counts a final liveness transaction and its answers that applied.
    fn count_answered(&mut self, landed: u64) {
        self.state.totals.answered += landed;
        self.state.totals.liveness_txs += 1;
        self.metrics.challenges_answered.inc_by(landed);
        self.metrics.liveness_txs.inc();
    }

    fn count_failed(&mut self) {
        self.state.totals.failed_txs += 1;
        self.metrics.failed_txs.inc();
    }

    /// A transaction of ours is final with `receipt`.
    async fn finish_tx(
        &mut self,
        chain: &dyn MinerChain,
        tx: &Inflight,
        receipt: &Receipt,
    ) -> Result<()> {
        self.state.inflight.retain(|t| t.hash != tx.hash);
        self.account_nonce = self.account_nonce.max(tx.nonce + 1);
        match &tx.what {
            InflightKind::Liveness { responses } if receipt.ok => {
                // Answers apply one by one: the receipt lists those that did not. One
                // already answered (someone relayed the same proof first) is done; any
                // other is re-read and may be answered again.
                let skipped: BTreeMap<usize, &str> = receipt
                    .skipped
                    .iter()
                    .map(|(i, code)| (*i, code.as_str()))
                    .collect();
                let mut retry = Vec::new();
                for (i, (chip, h)) in responses.iter().enumerate() {
                    match skipped.get(&i) {
                        None | Some(&"liveness_already_answered") => self.close_challenge(chip, *h),
                        Some(code) => {
                            warn!(tx = %tx.hash, chip = %chip, code, "answer skipped; re-reading the chip");
                            self.state.forget_answer(chip, *h);
                            retry.push(chip.as_str());
                        }
                    }
                }
                let landed = (responses.len() - retry.len()) as u64;
                self.count_answered(landed);
                debug!(tx = %tx.hash, answers = landed, skipped = skipped.len(), "answers final");
                if !retry.is_empty() {
                    self.reread(chain, retry).await?;
                }
            }
            InflightKind::Liveness { responses } => {
                self.count_failed();
                warn!(tx = %tx.hash, code = %receipt.code, reason = %receipt.reason, "liveness transaction failed; re-reading its chips");
                for (chip, h) in responses {
                    self.state.forget_answer(chip, *h);
                }
                self.reread(chain, responses.iter().map(|(c, _)| c.as_str()))
                    .await?;
            }
            InflightKind::Register { chip_id } => {
                let Some(id) = super::view::parse_hex_id(chip_id) else {
                    return Ok(());
                };
                if receipt.ok {
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
                            status: ChipStatus::Online,
                        },
                    );
                    self.update_gauges();
                    return Ok(());
                }
                self.count_failed();
                let code = receipt.code.as_str();
                let permanent = code.starts_with("evidence_")
                    || matches!(code, "unknown_model" | "chip_revoked" | "revoked");
                if permanent {
                    let n = self.register_failures.entry(id).or_default();
                    *n += 1;
                    if *n >= 3 {
                        self.to_register.remove(&id);
                        tracing::error!(chip = %chip_id, %code, reason = %receipt.reason, "chip cannot be registered; giving up on it");
                        return Ok(());
                    }
                }
                warn!(chip = %chip_id, %code, reason = %receipt.reason, "registration failed; will retry");
                self.reread(chain, [chip_id.as_str()]).await?;
            }
        }
        Ok(())
    }

    /// A transaction whose nonce was used but whose receipt we cannot get.
    async fn settle_unknown(&mut self, chain: &dyn MinerChain, tx: &Inflight) -> Result<()> {
        match &tx.what {
            InflightKind::Liveness { responses } => {
                // Chip state is read after the account nonce, so it reflects the block that
                // consumed the nonce: a chip still pending on the same challenge means the
                // answer did not apply.
                let ids: Vec<&str> = responses.iter().map(|(c, _)| c.as_str()).collect();
                let parsed: Vec<_> = ids
                    .iter()
                    .map(|c| super::view::parse_hex_id(c).unwrap_or_default())
                    .collect();
                let readings = chain.chips(&parsed).await?;
                // A chip the node cannot read now says nothing about the answer: settle later
                // rather than count an answer that may not have applied.
                if let Some(e) = readings.iter().find_map(|r| match r {
                    ChipReading::Error(e) => Some(e),
                    _ => None,
                }) {
                    bail!("reading the chips of transaction {}: {e}", tx.hash);
                }
                self.state.inflight.retain(|t| t.hash != tx.hash);
                // Answers apply one by one: count those whose challenge is no longer pending.
                let mut applied = 0u64;
                for ((chip, h), reading) in responses.iter().zip(readings) {
                    let still = matches!(&reading, ChipReading::Found(c)
                        if c.pending_challenge.map(|p| p.height) == Some(*h));
                    if still {
                        self.state.forget_answer(chip, *h);
                    } else {
                        applied += 1;
                        self.close_challenge(chip, *h);
                    }
                }
                if applied > 0 {
                    self.count_answered(applied);
                }
                if applied < responses.len() as u64 {
                    warn!(tx = %tx.hash, missing = responses.len() as u64 - applied, "some answers did not apply; answering again");
                }
                self.reread(chain, ids).await?;
            }
            InflightKind::Register { chip_id } => {
                self.state.inflight.retain(|t| t.hash != tx.hash);
                self.reread(chain, [chip_id.as_str()]).await?;
            }
        }
        Ok(())
    }

    /// Sends a recorded transaction again, byte for byte.
    async fn resend(&mut self, chain: &dyn MinerChain, tx: &Inflight, height: u64) -> Result<()> {
        let raw = hex::decode(&tx.raw).map_err(|e| anyhow!("state: bad raw tx: {e}"))?;
        let stx = SignedTx::decode(commonware_codec::Copying(raw.as_slice()))
            .map_err(|e| anyhow!("state: bad raw tx: {e}"))?;
        debug!(tx = %tx.hash, nonce = tx.nonce, "re-sending");
        let outcome = chain
            .send(std::slice::from_ref(&stx))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("the node answered nothing for a transaction"))?;
        match outcome {
            SendOutcome::Accepted => self.touch(&tx.hash, height),
            SendOutcome::Refused { check, .. } if check == "duplicate" => {
                self.touch(&tx.hash, height)
            }
            SendOutcome::Refused { check, .. } if check == "nonce_too_low" => {
                self.refresh_nonce(chain).await?;
                self.settle_unknown(chain, tx).await?;
            }
            SendOutcome::Refused { check, message } => {
                warn!(tx = %tx.hash, %check, error = %message, "node refuses a transaction in flight; dropping it");
                self.drop_tx(tx);
            }
            SendOutcome::Error(e) => bail!("re-sending {}: {e}", tx.hash),
        }
        Ok(())
    }

    /// Forgets a transaction that can never land; its answers may be sent again.
    pub(super) fn drop_tx(&mut self, tx: &Inflight) {
        self.state.inflight.retain(|t| t.hash != tx.hash);
        if let InflightKind::Liveness { responses } = &tx.what {
            for (chip, h) in responses {
                self.state.forget_answer(chip, *h);
            }
        }
    }
}
