//! `unet miner status`: each chip as the chain and the miner's state see it.

use crate::{backend::ChipInfo, state::MinerState};
use serde::Serialize;
use serde_json::{json, Value};
use unet_client::{Client, ClientError};
use unet_types::Address;

/// One row of the status table.
#[derive(Clone, Debug, Serialize)]
pub struct ChipRow {
    /// The chip id, hex.
    pub chip_id: String,
    /// The model the chip claims.
    pub model: String,
    /// The chip's serial number.
    pub serial: String,
    /// Rated compute (milli-TOPS) from the chain's model table; `None` if not registered.
    pub compute_milli_tops: Option<u64>,
    /// `online`, `unresponsive`, `revoked`, `unregistered` or `foreign` (another owner).
    pub status: String,
    /// Owner address (hex) on chain; None if not registered.
    pub owner: Option<String>,
    /// Height of the last challenge (from the chain, else from the miner's state).
    pub last_challenge: Option<u64>,
    /// Height of the chip's last accepted answer, from the chain.
    pub last_response: Option<u64>,
    /// Height of the chip's open challenge, if any.
    pub pending_challenge: Option<u64>,
    /// Reward paid for the current epoch's predecessor, i.e. the last settled epoch.
    pub reward_epoch: Option<u64>,
    /// Base units.
    pub reward_amount: String,
    /// Base units, to date.
    pub rewards_total: String,
}

/// Status of every chip of a miner.
pub async fn chip_rows(
    client: &Client,
    owner: &Address,
    chips: &[ChipInfo],
    state: &MinerState,
) -> Result<Vec<ChipRow>, ClientError> {
    let owner_hex = unet_types::hexser::to_hex(owner);
    let mut rows = Vec::with_capacity(chips.len());
    for chunk in chips.chunks(200) {
        let calls: Vec<(&str, Value)> = chunk
            .iter()
            .map(|c| ("unet_getChip", json!([hex::encode(c.chip_id)])))
            .collect();
        let replies = client.batch(&calls).await?;
        for (c, reply) in chunk.iter().zip(replies) {
            let idh = hex::encode(c.chip_id);
            let mut row = ChipRow {
                chip_id: idh.clone(),
                model: c.model.clone(),
                serial: c.serial.clone(),
                compute_milli_tops: None,
                status: "unregistered".into(),
                owner: None,
                last_challenge: state.last_challenge.get(&idh).copied(),
                last_response: None,
                pending_challenge: None,
                reward_epoch: None,
                reward_amount: "0".into(),
                rewards_total: "0".into(),
            };
            match reply {
                Ok(v) => {
                    let owner = v["owner"].as_str().unwrap_or_default().to_string();
                    row.model = v["model"].as_str().unwrap_or(&c.model).to_string();
                    row.compute_milli_tops = v["compute_milli_tops"].as_u64();
                    row.status = if owner == owner_hex {
                        v["status"].as_str().unwrap_or("unknown").to_string()
                    } else {
                        "foreign".into()
                    };
                    row.owner = Some(owner);
                    let live = &v["liveness"];
                    row.last_challenge = live["last_challenge"]
                        .as_u64()
                        .filter(|h| *h > 0)
                        .or(row.last_challenge);
                    row.last_response = live["last_response"].as_u64().filter(|h| *h > 0);
                    row.pending_challenge = live["pending_challenge"]["height"].as_u64();
                    let r = &v["rewards"];
                    row.reward_epoch = r["last_epoch"].as_u64();
                    row.reward_amount = r["last_amount"].as_str().unwrap_or("0").to_string();
                    row.rewards_total = r["total"].as_str().unwrap_or("0").to_string();
                }
                Err(ClientError::Rpc { code: -32004, .. }) => {}
                Err(e) => return Err(e),
            }
            rows.push(row);
        }
    }
    Ok(rows)
}
