//! The compute rental market.
//!
//! - `unet_listOffers {model?, max_price?, min_free?, cursor?, limit?}`: offers by id, filtered
//!   by model name, price per chip per block and free capacity (chips Online and not leased);
//!   paged (see [`super::snapshot`]): `next` is the `cursor` of the following page (null at
//!   the end); `from` is the former name of `cursor`.
//! - `unet_getLease {id}`: a lease, with what it owes the provider now.
//! - `unet_listLeases {renter | provider, cursor?, limit?}`: an account's leases, paged.

use super::{
    snapshot::{next, with_snapshot, Page, Snapshot, MAX_SCAN},
    ApiState, RpcError,
};
use unet_api::{
    market::{LeaseAt, LeaseList, LeaseState, LeaseView, OfferList, OfferView, TermsView},
    params::{LeaseParams, ListLeasesParams, ListOffersParams},
};
use unet_store::StoreContext;
use unet_types::{
    chip::{Chip, ChipStatus},
    keys::chip_key,
    market::{
        keys::{
            chip_market_key, lease_key, market_key, offer_key, provider_leases_key,
            renter_leases_key,
        },
        ChipMarket, IdList, Lease, LeaseStatus, MarketInfo, Offer,
    },
};

type Result<T> = std::result::Result<T, RpcError>;

fn lease_view(l: &Lease, height: u64) -> LeaseView {
    let (status, closed_at, close_reason) = match l.status {
        LeaseStatus::Open => (LeaseState::Open, None, None),
        LeaseStatus::Closed { height, reason } => {
            (LeaseState::Closed, Some(height), Some(reason.into()))
        }
    };
    LeaseView {
        id: l.id,
        offer_id: l.offer,
        renter: l.renter.clone(),
        provider: l.provider.clone(),
        chips: l.chips.clone(),
        price_per_block: l.price_per_block,
        endpoint: l.endpoint.clone(),
        start: l.start,
        min_end: l.min_end,
        end: l.end,
        paid_until: l.paid_until,
        next_settlement: l.is_open().then_some(l.next_settle),
        deposit: l.deposit,
        total_paid: l.total_paid,
        owed_now: l.owed_at(height + 1),
        status,
        closed_at,
        close_reason,
    }
}

/// Filters of `unet_listOffers`.
struct OfferFilter {
    model: Option<String>,
    max_price: Option<u128>,
    min_free: u64,
}

pub(super) async fn list_offers<E: StoreContext>(
    state: &ApiState<E>,
    p: ListOffersParams,
) -> Result<OfferList> {
    let page = Page::of(&p.page)?;
    let filter = OfferFilter {
        model: p.model,
        max_price: p.max_price,
        min_free: p.min_free.unwrap_or(0),
    };
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
) -> Result<OfferList> {
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
                free.push(*c);
            }
        }
        if (free.len() as u64) < filter.min_free {
            continue;
        }
        out.push(OfferView {
            id: offer.id,
            provider: offer.provider.clone(),
            created: offer.created,
            updated: offer.updated,
            free_chips: free,
            terms: TermsView::from(t),
        });
    }
    Ok(OfferList {
        height: snap.height,
        offers: out,
        next: next(id, info.next_offer),
    })
}

pub(super) async fn get_lease<E: StoreContext>(
    state: &ApiState<E>,
    p: LeaseParams,
) -> Result<LeaseAt> {
    with_snapshot(state, |snap| async move {
        let lease: Lease = snap
            .get_decoded(&lease_key(p.id))
            .await?
            .ok_or_else(|| RpcError::not_found(format!("no lease {}", p.id)))?;
        let height = snap.height;
        Ok(LeaseAt {
            lease: lease_view(&lease, height),
            height,
        })
    })
    .await
}

pub(super) async fn list_leases<E: StoreContext>(
    state: &ApiState<E>,
    p: ListLeasesParams,
) -> Result<LeaseList> {
    let (key, who) = match (p.renter, p.provider) {
        (Some(a), None) => (renter_leases_key(&a), a),
        (None, Some(a)) => (provider_leases_key(&a), a),
        _ => {
            return Err(RpcError::params(
                "give exactly one of {\"renter\": ADDRESS} or {\"provider\": ADDRESS}",
            ))
        }
    };
    let page = Page::of(&p.page)?;
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
                leases.push(lease_view(&l, snap.height));
            }
        }
        Ok(LeaseList {
            account: who.clone(),
            height: snap.height,
            leases,
            next: next(pos, end),
        })
    })
    .await
}
