//! Four real `unet node` processes over loopback TCP: transfers finalize, a node killed with
//! SIGKILL restarts from its own disk, catches up, and every node reports the same finalized
//! block at a common height.

mod support;

use commonware_cryptography::Signer;
use support::{height, transfer, wait_for, Network};
use unet_types::{PrivateKey, UNC};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_survive_kill_9_and_agree() {
    // Short epochs: the run crosses many epoch boundaries (reshare + new engine each time).
    let mut net = Network::start(
        32100,
        9310,
        &["--block-time-ms", "50", "--epoch-length", "40"],
    )
    .await;
    let node0 = net.client_of(0);
    let s = net.client().status().await.unwrap();
    let faucet = net.faucet();
    let bob = PrivateKey::from_seed(77);
    let fee = s.params.min_fee;

    // Transfers through different nodes.
    let mut last_hash = String::new();
    for n in 0..10u64 {
        let tx = transfer(&faucet, s.chain_id, n, fee, &bob);
        last_hash = hex::encode(
            net.client_of((n % 4) as usize)
                .send_transaction(&tx)
                .await
                .unwrap(),
        );
    }
    // Final on node 0, and every node has finalized its block: node 2 is read below.
    let done = net.wait_tx(0, &last_hash).await;
    assert_eq!(done["status"], "finalized");
    assert_eq!(
        net.client_of(2)
            .account(&bob.public_key())
            .await
            .unwrap()
            .balance,
        10 * UNC
    );

    // SIGKILL node 3, keep going without it.
    net.kill(3);
    let at_kill = height(&node0).await;
    for n in 10..20u64 {
        let tx = transfer(&faucet, s.chain_id, n, fee, &bob);
        last_hash = hex::encode(
            net.client_of((n % 3) as usize)
                .send_transaction(&tx)
                .await
                .unwrap(),
        );
    }
    net.wait_tx(0, &last_hash).await;
    wait_for("progress without node 3", || async {
        height(&node0).await >= at_kill + 20
    })
    .await;

    // Restart it from its own disk: it resumes and catches up from peers. Every node is read
    // at `target` below, so every node must have finalized it.
    net.restart(3);
    let target = height(&node0).await + 5;
    net.wait_all(target).await;

    // Same finalized block at a common height (and at the height of the kill) on all four.
    for h in [at_kill, target] {
        let mut hashes = Vec::new();
        for i in 0..4 {
            let b = net.client_of(i).block(h).await.unwrap();
            hashes.push(b.hash);
        }
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "height {h}: {hashes:?}"
        );
    }
    assert_eq!(
        net.client_of(3)
            .account(&bob.public_key())
            .await
            .unwrap()
            .balance,
        20 * UNC
    );
    assert_eq!(
        net.client_of(3)
            .account(&faucet.public_key())
            .await
            .unwrap()
            .nonce,
        20
    );
}

#[test]
fn corrupt_home_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_unet"))
        .args([
            "testnet",
            "--trust-devnet-ca",
            "--validators",
            "1",
            "--base-p2p-port",
            "32190",
            "--base-rpc-port",
            "9390",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let home = out.join("node0");
    let run = |what: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_unet"))
            .args(["node", "--home"])
            .arg(&home)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "{what}: node started anyway");
        assert!(!stderr.contains("panicked"), "{what}: panicked: {stderr}");
        stderr
    };
    // A key file others can read is refused.
    let key = home.join("keys/identity.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(run("world-readable key").contains("chmod 600"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // A key file that is not a key.
    let original = std::fs::read(&key).unwrap();
    std::fs::write(&key, "not hex\n").unwrap();
    assert!(run("garbage key").contains("identity.key is not hex"));
    std::fs::write(&key, &original).unwrap();
    // A genesis that does not parse, and one that breaks its own rules.
    let genesis = home.join("genesis.toml");
    let text = std::fs::read_to_string(&genesis).unwrap();
    std::fs::write(&genesis, "chain_id = [").unwrap();
    assert!(run("garbage genesis").contains("cannot parse genesis"));
    std::fs::write(
        &genesis,
        text.replace("fee_burn_bps = 5000", "fee_burn_bps = 20000"),
    )
    .unwrap();
    assert!(run("invalid genesis").contains("fee_burn_bps above 10000"));
    std::fs::write(&genesis, &text).unwrap();
    // A config that does not parse.
    std::fs::write(home.join("config.toml"), "p2p_listen = 7").unwrap();
    assert!(run("garbage config").contains("parsing config.toml"));
}
