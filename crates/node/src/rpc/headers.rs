//! What light clients (`unet light`) read: `unet_getFinalizedHeader`, a finalized block's
//! header with a finalization certificate that covers it, read from the node's history; and
//! `unet_getChipProof`, a chip's registry entry with its merkle proof.

use super::{ApiState, RpcError};
use commonware_codec::Encode;
use unet_api::{
    chain::{CertifiedHeaderView, MAX_HEADER_CHAIN},
    chips::ChipProofView,
    params::{ChipParams, HeightParams},
};
use unet_store::StoreContext;

type Result<T> = std::result::Result<T, RpcError>;

/// The header at `p.height` and the headers after it up to the first height whose
/// finalization certificate the node holds (at most [`MAX_HEADER_CHAIN`] headers), with that
/// certificate.
pub async fn get_finalized_header<E: StoreContext>(
    state: &ApiState<E>,
    p: HeightParams,
) -> Result<CertifiedHeaderView> {
    let height = p.height;
    if height == 0 {
        return Err(RpcError::not_found(
            "the genesis block has no certificate: it is fixed by the genesis file",
        ));
    }
    let finalized = state.shared.status().finalized_height;
    if height > finalized {
        return Err(RpcError::not_found(format!(
            "height {height} is not finalized on this node (finalized: {finalized})"
        )));
    }
    let Some(history) = state.shared.history.get() else {
        return Err(RpcError::not_found("this node keeps no finalized blocks"));
    };
    let mut headers = Vec::new();
    let mut first = None;
    for h in height..height.saturating_add(MAX_HEADER_CHAIN as u64) {
        let block = match state.shared.block_at(h).await {
            Some(b) => b,
            None => match history.block(h).await {
                Some(b) => b,
                None => break,
            },
        };
        let header = block.header();
        first.get_or_insert((header.digest(), header.state_root));
        headers.push(header.encode().to_vec());
        if let Some(f) = history.finalization(h).await {
            let (block, state_root) = first.expect("set above");
            return Ok(CertifiedHeaderView {
                height,
                block,
                state_root,
                certified_height: h,
                headers,
                finalization: f.encode().to_vec(),
            });
        }
    }
    Err(RpcError::not_found(format!(
        "no finalization certificate held for height {height} or the {} heights after it",
        MAX_HEADER_CHAIN - 1
    )))
}

/// The finalized registry entry of `p.chip_id` (or its absence) with its proof.
pub async fn get_chip_proof<E: StoreContext>(
    state: &ApiState<E>,
    p: ChipParams,
) -> Result<ChipProofView> {
    let key = unet_types::keys::chip_key(&p.chip_id);
    super::on_chain(state, move |chain| {
        Box::pin(async move {
            let proof = chain.prove(&key).await.map_err(RpcError::internal)?;
            Ok(ChipProofView {
                chip_id: p.chip_id,
                key,
                height: chain.applied_height(),
                block: chain.applied_digest(),
                state_root: chain.root(),
                value: proof.claimed_value().map(|v| v.to_vec()),
                proof: proof.to_bytes(),
            })
        })
    })
    .await
}
