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
    snapshot::{next, with_snapshot, Page},
    ApiState, RpcError,
};
use unet_api::{
    params::{CommitteeParams, EpochParams, GetRewardsParams, ListValidatorsParams},
    rewards::{
        ChipEpochReward, ChipRewards, CommitteeView, EpochAmount, EpochRewardsView,
        NetworkComputeView, OwnerRewards, Rewards, ValidatorList, ValidatorView,
    },
};
use unet_store::StoreContext;
use unet_types::{
    chip::Chip,
    epoch::{
        committee_key, epoch_of, validator_key, validator_list_key, AddressList, Committee,
        ValidatorInfo,
    },
    keys::chip_key,
    liveness::{network_compute_key, owner_compute_key, NetworkCompute},
    rewards::{
        epoch_emission, epoch_rewards_key, epoch_state_key, epochs_per_era, owner_rewards_key,
        EpochRewards, EpochState,
    },
};

type Result<T> = std::result::Result<T, RpcError>;

pub(super) async fn get_rewards<E: StoreContext>(
    state: &ApiState<E>,
    p: GetRewardsParams,
) -> Result<Rewards> {
    let genesis = state.shared.genesis.clone();
    with_snapshot(state, |snap| {
        let (p, genesis) = (p.clone(), genesis.clone());
        async move {
            let l = genesis.params.epoch_length;
            let current = epoch_of(snap.height, l);
            if let Some(id) = p.chip_id {
                let chip: Chip = snap.get_decoded(&chip_key(&id)).await?.ok_or_else(|| {
                    RpcError::not_found(format!("no registered chip {}", hex::encode(id)))
                })?;
                let asked = p.epoch.map(|epoch| ChipEpochReward {
                    epoch,
                    amount: match chip.live.reward_of(epoch) {
                        Some(a) => Some(a),
                        // Settled and not among the recent ones: nothing, or older than the record keeps.
                        None if epoch + unet_types::liveness::RECENT_REWARDS as u64 >= current => {
                            Some(0)
                        }
                        None => None,
                    },
                });
                return Ok(Rewards::Chip(ChipRewards {
                    chip_id: id,
                    owner: chip.owner.clone(),
                    current_epoch: current,
                    recent_rewards: chip
                        .live
                        .recent_rewards
                        .iter()
                        .filter(|r| r.amount > 0)
                        .map(|r| EpochAmount {
                            epoch: r.epoch,
                            amount: r.amount,
                        })
                        .collect(),
                    total_rewards: chip.live.total_rewards,
                    settled_through_epoch: chip.live.settled.checked_sub(1),
                    asked,
                }));
            }
            let Some(owner) = p.owner else {
                return Err(RpcError::params(
                    "give {\"owner\": ADDRESS, \"epoch\"?: N} or {\"chip_id\": ID}",
                ));
            };
            let epoch = p.epoch.unwrap_or(current.saturating_sub(1));
            let amount: u128 = snap
                .get_decoded(&owner_rewards_key(&owner, epoch))
                .await?
                .unwrap_or(0);
            let settled: Option<EpochRewards> = snap.get_decoded(&epoch_rewards_key(epoch)).await?;
            Ok(Rewards::Owner(OwnerRewards {
                owner,
                epoch,
                current_epoch: current,
                amount,
                epoch_settled: settled.is_some(),
                settlement: settled,
            }))
        }
    })
    .await
}

/// `unet_getEpochRewards {epoch}`: an epoch's final settlement, or `settled: false`.
pub(super) async fn get_epoch_rewards<E: StoreContext>(
    state: &ApiState<E>,
    p: EpochParams,
) -> Result<EpochRewardsView> {
    let genesis = state.shared.genesis.clone();
    with_snapshot(state, |snap| {
        let (p, genesis) = (p, genesis.clone());
        async move {
            let current = epoch_of(snap.height, genesis.params.epoch_length);
            let settled: Option<EpochRewards> =
                snap.get_decoded(&epoch_rewards_key(p.epoch)).await?;
            Ok(EpochRewardsView {
                epoch: p.epoch,
                current_epoch: current,
                settled: settled.is_some(),
                settlement: settled,
            })
        }
    })
    .await
}

pub(super) async fn network_compute<E: StoreContext>(
    state: &ApiState<E>,
) -> Result<NetworkComputeView> {
    let genesis = state.shared.genesis.clone();
    with_snapshot(state, |snap| {
        let genesis = genesis.clone();
        async move {
            let params = &genesis.params;
            let height = snap.height;
            let epoch = epoch_of(height, params.epoch_length);
            let net: NetworkCompute = snap
                .get_decoded(&network_compute_key())
                .await?
                .unwrap_or_default();
            let es: EpochState = snap
                .get_decoded(&epoch_state_key())
                .await?
                .unwrap_or_default();
            let per_era = epochs_per_era(params.halving_blocks, params.epoch_length);
            Ok(NetworkComputeView {
                height,
                epoch,
                epoch_length: params.epoch_length,
                online_chips: net.online_chips,
                online_compute_milli_tops: net.online_compute,
                models: net.models,
                epoch_emission: epoch_emission(epoch, per_era),
                epoch_weight_so_far: es.weight,
                settling: es.settling,
            })
        }
    })
    .await
}

pub(super) async fn get_committee<E: StoreContext>(
    state: &ApiState<E>,
    p: CommitteeParams,
) -> Result<CommitteeView> {
    let genesis = state.shared.genesis.clone();
    with_snapshot(state, |snap| {
        let (p, genesis) = (p, genesis.clone());
        async move {
            let current = epoch_of(snap.height, genesis.params.epoch_length);
            let epoch = p.epoch.unwrap_or(current);
            let committee: Committee =
                snap.get_decoded(&committee_key(epoch))
                    .await?
                    .ok_or_else(|| {
                        RpcError::not_found(format!(
                            "no committee chosen for epoch {epoch} yet (current epoch {current})"
                        ))
                    })?;
            Ok(CommitteeView {
                epoch,
                current_epoch: current,
                total_weight: committee.total_weight(),
                members: committee.members,
            })
        }
    })
    .await
}

/// `unet_listValidators {cursor?, limit?}`: registered validators in registration order with
/// their online compute, paged (see [`super::snapshot`]).
pub(super) async fn list_validators<E: StoreContext>(
    state: &ApiState<E>,
    p: ListValidatorsParams,
) -> Result<ValidatorList> {
    let page = Page::of(&p)?;
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
            out.push(ValidatorView {
                account: info.account,
                node_key: info.node_key,
                p2p_address: info.p2p_address,
                registered_height: info.registered_height,
                online_compute_milli_tops: compute,
            });
        }
        Ok(ValidatorList {
            height: snap.height,
            validators: out,
            next: next(pos, end),
        })
    })
    .await
}
