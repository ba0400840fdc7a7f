//! A lease as the job protocol needs it, read from the node's `unet_getLease` (the
//! `unet-api` contract's [`LeaseAt`]).

use unet_api::market::{CloseReason, LeaseAt, LeaseState};
use unet_types::hexser;

/// A lease as the job server and the renter's receipt check need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease id.
    pub id: u64,
    /// Renter address, hex (as `unet_types::hexser` writes it).
    pub renter: String,
    /// Chip ids, lower-case hex.
    pub chips: Vec<String>,
    /// Open or closed.
    pub status: LeaseState,
    /// Why it closed, when it did.
    pub close_reason: Option<CloseReason>,
    /// The height it closed at, when it did.
    pub closed_at: Option<u64>,
    /// First block the lease no longer serves.
    pub end: u64,
    /// The chain height the answer is from.
    pub height: u64,
}

impl LeaseInfo {
    /// The first height the lease no longer serves, once it has ended: its close height, or
    /// its end when it ran out (`None` while it serves).
    pub fn ended_at(&self) -> Option<u64> {
        match self.closed_at {
            Some(h) => Some(h.min(self.end)),
            None if self.status != LeaseState::Open || self.height >= self.end => Some(self.end),
            None => None,
        }
    }
}

impl From<LeaseAt> for LeaseInfo {
    fn from(at: LeaseAt) -> Self {
        let l = at.lease;
        Self {
            id: l.id,
            renter: hexser::to_hex(&l.renter),
            chips: l.chips.iter().map(hex::encode).collect(),
            status: l.status,
            close_reason: l.close_reason,
            closed_at: l.closed_at,
            end: l.end,
            height: at.height,
        }
    }
}

/// The wire name of a close reason (`renter`, `deposit_exhausted`, ...).
pub fn close_reason_name(reason: CloseReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Copying, DecodeExt};
    use commonware_cryptography::Signer as _;
    use unet_api::market::LeaseView;
    use unet_types::PrivateKey;

    #[test]
    fn a_lease_answer_is_read_with_its_chips_renter_and_state() {
        let key = |seed: u8| {
            PrivateKey::decode(Copying(&[seed; 32][..]))
                .unwrap()
                .public_key()
        };
        let at = LeaseAt {
            lease: LeaseView {
                id: 4,
                offer_id: 1,
                renter: key(1),
                provider: key(2),
                chips: vec![[0xAB; 32], [1; 32]],
                price_per_block: 3,
                endpoint: "http://127.0.0.1:1".into(),
                start: 10,
                min_end: 20,
                end: 30,
                paid_until: 12,
                next_settlement: Some(15),
                deposit: 100,
                total_paid: 6,
                owed_now: 0,
                status: LeaseState::Closed,
                closed_at: Some(12),
                close_reason: Some(CloseReason::DepositExhausted),
            },
            height: 12,
        };
        // Through the wire, as the node answers it.
        let at: LeaseAt = serde_json::from_value(serde_json::to_value(&at).unwrap()).unwrap();
        let l = LeaseInfo::from(at);
        assert_eq!(l.id, 4);
        assert_eq!(l.renter, hexser::to_hex(&key(1)));
        assert_eq!(l.chips, vec!["ab".repeat(32), "01".repeat(32)]);
        assert_eq!(l.status, LeaseState::Closed);
        assert_eq!((l.end, l.height), (30, 12));
        assert_eq!(
            l.close_reason.map(close_reason_name).as_deref(),
            Some("deposit_exhausted")
        );
    }
}
