//! Parameters of the request methods.
//!
//! Each type is the named form of a method's params; the positional form (`[a, b]`) names its
//! items after [`crate::Method::positional`]. Numbers that may exceed what JavaScript holds
//! (`cursor`, `limit`, `id`, `min_free`, `max_price`) are accepted as JSON numbers or decimal
//! strings; amounts are sent as decimal strings of base units.

use crate::hex;
use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use unet_types::{amount::base_units, chip::ChipStatus, hexser, Address, Amount, Digest};

/// Most items one list call returns.
pub const MAX_PAGE: u64 = 200;
/// Items returned when the call does not say.
pub const DEFAULT_PAGE: u64 = 50;

/// Where a list call starts and how many items it may return.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageParams {
    /// Position to start at: the `next` of the previous page (`start` and `from` are its
    /// former names).
    #[serde(
        default,
        alias = "start",
        alias = "from",
        with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub cursor: Option<u64>,
    /// Most items wanted ([`DEFAULT_PAGE`] if absent, capped at [`MAX_PAGE`]).
    #[serde(default, with = "lenient_u64", skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

impl PageParams {
    /// A page starting at `cursor` with at most `limit` items.
    pub fn new(cursor: Option<u64>, limit: Option<u64>) -> Self {
        Self { cursor, limit }
    }

    /// The cursor (0 if absent) and the limit (default and cap applied); a zero limit is
    /// refused.
    pub fn resolve(&self) -> Result<(u64, u64), String> {
        let limit = match self.limit {
            None => DEFAULT_PAGE,
            Some(0) => return Err("limit must be at least 1".into()),
            Some(n) => n.min(MAX_PAGE),
        };
        Ok((self.cursor.unwrap_or(0), limit))
    }
}

/// Which block `unet_getBlock` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockId {
    /// The latest finalized block (`"latest"`).
    Latest,
    /// The finalized block at a height (a number, or a decimal string).
    Height(u64),
    /// The finalized block with a hash (hex).
    Hash(Digest),
}

impl Serialize for BlockId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BlockId::Latest => s.serialize_str("latest"),
            BlockId::Height(h) => s.serialize_u64(*h),
            BlockId::Hash(d) => s.serialize_str(&hexser::to_hex(d)),
        }
    }
}

impl<'de> Deserialize<'de> for BlockId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_u64()
                .map(BlockId::Height)
                .ok_or_else(|| D::Error::custom("height must be a non-negative integer")),
            Value::String(s) if s == "latest" => Ok(BlockId::Latest),
            Value::String(s) if s.len() <= 20 && s.chars().all(|c| c.is_ascii_digit()) => s
                .parse()
                .map(BlockId::Height)
                .map_err(|_| D::Error::custom("bad height")),
            Value::String(s) => hexser::from_hex(&s)
                .map(BlockId::Hash)
                .map_err(|e| D::Error::custom(format!("hash: {e}"))),
            other => Err(D::Error::custom(format!(
                "block must be a height or hash, got {other}"
            ))),
        }
    }
}

/// `unet_getBlock [block, full?]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetBlockParams {
    /// Height, hash or `"latest"` (`height` and `hash` are other names of it).
    #[serde(alias = "height", alias = "hash")]
    pub block: BlockId,
    /// Whole transactions and receipts (default), or only transaction hashes.
    #[serde(default = "yes")]
    pub full: bool,
}

fn yes() -> bool {
    true
}

/// `unet_getAccount [address]` and `unet_getProof [address]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressParams {
    /// The account.
    #[serde(with = "hexser")]
    pub address: Address,
}

/// `unet_sendTransaction [tx]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendTransactionParams {
    /// The encoded signed transaction (hex).
    #[serde(with = "hex::bytes")]
    pub tx: Vec<u8>,
}

/// One transaction of `unet_sendTransactions`: its bytes, or why it is not hex (refused on
/// its own, the others still go in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawTx(pub Result<Vec<u8>, String>);

impl Serialize for RawTx {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Ok(b) => s.serialize_str(&::hex::encode(b)),
            Err(_) => s.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for RawTx {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RawTx(match Value::deserialize(d)? {
            Value::String(s) => hex::decode(&s),
            _ => Err("not a hex string".into()),
        }))
    }
}

/// Most transactions in one `unet_sendTransactions` call.
pub const MAX_SEND_BATCH: usize = 1000;

/// `unet_sendTransactions [txs]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendTransactionsParams {
    /// Encoded signed transactions (hex), at most [`MAX_SEND_BATCH`].
    pub txs: Vec<RawTx>,
}

/// `unet_getTransaction [hash]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashParams {
    /// The transaction's hash.
    #[serde(with = "hexser")]
    pub hash: Digest,
}

/// `unet_getFinalizedHeader [height]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeightParams {
    /// A finalized height.
    pub height: u64,
}

/// `unet_getChip [chip_id]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipParams {
    /// The chip.
    #[serde(with = "hex::id")]
    pub chip_id: [u8; 32],
}

/// `unet_listChips {owner?, model?, status?, cursor?, limit?}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListChipsParams {
    /// Only this owner's chips (in the owner's list order).
    #[serde(default, with = "opt_address", skip_serializing_if = "Option::is_none")]
    pub owner: Option<Address>,
    /// Only chips of this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Only chips in this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ChipStatus>,
    /// The page.
    #[serde(flatten)]
    pub page: PageParams,
}

/// `unet_registrationNonce [owner]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerParams {
    /// The account the chip will be registered to.
    #[serde(with = "hexser")]
    pub owner: Address,
}

/// `unet_getRewards {owner, epoch?}` or `{chip_id, epoch?}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRewardsParams {
    /// An owner: what it earned in `epoch` (default: the last one).
    #[serde(default, with = "opt_address", skip_serializing_if = "Option::is_none")]
    pub owner: Option<Address>,
    /// A chip: its recent rewards and lifetime total (takes precedence over `owner`).
    #[serde(default, with = "hex::opt_id", skip_serializing_if = "Option::is_none")]
    pub chip_id: Option<[u8; 32]>,
    /// The epoch asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

/// `unet_getEpochRewards [epoch]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochParams {
    /// The epoch.
    pub epoch: u64,
}

/// `unet_getCommittee [epoch?]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeParams {
    /// The epoch (default: the current one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

/// `unet_listOffers {model?, max_price?, min_free?, cursor?, limit?}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffersParams {
    /// Only offers of this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Only offers at most this price per block (base units).
    #[serde(
        default,
        with = "lenient_amount",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_price: Option<Amount>,
    /// Only offers with at least this many free chips (Online, not leased).
    #[serde(default, with = "lenient_u64", skip_serializing_if = "Option::is_none")]
    pub min_free: Option<u64>,
    /// The page.
    #[serde(flatten)]
    pub page: PageParams,
}

/// `unet_getLease [id]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseParams {
    /// The lease id.
    #[serde(deserialize_with = "required_u64")]
    pub id: u64,
}

/// `unet_listLeases {renter | provider, cursor?, limit?}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListLeasesParams {
    /// A renter's leases.
    #[serde(default, with = "opt_address", skip_serializing_if = "Option::is_none")]
    pub renter: Option<Address>,
    /// A provider's leases.
    #[serde(default, with = "opt_address", skip_serializing_if = "Option::is_none")]
    pub provider: Option<Address>,
    /// The page.
    #[serde(flatten)]
    pub page: PageParams,
}

/// `unet_listValidators {cursor?, limit?}`.
pub type ListValidatorsParams = PageParams;

/// Optional address (`null` when absent).
mod opt_address {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.serialize_str(&hexser::to_hex(a)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Address>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => hexser::from_hex(&s).map(Some).map_err(D::Error::custom),
            Some(other) => Err(D::Error::custom(format!(
                "must be a hex address, got {other}"
            ))),
        }
    }
}

/// A non-negative integer given as a JSON number or a decimal string.
fn u64_of(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| "must be a non-negative integer".to_string()),
        Value::String(s) => s
            .parse()
            .map_err(|_| "must be a non-negative integer".to_string()),
        other => Err(format!("must be a number, got {other}")),
    }
}

fn required_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    u64_of(&Value::deserialize(d)?).map_err(D::Error::custom)
}

/// Optional u64 as a number or decimal string (null = absent).
mod lenient_u64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_u64(*n),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(v) => u64_of(&v).map(Some).map_err(D::Error::custom),
        }
    }
}

/// Optional amount as a decimal string of base units (or a JSON number up to 2^64).
mod lenient_amount {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Amount>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => base_units::serialize(a, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Amount>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| D::Error::custom("must be base units (decimal string)")),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|v| Some(Amount::from(v)))
                .ok_or_else(|| D::Error::custom("must be a non-negative integer")),
            Some(other) => Err(D::Error::custom(format!(
                "must be a decimal string, got {other}"
            ))),
        }
    }
}
