//! Reads for the list methods, and their pagination.
//!
//! A list method reads from a [`Snapshot`] of the finalized state, not under the chain's lock
//! (which consensus takes to propose, verify and apply blocks): the lock is held only to take
//! the snapshot. Every read of one snapshot sees the same state; if a block is applied
//! meanwhile the read fails and the call starts over on the new state ([`with_snapshot`]),
//! which is cheap because a call's work is bounded: at most [`unet_api::params::MAX_PAGE`] items, [`MAX_SCAN`]
//! positions examined and about [`MAX_READS`] state reads. What a call did not reach is
//! returned as `next`, the `cursor` of the following call.

use super::{code, ApiState, RpcError};
use crate::shared::Shared;
use commonware_codec::DecodeExt;
use std::{
    future::Future,
    sync::atomic::{AtomicUsize, Ordering},
};
use unet_api::params::PageParams;
use unet_store::{Batch, StoreContext};
use unet_types::{chip::Registry, keys::registry_key, Digest};

type Result<T> = std::result::Result<T, RpcError>;

/// Most positions (ids, list entries) one call examines, matching or not.
pub const MAX_SCAN: u64 = 1_000;
/// State reads after which a call stops at the next item boundary.
pub const MAX_READS: usize = 2_000;

const STALE: &str = "the finalized state advanced during the read; retry";

/// A view of the finalized state at one height.
pub struct Snapshot<E: StoreContext> {
    view: Batch<E>,
    /// Finalized height the snapshot reflects.
    pub height: u64,
    reads: AtomicUsize,
}

impl<E: StoreContext> Snapshot<E> {
    /// The current finalized state (the chain's owner only hands out the view).
    pub async fn take(shared: &Shared<E>) -> Result<Self> {
        let (view, height) = shared
            .chain(|chain| {
                Box::pin(async move { (chain.finalized_view(), chain.applied_height()) })
            })
            .await
            .map_err(|e| RpcError::new(code::INTERNAL, e.to_string()))?;
        Ok(Self {
            view,
            height,
            reads: AtomicUsize::new(0),
        })
    }

    /// State reads so far.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }

    /// Whether the call should stop at the next item boundary.
    pub fn spent(&self) -> bool {
        self.reads() >= MAX_READS
    }

    pub async fn get(&self, key: &Digest) -> Result<Option<Vec<u8>>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.view.get(key).await.map_err(|e| match e {
            unet_store::Error::StaleBatch => RpcError::new(code::INTERNAL, STALE),
            e => RpcError::new(code::INTERNAL, e.to_string()),
        })
    }

    /// An entry, decoded (`None` if absent).
    pub async fn get_decoded<T: DecodeExt<()>>(&self, key: &Digest) -> Result<Option<T>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(b) => T::decode(b).map(Some).map_err(|_| {
                RpcError::new(
                    code::INTERNAL,
                    format!("corrupt entry {}", hex::encode(key)),
                )
            }),
        }
    }

    /// The POCI registry.
    pub async fn registry(&self) -> Result<Registry> {
        Ok(self.get_decoded(&registry_key()).await?.unwrap_or_default())
    }
}

/// Runs `read` on a snapshot of the finalized state, on a new one if a block was applied
/// meanwhile (three tries).
pub async fn with_snapshot<E, F, Fut, T>(state: &ApiState<E>, read: F) -> Result<T>
where
    E: StoreContext,
    F: Fn(Snapshot<E>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match read(Snapshot::take(&state.shared).await?).await {
            Err(e) if e.code == code::INTERNAL && e.message == STALE && tries < 3 => continue,
            r => return r,
        }
    }
}

/// Where a list call starts and how many items it may return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub cursor: u64,
    pub limit: u64,
}

impl Page {
    /// The page a call asks for: `cursor` (default 0) and `limit` (default [`unet_api::params::DEFAULT_PAGE`],
    /// at most [`unet_api::params::MAX_PAGE`]; 0 is refused).
    pub fn of(p: &PageParams) -> Result<Self> {
        let (cursor, limit) = p.resolve().map_err(RpcError::params)?;
        Ok(Self { cursor, limit })
    }
}

/// `next` of a reply: the cursor that continues, or `None` (null) at the end.
pub fn next(position: u64, end: u64) -> Option<u64> {
    (position < end).then_some(position)
}
