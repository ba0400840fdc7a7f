//! A validator that drops out of every committee keeps following the chain as a full node.
//!
//! The committee's p2p network admits only the peers of recent epochs, so a validator that no
//! committee names any more is soon cut off from the chain: it registers its role in the new
//! epoch as [`ConsensusRole::Verifier`] and, a few epochs later, no committee member accepts
//! its connections. [`out_of_committees`] notices the moment this is certain (its role in the
//! newest epoch is `Verifier` and none of the committees already chosen for the epochs after
//! it names the node) while the chain is still reaching it. The process then stops the
//! validator and starts a full node on the same storage ([`crate::run`]): the state it has
//! applied, its transaction index, and the blocks and certificates marshal stored, which the
//! full node keeps serving ([`crate::history::FollowedArchives::retired`]). A marker in the
//! data directory ([`RETIRED_MARKER`]) makes every later start a full node too.

use crate::shared::{ConsensusRole, Shared};
use futures::FutureExt as _;
use std::path::Path;
use unet_store::StoreContext;
use unet_types::{
    epoch::{committee_key, Committee},
    PublicKey,
};

/// File in the data directory that marks a node as retired from validating.
pub const RETIRED_MARKER: &str = "retired";

/// Committees chosen ahead of the running epoch: the block that starts epoch `e` chooses the
/// committee of `e + 3`.
pub const COMMITTEES_AHEAD: u64 = 3;

/// Waits until `me` sits in no committee from now on, and returns the first epoch it does
/// not sign in. Runs as long as the node stays a validator, so it never resolves for one that
/// a later committee names again.
pub async fn out_of_committees<E>(shared: &Shared<E>, me: &PublicKey) -> u64
where
    E: StoreContext + Send + Sync + 'static,
{
    let mut roles = shared.roles.subscribe();
    let mut applied = shared.applied.subscribe();
    loop {
        let newest = roles
            .borrow_and_update()
            .last_key_value()
            .map(|(e, r)| (*e, *r));
        if let Some((epoch, ConsensusRole::Verifier)) = newest {
            if !named_after(shared, me, epoch).await {
                return epoch;
            }
        }
        // The next registered epoch, or (while a verifier) the next applied block, which may
        // hold the committee choice that was not there yet.
        futures::select! {
            r = roles.changed().fuse() => if r.is_err() { return futures::future::pending().await },
            _ = applied.changed().fuse() => {},
        }
    }
}

/// Whether a committee chosen for an epoch after `epoch` names `me`, or one is not chosen
/// yet (then it may).
async fn named_after<E>(shared: &Shared<E>, me: &PublicKey, epoch: u64) -> bool
where
    E: StoreContext + Send + Sync + 'static,
{
    for later in epoch + 1..=epoch + COMMITTEES_AHEAD {
        let key = committee_key(later);
        let committee = shared
            .chain(move |c| Box::pin(async move { c.get_decoded::<Committee>(&key).await }))
            .await;
        match committee {
            Ok(Ok(Some(committee))) if committee.member(me).is_none() => {}
            // Named, not chosen yet, or unreadable: stay a validator.
            _ => return true,
        }
    }
    false
}

/// Whether the node whose data directory is `data` has retired from validating.
pub fn is_retired(data: &Path) -> bool {
    data.join(RETIRED_MARKER).exists()
}

/// Marks the node whose data directory is `data` as retired (from `epoch` on), durably.
pub fn mark_retired(data: &Path, epoch: u64) -> std::io::Result<()> {
    let path = data.join(RETIRED_MARKER);
    let tmp = data.join(format!("{RETIRED_MARKER}.tmp"));
    std::fs::write(
        &tmp,
        format!("out of every committee from epoch {epoch}: runs as a full node\n"),
    )?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(data)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_lasts() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_retired(dir.path()));
        mark_retired(dir.path(), 7).unwrap();
        assert!(is_retired(dir.path()));
        assert!(std::fs::read_to_string(dir.path().join(RETIRED_MARKER))
            .unwrap()
            .contains("epoch 7"));
    }
}
