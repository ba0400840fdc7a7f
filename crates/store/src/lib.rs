//! UtilityNet authenticated state store.
//!
//! A crash-safe key/value store whose root commits to the *current* value of every key, built
//! on commonware-storage's `qmdb::current::ordered::variable` database (no hand-written Merkle
//! structure). Keys are 32-byte digests ([`Key`]); values are byte strings of at most
//! [`MAX_VALUE_SIZE`] bytes.
//!
//! # API
//!
//! ```text
//! StateDb::open(context, partition_prefix) -> Result<StateDb<E>, Error>      (async)
//! StateDb::open_with_config(context, StoreConfig) -> Result<StateDb<E>, Error> (async)
//! StateDb::root(&self) -> Digest                     root of the applied state
//! StateDb::applied_height(&self) -> u64              height of the last applied batch (0 if fresh)
//! StateDb::get(&self, &Key) -> Result<Option<Vec<u8>>, Error>               (async)
//! StateDb::new_batch(&self) -> Batch<E>              batch on top of the applied state
//! StateDb::apply(&mut self, &Merkleized<E>) -> Result<(), Error>            (async, durable)
//! StateDb::prove(&self, &Key) -> Result<StateProof, Error>                  (async)
//! StateDb::close(self) -> Result<(), Error>                                 (async)
//!
//! Batch::get(&self, &Key) -> Result<Option<Vec<u8>>, Error>                 (async)
//! Batch::put(&mut self, Key, Vec<u8>) -> Result<(), Error>   Err only if the value is too large
//! Batch::delete(&mut self, Key)
//! Batch::len(&self) -> usize / Batch::is_empty(&self) -> bool      staged keys
//! Batch::merkleize(self, height: u64) -> Result<Merkleized<E>, Error>       (async)
//!
//! Merkleized::root(&self) -> Digest      == StateDb::root() once applied (goes in block headers)
//! Merkleized::height(&self) -> u64
//! Merkleized::child(&self) -> Batch<E>   batch for the next block of the same fork
//! Merkleized::get(&self, &Key) -> Result<Option<Vec<u8>>, Error>            (async)
//!
//! verify_proof(&Digest, &Key, &StateProof) -> Result<Option<Vec<u8>>, Error>  (pure)
//! StateProof: Encode + Decode (Cfg = ()), from_bytes / to_bytes
//! ```
//!
//! `E` is any runtime context implementing [`StoreContext`] (storage, clock, metrics, spawner):
//! both `commonware_runtime::deterministic::Context` and `commonware_runtime::tokio::Context`.
//!
//! # Choices
//!
//! - **Ordered, variable-size qmdb.** The *ordered* `current` variant links every active key to
//!   the next one, which is what makes **absence provable** ([`StateProof::Absent`]); the
//!   unordered variant can only prove present keys. Values are `Vec<u8>`, so the variable-size
//!   encoding is used; the log codec rejects values above [`MAX_VALUE_SIZE`], and
//!   [`Batch::put`] enforces the same bound up front so nothing undecodable is ever written.
//! - **Height as commit metadata.** The caller's height is stored as the 8-byte big-endian
//!   metadata of the batch's qmdb commit operation, so it is atomic with the state, committed
//!   to by the root, and read back on open. The same state at two heights has two roots.
//! - **Durability.** [`StateDb::apply`] calls qmdb `sync()` (log, Merkle nodes and bitmap
//!   metadata) before returning: a crash right after it returns loses nothing and reopening
//!   replays no Merkle recovery. Reopening still rebuilds the in-memory key index from the
//!   active part of the log (qmdb always does this).
//! - **Pruning.** Every [`StoreConfig::prune_interval`] applies (default 64) history below
//!   qmdb's sync boundary is pruned; current-state proofs never need it. No historical proofs.
//! - Config: MMR, SHA-256, 32-byte bitmap chunks, `EightCap` ordered translator (keys are
//!   expected to be hashes; the index keeps 8 bytes per key), sequential merkleization, a
//!   shared 16 MiB page cache (4096 pages of 4 KiB), 1 MiB write/replay buffers, 4096 log
//!   operations per section, 65536 Merkle nodes per blob. Changing partitioning fields after
//!   data is written is a format change.
//!
//! # Caveats for callers
//!
//! - **Hold unapplied ancestors.** qmdb links a batch to its parent weakly. A [`Batch`] from
//!   [`Merkleized::child`] and the resulting [`Merkleized`] keep a strong link to their parent
//!   until they are applied, so a chain stays intact as long as its tip is held. Dropping the
//!   tip of a fork releases the fork's unapplied ancestors that nothing else holds.
//! - **Staleness.** Once a batch is applied, its siblings (and anything built on a different
//!   fork, or on an already-applied ancestor) are stale: reads return [`Error::StaleBatch`],
//!   merkleizing and applying them returns [`Error::StaleBatch`] and the store is unchanged.
//!   A batch from [`StateDb::new_batch`] is stale once anything else is applied.
//! - Applying a child directly applies its unapplied ancestors too. Applying a batch whose root
//!   the store already has is a no-op.
//! - A failed or cancelled (future dropped) [`StateDb::apply`] leaves the handle unusable
//!   ([`Error::Poisoned`]): drop it and reopen; the last durable state is recovered.
//! - Merkleizing holds a shared lock and applying an exclusive one; both await I/O.
//! - Drop the [`StateDb`] (or [`StateDb::close`] it) and let in-flight batch operations finish
//!   before reopening the same partitions; held batches then fail with [`Error::Closed`].
// No unsafe code here (the workspace denies it; only unet-sandbox allows it, per item).
#![forbid(unsafe_code)]

mod db;
mod error;
mod proof;
mod sync;
#[cfg(test)]
mod tests;

pub use db::{Batch, Merkleized, StateDb, StoreConfig, StoreContext};
pub use error::{Error, QmdbError};
pub use proof::{verify_proof, AbsenceProof, InclusionProof, StateProof, MAX_PROOF_DIGESTS};
pub use sync::{
    decode_response, encode_response, read_response, PeerSource, SyncOp, SyncPeers, SyncRequest,
    SyncResponse, SyncServer, SyncSource, SyncTarget, SyncTuning, MAX_SYNC_OPS,
};

/// State keys: 32-byte SHA-256 digests.
pub type Key = commonware_cryptography::sha256::Digest;

/// State roots.
pub type Digest = commonware_cryptography::sha256::Digest;

/// Maximum size of a stored value in bytes (64 KiB).
pub const MAX_VALUE_SIZE: usize = 64 * 1024;
