//! The crate's error type.

use crate::MAX_VALUE_SIZE;

/// The error type of the underlying qmdb (MMR family).
pub type QmdbError = commonware_storage::qmdb::Error<commonware_storage::mmr::Family>;

/// Errors returned by [`crate::StateDb`], [`crate::Batch`], [`crate::Merkleized`] and
/// [`crate::verify_proof`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value passed to [`crate::Batch::put`] exceeds [`MAX_VALUE_SIZE`].
    #[error("value of {0} bytes exceeds the maximum of {MAX_VALUE_SIZE} bytes")]
    ValueTooLarge(usize),

    /// The batch (or the batch it was built on) is not on the chain of the applied state any
    /// more: a sibling or a different fork was applied, an already-applied ancestor was
    /// re-applied, or an unapplied ancestor was dropped before this batch was merkleized.
    #[error("stale batch: the applied state is not on this batch's chain")]
    StaleBatch,

    /// The batch was created by a different [`crate::StateDb`] instance.
    #[error("batch belongs to a different StateDb instance")]
    ForeignBatch,

    /// The [`crate::StateDb`] that created this batch was closed or dropped.
    #[error("state database is closed")]
    Closed,

    /// A previous write (apply) failed or was cancelled part way; the in-memory handle was
    /// consumed. Everything that was durable is still on disk: drop the [`crate::StateDb`] and
    /// reopen it.
    #[error("state database handle is unusable after a failed or cancelled write; reopen it")]
    Poisoned,

    /// The proof does not authenticate the claimed value (or absence) of the key under the root.
    #[error("invalid state proof")]
    InvalidProof,

    /// Proof bytes could not be decoded.
    #[error("malformed state proof: {0}")]
    MalformedProof(commonware_codec::Error),

    /// Persisted data is not in the format this crate writes.
    #[error("corrupt state database: {0}")]
    Corrupt(&'static str),

    /// State sync failed: a target that does not verify, a source that could not answer, or a
    /// rebuilt state that is not the target's (in words).
    #[error("state sync: {0}")]
    Sync(String),

    /// Any other error from the underlying qmdb / storage layer.
    #[error("storage error: {0}")]
    Storage(QmdbError),
}

impl From<QmdbError> for Error {
    fn from(err: QmdbError) -> Self {
        match err {
            QmdbError::StaleBatch | QmdbError::StaleRead => Self::StaleBatch,
            other => Self::Storage(other),
        }
    }
}
