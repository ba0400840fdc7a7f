//! What the daemon shows: gauges, progress bars on a terminal, the periodic status line.

use super::{view::OnChain, Miner};
use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;
use unet_types::chip::ChipStatus;

/// Chips read per step of the catch-up bar.
pub(super) const BAR_STEP: usize = 200;

impl Miner {
    /// Sets the chip gauges and the rewards gauge from the view.
    pub(super) fn update_gauges(&self) {
        let (mut registered, mut online, mut unresponsive, mut revoked, mut foreign) =
            (0, 0, 0, 0, 0);
        for v in self.view.values() {
            match v {
                OnChain::Mine { status } => {
                    registered += 1;
                    match status {
                        ChipStatus::Online => online += 1,
                        ChipStatus::Unresponsive => unresponsive += 1,
                        ChipStatus::Revoked => revoked += 1,
                    }
                }
                OnChain::Foreign { .. } => foreign += 1,
                _ => {}
            }
        }
        self.metrics.chips_registered.set(registered);
        self.metrics.chips_online.set(online);
        self.metrics.chips_unresponsive.set(unresponsive);
        self.metrics.chips_revoked.set(revoked);
        self.metrics.chips_foreign.set(foreign);
        let total: u128 = self.rewards_base.values().sum();
        self.metrics
            .rewards_earned_unc
            .set(total as f64 / unet_types::UNC as f64);
    }

    /// Logs one line of totals.
    pub(super) fn status_line(&self, height: u64) {
        info!(
            height,
            chips = self.chips.len(),
            online = self.metrics.chips_online.get(),
            unresponsive = self.metrics.chips_unresponsive.get(),
            answered = self.state.totals.answered,
            missed = self.state.totals.missed,
            open_challenges = self.pending.len(),
            in_flight = self.state.inflight.len(),
            rewards_unc = format!("{:.6}", self.metrics.rewards_earned_unc.get()),
            "status"
        );
    }

    /// A progress bar over `len` chips, drawn only when `show` and progress is on.
    pub(super) fn bar(&self, show: bool, len: u64, what: &'static str) -> ProgressBar {
        if !(show && self.cfg.progress) {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} chips {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what);
        bar
    }
}
