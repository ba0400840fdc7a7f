//! What the job server reads from the chain ([`ChainView`]), and the real reader over the
//! node API ([`RpcChain`]).

use futures::future::BoxFuture;
use serde_json::{json, Value};
use unet_renter::lease::LeaseInfo;

/// Why the chain could not be asked.
#[derive(Debug, Clone)]
pub struct ChainUnavailable(pub String);

/// What the job server reads from the chain.
pub trait ChainView: Send + Sync + 'static {
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
    pub fn new(urls: &[String]) -> Self {
        Self {
            clients: urls.iter().map(unet_client::Client::new).collect(),
            next: Default::default(),
        }
    }

    async fn call(&self, method: &str, params: Value) -> Result<Option<Value>, ChainUnavailable> {
        use std::sync::atomic::Ordering;
        let n = self.clients.len().max(1);
        let mut last = String::from("no node configured");
        for _ in 0..n {
            let i = self.next.load(Ordering::Relaxed) % n;
            let Some(c) = self.clients.get(i) else { break };
            match c.call(method, params.clone()).await {
                Ok(v) => return Ok(Some(v)),
                Err(e) if e.code() == Some(-32004) => return Ok(None),
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
            let v = self
                .call("unet_status", json!([]))
                .await?
                .ok_or_else(|| ChainUnavailable("unet_status: not found".into()))?;
            v["chain_id"]
                .as_u64()
                .ok_or_else(|| ChainUnavailable("unet_status has no chain_id".into()))
        })
    }

    fn lease(&self, id: u64) -> BoxFuture<'_, Result<Option<LeaseInfo>, ChainUnavailable>> {
        Box::pin(async move {
            match self.call("unet_getLease", json!({"id": id})).await? {
                None => Ok(None),
                Some(v) => LeaseInfo::from_json(&v)
                    .map(Some)
                    .ok_or_else(|| ChainUnavailable(format!("unet_getLease answer {v}"))),
            }
        })
    }
}
