//! Rewards, online compute and committees.
//!
//! - `unet_getRewards {owner, epoch?}`: what an owner earned in an epoch (default: the last
//!   settled one) plus the epoch's settlement summary.
//! - `unet_getRewards {chip_id}`: a chip's last paid reward, lifetime total and liveness.
//! - `unet_getEpochRewards {epoch}`: an epoch's final settlement (emission, paid, treasury).
//! - `unet_networkCompute`: online chips and rated compute, in total and per model, and the
//!   current epoch's emission.
//! - `unet_getCommittee {epoch?}`: the validators of an epoch with their weight.
//! - `unet_listValidators {cursor?, limit?}`: registered validators with their online compute,
//!   paged: `{"validators": [..], "next": CURSOR | null}`.

use super::{
    code,
    snapshot::{next, page, with_snapshot},
    ApiState, RpcError,
};
use serde_json::{json, Value};
use unet_store::StoreContext;
use unet_types::{
    chip::Chip,
    epoch::{
        committee_key, epoch_of, validator_key, validator_list_key, AddressList, Committee,
        ValidatorInfo,
    },
    hexser::{from_hex, to_hex},
    keys::chip_key,
    liveness::{network_compute_key, owner_compute_key, NetworkCompute},
    rewards::{
        epoch_emission, epoch_rewards_key, epoch_state_key, epochs_per_era, owner_rewards_key,
        EpochRewards, EpochState,
    },
    PublicKey,
};

type Result<T> = std::result::Result<T, RpcError>;

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(code::INTERNAL, e.to_string())
}

fn field<'a>(params: &'a Value, name: &str) -> Option<&'a Value> {
    match params {
        Value::Object(m) => m.get(name).filter(|v| !v.is_null()),
        _ => None,
    }
}

pub(super) fn epoch_param(params: &Value) -> Result<Option<u64>> {
    match field(params, "epoch") {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| RpcError::params("epoch must be a non-negative integer")),
        Some(_) => Err(RpcError::params("epoch must be a number")),
    }
}

pub(super) async fn get_rewards<E: StoreContext>(
    state: &ApiState<E>,
    params: &Value,
) -> Result<Value> {
    let chain = state.shared.chain().await;
    let l = chain.genesis.params.epoch_length;
    let current = epoch_of(chain.applied_height(), l);
    if let Some(Value::String(id)) = field(params, "chip_id") {
        let bytes = hex::decode(id.trim_start_matches("0x"))
            .map_err(|e| RpcError::params(format!("chip_id: {e}")))?;
        let id: [u8; 32] = bytes
            .try_into()
            .map_err(|_| RpcError::params("chip_id must be 32 bytes"))?;
        let chip: Chip = chain
            .get_decoded(&chip_key(&id))
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                RpcError::new(
                    code::NOT_FOUND,
                    format!("no registered chip {}", hex::encode(id)),
                )
            })?;
        let recent: Vec<Value> = chip
            .live
            .recent_rewards
            .iter()
            .filter(|r| r.amount > 0)
            .map(|r| json!({"epoch": r.epoch, "amount": r.amount.to_string()}))
            .collect();
        let mut out = json!({
            "chip_id": hex::encode(id),
            "owner": to_hex(&chip.owner),
            "current_epoch": current,
            "recent_rewards": recent,
            "total_rewards": chip.live.total_rewards.to_string(),
            "settled_through_epoch": chip.live.settled.checked_sub(1),
        });
        if let Some(epoch) = epoch_param(params)? {
            out["epoch"] = json!(epoch);
            out["amount"] = match chip.live.reward_of(epoch) {
                Some(a) => json!(a.to_string()),
                // Settled and not among the recent ones: nothing, or older than the record keeps.
                None if epoch + unet_types::liveness::RECENT_REWARDS as u64 >= current => {
                    json!("0")
                }
                None => Value::Null,
            };
        }
        return Ok(out);
    }
    let Some(Value::String(owner)) = field(params, "owner") else {
        return Err(RpcError::params(
            "give {\"owner\": ADDRESS, \"epoch\"?: N} or {\"chip_id\": ID}",
        ));
    };
    let owner: PublicKey = from_hex(owner).map_err(|e| RpcError::params(format!("owner: {e}")))?;
    let epoch = match epoch_param(params)? {
        Some(e) => e,
        None => current.saturating_sub(1),
    };
    let amount: u128 = chain
        .get_decoded(&owner_rewards_key(&owner, epoch))
        .await
        .map_err(internal)?
        .unwrap_or(0);
    let settled: Option<EpochRewards> = chain
        .get_decoded(&epoch_rewards_key(epoch))
        .await
        .map_err(internal)?;
    Ok(json!({
        "owner": to_hex(&owner),
        "epoch": epoch,
        "current_epoch": current,
        "amount": amount.to_string(),
        "epoch_settled": settled.is_some(),
        "settlement": settled,
    }))
}

/// `unet_getEpochRewards {epoch}`: an epoch's final settlement, or `settled: false`.
pub(super) async fn get_epoch_rewards<E: StoreContext>(
    state: &ApiState<E>,
    params: &Value,
) -> Result<Value> {
    let epoch = match params {
        Value::Array(a) => match a.first() {
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        },
        _ => epoch_param(params)?,
    }
    .ok_or_else(|| RpcError::params("give {\"epoch\": N} or [N]"))?;
    let chain = state.shared.chain().await;
    let current = epoch_of(chain.applied_height(), chain.genesis.params.epoch_length);
    let settled: Option<EpochRewards> = chain
        .get_decoded(&epoch_rewards_key(epoch))
        .await
        .map_err(internal)?;
    Ok(json!({
        "epoch": epoch,
        "current_epoch": current,
        "settled": settled.is_some(),
        "settlement": settled,
    }))
}

pub(super) async fn network_compute<E: StoreContext>(state: &ApiState<E>) -> Result<Value> {
    let chain = state.shared.chain().await;
    let params = &chain.genesis.params;
    let height = chain.applied_height();
    let epoch = epoch_of(height, params.epoch_length);
    let net: NetworkCompute = chain
        .get_decoded(&network_compute_key())
        .await
        .map_err(internal)?
        .unwrap_or_default();
    let es: EpochState = chain
        .get_decoded(&epoch_state_key())
        .await
        .map_err(internal)?
        .unwrap_or_default();
    let per_era = epochs_per_era(params.halving_blocks, params.epoch_length);
    Ok(json!({
        "height": height,
        "epoch": epoch,
        "epoch_length": params.epoch_length,
        "online_chips": net.online_chips,
        "online_compute_milli_tops": net.online_compute.to_string(),
        "models": net.models,
        "epoch_emission": epoch_emission(epoch, per_era).to_string(),
        "epoch_weight_so_far": es.weight.to_string(),
        "settling": es.settling,
    }))
}

pub(super) async fn get_committee<E: StoreContext>(
    state: &ApiState<E>,
    params: &Value,
) -> Result<Value> {
    let chain = state.shared.chain().await;
    let current = epoch_of(chain.applied_height(), chain.genesis.params.epoch_length);
    let epoch = epoch_param(params)?.unwrap_or(current);
    let committee: Committee = chain
        .get_decoded(&committee_key(epoch))
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            RpcError::new(
                code::NOT_FOUND,
                format!("no committee chosen for epoch {epoch} yet (current epoch {current})"),
            )
        })?;
    Ok(json!({
        "epoch": epoch,
        "current_epoch": current,
        "total_weight": committee.total_weight().to_string(),
        "members": committee.members,
    }))
}

/// `unet_listValidators {cursor?, limit?}`: registered validators in registration order with
/// their online compute, paged (see [`super::snapshot`]).
pub(super) async fn list_validators<E: StoreContext>(
    state: &ApiState<E>,
    params: &Value,
) -> Result<Value> {
    let page = page(params, &[])?;
    with_snapshot(state, |snap| async move {
        let AddressList(accounts) = snap
            .get_decoded(&validator_list_key())
            .await?
            .unwrap_or_default();
        let end = accounts.len() as u64;
        let mut pos = page.cursor;
        let mut out = Vec::new();
        while pos < end && (out.len() as u64) < page.limit && !snap.spent() {
            let a = &accounts[pos as usize];
            pos += 1;
            let Some(info): Option<ValidatorInfo> = snap.get_decoded(&validator_key(a)).await?
            else {
                continue;
            };
            let compute: u128 = snap.get_decoded(&owner_compute_key(a)).await?.unwrap_or(0);
            out.push(json!({
                "account": to_hex(&info.account),
                "node_key": to_hex(&info.node_key),
                "p2p_address": info.p2p_address,
                "registered_height": info.registered_height,
                "online_compute_milli_tops": compute.to_string(),
            }));
        }
        Ok(json!({"height": snap.height, "validators": out, "next": next(pos, end)}))
    })
    .await
}
