//! The compute rental market.
//!
//! - `unet_listOffers {model?, max_price?, min_free?, from?, limit?}`: offers by id, filtered
//!   by model name, price per chip per block and free capacity (chips Online and not leased);
//!   paged: `next` is the `from` of the following page (null at the end).
//! - `unet_getLease {id}`: a lease, with what it owes the provider now.
//! - `unet_listLeases {renter | provider}`: an account's open leases.

use super::{code, ApiState, RpcError};
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

/// Most offers returned by one `unet_listOffers` call.
pub const MAX_PAGE: u64 = 200;
/// Most offer ids one call looks at (filters may skip many).
const MAX_SCAN: u64 = 10_000;

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

pub(super) async fn list_offers<E: StoreContext>(
    state: &ApiState<E>,
    params: &Value,
) -> Result<Value> {
    let model = match field(params, "model") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(RpcError::params("model must be a string")),
    };
    let max_price = amount_field(params, "max_price")?;
    let min_free = u64_field(params, "min_free")?.unwrap_or(0);
    let from = u64_field(params, "from")?.unwrap_or(0);
    let limit = u64_field(params, "limit")?.unwrap_or(50).clamp(1, MAX_PAGE);
    let chain = state.shared.chain().await;
    let info: MarketInfo = chain
        .get_decoded(&market_key())
        .await
        .map_err(internal)?
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut id = from;
    let stop = info.next_offer.min(from.saturating_add(MAX_SCAN));
    while id < stop && (out.len() as u64) < limit {
        let this = id;
        id += 1;
        let Some(offer): Option<Offer> = chain
            .get_decoded(&offer_key(this))
            .await
            .map_err(internal)?
        else {
            continue;
        };
        let t = &offer.terms;
        if model.as_ref().is_some_and(|m| *m != t.capabilities.model)
            || max_price.is_some_and(|p| t.price_per_block > p)
        {
            continue;
        }
        let mut free = Vec::new();
        for c in &t.chips {
            let role: ChipMarket = chain
                .get_decoded(&chip_market_key(c))
                .await
                .map_err(internal)?
                .unwrap_or_default();
            let chip: Option<Chip> = chain.get_decoded(&chip_key(c)).await.map_err(internal)?;
            if role.lease.is_none() && chip.is_some_and(|c| c.status == ChipStatus::Online) {
                free.push(hex::encode(c));
            }
        }
        if (free.len() as u64) < min_free {
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
        "height": chain.applied_height(),
        "offers": out,
        "next": if id < info.next_offer { Some(id) } else { None },
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
    let chain = state.shared.chain().await;
    let height = chain.applied_height();
    let IdList(ids) = chain
        .get_decoded(&key)
        .await
        .map_err(internal)?
        .unwrap_or_default();
    let mut leases = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(l) = chain
            .get_decoded::<Lease>(&lease_key(id))
            .await
            .map_err(internal)?
        {
            leases.push(lease_json(&l, height));
        }
    }
    Ok(json!({"account": to_hex(&who), "height": height, "leases": leases}))
}
