//! POCI registry types: chips, models, trust anchors and governance actions.
//!
//! Encodings (canonical, bounded):
//!
//! ```text
//! Chip       := owner [32] | model str | kind u8 | device_key bytes | serial str
//!             | registered_height u64 | status u8 | root [32] | chain vec<[32]> | index u64
//!             | live ChipLiveness (see [`crate::liveness`])
//! Registry   := models vec<Model> | roots vec<Root> | allow_devnet_roots bool
//!             | governance vec<[32]> | threshold u8 | gov_nonce u64 | chip_count u64
//!             | firmware vec<FirmwarePolicy> (see [`crate::firmware`])
//! Model      := name str | compute_milli_tops u64
//! Root       := kind u8 | der bytes | devnet_only bool
//! GovAction  := tag u8 | fields (see [`GovAction`])
//! ```

use crate::{Address, Digest, Signature};
use bytes::BufMut;
use commonware_codec::{Encode, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_cryptography::{Hasher, Sha256};
use unet_address::read_address;

/// A chip's identity: `SHA-256("UNET-POCI/chip-id/v1" || evidence kind tag || DeviceID public
/// key, uncompressed SEC1)` (`unet_poci::chip_id`): one key under two evidence kinds is two chips.
pub type ChipId = [u8; 32];

/// Evidence kind tags (match `unet_poci::EvidenceKind::tag`).
pub mod kind {
    /// Tag of vendor X.509 evidence (a device certificate chain to a pinned vendor root).
    pub const VENDOR_X509: u8 = 1;
    /// Tag of NVIDIA SPDM evidence (a signed GPU attestation report and its chain).
    pub const NVIDIA_SPDM: u8 = 2;

    /// Human name of a kind tag.
    pub fn name(tag: u8) -> &'static str {
        match tag {
            VENDOR_X509 => "vendor-x509",
            NVIDIA_SPDM => "nvidia-spdm",
            _ => "unknown",
        }
    }
}

/// Longest model name, bytes (decoders and genesis refuse longer).
pub const MAX_NAME: usize = 64;
/// Longest chip serial number, bytes.
pub const MAX_SERIAL: usize = 128;
/// Longest DeviceID public key, bytes (uncompressed SEC1 P-384: 1 + 48 + 48).
pub const MAX_DEVICE_KEY: usize = 97;
/// Most intermediate certificate ids recorded for one chip.
pub const MAX_CHAIN: usize = 8;
/// Most models in the model table.
pub const MAX_MODELS: usize = 1024;
/// Most pinned vendor roots.
pub const MAX_ROOTS: usize = 64;
/// Largest DER of one pinned vendor root, bytes.
pub const MAX_ROOT_DER: usize = 4096;
/// Most governors (and so most approvals on one governance action).
pub const MAX_GOVERNORS: usize = 32;
/// Largest registration evidence (an NVIDIA report and its chain are about 8 KiB).
pub const MAX_EVIDENCE: usize = 24 * 1024;

/// A chip's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChipStatus {
    /// Answering its challenges: counts for rewards and can be leased.
    Online = 0,
    /// Missed a challenge; it returns to Online by answering a later one.
    Unresponsive = 1,
    /// Revoked by governance (the chip or a certificate of its chain); final.
    Revoked = 2,
}

impl ChipStatus {
    fn from_u8(v: u8) -> Result<Self, CodecError> {
        match v {
            0 => Ok(Self::Online),
            1 => Ok(Self::Unresponsive),
            2 => Ok(Self::Revoked),
            v => Err(CodecError::InvalidEnum(v)),
        }
    }

    /// The wire name (`online`, `unresponsive`, `revoked`), as in the API and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Unresponsive => "unresponsive",
            Self::Revoked => "revoked",
        }
    }
}

/// A registered chip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chip {
    /// The account that registered the chip (or received it by transfer); rewards go to it.
    pub owner: Address,
    /// The attested model; a name in the model table (its rating is the chip's compute).
    pub model: String,
    /// Evidence kind tag ([`kind`]) the chip registered with.
    pub kind: u8,
    /// Uncompressed SEC1 DeviceID key (signs liveness answers).
    pub device_key: Vec<u8>,
    /// Serial number as attested by the evidence.
    pub serial: String,
    /// Height of the block that registered the chip.
    pub registered_height: u64,
    /// Online, Unresponsive or Revoked.
    pub status: ChipStatus,
    /// SHA-256 of the vendor root the chip's chain ends in.
    pub root: [u8; 32],
    /// Certificate id (`unet_poci::certificate_id`: a hash of the subject key, which no
    /// re-encoding of the certificate changes) of each intermediate of the registration chain,
    /// for intermediate revocation.
    pub chain: Vec<[u8; 32]>,
    /// Position in the registry's chip index (for paging).
    pub index: u64,
    /// Challenges, online time and rewards.
    pub live: crate::liveness::ChipLiveness,
}

/// A chip model and its rated compute.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Model {
    /// Model name as the evidence states it (e.g. `H100`); at most [`MAX_NAME`] bytes.
    pub name: String,
    /// Rated compute in thousandths of a TOPS (e.g. 32 TOPS = 32_000).
    pub compute_milli_tops: u64,
}

/// A pinned vendor root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// Evidence kind tag ([`kind`]) whose chains may end at this root.
    pub kind: u8,
    /// The root certificate, DER; at most [`MAX_ROOT_DER`] bytes.
    pub der: Vec<u8>,
    /// Accepted only where the registry allows devnet roots (a devnet vendor CA).
    pub devnet_only: bool,
}

impl Root {
    /// SHA-256 of the root certificate's DER.
    pub fn fingerprint(&self) -> [u8; 32] {
        digest32(Sha256::hash(&[&self.der]))
    }
}

/// POCI configuration kept in one state entry: models, roots, governance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    /// Sorted by name.
    pub models: Vec<Model>,
    /// Pinned vendor roots; registration chains must end in one.
    pub roots: Vec<Root>,
    /// False on a production chain: devnet-only roots are then refused.
    pub allow_devnet_roots: bool,
    /// Governance members (any `threshold` of them approve an action).
    pub governance: Vec<Address>,
    /// Approvals an action needs (at least 1, at most the number of governors).
    pub threshold: u8,
    /// Consumed by each governance action (replay protection).
    pub gov_nonce: u64,
    /// Chips ever registered (next chip index).
    pub chip_count: u64,
    /// Firmware policies by architecture, sorted by name ([`crate::firmware`]).
    pub firmware: Vec<crate::firmware::FirmwarePolicy>,
}

impl Registry {
    /// The model called `name`, if the table has it.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.models[i])
    }

    /// Inserts or replaces a model, keeping the table sorted.
    pub fn set_model(&mut self, model: Model) {
        match self.models.binary_search_by(|m| m.name.cmp(&model.name)) {
            Ok(i) => self.models[i] = model,
            Err(i) => self.models.insert(i, model),
        }
    }

    /// Removes the model called `name`; false when there is none.
    pub fn remove_model(&mut self, name: &str) -> bool {
        match self.models.binary_search_by(|m| m.name.as_str().cmp(name)) {
            Ok(i) => {
                self.models.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}

/// What governance can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GovAction {
    /// Add a model or change its rating.
    SetModel(Model),
    /// Remove a model from the table (registrations of it are refused from then on).
    RemoveModel {
        /// The model's name.
        name: String,
    },
    /// Pin a new vendor root.
    AddRoot(Root),
    /// Unpin a vendor root (registrations through it are refused from then on).
    RemoveRoot {
        /// SHA-256 of the root's DER ([`Root::fingerprint`]).
        fingerprint: [u8; 32],
    },
    /// Revoke one chip (it stops earning at once and can never register again).
    RevokeChip {
        /// The chip to revoke.
        chip_id: ChipId,
    },
    /// Revoke a certificate (e.g. a vendor intermediate): every chip whose chain contains it
    /// counts as revoked from this block on.
    RevokeCertificate {
        /// The certificate's id, `unet_poci::certificate_id` (a hash of its subject key), not
        /// the SHA-256 of its DER: a DER hash changes when anyone rewrites the ECDSA signature
        /// (r, s) as (r, n - s), and the rewritten certificate still verifies.
        fingerprint: [u8; 32],
    },
    /// Set the firmware policy of one NVIDIA architecture (minimum driver and VBIOS versions,
    /// reference measurements); a policy that requires nothing removes it.
    SetFirmwarePolicy(crate::firmware::FirmwarePolicy),
}

impl GovAction {
    /// The wire name of the action (`set_model`, `revoke_chip`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::SetModel(_) => "set_model",
            Self::RemoveModel { .. } => "remove_model",
            Self::AddRoot(_) => "add_root",
            Self::RemoveRoot { .. } => "remove_root",
            Self::RevokeChip { .. } => "revoke_chip",
            Self::RevokeCertificate { .. } => "revoke_certificate",
            Self::SetFirmwarePolicy(_) => "set_firmware_policy",
        }
    }

    /// What governors sign to approve this action as the `gov_nonce`-th action on `chain_id`.
    pub fn approval_message(&self, chain_id: u64, gov_nonce: u64) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&chain_id.to_be_bytes());
        m.extend_from_slice(&gov_nonce.to_be_bytes());
        m.extend_from_slice(&self.encode());
        m
    }
}

/// One governor's approval of an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// The governor (one of the registry's `governance`) who approves.
    pub governor: Address,
    /// Its signature over [`GovAction::approval_message`] under [`GOV_NAMESPACE`].
    pub signature: Signature,
}

/// Namespace of governance approvals.
pub const GOV_NAMESPACE: &[u8] = b"UNET_GOV";
/// Domain of registration nonces.
pub const REGISTER_DOMAIN: &[u8] = b"UNET_POCI_REGISTER";

/// The nonce a chip's registration evidence must carry: binds it to this chain, to a recent
/// block (freshness) and to the owner (so evidence taken from the mempool is useless to anyone
/// else).
pub fn registration_nonce(chain_id: u64, anchor: &Digest, owner: &Address) -> [u8; 32] {
    digest32(Sha256::hash(&[
        REGISTER_DOMAIN,
        &chain_id.to_be_bytes(),
        anchor.as_ref(),
        owner.as_ref(),
    ]))
}

/// A SHA-256 digest as a plain array.
pub fn digest32(d: Digest) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

// ---- codec ----

pub(crate) fn write_str(s: &str, buf: &mut impl BufMut) {
    s.as_bytes().write(buf);
}

pub(crate) fn str_size(s: &str) -> usize {
    s.as_bytes().encode_size()
}

pub(crate) fn read_str(
    buf: &mut impl commonware_codec::Buf,
    max: usize,
) -> Result<String, CodecError> {
    let bytes = Vec::<u8>::read_cfg(buf, &(RangeCfg::from(..=max), ()))?;
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid("str", "not utf-8"))
}

fn read_bytes(buf: &mut impl commonware_codec::Buf, max: usize) -> Result<Vec<u8>, CodecError> {
    Vec::<u8>::read_cfg(buf, &(RangeCfg::from(..=max), ()))
}

/// Reads past what [`read_bytes`] (or, with `utf8`, [`read_str`]) reads, refusing what they
/// refuse, without copying it out.
fn skip_bytes(
    buf: &mut impl commonware_codec::Buf,
    max: usize,
    utf8: bool,
) -> Result<(), CodecError> {
    let len = usize::read_cfg(buf, &RangeCfg::from(..=max))?;
    if buf.remaining() < len {
        return Err(CodecError::EndOfBuffer);
    }
    if utf8 {
        let valid = match buf.chunk().get(..len) {
            Some(bytes) => std::str::from_utf8(bytes).is_ok(),
            // Not contiguous (never for a stored entry): copy it to check it.
            None => {
                let mut bytes = vec![0; len];
                buf.copy_to_slice(&mut bytes);
                return String::from_utf8(bytes)
                    .map(drop)
                    .map_err(|_| CodecError::Invalid("str", "not utf-8"));
            }
        };
        if !valid {
            return Err(CodecError::Invalid("str", "not utf-8"));
        }
    }
    buf.advance(len);
    Ok(())
}

impl Write for Chip {
    fn write(&self, buf: &mut impl BufMut) {
        self.owner.write(buf);
        write_str(&self.model, buf);
        self.kind.write(buf);
        self.device_key.write(buf);
        write_str(&self.serial, buf);
        self.registered_height.write(buf);
        (self.status as u8).write(buf);
        self.root.write(buf);
        self.chain.write(buf);
        self.index.write(buf);
        self.live.write(buf);
    }
}

impl EncodeSize for Chip {
    fn encode_size(&self) -> usize {
        self.owner.encode_size()
            + str_size(&self.model)
            + 1
            + self.device_key.encode_size()
            + str_size(&self.serial)
            + 8
            + 1
            + 32
            + self.chain.encode_size()
            + 8
            + self.live.encode_size()
    }
}

impl Read for Chip {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            owner: read_address(buf)?,
            model: read_str(buf, MAX_NAME)?,
            kind: u8::read(buf)?,
            device_key: read_bytes(buf, MAX_DEVICE_KEY)?,
            serial: read_str(buf, MAX_SERIAL)?,
            registered_height: u64::read(buf)?,
            status: ChipStatus::from_u8(u8::read(buf)?)?,
            root: <[u8; 32]>::read(buf)?,
            chain: Vec::<[u8; 32]>::read_cfg(buf, &(RangeCfg::from(..=MAX_CHAIN), ()))?,
            index: u64::read(buf)?,
            live: crate::liveness::ChipLiveness::read(buf)?,
        })
    }
}

/// What planning needs from a chip entry, and what an expiry looks at before decoding the
/// whole record: its owner's key bytes, its certificate chain, its status and the height of
/// the challenge it has pending. The model, device key and serial are checked and skipped,
/// not copied out.
///
/// Decodes the bytes of a [`Chip`] and refuses what [`Chip`] refuses, except that the owner's
/// key is not checked to be a curve point: decompressing it is most of the cost of decoding a
/// chip, and deriving the owner's state keys needs only its bytes. A chip entry whose owner
/// is not a point makes the block fail wherever execution decodes the whole record (`Chip`
/// refuses it there) whatever the planner declared; an expiry of a challenge the chip had
/// answered reads only these fields. No block writes such an entry: every chip record is
/// encoded from a decoded `Chip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChipRefs {
    /// The owner's public key, as stored.
    pub owner: [u8; 32],
    /// See [`Chip::chain`].
    pub chain: Vec<[u8; 32]>,
    /// See [`Chip::status`].
    pub status: ChipStatus,
    /// The height of the pending challenge, if any (see [`crate::liveness::ChipLiveness`]).
    pub pending: Option<u64>,
}

impl Read for ChipRefs {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        // Field by field as `Chip`'s `Read`, keeping four.
        let owner = <[u8; 32]>::read(buf)?;
        skip_bytes(buf, MAX_NAME, true)?;
        u8::read(buf)?;
        skip_bytes(buf, MAX_DEVICE_KEY, false)?;
        skip_bytes(buf, MAX_SERIAL, true)?;
        u64::read(buf)?;
        let status = ChipStatus::from_u8(u8::read(buf)?)?;
        <[u8; 32]>::read(buf)?;
        let chain = Vec::<[u8; 32]>::read_cfg(buf, &(RangeCfg::from(..=MAX_CHAIN), ()))?;
        u64::read(buf)?;
        let live = crate::liveness::ChipLiveness::read(buf)?;
        Ok(Self {
            owner,
            chain,
            status,
            pending: live.pending.map(|p| p.height),
        })
    }
}

impl Write for Model {
    fn write(&self, buf: &mut impl BufMut) {
        write_str(&self.name, buf);
        self.compute_milli_tops.write(buf);
    }
}

impl EncodeSize for Model {
    fn encode_size(&self) -> usize {
        str_size(&self.name) + 8
    }
}

impl Read for Model {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            name: read_str(buf, MAX_NAME)?,
            compute_milli_tops: u64::read(buf)?,
        })
    }
}

impl Write for Root {
    fn write(&self, buf: &mut impl BufMut) {
        self.kind.write(buf);
        self.der.write(buf);
        self.devnet_only.write(buf);
    }
}

impl EncodeSize for Root {
    fn encode_size(&self) -> usize {
        1 + self.der.encode_size() + 1
    }
}

impl Read for Root {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            kind: u8::read(buf)?,
            der: read_bytes(buf, MAX_ROOT_DER)?,
            devnet_only: bool::read(buf)?,
        })
    }
}

impl Write for Registry {
    fn write(&self, buf: &mut impl BufMut) {
        self.models.write(buf);
        self.roots.write(buf);
        self.allow_devnet_roots.write(buf);
        self.governance.write(buf);
        self.threshold.write(buf);
        self.gov_nonce.write(buf);
        self.chip_count.write(buf);
        self.firmware.write(buf);
    }
}

impl EncodeSize for Registry {
    fn encode_size(&self) -> usize {
        self.models.encode_size()
            + self.roots.encode_size()
            + 1
            + self.governance.encode_size()
            + 1
            + 8
            + 8
            + self.firmware.encode_size()
    }
}

impl Read for Registry {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            models: Vec::<Model>::read_cfg(buf, &(RangeCfg::from(..=MAX_MODELS), ()))?,
            roots: Vec::<Root>::read_cfg(buf, &(RangeCfg::from(..=MAX_ROOTS), ()))?,
            allow_devnet_roots: bool::read(buf)?,
            governance: Vec::<Address>::read_cfg(buf, &(RangeCfg::from(..=MAX_GOVERNORS), ()))?,
            threshold: u8::read(buf)?,
            gov_nonce: u64::read(buf)?,
            chip_count: u64::read(buf)?,
            firmware: Vec::<crate::firmware::FirmwarePolicy>::read_cfg(
                buf,
                &(
                    RangeCfg::from(..=crate::firmware::MAX_FIRMWARE_POLICIES),
                    (),
                ),
            )?,
        })
    }
}

impl Write for GovAction {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::SetModel(m) => {
                0u8.write(buf);
                m.write(buf);
            }
            Self::RemoveModel { name } => {
                1u8.write(buf);
                write_str(name, buf);
            }
            Self::AddRoot(r) => {
                2u8.write(buf);
                r.write(buf);
            }
            Self::RemoveRoot { fingerprint } => {
                3u8.write(buf);
                fingerprint.write(buf);
            }
            Self::RevokeChip { chip_id } => {
                4u8.write(buf);
                chip_id.write(buf);
            }
            Self::RevokeCertificate { fingerprint } => {
                5u8.write(buf);
                fingerprint.write(buf);
            }
            Self::SetFirmwarePolicy(p) => {
                6u8.write(buf);
                p.write(buf);
            }
        }
    }
}

impl EncodeSize for GovAction {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::SetModel(m) => m.encode_size(),
            Self::RemoveModel { name } => str_size(name),
            Self::AddRoot(r) => r.encode_size(),
            Self::SetFirmwarePolicy(p) => p.encode_size(),
            Self::RemoveRoot { .. } | Self::RevokeChip { .. } | Self::RevokeCertificate { .. } => {
                32
            }
        }
    }
}

impl Read for GovAction {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(match u8::read(buf)? {
            0 => Self::SetModel(Model::read(buf)?),
            1 => Self::RemoveModel {
                name: read_str(buf, MAX_NAME)?,
            },
            2 => Self::AddRoot(Root::read(buf)?),
            3 => Self::RemoveRoot {
                fingerprint: <[u8; 32]>::read(buf)?,
            },
            4 => Self::RevokeChip {
                chip_id: <[u8; 32]>::read(buf)?,
            },
            5 => Self::RevokeCertificate {
                fingerprint: <[u8; 32]>::read(buf)?,
            },
            6 => Self::SetFirmwarePolicy(crate::firmware::FirmwarePolicy::read(buf)?),
            t => return Err(CodecError::InvalidEnum(t)),
        })
    }
}

impl Write for Approval {
    fn write(&self, buf: &mut impl BufMut) {
        self.governor.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for Approval {
    fn encode_size(&self) -> usize {
        self.governor.encode_size() + self.signature.encode_size()
    }
}

impl Read for Approval {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            governor: read_address(buf)?,
            signature: Signature::read(buf)?,
        })
    }
}

/// A recent block's hash, kept in a ring of `registration_window` slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHashEntry {
    /// The block's height.
    pub height: u64,
    /// The block's digest.
    pub hash: Digest,
}

impl Write for BlockHashEntry {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.write(buf);
        self.hash.write(buf);
    }
}

impl EncodeSize for BlockHashEntry {
    fn encode_size(&self) -> usize {
        8 + self.hash.encode_size()
    }
}

impl Read for BlockHashEntry {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            height: u64::read(buf)?,
            hash: Digest::read(buf)?,
        })
    }
}

/// The chips an account owns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChipList(pub Vec<ChipId>);

/// Most chips in one owner list.
pub const MAX_CHIPS_PER_OWNER: usize = 4096;

impl Write for ChipList {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl EncodeSize for ChipList {
    fn encode_size(&self) -> usize {
        self.0.encode_size()
    }
}

impl Read for ChipList {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(Vec::<ChipId>::read_cfg(
            buf,
            &(RangeCfg::from(..=MAX_CHIPS_PER_OWNER), ()),
        )?))
    }
}
