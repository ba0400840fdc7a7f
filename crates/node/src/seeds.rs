//! Round seeds (the VRF output of each notarized or finalized round) for proposers.
//!
//! A block's beacon is its parent round's seed, so a proposer needs the seed of the round it
//! builds on. [`SeedTap`] wraps the application each epoch's engine drives so the engine's
//! activity also reaches the [`SeedCollector`], which records seeds in [`Shared`] (waking a
//! proposer that waits for one) and forgets rounds that can no longer be built on.

use crate::shared::{Scheme, Shared};
use commonware_actor::Feedback;
use commonware_consensus::{
    simplex::{scheme::bls12381_threshold::vrf::Seedable, types::Activity},
    types::Round,
    Reporter,
};
use commonware_utils::channel::oneshot;
use std::sync::Arc;
use unet_store::StoreContext;
use unet_types::Digest;

/// Collects round seeds from consensus activity (the proposer of the next block needs them).
pub struct SeedCollector<E: StoreContext> {
    /// The node's shared state, where seeds are recorded.
    pub shared: Arc<Shared<E>>,
}

impl<E: StoreContext> Clone for SeedCollector<E> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<E: StoreContext> Reporter for SeedCollector<E> {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        let seed = match &activity {
            Activity::Notarization(n) | Activity::Certification(n) => Some(n.seed()),
            Activity::Finalization(f) => {
                let s = f.seed();
                // Older rounds can no longer be built on.
                let keep_from = (
                    s.round.epoch().get(),
                    s.round.view().get().saturating_sub(64),
                );
                self.shared.seeds.send_modify(|seeds| {
                    *seeds = seeds.split_off(&keep_from);
                });
                Some(s)
            }
            _ => None,
        };
        if let Some(seed) = seed {
            self.shared.record_seed(
                seed.round.epoch().get(),
                seed.round.view().get(),
                seed.signature,
            );
        }
        Feedback::Ok
    }
}

/// Wraps the (marshaled) application handed to every epoch's consensus engine so the engine's
/// activity also reaches the [`SeedCollector`] (proposers need their parent round's seed).
pub struct SeedTap<A, E: StoreContext> {
    /// The application that consensus drives.
    pub inner: A,
    /// Where the seeds seen in the engine's activity go.
    pub seeds: SeedCollector<E>,
}

impl<A: Clone, E: StoreContext> Clone for SeedTap<A, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            seeds: self.seeds.clone(),
        }
    }
}

impl<A, E> commonware_consensus::Automaton for SeedTap<A, E>
where
    A: commonware_consensus::Automaton,
    E: StoreContext,
{
    type Context = A::Context;
    type Digest = A::Digest;

    fn propose(
        &mut self,
        context: Self::Context,
    ) -> impl std::future::Future<Output = oneshot::Receiver<Self::Digest>> + Send {
        self.inner.propose(context)
    }

    fn verify(
        &mut self,
        context: Self::Context,
        payload: Self::Digest,
    ) -> impl std::future::Future<Output = oneshot::Receiver<bool>> + Send {
        self.inner.verify(context, payload)
    }
}

impl<A, E> commonware_consensus::CertifiableAutomaton for SeedTap<A, E>
where
    A: commonware_consensus::CertifiableAutomaton,
    E: StoreContext,
{
    fn prepare(
        &mut self,
        context: Self::Context,
    ) -> impl std::future::Future<
        Output = oneshot::Receiver<commonware_consensus::Handoff<Self::Digest>>,
    > + Send {
        self.inner.prepare(context)
    }

    fn certify(
        &mut self,
        round: Round,
        payload: Self::Digest,
    ) -> impl std::future::Future<Output = oneshot::Receiver<bool>> + Send {
        self.inner.certify(round, payload)
    }
}

impl<A, E> commonware_consensus::Relay for SeedTap<A, E>
where
    A: commonware_consensus::Relay,
    E: StoreContext,
{
    type Digest = A::Digest;
    type PublicKey = A::PublicKey;
    type Plan = A::Plan;

    fn broadcast(&mut self, payload: Self::Digest, plan: Self::Plan) -> Feedback {
        self.inner.broadcast(payload, plan)
    }
}

impl<A, E> Reporter for SeedTap<A, E>
where
    A: Reporter<Activity = Activity<Scheme, Digest>>,
    E: StoreContext,
{
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        let _ = self.seeds.report(activity.clone());
        self.inner.report(activity)
    }
}
