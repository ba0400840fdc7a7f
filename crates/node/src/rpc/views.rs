//! Chain objects as the API shows them: conversions from the node's types into the
//! contract's result types (`unet_api`).

use crate::{chain::TxLocation, shared::FinalizedBlock};
use commonware_cryptography::Digestible;
use unet_api::{
    chain::{
        AccountEntry, AnswerView, BlockTxs, BlockView, ReceiptStatus, ReceiptView,
        SkippedAnswerView, TxBody, TxState, TxView,
    },
    events::{BlockEvent, Event, EventItem, TxEvent},
    market::{CloseReason, TermsView},
};
use unet_state::{Receipt, TxStatus};
use unet_types::{amount::format_unc, keys::Account, Block, Payload, PublicKey, SignedTx};

/// A transaction.
pub fn tx(stx: &SignedTx) -> TxView {
    let body = match &stx.tx.payload {
        Payload::Transfer { to, amount } => TxBody::Transfer {
            to: to.clone(),
            amount: *amount,
        },
        Payload::RegisterChip {
            anchor_height,
            evidence,
        } => TxBody::RegisterChip {
            anchor_height: *anchor_height,
            evidence_bytes: evidence.len() as u64,
            chip_id: unet_poci::claimed_identity(evidence)
                .ok()
                .map(|c| c.chip_id),
        },
        Payload::TransferChip { chip_id, to } => TxBody::TransferChip {
            chip_id: *chip_id,
            to: to.clone(),
        },
        Payload::DeregisterChip { chip_id } => TxBody::DeregisterChip { chip_id: *chip_id },
        Payload::Govern { action, approvals } => TxBody::Govern {
            action: action.name().to_string(),
            approvals: approvals.len() as u64,
        },
        Payload::Liveness { responses } => TxBody::Liveness {
            responses: responses
                .iter()
                .map(|r| AnswerView {
                    chip_id: r.chip_id,
                    challenge_height: r.challenge_height,
                    proof_bytes: r.proof.len() as u64,
                })
                .collect(),
        },
        Payload::RegisterValidator {
            node_key,
            p2p_address,
        } => TxBody::RegisterValidator {
            node_key: node_key.clone(),
            p2p_address: p2p_address.clone(),
        },
        Payload::DeregisterValidator => TxBody::DeregisterValidator {},
        Payload::CreateOffer { terms } => TxBody::CreateOffer {
            terms: TermsView::from(terms),
        },
        Payload::UpdateOffer { offer_id, terms } => TxBody::UpdateOffer {
            offer_id: *offer_id,
            terms: TermsView::from(terms),
        },
        Payload::WithdrawOffer { offer_id } => TxBody::WithdrawOffer {
            offer_id: *offer_id,
        },
        Payload::OpenLease {
            offer_id,
            chips,
            deposit,
        } => TxBody::OpenLease {
            offer_id: *offer_id,
            chips: chips.clone(),
            deposit: *deposit,
        },
        Payload::TopUp { lease_id, amount } => TxBody::TopUp {
            lease_id: *lease_id,
            amount: *amount,
        },
        Payload::CloseLease { lease_id } => TxBody::CloseLease {
            lease_id: *lease_id,
        },
    };
    TxView {
        hash: stx.hash(),
        chain_id: stx.tx.chain_id,
        sender: stx.tx.sender.clone(),
        nonce: stx.tx.nonce,
        fee: stx.tx.fee,
        body,
    }
}

/// A receipt.
pub fn receipt(r: &Receipt) -> ReceiptView {
    ReceiptView {
        tx_hash: r.tx_hash,
        index: r.index,
        status: match &r.status {
            TxStatus::Ok => ReceiptStatus::Ok,
            TxStatus::Failed { code, reason } => ReceiptStatus::Failed {
                code: code.clone(),
                reason: reason.clone(),
            },
        },
        fee_burned: r.fee_burned,
        fee_to_proposer: r.fee_to_proposer,
        skipped: r
            .skipped
            .iter()
            .map(|s| SkippedAnswerView {
                index: s.index,
                chip_id: s.chip_id,
                code: s.code.clone(),
                reason: s.reason.clone(),
            })
            .collect(),
    }
}

/// A block; receipts when the node holds them and `full`.
pub fn block(b: &Block, receipts: Option<&[Receipt]>, full: bool) -> BlockView {
    BlockView {
        height: b.height.get(),
        hash: b.digest(),
        parent: b.parent,
        timestamp_ms: b.timestamp,
        proposer: b.proposer().clone(),
        view: b.context.round.view().get(),
        epoch: b.context.round.epoch().get(),
        state_root: b.state_root,
        tx_root: b.tx_root,
        beacon: b.beacon(),
        tx_count: b.txs.len() as u64,
        transactions: if full {
            BlockTxs::Full(b.txs.iter().map(tx).collect())
        } else {
            BlockTxs::Hashes(b.txs.iter().map(SignedTx::hash).collect())
        },
        receipts: receipts
            .filter(|_| full)
            .map(|rs| rs.iter().map(receipt).collect()),
    }
}

/// A finalized block with its receipts.
pub fn finalized(fb: &FinalizedBlock, full: bool) -> BlockView {
    block(&fb.block, Some(&fb.receipts), full)
}

/// An account entry.
pub fn account(address: &PublicKey, a: &Account) -> AccountEntry {
    AccountEntry {
        address: address.clone(),
        balance: a.balance,
        balance_unc: format_unc(a.balance),
        nonce: a.nonce,
    }
}

/// Where a finalized transaction is.
pub fn location(l: &TxLocation) -> TxState {
    TxState::Finalized {
        height: l.height,
        block: l.block,
        receipt: receipt(&l.receipt),
    }
}

/// A protocol event.
pub fn event(e: &unet_state::Event) -> Event {
    use unet_state::Event as E;
    match e {
        E::ChipStatus {
            chip_id,
            from,
            to,
            reason,
        } => Event::ChipStatus {
            chip_id: *chip_id,
            from: *from,
            to: *to,
            reason: reason.clone(),
        },
        E::Challenge {
            chip_id,
            height,
            beacon,
            deadline,
        } => Event::Challenge {
            chip_id: *chip_id,
            height: *height,
            beacon: *beacon,
            deadline: *deadline,
        },
        E::Reward {
            chip_id,
            owner,
            epoch,
            amount,
        } => Event::Reward {
            chip_id: *chip_id,
            owner: owner.clone(),
            epoch: *epoch,
            amount: *amount,
        },
        E::EpochSettled {
            epoch,
            emission,
            paid,
            to_treasury,
        } => Event::EpochSettled {
            epoch: *epoch,
            emission: *emission,
            paid: *paid,
            to_treasury: *to_treasury,
        },
        E::Committee { committee } => Event::Committee {
            committee: committee.clone(),
        },
        E::LeaseOpened {
            lease_id,
            offer_id,
            renter,
            provider,
            chips,
            deposit,
        } => Event::LeaseOpened {
            lease_id: *lease_id,
            offer_id: *offer_id,
            renter: renter.clone(),
            provider: provider.clone(),
            chips: chips.clone(),
            deposit: *deposit,
        },
        E::LeaseClosed {
            lease_id,
            reason,
            total_paid,
            paid,
            refunded,
        } => Event::LeaseClosed {
            lease_id: *lease_id,
            reason: close_reason(reason),
            total_paid: *total_paid,
            paid: *paid,
            refunded: *refunded,
        },
    }
}

/// The close reason the state wrote by name (`unet_market::CloseReason::as_str`).
fn close_reason(name: &str) -> CloseReason {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        // Every name the state writes is one of the enum's (see the test below); a new one
        // not yet in the API reads as the closest general reason.
        .unwrap_or(CloseReason::Expired)
}

/// The `events` of a finalized block, optionally only those of `kind`: its transactions
/// with their receipts, then its protocol events.
pub fn block_events(fb: &FinalizedBlock, kind: Option<&str>) -> Vec<EventItem> {
    let height = fb.block.height.get();
    let wanted = |k: &str| kind.is_none_or(|want| want == k);
    let txs = fb
        .block
        .txs
        .iter()
        .zip(fb.receipts.iter())
        .filter(|(t, _)| wanted(t.tx.payload.kind()))
        .map(|(t, r)| EventItem {
            height,
            event: BlockEvent::Transaction(TxEvent {
                kind: t.tx.payload.kind().to_string(),
                transaction: tx(t),
                receipt: receipt(r),
            }),
        });
    let protocol = fb
        .events
        .iter()
        .filter(|e| wanted(e.kind()))
        .map(|e| EventItem {
            height,
            event: BlockEvent::Protocol(event(e)),
        });
    txs.chain(protocol).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use unet_types::market::CloseReason as Stored;

    /// The state names close reasons by `as_str`; each name must read as the same reason.
    #[test]
    fn every_stored_close_reason_name_reads_as_its_api_reason() {
        for stored in [
            Stored::Renter,
            Stored::Provider,
            Stored::DepositExhausted,
            Stored::ChipUnresponsive,
            Stored::ChipRevoked,
            Stored::ChipRemoved,
            Stored::Expired,
        ] {
            let parsed: CloseReason =
                serde_json::from_value(serde_json::Value::String(stored.as_str().into()))
                    .unwrap_or_else(|e| panic!("{}: {e}", stored.as_str()));
            assert_eq!(parsed, CloseReason::from(stored));
        }
    }
}
