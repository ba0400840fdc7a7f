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

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_runtime::{deterministic, Runner as _};
    use unet_types::Digest;

    /// The chain's owner runs requests whole and in the order they were sent: a request
    /// that waits midway (as one awaiting storage does) still finishes before the next one
    /// sees the chain, and a stopped owner answers `ChainStopped` instead of hanging.
    #[test]
    fn the_owner_runs_requests_whole_and_in_order() {
        use commonware_runtime::{Clock, Spawner, Supervisor};
        deterministic::Runner::default().start(|ctx| async move {
            let chain = Chain::open(
                ctx.child("state"),
                "owner",
                super::super::tests::genesis(&[]),
            )
            .await
            .unwrap();
            let (owner, handle) = start(ctx.child("owner"), chain);
            let marked = Digest::from([9u8; 32]);
            let (first, second) = (owner.clone(), owner.clone());
            let clock = ctx.child("clock");
            let writer = ctx.child("writer").spawn(move |_| async move {
                first
                    .with(move |c| {
                        Box::pin(async move {
                            // Half the change, a wait, the other half.
                            c.set_applied(Digest::from([1u8; 32]));
                            clock.sleep(std::time::Duration::from_millis(20)).await;
                            c.set_applied(marked);
                        })
                    })
                    .await
            });
            // Sent after the writer's request (which is waiting midway by now).
            ctx.sleep(std::time::Duration::from_millis(5)).await;
            let seen = second
                .with(|c| Box::pin(async move { c.applied_digest() }))
                .await
                .unwrap();
            assert_eq!(seen, marked);
            writer.await.unwrap().unwrap();
            handle.abort();
            let _ = handle.await;
            let stopped = owner
                .with(|c| Box::pin(async move { c.applied_height() }))
                .await;
            assert_eq!(stopped, Err(ChainStopped));
        });
    }
}
