//! The miner agent on real processes: four `unet node` validators with short epochs and one
//! `unet miner` with four emulated chips of two models.
//!
//! 1. every chip registers and is Online within two epochs, answers challenges and earns;
//! 2. the miner is SIGKILLed for longer than the response window: its chips go Unresponsive;
//! 3. restarted from its home, it recovers them (Online again) and they earn again;
//! 4. the node it is connected to is restarted under it: it fails over, no chip misses a
//!    challenge, and over the whole run no challenge is answered twice and no answer of the
//!    miner fails on chain (`liveness_not_challenged` would mean a duplicate).

mod support;

use commonware_cryptography::Signer;
use serde_json::Value;
use std::{
    collections::HashSet,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use support::{height, poll, wait_for, Network};
use unet_client::Client;
use unet_types::{Payload, Transaction, UNC};

const EPOCH: u64 = 40;
const WINDOW: u64 = 10;
const CHIPS: usize = 4;

fn spawn_miner(home: &Path, rpcs: &str) -> Child {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(home.join("miner.log"))
        .expect("log");
    Command::new(env!("CARGO_BIN_EXE_unet"))
        .args([
            "miner",
            "run",
            "--no-progress",
            "--metrics",
            "127.0.0.1:9590",
            "--home",
        ])
        .arg(home)
        .args(["--rpc", rpcs])
        .env("RUST_LOG", "info,unet_miner=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn unet miner")
}

async fn chips(client: &Client, owner: &str) -> Vec<Value> {
    let filter = unet_client::api::params::ListChipsParams {
        owner: unet_types::hexser::from_hex(owner).ok(),
        page: unet_client::api::params::PageParams::new(None, Some(200)),
        ..Default::default()
    };
    match client.chips(filter).await {
        Ok(list) => list
            .chips
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn all_status(client: &Client, owner: &str, status: &str) -> bool {
    let c = chips(client, owner).await;
    c.len() == CHIPS && c.iter().all(|c| c["status"] == status)
}

fn rewards(c: &Value) -> u128 {
    c["rewards"]["total"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miner_registers_answers_recovers_and_never_double_answers() {
    let mut net = Network::start(
        32300,
        9500,
        &[
            "--epoch-length",
            &EPOCH.to_string(),
            "--response-window",
            &WINDOW.to_string(),
            "--challenges-per-epoch",
            "4",
        ],
    )
    .await;
    let client = net.client();
    let observer = net.client_of(1);
    let status = client.status().await.unwrap();
    assert_eq!(status.params.epoch_length, EPOCH);
    assert_eq!(status.params.response_window, WINDOW);

    // A miner home with four emulated chips; the owner funded from the faucet.
    let home = net.path().join("miner");
    let out = Command::new(env!("CARGO_BIN_EXE_unet"))
        .args(["miner", "init", "--json", "--emulated-chips", "4", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init: Value = serde_json::from_slice(&out.stdout).unwrap();
    let owner = init["owner"].as_str().unwrap().to_string();
    assert_eq!(init["chips"].as_array().unwrap().len(), CHIPS);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("owner.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let faucet = net.faucet();
    let owner_key: unet_types::PublicKey = unet_types::hexser::from_hex(&owner).unwrap();
    let fund = Transaction {
        chain_id: status.chain_id,
        sender: faucet.public_key(),
        nonce: 0,
        fee: status.params.min_fee,
        payload: Payload::Transfer {
            to: owner_key,
            amount: 1_000 * UNC,
        },
    }
    .sign(&faucet);
    let hash = client.send_transaction(&fund).await.unwrap();
    net.wait_tx(0, &hex::encode(hash)).await;

    // 1. Registered and Online within two epochs; every chip answers and earns.
    let rpcs = format!("{},{}", net.rpc, observer.url());
    let start_height = height(&client).await;
    let mut miner = spawn_miner(&home, &rpcs);
    wait_for("every chip Online", || {
        all_status(&client, &owner, "online")
    })
    .await;
    let online_at = height(&client).await;
    assert!(
        online_at <= start_height + 2 * EPOCH,
        "chips Online only at height {online_at} (miner started at {start_height})"
    );
    let model_set: HashSet<String> = chips(&client, &owner)
        .await
        .iter()
        .map(|c| c["model"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(model_set.len(), 2, "two models: {model_set:?}");
    wait_for("every chip answered a challenge and earned", || async {
        let c = chips(&client, &owner).await;
        c.len() == CHIPS
            && c.iter()
                .all(|c| c["liveness"]["last_response"].as_u64().unwrap_or(0) > 0 && rewards(c) > 0)
    })
    .await;
    // /metrics reports it (once the miner's own view, fed by the blocks it follows, caught up).
    let metrics = poll("the miner's /metrics to count 4 chips online", || async {
        let m = reqwest::get("http://127.0.0.1:9590/metrics")
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        m.contains("unet_miner_chips_online 4").then_some(m)
    })
    .await;
    assert!(
        metrics.contains("unet_miner_challenges_answered_total"),
        "{metrics}"
    );

    // `unet miner status` shows each chip.
    let out = Command::new(env!("CARGO_BIN_EXE_unet"))
        .args(["miner", "status", "--json", "--home"])
        .arg(&home)
        .args(["--rpc", &net.rpc])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = st["chips"].as_array().unwrap();
    assert_eq!(rows.len(), CHIPS);
    for r in rows {
        assert_eq!(r["status"], "online");
        assert!(r["compute_milli_tops"].as_u64().unwrap() > 0);
        assert!(r["last_challenge"].as_u64().unwrap() > 0);
        assert_ne!(r["rewards_total"], "0");
    }

    // 2. Killed for longer than the response window: every chip goes Unresponsive.
    miner.kill().unwrap();
    miner.wait().unwrap();
    let killed_at = height(&client).await;
    wait_for("every chip Unresponsive", || {
        all_status(&client, &owner, "unresponsive")
    })
    .await;
    assert!(height(&client).await > killed_at + WINDOW);

    // 3. Restarted: they answer their next challenge, come back Online and earn again.
    let before: Vec<u128> = chips(&client, &owner).await.iter().map(rewards).collect();
    let mut miner = spawn_miner(&home, &rpcs);
    wait_for("every chip Online again", || {
        all_status(&client, &owner, "online")
    })
    .await;
    // Challenges issued while the miner was down are answered when it catches up; those close
    // to their deadline may land too late (how late depends on the machine's load).
    let live_again_at = height(&client).await;
    wait_for("every chip earning again", || async {
        let c = chips(&client, &owner).await;
        c.len() == CHIPS && c.iter().zip(&before).all(|(c, b)| rewards(c) > *b)
    })
    .await;

    // 4. The miner's node restarts under it: no chip misses a challenge.
    let phase_start = height(&observer).await;
    net.restart(0);
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        // Polled from node 1, which stays up.
        let c = chips(&observer, &owner).await;
        assert_eq!(c.len(), CHIPS);
        for chip in &c {
            assert_eq!(
                chip["status"], "online",
                "a chip missed a challenge: {chip}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    net.wait_height(0, phase_start).await;
    let end_wait = height(&observer).await + EPOCH;
    wait_for("an epoch after the restart, every chip Online", || async {
        for chip in chips(&observer, &owner).await {
            assert_eq!(
                chip["status"], "online",
                "a chip missed a challenge: {chip}"
            );
        }
        height(&observer).await >= end_wait
    })
    .await;
    miner.kill().unwrap();
    miner.wait().unwrap();
    let log = std::fs::read_to_string(home.join("miner.log")).unwrap();
    assert!(
        log.contains("reconnecting"),
        "the miner did not notice the node restart"
    );
    assert!(log.contains(&format!("connected node={}", observer.url())));

    // Over the whole run: every liveness transaction of the miner succeeded and no challenge
    // was answered twice.
    let end = height(&observer).await;
    let mut answered = HashSet::new();
    let mut liveness_txs = 0;
    for h in start_height..=end {
        let b = serde_json::to_value(observer.block(h).await.unwrap()).unwrap();
        let txs = b["transactions"].as_array().cloned().unwrap_or_default();
        let receipts = b["receipts"].as_array().cloned().unwrap_or_default();
        for (i, tx) in txs.iter().enumerate() {
            if tx["sender"] != owner.as_str() || tx["kind"] != "liveness" {
                continue;
            }
            liveness_txs += 1;
            let receipt = receipts
                .get(i)
                .unwrap_or_else(|| panic!("no receipt for block {h}"));
            let catching_up = tx["responses"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["challenge_height"].as_u64().unwrap() < live_again_at);
            if receipt["status"] != "ok" && catching_up && receipt["code"] == "liveness_late" {
                // A challenge issued while the miner was killed, answered on restart.
                continue;
            }
            assert_eq!(
                receipt["status"], "ok",
                "miner's liveness tx failed: {receipt}"
            );
            for r in tx["responses"].as_array().unwrap() {
                let key = (
                    r["chip_id"].as_str().unwrap().to_string(),
                    r["challenge_height"].as_u64().unwrap(),
                );
                assert!(answered.insert(key.clone()), "answered twice: {key:?}");
            }
        }
    }
    assert!(liveness_txs > 0);
    assert!(answered.len() >= CHIPS * 2, "{} answers", answered.len());
    println!(
        "miner: {} answers in {liveness_txs} liveness transactions over blocks {start_height}..={end}",
        answered.len()
    );
}

/// `unet miner doctor` on this host (which has runc and busybox-static, as CI installs them):
/// ready, every required check passed, a real sandboxed run among them, and the optional GPU
/// checks report what a GPU host would need.
#[test]
fn miner_doctor_reports_this_host_ready() {
    let out = Command::new(env!("CARGO_BIN_EXE_unet"))
        .args(["miner", "doctor", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["ready"], true, "{v}");
    let checks = v["checks"].as_array().unwrap();
    for name in ["root", "runc", "user_namespaces", "cgroups", "container"] {
        let c = checks.iter().find(|c| c["name"] == name).unwrap();
        assert_eq!(
            (&c["ok"], &c["required"]),
            (&Value::Bool(true), &Value::Bool(true)),
            "{c}"
        );
    }
    let cdi = checks.iter().find(|c| c["name"] == "cdi_spec").unwrap();
    assert_eq!(cdi["required"], false);
    if cdi["ok"] == false {
        assert!(cdi["fix"].as_str().unwrap().contains("nvidia-ctk"), "{cdi}");
    }
    // Egress's tools (CI installs nftables): optional unless the provider turns egress on.
    let egress = |v: &Value| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "egress")
            .cloned()
            .unwrap()
    };
    let e = egress(&v);
    assert_eq!(
        (&e["ok"], &e["required"]),
        (&true.into(), &false.into()),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("provider.toml");
    std::fs::write(&cfg, "[network]\negress = \"on\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_unet"))
        .args(["miner", "doctor", "--json", "--provider-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = egress(&v);
    assert_eq!(
        (&e["ok"], &e["required"]),
        (&true.into(), &true.into()),
        "{e}"
    );
    let summary = v["checks"][0]["detail"].as_str().unwrap();
    assert!(
        summary.contains("egress on (10.213.0.0/16, dns 1.1.1.1 9.9.9.9)"),
        "{v}"
    );
}
