//! The chain's owner: one task holds the [`Chain`] (the store, the speculative states of
//! unfinalized blocks, the transaction index) and runs, one at a time and in the order they
//! were sent, the requests that reach it through a [`ChainMailbox`]. A request is a closure
//! given `&mut Chain` for as long as its future runs; its answer comes back on a oneshot.
//! The proposer, the verifier, the finalizer, admission, the epoch tracker and the API all
//! go through the mailbox, so nothing else ever holds the chain, and a caller that gives up
//! (a dropped API request) leaves the request to finish whole rather than half-applied.
//!
//! The owner ends when every mailbox is dropped; a request to a stopped owner is
//! [`ChainStopped`].

use super::Chain;
use commonware_runtime::{Handle, Spawner};
use futures::{
    channel::{mpsc, oneshot},
    future::BoxFuture,
    SinkExt, StreamExt,
};
use unet_store::StoreContext;

/// Requests the mailbox holds before senders wait.
const CAPACITY: usize = 256;

/// A request: what to do with the chain.
type Request<E> = Box<dyn for<'c> FnOnce(&'c mut Chain<E>) -> BoxFuture<'c, ()> + Send>;

/// The chain's owner has stopped (the node is shutting down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the chain's owner has stopped")]
pub struct ChainStopped;

/// A handle on the chain's owner (cheap to clone).
pub struct ChainMailbox<E: StoreContext> {
    tx: mpsc::Sender<Request<E>>,
}

impl<E: StoreContext> Clone for ChainMailbox<E> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

/// Starts the owner of `chain` on `context`.
pub fn start<E, S>(context: S, mut chain: Chain<E>) -> (ChainMailbox<E>, Handle<()>)
where
    E: StoreContext,
    S: Spawner,
{
    let (tx, mut rx) = mpsc::channel::<Request<E>>(CAPACITY);
    let handle = context.spawn(move |_| async move {
        while let Some(request) = rx.next().await {
            request(&mut chain).await;
        }
    });
    (ChainMailbox { tx }, handle)
}

impl<E: StoreContext> ChainMailbox<E> {
    /// Runs `f` on the chain once the requests sent before it are done, and returns what it
    /// returned.
    pub async fn with<R, F>(&self, f: F) -> Result<R, ChainStopped>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut Chain<E>) -> BoxFuture<'c, R> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let request: Request<E> = Box::new(move |chain| {
            Box::pin(async move {
                // The asker may be gone; the request still ran whole.
                let _ = reply.send(f(chain).await);
            })
        });
        self.tx
            .clone()
            .send(request)
            .await
            .map_err(|_| ChainStopped)?;
        answer.await.map_err(|_| ChainStopped)
    }
}
