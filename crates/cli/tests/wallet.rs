//! The wallet CLI end to end against a real 4-validator network of `unet node` processes on
//! loopback: keys (one encrypted), funding from the faucet, a transfer between the keys, exact
//! balances after finality, a locally verified state proof, and blocks over a WebSocket
//! subscription. One network, one test function with numbered sections.

mod support;

use commonware_cryptography::Signer;
use futures::StreamExt;
use serde_json::Value;
use std::{path::Path, time::Instant};
use support::{unet, unet_json, Network};
use unet_client::VerifyProof;
use unet_types::{hexser, PrivateKey, UNC};

const P2P_PORT: u16 = 31000;
const RPC_PORT: u16 = 9100;

fn balance(net: &Network, ks: &Path, who: &str) -> (u128, u64) {
    let v = unet_json(net, ks, &["balance", who], &[]);
    let b = v["balance"]
        .as_str()
        .expect("balance")
        .parse()
        .expect("u128");
    (b, v["nonce"].as_u64().expect("nonce"))
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_end_to_end() {
    let net = Network::start(P2P_PORT, RPC_PORT, &[]).await;
    let client = net.client();
    let ks_dir = net.path().join("keys");
    let ks = ks_dir.as_path();
    let status = client.status().await.expect("status");
    let min_fee = status.params.min_fee;
    assert_eq!(status.chain_id, 7701);
    assert_eq!(min_fee, UNC / 1000);

    // Blocks over WebSocket: subscribe first, collect in the background.
    let mut blocks = client.subscribe_blocks().await.expect("subscribe");
    let (block_tx, mut block_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        while let Some(Ok(b)) = blocks.next().await {
            if block_tx.send(serde_json::to_value(b).unwrap()).is_err() {
                return;
            }
        }
    });

    // 1. Keys: the faucet imported from its key file, alice encrypted, bob in plain text.
    let faucet_file = net.path().join("net/faucet.key");
    let faucet_key: PrivateKey = unet_node::home::read_key(&faucet_file).expect("faucet key");
    let faucet_addr = hexser::to_hex(&faucet_key.public_key());
    let v = unet_json(
        &net,
        ks,
        &[
            "keys",
            "import",
            "faucet",
            "--secret-file",
            faucet_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(v["address"], faucet_addr.as_str());
    assert_eq!(v["encrypted"], false);
    let pw_file = net.path().join("pw");
    std::fs::write(&pw_file, "correct horse battery staple\n").unwrap();
    let v = unet_json(
        &net,
        ks,
        &[
            "keys",
            "new",
            "alice",
            "--passphrase-file",
            pw_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(v["encrypted"], true);
    let alice = v["address"].as_str().unwrap().to_string();
    let v = unet_json(&net, ks, &["keys", "new", "bob"], &[]);
    assert_eq!(v["encrypted"], false);
    let bob = v["address"].as_str().unwrap().to_string();
    #[cfg(unix)]
    {
        assert_eq!(mode(ks), 0o700);
        for n in ["alice", "bob", "faucet"] {
            assert_eq!(mode(&ks.join(format!("{n}.json"))), 0o600, "{n}");
        }
    }
    let list = unet_json(&net, ks, &["keys", "list"], &[]);
    let summary: Vec<(String, String, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let s = |f: &str| k[f].as_str().unwrap().to_string();
            (s("name"), s("address"), k["encrypted"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("alice".into(), alice.clone(), true),
            ("bob".into(), bob.clone(), false),
            ("faucet".into(), faucet_addr.clone(), false),
        ]
    );
    let text = unet(&net, ks, &["keys", "list"], &[]);
    assert!(
        text.stdout
            .contains(&format!("bob              {bob}  UNENCRYPTED")),
        "{}",
        text.stdout
    );
    // Secrets never reach the output.
    let bob_file: Value =
        serde_json::from_slice(&std::fs::read(ks.join("bob.json")).unwrap()).unwrap();
    let bob_secret = bob_file["secret"].as_str().unwrap();
    let alice_file: Value =
        serde_json::from_slice(&std::fs::read(ks.join("alice.json")).unwrap()).unwrap();
    assert_eq!(alice_file["kdf"]["algorithm"], "argon2id");
    assert!(alice_file.get("secret").is_none());
    for args in [
        &["keys", "show", "bob"][..],
        &["keys", "list"],
        &["keys", "show", "bob", "--json"],
    ] {
        let r = unet(&net, ks, args, &[]);
        assert_eq!(r.code, 0);
        assert!(!r.stdout.contains(bob_secret) && !r.stderr.contains(bob_secret));
    }
    let r = unet(&net, ks, &["keys", "new", "bob"], &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("a key named \"bob\" already exists"),
        "{}",
        r.stderr
    );

    // 2. Fund alice from the faucet: exact amounts, fee = the chain's minimum by default.
    let (faucet_before, faucet_nonce) = balance(&net, ks, "faucet");
    assert_eq!(faucet_nonce, 0);
    let fund = unet_json(
        &net,
        ks,
        &[
            "transfer", "--from", "faucet", "--to", "alice", "--amount", "100",
        ],
        &[],
    );
    assert_eq!(fund["status"], "finalized");
    assert_eq!(fund["receipt"]["status"], "ok");
    assert_eq!(fund["amount"], (100 * UNC).to_string());
    assert_eq!(fund["fee"], min_fee.to_string());
    assert_eq!(fund["nonce"], 0);
    assert_eq!(fund["to"], alice.as_str());
    assert_eq!(balance(&net, ks, "alice"), (100 * UNC, 0));
    assert_eq!(
        balance(&net, ks, "faucet"),
        (faucet_before - 100 * UNC - min_fee, 1)
    );

    // 3. Alice (encrypted) pays bob 2.5 UNC with a 0.002 UNC fee; a wrong passphrase is refused.
    let bad_pw = net.path().join("bad-pw");
    std::fs::write(&bad_pw, "wrong\n").unwrap();
    let args = [
        "transfer", "--from", "alice", "--to", "bob", "--amount", "2.5", "--fee", "0.002",
    ];
    let mut with_bad = args.to_vec();
    with_bad.extend(["--passphrase-file", bad_pw.to_str().unwrap()]);
    let r = unet(&net, ks, &with_bad, &[]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        "error: wrong passphrase for key \"alice\" (or its file was modified)"
    );
    let r = unet(&net, ks, &args, &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: key \"alice\" is encrypted"),
        "{}",
        r.stderr
    );
    let mut with_env = args.to_vec();
    with_env.extend(["--passphrase-env", "ALICE_PW"]);
    let pay = unet_json(
        &net,
        ks,
        &with_env,
        &[("ALICE_PW", "correct horse battery staple")],
    );
    let fee = 2 * UNC / 1000;
    assert_eq!(pay["status"], "finalized");
    assert_eq!(pay["receipt"]["status"], "ok");
    assert_eq!(pay["receipt"]["fee_burned"], (fee / 2).to_string());
    assert_eq!(pay["receipt"]["fee_to_proposer"], (fee / 2).to_string());
    assert_eq!(
        balance(&net, ks, "alice"),
        (100 * UNC - 5 * UNC / 2 - fee, 1)
    );
    assert_eq!(balance(&net, ks, &bob), (5 * UNC / 2, 0));
    let text = unet(&net, ks, &["balance", "bob"], &[]);
    assert!(
        text.stdout
            .contains("balance  2.5 UNC (2500000000000000000 base units)"),
        "{}",
        text.stdout
    );

    // 4. The transaction and its block as the CLI shows them.
    let hash = pay["hash"].as_str().unwrap();
    let height = pay["height"].as_u64().unwrap();
    let tx = unet_json(&net, ks, &["tx", hash], &[]);
    assert_eq!(tx["status"], "finalized");
    assert_eq!(tx["height"], height);
    assert_eq!(tx["block"], pay["block"]);
    let block = unet_json(&net, ks, &["block", &height.to_string()], &[]);
    assert_eq!(block["hash"], pay["block"]);
    let in_block: Vec<&str> = block["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["hash"].as_str().unwrap())
        .collect();
    assert!(in_block.contains(&hash), "{in_block:?}");

    // 5. Proof of bob's balance, verified locally against the finalized state root.
    let proof = unet_json(&net, ks, &["proof", "bob"], &[]);
    assert_eq!(proof["verified"], true);
    assert_eq!(proof["header_matches"], true);
    assert_eq!(proof["account"]["balance"], (5 * UNC / 2).to_string());
    assert_eq!(proof["account"]["nonce"], 0);
    let bob_addr = hexser::from_hex(&bob).unwrap();
    let view = client.proof(&bob_addr).await.expect("proof");
    let account = view.verify().expect("verifies").expect("present");
    assert_eq!((account.balance, account.nonce), (5 * UNC / 2, 0));
    let header = client.block(view.height).await.expect("header");
    assert_eq!(header.state_root, view.state_root);
    assert_eq!(header.hash, view.block);
    let mut forged = view.clone();
    forged.state_root = header.parent;
    assert!(
        forged.verify().is_err(),
        "a proof against another root must fail"
    );
    let nobody = hexser::from_hex(&"11".repeat(32)).unwrap();
    let absent = client.proof(&nobody).await.expect("proof");
    assert!(absent.verify().expect("absence verifies").is_none());

    // 6. Queued transfers: two --no-wait sends get consecutive nonces and both finalize.
    let mut hashes = Vec::new();
    for amount in ["0.25", "0.5"] {
        let v = unet_json(
            &net,
            ks,
            &[
                "transfer",
                "--from",
                "bob",
                "--to",
                "alice",
                "--amount",
                amount,
                "--no-wait",
            ],
            &[],
        );
        assert_eq!(v["status"], "pending");
        hashes.push((
            v["hash"].as_str().unwrap().to_string(),
            v["nonce"].as_u64().unwrap(),
        ));
    }
    assert_eq!((hashes[0].1, hashes[1].1), (0, 1));
    for (h, _) in &hashes {
        let h = hexser::from_hex(h).unwrap();
        let v = client
            .wait_finalized(&h, support::patience())
            .await
            .expect("finalized");
        assert_eq!(
            v.receipt().map(|r| &r.status),
            Some(&unet_client::api::chain::ReceiptStatus::Ok),
            "{v:?}"
        );
    }
    assert_eq!(
        balance(&net, ks, "bob"),
        (5 * UNC / 2 - 3 * UNC / 4 - 2 * min_fee, 2)
    );
    let r = unet(
        &net,
        ks,
        &[
            "transfer", "--from", "bob", "--to", "alice", "--amount", "1000",
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("insufficient balance"), "{}", r.stderr);

    // 7. Supply: exactly half of every fee burned.
    let supply = unet_json(&net, ks, &["supply"], &[]);
    let burned = (min_fee + fee + 2 * min_fee) / 2;
    assert_eq!(supply["burned"], burned.to_string());
    let genesis: u128 = supply["genesis"].as_str().unwrap().parse().unwrap();
    assert_eq!(supply["total"], (genesis - burned).to_string());

    // 8. The subscription delivered consecutive finalized blocks, including the transfer's.
    let mut last: Option<u64> = None;
    let mut saw_transfer = false;
    let deadline = Instant::now() + support::patience();
    while !saw_transfer {
        let left = deadline.saturating_duration_since(Instant::now());
        let b = tokio::time::timeout(left, block_rx.recv())
            .await
            .expect("block in time")
            .expect("stream open");
        let h = b["height"].as_u64().expect("height");
        assert_eq!(b["hash"].as_str().map(str::len), Some(64));
        if let Some(prev) = last {
            assert_eq!(h, prev + 1, "blocks arrive in order without gaps");
        }
        last = Some(h);
        if h == height {
            assert_eq!(b["hash"], pay["block"]);
            assert!(b["transactions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == hash));
            saw_transfer = true;
        }
    }
}
