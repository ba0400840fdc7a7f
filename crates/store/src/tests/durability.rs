//! Durability, crash recovery, pruning, scale, lifecycle and runtime portability.

use super::{build, key, open, puts, val};
use crate::{verify_proof, Error, StateDb, StateProof, StoreConfig};
use commonware_runtime::{
    deterministic::{self, FaultConfig, PartialWriteMode, WriteConfig},
    Runner as _, Supervisor as _,
};
use commonware_utils::probability;
use std::{collections::BTreeMap, num::NonZeroU64};

#[test]
fn closed_store_rejects_batches() {
    deterministic::Runner::default().start(|ctx| async move {
        let db = open(&ctx, "first", "closed").await;
        let batch = db.new_batch();
        let m = build(db.new_batch(), &puts(0..3, 1), 1).await;
        db.close().await.unwrap();
        assert!(matches!(batch.get(&key(1)).await, Err(Error::Closed)));
        assert!(matches!(m.get(&key(1)).await, Err(Error::Closed)));
        assert!(matches!(m.child().merkleize(2).await, Err(Error::Closed)));

        // Batches of another instance are refused.
        let mut other = open(&ctx, "second", "closed").await;
        let m_other = build(open(&ctx, "third", "closed-b").await.new_batch(), &[], 1).await;
        assert!(matches!(
            other.apply(&m_other).await,
            Err(Error::ForeignBatch)
        ));
        let mine = build(other.new_batch(), &puts(0..2, 1), 1).await;
        other.apply(&mine).await.unwrap();
    });
}

#[test]
fn pruning_keeps_state_proofs_and_pending_batches() {
    deterministic::Runner::default().start(|ctx| async move {
        let mut cfg = StoreConfig::new("prune");
        cfg.prune_interval = NonZeroU64::new(1);
        let mut db = StateDb::open_with_config(ctx.child("first"), cfg.clone())
            .await
            .unwrap();
        let mut pending = None;
        for h in 1..=40u64 {
            // Rewrite the same keys so old operations become inactive and prunable.
            let m = build(db.new_batch(), &puts(0..100, h as u8), h).await;
            if h == 30 {
                // A speculative child built before the next applies (which prune) ...
                pending = Some(build(m.child(), &puts(100..110, 0), h + 1).await);
            }
            if h == 31 {
                // ... is a stale sibling now, and fails cleanly.
                db.apply(&m).await.unwrap();
                let stale = pending.take().unwrap();
                assert!(matches!(stale.get(&key(1)).await, Err(Error::StaleBatch)));
                assert!(matches!(db.apply(&stale).await, Err(Error::StaleBatch)));
                continue;
            }
            db.apply(&m).await.unwrap();
        }
        // A chain across a pruning apply merkleizes and applies correctly.
        let a = build(db.new_batch(), &puts(0..10, 99), 41).await;
        let b = build(a.child(), &puts(10..20, 99), 42).await;
        db.apply(&a).await.unwrap();
        let c = build(b.child(), &[(key(0), None)], 43).await;
        db.apply(&c).await.unwrap();
        assert_eq!(db.root(), c.root());
        assert!(db.oldest_retained().await > 0, "history was pruned");

        let root = db.root();
        for i in [0u64, 5, 15, 50, 99, 100, 500] {
            let proof = db.prove(&key(i)).await.unwrap();
            let expected = db.get(&key(i)).await.unwrap();
            assert_eq!(verify_proof(&root, &key(i), &proof).unwrap(), expected);
        }
        drop(db);
        let db = StateDb::open_with_config(ctx.child("second"), cfg)
            .await
            .unwrap();
        assert_eq!(db.root(), root);
        assert_eq!(db.applied_height(), 43);
        assert_eq!(db.get(&key(15)).await.unwrap(), Some(val(15, 99)));
        assert_eq!(db.get(&key(50)).await.unwrap(), Some(val(50, 40)));
    });
}

#[test]
fn works_on_tokio_runtime() {
    use commonware_runtime::{tokio, Spawner as _};
    let dir = std::env::temp_dir().join(format!("unet-store-tokio-{}", std::process::id()));
    let cfg = tokio::Config::new().with_storage_directory(&dir);
    tokio::Runner::new(cfg).start(|ctx| async move {
        let mut db = StateDb::open(ctx.child("first"), "tokio").await.unwrap();
        // Speculation on another task: batches and their futures are Send.
        let base = db.new_batch();
        let m = ctx
            .child("worker")
            .spawn(move |_| async move {
                let a = build(base, &puts(0..100, 1), 1).await;
                build(a.child(), &[(key(1), None)], 2).await
            })
            .await
            .unwrap();
        db.apply(&m).await.unwrap();
        let root = db.root();
        assert_eq!(root, m.root());
        db.close().await.unwrap();

        let db = StateDb::open(ctx.child("second"), "tokio").await.unwrap();
        assert_eq!(db.root(), root);
        assert_eq!(db.applied_height(), 2);
        let proof = db.prove(&key(1)).await.unwrap();
        assert_eq!(verify_proof(&root, &key(1), &proof).unwrap(), None);
        let proof = db.prove(&key(2)).await.unwrap();
        assert_eq!(
            verify_proof(&root, &key(2), &proof).unwrap(),
            Some(val(2, 1))
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Faults active while the test's last block is applied: torn unsynced writes, and failing
/// writes and syncs.
fn crash_faults(failures: bool) -> FaultConfig {
    let write = WriteConfig {
        failure_rate: if failures {
            probability!(0.05)
        } else {
            probability!(0.0)
        },
        retention_rate: probability!(0.5),
        mode: PartialWriteMode::Subset,
    };
    let faults = FaultConfig::default().write(write);
    if failures {
        faults.sync(probability!(0.25))
    } else {
        faults
    }
}

/// Apply a few blocks, then apply one more under injected storage failures and stop the runtime
/// uncleanly (unsynced writes are torn at random). Recovery must give the last state whose apply
/// returned `Ok`, or the interrupted block's state if it reached disk anyway.
/// Returns whether the last apply succeeded.
fn crash_run(seed: u64) -> bool {
    let cfg = deterministic::Config::default()
        .with_seed(seed)
        .with_storage_fault_config(crash_faults(false));
    let ((durable, pending, applied), checkpoint) = deterministic::Runner::new(cfg)
        .start_and_recover(|ctx| async move {
            let mut db = open(&ctx, "first", "crash").await;
            let mut expected = BTreeMap::new();
            for h in 1..=5u64 {
                let writes: Vec<_> = ((h * 10)..(h * 10 + 40))
                    .map(|i| (key(i % 70), Some(val(i, h as u8))))
                    .chain([(key(h), None)])
                    .collect();
                let m = build(db.new_batch(), &writes, h).await;
                db.apply(&m).await.unwrap();
                for (k, v) in writes {
                    expected.insert(k, v);
                }
            }
            let durable = (db.root(), 5u64, expected);

            // Two speculative blocks; the second is applied (with its parent) under faults.
            let spare = build(db.new_batch(), &puts(200..210, 9), 6).await;
            let m = build(spare.child(), &puts(300..400, 6), 7).await;
            let faults = ctx.storage_fault_config();
            *faults.write() = crash_faults(true);
            let applied = db.apply(&m).await.is_ok();
            *faults.write() = crash_faults(false);
            if applied {
                assert_eq!(db.root(), m.root());
            } else {
                assert!(matches!(db.get(&key(1)).await, Err(Error::Poisoned)));
                assert!(matches!(db.apply(&m).await, Err(Error::Poisoned)));
            }
            (durable, (m.root(), 7u64), applied)
            // The runtime stops here without closing anything.
        });

    deterministic::Runner::from(checkpoint).start(|ctx| async move {
        let (root, height, expected) = durable;
        let mut db = open(&ctx, "second", "crash").await;
        if applied || db.root() == pending.0 {
            assert_eq!(
                db.root(),
                pending.0,
                "seed {seed}: acknowledged apply was lost"
            );
            assert_eq!(db.applied_height(), pending.1);
            assert_eq!(db.get(&key(350)).await.unwrap(), Some(val(350, 6)));
            assert_eq!(db.get(&key(205)).await.unwrap(), Some(val(205, 9)));
        } else {
            assert_eq!(
                db.root(),
                root,
                "seed {seed}: recovered an unexpected state"
            );
            assert_eq!(db.applied_height(), height);
            assert_eq!(db.get(&key(350)).await.unwrap(), None);
            assert_eq!(db.get(&key(205)).await.unwrap(), None);
        }
        for (k, v) in &expected {
            assert_eq!(&db.get(k).await.unwrap(), v);
        }
        let proof = db.prove(&key(20)).await.unwrap();
        assert_eq!(
            verify_proof(&db.root(), &key(20), &proof).unwrap(),
            expected[&key(20)]
        );
        // The recovered store accepts new blocks.
        let next = build(db.new_batch(), &puts(500..510, 1), db.applied_height() + 1).await;
        db.apply(&next).await.unwrap();
        assert_eq!(db.root(), next.root());
    });
    applied
}

#[test]
fn crash_recovery() {
    let outcomes: Vec<bool> = (0..16).map(crash_run).collect();
    // The seeds cover both a failed (poisoned) and a successful final apply.
    assert!(
        outcomes.contains(&true) && outcomes.contains(&false),
        "{outcomes:?}"
    );
}

#[test]
fn ten_thousand_keys() {
    deterministic::Runner::default().start(|ctx| async move {
        const N: u64 = 10_000;
        let mut db = open(&ctx, "first", "big").await;
        // One block with every key, then blocks that update and delete some.
        let m = build(db.new_batch(), &puts(0..N, 1), 1).await;
        db.apply(&m).await.unwrap();
        let mut tip = build(db.new_batch(), &puts(0..N / 10, 2), 2).await;
        for h in 3..=6 {
            let deletes: Vec<_> = (h * 1000..h * 1000 + 100).map(|i| (key(i), None)).collect();
            tip = build(tip.child(), &deletes, h).await;
        }
        db.apply(&tip).await.unwrap();
        let root = db.root();
        assert_eq!(root, tip.root());

        for i in [0u64, 1, 999, 1000, 3050, 4999, 5000, 9_999, N, N + 7] {
            let expected = if i >= N || ((3000..7000).contains(&i) && i % 1000 < 100) {
                None
            } else if i < N / 10 {
                Some(val(i, 2))
            } else {
                Some(val(i, 1))
            };
            assert_eq!(db.get(&key(i)).await.unwrap(), expected, "key {i}");
            let proof = db.prove(&key(i)).await.unwrap();
            assert_eq!(
                verify_proof(&root, &key(i), &proof).unwrap(),
                expected,
                "key {i}"
            );
            assert!(StateProof::from_bytes(&proof.to_bytes()).is_ok());
        }
        drop(db);
        let db = open(&ctx, "second", "big").await;
        assert_eq!(db.root(), root);
        assert_eq!(db.applied_height(), 6);
        assert_eq!(db.get(&key(9_999)).await.unwrap(), Some(val(9_999, 1)));
    });
}
