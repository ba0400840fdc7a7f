//! The read-set a block's planning builds: the keys it declares, and the one way planning
//! code sees a loaded value ([`ReadSet::read`], which declares the key too).
//!
//! The domains (`exec`, `liveness`, `rewards`, `registry`, `validators`, `market`) write into
//! it from their `reads` functions; `plan.rs` runs them and the loading rounds. This file
//! imports none of them.

use crate::{
    working::{KeyMap, KeySet},
    PreState,
};
use commonware_codec::{Copying, DecodeExt};
use std::{
    any::Any,
    collections::{BTreeMap, BTreeSet},
};
use unet_types::{
    chip::{ChipId, ChipRefs, ChipStatus},
    keys::{account_key_raw, chip_index_key, chip_key, owner_chips_key_raw, revoked_cert_key},
    liveness::owner_compute_keys_raw,
    market::keys::chip_market_key,
    rewards::owner_rewards_key_raw,
    Address, Digest,
};

/// What the planning rounds of one block keep for the next round: decoded values and keys
/// derived from loaded values. Loaded values never change between rounds (a round only adds
/// keys), so all of it stays right; a loader (one block) owns one, and nothing outlives it.
#[derive(Default)]
pub(crate) struct Memo {
    /// Every key declared in earlier rounds (each was returned once, as new, and loaded).
    declared: KeySet<Digest>,
    /// Decoded values, by key.
    decoded: KeyMap<Digest, Box<dyn Any + Send + Sync>>,
    /// Keys derived from each chip id met, and from the chip's record once it is loaded.
    chips: KeyMap<ChipId, ChipKeys>,
    /// The chip index entry at each position met: its key, and the chip id it holds once
    /// loaded (`Some(None)`: absent or undecodable).
    index: KeyMap<u64, (Digest, Option<Option<ChipId>>)>,
    /// Balance key of each account met (by its key's bytes).
    accounts: KeyMap<Vec<u8>, Digest>,
    /// Revocation entry key of each certificate id met (chips of one model share their
    /// chain's intermediates, so a block meets few ids and many chips naming them).
    certs: KeyMap<[u8; 32], Digest>,
    /// Planning rounds finished.
    rounds: u32,
}

impl Memo {
    /// Planning rounds finished.
    pub(crate) fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Makes room for `additional` more declared keys.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.declared.reserve(additional);
    }
}

/// Declares `key`: adds it to `fresh` unless an earlier declaration (this round or before)
/// already did.
fn declare(declared: &mut KeySet<Digest>, fresh: &mut Vec<Digest>, key: Digest) {
    if declared.insert(key) {
        fresh.push(key);
    }
}

/// The balance key of the account with key bytes `address`, derived once.
fn account_key(accounts: &mut KeyMap<Vec<u8>, Digest>, address: &[u8]) -> Digest {
    if let Some(key) = accounts.get(address) {
        return *key;
    }
    let key = account_key_raw(address);
    accounts.insert(address.to_vec(), key);
    key
}

/// The revocation entry key of certificate `id`, derived once.
fn cert_key(certs: &mut KeyMap<[u8; 32], Digest>, id: &[u8; 32]) -> Digest {
    *certs.entry(*id).or_insert_with(|| revoked_cert_key(id))
}

/// The keys kept for chip `id`, made when it is first met.
fn chip_keys<'m>(chips: &'m mut KeyMap<ChipId, ChipKeys>, id: &ChipId) -> &'m mut ChipKeys {
    chips.entry(*id).or_insert_with(|| ChipKeys::new(id))
}

/// The keys of one chip.
struct ChipKeys {
    /// `chip_key`.
    record: Digest,
    /// `chip_market_key`, once asked for.
    market: Option<Digest>,
    /// What the record names, once it is loaded (`None` inside: absent or undecodable).
    owner: Option<Option<OwnerKeys>>,
    /// The record and the revocation entries of its chain are declared.
    record_declared: bool,
    /// The owner's compute entries and chip list are declared too (nothing more to add for
    /// this chip).
    expanded: bool,
}

/// The keys a loaded chip record leads to.
struct OwnerKeys {
    /// The owner's key bytes.
    owner: [u8; 32],
    /// The owner's balance key.
    account: Digest,
    /// The revocation entries of the chip's certificate chain (every reader of the record
    /// checks them).
    revoked: Vec<Digest>,
    /// The owner's compute entries and chip list (read when the chip changes status or
    /// hands), derived when first asked for.
    entries: Option<[Digest; 3]>,
    /// The owner's reward tally key of each epoch asked for.
    rewards: Vec<(u64, Digest)>,
    /// The height of the challenge the chip has pending, if any.
    pending: Option<u64>,
    /// The chip's status as stored.
    status: ChipStatus,
}

impl OwnerKeys {
    /// The owner's reward tally key for `epoch` (`owner_rewards_key_raw`), derived once.
    fn rewards_key(&mut self, epoch: u64) -> Digest {
        if let Some((_, key)) = self.rewards.iter().find(|(e, _)| *e == epoch) {
            return *key;
        }
        let key = owner_rewards_key_raw(&self.owner, epoch);
        self.rewards.push((epoch, key));
        key
    }

    /// The owner's compute entries and chip list, derived once.
    fn entries(&mut self) -> [Digest; 3] {
        *self.entries.get_or_insert_with(|| {
            let [compute, floor] = owner_compute_keys_raw(&self.owner);
            [compute, floor, owner_chips_key_raw(&self.owner)]
        })
    }
}

impl ChipKeys {
    fn new(id: &ChipId) -> Self {
        Self {
            record: chip_key(id),
            market: None,
            owner: None,
            record_declared: false,
            expanded: false,
        }
    }

    /// The keys the record leads to (`None` while it is not loaded, or when it is absent or
    /// does not decode: execution reports a corrupt entry).
    fn owner(
        &mut self,
        pre: &PreState,
        certs: &mut KeyMap<[u8; 32], Digest>,
    ) -> Option<&mut OwnerKeys> {
        if self.owner.is_none() {
            let loaded = pre.get(&self.record)?;
            self.owner = Some(loaded.as_deref().and_then(|bytes| {
                let ChipRefs {
                    owner,
                    chain,
                    status,
                    pending,
                } = ChipRefs::decode(Copying(bytes)).ok()?;
                Some(OwnerKeys {
                    owner,
                    account: account_key_raw(&owner),
                    revoked: chain.iter().map(|id| cert_key(certs, id)).collect(),
                    entries: None,
                    rewards: Vec::new(),
                    pending,
                    status,
                })
            }));
        }
        self.owner.as_mut()?.as_mut()
    }

    /// Declares the record and, once it is loaded, the revocation entries of its chain, and
    /// with `owner` also its owner's compute entries and chip list. Returns whether the
    /// record is still to be loaded.
    fn expand(
        &mut self,
        pre: &PreState,
        certs: &mut KeyMap<[u8; 32], Digest>,
        owner: bool,
        touch: &mut impl FnMut(Digest),
    ) -> bool {
        if self.expanded || (self.record_declared && !owner) {
            return false;
        }
        touch(self.record);
        let record_declared = self.record_declared;
        let Some(loaded) = self.owner(pre, certs) else {
            // Not loaded yet, or loaded and absent or undecodable (then nothing follows).
            let waiting = self.owner.is_none();
            if !waiting {
                self.record_declared = true;
                self.expanded = true;
            }
            return waiting;
        };
        if !record_declared {
            loaded.revoked.iter().for_each(|k| touch(*k));
        }
        if owner {
            loaded.entries().into_iter().for_each(&mut *touch);
        }
        self.record_declared = true;
        self.expanded = owner;
        false
    }
}

/// The keys a block touches, declared by the domains while they look at what is loaded.
///
/// A round declares every key again (the domains' `reads` are written as if from scratch);
/// the memo's `declared` set keeps what earlier rounds declared, so a round only collects,
/// and the loader only fetches, the keys it adds.
pub(crate) struct ReadSet<'p> {
    pre: &'p PreState,
    memo: &'p mut Memo,
    /// Keys this round declared that no earlier round did.
    fresh: Vec<Digest>,
    /// Chips whose record is read, with the entries of their owner (repeats allowed).
    chips: Vec<ChipId>,
    /// Chips whose record is read, without their owner's entries (repeats allowed).
    records: Vec<ChipId>,
    /// Chips the reward cursor pays, each with an epoch it settles for it.
    settled: Vec<(ChipId, u64)>,
    /// Owners a chip may have after this block's chip transfers.
    new_owners: BTreeMap<ChipId, BTreeSet<Address>>,
    /// Chips that may go offline, be revoked or change hands in this block (repeats allowed).
    affected: Vec<ChipId>,
    /// A value this round looked at was not loaded yet (see [`Round::waiting`]).
    waiting: bool,
}

/// What one planning round found.
pub(crate) struct Round {
    /// The keys it declared that no earlier round did.
    pub(crate) fresh: Vec<Digest>,
    /// Whether it looked at a value that was not loaded yet.
    ///
    /// A round's declarations are a function of the block and of the loaded values it looks
    /// at, and loaded values never change. So when every value a round looked at was already
    /// loaded, the next round would look at the same values and declare the same keys: it
    /// has nothing to add, and the loader can stop once this round's keys are loaded.
    pub(crate) waiting: bool,
}

impl<'p> ReadSet<'p> {
    pub(crate) fn new(pre: &'p PreState, memo: &'p mut Memo) -> Self {
        Self {
            pre,
            memo,
            fresh: Vec::new(),
            chips: Vec::new(),
            records: Vec::new(),
            settled: Vec::new(),
            new_owners: BTreeMap::new(),
            affected: Vec::new(),
            waiting: false,
        }
    }

    /// Whether this is the block's first planning round (declarations that depend on no
    /// loaded value are made in it once; later rounds would only repeat them).
    pub(crate) fn first_round(&self) -> bool {
        self.memo.rounds == 0
    }

    /// Declares a key execution may read or write.
    pub(crate) fn touch(&mut self, key: Digest) {
        declare(&mut self.memo.declared, &mut self.fresh, key);
    }

    /// Declares `key` and returns its loaded value, decoded (`None` while it is not loaded
    /// yet, when absent, or when it does not decode: execution reports a corrupt entry).
    pub(crate) fn read<T: DecodeExt<()> + Clone + Send + Sync + 'static>(
        &mut self,
        key: Digest,
    ) -> Option<T> {
        self.touch(key);
        if let Some(v) = self
            .memo
            .decoded
            .get(&key)
            .and_then(|v| v.downcast_ref::<T>())
        {
            return Some(v.clone());
        }
        let Some(loaded) = self.pre.get(&key) else {
            self.waiting = true;
            return None;
        };
        let value = T::decode(Copying(loaded.as_deref()?)).ok()?;
        self.memo.decoded.insert(key, Box::new(value.clone()));
        Some(value)
    }

    /// Declares the chip index entry at `pos` and returns the chip id it holds, once loaded.
    ///
    /// Kept in the memo by position (the cursor and the challenges read hundreds per block,
    /// in every round), not boxed with the other decoded values.
    pub(crate) fn chip_at(&mut self, pos: u64) -> Option<ChipId> {
        let (key, id) = self
            .memo
            .index
            .entry(pos)
            .or_insert_with(|| (chip_index_key(pos), None));
        declare(&mut self.memo.declared, &mut self.fresh, *key);
        if let Some(id) = id {
            return *id;
        }
        let Some(loaded) = self.pre.get(key) else {
            self.waiting = true;
            return None;
        };
        let decoded = loaded
            .as_deref()
            .and_then(|bytes| ChipId::decode(Copying(bytes)).ok());
        *id = Some(decoded);
        decoded
    }

    /// The height of the challenge a chip has pending in the loaded record: `None` while the
    /// record is not loaded (a chip declared with [`ReadSet::chip`] is then loaded before
    /// the loop ends, and the round after sees it), or when it is absent or does not decode.
    pub(crate) fn pending_challenge(&mut self, id: &ChipId) -> Option<Option<u64>> {
        let chip = chip_keys(&mut self.memo.chips, id);
        chip.owner(self.pre, &mut self.memo.certs)
            .map(|o| o.pending)
    }

    /// A chip's status in the loaded record: `None` while the record is not loaded (as
    /// [`ReadSet::pending_challenge`]), `Some(None)` when it is absent or does not decode.
    pub(crate) fn chip_status(&mut self, id: &ChipId) -> Option<Option<ChipStatus>> {
        let chip = chip_keys(&mut self.memo.chips, id);
        if let Some(loaded) = chip.owner(self.pre, &mut self.memo.certs) {
            return Some(Some(loaded.status));
        }
        chip.owner.is_some().then_some(None)
    }

    /// Whether a certificate of the chip's chain is revoked in the loaded state: `None` while
    /// the record or a revocation entry of its chain is not loaded, `Some(false)` for a chip
    /// whose record is absent or does not decode.
    ///
    /// Unlike [`ReadSet::read`], an unloaded revocation entry does not make the round wait:
    /// a caller treats `None` as "maybe revoked" and declares what a revoked chip needs, so
    /// no round runs only to learn that nothing is revoked. (The chips of a model share their
    /// intermediates, so in a block that reads many chips their revocation entries are
    /// loaded long before the last records are.)
    pub(crate) fn chain_revoked(&mut self, id: &ChipId) -> Option<bool> {
        let chip = chip_keys(&mut self.memo.chips, id);
        let Some(owner) = chip.owner(self.pre, &mut self.memo.certs) else {
            return chip.owner.is_some().then_some(false);
        };
        let mut revoked = false;
        for key in &owner.revoked {
            revoked |= self.pre.get(key)?.is_some();
        }
        Some(revoked)
    }

    /// The key of a chip's market role (`chip_market_key`), derived once per block.
    pub(crate) fn chip_market_key(&mut self, id: &ChipId) -> Digest {
        let chip = chip_keys(&mut self.memo.chips, id);
        *chip.market.get_or_insert_with(|| chip_market_key(id))
    }

    /// Declares the revocation entry of certificate `id` (`revoked_cert_key`).
    pub(crate) fn cert(&mut self, id: &[u8; 32]) {
        let key = cert_key(&mut self.memo.certs, id);
        self.touch(key);
    }

    /// Declares an account's balance entry.
    pub(crate) fn account(&mut self, address: &Address) {
        let key = account_key(&mut self.memo.accounts, address.as_ref());
        self.touch(key);
    }

    /// Declares a chip's record and, once it is loaded, its owner's compute entries, its
    /// owner's chip list and the revocation entries of its certificate chain: what a rule
    /// that may change the chip's status reads.
    pub(crate) fn chip(&mut self, id: ChipId) {
        self.chips.push(id);
    }

    /// Declares a chip's record and, once it is loaded, the revocation entries of its chain:
    /// what a rule that reads the chip without changing its status reads.
    pub(crate) fn chip_record(&mut self, id: ChipId) {
        self.records.push(id);
    }

    /// The reward cursor settles `epoch` for this chip: its record, the revocation entries
    /// of its chain, its owner's account and reward tally (and those of any owner a transfer
    /// in this block gives it).
    pub(crate) fn settled_chip(&mut self, id: ChipId, epoch: u64) {
        self.settled.push((id, epoch));
    }

    /// A transfer in this block may give the chip to `to`.
    pub(crate) fn new_owner(&mut self, id: ChipId, to: &Address) {
        self.new_owners.entry(id).or_default().insert(to.clone());
    }

    /// The chip may go offline, be revoked or change hands in this block (whoever reacts to
    /// that, such as the market, reads its entries: see [`ReadSet::affected`]).
    pub(crate) fn affect(&mut self, id: ChipId) {
        self.affected.push(id);
    }

    /// Chips declared with [`ReadSet::affect`] so far, each once, in order.
    pub(crate) fn affected(&self) -> Vec<ChipId> {
        let mut ids = self.affected.clone();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The keys declared in this round and in no earlier one, with every chip's entries
    /// expanded, and whether the round looked at a value not loaded yet.
    pub(crate) fn finish(self) -> Round {
        let Self {
            pre,
            memo,
            mut fresh,
            chips,
            records,
            settled,
            new_owners,
            mut waiting,
            ..
        } = self;
        memo.rounds += 1;
        let Memo {
            declared,
            chips: known,
            accounts,
            certs,
            ..
        } = memo;
        let mut touch = |key: Digest| declare(declared, &mut fresh, key);
        // A chip is expanded once per block: its record, then, once the record is loaded,
        // the entries it names. A chip the cursor only pays needs its record, the revocation
        // entries of its chain and its owner's account and tally, not the owner's compute
        // entries or chip list (paying changes neither).
        for id in &chips {
            let chip = chip_keys(known, id);
            waiting |= chip.expand(pre, certs, true, &mut touch);
        }
        for id in &records {
            let chip = chip_keys(known, id);
            waiting |= chip.expand(pre, certs, false, &mut touch);
        }
        for (id, epoch) in &settled {
            let chip = chip_keys(known, id);
            waiting |= chip.expand(pre, certs, false, &mut touch);
            let Some(owner) = chip.owner(pre, certs) else {
                continue;
            };
            touch(owner.account);
            touch(owner.rewards_key(*epoch));
            for to in new_owners.get(id).into_iter().flatten() {
                touch(account_key(accounts, to.as_ref()));
                touch(owner_rewards_key_raw(to.as_ref(), *epoch));
            }
        }
        Round { fresh, waiting }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::Encode;
    use commonware_cryptography::Signer;
    use unet_types::{
        chip::{kind, Chip, ChipStatus},
        keys::{account_key, owner_chips_key},
        liveness::owner_compute_keys,
        rewards::owner_rewards_key,
        PrivateKey,
    };

    fn chip(owner: &Address) -> Chip {
        Chip {
            owner: owner.clone(),
            model: "M".into(),
            kind: kind::VENDOR_X509,
            device_key: vec![4; 65],
            serial: "S-1".into(),
            registered_height: 1,
            status: ChipStatus::Online,
            root: [0; 32],
            chain: vec![[9; 32]],
            index: 0,
            live: Default::default(),
        }
    }

    #[test]
    fn chip_refs_decode_what_chip_decodes_and_refuse_what_it_refuses() {
        let owner = PrivateKey::from_seed(7).public_key();
        let bytes = chip(&owner).encode().to_vec();
        let refs = ChipRefs::decode(bytes.clone()).unwrap();
        assert_eq!(refs.owner.as_slice(), owner.as_ref());
        assert_eq!(refs.chain, vec![[9; 32]]);
        for cut in [1, 40, bytes.len() - 1] {
            assert!(Chip::decode(bytes[..cut].to_vec()).is_err());
            assert!(ChipRefs::decode(bytes[..cut].to_vec()).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ChipRefs::decode(longer).is_err());
        // ChipRefs skips the model, the device key and the serial without copying them out,
        // but refuses what Chip refuses there: a name or serial that is not UTF-8, a length
        // past the field's bound.
        let model_at = 32 + 1;
        let serial_at = model_at + 1 + 1 + 1 + 65 + 1;
        assert_eq!(&bytes[serial_at..serial_at + 3], b"S-1");
        for (at, byte) in [(model_at, 0xff), (serial_at, 0xc0), (model_at - 1, 65)] {
            let mut bad = bytes.clone();
            bad[at] = byte;
            assert!(Chip::decode(bad.clone()).is_err(), "byte {at}");
            assert!(ChipRefs::decode(bad).is_err(), "byte {at}");
        }
    }

    /// The keys the planner derives from a chip's owner bytes are the ones execution derives
    /// from the decoded owner, in the first round and from the memo in later ones.
    #[test]
    fn a_settled_chips_keys_from_owner_bytes_equal_the_decoded_owners_keys() {
        let owner = PrivateKey::from_seed(7).public_key();
        let to = PrivateKey::from_seed(8).public_key();
        let id = [1u8; 32];
        let pre: PreState = [(chip_key(&id), Some(chip(&owner).encode().to_vec()))]
            .into_iter()
            .collect();
        // Paying a chip reads its record, its chain's revocation entries and the owners'
        // accounts and tallies; not the owner's compute entries or chip list.
        let mut expected: BTreeSet<Digest> = BTreeSet::new();
        expected.extend([
            chip_key(&id),
            revoked_cert_key(&[9; 32]),
            account_key(&owner),
            owner_rewards_key(&owner, 5),
            account_key(&to),
            owner_rewards_key(&to, 5),
        ]);
        // The keys a round adds, and that it looked only at loaded values.
        let done = |round: Round| {
            assert!(!round.waiting, "the chip record is loaded");
            round.fresh.into_iter().collect::<BTreeSet<_>>()
        };
        let mut memo = Memo::default();
        let mut rs = ReadSet::new(&pre, &mut memo);
        rs.settled_chip(id, 5);
        rs.new_owner(id, &to);
        assert_eq!(done(rs.finish()), expected);
        // A later round declaring the same adds nothing.
        let mut rs = ReadSet::new(&pre, &mut memo);
        rs.settled_chip(id, 5);
        rs.new_owner(id, &to);
        assert_eq!(done(rs.finish()), BTreeSet::new());
        // Not loaded yet: only the record is declared, nothing is kept for it, and the round
        // says it waits for a value; the round after it is loaded adds the rest.
        let (empty, mut memo) = (PreState::default(), Memo::default());
        let mut rs = ReadSet::new(&empty, &mut memo);
        rs.settled_chip(id, 5);
        let round = rs.finish();
        assert!(round.waiting);
        assert_eq!(round.fresh, vec![chip_key(&id)]);
        let mut rs = ReadSet::new(&pre, &mut memo);
        rs.settled_chip(id, 5);
        rs.new_owner(id, &to);
        expected.remove(&chip_key(&id));
        assert_eq!(done(rs.finish()), expected);
        // A settlement epoch first met in a later round adds only its own keys.
        let mut rs = ReadSet::new(&pre, &mut memo);
        rs.settled_chip(id, 6);
        rs.new_owner(id, &to);
        assert_eq!(
            done(rs.finish()),
            [owner_rewards_key(&owner, 6), owner_rewards_key(&to, 6)].into()
        );
        // The same chip read by another rule (a challenge, a status change) adds the owner's
        // compute entries and chip list, and only those.
        let mut rs = ReadSet::new(&pre, &mut memo);
        rs.settled_chip(id, 6);
        rs.chip(id);
        let mut entries: BTreeSet<Digest> = owner_compute_keys(&owner).into();
        entries.insert(owner_chips_key(&owner));
        assert_eq!(done(rs.finish()), entries);
    }
}
