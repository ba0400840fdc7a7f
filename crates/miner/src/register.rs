//! The registration anchor, and the nonce a chip signs, computed by the miner itself.
//!
//! A `RegisterChip` evidence binds the chip to `registration_nonce(chain_id, anchor hash,
//! owner)`. If the miner signed whatever nonce a node handed it, a malicious (or compromised)
//! node could hand it the nonce for *its own* address: the chip's evidence would then register
//! the chip to the attacker. So the miner asks the node only for the anchor (a recent block's
//! height and hash) and derives the nonce locally from the chain id, that hash and its own
//! owner key. The node still has to be trusted that the hash is the chain's, but a wrong one
//! only makes the registration fail (`evidence_nonce_mismatch` or `stale_anchor`); it can
//! never register the chip to anyone else.

use anyhow::{anyhow, Result};
use tracing::warn;
use unet_api::chips::RegistrationNonceView;
use unet_client::Client;
use unet_types::{chip::registration_nonce, Address, Digest};

/// The anchor of a registration and the nonce derived from it for one owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationAnchor {
    /// Height of the anchor block (goes in the `RegisterChip` payload).
    pub height: u64,
    /// Hash of the anchor block, as the node reported it.
    pub hash: Digest,
    /// `registration_nonce(chain_id, hash, owner)`, computed here.
    pub nonce: [u8; 32],
    /// The node's own `nonce` field was not this nonce (a lying node, or other rules).
    pub node_disagrees: bool,
}

/// A registration anchor as a node hands it out: only `height` and `hash` are used; the
/// node's own `nonce` is compared with the one derived here, never signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAnchor {
    /// Height of the anchor block.
    pub height: u64,
    /// Its hash (the nonce binds it).
    pub hash: Digest,
    /// The nonce the node says goes with the anchor (hex), if it sent one.
    pub nonce: Option<String>,
}

impl From<RegistrationNonceView> for NodeAnchor {
    /// The anchor of an `unet_registrationNonce` answer (the contract's type).
    fn from(answer: RegistrationNonceView) -> Self {
        Self {
            height: answer.anchor_height,
            hash: answer.anchor_hash,
            nonce: Some(hex::encode(answer.nonce)),
        }
    }
}

impl NodeAnchor {
    /// The nonce for `owner` on `chain_id`, derived locally from the anchor hash.
    pub fn for_owner(&self, chain_id: u64, owner: &Address) -> RegistrationAnchor {
        let nonce = registration_nonce(chain_id, &self.hash, owner);
        RegistrationAnchor {
            height: self.height,
            hash: self.hash,
            nonce,
            node_disagrees: self.nonce.as_deref() != Some(hex::encode(nonce).as_str()),
        }
    }
}

/// Asks the node for a registration anchor (`unet_registrationNonce`) and derives the nonce
/// for `owner` locally; warns when the node's nonce differs from it.
pub async fn fetch_anchor(
    client: &Client,
    chain_id: u64,
    owner: &Address,
) -> Result<RegistrationAnchor> {
    let answer = client
        .registration_nonce(owner)
        .await
        .map_err(|e| anyhow!("unet_registrationNonce: {e}"))?;
    let anchor = NodeAnchor::from(answer).for_owner(chain_id, owner);
    warn_if_steered(client.url(), &anchor);
    Ok(anchor)
}

/// Warns when `node`'s nonce was not the one derived for this owner.
pub fn warn_if_steered(node: &str, anchor: &RegistrationAnchor) {
    if anchor.node_disagrees {
        warn!(
            node,
            anchor_height = anchor.height,
            "the node's registration nonce is not the one for this owner; signing the locally \
             computed nonce (a node that hands out another owner's nonce is trying to take the chip)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{backend::ChipBackend, soft::ChipFile, SoftBackend};
    use commonware_cryptography::{Hasher, Sha256, Signer};
    use serde_json::{json, Value};
    use unet_poci::{
        secure_element::DevnetVendorCa, Curve, Evidence, EvidenceVerifier, PociVerifier,
        VerifyError,
    };
    use unet_types::hexser;
    use unet_types::PrivateKey;

    const CHAIN: u64 = 7701;

    /// What the daemon and `fetch_anchor` do with an answer: decode it as the contract's
    /// type, then derive the nonce for `owner`.
    fn anchor_from_answer(
        answer: &Value,
        chain_id: u64,
        owner: &Address,
    ) -> Result<RegistrationAnchor> {
        let view: RegistrationNonceView = serde_json::from_value(answer.clone())?;
        Ok(NodeAnchor::from(view).for_owner(chain_id, owner))
    }

    /// A node API that answers every `unet_registrationNonce` with a genuine anchor and the
    /// nonce bound to the attacker's address.
    async fn malicious_node(anchor_height: u64, anchor: Digest, attacker: Address) -> String {
        let steered = hex::encode(registration_nonce(CHAIN, &anchor, &attacker));
        let reply = move |body: String| {
            let steered = steered.clone();
            async move {
                let req: Value = serde_json::from_str(&body).unwrap_or_default();
                json!({
                    "jsonrpc": "2.0",
                    "id": req["id"],
                    "result": {
                        "anchor_height": anchor_height,
                        "anchor_hash": hexser::to_hex(&anchor),
                        "nonce": steered,
                        "valid_for_blocks": 256,
                    },
                })
                .to_string()
            }
        };
        let app = axum::Router::new().route("/", axum::routing::post(reply));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_cannot_steer_registration_evidence_to_another_owner() {
        let owner = PrivateKey::from_seed(1).public_key();
        let attacker = PrivateKey::from_seed(666).public_key();
        let anchor_hash = Sha256::hash(&[b"block 41"]);
        let url = malicious_node(41, anchor_hash, attacker.clone()).await;

        let anchor = fetch_anchor(&Client::new(url), CHAIN, &owner)
            .await
            .unwrap();
        let ours = registration_nonce(CHAIN, &anchor_hash, &owner);
        let theirs = registration_nonce(CHAIN, &anchor_hash, &attacker);
        assert_eq!(anchor.height, 41);
        assert_eq!(anchor.nonce, ours);
        assert_ne!(anchor.nonce, theirs);
        assert!(anchor.node_disagrees);

        // The evidence the miner signs with it (the daemon's and `unet chip register`'s path):
        // valid for the miner's own address, useless for the attacker's.
        let dir = tempfile::tempdir().unwrap();
        let ca = DevnetVendorCa::from_seed(b"miner test ca").unwrap();
        ChipFile::provision(&ca, "BM1684X", None, Curve::P256)
            .unwrap()
            .save(&dir.path().join("chip.json"))
            .unwrap();
        let backend = SoftBackend::open(dir.path()).unwrap();
        let chip = backend.chips()[0].chip_id;
        let evidence = backend.registration_evidence(&chip, &anchor.nonce).unwrap();
        let Evidence::VendorX509(decoded) = Evidence::decode(&evidence).unwrap() else {
            panic!("soft chips give vendor-x509 evidence");
        };
        assert_eq!(decoded.nonce, ours);
        let now = 1_795_305_600; // 2026-11-22, inside the devnet certificates' validity
        let trust = ca.trust_store();
        PociVerifier
            .verify_registration(&evidence, &ours, now, &trust)
            .unwrap();
        assert_eq!(
            PociVerifier
                .verify_registration(&evidence, &theirs, now, &trust)
                .unwrap_err(),
            VerifyError::NonceMismatch
        );
    }

    #[test]
    fn an_honest_answer_agrees_and_a_broken_one_is_an_error() {
        let owner = PrivateKey::from_seed(1).public_key();
        let hash = Sha256::hash(&[b"block 9"]);
        let honest = json!({
            "anchor_height": 9,
            "anchor_hash": hexser::to_hex(&hash),
            "nonce": hex::encode(registration_nonce(CHAIN, &hash, &owner)),
            "valid_for_blocks": 256,
        });
        let a = anchor_from_answer(&honest, CHAIN, &owner).unwrap();
        assert_eq!(a.nonce, registration_nonce(CHAIN, &hash, &owner));
        assert!(!a.node_disagrees);
        assert_eq!((a.height, a.hash), (9, hash));
        // Another chain id gives another nonce: the chain id is part of what the miner binds.
        assert!(
            anchor_from_answer(&honest, CHAIN + 1, &owner)
                .unwrap()
                .node_disagrees
        );
        // Each broken answer is the honest one with one defect.
        let with = |field: &str, value: Option<Value>| {
            let mut v = honest.clone();
            match value {
                Some(x) => v[field] = x,
                None => {
                    v.as_object_mut().unwrap().remove(field);
                }
            }
            v
        };
        for broken in [
            with("anchor_height", None),
            with("anchor_hash", None),
            with("anchor_hash", Some(json!("zz"))),
            with("anchor_hash", Some(json!("00"))),
            with("anchor_height", Some(json!("nine"))),
            json!(null),
        ] {
            assert!(
                anchor_from_answer(&broken, CHAIN, &owner).is_err(),
                "{broken}"
            );
        }
    }
}
