//! POCI methods: chips, models, registration anchors.

use super::{
    snapshot::{next, with_snapshot, Page, Snapshot, MAX_SCAN},
    ApiState, RpcError,
};
use unet_api::{
    chips::{
        ChipList, ChipView, EvidenceKind, FirmwarePolicyView, LivenessView, MeasurementRuleView,
        ModelsView, PendingChallengeView, RegistrationNonceView, RewardSummaryView, RootView,
    },
    params::{ChipParams, ListChipsParams, OwnerParams},
};
use unet_state::registry::effective_status;
use unet_store::StoreContext;
use unet_types::{
    chip::{registration_nonce, Chip, ChipId, ChipList as OwnedChips, ChipStatus, Registry},
    keys::{chip_index_key, chip_key, owner_chips_key, revoked_cert_key},
    PublicKey,
};

type Result<T> = std::result::Result<T, RpcError>;

async fn chip_view<E: StoreContext>(
    snap: &Snapshot<E>,
    registry: &Registry,
    id: &ChipId,
    chip: &Chip,
) -> Result<ChipView> {
    let mut revoked = Vec::new();
    for fp in &chip.chain {
        if snap.get(&revoked_cert_key(fp)).await?.is_some() {
            revoked.push(*fp);
        }
    }
    let status = effective_status(chip, |fp| revoked.contains(fp));
    Ok(ChipView {
        chip_id: *id,
        owner: chip.owner.clone(),
        model: chip.model.clone(),
        compute_milli_tops: registry.model(&chip.model).map(|m| m.compute_milli_tops),
        kind: EvidenceKind::from_tag(chip.kind),
        serial: chip.serial.clone(),
        status,
        registered_height: chip.registered_height,
        device_key: chip.device_key.clone(),
        root: chip.root,
        index: chip.index,
        liveness: LivenessView {
            pending_challenge: chip.live.pending.map(|p| PendingChallengeView {
                height: p.height,
                beacon: p.beacon,
            }),
            last_challenge: chip.live.last_challenge,
            last_response: chip.live.last_response,
            online_since: (status == ChipStatus::Online).then_some(chip.live.online_since),
            misses_epoch: chip.live.misses.epoch,
            misses: chip.live.misses.count,
        },
        rewards: RewardSummaryView {
            last_epoch: chip.live.recent_rewards[0].epoch,
            last_amount: chip.live.recent_rewards[0].amount,
            total: chip.live.total_rewards,
        },
    })
}

pub(super) async fn get_chip<E: StoreContext>(
    state: &ApiState<E>,
    p: ChipParams,
) -> Result<ChipView> {
    let id = p.chip_id;
    with_snapshot(state, |snap| async move {
        let registry = snap.registry().await?;
        match snap.get_decoded::<Chip>(&chip_key(&id)).await? {
            Some(c) => chip_view(&snap, &registry, &id, &c).await,
            None => Err(RpcError::not_found(format!(
                "no registered chip {}",
                hex::encode(id)
            ))),
        }
    })
    .await
}

/// Filters of `unet_listChips`.
struct ChipFilter {
    owner: Option<PublicKey>,
    model: Option<String>,
    status: Option<ChipStatus>,
}

/// `unet_listChips {owner?, model?, status?, cursor?, limit?}`: registered chips in
/// registration order (or the owner's list order), filtered; paged (see [`super::snapshot`]).
/// `cursor` (formerly `start`) is a position in the chip index or in the owner's list.
pub(super) async fn list_chips<E: StoreContext>(
    state: &ApiState<E>,
    p: ListChipsParams,
) -> Result<ChipList> {
    let page = Page::of(&p.page)?;
    let filter = ChipFilter {
        owner: p.owner,
        model: p.model,
        status: p.status,
    };
    let filter = &filter;
    with_snapshot(state, |snap| async move {
        list_chips_at(&snap, filter, page).await
    })
    .await
}

async fn list_chips_at<E: StoreContext>(
    snap: &Snapshot<E>,
    filter: &ChipFilter,
    page: Page,
) -> Result<ChipList> {
    let registry = snap.registry().await?;
    let owned: Option<OwnedChips> = match &filter.owner {
        Some(o) => Some(
            snap.get_decoded(&owner_chips_key(o))
                .await?
                .unwrap_or_default(),
        ),
        None => None,
    };
    let end = match &owned {
        Some(list) => list.0.len() as u64,
        None => registry.chip_count,
    };
    let scan_end = end.min(page.cursor.saturating_add(MAX_SCAN));
    let mut pos = page.cursor;
    let mut chips = Vec::new();
    while pos < scan_end && (chips.len() as u64) < page.limit && !snap.spent() {
        let id = match &owned {
            Some(list) => Some(list.0[pos as usize]),
            None => snap.get_decoded::<ChipId>(&chip_index_key(pos)).await?,
        };
        pos += 1;
        let Some(id) = id else {
            continue;
        };
        let Some(chip) = snap.get_decoded::<Chip>(&chip_key(&id)).await? else {
            continue; // deregistered
        };
        if filter.model.as_ref().is_some_and(|m| *m != chip.model) {
            continue;
        }
        let view = chip_view(snap, &registry, &id, &chip).await?;
        if filter.status.is_some_and(|s| view.status != s) {
            continue;
        }
        chips.push(view);
    }
    Ok(ChipList {
        height: snap.height,
        chips,
        next: next(pos, end),
        total_registered: registry.chip_count,
    })
}

pub(super) async fn list_models<E: StoreContext>(state: &ApiState<E>) -> Result<ModelsView> {
    with_snapshot(state, |snap| {
        async move {
            let registry = snap.registry().await?;
            Ok(ModelsView {
                roots: registry
                    .roots
                    .iter()
                    .map(|r| RootView {
                        kind: EvidenceKind::from_tag(r.kind),
                        fingerprint: r.fingerprint(),
                        devnet_only: r.devnet_only,
                    })
                    .collect(),
                models: registry.models,
                allow_devnet_roots: registry.allow_devnet_roots,
                governance: registry.governance,
                governance_threshold: registry.threshold,
                governance_nonce: registry.gov_nonce,
                chips_registered: registry.chip_count,
                firmware_policies: registry
                    .firmware
                    .iter()
                    .map(|p| {
                        // The verifier's reading of the chain data (empty version = no minimum).
                        let p = unet_state::registry::verifier_policy(p);
                        FirmwarePolicyView {
                            architecture: p.architecture,
                            min_driver: p.min_driver,
                            min_vbios: p.min_vbios,
                            measurements: p
                                .measurements
                                .into_iter()
                                .map(|r| MeasurementRuleView {
                                    index: r.index,
                                    allowed: r.allowed.iter().map(::hex::encode).collect(),
                                })
                                .collect(),
                        }
                    })
                    .collect(),
            })
        }
    })
    .await
}

/// The anchor a new registration should use (the latest finalized block) and the nonce the
/// chip must sign for `owner`.
pub(super) async fn registration_nonce_for<E: StoreContext>(
    state: &ApiState<E>,
    p: OwnerParams,
) -> Result<RegistrationNonceView> {
    super::on_chain(state, move |chain| {
        Box::pin(async move {
            let anchor = chain.applied_digest();
            Ok(RegistrationNonceView {
                anchor_height: chain.applied_height(),
                anchor_hash: anchor,
                nonce: registration_nonce(chain.genesis.chain_id, &anchor, &p.owner),
                valid_for_blocks: chain.genesis.params.registration_window,
            })
        })
    })
    .await
}
