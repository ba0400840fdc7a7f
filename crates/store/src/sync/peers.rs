//! A [`Source`] over several untrusted peers: each request goes to one peer (round robin), and a
//! response whose proof fails is reported against that peer and replaced by another peer's
//! answer, so one lying peer costs a retry, never the sync.

use super::{SyncOp, SyncRequest, SyncResponse};
use crate::{proof::Family, Digest, Error};
use commonware_runtime::{Spawner, Supervisor};
use commonware_storage::qmdb::sync::{
    source::{self, Feedback},
    Source,
};
use commonware_utils::channel::{mpsc, oneshot};
use std::{
    future::Future,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

/// The peers a node syncs from, and how to ask one of them.
pub trait SyncPeers: Send + Sync + 'static {
    /// Names a peer.
    type Peer: Clone + Send + Sync + std::fmt::Debug + 'static;

    /// Peers to ask, in no particular order (asked round robin). Consulted on every request,
    /// so a peer dropped here (benched, disconnected) is no longer asked.
    fn peers(&self) -> Vec<Self::Peer>;

    /// Asks `peer` for `request`. An error (timeout, disconnect, refusal) moves on to the next
    /// peer; it is not misbehavior.
    fn fetch(
        &self,
        peer: &Self::Peer,
        request: SyncRequest,
    ) -> impl Future<Output = Result<SyncResponse, Error>> + Send;

    /// `peer` answered with a response whose proof does not verify against the target:
    /// provably faulty (honest peers only send what verifies).
    fn misbehaved(&self, peer: &Self::Peer);
}

/// A [`Source`] that spreads requests over [`SyncPeers`] and falls back to another peer when
/// one fails or lies.
pub struct PeerSource<E, P> {
    context: E,
    peers: Arc<P>,
    next: Arc<AtomicUsize>,
}

impl<E: Spawner + Supervisor, P: SyncPeers> PeerSource<E, P> {
    /// A source over `peers`; `context` spawns the tasks that fetch replacement answers.
    pub fn new(context: E, peers: Arc<P>) -> Self {
        Self {
            context,
            peers,
            next: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// Asks the peers after `*cursor` in turn (each at most once, counting from `first`) until one
/// answers; returns the answer and who gave it.
async fn ask_next<P: SyncPeers>(
    peers: &P,
    request: SyncRequest,
    order: &[P::Peer],
    cursor: &mut usize,
) -> Option<(SyncResponse, P::Peer)> {
    while *cursor < order.len() {
        let peer = order[*cursor].clone();
        *cursor += 1;
        match peers.fetch(&peer, request).await {
            Ok(response) => return Some((response, peer)),
            Err(err) => tracing::debug!(?peer, %err, "sync peer did not answer"),
        }
    }
    None
}

type Candidate = (SyncResponse, oneshot::Sender<bool>);

impl<E, P> Source for PeerSource<E, P>
where
    E: Spawner + Supervisor + Send + Sync + 'static,
    P: SyncPeers,
{
    type Family = Family;
    type Digest = Digest;
    type Op = SyncOp;
    type Error = Error;

    async fn serve(&self, request: SyncRequest) -> source::Result<Self> {
        let mut order = self.peers.peers();
        if order.is_empty() {
            return Err(Error::Sync("no peer to sync from".into()));
        }
        let first = self.next.fetch_add(1, Ordering::Relaxed) % order.len();
        order.rotate_left(first);
        let mut cursor = 0;
        let Some((response, mut peer)) = ask_next(&*self.peers, request, &order, &mut cursor).await
        else {
            return Err(Error::Sync("no peer answered the sync request".into()));
        };
        // The engine reports whether the proof verified; on a rejection, the peer that sent it
        // is reported and the next peer's answer is offered instead.
        let (verdict_tx, mut verdict_rx) = oneshot::channel::<bool>();
        let (candidate_tx, candidate_rx) = mpsc::channel::<Candidate>(1);
        let peers = self.peers.clone();
        self.context
            .child("sync_fallback")
            .spawn(move |_| async move {
                loop {
                    // Accepted, or the request was dropped: done.
                    if verdict_rx.await.unwrap_or(true) {
                        return;
                    }
                    peers.misbehaved(&peer);
                    let Some((response, next)) =
                        ask_next(&*peers, request, &order, &mut cursor).await
                    else {
                        return; // No one else: the engine's wait ends with no candidate.
                    };
                    peer = next;
                    let (tx, rx) = oneshot::channel();
                    if candidate_tx.send((response, tx)).await.is_err() {
                        return;
                    }
                    verdict_rx = rx;
                }
            });
        Ok((response, Some(Feedback::new(verdict_tx, candidate_rx))))
    }
}
