//! Compute-weighted leader election for simplex.
//!
//! Like commonware's `Random` elector, the leader of a round is drawn from the threshold VRF
//! seed of the certificate that unlocks it (a unique signature: no participant can bias or
//! predict it before a quorum signs), and view 1 of an epoch (no certificate yet) falls back
//! to round-robin. Unlike `Random`, a participant is drawn with probability that grows with
//! its committee weight (the rated compute of its owner's online chips, as written into the
//! committee by the state transition):
//!
//! 1. **Cap.** Weights are clipped at a level `c` chosen so that no clipped weight exceeds one
//!    third of the clipped total: `c` is the largest integer with `3c <= sum(min(w_i, c))`
//!    (water-filling). With at least three members such a `c >= 1` always exists. So a member
//!    owning most of the network's compute cannot lead most views, and never more than a third.
//! 2. **Floor.** Three quarters of the probability follows the clipped weights and one quarter
//!    is spread evenly: `p_i = 3/4 * c_i / C + 1/4 * 1/n`. The cap still holds
//!    (`p_i <= 3/4 * 1/3 + 1/(4n) <= 1/3` for `n >= 3`), and every member leads at least
//!    `1/(4n)` of the views. The floor is what keeps threshold resharing live: each dealer
//!    must land its dealer log in a block it proposes itself during the second half of the
//!    epoch, and a pure weight draw could starve a low-weight dealer of turns (see
//!    commonware-glue `dkg::reshare`, "Liveness").
//!
//! Weights are per epoch and must be identical on every node: they are registered in a
//! [`WeightBook`] from finalized chain state (see `epochs::Registrar`) before the epoch's
//! consensus engine starts, and the elector looks them up by the round's epoch.

use crate::shared::Scheme;
use commonware_codec::Encode;
use commonware_consensus::{
    simplex::{
        elector::{Config, Dynamic, Elector, Terms},
        scheme::bls12381_threshold::vrf::Certificate,
    },
    types::{Participant, Round},
};
use commonware_cryptography::{bls12381::primitives::variant::MinSig, Hasher, Sha256};
use commonware_utils::ordered::Set;
use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};
use unet_types::PublicKey;

/// Share of the leader draw that follows weight (the rest is uniform), in quarters.
const WEIGHTED_QUARTERS: u128 = 3;

/// Effective election weights per epoch, aligned with that epoch's participant order.
#[derive(Clone, Default, Debug)]
pub struct WeightBook {
    epochs: Arc<RwLock<BTreeMap<u64, Arc<Vec<u128>>>>>,
}

impl WeightBook {
    /// Records the raw weights of the participants of `epoch` (in participant order). The
    /// first registration wins: an epoch's weights never change once consensus may use them.
    pub fn register(&self, epoch: u64, raw: &[u128]) {
        let effective = Arc::new(effective_weights(raw));
        let mut epochs = self.epochs.write().expect("weight book lock");
        epochs.entry(epoch).or_insert(effective);
        // Keep a few epochs: the orchestrator only runs the latest ones.
        while epochs.len() > 8 {
            epochs.pop_first();
        }
    }

    /// The effective weights of `epoch`, if registered.
    pub fn get(&self, epoch: u64) -> Option<Arc<Vec<u128>>> {
        self.epochs
            .read()
            .expect("weight book lock")
            .get(&epoch)
            .cloned()
    }
}

/// The cap level: the largest `c` with `3c <= sum(min(w_i, c))`, at least 1.
pub fn cap_level(weights: &[u128]) -> u128 {
    let max = weights.iter().copied().max().unwrap_or(1).max(1);
    let ok = |c: u128| -> bool {
        let sum: u128 = weights.iter().map(|w| (*w).min(c)).sum();
        c.saturating_mul(3) <= sum
    };
    let (mut lo, mut hi) = (1u128, max);
    if !ok(lo) {
        return 1;
    }
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Effective integer weights: `e_i = 3 * n * min(w_i, c) + C` with `C` the clipped total, so
/// `e_i / sum(e) = 3/4 * min(w_i, c) / C + 1/4 * 1/n` (see the module docs).
pub fn effective_weights(raw: &[u128]) -> Vec<u128> {
    let n = raw.len() as u128;
    if n == 0 {
        return Vec::new();
    }
    // Weights are rated compute in milli-TOPS; bound them so sums cannot overflow.
    let bounded: Vec<u128> = raw
        .iter()
        .map(|w| (*w).clamp(1, u64::MAX as u128))
        .collect();
    let c = cap_level(&bounded);
    let clipped: Vec<u128> = bounded.iter().map(|w| (*w).min(c)).collect();
    let total: u128 = clipped.iter().sum();
    clipped
        .iter()
        .map(|w| WEIGHTED_QUARTERS * n * w + total)
        .collect()
}

/// Picks an index with probability proportional to `weights`, from 32 bytes of randomness.
pub fn pick(weights: &[u128], randomness: &[u8]) -> usize {
    let total: u128 = weights.iter().sum();
    if total == 0 {
        return 0;
    }
    // Reduce the hash modulo the total (total < 2^80, so `r * 256` cannot overflow).
    let mut r: u128 = 0;
    for b in randomness {
        r = ((r << 8) | u128::from(*b)) % total;
    }
    let mut acc = 0u128;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if r < acc {
            return i;
        }
    }
    weights.len() - 1
}

/// Elector configuration: compute-weighted, seeded by the round's threshold VRF signature.
#[derive(Clone, Debug)]
pub struct Weighted {
    /// Each epoch's effective leader-election weights.
    pub book: WeightBook,
}

impl Config<Scheme> for Weighted {
    type Elector = WeightedElector;

    fn build(self, participants: &Set<PublicKey>) -> WeightedElector {
        assert!(!participants.is_empty(), "no participants");
        WeightedElector {
            n: participants.len() as u32,
            book: self.book,
        }
    }
}

/// Initialized compute-weighted elector.
#[derive(Clone, Debug)]
pub struct WeightedElector {
    n: u32,
    book: WeightBook,
}

impl Elector<Scheme> for WeightedElector {
    type Mode = Dynamic;

    fn terms(&self) -> Terms {
        Terms::rotating()
    }

    fn elect(&self, round: Round, certificate: Option<&Certificate<MinSig>>) -> Participant {
        let n = u64::from(self.n.max(1));
        // View 1 of an epoch has no certificate: round-robin, as `Random` does.
        let seed = certificate.and_then(|c| c.get().map(|s| s.seed_signature));
        let Some(seed) = seed else {
            let idx = round.epoch().get().wrapping_add(round.view().get()) % n;
            return Participant::new(idx as u32);
        };
        let randomness = Sha256::hash(&[seed.encode().as_ref()]);
        match self.book.get(round.epoch().get()) {
            Some(weights) if weights.len() == self.n as usize => {
                Participant::new(pick(&weights, randomness.as_ref()) as u32)
            }
            _ => {
                // Unreachable when the registrar ran (it records weights before the epoch's
                // scheme exists); uniform keeps every node that lacks them on the same rule.
                tracing::error!(epoch = round.epoch().get(), "no leader weights for epoch");
                let uniform = vec![1u128; self.n as usize];
                Participant::new(pick(&uniform, randomness.as_ref()) as u32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_keeps_every_member_at_or_below_a_third() {
        for raw in [
            vec![1u128, 1, 1, 1],
            vec![1_000_000, 1, 1, 1],
            vec![100, 50, 25, 10, 5],
            vec![7, 7, 7],
            vec![u128::MAX, 1, 2, 3],
        ] {
            let e = effective_weights(&raw);
            let total: u128 = e.iter().sum();
            for w in &e {
                assert!(3 * w <= total, "{raw:?} -> {e:?}");
                // The floor: at least 1/(4n) of the draws.
                assert!(4 * (raw.len() as u128) * w >= total, "{raw:?} -> {e:?}");
            }
        }
    }

    #[test]
    fn heavier_members_lead_more_often() {
        let e = effective_weights(&[400, 200, 100, 100]);
        let mut counts = [0usize; 4];
        for i in 0..20_000u64 {
            let r = Sha256::hash(&[&i.to_be_bytes()]);
            counts[pick(&e, r.as_ref())] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[2], "{counts:?}");
        // The heaviest is capped near a third (its uncapped share would be a half).
        assert!(counts[0] < 20_000 * 36 / 100, "{counts:?}");
    }

    #[test]
    fn equal_weights_are_uniform() {
        let e = effective_weights(&[5, 5, 5, 5]);
        assert!(e.windows(2).all(|w| w[0] == w[1]));
    }
}
