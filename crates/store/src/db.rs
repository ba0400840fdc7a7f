//! [`StateDb`], speculative [`Batch`]es and their [`Merkleized`] results.

use crate::{
    proof::{Family, ValueEncoding, CHUNK_SIZE},
    Error, Key, StateProof, MAX_VALUE_SIZE,
};
use commonware_cryptography::{sha256::Digest, Sha256};
use commonware_parallel::Sequential;
use commonware_runtime::{
    buffer::paged::{page_size, CacheRef},
    Spawner, BLOB_PAGE_SIZE,
};
use commonware_storage::{
    journal::contiguous::variable::Config as JournalConfig,
    merkle::full::Config as MerkleConfig,
    qmdb::{
        any::ordered::Update,
        current::{self, ordered::variable::Db as QmdbDb, VariableConfig},
        floor::Proportional,
    },
    translator::EightCap,
};
use commonware_utils::{
    sync::{AsyncRwLock, Mutex},
    NZUsize, NZU64,
};
use std::{
    collections::BTreeMap,
    num::{NonZeroU64, NonZeroUsize},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

/// What the runtime context must provide (both the deterministic and the tokio runtime do).
pub trait StoreContext: commonware_storage::Context + Spawner {}
impl<T: commonware_storage::Context + Spawner> StoreContext for T {}

/// The qmdb instance wrapped by [`StateDb`]: `current::ordered::variable` over an MMR, SHA-256,
/// 32-byte activity chunks, an 8-byte ordered key translator, and sequential merkleization.
pub(crate) type Db<E> = QmdbDb<Family, E, Key, Vec<u8>, Sha256, EightCap, CHUNK_SIZE, Sequential>;
type QmdbUpdate = Update<Key, ValueEncoding>;
type QmdbBatch =
    current::batch::UnmerkleizedBatch<Family, Sha256, QmdbUpdate, CHUNK_SIZE, Sequential>;
type QmdbMerkleized =
    current::batch::MerkleizedBatch<Family, Digest, QmdbUpdate, CHUNK_SIZE, Sequential>;

/// Codec configuration of a log operation: (key, (value length bound, byte)).
type LogCodecCfg = ((), (commonware_codec::RangeCfg<usize>, ()));
pub(crate) type QmdbConfig = VariableConfig<EightCap, LogCodecCfg, Sequential>;

/// Storage tuning for [`StateDb::open_with_config`]. [`StateDb::open`] uses [`Self::new`].
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Prefix of every storage partition the store uses (`[A-Za-z0-9_-]+`).
    pub partition_prefix: String,
    /// Number of 4 KiB pages in the read cache shared by the operation log and the Merkle nodes.
    pub page_cache_pages: NonZeroUsize,
    /// Prune operations below qmdb's sync boundary (history no current-state proof needs) every
    /// this many applied batches; `None` never prunes (the log then grows without bound).
    pub prune_interval: Option<NonZeroU64>,
}

impl StoreConfig {
    /// Defaults: a 16 MiB page cache and pruning every 64 applied batches.
    pub fn new(partition_prefix: &str) -> Self {
        Self {
            partition_prefix: partition_prefix.to_string(),
            page_cache_pages: NZUsize!(4096),
            prune_interval: NonZeroU64::new(64),
        }
    }

    pub(crate) fn qmdb(&self) -> QmdbConfig {
        const BUFFER: NonZeroUsize = NZUsize!(1 << 20);
        let p = &self.partition_prefix;
        let page_cache = CacheRef::new(page_size(BLOB_PAGE_SIZE), self.page_cache_pages);
        VariableConfig {
            merkle_config: MerkleConfig {
                journal_partition: format!("{p}-state-merkle"),
                metadata_partition: format!("{p}-state-merkle-meta"),
                items_per_blob: NZU64!(1 << 16),
                write_buffer: BUFFER,
                replay_buffer: BUFFER,
                strategy: Sequential,
                page_cache: page_cache.clone(),
            },
            journal_config: JournalConfig {
                partition: format!("{p}-state-log"),
                items_per_section: NZU64!(1 << 12),
                compression: None,
                codec_config: ((), ((..=MAX_VALUE_SIZE).into(), ())),
                page_cache,
                write_buffer: BUFFER,
                replay_buffer: BUFFER,
            },
            grafted_metadata_partition: format!("{p}-state-grafted-meta"),
            translator: EightCap,
            init_cache: NonZeroUsize::new(1 << 16),
            init_buffer: BUFFER,
            init_concurrency: (),
        }
    }
}

/// State shared by a [`StateDb`] and every batch built from it.
pub(crate) struct Shared<E: StoreContext> {
    /// `None` once closed, or after a failed/cancelled apply consumed the qmdb handle.
    pub(crate) db: AsyncRwLock<Option<Db<E>>>,
    closed: AtomicBool,
}

impl<E: StoreContext> Shared<E> {
    pub(crate) fn unavailable(&self) -> Error {
        if self.closed.load(Ordering::Acquire) {
            Error::Closed
        } else {
            Error::Poisoned
        }
    }
}

/// Decode the height stored as commit metadata (absent on a fresh database: height 0).
pub(crate) fn decode_height(metadata: Option<Vec<u8>>) -> Result<u64, Error> {
    match metadata {
        None => Ok(0),
        Some(bytes) => bytes
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| Error::Corrupt("commit metadata is not an 8-byte height")),
    }
}

/// Authenticated, crash-safe key/value state. See the crate documentation.
pub struct StateDb<E: StoreContext> {
    pub(crate) shared: Arc<Shared<E>>,
    root: Digest,
    height: u64,
    prune_interval: Option<NonZeroU64>,
    applies_since_prune: u64,
}

impl<E: StoreContext> StateDb<E> {
    /// Open (or create) the state stored under `partition_prefix` with default tuning.
    pub async fn open(context: E, partition_prefix: &str) -> Result<Self, Error> {
        Self::open_with_config(context, StoreConfig::new(partition_prefix)).await
    }

    /// Open (or create) the state described by `config`.
    pub async fn open_with_config(context: E, config: StoreConfig) -> Result<Self, Error> {
        let db = Db::init(context, config.qmdb(), None).await?;
        let height = decode_height(db.get_metadata().await?)?;
        tracing::debug!(height, root = ?db.root(), "opened state db");
        Ok(Self::from_db(db, height, &config))
    }

    /// Wraps an opened (or freshly synced) qmdb at `height`.
    pub(crate) fn from_db(db: Db<E>, height: u64, config: &StoreConfig) -> Self {
        let root = db.root();
        Self {
            shared: Arc::new(Shared {
                db: AsyncRwLock::new(Some(db)),
                closed: AtomicBool::new(false),
            }),
            root,
            height,
            prune_interval: config.prune_interval,
            applies_since_prune: 0,
        }
    }

    /// Root of the applied state (equal to [`Merkleized::root`] of the last applied batch).
    pub fn root(&self) -> Digest {
        self.root
    }

    /// Height passed to [`Batch::merkleize`] for the last applied batch (0 for a fresh store).
    pub fn applied_height(&self) -> u64 {
        self.height
    }

    /// Current value of `key` in the applied state.
    pub async fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, Error> {
        let guard = self.shared.db.read().await;
        let db = guard.as_ref().ok_or_else(|| self.shared.unavailable())?;
        Ok(db.get(key).await?)
    }

    /// A new empty batch on top of the applied state.
    pub fn new_batch(&self) -> Batch<E> {
        Batch {
            shared: Arc::clone(&self.shared),
            base: Base::Db(self.root),
            parent: None,
            writes: BTreeMap::new(),
        }
    }

    /// Prove the current value (or absence) of `key` against [`Self::root`].
    pub async fn prove(&self, key: &Key) -> Result<StateProof, Error> {
        let guard = self.shared.db.read().await;
        let db = guard.as_ref().ok_or_else(|| self.shared.unavailable())?;
        match db.get(key).await? {
            Some(value) => {
                let proof = db.key_value_proof(*key).await?;
                Ok(StateProof::Present { value, proof })
            }
            None => Ok(StateProof::Absent(db.exclusion_proof(key).await?)),
        }
    }

    /// Apply `m` (and any unapplied ancestors of it) and make the result durable before
    /// returning. Afterwards [`Self::root`] equals `m.root()` and [`Self::applied_height`]
    /// equals `m.height()`.
    ///
    /// Applying a batch whose root the store already has is a no-op. A batch that is not on the
    /// applied chain (a sibling of an applied batch, an applied batch's ancestor) fails with
    /// [`Error::StaleBatch`] and leaves the store unchanged. If the write itself fails, or this
    /// future is dropped before it completes, the handle becomes unusable
    /// ([`Error::Poisoned`]); reopen the store, which recovers the last durable state.
    pub async fn apply(&mut self, m: &Merkleized<E>) -> Result<(), Error> {
        if !Arc::ptr_eq(&m.inner.shared, &self.shared) {
            return Err(Error::ForeignBatch);
        }
        let mut guard = self.shared.db.write().await;
        let db = guard.take().ok_or_else(|| self.shared.unavailable())?;
        if db.root() == m.root() {
            *guard = Some(db);
            m.inner.release_parent();
            return Ok(());
        }
        if let Err(err) = db.validate_batch(&m.inner.batch) {
            *guard = Some(db);
            return Err(err.into());
        }
        let mut db = db.apply_batch(Arc::clone(&m.inner.batch)).await?;
        self.applies_since_prune += 1;
        if self
            .prune_interval
            .is_some_and(|interval| self.applies_since_prune >= interval.get())
        {
            let boundary = db.sync_boundary();
            db = db.prune(boundary).await?;
            self.applies_since_prune = 0;
        }
        let db = db.sync().await?;
        debug_assert_eq!(db.root(), m.root());
        self.root = db.root();
        self.height = m.inner.height;
        *guard = Some(db);
        drop(guard);
        m.inner.release_parent();
        Ok(())
    }

    /// First retained operation location (test hook to observe pruning).
    #[cfg(test)]
    pub(crate) async fn oldest_retained(&self) -> u64 {
        let guard = self.shared.db.read().await;
        guard.as_ref().map_or(0, |db| *db.bounds().start)
    }

    /// Flush and close the store. Batches still held by the caller then fail with
    /// [`Error::Closed`]. (Dropping the store does the same; every apply is already durable.)
    pub async fn close(self) -> Result<(), Error> {
        self.shared.closed.store(true, Ordering::Release);
        let db = self.shared.db.write().await.take();
        if let Some(db) = db {
            db.sync().await?;
        }
        Ok(())
    }
}

impl<E: StoreContext> Drop for StateDb<E> {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        // Release the storage handles now unless a batch is reading this instant (then the last
        // batch to go releases them). Applied state is already durable.
        if let Ok(mut guard) = self.shared.db.try_write() {
            guard.take();
        }
    }
}

/// What a [`Batch`] is built on.
enum Base {
    /// The applied state with this root (the qmdb batch is created at merkleize time, which
    /// is only allowed while the applied root is still this one).
    Db(Digest),
    /// An unapplied merkleized batch.
    Parent(Box<QmdbBatch>),
}

/// A speculative set of writes on top of the applied state or of an unapplied [`Merkleized`].
/// Reads see this batch's writes, then every unapplied ancestor's, then the applied state.
pub struct Batch<E: StoreContext> {
    shared: Arc<Shared<E>>,
    base: Base,
    /// Keeps the parent (and through it every unapplied ancestor) alive until merkleized.
    parent: Option<Merkleized<E>>,
    writes: BTreeMap<Key, Option<Vec<u8>>>,
}

impl<E: StoreContext> Batch<E> {
    /// Value of `key` as this batch sees it.
    ///
    /// Fails with [`Error::StaleBatch`] once the applied state left this batch's chain.
    pub async fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, Error> {
        if let Some(value) = self.writes.get(key) {
            return Ok(value.clone());
        }
        let guard = self.shared.db.read().await;
        let db = guard.as_ref().ok_or_else(|| self.shared.unavailable())?;
        match &self.base {
            Base::Parent(batch) => Ok(batch.get(key, db).await?),
            Base::Db(root) if *root == db.root() => Ok(db.get(key).await?),
            Base::Db(_) => Err(Error::StaleBatch),
        }
    }

    /// Stage `key = value` (last write of a key wins).
    ///
    /// Fails with [`Error::ValueTooLarge`] (staging nothing) if `value` exceeds
    /// [`MAX_VALUE_SIZE`].
    pub fn put(&mut self, key: Key, value: Vec<u8>) -> Result<(), Error> {
        if value.len() > MAX_VALUE_SIZE {
            return Err(Error::ValueTooLarge(value.len()));
        }
        self.writes.insert(key, Some(value));
        Ok(())
    }

    /// Stage the deletion of `key` (a no-op for a key without a value).
    pub fn delete(&mut self, key: Key) {
        self.writes.insert(key, None);
    }

    /// Number of distinct keys staged in this batch.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether nothing is staged in this batch.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Compute the root the store will have once this batch is applied, recording `height`
    /// (committed with the batch, returned by [`StateDb::applied_height`] after apply).
    ///
    /// Fails with [`Error::StaleBatch`] if the applied state left this batch's chain or an
    /// unapplied ancestor was dropped.
    pub async fn merkleize(self, height: u64) -> Result<Merkleized<E>, Error> {
        let Self {
            shared,
            base,
            parent,
            writes,
        } = self;
        let guard = shared.db.read().await;
        let db = guard.as_ref().ok_or_else(|| shared.unavailable())?;
        let mut batch = match base {
            Base::Db(root) if root == db.root() => db.new_batch(),
            Base::Db(_) => return Err(Error::StaleBatch),
            Base::Parent(batch) => *batch,
        };
        for (key, value) in writes {
            batch = batch.write(key, value);
        }
        let metadata = Some(height.to_be_bytes().to_vec());
        let batch = batch.merkleize(db, metadata, &mut Proportional).await?;
        drop(guard);
        Ok(Merkleized {
            inner: Arc::new(MerkleizedInner {
                shared,
                batch,
                height,
                parent: Mutex::new(parent),
            }),
        })
    }
}

/// A merkleized, not yet applied batch. Cheap to clone (an `Arc`), `Send + Sync + 'static`.
pub struct Merkleized<E: StoreContext> {
    inner: Arc<MerkleizedInner<E>>,
}

impl<E: StoreContext> Clone for Merkleized<E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct MerkleizedInner<E: StoreContext> {
    shared: Arc<Shared<E>>,
    batch: Arc<QmdbMerkleized>,
    height: u64,
    /// Strong link to the unapplied parent (qmdb only keeps a weak one); cleared on apply.
    parent: Mutex<Option<Merkleized<E>>>,
}

impl<E: StoreContext> MerkleizedInner<E> {
    fn release_parent(&self) {
        let parent = self.parent.lock().take();
        drop(parent);
    }
}

impl<E: StoreContext> Drop for MerkleizedInner<E> {
    fn drop(&mut self) {
        // Unlink ancestors iteratively so dropping a long unapplied chain cannot overflow the
        // stack through recursive `Arc` drops.
        let mut next = self.parent.get_mut().take();
        while let Some(merkleized) = next {
            next = match Arc::try_unwrap(merkleized.inner) {
                Ok(mut inner) => inner.parent.get_mut().take(),
                Err(_) => None,
            };
        }
    }
}

impl<E: StoreContext> Merkleized<E> {
    /// The root [`StateDb::root`] will return once this batch is applied.
    pub fn root(&self) -> Digest {
        self.inner.batch.root()
    }

    /// The height given to [`Batch::merkleize`].
    pub fn height(&self) -> u64 {
        self.inner.height
    }

    /// A new empty batch on top of this one (for the next block of the same fork).
    pub fn child(&self) -> Batch<E> {
        Batch {
            shared: Arc::clone(&self.inner.shared),
            base: Base::Parent(Box::new(self.inner.batch.new_batch::<Sha256>())),
            parent: Some(self.clone()),
            writes: BTreeMap::new(),
        }
    }

    /// Value of `key` in the state this batch produces.
    ///
    /// Fails with [`Error::StaleBatch`] once the applied state left this batch's chain.
    pub async fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, Error> {
        let guard = self.inner.shared.db.read().await;
        let db = guard
            .as_ref()
            .ok_or_else(|| self.inner.shared.unavailable())?;
        Ok(self.inner.batch.get(key, db).await?)
    }
}
