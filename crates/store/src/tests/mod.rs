//! Deterministic-runtime tests for the state store (plus one tokio smoke test).

mod durability;
mod proofs;

use crate::{
    verify_proof, Error, Key, Merkleized, StateDb, StateProof, StoreContext, MAX_VALUE_SIZE,
};
use commonware_cryptography::{Hasher as _, Sha256};
use commonware_runtime::{
    deterministic::{self, Context},
    Runner as _, Supervisor as _,
};

pub(super) fn key(i: u64) -> Key {
    Sha256::hash(&[&i.to_be_bytes()])
}

pub(super) fn val(i: u64, version: u8) -> Vec<u8> {
    let mut v = vec![version; (i % 50) as usize + 1];
    v.extend_from_slice(&i.to_le_bytes());
    v
}

pub(super) async fn open(ctx: &Context, label: &'static str, prefix: &str) -> StateDb<Context> {
    StateDb::open(ctx.child(label), prefix).await.unwrap()
}

/// Stage `writes` on `batch`, merkleize at `height`.
pub(super) async fn build<E: StoreContext>(
    mut batch: crate::Batch<E>,
    writes: &[(Key, Option<Vec<u8>>)],
    height: u64,
) -> Merkleized<E> {
    for (k, v) in writes {
        match v {
            Some(v) => batch.put(*k, v.clone()).unwrap(),
            None => batch.delete(*k),
        }
    }
    batch.merkleize(height).await.unwrap()
}

pub(super) fn puts(range: std::ops::Range<u64>, version: u8) -> Vec<(Key, Option<Vec<u8>>)> {
    range.map(|i| (key(i), Some(val(i, version)))).collect()
}

fn assert_send_sync_static<T: Send + Sync + 'static>() {}
fn assert_send<T: Send>(_: &T) {}

#[test]
fn types_are_thread_safe() {
    assert_send_sync_static::<Merkleized<Context>>();
    assert_send_sync_static::<StateProof>();
    assert_send_sync_static::<Error>();
    fn batch_is_send<T: Send + 'static>() {}
    batch_is_send::<crate::Batch<Context>>();
    assert_send_sync_static::<StateDb<Context>>();
}

#[test]
fn put_get_apply_reopen() {
    deterministic::Runner::default().start(|ctx| async move {
        let mut db = open(&ctx, "first", "basic").await;
        let fresh_root = db.root();
        assert_eq!(db.applied_height(), 0);
        assert_eq!(db.get(&key(1)).await.unwrap(), None);

        let mut batch = db.new_batch();
        for i in 0..10 {
            batch.put(key(i), val(i, 1)).unwrap();
        }
        batch.delete(key(99)); // deleting an absent key is a no-op
        batch.put(key(3), val(3, 2)).unwrap(); // last write wins
        assert_eq!(batch.len(), 11);
        assert_eq!(batch.get(&key(3)).await.unwrap(), Some(val(3, 2)));
        assert_eq!(batch.get(&key(99)).await.unwrap(), None);
        assert_eq!(
            db.get(&key(3)).await.unwrap(),
            None,
            "staged writes are not applied"
        );

        let m = batch.merkleize(1).await.unwrap();
        assert_eq!(m.height(), 1);
        assert_ne!(m.root(), fresh_root);
        assert_eq!(m.get(&key(3)).await.unwrap(), Some(val(3, 2)));
        assert_eq!(
            db.root(),
            fresh_root,
            "merkleize does not change the applied state"
        );

        let apply = db.apply(&m);
        assert_send(&apply);
        apply.await.unwrap();
        assert_eq!(db.root(), m.root());
        assert_eq!(db.applied_height(), 1);
        assert_eq!(db.get(&key(0)).await.unwrap(), Some(val(0, 1)));
        assert_eq!(db.get(&key(3)).await.unwrap(), Some(val(3, 2)));
        assert_eq!(db.get(&key(99)).await.unwrap(), None);
        let root1 = db.root();
        drop(db);

        let mut db = open(&ctx, "second", "basic").await;
        assert_eq!(db.root(), root1);
        assert_eq!(db.applied_height(), 1);
        assert_eq!(db.get(&key(3)).await.unwrap(), Some(val(3, 2)));

        // Update, delete, and an empty batch at a later height.
        let m2 = build(
            db.new_batch(),
            &[(key(0), None), (key(1), Some(val(1, 7)))],
            2,
        )
        .await;
        db.apply(&m2).await.unwrap();
        let m3 = db.new_batch().merkleize(3).await.unwrap();
        assert_ne!(
            m3.root(),
            m2.root(),
            "the height is committed to by the root"
        );
        db.apply(&m3).await.unwrap();
        let root3 = db.root();
        db.close().await.unwrap();

        let db = open(&ctx, "third", "basic").await;
        assert_eq!(db.root(), root3);
        assert_eq!(db.applied_height(), 3);
        assert_eq!(db.get(&key(0)).await.unwrap(), None);
        assert_eq!(db.get(&key(1)).await.unwrap(), Some(val(1, 7)));
        assert_eq!(db.get(&key(2)).await.unwrap(), Some(val(2, 1)));
    });
}

#[test]
fn value_size_bound() {
    deterministic::Runner::default().start(|ctx| async move {
        let mut db = open(&ctx, "first", "bound").await;
        let mut batch = db.new_batch();
        let err = batch.put(key(1), vec![0; MAX_VALUE_SIZE + 1]).unwrap_err();
        assert!(matches!(err, Error::ValueTooLarge(n) if n == MAX_VALUE_SIZE + 1));
        assert!(batch.is_empty(), "a rejected put stages nothing");
        batch.put(key(1), vec![0xAB; MAX_VALUE_SIZE]).unwrap();
        batch.put(key(2), Vec::new()).unwrap();
        let m = batch.merkleize(1).await.unwrap();
        db.apply(&m).await.unwrap();
        drop(db);

        let db = open(&ctx, "second", "bound").await;
        assert_eq!(
            db.get(&key(1)).await.unwrap(),
            Some(vec![0xAB; MAX_VALUE_SIZE])
        );
        assert_eq!(db.get(&key(2)).await.unwrap(), Some(Vec::new()));
        let proof = db.prove(&key(1)).await.unwrap();
        let decoded = StateProof::from_bytes(&proof.to_bytes()).unwrap();
        assert_eq!(
            verify_proof(&db.root(), &key(1), &decoded).unwrap(),
            Some(vec![0xAB; MAX_VALUE_SIZE])
        );
    });
}

#[test]
fn speculative_chains_and_stale_siblings() {
    deterministic::Runner::default().start(|ctx| async move {
        let mut db = open(&ctx, "first", "chain").await;
        let genesis = build(db.new_batch(), &puts(0..20, 0), 0).await;
        db.apply(&genesis).await.unwrap();
        let root0 = db.root();

        // Block A, its child B, and a competing sibling A2 with its own child.
        let a = build(
            db.new_batch(),
            &[(key(1), Some(val(1, 1))), (key(100), Some(val(100, 1)))],
            1,
        )
        .await;
        let mut b = a.child();
        assert_eq!(
            b.get(&key(100)).await.unwrap(),
            Some(val(100, 1)),
            "reads through parent"
        );
        assert_eq!(
            b.get(&key(2)).await.unwrap(),
            Some(val(2, 0)),
            "reads through to db"
        );
        b.put(key(2), val(2, 2)).unwrap();
        b.delete(key(100));
        let b = b.merkleize(2).await.unwrap();
        assert_eq!(b.get(&key(100)).await.unwrap(), None);
        assert_eq!(b.get(&key(1)).await.unwrap(), Some(val(1, 1)));

        let a2 = build(db.new_batch(), &[(key(1), Some(val(1, 9)))], 1).await;
        let a2_child = a2.child();
        assert_ne!(a2.root(), a.root());
        // A batch made from the applied state before anything is applied.
        let early = db.new_batch();
        assert_eq!(
            db.root(),
            root0,
            "speculation leaves the applied state alone"
        );

        db.apply(&a).await.unwrap();
        assert_eq!(db.root(), a.root());
        assert_eq!(db.applied_height(), 1);
        db.apply(&b).await.unwrap();
        assert_eq!(db.root(), b.root());
        assert_eq!(db.applied_height(), 2);
        assert_eq!(db.get(&key(2)).await.unwrap(), Some(val(2, 2)));
        assert_eq!(db.get(&key(100)).await.unwrap(), None);

        // The sibling fork is stale everywhere, with clean errors, and the store is untouched.
        assert!(matches!(a2.get(&key(1)).await, Err(Error::StaleBatch)));
        assert!(matches!(
            a2_child.get(&key(1)).await,
            Err(Error::StaleBatch)
        ));
        assert!(matches!(db.apply(&a2).await, Err(Error::StaleBatch)));
        assert!(matches!(
            a2_child.merkleize(2).await,
            Err(Error::StaleBatch)
        ));
        assert!(matches!(early.get(&key(1)).await, Err(Error::StaleBatch)));
        assert!(matches!(early.merkleize(1).await, Err(Error::StaleBatch)));
        // Re-applying an applied ancestor is stale; re-applying the tip is a no-op.
        assert!(matches!(db.apply(&a).await, Err(Error::StaleBatch)));
        db.apply(&b).await.unwrap();
        assert_eq!(db.root(), b.root());
        assert_eq!(db.applied_height(), 2);
        assert_eq!(db.get(&key(1)).await.unwrap(), Some(val(1, 1)));

        // The store keeps working after the rejected batches.
        let c = build(b.child(), &[(key(3), Some(val(3, 3)))], 3).await;
        db.apply(&c).await.unwrap();
        assert_eq!(db.root(), c.root());
        assert_eq!(db.get(&key(3)).await.unwrap(), Some(val(3, 3)));
    });
}

#[test]
fn apply_descendant_directly_after_dropping_ancestors() {
    deterministic::Runner::default().start(|ctx| async move {
        let mut db = open(&ctx, "first", "direct").await;
        let a = build(db.new_batch(), &puts(0..5, 1), 1).await;
        let b_batch = a.child();
        drop(a); // the child batch keeps its parent alive
        let b = build(b_batch, &puts(5..10, 1), 2).await;
        let c_batch = b.child();
        drop(b);
        let c = build(c_batch, &[(key(0), None), (key(7), Some(val(7, 3)))], 3).await;
        let d = build(c.child(), &puts(10..12, 4), 4).await;

        // Apply C directly: A and B are applied with it.
        db.apply(&c).await.unwrap();
        assert_eq!(db.root(), c.root());
        assert_eq!(db.applied_height(), 3);
        assert_eq!(db.get(&key(0)).await.unwrap(), None);
        assert_eq!(db.get(&key(4)).await.unwrap(), Some(val(4, 1)));
        assert_eq!(db.get(&key(7)).await.unwrap(), Some(val(7, 3)));
        db.apply(&d).await.unwrap();
        assert_eq!(db.root(), d.root());
        assert_eq!(db.get(&key(11)).await.unwrap(), Some(val(11, 4)));
    });
}

#[test]
fn roots_are_deterministic_across_instances() {
    deterministic::Runner::default().start(|ctx| async move {
        let mut roots = Vec::new();
        for (label, prefix) in [("one", "det-one"), ("two", "det-two")] {
            let mut db = open(&ctx, label, prefix).await;
            let a = build(db.new_batch(), &puts(0..50, 1), 1).await;
            let b = build(a.child(), &[(key(3), None), (key(60), Some(val(60, 2)))], 2).await;
            db.apply(&b).await.unwrap();
            roots.push((a.root(), b.root(), db.root()));
        }
        assert_eq!(roots[0], roots[1]);
    });
}
