//! Subscriptions (WebSocket only) and the events they stream.
//!
//! `{"method": "unet_subscribe", "params": TOPIC}` answers a subscription id; each finalized
//! block then sends `{"method": "unet_subscription", "params": {"subscription": ID, "result":
//! ..}}` ([`Notification`]): a [`crate::chain::BlockView`] (hashes only) for
//! [`Topic::NewBlocks`], a list of [`EventItem`] for [`Topic::Events`].
//! `{"method": "unet_unsubscribe", "params": [ID]}` answers whether it was open.

use crate::{
    chain::{ReceiptView, TxView},
    hex,
    market::CloseReason,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use unet_types::{amount::base_units, chip::ChipStatus, epoch::Committee, hexser, Address, Amount};

/// Starts a subscription (params: a [`Topic`]).
pub const SUBSCRIBE: &str = "unet_subscribe";
/// Ends one (params: `[ID]`).
pub const UNSUBSCRIBE: &str = "unet_unsubscribe";
/// The method of every notification.
pub const NOTIFICATION: &str = "unet_subscription";

/// What a subscription streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topic {
    /// Each finalized block (`["newBlocks"]`).
    NewBlocks,
    /// Each finalized block's transactions and protocol events, optionally of one kind
    /// (`["events"]`, `["events", {"kind": "challenge"}]`).
    Events {
        /// Only events of this kind (a transaction kind such as `transfer`, or an
        /// [`Event::kind`]).
        kind: Option<String>,
    },
}

impl Topic {
    /// The request params naming the topic.
    pub fn to_params(&self) -> Value {
        match self {
            Topic::NewBlocks => json!(["newBlocks"]),
            Topic::Events { kind: None } => json!(["events"]),
            Topic::Events { kind: Some(k) } => json!(["events", {"kind": k}]),
        }
    }

    /// The topic a request's params name; the error says what is wrong.
    pub fn from_params(params: &Value) -> Result<Self, String> {
        match params.get(0).and_then(Value::as_str) {
            Some("newBlocks") => Ok(Topic::NewBlocks),
            Some("events") => Ok(Topic::Events {
                kind: params
                    .get(1)
                    .and_then(|o| o.get("kind"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }),
            Some(other) => Err(format!(
                "unknown subscription {other:?}; topics: newBlocks, events"
            )),
            None => Err("params must be [topic, options?]".to_string()),
        }
    }
}

/// A message of a subscription.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification<T> {
    /// The subscription's id.
    pub subscription: u64,
    /// The block, or the block's events.
    pub result: T,
}

/// The whole message of a notification: `{"jsonrpc", "method": "unet_subscription",
/// "params": {"subscription", "result"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationMessage<T> {
    /// Always [`crate::JSONRPC`].
    pub jsonrpc: String,
    /// Always [`NOTIFICATION`].
    pub method: String,
    /// The subscription and its result.
    pub params: Notification<T>,
}

impl<T> NotificationMessage<T> {
    /// The message of subscription `subscription` carrying `result`.
    pub fn new(subscription: u64, result: T) -> Self {
        Self {
            jsonrpc: crate::JSONRPC.into(),
            method: NOTIFICATION.into(),
            params: Notification {
                subscription,
                result,
            },
        }
    }
}

/// Something the protocol did in a block (besides its receipts). Mirrors the node's
/// `unet_state::Event`, which converts into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A chip's status changed.
    ChipStatus {
        /// The chip.
        #[serde(with = "hex::id")]
        chip_id: [u8; 32],
        /// Before.
        from: ChipStatus,
        /// After.
        to: ChipStatus,
        /// Why, in words.
        reason: String,
    },
    /// A chip was challenged; it must answer in blocks `height + 1 ..= deadline`.
    Challenge {
        /// The chip.
        #[serde(with = "hex::id")]
        chip_id: [u8; 32],
        /// The challenging block.
        height: u64,
        /// Its beacon.
        #[serde(with = "hexser")]
        beacon: unet_types::Digest,
        /// Last block an answer counts in.
        deadline: u64,
    },
    /// A chip's owner was paid its share of an epoch's emission.
    Reward {
        /// The chip.
        #[serde(with = "hex::id")]
        chip_id: [u8; 32],
        /// Its owner.
        #[serde(with = "hexser")]
        owner: Address,
        /// The epoch paid.
        epoch: u64,
        /// Base units.
        #[serde(with = "base_units")]
        amount: Amount,
    },
    /// Every chip of an epoch has been paid.
    EpochSettled {
        /// The epoch.
        epoch: u64,
        /// Its emission.
        #[serde(with = "base_units")]
        emission: Amount,
        /// Paid to owners.
        #[serde(with = "base_units")]
        paid: Amount,
        /// Dust and forfeits to the treasury.
        #[serde(with = "base_units")]
        to_treasury: Amount,
    },
    /// The committee of a future epoch was chosen.
    Committee {
        /// It.
        committee: Committee,
    },
    /// A renter opened a lease.
    LeaseOpened {
        /// The lease.
        lease_id: u64,
        /// Its offer.
        offer_id: u64,
        /// Who rents.
        #[serde(with = "hexser")]
        renter: Address,
        /// Who provides.
        #[serde(with = "hexser")]
        provider: Address,
        /// The chips.
        #[serde(with = "hex::ids")]
        chips: Vec<[u8; 32]>,
        /// Escrowed.
        #[serde(with = "base_units")]
        deposit: Amount,
    },
    /// A lease closed: `paid` went to the provider and `refunded` to the renter in this
    /// block; `total_paid` over the whole lease.
    LeaseClosed {
        /// The lease.
        lease_id: u64,
        /// Why.
        reason: CloseReason,
        /// Paid over the whole lease.
        #[serde(with = "base_units")]
        total_paid: Amount,
        /// Paid in this block.
        #[serde(with = "base_units")]
        paid: Amount,
        /// Refunded in this block.
        #[serde(with = "base_units")]
        refunded: Amount,
    },
}

impl Event {
    /// The event's kind, as the `events` filter names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::ChipStatus { .. } => "chip_status",
            Event::Challenge { .. } => "challenge",
            Event::Reward { .. } => "reward",
            Event::EpochSettled { .. } => "epoch_settled",
            Event::Committee { .. } => "committee",
            Event::LeaseOpened { .. } => "lease_opened",
            Event::LeaseClosed { .. } => "lease_closed",
        }
    }
}

/// A transaction of a finalized block, as the `events` topic sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxEvent {
    /// The transaction's kind (`transfer`, ...).
    pub kind: String,
    /// The transaction.
    pub transaction: TxView,
    /// What happened.
    pub receipt: ReceiptView,
}

/// What the `events` topic sends: a protocol event or a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // short-lived wire values
pub enum BlockEvent {
    /// A protocol event.
    Protocol(Event),
    /// A transaction with its receipt.
    Transaction(TxEvent),
}

impl BlockEvent {
    /// The kind the `events` filter matches on.
    pub fn kind(&self) -> &str {
        match self {
            BlockEvent::Protocol(e) => e.kind(),
            BlockEvent::Transaction(t) => &t.kind,
        }
    }
}

/// One item of an `events` notification: the event's fields and the block's `height` (for a
/// challenge, its own `height` is the block's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventItem {
    /// The block's height.
    pub height: u64,
    /// What happened.
    pub event: BlockEvent,
}

impl Serialize for EventItem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.event).map_err(serde::ser::Error::custom)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("height".into(), self.height.into());
        }
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for EventItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = Value::deserialize(d)?;
        let height = v
            .get("height")
            .and_then(Value::as_u64)
            .ok_or_else(|| D::Error::custom("event without height"))?;
        let event = serde_json::from_value(v).map_err(D::Error::custom)?;
        Ok(Self { height, event })
    }
}
