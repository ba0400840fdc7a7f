//! Epochs: the glue between commonware-glue's `dkg` actors (continuous threshold resharing and
//! one simplex engine per epoch) and UtilityNet's chain state.
//!
//! - [`StateParticipants`] answers glue's `ParticipantsProvider` from finalized state: the
//!   committee the state transition wrote under `committee_key(e)` (see `unet_types::epoch`),
//!   and a transport directory built from committee members' p2p addresses.
//! - [`Registrar`] installs each epoch's threshold scheme in a [`DynamicProvider`] (the scheme
//!   provider of the per-epoch consensus engines) and, first, the epoch's leader-election
//!   weights in the [`WeightBook`].
//! - [`SecretStore`] keeps this node's shares, dealer seeds and received private dealings in a
//!   `0600` JSON file (or in memory, for tests), written atomically before a write returns.
//!
//! # Which committee runs consensus when
//!
//! glue's `participants(e)` are the *players* of epoch `e`'s reshare ceremony: they receive
//! shares during epoch `e` and are the consensus participants of epoch `e + 1`, so
//! `participants(e) = committee(e + 1)`. Glue needs it when the last block of epoch `e - 2` is
//! built; the state writes `committee(e + 1)` at the first block of epoch `e - 2`, so it is
//! final a whole epoch before it is needed. Consensus in epoch `e` is run by `committee(e)`
//! (epochs 0..=3 by the genesis validators) and its leaders are weighted by `committee(e)`.
//!
//! If a ceremony fails, glue keeps the previous threshold output: the participants of the next
//! epoch then differ from the committee, and the elector falls back to uniform weights for it.

use crate::{
    elector::WeightBook,
    shared::{ConsensusRole, Scheme, Shared},
};
use commonware_codec::{DecodeExt, Encode};
use commonware_consensus::types::Epoch;
use commonware_cryptography::{
    bls12381::{
        dkg::feldman_desmedt::DealerPrivMsg,
        primitives::{group::Share, variant::MinSig},
    },
    certificate::{Provider, Scoped},
    transcript::Summary,
    PublicKey as PublicKeyTrait,
};
use commonware_glue::dkg::{self, types::SchemeInfo};
use commonware_p2p::{Address, Ingress};
use commonware_runtime::Clock;
use commonware_utils::{ordered::Set, Hostname};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};
use unet_store::StoreContext;
use unet_types::{
    block::Directory,
    epoch::{committee_key, first_height, Committee, CommitteeMember},
    Genesis, PublicKey, CONSENSUS_NAMESPACE,
};

/// How often a reader waiting for finalized state polls it.
const POLL: Duration = Duration::from_millis(50);

/// The committee of `epoch` implied by genesis alone: the genesis validators, weight 1.
pub fn genesis_committee(genesis: &Genesis, epoch: u64) -> Committee {
    let mut members: Vec<CommitteeMember> = genesis
        .validators
        .iter()
        .map(|v| CommitteeMember {
            node_key: v.public_key.clone(),
            account: v.public_key.clone(),
            p2p_address: v.p2p_address.clone(),
            weight: 1,
        })
        .collect();
    members.sort_by(|a, b| a.node_key.cmp(&b.node_key));
    members.dedup_by(|a, b| a.node_key == b.node_key);
    Committee { epoch, members }
}

/// The committee of `epoch` in finalized state, waiting until the state is final for it.
///
/// Deterministic on every node: `committee(e)` is due at the first block of epoch `e - 3`
/// (genesis writes epochs 0..=3). If the state has passed that height without writing it,
/// the previous epoch's committee carries over; before the state writes any, epochs 0..=3
/// are the genesis validators.
pub async fn committee<E: StoreContext + Clock>(
    shared: &Shared<E>,
    clock: &E,
    epoch: u64,
) -> Committee {
    let mut epoch = epoch;
    // Subscribed before each look, so a block applied in between still wakes us.
    let mut applied = shared.applied.subscribe();
    loop {
        let looked = shared
            .chain(move |chain| {
                Box::pin(async move {
                    let found = chain.get_decoded::<Committee>(&committee_key(epoch)).await;
                    (found, chain.applied_height())
                })
            })
            .await;
        if let Ok((found, applied_height)) = looked {
            if let Ok(Some(c)) = found {
                if !c.members.is_empty() {
                    return c;
                }
            }
            if epoch <= 3 {
                return genesis_committee(&shared.genesis, epoch);
            }
            let due = first_height(epoch - 3, shared.genesis.params.epoch_length);
            if applied_height >= due {
                epoch -= 1;
                continue;
            }
        }
        if applied.changed().await.is_err() {
            // The node is shutting down (the sender went away): nothing will change.
            clock.sleep(POLL).await;
        }
    }
}

/// A committee member's `host:port` as a transport address. Literal socket addresses dial
/// directly; host names are resolved by the transport when dialing. Anything else maps to an
/// unroutable address (the same on every node, so the directory stays deterministic).
pub fn transport_address(addr: &str) -> Address {
    if let Ok(socket) = addr.parse::<SocketAddr>() {
        return Address::Symmetric(socket);
    }
    if let Some((host, port)) = addr.rsplit_once(':') {
        if let (Ok(host), Ok(port)) = (Hostname::new(host), port.parse::<u16>()) {
            return Address::Asymmetric {
                ingress: Ingress::Dns { host, port },
                egress: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            };
        }
    }
    Address::Symmetric(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
}

/// glue's `ParticipantsProvider` over finalized chain state.
pub struct StateParticipants<E: StoreContext> {
    /// The node's shared state: finalized chain state the participants are read from.
    pub shared: Arc<Shared<E>>,
    /// The runtime's clock.
    pub clock: E,
}

impl<E: StoreContext + Clock + Send + Sync + 'static> dkg::ParticipantsProvider
    for StateParticipants<E>
{
    type PublicKey = PublicKey;
    type Directory = Directory;

    async fn participants(&mut self, epoch: Epoch) -> Set<PublicKey> {
        let c = committee(&self.shared, &self.clock, epoch.get() + 1).await;
        Set::from_iter_dedup(c.members.into_iter().map(|m| m.node_key))
    }

    async fn directory(&mut self, epoch: Epoch, peers: Set<PublicKey>) -> Directory {
        // Needed at the last block of `epoch - 1`; everything read here was final by the
        // first block of `epoch - 1` (committee(epoch + 2) is written there).
        let length = self.shared.genesis.params.epoch_length;
        let e = epoch.get();
        self.shared
            .applied_at_least(first_height(e.saturating_sub(1), length))
            .await;
        let mut found: HashMap<PublicKey, Address> = HashMap::new();
        // Newest committee first: the most recent address a member registered wins.
        let mut k = e + 2;
        loop {
            if found.len() == peers.len() {
                break;
            }
            let c = committee(&self.shared, &self.clock, k).await;
            for m in c.members {
                if peers.position(&m.node_key).is_some() && !found.contains_key(&m.node_key) {
                    let address = transport_address(&m.p2p_address);
                    found.insert(m.node_key, address);
                }
            }
            if k == 0 {
                break;
            }
            k -= 1;
        }
        let genesis = self.shared.genesis.clone();
        for v in &genesis.validators {
            if peers.position(&v.public_key).is_some() && !found.contains_key(&v.public_key) {
                found.insert(v.public_key.clone(), transport_address(&v.p2p_address));
            }
        }
        peers
            .iter()
            .map(|p| {
                let address = found
                    .get(p)
                    .cloned()
                    .unwrap_or_else(|| transport_address(""));
                (p.clone(), address)
            })
            .collect()
    }
}

/// The consensus scheme provider of the per-epoch engines: epoch -> threshold scheme.
#[derive(Clone, Default)]
pub struct DynamicProvider {
    schemes: Arc<Mutex<HashMap<Epoch, Arc<Scheme>>>>,
}

impl DynamicProvider {
    /// Installs `scheme` for `epoch` and drops the schemes of epochs more than four older.
    pub fn register(&self, epoch: Epoch, scheme: Scheme) {
        let mut schemes = self.schemes.lock().expect("provider lock");
        schemes.insert(epoch, Arc::new(scheme));
        // Old epochs are never entered again.
        schemes.retain(|e, _| e.get() + 4 >= epoch.get());
    }
}

impl Provider for DynamicProvider {
    type Scope = Epoch;
    type Scheme = Scheme;

    fn scoped(&self, scope: Epoch) -> Option<Scoped<Scheme>> {
        self.schemes
            .lock()
            .expect("provider lock")
            .get(&scope)
            .cloned()
            .map(Scoped::scheme)
    }

    fn scheme(&self, scope: Epoch) -> Option<Arc<Scheme>> {
        self.schemes
            .lock()
            .expect("provider lock")
            .get(&scope)
            .cloned()
    }
}

/// Builds the threshold scheme `info` describes (signer, member without a share, verifier).
pub fn scheme_of(info: SchemeInfo<MinSig, PublicKey>) -> Scheme {
    match info {
        SchemeInfo::Verifier {
            participants,
            sharing,
        } => Scheme::verifier(CONSENSUS_NAMESPACE, participants, sharing),
        SchemeInfo::Member {
            participants,
            sharing,
            public_key,
        } => match Scheme::member(
            CONSENSUS_NAMESPACE,
            participants.clone(),
            sharing.clone(),
            &public_key,
        ) {
            Some(s) => s,
            None => Scheme::verifier(CONSENSUS_NAMESPACE, participants, sharing),
        },
        SchemeInfo::Signer {
            participants,
            sharing,
            share,
        } => match Scheme::signer(
            CONSENSUS_NAMESPACE,
            participants.clone(),
            sharing.clone(),
            share,
        ) {
            Some(s) => s,
            None => {
                tracing::error!(
                    "threshold share does not match the epoch's output; verifying only"
                );
                Scheme::verifier(CONSENSUS_NAMESPACE, participants, sharing)
            }
        },
    }
}

fn participants_of(info: &SchemeInfo<MinSig, PublicKey>) -> &Set<PublicKey> {
    match info {
        SchemeInfo::Verifier { participants, .. }
        | SchemeInfo::Member { participants, .. }
        | SchemeInfo::Signer { participants, .. } => participants,
    }
}

/// Installs each epoch's leader weights and threshold scheme.
pub struct Registrar<E: StoreContext> {
    /// Receives each epoch's threshold scheme.
    pub provider: DynamicProvider,
    /// Receives each epoch's leader weights.
    pub book: WeightBook,
    /// The node's shared state (roles are recorded there).
    pub shared: Arc<Shared<E>>,
    /// The runtime's clock.
    pub clock: E,
}

impl<E: StoreContext + Clock + Send + Sync + 'static> Registrar<E> {
    /// Leader weights of `epoch`'s participants (in participant order): the weights of
    /// `committee(epoch)` when it is exactly the participant set, uniform otherwise (a failed
    /// ceremony kept an older output).
    pub async fn weights(&self, epoch: u64, participants: &Set<PublicKey>) -> Vec<u128> {
        let c = committee(&self.shared, &self.clock, epoch).await;
        let same = c.members.len() == participants.len()
            && c.members
                .iter()
                .zip(participants.iter())
                .all(|(m, p)| m.node_key == *p);
        if same {
            c.members.iter().map(|m| m.weight).collect()
        } else {
            vec![1; participants.len()]
        }
    }

    /// Records weights, then installs the scheme (so weights exist before any engine of the
    /// epoch can be built).
    pub async fn install(&self, epoch: Epoch, info: SchemeInfo<MinSig, PublicKey>) {
        let weights = self.weights(epoch.get(), participants_of(&info)).await;
        self.book.register(epoch.get(), &weights);
        self.shared.set_role(epoch.get(), role(&info));
        self.provider.register(epoch, scheme_of(info));
    }
}

impl<E: StoreContext + Clock + Send + Sync + 'static> dkg::Registrar for Registrar<E> {
    type Variant = MinSig;
    type PublicKey = PublicKey;

    async fn register(&self, epoch: Epoch, info: SchemeInfo<MinSig, PublicKey>) {
        tracing::info!(
            epoch = epoch.get(),
            role = role(&info).as_str(),
            "registered epoch scheme"
        );
        self.install(epoch, info).await;
    }
}

fn role(info: &SchemeInfo<MinSig, PublicKey>) -> ConsensusRole {
    match info {
        SchemeInfo::Verifier { .. } => ConsensusRole::Verifier,
        SchemeInfo::Member { .. } => ConsensusRole::Member,
        SchemeInfo::Signer { .. } => ConsensusRole::Signer,
    }
}

/// What the secret store file holds: hex-encoded values by epoch.
#[derive(Default, Serialize, Deserialize)]
struct Secrets {
    shares: BTreeMap<u64, String>,
    seeds: BTreeMap<u64, String>,
    /// Key: `epoch:dealer-key-hex`.
    dealings: BTreeMap<String, String>,
}

/// This node's secret reshare material (shares, dealer seeds, private dealings).
///
/// Backed by a `0600` JSON file rewritten atomically (temp file, fsync, rename, fsync of the
/// directory) before each write returns, or kept in memory (tests). Never logged.
#[derive(Clone)]
pub struct SecretStore {
    inner: Arc<Mutex<Secrets>>,
    path: Option<PathBuf>,
}

fn dealing_key(epoch: Epoch, dealer: &impl Encode) -> String {
    format!("{:020}:{}", epoch.get(), hex::encode(dealer.encode()))
}

fn decode_hex<T: DecodeExt<()>>(s: &str) -> Option<T> {
    T::decode(hex::decode(s).ok()?).ok()
}

impl SecretStore {
    /// A store that lives in memory only (tests).
    pub fn memory() -> Self {
        Self {
            inner: Arc::default(),
            path: None,
        }
    }

    /// Opens (or, if absent, creates on first write) the store file at `path`. Refuses a file
    /// other users can read.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let secrets = if path.exists() {
            if let Some(why) = unet_types::private_file::exposed(path)? {
                anyhow::bail!(why);
            }
            let text = std::fs::read_to_string(path)?;
            serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not a secret store: {e}", path.display()))?
        } else {
            Secrets::default()
        };
        Ok(Self {
            inner: Arc::new(Mutex::new(secrets)),
            path: Some(path.to_path_buf()),
        })
    }

    /// Stores the share of `epoch` (used by `unet testnet` for the dealt epoch-zero share).
    pub fn insert_share(&self, epoch: Epoch, share: &Share) -> anyhow::Result<()> {
        let mut s = self.inner.lock().expect("secret store lock");
        s.shares.insert(epoch.get(), hex::encode(share.encode()));
        self.persist(&s)
    }

    /// The share of `epoch`, if stored.
    pub fn share(&self, epoch: Epoch) -> Option<Share> {
        let s = self.inner.lock().expect("secret store lock");
        s.shares.get(&epoch.get()).and_then(|h| decode_hex(h))
    }

    /// Whether the store holds a key share of any epoch (a home that never held one and is
    /// not a genesis validator can run as a full node).
    pub fn holds_any_share(&self) -> bool {
        !self
            .inner
            .lock()
            .expect("secret store lock")
            .shares
            .is_empty()
    }

    fn persist(&self, secrets: &Secrets) -> anyhow::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let text = serde_json::to_string(secrets)?;
        unet_types::private_file::write_atomic(path, text.as_bytes())?;
        Ok(())
    }

    fn update(&self, f: impl FnOnce(&mut Secrets)) {
        let mut s = self.inner.lock().expect("secret store lock");
        f(&mut s);
        if let Err(e) = self.persist(&s) {
            // Losing a secret write could make a dealer equivocate after a restart: stop.
            panic!("cannot persist the secret store: {e}");
        }
    }
}

impl dkg::SecretStore for SecretStore {
    async fn put_share(&mut self, epoch: Epoch, share: Share) {
        self.update(|s| {
            s.shares.insert(epoch.get(), hex::encode(share.encode()));
        });
    }

    async fn get_share(&mut self, epoch: Epoch) -> Option<Share> {
        self.share(epoch)
    }

    async fn put_seed(&mut self, epoch: Epoch, seed: Summary) {
        self.update(|s| {
            s.seeds.insert(epoch.get(), hex::encode(seed.encode()));
        });
    }

    async fn get_seed(&mut self, epoch: Epoch) -> Option<Summary> {
        let s = self.inner.lock().expect("secret store lock");
        s.seeds.get(&epoch.get()).and_then(|h| decode_hex(h))
    }

    async fn put_dealing<P: PublicKeyTrait>(
        &mut self,
        epoch: Epoch,
        dealer: P,
        private: DealerPrivMsg,
    ) {
        let key = dealing_key(epoch, &dealer);
        self.update(|s| {
            s.dealings.insert(key, hex::encode(private.encode()));
        });
    }

    async fn get_dealing<P: PublicKeyTrait>(
        &mut self,
        epoch: Epoch,
        dealer: &P,
    ) -> Option<DealerPrivMsg> {
        let key = dealing_key(epoch, dealer);
        let s = self.inner.lock().expect("secret store lock");
        s.dealings.get(&key).and_then(|h| decode_hex(h))
    }

    async fn prune(&mut self, min: Epoch) {
        let min = min.get();
        let floor = format!("{min:020}:");
        self.update(|s| {
            s.shares.retain(|e, _| *e >= min);
            s.seeds.retain(|e, _| *e >= min);
            s.dealings.retain(|k, _| k.as_str() >= floor.as_str());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_store_persists_privately_and_prunes() {
        use commonware_cryptography::{
            bls12381::{dkg::feldman_desmedt::deal, primitives::sharing::Mode},
            ed25519, Signer,
        };
        use commonware_glue::dkg::SecretStore as _;
        use commonware_utils::N3f1;
        let keys =
            Set::from_iter_dedup((0..4).map(|i| ed25519::PrivateKey::from_seed(i).public_key()));
        let rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let (_, shares) = deal::<MinSig, _, N3f1>(rng, Mode::NonZeroCounter, keys.clone()).unwrap();
        let share = shares.values()[0].clone();
        let dir = std::env::temp_dir().join(format!("unet-secrets-{}", std::process::id()));
        let path = dir.join("secrets.json");
        let _ = std::fs::remove_dir_all(&dir);
        let store = SecretStore::open(&path).unwrap();
        store.insert_share(Epoch::zero(), &share).unwrap();
        futures::executor::block_on(async {
            let mut s = store.clone();
            s.put_share(Epoch::new(3), share.clone()).await;
            assert_eq!(s.get_share(Epoch::new(3)).await, Some(share.clone()));
            s.prune(Epoch::new(1)).await;
        });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Reopened from disk: the pruned epoch is gone, the later one survives.
        let reopened = SecretStore::open(&path).unwrap();
        assert_eq!(reopened.share(Epoch::zero()), None);
        assert_eq!(reopened.share(Epoch::new(3)), Some(share));
        // A world-readable store is refused.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(SecretStore::open(&path).is_err());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn addresses_parse_deterministically() {
        assert!(matches!(
            transport_address("127.0.0.1:30300"),
            Address::Symmetric(_)
        ));
        assert!(matches!(
            transport_address("node1.example.org:30300"),
            Address::Asymmetric { .. }
        ));
        assert_eq!(transport_address("???"), transport_address(""));
    }
}
