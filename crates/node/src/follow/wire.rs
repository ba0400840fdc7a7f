//! The follow protocol's messages, inside an authenticated, encrypted stream (commonware
//! stream: SAKE handshake, CUPS records) under [`NAMESPACE`].
//!
//! The follower speaks first with [`ToUpstream::Follow`]: the genesis it follows and the first
//! height it lacks. The upstream answers with [`ToFollower::Block`] for every finalized height
//! from there on, in order and without end, each with the finalization certificate it holds
//! for that height if any; a block without one is finalized by the next certificate through
//! the parent links. The follower may send [`ToUpstream::Submit`] batches at any time: the
//! transactions its API admitted, for the upstream to admit and spread.
//!
//! A node that syncs state speaks first with [`ToUpstream::Sync`] instead. The upstream answers
//! with [`ToFollower::SyncTarget`] (its applied state: the block at that height, the
//! certificate that finalizes it and the [`SyncTarget`] whose root the block carries), then
//! answers each [`ToUpstream::SyncOps`] request, in order, with [`ToFollower::SyncOps`]: the
//! operations and the proof that they are in the state's log.

use crate::history::Certificate;
use commonware_codec::{EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt as _, Write};
use unet_store::{read_response, SyncRequest, SyncResponse, SyncTarget, MAX_SYNC_OPS};
use unet_types::{block::BlockCfg, Block, Digest, SignedTx};

/// Namespace the handshake binds (no other protocol's session can be replayed here).
pub const NAMESPACE: &[u8] = b"UNET_FOLLOW";

/// Most transactions in one [`ToUpstream::Submit`].
pub const MAX_SUBMIT_BATCH: usize = 512;

/// The refusal of a `Sync` while the chain is at genesis (there is no state to sync yet; the
/// node replays instead).
pub const AT_GENESIS: &str = "nothing to sync: the chain is at genesis";

/// Longest refusal text.
const MAX_REASON: usize = 1024;

/// From a follower to the node it follows.
#[derive(Clone, Debug, PartialEq)]
pub enum ToUpstream {
    /// Send me every finalized block from `from` on (first message, once).
    Follow {
        /// Digest of the genesis block the follower's chain starts from.
        genesis: Digest,
        /// First height the follower lacks (at least 1).
        from: u64,
    },
    /// Transactions for the upstream to admit into its mempool and spread.
    Submit(Vec<SignedTx>),
    /// Offer me your applied state to sync (first message, once, instead of `Follow`).
    Sync {
        /// Digest of the genesis block the syncing node's chain starts from.
        genesis: Digest,
    },
    /// Send me these state operations, with their proof (after `Sync`).
    SyncOps(SyncRequest),
}

/// From the followed node to its follower.
#[derive(Clone, Debug)]
pub enum ToFollower {
    /// The finalized block at the next height, with the certificate held for it, if any.
    Block {
        /// The block.
        block: Box<Block>,
        /// Its finalization certificate (none: a later one finalizes it).
        certificate: Option<Box<Certificate>>,
    },
    /// The upstream will not serve this follower (why, in words); it closes next.
    Refused(String),
    /// The state this upstream offers to sync (answers `Sync`).
    SyncTarget {
        /// The finalized block whose `state_root` is the target's root.
        block: Box<Block>,
        /// The certificate that finalizes it.
        certificate: Box<Certificate>,
        /// How to fetch the state.
        target: Box<SyncTarget>,
    },
    /// State operations and their proof (answers `SyncOps`, in order).
    SyncOps(Box<SyncResponse>),
}

impl Write for ToUpstream {
    fn write(&self, buf: &mut impl bytes::BufMut) {
        match self {
            Self::Follow { genesis, from } => {
                0u8.write(buf);
                genesis.write(buf);
                from.write(buf);
            }
            Self::Submit(txs) => {
                1u8.write(buf);
                txs.write(buf);
            }
            Self::Sync { genesis } => {
                2u8.write(buf);
                genesis.write(buf);
            }
            Self::SyncOps(request) => {
                3u8.write(buf);
                request.write(buf);
            }
        }
    }
}

impl EncodeSize for ToUpstream {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Follow { genesis, from } => genesis.encode_size() + from.encode_size(),
            Self::Submit(txs) => txs.encode_size(),
            Self::Sync { genesis } => genesis.encode_size(),
            Self::SyncOps(request) => request.encode_size(),
        }
    }
}

impl Read for ToUpstream {
    type Cfg = ();

    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(Self::Follow {
                genesis: Digest::read(buf)?,
                from: u64::read(buf)?,
            }),
            1 => Ok(Self::Submit(Vec::<SignedTx>::read_cfg(
                buf,
                &(RangeCfg::from(..=MAX_SUBMIT_BATCH), ()),
            )?)),
            2 => Ok(Self::Sync {
                genesis: Digest::read(buf)?,
            }),
            3 => Ok(Self::SyncOps(SyncRequest::read(buf)?)),
            t => Err(CodecError::InvalidEnum(t)),
        }
    }
}

impl Write for ToFollower {
    fn write(&self, buf: &mut impl bytes::BufMut) {
        match self {
            Self::Block { block, certificate } => {
                0u8.write(buf);
                block.write(buf);
                // As `Option<Certificate>` encodes: a presence flag, then the certificate.
                certificate.is_some().write(buf);
                if let Some(c) = certificate {
                    c.write(buf);
                }
            }
            Self::Refused(why) => {
                1u8.write(buf);
                why.as_bytes().to_vec().write(buf);
            }
            Self::SyncTarget {
                block,
                certificate,
                target,
            } => {
                2u8.write(buf);
                block.write(buf);
                certificate.write(buf);
                target.write(buf);
            }
            Self::SyncOps(response) => {
                3u8.write(buf);
                response.write(buf);
            }
        }
    }
}

impl EncodeSize for ToFollower {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Block { block, certificate } => {
                block.encode_size() + 1 + certificate.as_ref().map_or(0, |c| c.encode_size())
            }
            Self::Refused(why) => why.as_bytes().to_vec().encode_size(),
            Self::SyncTarget {
                block,
                certificate,
                target,
            } => block.encode_size() + certificate.encode_size() + target.encode_size(),
            Self::SyncOps(response) => response.encode_size(),
        }
    }
}

impl Read for ToFollower {
    type Cfg = BlockCfg;

    fn read_cfg(buf: &mut impl commonware_codec::Buf, cfg: &BlockCfg) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(Self::Block {
                block: Box::new(Block::read_cfg(buf, cfg)?),
                certificate: Option::<Certificate>::read(buf)?.map(Box::new),
            }),
            1 => {
                let bytes = Vec::<u8>::read_cfg(buf, &(RangeCfg::from(..=MAX_REASON), ()))?;
                Ok(Self::Refused(String::from_utf8_lossy(&bytes).into_owned()))
            }
            2 => Ok(Self::SyncTarget {
                block: Box::new(Block::read_cfg(buf, cfg)?),
                certificate: Box::new(Certificate::read(buf)?),
                target: Box::new(SyncTarget::read(buf)?),
            }),
            // Bounded: no more operations than any request may ask for.
            3 => Ok(Self::SyncOps(Box::new(read_response(buf, MAX_SYNC_OPS)?))),
            t => Err(CodecError::InvalidEnum(t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Copying, Decode, Encode};

    #[test]
    fn messages_round_trip_and_unknown_tags_are_refused() {
        let follow = ToUpstream::Follow {
            genesis: Digest::from([7u8; 32]),
            from: 42,
        };
        let bytes = follow.encode();
        assert_eq!(ToUpstream::decode_cfg(bytes, &()).unwrap(), follow);
        assert!(ToUpstream::decode_cfg(Copying(&[9u8][..]), &()).is_err());
        let refused = ToFollower::Refused("too many followers".into());
        let cfg = BlockCfg { max_txs: 10 };
        match ToFollower::decode_cfg(refused.encode(), &cfg).unwrap() {
            ToFollower::Refused(why) => assert_eq!(why, "too many followers"),
            other => panic!("decoded {other:?}"),
        }
        assert!(ToFollower::decode_cfg(Copying(&[2u8][..]), &cfg).is_err());
        assert!(ToFollower::decode_cfg(Copying(&[3u8][..]), &cfg).is_err());
        assert!(ToFollower::decode_cfg(Copying(&[4u8][..]), &cfg).is_err());
        let sync = ToUpstream::Sync {
            genesis: Digest::from([3u8; 32]),
        };
        assert_eq!(ToUpstream::decode_cfg(sync.encode(), &()).unwrap(), sync);
        let ops = ToUpstream::SyncOps(SyncRequest::Operations {
            size: 100u64.into(),
            start: 7u64.into(),
            max_ops: std::num::NonZeroU64::new(50).unwrap(),
        });
        assert_eq!(ToUpstream::decode_cfg(ops.encode(), &()).unwrap(), ops);
    }

    #[test]
    fn a_submit_batch_over_the_bound_does_not_decode() {
        // A length prefix above the bound is refused before anything is allocated for it.
        let mut bytes = vec![1u8];
        commonware_codec::varint::UInt((MAX_SUBMIT_BATCH + 1) as u64).write(&mut bytes);
        assert!(ToUpstream::decode_cfg(Copying(&bytes[..]), &()).is_err());
    }
}
