//! Where a node keeps finalized blocks and their finalization certificates once they leave
//! the in-memory window: the API's block and header queries, the seed of an old round, the
//! followers a node serves and the digest of the block the store reflects after a restart all
//! read it through [`History`].
//!
//! A validator's history is marshal's archives. A full node runs no marshal: its history is
//! the [`Followed`] archives, filled by the follower ([`crate::follow::client`]) with the
//! blocks and certificates it verified, and owned by one task reached through a mailbox. A
//! full node that was a validator ([`crate::retire`]) also reads marshal's archives for the
//! heights it finalized as a validator.

use crate::shared::{MarshalMailbox, Scheme};
use commonware_consensus::{simplex::types::Finalization, types::Height};
use commonware_cryptography::Digestible;
use commonware_runtime::{Handle, Spawner};
use commonware_storage::archive::{immutable, Archive, Identifier};
use futures::{
    channel::{mpsc, oneshot},
    SinkExt, StreamExt,
};
use std::sync::Arc;
use unet_store::StoreContext;
use unet_types::{Block, Digest};

/// A finalization certificate of this chain.
pub type Certificate = Finalization<Scheme, Digest>;

/// Finalized blocks and certificates older than the in-memory window.
#[derive(Clone)]
pub enum History {
    /// A validator's: marshal's archives.
    Marshal(MarshalMailbox),
    /// A full node's: what its follower verified and stored.
    Followed(Followed),
}

impl History {
    /// The finalized block at `height`, if held.
    pub async fn block(&self, height: u64) -> Option<Arc<Block>> {
        match self {
            Self::Marshal(m) => m
                .get_block(Height::new(height))
                .await
                .map(|b| b.inner_shared()),
            Self::Followed(f) => f.ask(|reply| Request::Block(height, reply)).await.flatten(),
        }
    }

    /// The finalized block with this digest, if held.
    pub async fn block_by_digest(&self, digest: Digest) -> Option<Arc<Block>> {
        match self {
            Self::Marshal(m) => m.get_block(&digest).await.map(|b| b.inner_shared()),
            Self::Followed(f) => f
                .ask(|reply| Request::BlockByDigest(digest, reply))
                .await
                .flatten(),
        }
    }

    /// The finalization certificate held for `height`. Not every height has one: a
    /// certificate finalizes its block and, through the parent links, every block before it.
    pub async fn finalization(&self, height: u64) -> Option<Certificate> {
        match self {
            Self::Marshal(m) => m.get_finalization(Height::new(height)).await,
            Self::Followed(f) => f
                .ask(|reply| Request::Finalization(height, reply))
                .await
                .flatten(),
        }
    }
}

/// The history archives could not be written (the node stops following rather than serve a
/// history with holes).
#[derive(Debug, thiserror::Error)]
#[error("writing the followed history: {0}")]
pub struct HistoryError(pub String);

enum Request {
    Block(u64, oneshot::Sender<Option<Arc<Block>>>),
    BlockByDigest(Digest, oneshot::Sender<Option<Arc<Block>>>),
    Finalization(u64, oneshot::Sender<Option<Certificate>>),
    /// Blocks of consecutive heights, the last one finalized by the certificate.
    Put {
        blocks: Vec<Arc<Block>>,
        certificate: Box<Certificate>,
        reply: oneshot::Sender<Result<(), HistoryError>>,
    },
}

/// A full node's history: the mailbox of the task that owns its archives.
#[derive(Clone)]
pub struct Followed {
    tx: mpsc::Sender<Request>,
}

/// The archives a full node keeps (the same kinds marshal keeps, under their own names).
pub struct FollowedArchives<E: StoreContext> {
    /// Finalized blocks by height, keyed by digest.
    pub blocks: immutable::Archive<E, Digest, Arc<Block>>,
    /// Finalization certificates by height, keyed by the digest they finalize.
    pub certificates: immutable::Archive<E, Digest, Certificate>,
    /// A retired validator's marshal archives (read only): what the node finalized before
    /// it followed, asked when the followed archives lack a height.
    pub retired: Option<RetiredArchives<E>>,
}

/// The archives marshal kept while the node was a validator.
pub struct RetiredArchives<E: StoreContext> {
    /// Finalized blocks by height, keyed by digest.
    pub blocks: immutable::Archive<E, Digest, Arc<Block>>,
    /// Finalization certificates by height, keyed by the digest they finalize.
    pub certificates: immutable::Archive<E, Digest, Certificate>,
}

impl Followed {
    /// Starts the owner of `archives` on `context`.
    pub fn start<E, S>(context: S, archives: FollowedArchives<E>) -> (Self, Handle<()>)
    where
        E: StoreContext,
        S: Spawner,
    {
        let (tx, mut rx) = mpsc::channel::<Request>(256);
        let handle = context.spawn(move |_| async move {
            let FollowedArchives {
                mut blocks,
                mut certificates,
                retired,
            } = archives;
            while let Some(request) = rx.next().await {
                match request {
                    Request::Block(h, reply) => {
                        let old = retired.as_ref().map(|r| &r.blocks);
                        let _ = reply.send(held(&blocks, old, || Identifier::Index(h)).await);
                    }
                    Request::BlockByDigest(d, reply) => {
                        let old = retired.as_ref().map(|r| &r.blocks);
                        let _ = reply.send(held(&blocks, old, || Identifier::Key(&d)).await);
                    }
                    Request::Finalization(h, reply) => {
                        let old = retired.as_ref().map(|r| &r.certificates);
                        let id = || Identifier::Index(h);
                        let _ = reply.send(held(&certificates, old, id).await);
                    }
                    Request::Put {
                        blocks: new,
                        certificate,
                        reply,
                    } => {
                        let written = put(blocks, certificates, new, *certificate).await;
                        match written {
                            Ok((b, c)) => {
                                (blocks, certificates) = (b, c);
                                let _ = reply.send(Ok(()));
                            }
                            Err(e) => {
                                // The archives were consumed by the failed write: answer
                                // and stop (later requests see a stopped owner).
                                let _ = reply.send(Err(e));
                                return;
                            }
                        }
                    }
                }
            }
        });
        (Self { tx }, handle)
    }

    /// Stores verified blocks of consecutive heights and the certificate of the last one,
    /// durably, before the caller applies them.
    pub async fn put(
        &self,
        blocks: Vec<Arc<Block>>,
        certificate: Certificate,
    ) -> Result<(), HistoryError> {
        self.ask(|reply| Request::Put {
            blocks,
            certificate: Box::new(certificate),
            reply,
        })
        .await
        .unwrap_or_else(|| Err(HistoryError("the history's owner has stopped".into())))
    }

    async fn ask<R>(&self, request: impl FnOnce(oneshot::Sender<R>) -> Request) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        self.tx.clone().send(request(reply)).await.ok()?;
        answer.await.ok()
    }
}

/// The value at `id` in `own`, else in the retired validator's archive `old`.
async fn held<'a, A: Archive<Key = Digest>>(
    own: &'a A,
    old: Option<&'a A>,
    id: impl Fn() -> Identifier<'a, Digest>,
) -> Option<A::Value> {
    if let Some(v) = own.get(id()).await.ok().flatten() {
        return Some(v);
    }
    old?.get(id()).await.ok().flatten()
}

async fn put<E: StoreContext>(
    mut blocks: immutable::Archive<E, Digest, Arc<Block>>,
    certificates: immutable::Archive<E, Digest, Certificate>,
    new: Vec<Arc<Block>>,
    certificate: Certificate,
) -> Result<
    (
        immutable::Archive<E, Digest, Arc<Block>>,
        immutable::Archive<E, Digest, Certificate>,
    ),
    HistoryError,
> {
    let err = |e: commonware_storage::archive::Error| HistoryError(e.to_string());
    let Some(last) = new.last() else {
        return Err(HistoryError("no blocks to store".into()));
    };
    let (height, digest) = (last.height.get(), last.digest());
    for b in &new {
        blocks = blocks
            .put(b.height.get(), b.digest(), b)
            .await
            .map_err(err)?;
    }
    let blocks = blocks.sync().await.map_err(err)?;
    let certificates = certificates
        .put_sync(height, digest, &certificate)
        .await
        .map_err(err)?;
    Ok((blocks, certificates))
}
