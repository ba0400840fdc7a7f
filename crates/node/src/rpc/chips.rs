//! POCI methods: chips, models, registration anchors.

use super::{
    code,
    json::hex32,
    snapshot::{next, page, with_snapshot, Page, Snapshot, MAX_SCAN},
    ApiState, RpcError,
};
use serde_json::{json, Value};
use unet_state::registry::effective_status;
use unet_store::StoreContext;
use unet_types::{
    chip::{kind, registration_nonce, Chip, ChipId, ChipList, Registry},
    hexser::{from_hex, to_hex},
    keys::{chip_index_key, chip_key, owner_chips_key, revoked_cert_key},
    PublicKey,
};

type Result<T> = std::result::Result<T, RpcError>;

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(code::INTERNAL, e.to_string())
}

pub(super) fn parse_chip_id(s: &str) -> Result<ChipId> {
    let bytes = hex::decode(s.trim().trim_start_matches("0x"))
        .map_err(|e| RpcError::params(format!("chip_id: {e}")))?;
    bytes
        .try_into()
        .map_err(|_| RpcError::params("chip_id must be 32 bytes"))
}

async fn chip_view<E: StoreContext>(
    snap: &Snapshot<E>,
    registry: &Registry,
    id: &ChipId,
    chip: &Chip,
) -> Result<Value> {
    let mut revoked = Vec::new();
    for fp in &chip.chain {
        if snap.get(&revoked_cert_key(fp)).await?.is_some() {
            revoked.push(*fp);
        }
    }
    let status = effective_status(chip, |fp| revoked.contains(fp));
    let rating = registry.model(&chip.model).map(|m| m.compute_milli_tops);
    Ok(json!({
        "chip_id": hex::encode(id),
        "owner": to_hex(&chip.owner),
        "model": chip.model,
        "compute_milli_tops": rating,
        "kind": kind::name(chip.kind),
        "serial": chip.serial,
        "status": status.as_str(),
        "registered_height": chip.registered_height,
        "device_key": hex::encode(&chip.device_key),
        "root": hex::encode(chip.root),
        "index": chip.index,
        "liveness": {
            "pending_challenge": chip.live.pending.map(|p| json!({"height": p.height, "beacon": hex::encode(p.beacon)})),
            "last_challenge": chip.live.last_challenge,
            "last_response": chip.live.last_response,
            "online_since": (status == unet_types::chip::ChipStatus::Online).then_some(chip.live.online_since),
            "misses_epoch": chip.live.misses.epoch,
            "misses": chip.live.misses.count,
        },
        "rewards": {
            "last_epoch": chip.live.recent_rewards[0].epoch,
            "last_amount": chip.live.recent_rewards[0].amount.to_string(),
            "total": chip.live.total_rewards.to_string(),
        },
    }))
}

pub(super) async fn get_chip<E: StoreContext>(
    state: &ApiState<E>,
    params: &Value,
) -> Result<Value> {
    let id = parse_chip_id(super::methods::str_param(params, "chip_id", 0)?)?;
    with_snapshot(state, |snap| async move {
        let registry = snap.registry().await?;
        match snap.get_decoded::<Chip>(&chip_key(&id)).await? {
            Some(c) => chip_view(&snap, &registry, &id, &c).await,
            None => Err(RpcError::new(
                code::NOT_FOUND,
                format!("no registered chip {}", hex::encode(id)),
            )),
        }
    })
    .await
}

/// Filters of `unet_listChips`.
struct ChipFilter {
    owner: Option<PublicKey>,
    model: Option<String>,
    status: Option<String>,
}

/// `unet_listChips {owner?, model?, status?, cursor?, limit?}`: registered chips in
/// registration order (or the owner's list order), filtered; paged (see [`super::snapshot`]).
/// `cursor` (formerly `start`) is a position in the chip index or in the owner's list.
pub(super) async fn list_chips<E: StoreContext>(
    state: &ApiState<E>,
    params: &Value,
) -> Result<Value> {
    let get = |name: &str| match params {
        Value::Object(m) => m.get(name).cloned(),
        _ => None,
    };
    let owner = match get("owner") {
        Some(Value::String(s)) => {
            Some(from_hex::<PublicKey>(&s).map_err(|e| RpcError::params(format!("owner: {e}")))?)
        }
        Some(Value::Null) | None => None,
        Some(_) => return Err(RpcError::params("owner must be a hex address")),
    };
    let model = match get("model") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(_) => return Err(RpcError::params("model must be a string")),
    };
    let status = match get("status") {
        Some(Value::String(s)) if ["online", "unresponsive", "revoked"].contains(&s.as_str()) => {
            Some(s)
        }
        Some(Value::Null) | None => None,
        Some(_) => {
            return Err(RpcError::params(
                "status must be online, unresponsive or revoked",
            ))
        }
    };
    let page = page(params, &["start"])?;
    let filter = ChipFilter {
        owner,
        model,
        status,
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
) -> Result<Value> {
    let registry = snap.registry().await?;
    let owned: Option<ChipList> = match &filter.owner {
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
        if filter.status.as_ref().is_some_and(|s| view["status"] != *s) {
            continue;
        }
        chips.push(view);
    }
    Ok(json!({
        "height": snap.height,
        "chips": chips,
        "next": next(pos, end),
        "total_registered": registry.chip_count,
    }))
}

pub(super) async fn list_models<E: StoreContext>(state: &ApiState<E>) -> Result<Value> {
    let chain = state.shared.chain().await;
    let registry = chain.registry().await.map_err(internal)?;
    Ok(json!({
        "models": registry.models,
        "roots": registry.roots.iter().map(|r| json!({
            "kind": kind::name(r.kind),
            "fingerprint": hex::encode(r.fingerprint()),
            "devnet_only": r.devnet_only,
        })).collect::<Vec<_>>(),
        "allow_devnet_roots": registry.allow_devnet_roots,
        "governance": registry.governance.iter().map(to_hex).collect::<Vec<_>>(),
        "governance_threshold": registry.threshold,
        "governance_nonce": registry.gov_nonce,
        "chips_registered": registry.chip_count,
    }))
}

/// The anchor a new registration should use (the latest finalized block) and the nonce the
/// chip must sign for `owner`.
pub(super) async fn registration_nonce_for<E: StoreContext>(
    state: &ApiState<E>,
    params: &Value,
) -> Result<Value> {
    let owner: PublicKey = from_hex(super::methods::str_param(params, "owner", 0)?)
        .map_err(|e| RpcError::params(format!("owner: {e}")))?;
    let chain = state.shared.chain().await;
    let height = chain.applied_height();
    let anchor = chain.applied_digest();
    let nonce = registration_nonce(chain.genesis.chain_id, &anchor, &owner);
    Ok(json!({
        "anchor_height": height,
        "anchor_hash": hex32(&anchor),
        "nonce": hex::encode(nonce),
        "valid_for_blocks": chain.genesis.params.registration_window,
    }))
}
