//! `/metrics`: Prometheus text of the miner's gauges and counters.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};
use std::{
    net::SocketAddr,
    sync::{atomic::AtomicU64, Arc, Mutex},
};

/// The miner's metrics.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Chips this miner manages.
    pub chips: Gauge,
    /// Chips registered on chain to this miner's owner.
    pub chips_registered: Gauge,
    /// Chips Online on chain.
    pub chips_online: Gauge,
    /// Chips Unresponsive on chain (missed a challenge).
    pub chips_unresponsive: Gauge,
    /// Chips revoked by governance.
    pub chips_revoked: Gauge,
    /// Chips registered to another owner (transferred away).
    pub chips_foreign: Gauge,
    /// Challenges answered in finalized transactions.
    pub challenges_answered: Counter,
    /// Challenges of this miner's chips whose window closed without an answer.
    pub challenges_missed: Counter,
    /// Chips registered by this miner.
    pub registrations: Counter,
    /// Liveness transactions finalized.
    pub liveness_txs: Counter,
    /// Transactions of this miner finalized with a failed receipt.
    pub failed_txs: Counter,
    /// WebSocket reconnections to the node.
    pub reconnects: Counter,
    /// Last finalized height processed.
    pub finalized_height: Gauge,
    /// Sum over this miner's chips of the rewards paid to date, in UNC.
    pub rewards_earned_unc: Gauge<f64, AtomicU64>,
    registry: Arc<Mutex<Option<Registry>>>,
}

impl Metrics {
    /// The metrics, registered under the `unet_miner` prefix.
    pub fn new() -> Self {
        let m = Self::default();
        let mut r = Registry::with_prefix("unet_miner");
        r.register("chips", "Chips this miner manages", m.chips.clone());
        r.register(
            "chips_registered",
            "Chips of this miner registered on chain to its owner",
            m.chips_registered.clone(),
        );
        r.register(
            "chips_online",
            "Chips Online on chain",
            m.chips_online.clone(),
        );
        r.register(
            "chips_unresponsive",
            "Chips Unresponsive on chain (missed a challenge)",
            m.chips_unresponsive.clone(),
        );
        r.register(
            "chips_revoked",
            "Chips revoked by governance",
            m.chips_revoked.clone(),
        );
        r.register(
            "chips_foreign",
            "Chips registered to another owner (transferred away)",
            m.chips_foreign.clone(),
        );
        r.register(
            "challenges_answered",
            "Challenges answered in finalized transactions",
            m.challenges_answered.clone(),
        );
        r.register(
            "challenges_missed",
            "Challenges of this miner's chips whose window closed without an answer",
            m.challenges_missed.clone(),
        );
        r.register(
            "registrations",
            "Chips registered by this miner",
            m.registrations.clone(),
        );
        r.register(
            "liveness_txs",
            "Liveness transactions finalized",
            m.liveness_txs.clone(),
        );
        r.register(
            "failed_txs",
            "Transactions of this miner finalized with a failed receipt",
            m.failed_txs.clone(),
        );
        r.register(
            "reconnects",
            "WebSocket reconnections to the node",
            m.reconnects.clone(),
        );
        r.register(
            "finalized_height",
            "Last finalized height processed",
            m.finalized_height.clone(),
        );
        r.register(
            "rewards_earned_unc",
            "Rewards paid to this miner's chips to date, in UNC",
            m.rewards_earned_unc.clone(),
        );
        *m.registry.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        m
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let guard = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = guard.as_ref() {
            let _ = encode(&mut out, r);
        }
        out
    }

    /// Serves `/metrics` (and `/health`) on `addr` until the process ends.
    pub async fn serve(self, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
        use axum::{routing::get, Router};
        let m = self.clone();
        let app = Router::new()
            .route(
                "/metrics",
                get(move || {
                    let m = m.clone();
                    async move {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )],
                            m.render(),
                        )
                    }
                }),
            )
            .route("/health", get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        });
        Ok(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.chips.set(3);
        m.challenges_answered.inc_by(5);
        m.rewards_earned_unc.set(1.5);
        let text = m.render();
        assert!(text.contains("unet_miner_chips 3"), "{text}");
        assert!(
            text.contains("unet_miner_challenges_answered_total 5"),
            "{text}"
        );
        assert!(text.contains("unet_miner_rewards_earned_unc 1.5"), "{text}");
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
