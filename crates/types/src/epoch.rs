//! Epochs, registered validators and the per-epoch committee.
//!
//! An epoch is `epoch_length` consecutive heights: epoch `e` covers heights
//! `[e * L, (e + 1) * L - 1]` (the same rule as commonware's `FixedEpocher`), so the genesis
//! block (height 0) opens epoch 0.
//!
//! The committee of epoch `e + 3` (the validators that vote in epoch `e + 3`) is chosen by the
//! state transition at the first block of epoch `e` (height `e * L`) and written under
//! [`committee_key`]`(e + 3)`; genesis writes the committees of epochs 0 to 3. Consensus needs
//! the set one epoch before the reshare ceremony that hands it the threshold key (epoch
//! `e + 2`), and that ceremony runs a whole epoch before the set votes.
//!
//! ```text
//! ValidatorInfo   := account [32] | node_key [32] | p2p_address str | registered_height u64
//! CommitteeMember := node_key [32] | account [32] | p2p_address str | weight u128
//! Committee       := epoch u64 | members vec<CommitteeMember> (sorted by node_key, unique)
//! ```

use crate::{Address, Digest};
use bytes::BufMut;
use commonware_codec::{EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_cryptography::{Hasher, Sha256};
use unet_address::read_address;

/// Most members of one committee (and most entries in a transport directory / 3).
pub const MAX_COMMITTEE: usize = 128;
/// Most registered validator accounts.
pub const MAX_VALIDATORS: usize = 1024;
/// Longest `host:port` a validator may register.
pub const MAX_ADDRESS: usize = 128;
/// Fewest members a committee may have (tolerates one fault under `n >= 3f + 1`).
pub const MIN_COMMITTEE: usize = 4;

/// The epoch containing `height`.
pub fn epoch_of(height: u64, epoch_length: u64) -> u64 {
    height / epoch_length.max(1)
}

/// First height of `epoch`.
pub fn first_height(epoch: u64, epoch_length: u64) -> u64 {
    epoch.saturating_mul(epoch_length.max(1))
}

/// Last height of `epoch` (saturating at the end of the height range).
pub fn last_height(epoch: u64, epoch_length: u64) -> u64 {
    first_height(epoch, epoch_length).saturating_add(epoch_length.max(1) - 1)
}

/// Key of the registered validator run by `account`.
pub fn validator_key(account: &Address) -> Digest {
    Sha256::hash(&[b"unet/validator", account.as_ref()])
}

/// Key of the account that registered `node_key` as its validator node.
pub fn validator_node_key(node_key: &Address) -> Digest {
    Sha256::hash(&[b"unet/validator_node", node_key.as_ref()])
}

/// Key of the list of registered validator accounts (`Vec<Address>`, sorted).
pub fn validator_list_key() -> Digest {
    Sha256::hash(&[b"unet/validators"])
}

/// Key of the committee of `epoch`.
pub fn committee_key(epoch: u64) -> Digest {
    Sha256::hash(&[b"unet/committee", &epoch.to_be_bytes()])
}

/// A validator account registered to be considered for committees.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ValidatorInfo {
    /// The account whose online attested compute counts as this validator's weight.
    #[serde(with = "crate::hexser")]
    pub account: Address,
    /// The node's ed25519 identity (p2p and consensus participant key).
    #[serde(with = "crate::hexser")]
    pub node_key: Address,
    /// Where the node's p2p endpoint listens (`host:port`).
    pub p2p_address: String,
    /// Height of the block that registered the validator.
    pub registered_height: u64,
}

/// One member of an epoch's committee.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitteeMember {
    /// The node's ed25519 identity (p2p and consensus participant key; hex in JSON).
    #[serde(with = "crate::hexser")]
    pub node_key: Address,
    /// The account whose compute weighs for the member (hex in JSON).
    #[serde(with = "crate::hexser")]
    pub account: Address,
    /// Where the node's p2p endpoint listens (`host:port`).
    pub p2p_address: String,
    /// Leader-election weight: the account's online attested compute (milli-TOPS) when the
    /// committee was chosen, capped (see docs/protocol.md), at least 1.
    #[serde(with = "crate::amount::base_units")]
    pub weight: u128,
}

/// The validators of one epoch.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Committee {
    /// The epoch these validators run.
    pub epoch: u64,
    /// The members, each with its leader-election weight.
    pub members: Vec<CommitteeMember>,
}

impl Committee {
    /// Sum of the members' weights.
    pub fn total_weight(&self) -> u128 {
        self.members.iter().map(|m| m.weight).sum()
    }

    /// The member with `node_key`.
    pub fn member(&self, node_key: &Address) -> Option<&CommitteeMember> {
        self.members
            .binary_search_by(|m| m.node_key.cmp(node_key))
            .ok()
            .map(|i| &self.members[i])
    }
}

/// A sorted list of accounts (the registered validators).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressList(pub Vec<Address>);

impl Write for AddressList {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl EncodeSize for AddressList {
    fn encode_size(&self) -> usize {
        self.0.encode_size()
    }
}

impl Read for AddressList {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(Vec::<Address>::read_cfg(
            buf,
            &(RangeCfg::new(0..=MAX_VALIDATORS), ()),
        )?))
    }
}

fn read_str(buf: &mut impl commonware_codec::Buf, max: usize) -> Result<String, CodecError> {
    let bytes = Vec::<u8>::read_cfg(buf, &(RangeCfg::new(0..=max), ()))?;
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid("string", "not utf-8"))
}

impl Write for ValidatorInfo {
    fn write(&self, buf: &mut impl BufMut) {
        self.account.write(buf);
        self.node_key.write(buf);
        self.p2p_address.as_bytes().write(buf);
        self.registered_height.write(buf);
    }
}

impl EncodeSize for ValidatorInfo {
    fn encode_size(&self) -> usize {
        self.account.encode_size()
            + self.node_key.encode_size()
            + self.p2p_address.as_bytes().encode_size()
            + self.registered_height.encode_size()
    }
}

impl Read for ValidatorInfo {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            account: read_address(buf)?,
            node_key: read_address(buf)?,
            p2p_address: read_str(buf, MAX_ADDRESS)?,
            registered_height: u64::read(buf)?,
        })
    }
}

impl Write for CommitteeMember {
    fn write(&self, buf: &mut impl BufMut) {
        self.node_key.write(buf);
        self.account.write(buf);
        self.p2p_address.as_bytes().write(buf);
        self.weight.write(buf);
    }
}

impl EncodeSize for CommitteeMember {
    fn encode_size(&self) -> usize {
        self.node_key.encode_size()
            + self.account.encode_size()
            + self.p2p_address.as_bytes().encode_size()
            + self.weight.encode_size()
    }
}

impl Read for CommitteeMember {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            node_key: read_address(buf)?,
            account: read_address(buf)?,
            p2p_address: read_str(buf, MAX_ADDRESS)?,
            weight: u128::read(buf)?,
        })
    }
}

impl Write for Committee {
    fn write(&self, buf: &mut impl BufMut) {
        self.epoch.write(buf);
        self.members.write(buf);
    }
}

impl EncodeSize for Committee {
    fn encode_size(&self) -> usize {
        self.epoch.encode_size() + self.members.encode_size()
    }
}

impl Read for Committee {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        let epoch = u64::read(buf)?;
        let members =
            Vec::<CommitteeMember>::read_cfg(buf, &(RangeCfg::new(1..=MAX_COMMITTEE), ()))?;
        if members.windows(2).any(|w| w[0].node_key >= w[1].node_key) {
            return Err(CodecError::Invalid(
                "Committee",
                "members not sorted/unique",
            ));
        }
        Ok(Self { epoch, members })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PrivateKey;
    use commonware_codec::{DecodeExt, Encode};
    use commonware_cryptography::Signer;

    fn key(seed: u64) -> Address {
        PrivateKey::from_seed(seed).public_key()
    }

    #[test]
    fn epoch_bounds_match_fixed_epocher() {
        assert_eq!(epoch_of(0, 100), 0);
        assert_eq!(epoch_of(99, 100), 0);
        assert_eq!(epoch_of(100, 100), 1);
        assert_eq!(first_height(3, 100), 300);
        assert_eq!(last_height(3, 100), 399);
    }

    #[test]
    fn committee_roundtrips_and_rejects_unsorted() {
        let mut members: Vec<_> = (0..4)
            .map(|i| CommitteeMember {
                node_key: key(i),
                account: key(100 + i),
                p2p_address: format!("127.0.0.1:{}", 3000 + i),
                weight: 1 + i as u128,
            })
            .collect();
        members.sort_by(|a, b| a.node_key.cmp(&b.node_key));
        let c = Committee { epoch: 7, members };
        let bytes = c.encode();
        assert_eq!(Committee::decode(bytes.clone()).unwrap(), c);
        assert_eq!(c.total_weight(), 10);
        assert!(c.member(&c.members[2].node_key).is_some());
        let mut bad = c.clone();
        bad.members.swap(0, 1);
        assert!(Committee::decode(bad.encode()).is_err());
    }
}
