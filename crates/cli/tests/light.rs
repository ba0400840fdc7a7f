//! The light client against real `unet node` processes: `unet light account` verifies a
//! balance with only the genesis group key, and every forged or mismatched answer (built by
//! tampering with the node's real answers) is refused.
//!
//! Ports 24200-24399 (P2P 242xx, API 243xx); tests/tx_index.rs uses 24000-24199.

mod support;

use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::Signer;
use support::{at_one_height, transfer, unet, unet_json, Network};
use unet_client::{
    api::chain::{CertifiedHeaderView, ProofView, TxState},
    light::{LightError, LightVerifier},
};
use unet_types::{BlockHeader, Digest, Genesis, PrivateKey, UNC};

/// Re-encodes the first header of `view` after `edit`.
fn edit_first_header(
    view: &CertifiedHeaderView,
    edit: impl FnOnce(&mut BlockHeader),
) -> CertifiedHeaderView {
    let mut header = BlockHeader::decode(commonware_codec::Copying(&view.headers[0])).unwrap();
    edit(&mut header);
    let mut out = view.clone();
    out.headers[0] = header.encode().to_vec();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_client_verifies_balances_and_refuses_forgeries() {
    let net = Network::start(24200, 24300, &["--block-time-ms", "50"]).await;
    let s = net.client().status().await.unwrap();
    let faucet = net.faucet();
    let bob = PrivateKey::from_seed(79);
    let send = |nonce| transfer(&faucet, s.chain_id, nonce, s.params.min_fee, &bob);
    let hash = net.client().send_transaction(&send(0)).await.unwrap();
    let done = net.wait_tx(0, &hex::encode(hash)).await;
    assert_eq!(done["status"], "finalized");
    let genesis_file = net.home(0).join("genesis.toml");
    let genesis = Genesis::from_toml(&std::fs::read_to_string(&genesis_file).unwrap()).unwrap();
    let verifier = LightVerifier::from_genesis(&genesis).unwrap();

    // Through the CLI: exit 0, the balance, and what was verified.
    let bob_hex = unet_types::hexser::to_hex(&bob.public_key());
    let keys = net.path().join("keys");
    let genesis_arg = genesis_file.to_str().unwrap();
    let run = unet(
        &net,
        &keys,
        &[
            "light",
            "account",
            &bob_hex,
            "--genesis",
            genesis_arg,
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["balance"], UNC.to_string());
    assert_eq!(out["nonce"], 0);
    assert_eq!(out["verified"]["group_key"], verifier.group_key_hex());
    let TxState::Finalized {
        height: tx_height, ..
    } = net.client().transaction(&hash).await.unwrap().state
    else {
        panic!("not finalized");
    };
    assert!(out["verified"]["height"].as_u64().unwrap() >= tx_height);
    let text = unet(
        &net,
        &keys,
        &["light", "account", &bob_hex, "--genesis", genesis_arg],
        &[],
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("balance      1 UNC"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("merkle proof"), "{}", text.stdout);

    // The same through the library, on the node's real answers.
    let client = net.client();
    let proof: ProofView = client.proof(&bob.public_key()).await.unwrap();
    let header = client.finalized_header(proof.height).await.unwrap();
    let ok = verifier
        .verify_account(&bob.public_key(), &header, &proof)
        .unwrap();
    assert_eq!(ok.account.as_ref().map(|a| a.balance), Some(UNC));
    assert_eq!(ok.certified.header.state_root, proof.state_root);
    assert_eq!(ok.certified.block, proof.block);

    // 1. A certificate checked under another group key (a forger's) is refused...
    let rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(99);
    let (other, _) = unet_node::home::deal_genesis(rng, &genesis.validators).unwrap();
    let forger = LightVerifier::new(*other.public().public());
    assert!(matches!(
        forger.verify_account(&bob.public_key(), &header, &proof),
        Err(LightError::BadCertificate)
    ));
    // ...through the CLI too, with a clear error and a non-zero exit.
    let forged_key = forger.group_key_hex();
    let refused = unet(
        &net,
        &keys,
        &["light", "account", &bob_hex, "--group-key", &forged_key],
        &[],
    );
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("REFUSED") && refused.stderr.contains("group key"),
        "{}",
        refused.stderr
    );
    // ...and so is a tampered signature (last byte of the certificate flipped).
    let mut tampered = header.clone();
    *tampered.finalization.last_mut().unwrap() ^= 1;
    assert!(matches!(
        verifier.verify_account(&bob.public_key(), &tampered, &proof),
        Err(LightError::BadCertificate | LightError::CertificateEncoding(_))
    ));

    // 2. A header whose state root was changed no longer hashes to the certified block, even
    //    when the proof is made to agree with it.
    let lie = Digest::from([7u8; 32]);
    let forged = edit_first_header(&header, |h| h.state_root = lie);
    assert!(matches!(
        verifier.verify_account(&bob.public_key(), &forged, &proof),
        Err(LightError::CertificateForAnotherBlock { .. } | LightError::BrokenChain(_))
    ));
    let mut agreeing = proof.clone();
    agreeing.state_root = lie;
    assert!(verifier
        .verify_account(&bob.public_key(), &forged, &agreeing)
        .is_err());
    // A valid header of another height is refused for this proof.
    net.wait_height(0, header.certified_height + 1).await;
    let next = client.finalized_header(proof.height + 1).await.unwrap();
    assert!(matches!(
        verifier.verify_account(&bob.public_key(), &next, &proof),
        Err(LightError::WrongHeight { .. })
    ));
    // A (valid) certificate of another block spliced onto this header chain.
    let other_cert = client
        .finalized_header(header.certified_height + 1)
        .await
        .unwrap();
    let mut spliced = header.clone();
    spliced.finalization = other_cert.finalization.clone();
    assert!(matches!(
        verifier.verify_account(&bob.public_key(), &spliced, &proof),
        Err(LightError::CertificateForAnotherBlock { .. })
    ));

    // 3. A proof for another value (the claimed account bytes changed) is refused.
    let mut other_value = proof.clone();
    other_value.proof[2] ^= 0x01;
    assert!(matches!(
        verifier.verify_account(&bob.public_key(), &header, &other_value),
        Err(LightError::BadProof(_))
    ));
    //    So is another account's (valid) proof, of the same height, passed off as bob's.
    let (bob_now, faucet_now) = at_one_height(&client, || async {
        (
            client.proof(&bob.public_key()).await.unwrap(),
            client.proof(&faucet.public_key()).await.unwrap(),
        )
    })
    .await;
    let header_now = client.finalized_header(bob_now.height).await.unwrap();
    verifier
        .verify_account(&bob.public_key(), &header_now, &bob_now)
        .unwrap();
    // Another account's proof, unchanged, as the answer about bob: the wrong account.
    assert!(matches!(
        verifier.verify_account(&bob.public_key(), &header_now, &faucet_now),
        Err(LightError::AnotherAccount { .. })
    ));
    let mut swapped = faucet_now.clone();
    swapped.address = bob.public_key();
    assert!(matches!(
        verifier.verify_account(&bob.public_key(), &header_now, &swapped),
        Err(LightError::WrongKey)
    ));
    swapped.key = bob_now.key;
    assert!(matches!(
        verifier.verify_account(&bob.public_key(), &header_now, &swapped),
        Err(LightError::BadProof(_))
    ));

    // 4. A proof against another root: bob's proof after a second transfer (a later state),
    //    presented with the earlier certified header.
    let hash2 = net.client().send_transaction(&send(1)).await.unwrap();
    net.wait_tx(0, &hex::encode(hash2)).await;
    let later = client.proof(&bob.public_key()).await.unwrap();
    assert!(later.height > proof.height);
    assert_eq!(
        verifier
            .verify_account(
                &bob.public_key(),
                &client.finalized_header(later.height).await.unwrap(),
                &later
            )
            .unwrap()
            .account
            .unwrap()
            .balance,
        2 * UNC
    );
    let mut stale = later.clone();
    stale.height = proof.height;
    stale.block = proof.block;
    assert!(matches!(
        verifier.verify_account(&bob.public_key(), &header, &stale),
        Err(LightError::RootMismatch { .. })
    ));
    stale.state_root = proof.state_root;
    assert!(matches!(
        verifier.verify_account(&bob.public_key(), &header, &stale),
        Err(LightError::BadProof(_))
    ));
    // A proof that names another block than the certified one at its height.
    let mut elsewhere = proof.clone();
    elsewhere.block = later.block;
    assert!(matches!(
        verifier.verify_account(&bob.public_key(), &header, &elsewhere),
        Err(LightError::ProofForAnotherBlock { .. })
    ));

    // 5. A chip's status through `unet light chip`, and a chip proof passed off as another
    //    chip's or with a changed entry is refused.
    let faucet_file = net.faucet_file();
    let import = [
        "keys",
        "import",
        "miner",
        "--secret-file",
        faucet_file.to_str().unwrap(),
    ];
    unet_json(&net, &keys, &import, &[]);
    let chip_file = net.path().join("chip.json");
    let chip_arg = chip_file.to_str().unwrap();
    let made = unet_json(
        &net,
        &keys,
        &[
            "chip",
            "provision",
            "--out",
            chip_arg,
            "--model",
            "BM1684X",
            "--serial",
            "L-1",
        ],
        &[],
    );
    let chip_id = made["chip_id"].as_str().unwrap().to_string();
    let r = unet_json(
        &net,
        &keys,
        &["chip", "register", "--from", "miner", "--chip", chip_arg],
        &[],
    );
    assert_eq!(r["receipt"]["status"], "ok");
    let out = unet_json(
        &net,
        &keys,
        &["light", "chip", &chip_id, "--genesis", genesis_arg],
        &[],
    );
    assert_eq!(out["registered"], true);
    assert_eq!(out["chip"]["status"], "online");
    assert_eq!(out["chip"]["model"], "BM1684X");
    assert_eq!(
        out["chip"]["owner"],
        unet_types::hexser::to_hex(&faucet.public_key())
    );
    let id: [u8; 32] = hex::decode(&chip_id).unwrap().try_into().unwrap();
    let chip_proof = client.chip_proof(&id).await.unwrap();
    let chip_header = client.finalized_header(chip_proof.height).await.unwrap();
    let verified = verifier
        .verify_chip(&id, &chip_header, &chip_proof)
        .unwrap();
    assert_eq!(verified.chip.unwrap().serial, "L-1");
    let mut other_chip = chip_proof.clone();
    other_chip.chip_id = [9u8; 32];
    assert!(matches!(
        verifier.verify_chip(&[9u8; 32], &chip_header, &other_chip),
        Err(LightError::WrongKey)
    ));
    other_chip.key = unet_types::keys::chip_key(&[9u8; 32]);
    assert!(matches!(
        verifier.verify_chip(&[9u8; 32], &chip_header, &other_chip),
        Err(LightError::BadProof(_))
    ));
    let mut changed = chip_proof.clone();
    changed.proof[5] ^= 0x01;
    assert!(matches!(
        verifier.verify_chip(&id, &chip_header, &changed),
        Err(LightError::BadProof(_))
    ));
    // An unregistered chip is proven absent.
    let absent = client.chip_proof(&[9u8; 32]).await.unwrap();
    let absent_header = client.finalized_header(absent.height).await.unwrap();
    assert_eq!(
        verifier
            .verify_chip(&[9u8; 32], &absent_header, &absent)
            .unwrap()
            .chip,
        None
    );
    // Another chip's (valid) answer, as the answer about this chip: the wrong chip.
    assert!(matches!(
        verifier.verify_chip(&id, &absent_header, &absent),
        Err(LightError::AnotherChip { .. })
    ));
}
