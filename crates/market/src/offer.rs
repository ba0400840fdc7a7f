//! Offers: a provider's chips for rent at a price, and the bookkeeping entries around them.

use crate::{
    codec::{read_str, str_size, write_str},
    Address, Amount, ChipId, MarketError, MAX_ENDPOINT, MAX_LEASE_CHIPS, MAX_MODEL,
    MAX_OPEN_LEASES, MAX_TAG, MAX_TAGS,
};
use bytes::BufMut;
use commonware_codec::{EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use std::collections::BTreeSet;
use unet_address::read_address;

/// What the offered chips can do, as the provider describes it (not verified on chain beyond
/// the chips' registered model).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Model name (usually the chips' registered model, e.g. `H100`).
    pub model: String,
    /// Accelerator memory per chip, MiB.
    pub memory_mib: u64,
    /// Free-text tags (`onnx`, `fp8`, `eu-west`, ...).
    pub tags: Vec<String>,
}

impl Capabilities {
    fn tag_bytes(&self) -> Vec<Vec<u8>> {
        self.tags.iter().map(|t| t.as_bytes().to_vec()).collect()
    }
}

impl Write for Capabilities {
    fn write(&self, buf: &mut impl BufMut) {
        write_str(&self.model, buf);
        self.memory_mib.write(buf);
        self.tag_bytes().write(buf);
    }
}

impl EncodeSize for Capabilities {
    fn encode_size(&self) -> usize {
        str_size(&self.model) + 8 + self.tag_bytes().encode_size()
    }
}

impl Read for Capabilities {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        let model = read_str(buf, MAX_MODEL, "Capabilities.model")?;
        let memory_mib = u64::read(buf)?;
        let raw = Vec::<Vec<u8>>::read_cfg(
            buf,
            &(
                RangeCfg::from(..=MAX_TAGS),
                (RangeCfg::from(..=MAX_TAG), ()),
            ),
        )?;
        let tags = raw
            .into_iter()
            .map(|b| String::from_utf8(b).map_err(|_| CodecError::Invalid("tag", "not utf-8")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            model,
            memory_mib,
            tags,
        })
    }
}

/// The terms a provider sets (what `CreateOffer` and `UpdateOffer` carry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferTerms {
    /// Chips offered; each must be the provider's and Online, and in no other offer.
    pub chips: Vec<ChipId>,
    /// UNC base units per chip per block.
    pub price_per_block: Amount,
    /// Fewest blocks a renter commits to pay for (the deposit covers at least this).
    pub min_blocks: u64,
    /// Most blocks a lease lasts; it closes by itself at `start + max_blocks`.
    pub max_blocks: u64,
    /// Where renters reach the provider's agent (job delivery).
    pub endpoint: String,
    /// What the chips can run (advertised by the provider, not checked on chain).
    pub capabilities: Capabilities,
}

impl OfferTerms {
    /// Checks that need no state: chips present and distinct, price above zero, durations
    /// ordered, endpoint an http(s) URL.
    pub fn validate(&self) -> Result<(), MarketError> {
        if self.chips.is_empty() {
            return Err(MarketError::NoChips);
        }
        let mut seen = BTreeSet::new();
        for c in &self.chips {
            if !seen.insert(*c) {
                return Err(MarketError::DuplicateChip(hex::encode(c)));
            }
        }
        if self.price_per_block == 0 {
            return Err(MarketError::ZeroPrice);
        }
        if self.min_blocks == 0 || self.min_blocks > self.max_blocks {
            return Err(MarketError::BadDuration {
                min: self.min_blocks,
                max: self.max_blocks,
            });
        }
        let e = &self.endpoint;
        let rest = e
            .strip_prefix("https://")
            .or_else(|| e.strip_prefix("http://"));
        match rest {
            Some(r) if !r.is_empty() && !e.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                Ok(())
            }
            _ => Err(MarketError::BadEndpoint(e.clone())),
        }
    }
}

impl Write for OfferTerms {
    fn write(&self, buf: &mut impl BufMut) {
        self.chips.write(buf);
        self.price_per_block.write(buf);
        self.min_blocks.write(buf);
        self.max_blocks.write(buf);
        write_str(&self.endpoint, buf);
        self.capabilities.write(buf);
    }
}

impl EncodeSize for OfferTerms {
    fn encode_size(&self) -> usize {
        self.chips.encode_size()
            + 16
            + 8
            + 8
            + str_size(&self.endpoint)
            + self.capabilities.encode_size()
    }
}

impl Read for OfferTerms {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            chips: Vec::<ChipId>::read_cfg(buf, &(RangeCfg::new(1..=MAX_LEASE_CHIPS), ()))?,
            price_per_block: u128::read(buf)?,
            min_blocks: u64::read(buf)?,
            max_blocks: u64::read(buf)?,
            endpoint: read_str(buf, MAX_ENDPOINT, "OfferTerms.endpoint")?,
            capabilities: Capabilities::read(buf)?,
        })
    }
}

/// An offer as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Offer id, numbered from 0 in the order offers are created.
    pub id: u64,
    /// The account that created the offer and owns its chips; leases pay it.
    pub provider: Address,
    /// The offer's current terms (the last `UpdateOffer`'s, or the creation's).
    pub terms: OfferTerms,
    /// Height of the `CreateOffer`.
    pub created: u64,
    /// Height of the last `UpdateOffer` (= `created` if never updated).
    pub updated: u64,
}

impl Write for Offer {
    fn write(&self, buf: &mut impl BufMut) {
        self.id.write(buf);
        self.provider.write(buf);
        self.terms.write(buf);
        self.created.write(buf);
        self.updated.write(buf);
    }
}

impl EncodeSize for Offer {
    fn encode_size(&self) -> usize {
        8 + self.provider.encode_size() + self.terms.encode_size() + 8 + 8
    }
}

impl Read for Offer {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            id: u64::read(buf)?,
            provider: read_address(buf)?,
            terms: OfferTerms::read(buf)?,
            created: u64::read(buf)?,
            updated: u64::read(buf)?,
        })
    }
}

/// A chip's role in the market: the offer listing it and the open lease holding it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChipMarket {
    /// The offer that lists the chip, if any.
    pub offer: Option<u64>,
    /// The open lease that holds the chip, if any.
    pub lease: Option<u64>,
}

impl ChipMarket {
    /// Whether the chip is in no offer and no lease (its record can be deleted).
    pub fn is_empty(&self) -> bool {
        self.offer.is_none() && self.lease.is_none()
    }
}

impl Write for ChipMarket {
    fn write(&self, buf: &mut impl BufMut) {
        self.offer.write(buf);
        self.lease.write(buf);
    }
}

impl EncodeSize for ChipMarket {
    fn encode_size(&self) -> usize {
        self.offer.encode_size() + self.lease.encode_size()
    }
}

impl Read for ChipMarket {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            offer: Option::<u64>::read(buf)?,
            lease: Option::<u64>::read(buf)?,
        })
    }
}

/// A bounded list of offer or lease ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdList(pub Vec<u64>);

impl Write for IdList {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl EncodeSize for IdList {
    fn encode_size(&self) -> usize {
        self.0.encode_size()
    }
}

impl Read for IdList {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(Vec::<u64>::read_cfg(
            buf,
            &(RangeCfg::from(..=IdList::MAX), ()),
        )?))
    }
}

impl IdList {
    /// Most ids in one list. Due lists hold at most one entry per lease scheduled at that
    /// height (a lease is scheduled at one height at a time, and every lease holds a chip
    /// that no other open lease holds), account lists at most [`MAX_OPEN_LEASES`].
    pub const MAX: usize = 1 << 20;
}

/// Market-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarketInfo {
    /// Id the next offer gets (offers are numbered from 0).
    pub next_offer: u64,
    /// Id the next lease gets.
    pub next_lease: u64,
    /// Offers not withdrawn.
    pub open_offers: u64,
    /// Leases not closed.
    pub open_leases: u64,
}

impl Write for MarketInfo {
    fn write(&self, buf: &mut impl BufMut) {
        self.next_offer.write(buf);
        self.next_lease.write(buf);
        self.open_offers.write(buf);
        self.open_leases.write(buf);
    }
}

impl EncodeSize for MarketInfo {
    fn encode_size(&self) -> usize {
        32
    }
}

impl Read for MarketInfo {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            next_offer: u64::read(buf)?,
            next_lease: u64::read(buf)?,
            open_offers: u64::read(buf)?,
            open_leases: u64::read(buf)?,
        })
    }
}

// The account lists are bounded by MAX_OPEN_LEASES, which must fit the decoder bound.
const _: () = assert!(MAX_OPEN_LEASES <= IdList::MAX);
