//! State sync against replay, at the store layer, on the tokio runtime and real disk.
//!
//! A server store is built by `UNET_SYNC_BLOCKS` blocks (default 200) that together create
//! `UNET_SYNC_ACCOUNTS` accounts (default 200,000, 120-byte values) and update
//! `UNET_SYNC_UPDATES` times as many existing ones (default 1: the history holds two writes
//! per live key). Then, into fresh stores:
//!
//! - **replay**: the same blocks applied again (the store work of replaying; a real replay also
//!   downloads signed blocks and re-executes every transaction, so this is a lower bound), bytes
//!   counted as the keys and values written;
//! - **sync**: `StateDb::sync` through `PeerSource` from an in-process peer, every response
//!   encoded and decoded as on the wire, bytes counted as the encoded responses.
//!
//! `cargo bench -p unet-store --bench sync` prints both and their ratio.

use commonware_cryptography::{Hasher as _, Sha256};
use commonware_runtime::{tokio, Runner as _, Supervisor as _};
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Instant,
};
use unet_store::{
    decode_response, encode_response, Error, Key, PeerSource, StateDb, StoreConfig, SyncPeers,
    SyncRequest, SyncResponse, SyncServer, SyncTuning,
};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key(i: u64) -> Key {
    Sha256::hash(&[&i.to_be_bytes()])
}

fn value(i: u64, version: u64) -> Vec<u8> {
    let mut v = vec![(i ^ version) as u8; 120];
    v[..8].copy_from_slice(&version.to_le_bytes());
    v
}

type Block = Vec<(Key, Vec<u8>)>;

/// Block `b` of `blocks`: creates its share of `accounts`, updates `updates` times as many
/// earlier ones.
fn block(b: u64, blocks: u64, accounts: u64, updates: u64) -> Block {
    let per = accounts / blocks;
    let mut writes: Block = (b * per..(b + 1) * per)
        .map(|i| (key(i), value(i, 0)))
        .collect();
    if b > 0 {
        let live = b * per;
        writes.extend((0..per * updates).map(|j| {
            let i = (j * 7_919 + b * 104_729) % live;
            (key(i), value(i, b))
        }));
    }
    writes
}

async fn apply(db: &mut StateDb<tokio::Context>, writes: &Block, height: u64) {
    let mut batch = db.new_batch();
    for (k, v) in writes {
        batch.put(*k, v.clone()).unwrap();
    }
    let m = batch.merkleize(height).await.unwrap();
    db.apply(&m).await.unwrap();
}

struct Peer {
    server: SyncServer<tokio::Context>,
    bytes: AtomicU64,
}

impl SyncPeers for Peer {
    type Peer = ();

    fn peers(&self) -> Vec<()> {
        vec![()]
    }

    async fn fetch(&self, _: &(), request: SyncRequest) -> Result<SyncResponse, Error> {
        let response = self.server.serve(request, 16 << 20).await?;
        let bytes = encode_response(&response);
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        decode_response(bytes, request.max_ops().get()).map_err(|e| Error::Sync(e.to_string()))
    }

    fn misbehaved(&self, _: &()) {
        panic!("an honest peer");
    }
}

fn main() {
    let accounts = env("UNET_SYNC_ACCOUNTS", 200_000);
    let blocks = env("UNET_SYNC_BLOCKS", 200);
    let updates = env("UNET_SYNC_UPDATES", 1);
    let dir = std::env::temp_dir().join(format!("unet-sync-bench-{}", std::process::id()));
    let cfg = tokio::Config::new().with_storage_directory(&dir);
    tokio::Runner::new(cfg).start(|ctx| async move {
        let mut server = StateDb::open_with_config(ctx.child("server"), StoreConfig::new("server"))
            .await
            .unwrap();
        for b in 0..blocks {
            apply(&mut server, &block(b, blocks, accounts, updates), b + 1).await;
        }
        let target = server.sync_server().target().await.unwrap();
        target.verify(&server.root()).unwrap();

        // Replay: the same blocks into a fresh store.
        let started = Instant::now();
        let mut replayed =
            StateDb::open_with_config(ctx.child("replay"), StoreConfig::new("replay"))
                .await
                .unwrap();
        let mut replay_bytes = 0u64;
        for b in 0..blocks {
            let writes = block(b, blocks, accounts, updates);
            replay_bytes += writes.iter().map(|(_, v)| 32 + v.len() as u64).sum::<u64>();
            apply(&mut replayed, &writes, b + 1).await;
        }
        let replay_time = started.elapsed();
        assert_eq!(replayed.root(), server.root());

        // Sync: from the server's state.
        let peer = Arc::new(Peer {
            server: server.sync_server(),
            bytes: AtomicU64::new(0),
        });
        let started = Instant::now();
        let synced = StateDb::sync(
            ctx.child("sync"),
            StoreConfig::new("synced"),
            &target,
            PeerSource::new(ctx.child("source"), peer.clone()),
            &SyncTuning::default(),
        )
        .await
        .unwrap();
        let sync_time = started.elapsed();
        assert_eq!(synced.root(), server.root());
        let sync_bytes = peer.bytes.load(Ordering::Relaxed);

        println!(
            "state: {accounts} accounts after {blocks} blocks ({} writes); log {} operations, \
             sync fetches {}",
            accounts + (accounts - accounts / blocks) * updates,
            target.size,
            target.size - target.start
        );
        println!(
            "replay: {:.2} s, {:.1} MB written",
            replay_time.as_secs_f64(),
            replay_bytes as f64 / 1e6
        );
        println!(
            "sync:   {:.2} s, {:.1} MB fetched",
            sync_time.as_secs_f64(),
            sync_bytes as f64 / 1e6
        );
        println!(
            "sync / replay: time {:.2}, bytes {:.2}",
            sync_time.as_secs_f64() / replay_time.as_secs_f64(),
            sync_bytes as f64 / replay_bytes as f64
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
