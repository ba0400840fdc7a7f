//! Validator registration and the choice of each epoch's committee by online attested compute.
//!
//! An account's weight is its *compute floor* over an epoch: the lowest its online attested
//! compute was at any point of that epoch ([`ComputeFloor`], tracked on every change, so
//! nothing scans chips). Compute lent to an account for the block where the committee is
//! chosen therefore counts for nothing, and a chip counts for at most one account per epoch.
//!
//! Registration of a new validator account needs online attested compute
//! (`validator_no_compute`), so the list cannot be filled with empty accounts. When the list
//! is full ([`MAX_VALIDATORS`]), a newcomer whose current compute is above the weakest entry's
//! *standing* (its compute floor over the epoch so far) takes that entry's slot: the lowest
//! standing, the most recently registered among equals (then the highest account). An
//! entry that lent its compute away or registered with borrowed compute stands at 0 and is the
//! first to go; entries with more compute than a newcomer are never displaced by it.
//!
//! Committee rule (applied at the first block of epoch `X`, for the committee that votes in
//! epoch `X + 3`):
//! 1. Rank registered validators by their account's compute floor over epoch `X - 1`
//!    (descending), ties by node key (ascending).
//! 2. Take the first `committee_size` with compute above zero.
//! 3. If that gives fewer than `min(MIN_COMMITTEE, committee_size, |committee(X+2)|)`
//!    members, fill up with members of committee `X + 2` in node-key order, with weight 1, so
//!    a young network never shrinks below a fault-tolerant size.
//! 4. A member's weight is its compute (at least 1); leader election caps it (see
//!    docs/protocol.md).

use crate::{events::Event, readset::ReadSet, working::Working, BlockEnv, BlockError};
use std::{cmp::Reverse, collections::BTreeSet, net::SocketAddr};
use unet_types::{
    epoch::{
        committee_key, epoch_of, validator_key, validator_list_key, validator_node_key,
        AddressList, Committee, CommitteeMember, ValidatorInfo, MAX_ADDRESS, MAX_VALIDATORS,
        MIN_COMMITTEE,
    },
    liveness::{
        compute_floor, owner_compute_floor_key, owner_compute_key, owner_compute_keys, ComputeFloor,
    },
    Address, Payload, SignedTx,
};

/// Validator reads. At an epoch's first block, the committee choice reads every listed
/// validator and the committee it extends; a registration or deregistration reads the list,
/// its own entries, and, when a registration may displace an entry of a full list, every
/// listed one. A validator's entries are its record, its node-key entry and its account's
/// compute.
pub(crate) fn reads(rs: &mut ReadSet<'_>, env: &BlockEnv<'_>, txs: &[SignedTx]) {
    let l = env.params.epoch_length.max(1);
    let mut validators: BTreeSet<Address> = BTreeSet::new();
    if env.height > 0 && env.height.is_multiple_of(l) {
        rs.touch(committee_key(env.height / l + 2));
        if let Some(AddressList(list)) = rs.read(validator_list_key()) {
            validators.extend(list);
        }
    }
    let mut registrations = 0usize;
    for stx in txs {
        match &stx.tx.payload {
            Payload::RegisterValidator { node_key, .. } => {
                rs.touch(validator_list_key());
                rs.touch(validator_node_key(node_key));
                validators.insert(stx.tx.sender.clone());
                registrations += 1;
            }
            Payload::DeregisterValidator => {
                rs.touch(validator_list_key());
                validators.insert(stx.tx.sender.clone());
            }
            _ => {}
        }
    }
    // A registration into a full list displaces the weakest entry: every entry is read.
    if registrations > 0 {
        if let Some(AddressList(list)) = rs.read(validator_list_key()) {
            if list.len() + registrations > MAX_VALIDATORS {
                validators.extend(list);
            }
        }
    }
    for account in &validators {
        for k in owner_compute_keys(account) {
            rs.touch(k);
        }
        if let Some(info) = rs.read::<ValidatorInfo>(validator_key(account)) {
            rs.touch(validator_node_key(&info.node_key));
        }
    }
}

/// Why a validator payload had no effect.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorError {
    /// The p2p address (quoted) is not `host-ip:port`.
    #[error("p2p address {0:?} is not host-ip:port")]
    BadAddress(String),
    /// The node key is already registered by another account (hex).
    #[error("node key is already registered by account {0}")]
    NodeKeyTaken(String),
    /// The registry holds the maximum of validators and none has less online compute than the
    /// signer.
    #[error("validator registry is full ({MAX_VALIDATORS}) and no entry stands below this account's online compute")]
    Full,
    /// The signer owns no Online attested chip, so it has no compute to stand on.
    #[error("account has no online attested compute")]
    NoCompute,
    /// The signer is not a registered validator (it cannot deregister).
    #[error("account is not a registered validator")]
    NotRegistered,
}

impl ValidatorError {
    /// The receipt code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadAddress(_) => "validator_bad_address",
            Self::NodeKeyTaken(_) => "validator_node_key_taken",
            Self::Full => "validator_registry_full",
            Self::NoCompute => "validator_no_compute",
            Self::NotRegistered => "validator_not_registered",
        }
    }
}

/// Sorted list of registered validator accounts.
pub(crate) fn list(w: &Working<'_>) -> Result<Vec<Address>, BlockError> {
    Ok(w.get::<AddressList>(&validator_list_key())?
        .map(|l| l.0)
        .unwrap_or_default())
}

/// An account's online compute now and its floor over `epoch` (see [`ComputeFloor`]).
fn compute_of(w: &Working<'_>, account: &Address, epoch: u64) -> Result<(u128, u128), BlockError> {
    let now: u128 = w.get(&owner_compute_key(account))?.unwrap_or(0);
    let record: Option<ComputeFloor> = w.get(&owner_compute_floor_key(account))?;
    Ok((now, compute_floor(record, epoch, now)))
}

/// A registered entry a newcomer could displace.
struct Entry {
    account: Address,
    /// Compute floor over the epoch so far.
    standing: u128,
    registered: u64,
    node_key: Option<Address>,
}

impl Entry {
    /// Lower goes first: the lowest standing, then the most recent registration, then the
    /// highest account.
    fn rank(&self) -> (u128, Reverse<u64>, Reverse<&Address>) {
        (
            self.standing,
            Reverse(self.registered),
            Reverse(&self.account),
        )
    }
}

/// The entry a newcomer would displace in `epoch`.
fn weakest(w: &Working<'_>, accounts: &[Address], epoch: u64) -> Result<Option<Entry>, BlockError> {
    let mut best: Option<Entry> = None;
    for account in accounts {
        let info: Option<ValidatorInfo> = w.get(&validator_key(account))?;
        let (_, standing) = compute_of(w, account, epoch)?;
        let entry = Entry {
            account: account.clone(),
            standing,
            // A listed account without a record is stale: it goes first among equals.
            registered: info.as_ref().map_or(u64::MAX, |i| i.registered_height),
            node_key: info.map(|i| i.node_key),
        };
        if best.as_ref().is_none_or(|b| entry.rank() < b.rank()) {
            best = Some(entry);
        }
    }
    Ok(best)
}

/// Registers (or updates) the sender's validator.
pub(crate) fn register(
    w: &mut Working<'_>,
    env: &BlockEnv<'_>,
    account: &Address,
    node_key: &Address,
    p2p_address: &str,
) -> Result<Result<(), ValidatorError>, BlockError> {
    if p2p_address.len() > MAX_ADDRESS || p2p_address.parse::<SocketAddr>().is_err() {
        return Ok(Err(ValidatorError::BadAddress(p2p_address.into())));
    }
    if let Some(owner) = w.get::<Address>(&validator_node_key(node_key))? {
        if owner != *account {
            return Ok(Err(ValidatorError::NodeKeyTaken(::hex::encode(owner))));
        }
    }
    let mut accounts = list(w)?;
    let previous: Option<ValidatorInfo> = w.get(&validator_key(account))?;
    if previous.is_none() {
        let epoch = epoch_of(env.height, env.params.epoch_length);
        let (now, _) = compute_of(w, account, epoch)?;
        if now == 0 {
            return Ok(Err(ValidatorError::NoCompute));
        }
        if accounts.len() >= MAX_VALIDATORS {
            match weakest(w, &accounts, epoch)? {
                Some(evicted) if evicted.standing < now => {
                    accounts.retain(|a| *a != evicted.account);
                    w.delete(validator_key(&evicted.account));
                    if let Some(node) = &evicted.node_key {
                        w.delete(validator_node_key(node));
                    }
                }
                _ => return Ok(Err(ValidatorError::Full)),
            }
        }
        if let Err(i) = accounts.binary_search(account) {
            accounts.insert(i, account.clone());
        }
        w.put(validator_list_key(), &AddressList(accounts));
    }
    if let Some(old) = &previous {
        if old.node_key != *node_key {
            w.delete(validator_node_key(&old.node_key));
        }
    }
    w.put(validator_node_key(node_key), account);
    w.put(
        validator_key(account),
        &ValidatorInfo {
            account: account.clone(),
            node_key: node_key.clone(),
            p2p_address: p2p_address.into(),
            registered_height: previous.map_or(env.height, |p| p.registered_height),
        },
    );
    Ok(Ok(()))
}

/// Removes the sender's validator.
pub(crate) fn deregister(
    w: &mut Working<'_>,
    account: &Address,
) -> Result<Result<(), ValidatorError>, BlockError> {
    let Some(info) = w.get::<ValidatorInfo>(&validator_key(account))? else {
        return Ok(Err(ValidatorError::NotRegistered));
    };
    let mut accounts = list(w)?;
    accounts.retain(|a| a != account);
    w.put(validator_list_key(), &AddressList(accounts));
    w.delete(validator_key(account));
    w.delete(validator_node_key(&info.node_key));
    Ok(Ok(()))
}

/// At the first block of epoch `X >= 1`: choose the committee of epoch `X + 3`.
pub(crate) fn choose_committee(
    w: &mut Working<'_>,
    env: &BlockEnv<'_>,
    events: &mut Vec<Event>,
) -> Result<(), BlockError> {
    let l = env.params.epoch_length.max(1);
    if env.height == 0 || !env.height.is_multiple_of(l) {
        return Ok(());
    }
    // Validated parameters keep `epoch_length >= 2`, so this never reaches the end of u64.
    let x = env.height / l;
    let Some(epoch) = x.checked_add(3) else {
        return Ok(());
    };
    let previous: Committee = w
        .get(&committee_key(epoch - 1))?
        .ok_or_else(|| BlockError::Corrupt(format!("committee of epoch {} absent", epoch - 1)))?;
    let mut ranked = Vec::new();
    for account in list(w)? {
        let Some(info) = w.get::<ValidatorInfo>(&validator_key(&account))? else {
            continue;
        };
        // Floor over the epoch that just ended: nothing has changed compute in this block yet
        // (the committee is chosen before expiries and transactions).
        let (_, compute) = compute_of(w, &account, x - 1)?;
        ranked.push((compute, info));
    }
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.node_key.cmp(&b.1.node_key)));
    let size = env.params.committee_size as usize;
    let mut members: Vec<CommitteeMember> = ranked
        .iter()
        .filter(|(c, _)| *c > 0)
        .take(size)
        .map(|(c, info)| CommitteeMember {
            node_key: info.node_key.clone(),
            account: info.account.clone(),
            p2p_address: info.p2p_address.clone(),
            weight: *c,
        })
        .collect();
    let floor = MIN_COMMITTEE.min(size).min(previous.members.len());
    if members.len() < floor {
        // Members are stored sorted by node key: fill in that order (stable, and independent
        // of weights that no longer hold).
        for m in previous.members.clone() {
            if members.len() >= floor {
                break;
            }
            if members.iter().all(|x| x.node_key != m.node_key) {
                members.push(CommitteeMember { weight: 1, ..m });
            }
        }
    }
    members.sort_by(|a, b| a.node_key.cmp(&b.node_key));
    let committee = Committee { epoch, members };
    w.put(committee_key(epoch), &committee);
    events.push(Event::Committee { committee });
    Ok(())
}
