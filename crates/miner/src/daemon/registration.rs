//! Registering chips not on chain: evidence bound to a nonce derived here for our own owner
//! (see [`crate::register`]), at most the chain's per-block limit in flight.

use super::{answer::sign_all, chain::MinerChain, Miner};
use crate::state::InflightKind;
use anyhow::Result;
use std::collections::HashSet;
use tracing::{debug, warn};
use unet_types::{chip::ChipId, Payload};

impl Miner {
    /// Sends registrations for queued chips (at most the chain's per-block limit in flight).
    pub(super) async fn register_some(
        &mut self,
        chain: &dyn MinerChain,
        height: u64,
    ) -> Result<()> {
        if self.to_register.is_empty() {
            if let Some(bar) = self.register_bar.take() {
                bar.finish_and_clear();
            }
            return Ok(());
        }
        let info = self.chain()?.clone();
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
        let room = info
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
            self.register_bar = Some(self.bar(true, total, "registering"));
        }
        // Only the anchor comes from the node; the nonce is derived here for our own owner,
        // so a lying node cannot make the chips sign a registration to someone else.
        let anchor = chain
            .registration_anchor(&self.owner)
            .await?
            .for_owner(info.chain_id, &self.owner);
        crate::register::warn_if_steered(&chain.name(), &anchor);
        let (nonce, anchor_height) = (anchor.nonce, anchor.height);
        let evidence = sign_all(self.backend.clone(), chips, move |b, id| {
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
                &info,
                n,
                Payload::RegisterChip {
                    anchor_height,
                    evidence,
                },
            );
            let rec = self.record(
                &stx,
                n,
                height,
                InflightKind::Register {
                    chip_id: hex::encode(id),
                },
            );
            txs.push((stx, rec));
        }
        debug!(registrations = txs.len(), "registering");
        self.send_recorded(chain, txs).await
    }
}
