//! Where finalized transactions landed, persisted: an immutable archive keyed by transaction
//! hash (so `unet_getTransaction` answers for any finalized transaction, across restarts).
//!
//! Each record is written when its block is applied and synced before the block is
//! acknowledged to marshal, like the state. Archive index = `height << 16 | position`, which
//! is why genesis caps `max_block_txs` below 65,536.

use crate::chain::TxLocation;
use bytes::BufMut;
use commonware_codec::{EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_storage::archive::{immutable, Archive as _, Identifier};
use unet_state::{Receipt, TxStatus};
use unet_store::StoreContext;
use unet_types::Digest;

/// Longest failure code / reason stored.
const MAX_CODE: usize = 128;
const MAX_REASON: usize = 1024;

/// A stored receipt with its block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRecord {
    pub height: u64,
    pub block: Digest,
    pub receipt: Receipt,
}

fn write_str(s: &str, max: usize, buf: &mut impl BufMut) {
    let bytes: Vec<u8> = s.as_bytes().iter().copied().take(max).collect();
    bytes.write(buf);
}

fn read_str(buf: &mut impl commonware_codec::Buf, max: usize) -> Result<String, CodecError> {
    let b = Vec::<u8>::read_cfg(buf, &(RangeCfg::from(..=max), ()))?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

impl Write for TxRecord {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.write(buf);
        self.block.write(buf);
        self.receipt.tx_hash.write(buf);
        self.receipt.index.write(buf);
        match &self.receipt.status {
            TxStatus::Ok => 0u8.write(buf),
            TxStatus::Failed { code, reason } => {
                1u8.write(buf);
                write_str(code, MAX_CODE, buf);
                write_str(reason, MAX_REASON, buf);
            }
        }
        self.receipt.fee_burned.write(buf);
        self.receipt.fee_to_proposer.write(buf);
    }
}

impl EncodeSize for TxRecord {
    fn encode_size(&self) -> usize {
        let status = match &self.receipt.status {
            TxStatus::Ok => 1,
            TxStatus::Failed { code, reason } => {
                let c: Vec<u8> = code.as_bytes().iter().copied().take(MAX_CODE).collect();
                let r: Vec<u8> = reason.as_bytes().iter().copied().take(MAX_REASON).collect();
                1 + c.encode_size() + r.encode_size()
            }
        };
        8 + 32 + 32 + 4 + status + 16 + 16
    }
}

impl Read for TxRecord {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        let height = u64::read(buf)?;
        let block = Digest::read(buf)?;
        let tx_hash = Digest::read(buf)?;
        let index = u32::read(buf)?;
        let status = match u8::read(buf)? {
            0 => TxStatus::Ok,
            1 => TxStatus::Failed {
                code: read_str(buf, MAX_CODE)?,
                reason: read_str(buf, MAX_REASON)?,
            },
            t => return Err(CodecError::InvalidEnum(t)),
        };
        Ok(Self {
            height,
            block,
            receipt: Receipt {
                tx_hash,
                index,
                status,
                fee_burned: u128::read(buf)?,
                fee_to_proposer: u128::read(buf)?,
            },
        })
    }
}

/// Why the transaction store failed.
#[derive(Debug, thiserror::Error)]
#[error("transaction store: {0}")]
pub struct TxStoreError(String);

/// The persisted transaction index.
pub struct TxStore<E: StoreContext> {
    /// `None` only after a failed write consumed the handle (the node then stops applying).
    archive: Option<immutable::Archive<E, Digest, TxRecord>>,
}

impl<E: StoreContext> TxStore<E> {
    pub fn new(archive: immutable::Archive<E, Digest, TxRecord>) -> Self {
        Self {
            archive: Some(archive),
        }
    }

    /// Records a finalized block's receipts and syncs them.
    pub async fn put_block(
        &mut self,
        height: u64,
        block: Digest,
        receipts: &[Receipt],
    ) -> Result<(), TxStoreError> {
        let mut archive = self
            .archive
            .take()
            .ok_or_else(|| TxStoreError("unusable after an earlier failure".into()))?;
        for r in receipts {
            let index = (height << 16) | u64::from(r.index);
            let record = TxRecord {
                height,
                block,
                receipt: r.clone(),
            };
            archive = archive
                .put(index, r.tx_hash, &record)
                .await
                .map_err(|e| TxStoreError(e.to_string()))?;
        }
        if !receipts.is_empty() {
            archive = archive
                .sync()
                .await
                .map_err(|e| TxStoreError(e.to_string()))?;
        }
        self.archive = Some(archive);
        Ok(())
    }

    /// Where a finalized transaction landed.
    pub async fn get(&self, hash: &Digest) -> Result<Option<TxLocation>, TxStoreError> {
        let Some(archive) = &self.archive else {
            return Err(TxStoreError("unusable after an earlier failure".into()));
        };
        let record = archive
            .get(Identifier::Key(hash))
            .await
            .map_err(|e| TxStoreError(e.to_string()))?;
        Ok(record.map(|r| TxLocation {
            height: r.height,
            block: r.block,
            receipt: r.receipt,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};
    use commonware_cryptography::{Hasher, Sha256};

    #[test]
    fn records_round_trip_and_bound_their_strings() {
        for status in [
            TxStatus::Ok,
            TxStatus::Failed {
                code: "insufficient_balance".into(),
                reason: "insufficient balance: balance 1, needed 2".into(),
            },
        ] {
            let r = TxRecord {
                height: 7,
                block: Sha256::hash(&[b"b"]),
                receipt: Receipt {
                    tx_hash: Sha256::hash(&[b"t"]),
                    index: 3,
                    status,
                    fee_burned: 5,
                    fee_to_proposer: 6,
                },
            };
            let bytes = r.encode();
            assert_eq!(bytes.len(), r.encode_size());
            assert_eq!(TxRecord::decode(bytes.to_vec()).unwrap(), r);
        }
        let long = TxRecord {
            height: 1,
            block: Sha256::hash(&[b"b"]),
            receipt: Receipt {
                tx_hash: Sha256::hash(&[b"t"]),
                index: 0,
                status: TxStatus::Failed {
                    code: "c".repeat(1000),
                    reason: "r".repeat(5000),
                },
                fee_burned: 0,
                fee_to_proposer: 0,
            },
        };
        let back = TxRecord::decode(long.encode().to_vec()).unwrap();
        match back.receipt.status {
            TxStatus::Failed { code, reason } => {
                assert_eq!(code.len(), MAX_CODE);
                assert_eq!(reason.len(), MAX_REASON);
            }
            TxStatus::Ok => panic!("status changed"),
        }
        assert!(TxRecord::decode(vec![1, 2, 3]).is_err());
    }
}
