//! The compute rental market in the state transition: offers, leases, escrow and settlement.
//!
//! The rules (what a settlement pays, when a lease closes) are in `unet-market`; this module
//! reads and writes the entries and moves the amounts. Escrow changes are counted in
//! `BlockTally::escrow_in` / `escrow_out` and folded into `Supply.escrowed` at the end of the
//! block, so `genesis + minted - burned == sum(balances) + escrowed` holds after every block.
//!
//! Scheduled settlement: a lease opened at height `h` is in the due list of
//! `next_settlement(h, end, epoch_length)`; at the start of a block, every lease of that
//! block's due list is settled and moved to the next list (or closed). A lease is therefore
//! settled at least once per epoch, and a block only reads the leases due in it. Transactions
//! and chip status changes settle a lease as well, without moving it in the schedule (its due
//! height still comes within the period, and the deposit checked there covered it).

use crate::{
    events::Event, readset::ReadSet, registry::is_revoked, tally::BlockTally, working::Working,
    BlockEnv, BlockError,
};
use std::collections::BTreeSet;
use unet_types::{
    chip::{Chip, ChipId, ChipStatus},
    keys::chip_key,
    market::{
        keys::{
            chip_market_key, lease_due_key, lease_key, market_key, offer_key, provider_leases_key,
            renter_leases_key,
        },
        lease::{next_settlement, required_deposit},
        ChipMarket, CloseReason, IdList, Lease, LeaseStatus, MarketError, MarketInfo, Offer,
        OfferTerms, Settlement, MAX_OPEN_LEASES,
    },
    Address, Amount, Digest, Payload,
};

type Res<T> = Result<Result<T, MarketError>, BlockError>;

fn hex(id: &[u8]) -> String {
    ::hex::encode(id)
}

fn period(tally: &BlockTally) -> u64 {
    tally.epoch_length.max(1)
}

// ---------------------------------------------------------------- reads

/// Market reads: the counters, this block's due list and its leases, the market role of
/// every chip the other domains may take offline or move ([`ReadSet::affected`]), and what
/// each market transaction reads. Values read here name further keys on the next round.
pub(crate) fn reads(rs: &mut ReadSet<'_>, env: &BlockEnv<'_>, txs: &[unet_types::SignedTx]) {
    let h = env.height;
    let g = env.params.epoch_length.max(1);
    let info: MarketInfo = rs.read(market_key()).unwrap_or_default();
    let mut leases: BTreeSet<u64> = BTreeSet::new();
    // Chips whose record is read (ownership and status checks).
    let mut records: BTreeSet<ChipId> = BTreeSet::new();
    let mut offers: BTreeSet<u64> = BTreeSet::new();

    if let Some(IdList(ids)) = rs.read(lease_due_key(h)) {
        leases.extend(ids);
    }

    let (mut creates, mut opens) = (0u64, 0u64);
    let mut providers: Vec<(Address, u64)> = Vec::new();
    for stx in txs {
        let sender = &stx.tx.sender;
        match &stx.tx.payload {
            Payload::CreateOffer { terms } => {
                creates += 1;
                records.extend(terms.chips.iter().copied());
                providers.push((sender.clone(), terms.max_blocks));
            }
            Payload::UpdateOffer { offer_id, terms } => {
                offers.insert(*offer_id);
                records.extend(terms.chips.iter().copied());
                providers.push((sender.clone(), terms.max_blocks));
            }
            Payload::WithdrawOffer { offer_id } => {
                offers.insert(*offer_id);
            }
            Payload::OpenLease {
                offer_id, chips, ..
            } => {
                opens += 1;
                offers.insert(*offer_id);
                records.extend(chips.iter().copied());
                rs.touch(renter_leases_key(sender));
            }
            Payload::TopUp { lease_id, .. } | Payload::CloseLease { lease_id } => {
                leases.insert(*lease_id);
            }
            _ => {}
        }
    }
    for i in 0..creates {
        rs.touch(offer_key(info.next_offer + i));
    }
    for i in 0..opens {
        rs.touch(lease_key(info.next_lease + i));
    }
    let first_due = |rs: &mut ReadSet<'_>, max_blocks: u64| {
        rs.touch(lease_due_key(next_settlement(
            h,
            h.saturating_add(max_blocks),
            g,
        )));
    };
    if opens > 0 {
        // An offer created or updated earlier in this block may be the one leased.
        for (provider, max_blocks) in &providers {
            rs.account(provider);
            rs.touch(provider_leases_key(provider));
            first_due(rs, *max_blocks);
        }
    }
    // The market role of every affected chip (a status change or removal may close its lease).
    for id in rs.affected() {
        let key = rs.chip_market_key(&id);
        if let Some(role) = rs.read::<ChipMarket>(key) {
            leases.extend(role.lease);
            offers.extend(role.offer);
        }
    }
    for id in &offers {
        if let Some(offer) = rs.read::<Offer>(offer_key(*id)) {
            for c in &offer.terms.chips {
                rs.touch(chip_market_key(c));
            }
            if opens > 0 {
                rs.account(&offer.provider);
                rs.touch(provider_leases_key(&offer.provider));
                first_due(rs, offer.terms.max_blocks);
            }
        }
    }
    for id in &records {
        rs.touch(chip_market_key(id));
        if let Some(chip) = rs.read::<Chip>(chip_key(id)) {
            for fp in &chip.chain {
                rs.cert(fp);
            }
        }
    }
    for id in &leases {
        if let Some(lease) = rs.read::<Lease>(lease_key(*id)) {
            rs.account(&lease.renter);
            rs.account(&lease.provider);
            rs.touch(renter_leases_key(&lease.renter));
            rs.touch(provider_leases_key(&lease.provider));
            rs.touch(lease_due_key(next_settlement(h, lease.end, g)));
            for c in &lease.chips {
                rs.touch(chip_market_key(c));
            }
        }
    }
}

// ---------------------------------------------------------------- helpers

fn info(w: &Working<'_>) -> Result<MarketInfo, BlockError> {
    Ok(w.get(&market_key())?.unwrap_or_default())
}

fn role(w: &Working<'_>, chip: &ChipId) -> Result<ChipMarket, BlockError> {
    Ok(w.get(&chip_market_key(chip))?.unwrap_or_default())
}

fn set_role(w: &mut Working<'_>, chip: &ChipId, role: ChipMarket) {
    if role.is_empty() {
        w.delete(chip_market_key(chip));
    } else {
        w.put(chip_market_key(chip), &role);
    }
}

fn credit(w: &mut Working<'_>, to: &Address, amount: Amount) -> Result<(), BlockError> {
    if amount == 0 {
        return Ok(());
    }
    let mut a = w.account(to)?;
    a.balance += amount;
    w.set_account(to, a);
    Ok(())
}

fn list_add(w: &mut Working<'_>, key: Digest, id: u64) -> Result<(), BlockError> {
    let IdList(mut ids) = w.get(&key)?.unwrap_or_default();
    if ids.len() >= IdList::MAX {
        return Err(BlockError::Corrupt("market id list full".into()));
    }
    ids.push(id);
    w.put(key, &IdList(ids));
    Ok(())
}

fn list_remove(w: &mut Working<'_>, key: Digest, id: u64) -> Result<(), BlockError> {
    let IdList(mut ids) = w.get(&key)?.unwrap_or_default();
    ids.retain(|x| *x != id);
    if ids.is_empty() {
        w.delete(key);
    } else {
        w.put(key, &IdList(ids));
    }
    Ok(())
}

fn list_len(w: &Working<'_>, key: &Digest) -> Result<usize, BlockError> {
    Ok(w.get::<IdList>(key)?.map_or(0, |l| l.0.len()))
}

/// Moves a settlement out of escrow: `paid` to the provider, `refunded` to the renter.
fn pay_out(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    lease: &Lease,
    s: Settlement,
) -> Result<(), BlockError> {
    credit(w, &lease.provider, s.paid)?;
    credit(w, &lease.renter, s.refunded)?;
    tally.escrow_out += s.paid + s.refunded;
    Ok(())
}

/// Bookkeeping of a lease that has just closed: pays out, frees its chips, drops it from the
/// account lists and the open count, stores it and emits `lease_closed`.
fn finish_close(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    lease: &Lease,
    s: Settlement,
) -> Result<(), BlockError> {
    pay_out(w, tally, lease, s)?;
    for c in &lease.chips {
        let mut r = role(w, c)?;
        if r.lease == Some(lease.id) {
            r.lease = None;
            set_role(w, c, r);
        }
    }
    list_remove(w, renter_leases_key(&lease.renter), lease.id)?;
    list_remove(w, provider_leases_key(&lease.provider), lease.id)?;
    let mut i = info(w)?;
    i.open_leases = i.open_leases.saturating_sub(1);
    w.put(market_key(), &i);
    w.put(lease_key(lease.id), lease);
    if let LeaseStatus::Closed { reason, .. } = lease.status {
        tally.events.push(Event::LeaseClosed {
            lease_id: lease.id,
            reason: reason.as_str().into(),
            total_paid: lease.total_paid,
            paid: s.paid,
            refunded: s.refunded,
        });
    }
    Ok(())
}

fn close_lease(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    lease: &mut Lease,
    reason: CloseReason,
) -> Result<(), BlockError> {
    let s = lease.close(tally.height, reason);
    finish_close(w, tally, lease, s)
}

/// Whether a chip is usable for the market: registered, Online, no revoked certificate.
fn check_chip(w: &Working<'_>, id: &ChipId, owner: &Address) -> Res<()> {
    let Some(chip): Option<Chip> = w.get(&chip_key(id))? else {
        return Ok(Err(MarketError::UnknownChip(hex(id))));
    };
    if chip.owner != *owner {
        return Ok(Err(MarketError::NotOwner(hex(id))));
    }
    if chip.status != ChipStatus::Online || is_revoked(w, &chip)? {
        let status = if chip.status == ChipStatus::Online {
            ChipStatus::Revoked
        } else {
            chip.status
        };
        return Ok(Err(MarketError::ChipOffline {
            chip: hex(id),
            status: status.as_str().into(),
        }));
    }
    Ok(Ok(()))
}

// ---------------------------------------------------------------- per block

/// Start of the block: settles every lease due at this height, closing those that reached
/// their end or whose deposit cannot cover the next period.
pub(crate) fn settle_due(w: &mut Working<'_>, tally: &mut BlockTally) -> Result<(), BlockError> {
    let h = tally.height;
    let key = lease_due_key(h);
    let Some(IdList(ids)) = w.get(&key)? else {
        return Ok(());
    };
    w.delete(key);
    for id in ids {
        let Some(mut lease): Option<Lease> = w.get(&lease_key(id))? else {
            continue;
        };
        if !lease.is_open() || lease.next_settle != h {
            continue; // closed (or settled elsewhere) since it was scheduled
        }
        let (s, next) = lease.scheduled(h, period(tally));
        match next {
            Some(n) => {
                pay_out(w, tally, &lease, s)?;
                list_add(w, lease_due_key(n), id)?;
                w.put(lease_key(id), &lease);
            }
            None => finish_close(w, tally, &lease, s)?,
        }
    }
    Ok(())
}

/// A chip left Online (routed by `exec` from a liveness or registry status change): its open lease closes, paying the
/// provider for the blocks served and refunding the renter the rest.
pub(crate) fn chip_down(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    chip_id: &ChipId,
    to: ChipStatus,
) -> Result<(), BlockError> {
    let r = role(w, chip_id)?;
    let Some(id) = r.lease else {
        return Ok(());
    };
    let Some(mut lease): Option<Lease> = w.get(&lease_key(id))? else {
        return Ok(());
    };
    if !lease.is_open() {
        return Ok(());
    }
    let reason = if to == ChipStatus::Revoked {
        CloseReason::ChipRevoked
    } else {
        CloseReason::ChipUnresponsive
    };
    close_lease(w, tally, &mut lease, reason)
}

/// A chip was deregistered or changed owner: its lease closes (served blocks paid, the rest
/// refunded) and it leaves its offer.
pub(crate) fn chip_removed(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    chip_id: &ChipId,
) -> Result<(), BlockError> {
    let r = role(w, chip_id)?;
    if let Some(id) = r.lease {
        if let Some(mut lease) = w.get::<Lease>(&lease_key(id))? {
            if lease.is_open() {
                close_lease(w, tally, &mut lease, CloseReason::ChipRemoved)?;
            }
        }
    }
    if let Some(offer_id) = r.offer {
        if let Some(mut offer) = w.get::<Offer>(&offer_key(offer_id))? {
            offer.terms.chips.retain(|c| c != chip_id);
            if offer.terms.chips.is_empty() {
                w.delete(offer_key(offer_id));
                let mut i = info(w)?;
                i.open_offers = i.open_offers.saturating_sub(1);
                w.put(market_key(), &i);
            } else {
                w.put(offer_key(offer_id), &offer);
            }
        }
    }
    w.delete(chip_market_key(chip_id));
    Ok(())
}

// ---------------------------------------------------------------- transactions

/// Runs a market payload for `sender` (fee and nonce already charged).
pub(crate) fn apply(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    sender: &Address,
    payload: &Payload,
) -> Res<()> {
    match payload {
        Payload::CreateOffer { terms } => create_offer(w, tally, sender, terms),
        Payload::UpdateOffer { offer_id, terms } => {
            update_offer(w, tally, sender, *offer_id, terms)
        }
        Payload::WithdrawOffer { offer_id } => withdraw_offer(w, sender, *offer_id),
        Payload::OpenLease {
            offer_id,
            chips,
            deposit,
        } => open_lease(w, tally, sender, *offer_id, chips, *deposit),
        Payload::TopUp { lease_id, amount } => top_up(w, tally, sender, *lease_id, *amount),
        Payload::CloseLease { lease_id } => close(w, tally, sender, *lease_id),
        _ => Ok(Ok(())),
    }
}

/// Checks the chips of new terms: the provider's, Online, and in no other offer.
fn check_offer_chips(
    w: &Working<'_>,
    sender: &Address,
    terms: &OfferTerms,
    this_offer: Option<u64>,
) -> Res<()> {
    if let Err(e) = terms.validate() {
        return Ok(Err(e));
    }
    for c in &terms.chips {
        if let Err(e) = check_chip(w, c, sender)? {
            return Ok(Err(e));
        }
        if let Some(other) = role(w, c)?.offer {
            if Some(other) != this_offer {
                return Ok(Err(MarketError::ChipOffered {
                    chip: hex(c),
                    offer: other,
                }));
            }
        }
    }
    Ok(Ok(()))
}

fn create_offer(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    sender: &Address,
    terms: &OfferTerms,
) -> Res<()> {
    if let Err(e) = check_offer_chips(w, sender, terms, None)? {
        return Ok(Err(e));
    }
    let mut i = info(w)?;
    let id = i.next_offer;
    i.next_offer += 1;
    i.open_offers += 1;
    w.put(market_key(), &i);
    for c in &terms.chips {
        let mut r = role(w, c)?;
        r.offer = Some(id);
        set_role(w, c, r);
    }
    w.put(
        offer_key(id),
        &Offer {
            id,
            provider: sender.clone(),
            terms: terms.clone(),
            created: tally.height,
            updated: tally.height,
        },
    );
    Ok(Ok(()))
}

fn own_offer(w: &Working<'_>, sender: &Address, id: u64) -> Res<Offer> {
    let Some(offer): Option<Offer> = w.get(&offer_key(id))? else {
        return Ok(Err(MarketError::UnknownOffer(id)));
    };
    if offer.provider != *sender {
        return Ok(Err(MarketError::NotProvider(id)));
    }
    Ok(Ok(offer))
}

fn update_offer(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    sender: &Address,
    id: u64,
    terms: &OfferTerms,
) -> Res<()> {
    let mut offer = match own_offer(w, sender, id)? {
        Ok(o) => o,
        Err(e) => return Ok(Err(e)),
    };
    if let Err(e) = check_offer_chips(w, sender, terms, Some(id))? {
        return Ok(Err(e));
    }
    let removed: Vec<ChipId> = offer
        .terms
        .chips
        .iter()
        .filter(|c| !terms.chips.contains(c))
        .copied()
        .collect();
    for c in &removed {
        if let Some(lease) = role(w, c)?.lease {
            return Ok(Err(MarketError::ChipLeased {
                chip: hex(c),
                lease,
            }));
        }
    }
    for c in &removed {
        let mut r = role(w, c)?;
        r.offer = None;
        set_role(w, c, r);
    }
    for c in &terms.chips {
        let mut r = role(w, c)?;
        if r.offer != Some(id) {
            r.offer = Some(id);
            set_role(w, c, r);
        }
    }
    offer.terms = terms.clone();
    offer.updated = tally.height;
    w.put(offer_key(id), &offer);
    Ok(Ok(()))
}

fn withdraw_offer(w: &mut Working<'_>, sender: &Address, id: u64) -> Res<()> {
    let offer = match own_offer(w, sender, id)? {
        Ok(o) => o,
        Err(e) => return Ok(Err(e)),
    };
    for c in &offer.terms.chips {
        let mut r = role(w, c)?;
        if r.offer == Some(id) {
            r.offer = None;
            set_role(w, c, r);
        }
    }
    w.delete(offer_key(id));
    let mut i = info(w)?;
    i.open_offers = i.open_offers.saturating_sub(1);
    w.put(market_key(), &i);
    Ok(Ok(()))
}

fn open_lease(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    sender: &Address,
    offer_id: u64,
    chips: &[ChipId],
    deposit: Amount,
) -> Res<()> {
    let h = tally.height;
    let Some(offer): Option<Offer> = w.get(&offer_key(offer_id))? else {
        return Ok(Err(MarketError::UnknownOffer(offer_id)));
    };
    let mut seen = BTreeSet::new();
    for c in chips {
        if !seen.insert(*c) {
            return Ok(Err(MarketError::DuplicateChip(hex(c))));
        }
        if !offer.terms.chips.contains(c) {
            return Ok(Err(MarketError::ChipNotOffered {
                chip: hex(c),
                offer: offer_id,
            }));
        }
        if let Err(e) = check_chip(w, c, &offer.provider)? {
            return Ok(Err(e));
        }
        if let Some(lease) = role(w, c)?.lease {
            return Ok(Err(MarketError::ChipLeased {
                chip: hex(c),
                lease,
            }));
        }
    }
    let t = &offer.terms;
    let price = t.price_per_block.saturating_mul(chips.len() as u128);
    let end = h.saturating_add(t.max_blocks);
    let needed = required_deposit(price, h, t.min_blocks, end, period(tally));
    if deposit < needed {
        return Ok(Err(MarketError::DepositTooSmall {
            needed,
            got: deposit,
        }));
    }
    let mut renter = w.account(sender)?;
    if renter.balance < deposit {
        return Ok(Err(MarketError::InsufficientBalance {
            balance: renter.balance,
            needed: deposit,
        }));
    }
    if list_len(w, &renter_leases_key(sender))? >= MAX_OPEN_LEASES
        || list_len(w, &provider_leases_key(&offer.provider))? >= MAX_OPEN_LEASES
    {
        return Ok(Err(MarketError::TooManyLeases(MAX_OPEN_LEASES)));
    }
    renter.balance -= deposit;
    w.set_account(sender, renter);
    tally.escrow_in += deposit;
    let mut i = info(w)?;
    let id = i.next_lease;
    i.next_lease += 1;
    i.open_leases += 1;
    w.put(market_key(), &i);
    let first = next_settlement(h, end, period(tally));
    let lease = Lease {
        id,
        offer: offer_id,
        renter: sender.clone(),
        provider: offer.provider.clone(),
        chips: chips.to_vec(),
        price_per_block: price,
        endpoint: t.endpoint.clone(),
        start: h,
        min_end: h.saturating_add(t.min_blocks),
        end,
        paid_until: h,
        next_settle: first,
        deposit,
        total_paid: 0,
        status: LeaseStatus::Open,
    };
    for c in chips {
        let mut r = role(w, c)?;
        r.lease = Some(id);
        set_role(w, c, r);
    }
    list_add(w, renter_leases_key(sender), id)?;
    list_add(w, provider_leases_key(&offer.provider), id)?;
    list_add(w, lease_due_key(first), id)?;
    w.put(lease_key(id), &lease);
    tally.events.push(Event::LeaseOpened {
        lease_id: id,
        offer_id,
        renter: sender.clone(),
        provider: offer.provider,
        chips: chips.to_vec(),
        deposit,
    });
    Ok(Ok(()))
}

fn open_lease_of(w: &Working<'_>, id: u64) -> Res<Lease> {
    match w.get::<Lease>(&lease_key(id))? {
        None => Ok(Err(MarketError::UnknownLease(id))),
        Some(l) => Ok(Ok(l)),
    }
}

fn top_up(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    sender: &Address,
    id: u64,
    amount: Amount,
) -> Res<()> {
    let mut lease = match open_lease_of(w, id)? {
        Ok(l) => l,
        Err(e) => return Ok(Err(e)),
    };
    if lease.renter != *sender {
        return Ok(Err(MarketError::NotRenter(id)));
    }
    if !lease.is_open() {
        return Ok(Err(MarketError::LeaseClosed(id)));
    }
    if amount == 0 {
        return Ok(Err(MarketError::ZeroAmount));
    }
    let mut renter = w.account(sender)?;
    if renter.balance < amount {
        return Ok(Err(MarketError::InsufficientBalance {
            balance: renter.balance,
            needed: amount,
        }));
    }
    renter.balance -= amount;
    w.set_account(sender, renter);
    tally.escrow_in += amount;
    let paid = lease.settle(tally.height);
    pay_out(w, tally, &lease, Settlement { paid, refunded: 0 })?;
    lease.deposit += amount;
    w.put(lease_key(id), &lease);
    Ok(Ok(()))
}

fn close(w: &mut Working<'_>, tally: &mut BlockTally, sender: &Address, id: u64) -> Res<()> {
    let mut lease = match open_lease_of(w, id)? {
        Ok(l) => l,
        Err(e) => return Ok(Err(e)),
    };
    let reason = if lease.renter == *sender {
        CloseReason::Renter
    } else if lease.provider == *sender {
        CloseReason::Provider
    } else {
        return Ok(Err(MarketError::NotParty(id)));
    };
    if !lease.is_open() {
        return Ok(Err(MarketError::LeaseClosed(id)));
    }
    close_lease(w, tally, &mut lease, reason)?;
    Ok(Ok(()))
}
