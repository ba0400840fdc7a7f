//! The compute rental market.
//!
//! - `unet_listOffers {model?, max_price?, min_free?, cursor?, limit?}`: offers by id, filtered
//!   by model name, price per chip per block and free capacity (chips Online and not leased);
//!   paged (see [`super::snapshot`]): `next` is the `cursor` of the following page (null at
//!   the end); `from` is the former name of `cursor`.
//! - `unet_getLease {id}`: a lease, with what it owes the provider now.
//! - `unet_listLeases {renter | provider, cursor?, limit?}`: an account's leases, paged.

use super::{
    code,
    snapshot::{next, page, with_snapshot, Page, Snapshot, MAX_SCAN},
    ApiState, RpcError,
};
use serde_json::{json, Value};
use unet_store::StoreContext;
use unet_types::{
    chip::{Chip, ChipStatus},
    hexser::{from_hex, to_hex},
    keys::chip_key,
    market::{
        keys::{
            chip_market_key, lease_key, market_key, offer_key, provider_leases_key,
            renter_leases_key,
        },
        ChipMarket, IdList, Lease, LeaseStatus, MarketInfo, Offer, OfferTerms,
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

pub(super) fn u64_field(params: &Value, name: &str) -> Result<Option<u64>> {
    match field(params, name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| RpcError::params(format!("{name} must be a non-negative integer"))),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| RpcError::params(format!("{name} must be a non-negative integer"))),
        Some(_) => Err(RpcError::params(format!("{name} must be a number"))),
    }
}

pub(super) fn amount_field(params: &Value, name: &str) -> Result<Option<u128>> {
    match field(params, name) {
        None => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| RpcError::params(format!("{name} must be base units (decimal string)"))),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|v| Some(u128::from(v)))
            .ok_or_else(|| RpcError::params(format!("{name} must be a non-negative integer"))),
        Some(_) => Err(RpcError::params(format!("{name} must be a decimal string"))),
    }
}

/// JSON view of offer terms (also used for transaction views).
pub fn terms_json(t: &OfferTerms) -> Value {
    json!({
        "chips": t.chips.iter().map(hex::encode).collect::<Vec<_>>(),
        "price_per_block": t.price_per_block.to_string(),
        "min_blocks": t.min_blocks,
        "max_blocks": t.max_blocks,
        "endpoint": t.endpoint,
        "model": t.capabilities.model,
        "memory_mib": t.capabilities.memory_mib,
        "tags": t.capabilities.tags,
    })
}

fn lease_json(l: &Lease, height: u64) -> Value {
    let (status, closed_at, reason) = match l.status {
        LeaseStatus::Open => ("open", None, None),
        LeaseStatus::Closed { height, reason } => ("closed", Some(height), Some(reason.as_str())),
    };
    json!({
        "id": l.id,
        "offer_id": l.offer,
        "renter": to_hex(&l.renter),
        "provider": to_hex(&l.provider),
        "chips": l.chips.iter().map(hex::encode).collect::<Vec<_>>(),
        "price_per_block": l.price_per_block.to_string(),
        "endpoint": l.endpoint,
        "start": l.start,
        "min_end": l.min_end,
        "end": l.end,
        "paid_until": l.paid_until,
        "next_settlement": if l.is_open() { Some(l.next_settle) } else { None },
        "deposit": l.deposit.to_string(),
        "total_paid": l.total_paid.to_string(),
        "owed_now": l.owed_at(height + 1).to_string(),
        "status": status,
        "closed_at": closed_at,
        "close_reason": reason,
    })
}

/// Filters of `unet_listOffers`.
struct OfferFilter {
    model: Option<String>,
    max_price: Option<u128>,
    min_free: u64,
}

pub(super) async fn list_offers<E: StoreContext>(
    state: &ApiState<E>,
    params: &Value,
) -> Result<Value> {
    let model = match field(params, "model") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(RpcError::params("model must be a string")),
    };
    let filter = OfferFilter {
        model,
        max_price: amount_field(params, "max_price")?,
        min_free: u64_field(params, "min_free")?.unwrap_or(0),
    };
    let page = page(params, &["from"])?;
    let filter = &filter;
    with_snapshot(state, |snap| async move {
        list_offers_at(&snap, filter, page).await
    })
    .await
}

async fn list_offers_at<E: StoreContext>(
    snap: &Snapshot<E>,
    filter: &OfferFilter,
    page: Page,
) -> Result<Value> {
    let info: MarketInfo = snap.get_decoded(&market_key()).await?.unwrap_or_default();
    let mut out = Vec::new();
    let mut id = page.cursor;
    let stop = info.next_offer.min(page.cursor.saturating_add(MAX_SCAN));
    while id < stop && (out.len() as u64) < page.limit && !snap.spent() {
        let this = id;
        id += 1;
        let Some(offer): Option<Offer> = snap.get_decoded(&offer_key(this)).await? else {
            continue;
        };
        let t = &offer.terms;
        if filter
            .model
            .as_ref()
            .is_some_and(|m| *m != t.capabilities.model)
            || filter.max_price.is_some_and(|p| t.price_per_block > p)
        {
            continue;
        }
        let mut free = Vec::new();
        for c in &t.chips {
            let role: ChipMarket = snap
                .get_decoded(&chip_market_key(c))
                .await?
                .unwrap_or_default();
            let chip: Option<Chip> = snap.get_decoded(&chip_key(c)).await?;
            if role.lease.is_none() && chip.is_some_and(|c| c.status == ChipStatus::Online) {
                free.push(hex::encode(c));
            }
        }
        if (free.len() as u64) < filter.min_free {
            continue;
        }
        let mut v = terms_json(t);
        v["id"] = json!(offer.id);
        v["provider"] = json!(to_hex(&offer.provider));
        v["created"] = json!(offer.created);
        v["updated"] = json!(offer.updated);
        v["free_chips"] = json!(free);
        out.push(v);
    }
    Ok(json!({
        "height": snap.height,
        "offers": out,
        "next": next(id, info.next_offer),
    }))
}

pub(super) async fn get_lease<E: StoreContext>(
    state: &ApiState<E>,
    params: &Value,
) -> Result<Value> {
    let id = u64_field(params, "id")?.ok_or_else(|| RpcError::params("missing parameter id"))?;
    let chain = state.shared.chain().await;
    let lease: Lease = chain
        .get_decoded(&lease_key(id))
        .await
        .map_err(internal)?
        .ok_or_else(|| RpcError::new(code::NOT_FOUND, format!("no lease {id}")))?;
    let mut v = lease_json(&lease, chain.applied_height());
    v["height"] = json!(chain.applied_height());
    Ok(v)
}

pub(super) async fn list_leases<E: StoreContext>(
    state: &ApiState<E>,
    params: &Value,
) -> Result<Value> {
    let (key, who) = match (field(params, "renter"), field(params, "provider")) {
        (Some(Value::String(r)), None) => {
            let a: PublicKey = from_hex(r).map_err(|e| RpcError::params(format!("renter: {e}")))?;
            (renter_leases_key(&a), a)
        }
        (None, Some(Value::String(p))) => {
            let a: PublicKey =
                from_hex(p).map_err(|e| RpcError::params(format!("provider: {e}")))?;
            (provider_leases_key(&a), a)
        }
        _ => {
            return Err(RpcError::params(
                "give exactly one of {\"renter\": ADDRESS} or {\"provider\": ADDRESS}",
            ))
        }
    };
    let page = page(params, &[])?;
    let who = &who;
    with_snapshot(state, |snap| async move {
        let IdList(ids) = snap.get_decoded(&key).await?.unwrap_or_default();
        let end = ids.len() as u64;
        let mut pos = page.cursor;
        let mut leases = Vec::new();
        while pos < end && (leases.len() as u64) < page.limit && !snap.spent() {
            let id = ids[pos as usize];
            pos += 1;
            if let Some(l) = snap.get_decoded::<Lease>(&lease_key(id)).await? {
                leases.push(lease_json(&l, snap.height));
            }
        }
        Ok(json!({
            "account": to_hex(who),
            "height": snap.height,
            "leases": leases,
            "next": next(pos, end),
        }))
    })
    .await
}
