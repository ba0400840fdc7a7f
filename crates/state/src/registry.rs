//! POCI transitions: chip registration, transfer, deregistration, and governance.
//!
//! Every function checks everything first and writes only when all checks pass, so a failed
//! payload leaves no trace but its fee.

use crate::{readset::ReadSet, working::Working, BlockEnv, BlockError};
use commonware_codec::{Copying, DecodeExt, Encode};
use commonware_cryptography::Verifier as _;
use std::collections::BTreeSet;
use unet_poci::{EvidenceKind, EvidenceVerifier, PociVerifier, TrustStore, VerifyError};
use unet_types::{
    chip::{
        registration_nonce, Approval, BlockHashEntry, Chip, ChipId, ChipList, ChipStatus,
        GovAction, Registry, GOV_NAMESPACE, MAX_NAME, MAX_ROOTS,
    },
    firmware::{FirmwarePolicy, MeasurementRule, MAX_FIRMWARE_POLICIES},
    keys::{
        block_hash_key, chip_index_key, chip_key, owner_chips_key, registry_key, revoked_chip_key,
    },
    liveness::owner_compute_keys,
    Address, Payload, SignedTx,
};

pub use unet_types::chip::MAX_CHIPS_PER_OWNER;

/// Why a POCI payload had no effect (its receipt says `failed` with this code and reason).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PociError {
    /// The registration's nonce names an anchor block outside the recent window.
    #[error("anchor block {anchor} is outside the last {window} blocks")]
    StaleAnchor {
        /// Height of the anchor block the nonce names.
        anchor: u64,
        /// How many recent blocks an anchor may be from (a parameter).
        window: u64,
    },
    /// The POCI evidence (certificate chain, attestation) did not verify.
    #[error("evidence rejected: {0}")]
    Evidence(VerifyError),
    /// The chip (hex id) is already registered.
    #[error("chip {0} is already registered")]
    AlreadyRegistered(String),
    /// The chip (hex id) was revoked by governance and may not register again.
    #[error("chip {0} was revoked by governance")]
    ChipRevoked(String),
    /// A certificate of the chip's chain (its certificate id, hex) was revoked by governance.
    #[error("certificate {0} in the chip's chain was revoked by governance")]
    CertificateRevoked(String),
    /// The attested model is not in the governance-kept model table.
    #[error("model {0:?} is not in the model table")]
    UnknownModel(String),
    /// No chip with this id (hex) is registered.
    #[error("no registered chip {0}")]
    UnknownChip(String),
    /// The chip (hex id) belongs to another account than the signer.
    #[error("chip {0} belongs to another owner")]
    NotOwner(String),
    /// The owner already has [`MAX_CHIPS_PER_OWNER`] chips.
    #[error("owner already has {MAX_CHIPS_PER_OWNER} chips")]
    TooManyChips,
    /// An approval signed by a key (hex) that is not a governor.
    #[error("governance approval by {0} who is not a governor")]
    NotGovernor(String),
    /// An approval whose signature by this governor (hex) does not verify.
    #[error("governance approval by {0} does not verify")]
    BadApproval(String),
    /// The governor (hex) approved the action twice.
    #[error("governor {0} approved twice")]
    DuplicateApproval(String),
    /// Fewer distinct governor approvals than the threshold.
    #[error("{got} approvals, {needed} needed")]
    InsufficientApprovals {
        /// Valid approvals given.
        got: usize,
        /// The governance threshold.
        needed: usize,
    },
    /// The governance action is malformed (the reason in words).
    #[error("invalid governance action: {0}")]
    InvalidAction(String),
}

impl PociError {
    /// Stable code of the failed check (receipts and API).
    pub fn code(&self) -> String {
        match self {
            Self::StaleAnchor { .. } => "stale_anchor".into(),
            Self::Evidence(e) => format!("evidence_{}", e.code()),
            Self::AlreadyRegistered(_) => "already_registered".into(),
            Self::ChipRevoked(_) => "chip_revoked".into(),
            Self::CertificateRevoked(_) => "certificate_revoked".into(),
            Self::UnknownModel(_) => "unknown_model".into(),
            Self::UnknownChip(_) => "unknown_chip".into(),
            Self::NotOwner(_) => "not_owner".into(),
            Self::TooManyChips => "too_many_chips".into(),
            Self::NotGovernor(_) => "not_governor".into(),
            Self::BadApproval(_) => "bad_approval".into(),
            Self::DuplicateApproval(_) => "duplicate_approval".into(),
            Self::InsufficientApprovals { .. } => "insufficient_approvals".into(),
            Self::InvalidAction(_) => "invalid_action".into(),
        }
    }
}

fn hex(id: &[u8]) -> String {
    ::hex::encode(id)
}

/// Registry reads of the block's chip payloads. A registration touches what its evidence
/// claims (known before verification), the next registry slot and the sender's chip list and
/// compute; a transfer both owners' lists and the new owner's compute; a revocation its
/// revocation entry. Chips that change hands, leave or are revoked are affected (their market
/// role is read). `chip_count` is the registry's count before the block.
pub(crate) fn reads(rs: &mut ReadSet<'_>, env: &BlockEnv<'_>, txs: &[SignedTx], chip_count: u64) {
    let window = env.params.registration_window.max(1);
    let mut registrations = 0u64;
    for stx in txs {
        let sender = &stx.tx.sender;
        match &stx.tx.payload {
            Payload::RegisterChip {
                anchor_height,
                evidence,
            } => {
                rs.touch(block_hash_key(anchor_height % window));
                rs.touch(owner_chips_key(sender));
                if let Ok(claim) = unet_poci::claimed_identity(evidence) {
                    rs.touch(chip_key(&claim.chip_id));
                    rs.touch(revoked_chip_key(&claim.chip_id));
                    for fp in &claim.chain_fingerprints {
                        rs.cert(fp);
                    }
                }
                rs.touch(chip_index_key(chip_count + registrations));
                for k in owner_compute_keys(sender) {
                    rs.touch(k);
                }
                registrations += 1;
            }
            Payload::TransferChip { chip_id, to } => {
                rs.chip(*chip_id);
                rs.affect(*chip_id);
                // The reward cursor may pay this chip after the transfer, to its new owner.
                rs.new_owner(*chip_id, to);
                rs.touch(owner_chips_key(sender));
                rs.touch(owner_chips_key(to));
                for k in owner_compute_keys(to) {
                    rs.touch(k);
                }
            }
            Payload::DeregisterChip { chip_id } => {
                rs.chip(*chip_id);
                rs.affect(*chip_id);
                rs.touch(owner_chips_key(sender));
            }
            Payload::Govern {
                action: GovAction::RevokeChip { chip_id },
                ..
            } => {
                rs.chip(*chip_id);
                rs.affect(*chip_id);
                rs.touch(revoked_chip_key(chip_id));
            }
            Payload::Govern {
                action: GovAction::RevokeCertificate { fingerprint },
                ..
            } => {
                rs.cert(fingerprint);
            }
            _ => {}
        }
    }
}

/// The trust store the registry describes.
pub fn trust_store(registry: &Registry) -> TrustStore {
    let mut trust = TrustStore::new();
    trust.allow_devnet_roots = registry.allow_devnet_roots;
    for r in &registry.roots {
        if let Ok(kind) = EvidenceKind::from_tag(r.kind) {
            // Roots were validated when added; a root that no longer parses is skipped.
            let _ = trust.add_root(kind, &r.der, r.devnet_only);
        }
    }
    for p in &registry.firmware {
        trust.set_firmware_policy(verifier_policy(p));
    }
    trust
}

/// A firmware policy as chain data, in the verifier's terms.
pub fn verifier_policy(p: &FirmwarePolicy) -> unet_poci::nvidia::FirmwarePolicy {
    let version = |v: &String| (!v.is_empty()).then(|| v.clone());
    unet_poci::nvidia::FirmwarePolicy {
        architecture: p.architecture.clone(),
        min_driver: version(&p.min_driver),
        min_vbios: version(&p.min_vbios),
        measurements: p
            .measurements
            .iter()
            .map(|r| unet_poci::nvidia::MeasurementRule {
                index: r.index,
                allowed: r.allowed.clone(),
            })
            .collect(),
    }
}

/// A verifier's firmware policy as chain data (what `GovAction::SetFirmwarePolicy` carries).
pub fn chain_policy(p: &unet_poci::nvidia::FirmwarePolicy) -> FirmwarePolicy {
    FirmwarePolicy {
        architecture: p.architecture.clone(),
        min_driver: p.min_driver.clone().unwrap_or_default(),
        min_vbios: p.min_vbios.clone().unwrap_or_default(),
        measurements: p
            .measurements
            .iter()
            .map(|r| MeasurementRule {
                index: r.index,
                allowed: r.allowed.clone(),
            })
            .collect(),
    }
}

/// Registers a chip to `owner`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn register(
    w: &mut Working<'_>,
    env: &BlockEnv<'_>,
    registry: &mut Registry,
    trust: &TrustStore,
    owner: &Address,
    anchor_height: u64,
    evidence: &[u8],
) -> Result<Result<ChipId, PociError>, BlockError> {
    let window = env.params.registration_window.max(1);
    if anchor_height >= env.height || env.height - anchor_height > window {
        return Ok(Err(PociError::StaleAnchor {
            anchor: anchor_height,
            window,
        }));
    }
    let anchor: Option<BlockHashEntry> = w.get(&block_hash_key(anchor_height % window))?;
    let Some(anchor) = anchor.filter(|a| a.height == anchor_height) else {
        return Ok(Err(PociError::StaleAnchor {
            anchor: anchor_height,
            window,
        }));
    };
    let nonce = registration_nonce(env.chain_id, &anchor.hash, owner);
    let identity =
        match PociVerifier.verify_registration(evidence, &nonce, env.timestamp_ms / 1000, trust) {
            Ok(i) => i,
            Err(e) => return Ok(Err(PociError::Evidence(e))),
        };
    let id = identity.chip_id;
    if w.raw(&revoked_chip_key(&id))?.is_some() {
        return Ok(Err(PociError::ChipRevoked(hex(&id))));
    }
    for fp in &identity.chain_fingerprints {
        if w.cert_revoked(fp)? {
            return Ok(Err(PociError::CertificateRevoked(hex(fp))));
        }
    }
    if w.raw(&chip_key(&id))?.is_some() {
        return Ok(Err(PociError::AlreadyRegistered(hex(&id))));
    }
    let model = [&identity.model_detail, &identity.model]
        .into_iter()
        .find(|m| registry.model(m).is_some())
        .cloned();
    let Some(model) = model else {
        return Ok(Err(PociError::UnknownModel(identity.model.clone())));
    };
    let ChipList(mut owned) = w.get(&owner_chips_key(owner))?.unwrap_or_default();
    if owned.len() >= MAX_CHIPS_PER_OWNER {
        return Ok(Err(PociError::TooManyChips));
    }
    let chip = Chip {
        owner: owner.clone(),
        model,
        kind: identity.kind.tag(),
        device_key: identity.device_public_key.sec1.clone(),
        serial: identity
            .serial
            .chars()
            .take(unet_types::chip::MAX_SERIAL)
            .collect(),
        registered_height: env.height,
        status: ChipStatus::Online,
        root: identity.root_fingerprint,
        chain: identity.chain_fingerprints.clone(),
        index: registry.chip_count,
        live: Default::default(),
    };
    w.put(chip_key(&id), &chip);
    w.put(chip_index_key(registry.chip_count), &id);
    owned.push(id);
    w.put(owner_chips_key(owner), &ChipList(owned));
    registry.chip_count += 1;
    Ok(Ok(id))
}

fn owned_chip(
    w: &Working<'_>,
    owner: &Address,
    chip_id: &ChipId,
) -> Result<Result<Chip, PociError>, BlockError> {
    let Some(chip): Option<Chip> = w.get(&chip_key(chip_id))? else {
        return Ok(Err(PociError::UnknownChip(hex(chip_id))));
    };
    if chip.owner != *owner {
        return Ok(Err(PociError::NotOwner(hex(chip_id))));
    }
    Ok(Ok(chip))
}

fn remove_owned(w: &mut Working<'_>, owner: &Address, chip_id: &ChipId) -> Result<(), BlockError> {
    let ChipList(mut owned) = w.get(&owner_chips_key(owner))?.unwrap_or_default();
    owned.retain(|c| c != chip_id);
    if owned.is_empty() {
        w.delete(owner_chips_key(owner));
    } else {
        w.put(owner_chips_key(owner), &ChipList(owned));
    }
    Ok(())
}

/// Moves a chip to a new owner (by its current owner).
pub(crate) fn transfer(
    w: &mut Working<'_>,
    owner: &Address,
    chip_id: &ChipId,
    to: &Address,
) -> Result<Result<(), PociError>, BlockError> {
    let mut chip = match owned_chip(w, owner, chip_id)? {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    if owner == to {
        return Ok(Ok(()));
    }
    let ChipList(mut theirs) = w.get(&owner_chips_key(to))?.unwrap_or_default();
    if theirs.len() >= MAX_CHIPS_PER_OWNER {
        return Ok(Err(PociError::TooManyChips));
    }
    remove_owned(w, owner, chip_id)?;
    theirs.push(*chip_id);
    w.put(owner_chips_key(to), &ChipList(theirs));
    chip.owner = to.clone();
    w.put(chip_key(chip_id), &chip);
    Ok(Ok(()))
}

/// Removes a chip from the registry (by its owner). Its index slot stays, pointing nowhere.
pub(crate) fn deregister(
    w: &mut Working<'_>,
    owner: &Address,
    chip_id: &ChipId,
) -> Result<Result<(), PociError>, BlockError> {
    if let Err(e) = owned_chip(w, owner, chip_id)? {
        return Ok(Err(e));
    }
    remove_owned(w, owner, chip_id)?;
    w.delete(chip_key(chip_id));
    Ok(Ok(()))
}

/// Applies a governance action approved by a threshold of governors.
pub(crate) fn govern(
    w: &mut Working<'_>,
    env: &BlockEnv<'_>,
    registry: &mut Registry,
    action: &GovAction,
    approvals: &[Approval],
) -> Result<Result<(), PociError>, BlockError> {
    let message = action.approval_message(env.chain_id, registry.gov_nonce);
    let mut seen = BTreeSet::new();
    for a in approvals {
        if !registry.governance.contains(&a.governor) {
            return Ok(Err(PociError::NotGovernor(hex(a.governor.as_ref()))));
        }
        if !seen.insert(a.governor.clone()) {
            return Ok(Err(PociError::DuplicateApproval(hex(a.governor.as_ref()))));
        }
        if !a.governor.verify(GOV_NAMESPACE, &message, &a.signature) {
            return Ok(Err(PociError::BadApproval(hex(a.governor.as_ref()))));
        }
    }
    let needed = registry.threshold.max(1) as usize;
    if registry.governance.is_empty() || seen.len() < needed {
        return Ok(Err(PociError::InsufficientApprovals {
            got: seen.len(),
            needed,
        }));
    }
    let invalid = |m: &str| Ok(Err(PociError::InvalidAction(m.to_string())));
    match action {
        GovAction::SetModel(m) => {
            if m.name.is_empty() || m.name.len() > MAX_NAME || m.compute_milli_tops == 0 {
                return invalid("model needs a name and a non-zero rating");
            }
            if registry.model(&m.name).is_none()
                && registry.models.len() >= unet_types::chip::MAX_MODELS
            {
                return invalid("model table full");
            }
            registry.set_model(m.clone());
        }
        GovAction::RemoveModel { name } => {
            if !registry.remove_model(name) {
                return invalid("no such model");
            }
        }
        GovAction::AddRoot(root) => {
            let Ok(kind) = EvidenceKind::from_tag(root.kind) else {
                return invalid("unknown evidence kind");
            };
            if registry.roots.len() >= MAX_ROOTS {
                return invalid("too many roots");
            }
            if registry.roots.iter().any(|r| r.der == root.der) {
                return invalid("root already pinned");
            }
            if TrustStore::new()
                .add_root(kind, &root.der, root.devnet_only)
                .is_err()
            {
                return invalid("not a self-signed P-256/P-384 root certificate");
            }
            registry.roots.push(root.clone());
        }
        GovAction::RemoveRoot { fingerprint } => {
            let before = registry.roots.len();
            registry.roots.retain(|r| r.fingerprint() != *fingerprint);
            if registry.roots.len() == before {
                return invalid("no such root");
            }
        }
        GovAction::RevokeChip { chip_id } => {
            // The chip record's status change (and its counters) is the caller's job.
            w.put(revoked_chip_key(chip_id), &1u8);
        }
        GovAction::RevokeCertificate { fingerprint } => {
            w.put(w.cert_key(fingerprint), &1u8);
        }
        GovAction::SetFirmwarePolicy(policy) => {
            if !unet_poci::nvidia::ARCHITECTURES
                .iter()
                .any(|a| a.name == policy.architecture)
            {
                return invalid("no such NVIDIA architecture");
            }
            if let Err(m) = verifier_policy(policy).validate() {
                return Ok(Err(PociError::InvalidAction(m)));
            }
            let existing = registry
                .firmware
                .binary_search_by(|p| p.architecture.cmp(&policy.architecture));
            match (existing, policy.is_empty()) {
                (Ok(i), true) => {
                    registry.firmware.remove(i);
                }
                (Ok(i), false) => registry.firmware[i] = policy.clone(),
                (Err(_), true) => return invalid("no firmware policy to remove"),
                (Err(i), false) => {
                    if registry.firmware.len() >= MAX_FIRMWARE_POLICIES {
                        return invalid("too many firmware policies");
                    }
                    registry.firmware.insert(i, policy.clone());
                }
            }
        }
    }
    registry.gov_nonce += 1;
    Ok(Ok(()))
}

/// Whether the chip is revoked, by governance or through any certificate of its chain.
pub(crate) fn is_revoked(w: &Working<'_>, chip: &Chip) -> Result<bool, BlockError> {
    let mut revoked = false;
    for fp in &chip.chain {
        revoked |= w.cert_revoked(fp)?;
    }
    Ok(effective_status(chip, |_| revoked) == ChipStatus::Revoked)
}

/// A chip's status, counting revocations of any certificate in its chain.
pub fn effective_status(chip: &Chip, cert_revoked: impl Fn(&[u8; 32]) -> bool) -> ChipStatus {
    if chip.status == ChipStatus::Revoked || chip.chain.iter().any(cert_revoked) {
        ChipStatus::Revoked
    } else {
        chip.status
    }
}

/// Reads the registry entry.
pub(crate) fn load(w: &Working<'_>) -> Result<Registry, BlockError> {
    Ok(w.get(&registry_key())?.unwrap_or_default())
}

/// Decodes a registry entry (for callers outside execution).
pub fn decode_registry(bytes: &[u8]) -> Option<Registry> {
    Registry::decode(Copying(bytes)).ok()
}

/// Encoded registry (genesis).
pub fn encode_registry(r: &Registry) -> Vec<u8> {
    r.encode().to_vec()
}
