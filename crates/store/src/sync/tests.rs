//! State sync: a node rebuilds a pruned server's state from proofs, lying peers are caught and
//! replaced, a wrong target is refused, and an interrupted sync does not break the next one.

use super::{decode_response, encode_response, PeerSource, SyncOp, SyncPeers, SyncTarget};
use crate::{
    tests::{build, key, puts},
    Error, Key, StateDb, StoreConfig, SyncRequest, SyncResponse, SyncServer, SyncTuning,
};
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_runtime::{
    deterministic::{self, Context},
    Runner as _, Supervisor as _,
};
use std::{
    num::{NonZeroU64, NonZeroUsize},
    sync::{Arc, Mutex},
};

/// How a test peer behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behavior {
    Honest,
    /// Changes every operation it sends (the proof then fails).
    Tamper,
    /// Answers this many requests, then errors on every one.
    FailAfter(usize),
}

struct TestPeers {
    server: SyncServer<Context>,
    peers: Vec<(&'static str, Behavior)>,
    served: Mutex<Vec<usize>>,
    misbehaved: Mutex<Vec<&'static str>>,
}

impl TestPeers {
    fn new(server: SyncServer<Context>, peers: Vec<(&'static str, Behavior)>) -> Arc<Self> {
        Arc::new(Self {
            server,
            served: Mutex::new(vec![0; peers.len()]),
            peers,
            misbehaved: Mutex::new(Vec::new()),
        })
    }

    fn misbehaved(&self) -> Vec<&'static str> {
        self.misbehaved.lock().unwrap().clone()
    }
}

fn tamper(op: SyncOp) -> SyncOp {
    match op {
        SyncOp::Update(mut update) => {
            update.value.push(0xff);
            SyncOp::Update(update)
        }
        SyncOp::Delete(k) => SyncOp::CommitFloor(Some(k.as_ref().to_vec()), 0u64.into()),
        SyncOp::CommitFloor(value, floor) => {
            let mut value = value.unwrap_or_default();
            value.push(1);
            SyncOp::CommitFloor(Some(value), floor)
        }
    }
}

impl SyncPeers for TestPeers {
    type Peer = usize;

    fn peers(&self) -> Vec<usize> {
        (0..self.peers.len()).collect()
    }

    async fn fetch(&self, peer: &usize, request: SyncRequest) -> Result<SyncResponse, Error> {
        let behavior = self.peers[*peer].1;
        let served = {
            let mut served = self.served.lock().unwrap();
            served[*peer] += 1;
            served[*peer]
        };
        if let Behavior::FailAfter(n) = behavior {
            if served > n {
                return Err(Error::Sync("peer gone".into()));
            }
        }
        let response = self.server.serve(request, 1 << 20).await?;
        // Every answer crosses the wire codec, as in the node.
        let response = decode_response(encode_response(&response), request.max_ops().get())
            .map_err(|e| Error::Sync(e.to_string()))?;
        if behavior != Behavior::Tamper {
            return Ok(response);
        }
        Ok(match response {
            SyncResponse::Operations { proof, operations } => SyncResponse::Operations {
                proof,
                operations: operations.into_iter().map(tamper).collect(),
            },
            SyncResponse::Boundary {
                proof,
                op,
                pinned_nodes,
            } => SyncResponse::Boundary {
                proof,
                op: tamper(op),
                pinned_nodes,
            },
        })
    }

    fn misbehaved(&self, peer: &usize) {
        self.misbehaved.lock().unwrap().push(self.peers[*peer].0);
    }
}

fn pruning(prefix: &str) -> StoreConfig {
    let mut config = StoreConfig::new(prefix);
    config.prune_interval = NonZeroU64::new(1);
    config
}

fn small_batches() -> SyncTuning {
    SyncTuning {
        max_outstanding_requests: NonZeroUsize::new(3).unwrap(),
        fetch_batch_size: NonZeroU64::new(300).unwrap(),
        apply_batch_size: NonZeroU64::new(50).unwrap(),
    }
}

/// A pruned server at height 40: keys rewritten, deleted and added across blocks.
async fn server(ctx: &Context) -> StateDb<Context> {
    let mut db = StateDb::open_with_config(ctx.child("server"), pruning("server"))
        .await
        .unwrap();
    for h in 1..=40u64 {
        let mut writes = puts(0..150, h as u8);
        writes.extend(puts(100 + h * 5..105 + h * 5, 0));
        if h % 3 == 0 {
            writes.push((key(100 + (h - 1) * 5), None));
        }
        let m = build(db.new_batch(), &writes, h).await;
        db.apply(&m).await.unwrap();
    }
    assert!(db.oldest_retained().await > 0, "the server pruned history");
    db
}

fn all_keys() -> impl Iterator<Item = Key> {
    (0..320).map(key)
}

async fn assert_same(a: &StateDb<Context>, b: &StateDb<Context>) {
    assert_eq!(a.root(), b.root());
    assert_eq!(a.applied_height(), b.applied_height());
    for k in all_keys() {
        assert_eq!(a.get(&k).await.unwrap(), b.get(&k).await.unwrap());
    }
}

#[test]
fn sync_rebuilds_a_pruned_state_that_then_follows_the_chain() {
    deterministic::Runner::default().start(|ctx| async move {
        let mut source_db = server(&ctx).await;
        let target = source_db.sync_server().target().await.unwrap();
        assert_eq!(target.height, 40);
        assert!(
            target.start > 0,
            "nothing below the sync boundary is fetched"
        );
        target.verify(&source_db.root()).unwrap();

        let peers = TestPeers::new(
            source_db.sync_server(),
            vec![("a", Behavior::Honest), ("b", Behavior::Honest)],
        );
        let source = PeerSource::new(ctx.child("source"), peers.clone());
        let mut synced = StateDb::sync(
            ctx.child("client"),
            pruning("client"),
            &target,
            source,
            &small_batches(),
        )
        .await
        .unwrap();
        assert_same(&source_db, &synced).await;
        let served = peers.served.lock().unwrap().clone();
        assert!(
            served.iter().all(|n| *n > 0),
            "requests spread over peers: {served:?}"
        );
        assert!(peers.misbehaved().is_empty());

        // Both apply the next blocks to the same roots: the synced store is a full replica.
        for h in 41..=45u64 {
            let writes = puts(h..h + 40, h as u8);
            let a = build(source_db.new_batch(), &writes, h).await;
            let b = build(synced.new_batch(), &writes, h).await;
            assert_eq!(a.root(), b.root(), "height {h}");
            source_db.apply(&a).await.unwrap();
            synced.apply(&b).await.unwrap();
        }
        assert_same(&source_db, &synced).await;

        // And it survives a restart.
        drop(synced);
        let reopened = StateDb::open_with_config(ctx.child("reopened"), pruning("client"))
            .await
            .unwrap();
        assert_same(&source_db, &reopened).await;
    });
}

#[test]
fn a_lying_peer_is_reported_and_replaced() {
    deterministic::Runner::default().start(|ctx| async move {
        let source_db = server(&ctx).await;
        let target = source_db.sync_server().target().await.unwrap();
        let peers = TestPeers::new(
            source_db.sync_server(),
            vec![("liar", Behavior::Tamper), ("honest", Behavior::Honest)],
        );
        let synced = StateDb::sync(
            ctx.child("client"),
            pruning("client"),
            &target,
            PeerSource::new(ctx.child("source"), peers.clone()),
            &small_batches(),
        )
        .await
        .unwrap();
        assert_same(&source_db, &synced).await;
        let misbehaved = peers.misbehaved();
        assert!(!misbehaved.is_empty(), "the tampered chunks were caught");
        assert!(misbehaved.iter().all(|p| *p == "liar"), "{misbehaved:?}");
    });
}

#[test]
fn only_liars_fail_the_sync() {
    deterministic::Runner::default().start(|ctx| async move {
        let source_db = server(&ctx).await;
        let target = source_db.sync_server().target().await.unwrap();
        let peers = TestPeers::new(
            source_db.sync_server(),
            vec![("x", Behavior::Tamper), ("y", Behavior::Tamper)],
        );
        let result = StateDb::sync(
            ctx.child("client"),
            pruning("client"),
            &target,
            PeerSource::new(ctx.child("source"), peers.clone()),
            &small_batches(),
        )
        .await;
        assert!(matches!(result, Err(Error::Sync(_))));
        assert!(peers.misbehaved().len() >= 2);
    });
}

#[test]
fn a_sync_cut_short_leaves_nothing_that_breaks_the_next() {
    deterministic::Runner::default().start(|ctx| async move {
        // About 3 MB of state, so part of the log reaches storage before the sync is cut.
        let mut source_db = StateDb::open_with_config(ctx.child("server"), pruning("server"))
            .await
            .unwrap();
        for h in 1..=3u64 {
            let writes: Vec<_> = (h * 1000..h * 1000 + 1000)
                .map(|i| (key(i), Some(vec![h as u8; 1000])))
                .collect();
            let m = build(source_db.new_batch(), &writes, h).await;
            source_db.apply(&m).await.unwrap();
        }
        let target = source_db.sync_server().target().await.unwrap();
        let tuning = SyncTuning {
            max_outstanding_requests: NonZeroUsize::new(1).unwrap(),
            fetch_batch_size: NonZeroU64::new(100).unwrap(),
            apply_batch_size: NonZeroU64::new(100).unwrap(),
        };
        let full = (target.size - target.start).div_ceil(100) as usize;
        // The only peer goes away after about two thirds.
        let flaky = TestPeers::new(
            source_db.sync_server(),
            vec![("flaky", Behavior::FailAfter(full * 2 / 3))],
        );
        let result = StateDb::sync(
            ctx.child("first"),
            pruning("client"),
            &target,
            PeerSource::new(ctx.child("source"), flaky),
            &tuning,
        )
        .await;
        assert!(matches!(result, Err(Error::Sync(_))));

        // A second run on the same partitions (what the first left there is reused or
        // discarded, never trusted) ends at the target.
        let honest = TestPeers::new(source_db.sync_server(), vec![("honest", Behavior::Honest)]);
        let synced = StateDb::sync(
            ctx.child("second"),
            pruning("client"),
            &target,
            PeerSource::new(ctx.child("source2"), honest.clone()),
            &tuning,
        )
        .await
        .unwrap();
        assert_eq!(synced.root(), source_db.root());
        for i in 1000..4000 {
            assert_eq!(
                synced.get(&key(i)).await.unwrap(),
                source_db.get(&key(i)).await.unwrap()
            );
        }
    });
}

#[test]
fn a_wrong_target_is_refused() {
    deterministic::Runner::default().start(|ctx| async move {
        let source_db = server(&ctx).await;
        let target = source_db.sync_server().target().await.unwrap();
        let root = source_db.root();
        target.verify(&root).unwrap();

        // The target's codec round-trips.
        let decoded = SyncTarget::decode(target.encode()).unwrap();
        assert_eq!(decoded, target);

        // Claims about another root.
        assert!(target.verify(&key(1)).is_err());
        // The right root, but an ops root the witness does not bind to it.
        let mut forged = target.clone();
        forged.ops_root = key(2);
        assert!(forged.verify(&root).is_err());
        // A witness from another state.
        let mut other = StateDb::open(ctx.child("other"), "other").await.unwrap();
        let m = build(other.new_batch(), &puts(0..5, 1), 1).await;
        other.apply(&m).await.unwrap();
        let other_target = other.sync_server().target().await.unwrap();
        let mut forged = target.clone();
        forged.witness = other_target.witness;
        assert!(forged.verify(&root).is_err());
        // An empty or impossible range.
        let mut forged = target.clone();
        forged.start = forged.size;
        assert!(forged.verify(&root).is_err());
        let mut forged = target.clone();
        forged.size = u64::MAX;
        assert!(forged.verify(&root).is_err());

        // The offerer's first chunk authenticates the target; a wrong size does not pass.
        let boundary = SyncRequest::Boundary {
            size: target.size.into(),
            start: target.start.into(),
        };
        let response = source_db
            .sync_server()
            .serve(boundary, 1 << 20)
            .await
            .unwrap();
        assert!(target.check(&boundary, &response));
        let SyncResponse::Boundary {
            proof,
            op,
            pinned_nodes,
        } = response.clone()
        else {
            panic!("a boundary response");
        };
        let tampered = SyncResponse::Boundary {
            proof,
            op: tamper(op),
            pinned_nodes,
        };
        assert!(!target.check(&boundary, &tampered));
        // An offer whose size is not its ops root's fails whatever the chunk.
        let mut smaller = target.clone();
        smaller.size -= 1;
        let at_smaller = SyncRequest::Boundary {
            size: smaller.size.into(),
            start: smaller.start.into(),
        };
        let mut claimed = response.clone();
        if let SyncResponse::Boundary { proof, .. } = &mut claimed {
            proof.leaves = smaller.size.into();
        }
        assert!(!smaller.check(&at_smaller, &claimed));

        // Synced to the right ops root but claiming another height: refused at the end.
        let mut lying_height = target.clone();
        lying_height.height += 1;
        let peers = TestPeers::new(source_db.sync_server(), vec![("a", Behavior::Honest)]);
        let result = StateDb::sync(
            ctx.child("client"),
            pruning("client"),
            &lying_height,
            PeerSource::new(ctx.child("source"), peers),
            &small_batches(),
        )
        .await;
        assert!(matches!(result, Err(Error::Sync(_))));
    });
}

#[test]
fn responses_are_bounded() {
    deterministic::Runner::default().start(|ctx| async move {
        let source_db = server(&ctx).await;
        let target = source_db.sync_server().target().await.unwrap();
        let server = source_db.sync_server();
        let request = SyncRequest::Operations {
            size: target.size.into(),
            start: target.start.into(),
            max_ops: NonZeroU64::new(64).unwrap(),
        };
        let response = server.serve(request, 1 << 20).await.unwrap();
        let bytes = encode_response(&response);
        // A response with more operations than asked for does not decode.
        assert!(decode_response(bytes.clone(), 63).is_err());
        assert!(decode_response(bytes.clone(), 64).is_ok());
        // A small byte budget gets a shorter (still valid) prefix.
        let small = server.serve(request, bytes.len() / 3).await.unwrap();
        let SyncResponse::Operations { operations, .. } = &small else {
            panic!("operations expected");
        };
        assert!(!operations.is_empty() && operations.len() < 64);
        assert!(encode_response(&small).len() <= bytes.len() / 3);
        // Hostile requests get errors, never a panic: beyond the log, start past the size,
        // before the pruned floor, at the largest location.
        let end = target.size;
        for (size, start) in [
            (end + 1, target.start),
            (end, end),
            (end, end + 5),
            (end, 0),
            (u64::MAX >> 2, 0),
            (u64::MAX >> 2, u64::MAX >> 3),
        ] {
            for request in [
                SyncRequest::Operations {
                    size: size.into(),
                    start: start.into(),
                    max_ops: NonZeroU64::new(u64::MAX).unwrap(),
                },
                SyncRequest::Boundary {
                    size: size.into(),
                    start: start.into(),
                },
            ] {
                assert!(server.serve(request, 1 << 20).await.is_err(), "{request:?}");
            }
        }
        // Garbage never panics.
        for len in [0, 1, 7, 100] {
            assert!(decode_response(bytes.slice(..len.min(bytes.len())), 64).is_err());
        }
    });
}
