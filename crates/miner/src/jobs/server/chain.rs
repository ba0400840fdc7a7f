//! What the job server reads from the chain ([`ChainView`]), and the real reader over the
//! node API ([`RpcChain`]).

use futures::future::BoxFuture;
use unet_api::{calls, code, params::LeaseParams, Call, NoParams};
use unet_renter::lease::LeaseInfo;

/// Why the chain could not be asked.
#[derive(Debug, Clone)]
pub struct ChainUnavailable(pub String);

/// What the job server reads from the chain.
pub trait ChainView: Send + Sync + 'static {
    /// The chain id (receipts and request signatures name it).
    fn chain_id(&self) -> BoxFuture<'_, Result<u64, ChainUnavailable>>;
    /// `Ok(None)`: no such lease.
    fn lease(&self, id: u64) -> BoxFuture<'_, Result<Option<LeaseInfo>, ChainUnavailable>>;
}

/// The chain through the node API, rotating over several nodes on failure.
pub struct RpcChain {
    clients: Vec<unet_client::Client>,
    next: std::sync::atomic::AtomicUsize,
}

impl RpcChain {
    /// A view over the nodes at `urls`: each call goes to the current node and moves on to the
    /// next when it fails.
    pub fn new(urls: &[String]) -> Self {
        Self {
            clients: urls.iter().map(unet_client::Client::new).collect(),
            next: Default::default(),
        }
    }

    /// One call of the contract, on the current node, moving on to the next on failure.
    /// `Ok(None)`: the node says there is no such thing.
    async fn request<C: Call>(
        &self,
        params: C::Params,
    ) -> Result<Option<C::Result>, ChainUnavailable>
    where
        C::Params: Clone,
    {
        use std::sync::atomic::Ordering;
        let n = self.clients.len().max(1);
        let mut last = String::from("no node configured");
        for _ in 0..n {
            let i = self.next.load(Ordering::Relaxed) % n;
            let Some(c) = self.clients.get(i) else { break };
            match c.request::<C>(params.clone()).await {
                Ok(v) => return Ok(Some(v)),
                Err(e) if e.code() == Some(code::NOT_FOUND) => return Ok(None),
                Err(e) => {
                    last = format!("{}: {e}", c.url());
                    self.next.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Err(ChainUnavailable(last))
    }
}

impl ChainView for RpcChain {
    fn chain_id(&self) -> BoxFuture<'_, Result<u64, ChainUnavailable>> {
        Box::pin(async move {
            self.request::<calls::Status>(NoParams {})
                .await?
                .map(|s| s.chain_id)
                .ok_or_else(|| ChainUnavailable("unet_status: not found".into()))
        })
    }

    fn lease(&self, id: u64) -> BoxFuture<'_, Result<Option<LeaseInfo>, ChainUnavailable>> {
        Box::pin(async move {
            Ok(self
                .request::<calls::GetLease>(LeaseParams { id })
                .await?
                .map(LeaseInfo::from))
        })
    }
}
