//! Answering challenges: every open challenge of our chips not answered yet, signed by the
//! chips in parallel, in transactions of up to 128 answers.

use super::{chain::MinerChain, view::Challenge, Miner};
use crate::{
    backend::{BackendError, ChipBackend},
    state::InflightKind,
};
use anyhow::Result;
use std::{collections::BTreeMap, sync::Arc};
use tracing::{debug, warn};
use unet_types::{
    chip::ChipId,
    liveness::{response_digest, LivenessResponse, MAX_RESPONSES_PER_TX},
    Payload,
};

/// Blocks before its deadline from which an answer counts as urgent.
const URGENT_BLOCKS: u64 = 2;

impl Miner {
    /// Answers every open challenge not answered yet, in batches of up to 128.
    pub(super) async fn answer_pending(
        &mut self,
        chain: &dyn MinerChain,
        height: u64,
    ) -> Result<()> {
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
        let info = self.chain()?.clone();
        let jobs: Vec<(ChipId, u64, [u8; 32])> = todo
            .iter()
            .map(|(id, c)| {
                (
                    *id,
                    c.height,
                    response_digest(info.chain_id, c.height, &c.beacon, id),
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
        let urgent = |r: &LivenessResponse| {
            deadline.get(&r.chip_id).copied().unwrap_or(0) <= height + URGENT_BLOCKS
        };
        let (near, far): (Vec<LivenessResponse>, Vec<LivenessResponse>) =
            responses.into_iter().partition(urgent);
        let count = near.len() + far.len();
        let mut txs = Vec::new();
        let mut taken = self.state.inflight_nonces();
        for batch in near
            .chunks(MAX_RESPONSES_PER_TX)
            .chain(far.chunks(MAX_RESPONSES_PER_TX))
        {
            let nonce = self.next_nonce(&taken);
            taken.insert(nonce);
            let stx = self.sign_tx(
                &info,
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
            let rec = self.record(
                &stx,
                nonce,
                height,
                InflightKind::Liveness { responses: answers },
            );
            txs.push((stx, rec));
        }
        debug!(answers = count, txs = txs.len(), "answering");
        self.send_recorded(chain, txs).await
    }
}

/// Runs `f` over `jobs` on blocking threads, in parallel chunks; results in job order.
pub(super) async fn sign_all<J, T, F>(
    backend: Arc<dyn ChipBackend>,
    jobs: Vec<J>,
    f: F,
) -> Vec<Result<T, BackendError>>
where
    J: Send + 'static,
    T: Send + 'static,
    F: Fn(&dyn ChipBackend, J) -> Result<T, BackendError> + Send + Sync + Copy + 'static,
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
            Err(e) => out.push(Err(BackendError::Setup(format!(
                "signing thread failed: {e}"
            )))),
        }
    }
    out
}
