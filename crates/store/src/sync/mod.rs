//! State sync: serving the applied state to a node that lacks it, and building a [`StateDb`]
//! from what untrusted peers send, every chunk checked by proof.
//!
//! This is commonware-storage's qmdb sync, with two things added that a chain needs:
//!
//! - **A target bound to a trusted root.** qmdb sync verifies operations against the *ops
//!   root* (the root of the operation log), while a block header carries the *canonical root*
//!   (ops root, activity bitmap and grafted tree together). A [`SyncTarget`] carries both and
//!   the qmdb witness that links them; [`SyncTarget::verify`] checks the witness against the
//!   root the caller trusts (a certified block's `state_root`), so every fetched chunk is in
//!   effect checked against that certified root.
//! - **An end check.** [`StateDb::sync`] rebuilds the database from the fetched operations and
//!   refuses the result unless its canonical root is the trusted root and its recorded height
//!   is the target's height.
//!
//! A server ([`SyncServer`]) answers from its applied state under the store's read lock, so it
//! needs no help from whoever owns the [`StateDb`]; a proof at the target's size stays
//! available until the server prunes past the target's first operation (then the request
//! fails and the syncing node asks for a newer target).

use crate::{
    db::{decode_height, Db, QmdbConfig, Shared},
    proof::Family,
    Digest, Error, StateDb, StoreConfig, StoreContext, MAX_VALUE_SIZE,
};
use commonware_codec::{Encode, EncodeSize, Read, ReadExt as _, Write};
use commonware_cryptography::Sha256;
use commonware_storage::{
    mmr::Location,
    qmdb::{
        current::proof::OpsRootWitness,
        sync::{self, Source},
    },
};
use commonware_utils::non_empty_range;

mod peers;
#[cfg(test)]
mod tests;

pub use peers::{PeerSource, SyncPeers};
use std::{
    num::{NonZeroU64, NonZeroUsize},
    sync::Arc,
};

/// One operation of the state's log, as sync moves it.
pub type SyncOp =
    commonware_storage::qmdb::any::ordered::variable::Operation<Family, crate::Key, Vec<u8>>;

/// A request for operations (or for the boundary and its pinned nodes) at a log size.
pub type SyncRequest = sync::Request<Family>;

/// The answer to a [`SyncRequest`]: operations and the proof that they are in the log.
pub type SyncResponse = sync::Response<Family, SyncOp, Digest>;

/// A source of state operations for [`StateDb::sync`] (peers, usually).
pub trait SyncSource: Source<Family = Family, Op = SyncOp, Digest = Digest> + 'static {}
impl<S: Source<Family = Family, Op = SyncOp, Digest = Digest> + 'static> SyncSource for S {}

/// Most operations one request may ask for.
pub const MAX_SYNC_OPS: u64 = 4096;

/// What state a server offers: the applied state at `height`, its canonical `root`, and how
/// to fetch it (ops root, witness, operation range).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncTarget {
    /// Height the state was applied at.
    pub height: u64,
    /// Canonical state root (what the block at `height` carries as its `state_root`).
    pub root: Digest,
    /// Root of the operation log (what every chunk is proved against).
    pub ops_root: Digest,
    /// Links `ops_root` to `root`.
    pub witness: OpsRootWitness<Family, Digest>,
    /// First operation to fetch (qmdb's sync boundary: nothing below is needed).
    pub start: u64,
    /// Number of operations in the log at `height`.
    pub size: u64,
}

impl SyncTarget {
    /// Checks that this target describes the state whose canonical root is `trusted` (a
    /// certified block's `state_root`): the roots match, the witness binds the ops root to it,
    /// and the range is well formed.
    pub fn verify(&self, trusted: &Digest) -> Result<(), Error> {
        if self.root != *trusted {
            return Err(Error::Sync(
                "the target's root is not the certified root".into(),
            ));
        }
        if !self.witness.verify::<Sha256>(&self.ops_root, trusted) {
            return Err(Error::Sync(
                "the witness does not bind the ops root to the certified root".into(),
            ));
        }
        if self.start >= self.size || !Location::new(self.size).is_valid() {
            return Err(Error::Sync(
                "the target's operation range is empty or too big".into(),
            ));
        }
        Ok(())
    }

    /// Whether `response` answers `request` with operations proved against this target's ops
    /// root (what the sync engine checks of every chunk). A node checks the first chunk of
    /// the peer that offered the target with it: once one proof at the target's size verifies,
    /// the target is authenticated end to end, and any later chunk that fails is its sender's
    /// fault, never the offerer's.
    pub fn check(&self, request: &SyncRequest, response: &SyncResponse) -> bool {
        let hasher = commonware_storage::qmdb::hasher::<Sha256>();
        if response.proof().leaves != request.size() || *request.size() != self.size {
            return false;
        }
        match (request, response) {
            (
                SyncRequest::Operations { start, max_ops, .. },
                SyncResponse::Operations { proof, operations },
            ) => {
                if operations.is_empty() || operations.len() as u64 > max_ops.get() {
                    return false;
                }
                let elements: Vec<_> = operations.iter().map(Encode::encode).collect();
                proof.verify_range_inclusion(&hasher, &elements, *start, &self.ops_root)
            }
            (
                SyncRequest::Boundary { start, .. },
                SyncResponse::Boundary {
                    proof,
                    op,
                    pinned_nodes,
                },
            ) => proof.verify_proof_and_pinned_nodes(
                &hasher,
                &[op.encode()],
                *start,
                pinned_nodes,
                &self.ops_root,
            ),
            _ => false,
        }
    }

    fn qmdb(&self) -> sync::Target<Family, Digest> {
        sync::Target::new(
            self.ops_root,
            non_empty_range!(Location::new(self.start), Location::new(self.size)),
        )
    }
}

impl Write for SyncTarget {
    fn write(&self, buf: &mut impl bytes::BufMut) {
        self.height.write(buf);
        self.root.write(buf);
        self.ops_root.write(buf);
        self.witness.write(buf);
        self.start.write(buf);
        self.size.write(buf);
    }
}

impl EncodeSize for SyncTarget {
    fn encode_size(&self) -> usize {
        self.height.encode_size()
            + self.root.encode_size()
            + self.ops_root.encode_size()
            + self.witness.encode_size()
            + self.start.encode_size()
            + self.size.encode_size()
    }
}

impl Read for SyncTarget {
    type Cfg = ();

    fn read_cfg(
        buf: &mut impl commonware_codec::Buf,
        _: &(),
    ) -> Result<Self, commonware_codec::Error> {
        Ok(Self {
            height: u64::read(buf)?,
            root: Digest::read(buf)?,
            ops_root: Digest::read(buf)?,
            witness: OpsRootWitness::read(buf)?,
            start: u64::read(buf)?,
            size: u64::read(buf)?,
        })
    }
}

/// Codec limits of one operation (what the log codec accepts).
fn op_cfg() -> <SyncOp as Read>::Cfg {
    ((), ((..=MAX_VALUE_SIZE).into(), ()))
}

/// Reads a response of at most `max_ops` operations from `buf` (to embed one in a message).
pub fn read_response(
    buf: &mut impl commonware_codec::Buf,
    max_ops: u64,
) -> Result<SyncResponse, commonware_codec::Error> {
    let max_ops = max_ops.min(MAX_SYNC_OPS) as usize;
    SyncResponse::read_cfg(buf, &(max_ops, op_cfg()))
}

/// Decodes a response to a request for at most `max_ops` operations (bounded: a response
/// carries no more than that many operations, each within the value bound).
pub fn decode_response(
    bytes: impl commonware_codec::Buf,
    max_ops: u64,
) -> Result<SyncResponse, commonware_codec::Error> {
    let max_ops = max_ops.min(MAX_SYNC_OPS) as usize;
    commonware_codec::Decode::decode_cfg(bytes, &(max_ops, op_cfg()))
}

/// Serves state sync from a [`StateDb`]'s applied state. Cheap to clone; it reads under the
/// store's read lock and so never waits on the store's owner.
pub struct SyncServer<E: StoreContext> {
    shared: Arc<Shared<E>>,
}

impl<E: StoreContext> Clone for SyncServer<E> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<E: StoreContext> SyncServer<E> {
    /// The applied state as a sync target.
    pub async fn target(&self) -> Result<SyncTarget, Error> {
        let guard = self.shared.db.read().await;
        let db = guard.as_ref().ok_or_else(|| self.shared.unavailable())?;
        let height = decode_height(db.get_metadata().await?)?;
        Ok(SyncTarget {
            height,
            root: db.root(),
            ops_root: db.ops_root(),
            witness: db.ops_root_witness().await?,
            start: *db.sync_boundary(),
            size: *db.bounds().end,
        })
    }

    /// Answers `request`, with fewer operations than asked if the encoded answer would
    /// exceed `max_bytes` (the syncing node accepts any non-empty prefix).
    pub async fn serve(
        &self,
        request: SyncRequest,
        max_bytes: usize,
    ) -> Result<SyncResponse, Error> {
        let mut request = match request {
            SyncRequest::Operations {
                size,
                start,
                max_ops,
            } => SyncRequest::Operations {
                size,
                start,
                max_ops: max_ops.min(NonZeroU64::new(MAX_SYNC_OPS).expect("non-zero")),
            },
            boundary => boundary,
        };
        loop {
            let response = {
                let guard = self.shared.db.read().await;
                let db = guard.as_ref().ok_or_else(|| self.shared.unavailable())?;
                db.serve(request).await?.0
            };
            if response.encode_size() <= max_bytes {
                return Ok(response);
            }
            match request {
                SyncRequest::Operations {
                    size,
                    start,
                    max_ops,
                } if max_ops.get() > 1 => {
                    request = SyncRequest::Operations {
                        size,
                        start,
                        max_ops: NonZeroU64::new(max_ops.get() / 2).expect("above one"),
                    };
                }
                _ => {
                    return Err(Error::Sync(
                        "one operation exceeds the message bound".into(),
                    ))
                }
            }
        }
    }
}

/// How [`StateDb::sync`] fetches.
#[derive(Clone, Debug)]
pub struct SyncTuning {
    /// Requests in flight at once.
    pub max_outstanding_requests: NonZeroUsize,
    /// Operations asked for per request (at most [`MAX_SYNC_OPS`]).
    pub fetch_batch_size: NonZeroU64,
    /// Operations written to the local log at once.
    pub apply_batch_size: NonZeroU64,
}

impl Default for SyncTuning {
    fn default() -> Self {
        Self {
            max_outstanding_requests: NonZeroUsize::new(8).expect("non-zero"),
            fetch_batch_size: NonZeroU64::new(1024).expect("non-zero"),
            apply_batch_size: NonZeroU64::new(4096).expect("non-zero"),
        }
    }
}

impl<E: StoreContext> StateDb<E> {
    /// A server of this store's applied state.
    pub fn sync_server(&self) -> SyncServer<E> {
        SyncServer {
            shared: self.shared.clone(),
        }
    }

    /// Builds the store described by `config` from `source`, to exactly the state of `target`,
    /// which the caller must have checked with [`SyncTarget::verify`] against a root it
    /// trusts. Every chunk is verified against the target's ops root (a chunk that fails is
    /// reported to the source, which may offer another); the rebuilt store must have the
    /// target's canonical root and height, or this fails. What an interrupted sync left in the
    /// partitions is reused only where qmdb can prove it part of the target and is otherwise
    /// discarded (qmdb persists the fetched log when the sync completes, so in practice a sync
    /// cut short starts over).
    pub async fn sync<S: SyncSource>(
        context: E,
        config: StoreConfig,
        target: &SyncTarget,
        source: S,
        tuning: &SyncTuning,
    ) -> Result<Self, Error> {
        let qmdb_config: QmdbConfig = config.qmdb();
        let db: Db<E> = sync::sync(sync::engine::Config {
            context,
            source,
            target: target.qmdb(),
            max_outstanding_requests: tuning.max_outstanding_requests,
            fetch_batch_size: tuning
                .fetch_batch_size
                .min(NonZeroU64::new(MAX_SYNC_OPS).expect("non-zero")),
            apply_batch_size: tuning.apply_batch_size,
            db_config: qmdb_config,
            update_rx: None,
            finish_rx: None,
            reached_target_tx: None,
        })
        .await
        .map_err(|e| Error::Sync(e.to_string()))?;
        if db.root() != target.root {
            return Err(Error::Sync(
                "the synced state's root is not the target's root".into(),
            ));
        }
        let height = decode_height(db.get_metadata().await?)?;
        if height != target.height {
            return Err(Error::Sync(format!(
                "the synced state is at height {height}, not {}",
                target.height
            )));
        }
        let db = db.sync().await?;
        Ok(Self::from_db(db, height, &config))
    }
}

/// Encodes a response (for the wire).
pub fn encode_response(response: &SyncResponse) -> bytes::Bytes {
    response.encode()
}
