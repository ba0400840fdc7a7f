//! Serving followers: any node may follow this one, up to a bound at once ([`MAX_PER_ADDRESS`]
//! of them from one IP address). A handshake must finish within
//! [`super::HANDSHAKE_TIMEOUT`], so a connection that never speaks frees its place.
//!
//! Each follower gets two tasks. The writer streams every finalized block from the height the
//! follower asked for, with the certificate this node holds for it, reading the in-memory
//! window or the [`crate::history::History`], and waits on the applied height (no polling)
//! for the next. The reader takes the follower's transaction batches through the same
//! admission as the API, at most [`SUBMIT_RATE`] transactions a second; a follower whose
//! batch carries a transaction with a bad signature is cut off (a node forwards only what
//! its own admission passed, so that is not an honest mistake).

use super::{
    wire::{ToFollower, ToUpstream, AT_GENESIS, NAMESPACE},
    HANDSHAKE_TIMEOUT,
};
use crate::{gossip::TxGossip, run::MAX_MESSAGE_SIZE, shared::Shared};
use commonware_codec::{Decode, Encode};
use commonware_cryptography::ed25519;
use commonware_runtime::{Clock, Handle, Network, Spawner};
use commonware_stream::{utils::Timeout, Upgrader};
use rand::{CryptoRng, Rng};
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};
use tracing::{debug, info, warn};
use unet_store::StoreContext;
use unet_types::TxError;

/// Transactions a second one follower may submit (excess waits: the follower's batches are
/// read no faster).
pub const SUBMIT_RATE: u64 = 5_000;

/// Followers served at once from one IP address (loopback excepted: a machine's own nodes),
/// so one host cannot take every slot.
pub const MAX_PER_ADDRESS: usize = 2;

/// The followers being served: in all and by IP address.
#[derive(Default)]
struct Slots {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// One follower's place among the served; given back when dropped.
struct Slot {
    slots: Arc<Mutex<Slots>>,
    ip: IpAddr,
}

impl Slot {
    /// A place for a follower from `ip`, if neither bound is reached.
    fn take(slots: &Arc<Mutex<Slots>>, max: usize, ip: IpAddr) -> Option<Self> {
        let mut s = slots.lock().expect("slots");
        let from_ip = s.by_ip.get(&ip).copied().unwrap_or(0);
        if s.total >= max || (!ip.is_loopback() && from_ip >= MAX_PER_ADDRESS) {
            return None;
        }
        s.total += 1;
        *s.by_ip.entry(ip).or_default() += 1;
        Some(Self {
            slots: slots.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self.slots.lock().expect("slots");
        s.total -= 1;
        if let Some(n) = s.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                s.by_ip.remove(&self.ip);
            }
        }
    }
}

/// Serves followers on `listener` until the node stops: at most `max` at once.
pub fn serve<E, L, U>(
    context: E,
    mut listener: L,
    upgrader: U,
    max: usize,
    shared: Arc<Shared<E>>,
    gossip: TxGossip,
) -> Handle<()>
where
    E: Clock + Rng + CryptoRng + Spawner + Network + StoreContext + Send + Sync + 'static,
    L: commonware_runtime::Listener,
    U: Upgrader<PublicKey = ed25519::PublicKey>,
{
    let upgrader = Timeout::new(upgrader, HANDSHAKE_TIMEOUT);
    let slots = Arc::new(Mutex::new(Slots::default()));
    context.child("accept").spawn(move |context| async move {
        loop {
            let (addr, sink, stream) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "follow listener failed; no longer serving followers");
                    return;
                }
            };
            // Over a bound: the connection is dropped before any handshake work.
            let Some(slot) = Slot::take(&slots, max, addr.ip()) else {
                debug!(%addr, max, "follower turned away: serving the most followers");
                continue;
            };
            let (upgrader, shared, gossip) = (upgrader.clone(), shared.clone(), gossip.clone());
            context.child("follower").spawn(move |context| async move {
                let _slot = slot;
                let upgraded = upgrader
                    .listen(
                        context.child("handshake"),
                        NAMESPACE,
                        MAX_MESSAGE_SIZE,
                        |_| async { true },
                        stream,
                        sink,
                    )
                    .await;
                let (peer, sender, receiver) = match upgraded {
                    Ok(u) => u,
                    Err(e) => {
                        debug!(%addr, error = %e, "follow handshake failed");
                        return;
                    }
                };
                serve_one(context, addr, peer, sender, receiver, shared, gossip).await;
            });
        }
    })
}

async fn serve_one<E, S, R>(
    context: E,
    addr: SocketAddr,
    peer: ed25519::PublicKey,
    mut sender: S,
    mut receiver: R,
    shared: Arc<Shared<E>>,
    gossip: TxGossip,
) where
    E: Clock + Spawner + StoreContext,
    S: commonware_stream::Sender,
    R: commonware_stream::Receiver,
{
    let first = match receiver.recv().await {
        Ok(m) => ToUpstream::decode_cfg(m, &()),
        Err(_) => return,
    };
    let from = match first {
        Ok(ToUpstream::Follow { genesis, from }) if genesis == shared.genesis_digest => from.max(1),
        Ok(ToUpstream::Sync { genesis }) if genesis == shared.genesis_digest => {
            info!(%addr, ?peer, "serving state sync");
            let why = serve_sync(&mut sender, &mut receiver, &shared).await;
            info!(%addr, ?peer, why, "stopped serving state sync");
            return;
        }
        Ok(ToUpstream::Follow { .. } | ToUpstream::Sync { .. }) => {
            refuse(&mut sender, "another chain: the genesis differs").await;
            return;
        }
        _ => {
            refuse(&mut sender, "the first message must be Follow").await;
            return;
        }
    };
    info!(%addr, ?peer, from, "serving a follower");
    let reader =
        context.child("submissions").spawn({
            let shared = shared.clone();
            move |context| async move {
                read_submissions(context, &mut receiver, &shared, &gossip).await
            }
        });
    // Whichever ends first ends the session: the writer (connection closed, node stopping)
    // or the reader (the follower left or misbehaved).
    let writer = stream_blocks(&mut sender, &shared, from);
    futures::pin_mut!(writer);
    let why = match futures::future::select(writer, reader).await {
        futures::future::Either::Left((why, reader)) => {
            reader.abort();
            why
        }
        futures::future::Either::Right(_) => "the follower left or misbehaved",
    };
    info!(%addr, ?peer, why, "stopped serving a follower");
}

async fn refuse<S: commonware_stream::Sender>(sender: &mut S, why: &str) {
    let _ = sender.send(ToFollower::Refused(why.into()).encode()).await;
}

/// Serves one state sync: the applied state as a target, then each request for operations
/// in order; returns why it stopped. A request the state can no longer answer (pruned past
/// it) is refused and the session ends; the syncing node asks for a newer target.
async fn serve_sync<E, S, R>(sender: &mut S, receiver: &mut R, shared: &Shared<E>) -> String
where
    E: StoreContext,
    S: commonware_stream::Sender,
    R: commonware_stream::Receiver,
{
    let target = match shared.state_sync.target().await {
        Ok(t) => t,
        Err(e) => {
            refuse(sender, "the state is unavailable").await;
            return format!("no target: {e}");
        }
    };
    let height = target.height;
    if height == 0 {
        refuse(sender, AT_GENESIS).await;
        return "at genesis".into();
    }
    let block = shared.block_at(height).await;
    let certificate = match shared.history.get() {
        Some(h) => h.finalization(height).await,
        None => None,
    };
    let (Some(block), Some(certificate)) = (block, certificate) else {
        // The applied block is finalized by a later certificate (or not yet published):
        // the next applied height will do.
        refuse(sender, "no certificate for the applied height yet; retry").await;
        return format!("nothing certified at {height}");
    };
    let offer = ToFollower::SyncTarget {
        block: Box::new((*block).clone()),
        certificate: Box::new(certificate),
        target: Box::new(target),
    };
    if sender.send(offer.encode()).await.is_err() {
        return "connection closed".into();
    }
    // Room for the message's own framing around the response.
    let budget = MAX_MESSAGE_SIZE as usize - 1024;
    loop {
        let Ok(message) = receiver.recv().await else {
            return "the syncing node left".into();
        };
        let request = match ToUpstream::decode_cfg(message, &()) {
            Ok(ToUpstream::SyncOps(request)) => request,
            _ => return "unexpected message during sync".into(),
        };
        let response = match shared.state_sync.serve(request, budget).await {
            Ok(r) => r,
            Err(e) => {
                refuse(
                    sender,
                    "this node can no longer serve that state; ask again",
                )
                .await;
                return format!("cannot serve {request}: {e}");
            }
        };
        if sender
            .send(ToFollower::SyncOps(Box::new(response)).encode())
            .await
            .is_err()
        {
            return "connection closed".into();
        }
    }
}

/// Streams every finalized block from `from` on; returns why it stopped.
async fn stream_blocks<E: StoreContext, S: commonware_stream::Sender>(
    sender: &mut S,
    shared: &Shared<E>,
    from: u64,
) -> &'static str {
    let mut applied = shared.applied.subscribe();
    let mut next = from;
    loop {
        let tip = *applied.borrow_and_update();
        while next <= tip {
            let Some(block) = shared.block_at(next).await else {
                refuse(sender, "this node no longer holds that height").await;
                return "height not held";
            };
            let certificate = match shared.history.get() {
                Some(h) => h.finalization(next).await,
                None => None,
            };
            let message = ToFollower::Block {
                block: Box::new((*block).clone()),
                certificate: certificate.map(Box::new),
            };
            if sender.send(message.encode()).await.is_err() {
                return "connection closed";
            }
            next += 1;
        }
        if applied.changed().await.is_err() {
            return "node stopping";
        }
    }
}

/// Admits the follower's transaction batches; returns when it disconnects or misbehaves.
async fn read_submissions<E, R>(context: E, receiver: &mut R, shared: &Shared<E>, gossip: &TxGossip)
where
    E: Clock + StoreContext,
    R: commonware_stream::Receiver,
{
    // Token bucket in transactions, refilled at SUBMIT_RATE a second, one second deep.
    let mut tokens = SUBMIT_RATE as f64;
    let mut last = context.current();
    loop {
        let Ok(message) = receiver.recv().await else {
            return;
        };
        let txs = match ToUpstream::decode_cfg(message, &()) {
            Ok(ToUpstream::Submit(txs)) => txs,
            Ok(ToUpstream::Follow { .. } | ToUpstream::Sync { .. } | ToUpstream::SyncOps(_))
            | Err(_) => {
                debug!("follower sent an unexpected message; dropping it");
                return;
            }
        };
        let now = context.current();
        let elapsed = now.duration_since(last).unwrap_or_default().as_secs_f64();
        last = now;
        tokens = (tokens + elapsed * SUBMIT_RATE as f64).min(SUBMIT_RATE as f64);
        tokens -= txs.len() as f64;
        if tokens < 0.0 {
            context
                .sleep(Duration::from_secs_f64(-tokens / SUBMIT_RATE as f64))
                .await;
        }
        let results = gossip.admit(shared, txs.clone()).await;
        if results
            .iter()
            .any(|r| matches!(r, Err(TxError::BadSignature)))
        {
            warn!("follower forwarded a transaction with a bad signature; dropping it");
            return;
        }
        for (t, r) in txs.into_iter().zip(&results) {
            if r.is_ok() {
                gossip.publish(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound holds in all and per address; loopback is not bounded per address; a place
    /// comes back when its follower goes.
    #[test]
    fn places_are_bounded_in_all_and_per_address() {
        let slots = Arc::new(Mutex::new(Slots::default()));
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "203.0.113.8".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let first = Slot::take(&slots, 5, a).unwrap();
        let _second = Slot::take(&slots, 5, a).unwrap();
        assert!(
            Slot::take(&slots, 5, a).is_none(),
            "a third from one address"
        );
        let _other = Slot::take(&slots, 5, b).unwrap();
        let _l1 = Slot::take(&slots, 5, lo).unwrap();
        let _l2 = Slot::take(&slots, 5, lo).unwrap();
        assert!(Slot::take(&slots, 5, lo).is_none(), "the total bound");
        drop(first);
        assert!(Slot::take(&slots, 5, a).is_some(), "a place given back");
    }
}
