//! The lasting transaction index: where every finalized transaction landed and its receipt,
//! kept across restarts.
//!
//! Storage is ONE record per finalized block that carries transactions (blocks without
//! transactions write nothing): a commonware `archive::prunable` keyed by height (and by block
//! digest) whose value is the block's receipts in block order ([`BlockReceipts`]). Each receipt
//! names its transaction hash, so the record is the block's whole `tx hash -> receipt` list.
//!
//! Lookups by transaction hash go through an in-memory map from the first 8 bytes of the hash
//! to the heights of the blocks holding a transaction with that prefix (almost always one). It
//! is rebuilt at start by reading the retained records, so nothing per transaction is ever
//! written. A lookup reads the candidate record(s) and compares the full hash; a prefix shared
//! by chance (or ground on purpose) costs one more record read, never a wrong answer.
//!
//! The record of a block is written and synced *before* the block's state is applied (see
//! [`crate::chain::Chain::finalize`]): after a crash in between, the block is delivered again
//! and its second put is a no-op (the archive keeps the first value at an index), so the index
//! never misses a block whose state was applied.
//!
//! Pruning: with `keep = N > 0` only the last `N` finalized heights are answered; older
//! records answer "not found" at once and their storage is released a section
//! ([`ITEMS_PER_SECTION`] heights) at a time. `keep = 0` keeps everything.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_runtime::buffer::paged::{page_size, CacheRef};
use commonware_storage::{
    archive::{prunable, Archive as _, Identifier},
    translator::EightCap,
};
use commonware_utils::{NZUsize, NZU64};
use std::{collections::HashMap, num::NonZero};
use unet_state::{Receipt, SkippedAnswer, TxStatus};
use unet_store::StoreContext;
use unet_types::Digest;

/// Heights per storage section (the granularity at which pruned records are released).
pub const ITEMS_PER_SECTION: NonZero<u64> = NZU64!(1_024);
/// Longest code or reason string a stored receipt may carry (decoding bound).
const MAX_TEXT: usize = 4_096;
/// Most skipped answers one stored receipt may carry (decoding bound).
const MAX_SKIPPED: usize = 1 << 16;
/// Most receipts one stored block may carry (decoding bound; blocks hold far fewer).
const MAX_RECEIPTS: usize = 1 << 20;

/// Why the index failed (storage, or a record that does not decode).
#[derive(Debug, thiserror::Error)]
pub enum TxIndexError {
    /// The archive failed.
    #[error("transaction index storage: {0}")]
    Storage(#[from] commonware_storage::archive::Error),
    /// An earlier storage failure left the index unusable.
    #[error("transaction index is closed after a storage failure")]
    Closed,
}

/// Where a finalized transaction landed, and its receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxLocation {
    /// Height of the finalized block that holds the transaction.
    pub height: u64,
    /// Digest of that block.
    pub block: Digest,
    /// The transaction's receipt.
    pub receipt: Receipt,
}

/// The stored record of one block: its digest and its receipts in block order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockReceipts {
    /// The block's digest.
    pub block: Digest,
    /// One receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
}

fn write_text(s: &str, buf: &mut impl BufMut) {
    s.as_bytes().to_vec().write(buf);
}

fn text_size(s: &str) -> usize {
    s.as_bytes().to_vec().encode_size()
}

fn read_text(buf: &mut impl Buf) -> Result<String, CodecError> {
    let bytes = Vec::<u8>::read_cfg(buf, &(RangeCfg::from(..=MAX_TEXT), ()))?;
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid("Receipt", "text is not UTF-8"))
}

const OK_TAG: u8 = 0;
const FAILED_TAG: u8 = 1;

impl Write for BlockReceipts {
    fn write(&self, buf: &mut impl BufMut) {
        self.block.write(buf);
        (self.receipts.len() as u64).write(buf);
        for r in &self.receipts {
            r.tx_hash.write(buf);
            r.index.write(buf);
            match &r.status {
                TxStatus::Ok => OK_TAG.write(buf),
                TxStatus::Failed { code, reason } => {
                    FAILED_TAG.write(buf);
                    write_text(code, buf);
                    write_text(reason, buf);
                }
            }
            r.fee_burned.write(buf);
            r.fee_to_proposer.write(buf);
            (r.skipped.len() as u64).write(buf);
            for s in &r.skipped {
                s.index.write(buf);
                s.chip_id.write(buf);
                write_text(&s.code, buf);
                write_text(&s.reason, buf);
            }
        }
    }
}

impl EncodeSize for BlockReceipts {
    fn encode_size(&self) -> usize {
        let mut n = self.block.encode_size() + 8;
        for r in &self.receipts {
            n += 32 + 4 + 1 + 16 + 16 + 8;
            if let TxStatus::Failed { code, reason } = &r.status {
                n += text_size(code) + text_size(reason);
            }
            for s in &r.skipped {
                n += 4 + 32 + text_size(&s.code) + text_size(&s.reason);
            }
        }
        n
    }
}

fn read_count(buf: &mut impl Buf, max: usize) -> Result<usize, CodecError> {
    let n = u64::read(buf)?;
    if n > max as u64 {
        return Err(CodecError::InvalidLength(n as usize));
    }
    Ok(n as usize)
}

impl Read for BlockReceipts {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let block = Digest::read(buf)?;
        let count = read_count(buf, MAX_RECEIPTS)?;
        // Each receipt takes at least 77 bytes: never reserve more than the input can hold.
        let mut receipts = Vec::with_capacity(count.min(buf.remaining() / 77));
        for _ in 0..count {
            let tx_hash = Digest::read(buf)?;
            let index = u32::read(buf)?;
            let status = match u8::read(buf)? {
                OK_TAG => TxStatus::Ok,
                FAILED_TAG => TxStatus::Failed {
                    code: read_text(buf)?,
                    reason: read_text(buf)?,
                },
                tag => return Err(CodecError::InvalidEnum(tag)),
            };
            let fee_burned = u128::read(buf)?;
            let fee_to_proposer = u128::read(buf)?;
            let skipped_count = read_count(buf, MAX_SKIPPED)?;
            let mut skipped = Vec::with_capacity(skipped_count.min(buf.remaining() / 44));
            for _ in 0..skipped_count {
                skipped.push(SkippedAnswer {
                    index: u32::read(buf)?,
                    chip_id: <[u8; 32]>::read(buf)?,
                    code: read_text(buf)?,
                    reason: read_text(buf)?,
                });
            }
            receipts.push(Receipt {
                tx_hash,
                index,
                status,
                fee_burned,
                fee_to_proposer,
                skipped,
            });
        }
        Ok(Self { block, receipts })
    }
}

/// Heights of the blocks holding a transaction whose hash starts with a given prefix.
#[derive(Clone, Debug)]
enum Heights {
    One(u64),
    Many(Vec<u64>),
}

impl Heights {
    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let (one, many): (Option<u64>, &[u64]) = match self {
            Heights::One(h) => (Some(*h), &[]),
            Heights::Many(v) => (None, v),
        };
        one.into_iter().chain(many.iter().copied())
    }

    fn push(&mut self, height: u64) {
        match self {
            Heights::One(h) if *h == height => {}
            Heights::One(h) => *self = Heights::Many(vec![*h, height]),
            Heights::Many(v) => {
                if !v.contains(&height) {
                    v.push(height)
                }
            }
        }
    }

    /// Drops heights below `floor`; false when none is left.
    fn retain_from(&mut self, floor: u64) -> bool {
        match self {
            Heights::One(h) => *h >= floor,
            Heights::Many(v) => {
                v.retain(|h| *h >= floor);
                match v.as_slice() {
                    [] => false,
                    [one] => {
                        *self = Heights::One(*one);
                        true
                    }
                    _ => true,
                }
            }
        }
    }
}

fn prefix(hash: &Digest) -> u64 {
    let mut p = [0u8; 8];
    p.copy_from_slice(&hash.as_ref()[..8]);
    u64::from_be_bytes(p)
}

type Store<E> = prunable::Archive<EightCap, E, Digest, BlockReceipts>;

/// The lasting transaction index of one node (see the module documentation).
pub struct TxIndex<E: StoreContext> {
    /// `None` only after a storage failure consumed the archive.
    archive: Option<Store<E>>,
    locate: HashMap<u64, Heights>,
    /// Heights answered; 0 keeps every height.
    keep: u64,
    /// Lowest height answered (everything below is pruned).
    floor: u64,
    /// Highest height indexed.
    last: u64,
}

impl<E: StoreContext> TxIndex<E> {
    /// Opens (or creates) the index in the storage partitions named by `partition`, keeping the
    /// last `keep` heights (0: all) below the node's `finalized` height (the applied state's:
    /// blocks without transactions leave no record, so the index alone does not know it), and
    /// rebuilds the hash map from the retained records.
    pub async fn open(
        context: E,
        partition: &str,
        keep: u64,
        finalized: u64,
    ) -> Result<Self, TxIndexError> {
        let cfg = prunable::Config {
            translator: EightCap,
            metadata_partition: format!("{partition}-metadata"),
            key_partition: format!("{partition}-key"),
            key_page_cache: CacheRef::new(page_size(4096), NZUsize!(256)),
            value_partition: format!("{partition}-value"),
            compression: None,
            codec_config: (),
            items_per_section: ITEMS_PER_SECTION,
            key_write_buffer: NZUsize!(64 * 1024),
            value_write_buffer: NZUsize!(1024 * 1024),
            replay_buffer: NZUsize!(1024 * 1024),
        };
        let archive = Store::init(context, cfg).await?;
        let last = archive.last_index().unwrap_or(0).max(finalized);
        let mut index = Self {
            archive: Some(archive),
            locate: HashMap::new(),
            keep,
            floor: 0,
            last,
        };
        index.floor = index.floor_for(last);
        index.prune_storage().await?;
        let ranges: Vec<(u64, u64)> = index.store()?.ranges_from(index.floor).collect();
        for (start, end) in ranges {
            for height in start.max(index.floor)..=end {
                if let Some(record) = index.store()?.get(Identifier::Index(height)).await? {
                    index.note(height, &record);
                }
            }
        }
        Ok(index)
    }

    fn store(&self) -> Result<&Store<E>, TxIndexError> {
        self.archive.as_ref().ok_or(TxIndexError::Closed)
    }

    fn floor_for(&self, last: u64) -> u64 {
        if self.keep == 0 {
            0
        } else {
            (last + 1).saturating_sub(self.keep)
        }
    }

    fn note(&mut self, height: u64, record: &BlockReceipts) {
        for r in &record.receipts {
            self.locate
                .entry(prefix(&r.tx_hash))
                .and_modify(|h| h.push(height))
                .or_insert(Heights::One(height));
        }
    }

    async fn prune_storage(&mut self) -> Result<(), TxIndexError> {
        if self.floor == 0 {
            return Ok(());
        }
        let archive = self.archive.take().ok_or(TxIndexError::Closed)?;
        self.archive = Some(archive.prune(self.floor).await?);
        Ok(())
    }

    /// Records the receipts of the finalized block at `height` (one record, synced before this
    /// returns). A block without transactions writes nothing; a height already recorded is left
    /// as it is (a block delivered again after a crash).
    pub async fn record(
        &mut self,
        height: u64,
        block: Digest,
        receipts: &[Receipt],
    ) -> Result<(), TxIndexError> {
        if !receipts.is_empty() && height >= self.floor {
            let record = BlockReceipts {
                block,
                receipts: receipts.to_vec(),
            };
            let archive = self.archive.take().ok_or(TxIndexError::Closed)?;
            self.archive = Some(archive.put_sync(height, block, &record).await?);
            self.note(height, &record);
        }
        if height > self.last {
            self.last = height;
            let floor = self.floor_for(height);
            if floor > self.floor {
                let crossed =
                    floor / ITEMS_PER_SECTION.get() != self.floor / ITEMS_PER_SECTION.get();
                self.floor = floor;
                // Storage and map entries go a section at a time; lookups check the floor.
                if crossed {
                    self.prune_storage().await?;
                    self.locate.retain(|_, h| h.retain_from(floor));
                }
            }
        }
        Ok(())
    }

    /// Where the finalized transaction `hash` landed, if it is within the kept heights.
    pub async fn get(&self, hash: &Digest) -> Result<Option<TxLocation>, TxIndexError> {
        let Some(heights) = self.locate.get(&prefix(hash)) else {
            return Ok(None);
        };
        for height in heights.iter().filter(|h| *h >= self.floor) {
            let Some(record) = self.store()?.get(Identifier::Index(height)).await? else {
                continue;
            };
            if let Some(r) = record.receipts.iter().find(|r| r.tx_hash == *hash) {
                return Ok(Some(TxLocation {
                    height,
                    block: record.block,
                    receipt: r.clone(),
                }));
            }
        }
        Ok(None)
    }

    /// The receipts of the finalized block `block` at `height`, if the index holds them (a
    /// block without transactions has no record: its receipts are the empty list, which the
    /// caller knows from the block).
    pub async fn receipts_at(
        &self,
        height: u64,
        block: &Digest,
    ) -> Result<Option<Vec<Receipt>>, TxIndexError> {
        if height < self.floor {
            return Ok(None);
        }
        let record = self.store()?.get(Identifier::Index(height)).await?;
        Ok(record.filter(|r| r.block == *block).map(|r| r.receipts))
    }

    /// Lowest height whose transactions are answered (0 when nothing was pruned).
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Number of transaction-hash prefixes in memory (for metrics and tests).
    pub fn prefixes(&self) -> usize {
        self.locate.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::Copying;
    use commonware_codec::{DecodeExt, Encode};
    use commonware_runtime::{deterministic, Runner as _, Supervisor as _};

    fn receipt(seed: u8, index: u32, failed: bool) -> Receipt {
        Receipt {
            tx_hash: Digest::from([seed; 32]),
            index,
            status: if failed {
                TxStatus::Failed {
                    code: "market_deposit_too_small".into(),
                    reason: "deposit below the minimum".into(),
                }
            } else {
                TxStatus::Ok
            },
            fee_burned: 7 + seed as u128,
            fee_to_proposer: u128::MAX - seed as u128,
            skipped: if failed {
                vec![SkippedAnswer {
                    index: 3,
                    chip_id: [seed; 32],
                    code: "liveness_bad_proof".into(),
                    reason: "proof does not verify".into(),
                }]
            } else {
                Vec::new()
            },
        }
    }

    /// A hash whose first 8 bytes are `prefix` and whose rest is `tail`.
    fn hash_with(prefix: u8, tail: u8) -> Digest {
        let mut b = [tail; 32];
        b[..8].copy_from_slice(&[prefix; 8]);
        Digest::from(b)
    }

    #[test]
    fn record_round_trips_and_decoding_is_bounded() {
        let record = BlockReceipts {
            block: Digest::from([9u8; 32]),
            receipts: vec![receipt(1, 0, false), receipt(2, 1, true)],
        };
        let bytes = record.encode();
        assert_eq!(bytes.len(), record.encode_size());
        assert_eq!(BlockReceipts::decode(bytes.clone()).unwrap(), record);
        // A count that claims more receipts than the bound is refused before any allocation.
        let mut huge = Digest::from([0u8; 32]).encode().to_vec();
        huge.extend_from_slice(&u64::MAX.encode());
        assert!(BlockReceipts::decode(Copying(&huge)).is_err());
        // Truncated input fails instead of panicking.
        for cut in [1, 40, bytes.len() - 1] {
            assert!(BlockReceipts::decode(Copying(&bytes[..cut])).is_err());
        }
        // An unknown status tag is refused.
        let mut bad = bytes.to_vec();
        bad[32 + 8 + 32 + 4] = 7;
        assert!(BlockReceipts::decode(Copying(&bad)).is_err());
    }

    /// Every recorded transaction is found with its height, block and receipt after reopening;
    /// a hash that shares an 8-byte prefix with a recorded one (but is another transaction) is
    /// not found, and neither is one never recorded.
    #[test]
    fn reopening_rebuilds_the_same_answers() {
        deterministic::Runner::default().start(|ctx| async move {
            let mut index = TxIndex::open(ctx.child("a"), "txi", 0, 0).await.unwrap();
            let mut expected = Vec::new();
            for height in 1..=50u64 {
                if height % 5 == 0 {
                    // Blocks without transactions write nothing.
                    index
                        .record(height, Digest::from([0u8; 32]), &[])
                        .await
                        .unwrap();
                    continue;
                }
                let block = Digest::from([height as u8; 32]);
                let mut receipts = vec![receipt(height as u8, 0, height % 3 == 0)];
                let mut colliding = receipt(0, 1, false);
                colliding.tx_hash = hash_with(0xAB, height as u8);
                receipts.push(colliding);
                index.record(height, block, &receipts).await.unwrap();
                for r in receipts {
                    expected.push((
                        r.tx_hash,
                        TxLocation {
                            height,
                            block,
                            receipt: r,
                        },
                    ));
                }
            }
            for (hash, want) in &expected {
                assert_eq!(index.get(hash).await.unwrap().as_ref(), Some(want));
            }
            let prefixes = index.prefixes();
            drop(index);

            let reopened = TxIndex::open(ctx.child("b"), "txi", 0, 50).await.unwrap();
            assert_eq!(reopened.prefixes(), prefixes);
            for (hash, want) in &expected {
                assert_eq!(reopened.get(hash).await.unwrap().as_ref(), Some(want));
            }
            // Same prefix as 40 stored transactions, different hash: not found.
            assert_eq!(reopened.get(&hash_with(0xAB, 0xEE)).await.unwrap(), None);
            assert_eq!(reopened.get(&Digest::from([0xCC; 32])).await.unwrap(), None);
        });
    }

    /// Recording a height again (a block delivered again after a crash) keeps the first record.
    #[test]
    fn a_height_recorded_twice_keeps_its_first_record() {
        deterministic::Runner::default().start(|ctx| async move {
            let mut index = TxIndex::open(ctx.child("a"), "twice", 0, 0).await.unwrap();
            let block = Digest::from([1u8; 32]);
            index
                .record(3, block, &[receipt(1, 0, false)])
                .await
                .unwrap();
            index
                .record(3, block, &[receipt(1, 0, false)])
                .await
                .unwrap();
            let found = index.get(&Digest::from([1u8; 32])).await.unwrap().unwrap();
            assert_eq!((found.height, found.block), (3, block));
            assert_eq!(found.receipt, receipt(1, 0, false));
        });
    }

    /// With `keep = N`, transactions of heights below `last - N + 1` answer "not found" (at once,
    /// and after reopening), the kept ones are still found, and storage is released a section at a
    /// time.
    #[test]
    fn pruned_heights_answer_not_found() {
        deterministic::Runner::default().start(|ctx| async move {
            let keep = 100;
            let mut index = TxIndex::open(ctx.child("a"), "pruned", keep, 0)
                .await
                .unwrap();
            let hash = |h: u64| {
                let mut b = [0u8; 32];
                b[..8].copy_from_slice(&h.to_be_bytes());
                b[31] = 1;
                Digest::from(b)
            };
            let last = 2 * ITEMS_PER_SECTION.get() + 10;
            for height in 1..=last {
                let mut r = receipt(0, 0, false);
                r.tx_hash = hash(height);
                index
                    .record(height, Digest::from([1u8; 32]), &[r])
                    .await
                    .unwrap();
            }
            let floor = last + 1 - keep;
            assert_eq!(index.floor(), floor);
            for probe in [1, ITEMS_PER_SECTION.get() + 5, floor - 1] {
                assert_eq!(
                    index.get(&hash(probe)).await.unwrap(),
                    None,
                    "height {probe}"
                );
            }
            for probe in [floor, floor + 1, last] {
                let found = index.get(&hash(probe)).await.unwrap().unwrap();
                assert_eq!(found.height, probe);
            }
            // Map entries of released sections are gone (only the current section's tail and
            // the kept heights remain).
            assert!(index.prefixes() < (keep + ITEMS_PER_SECTION.get()) as usize);
            drop(index);

            let reopened = TxIndex::open(ctx.child("b"), "pruned", keep, last)
                .await
                .unwrap();
            assert_eq!(reopened.floor(), floor);
            assert_eq!(reopened.prefixes(), keep as usize);
            assert_eq!(reopened.get(&hash(floor - 1)).await.unwrap(), None);
            assert_eq!(
                reopened.get(&hash(floor)).await.unwrap().unwrap().height,
                floor
            );
            drop(reopened);
            // The chain finalized 10 more heights without transactions (no records): the
            // floor follows the finalized height, not the last record.
            let later = TxIndex::open(ctx.child("d"), "pruned", keep, last + 10)
                .await
                .unwrap();
            assert_eq!(later.floor(), floor + 10);
            assert_eq!(later.get(&hash(floor + 9)).await.unwrap(), None);
            let kept = later.get(&hash(floor + 10)).await.unwrap().unwrap();
            assert_eq!(kept.height, floor + 10);
            drop(later);
            // Reopened keeping everything: what storage still holds is answered again, what
            // was released is not.
            let all = TxIndex::open(ctx.child("c"), "pruned", 0, last)
                .await
                .unwrap();
            assert_eq!(all.get(&hash(1)).await.unwrap(), None);
            assert_eq!(all.get(&hash(last)).await.unwrap().unwrap().height, last);
        });
    }
}
