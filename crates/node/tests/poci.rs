//! Chips registered through consensus: evidence from a software secure element, bound to a
//! recent block and the owner, verified by every validator, and visible in everyone's state.

mod common;

use common::*;
use commonware_cryptography::Signer;
use commonware_runtime::{deterministic, Runner as _};
use std::time::{Duration, UNIX_EPOCH};
use unet_poci::{secure_element::DevnetVendorCa, Curve, Evidence, VendorX509Evidence};
use unet_state::TxStatus;
use unet_types::{
    chip::{registration_nonce, Chip, ChipStatus},
    keys::chip_key,
    Payload, Transaction,
};

#[test]
fn chip_registration_is_final_on_every_validator() {
    // Certificates are checked at the block timestamp: start the clock in 2026.
    let cfg = deterministic::Config::default()
        .with_seed(11)
        .with_start_time(UNIX_EPOCH + Duration::from_secs(1_795_305_600))
        .with_timeout(Some(Duration::from_secs(600)));
    deterministic::Runner::new(cfg).start(|context| async move {
        let net = network(&context, 4, good_link()).await;
        let mut vs = Vec::new();
        for i in 0..4 {
            vs.push(start(&context, &net, i).await);
        }
        let refs: Vec<_> = vs.iter().collect();
        wait_height(&context, &refs, 5).await;

        // Manufacture a chip with the devnet vendor CA pinned in genesis.
        let ca = DevnetVendorCa::from_seed(unet_node::home::DEVNET_CA_SEED).unwrap();
        let (se, chain) = ca
            .provision_chip([3; 16], b"chip-3", Curve::P256, "BM1684X", "SN-3")
            .unwrap();
        let owner = faucet();

        // Anchor = the finalized tip of validator 1, as unet_registrationNonce reports it.
        let (anchor_height, anchor_hash) = {
            let chain = vs[1].shared.chain.lock().await;
            (chain.applied_height(), chain.applied_digest())
        };
        let nonce = registration_nonce(CHAIN_ID, &anchor_hash, &owner.public_key());
        let evidence = Evidence::VendorX509(VendorX509Evidence {
            nonce,
            chain,
            signature: se.sign_registration(&nonce).unwrap(),
        })
        .encode()
        .unwrap();
        let tx = Transaction {
            chain_id: CHAIN_ID,
            sender: owner.public_key(),
            nonce: 0,
            fee: 10_000,
            payload: Payload::RegisterChip {
                anchor_height,
                evidence,
            },
        }
        .sign(&owner);
        let hash = tx.hash();
        for r in submit(&vs[2], vec![tx]).await {
            r.unwrap();
        }

        // Wait until every validator has the receipt, then compare.
        loop {
            let mut done = 0;
            for v in &vs {
                if v.shared.chain.lock().await.tx_index.contains_key(&hash) {
                    done += 1;
                }
            }
            if done == vs.len() {
                break;
            }
            commonware_runtime::Clock::sleep(&context, Duration::from_millis(50)).await;
        }
        let id = se.chip_id();
        for v in &vs {
            let chain = v.shared.chain.lock().await;
            assert_eq!(chain.tx_index[&hash].receipt.status, TxStatus::Ok);
            let chip: Chip = chain
                .get_decoded(&chip_key(&id))
                .await
                .unwrap()
                .expect("chip");
            assert_eq!(chip.owner, owner.public_key());
            assert_eq!(chip.model, "BM1684X");
            assert_eq!(chip.status, ChipStatus::Online);
            assert_eq!(chain.registry().await.unwrap().chip_count, 1);
        }
    });
}
