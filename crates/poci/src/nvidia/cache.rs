//! [`ChainCache`]: a chip's certificate chain verified once, then looked up by fingerprint, so
//! a repeat report (an NVIDIA liveness answer) costs one P-384 verification plus parsing.
//!
//! Validators keep their own cache, filled by whatever each has seen, so the cache must never
//! change a verdict: [`super::verify_cached`] returns exactly what [`super::verify`] returns for
//! the same inputs, cold or warm. That holds because an entry is used only when everything the
//! chain checks depend on is the same or re-checked:
//!
//! - **key**: SHA-256 over the chain's certificates (length-prefixed DER, in order): the same
//!   bytes, so the same parsing, signatures, names, architecture and DICE extension;
//! - **pinned roots**: the entry records a digest of the trust store's NVIDIA roots (fingerprint
//!   and devnet flag, in order); any change to them makes the entry a miss, and the chain is
//!   verified in full again (which root anchors a chain depends on that list);
//! - **time, revocations, devnet switch**: re-checked on every hit in the order the full chain
//!   verification checks them ([`crate::chain::ChainState::recheck`]), so an expired or revoked
//!   certificate fails with the same error, and the entry is evicted;
//! - the report, the nonce, the opaque fields, the FWID comparison and chip revocation are never
//!   cached.
//!
//! Only chains that verified in full are stored (an attacker cannot fill it with garbage), and
//! the number of entries is bounded (first in, first out).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::VerifiedDevice;
use crate::chain::{ChainState, VerifiedChain};
use crate::crypto::sha256;
use crate::error::VerifyError;
use crate::trust::TrustStore;
use crate::types::EvidenceKind;

/// Entries kept by [`ChainCache::default`]: one per chip, enough for a large network's NVIDIA
/// chips on one validator (each entry is a few hundred bytes).
pub const DEFAULT_CAPACITY: usize = 100_000;

struct Entry {
    roots: [u8; 32],
    state: ChainState,
    device: Arc<VerifiedDevice>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<[u8; 32], Entry>,
    order: VecDeque<[u8; 32]>,
    stats: CacheStats,
}

/// Counters, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// lookups answered from the cache
    pub hits: u64,
    /// lookups that verified the chain in full
    pub misses: u64,
    /// entries dropped because a re-check failed (revoked, expired, devnet roots off)
    pub evicted_on_recheck: u64,
}

/// Verified NVIDIA certificate chains by fingerprint (see the module documentation).
pub struct ChainCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl Default for ChainCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for ChainCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

/// The cache key of a chain.
fn chain_fingerprint(chain: &[Vec<u8>]) -> [u8; 32] {
    let mut data = Vec::with_capacity(chain.iter().map(|c| c.len() + 4).sum());
    for cert in chain {
        data.extend_from_slice(&(cert.len() as u32).to_be_bytes());
        data.extend_from_slice(cert);
    }
    sha256(&data)
}

/// Digest of the pinned NVIDIA roots, in the order anchoring tries them.
fn roots_digest(trust: &TrustStore) -> [u8; 32] {
    let mut data = Vec::new();
    for root in trust.roots_for(EvidenceKind::NvidiaSpdm) {
        data.extend_from_slice(&root.fingerprint);
        data.push(u8::from(root.devnet_only));
    }
    sha256(&data)
}

/// A cache hit: re-check it (after the report's signature and nonce, where the full
/// verification checks the chain) with [`Hit::recheck`].
pub(crate) struct Hit<'a> {
    cache: &'a ChainCache,
    key: [u8; 32],
    state: ChainState,
    pub(crate) device: Arc<VerifiedDevice>,
}

impl Hit<'_> {
    /// The chain's verdict now; a failing entry is evicted.
    pub(crate) fn recheck(
        self,
        now: u64,
        trust: &TrustStore,
    ) -> Result<Arc<VerifiedDevice>, VerifyError> {
        match self.state.recheck(now, trust) {
            Ok(()) => Ok(self.device),
            Err(e) => {
                let mut inner = self.cache.lock();
                if inner.map.remove(&self.key).is_some() {
                    inner.order.retain(|k| k != &self.key);
                    inner.stats.evicted_on_recheck += 1;
                }
                Err(e)
            }
        }
    }
}

impl ChainCache {
    /// A cache holding at most `capacity` chains (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave an entry half-written (each update is
        // one insert/remove), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of chains held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no chain is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hit and miss counters.
    pub fn stats(&self) -> CacheStats {
        self.lock().stats
    }

    /// Drop every entry.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.order.clear();
    }

    /// The entry for `chain` under `trust`'s current NVIDIA roots, if any.
    pub(crate) fn lookup(&self, chain: &[Vec<u8>], trust: &TrustStore) -> Option<Hit<'_>> {
        let key = chain_fingerprint(chain);
        let roots = roots_digest(trust);
        let mut inner = self.lock();
        let found = inner
            .map
            .get(&key)
            .filter(|e| e.roots == roots)
            .map(|e| (e.state.clone(), e.device.clone()));
        match found {
            Some((state, device)) => {
                inner.stats.hits += 1;
                Some(Hit {
                    cache: self,
                    key,
                    state,
                    device,
                })
            }
            None => {
                inner.stats.misses += 1;
                None
            }
        }
    }

    /// Store a chain that verified in full.
    pub(crate) fn insert(
        &self,
        chain: &[Vec<u8>],
        verified: &VerifiedChain,
        device: Arc<VerifiedDevice>,
        trust: &TrustStore,
    ) {
        let key = chain_fingerprint(chain);
        let entry = Entry {
            roots: roots_digest(trust),
            state: verified.state(),
            device,
        };
        let mut inner = self.lock();
        if inner.map.insert(key, entry).is_none() {
            inner.order.push_back(key);
        }
        while inner.map.len() > self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.map.remove(&old);
                }
                None => break,
            }
        }
    }
}
