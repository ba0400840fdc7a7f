//! Work delivery on real processes: four `unet node` validators, one `unet miner` with two
//! emulated chips serving its job endpoint, a provider offer and a renter.
//!
//! 1. the renter rents a chip (balances exact), payments stream out of escrow (exact);
//! 2. an ONNX inference job (a tiny model the test builds) returns the right output with a
//!    receipt `unet market verify-receipt` accepts (and a tampered copy it refuses);
//! 3. a command past its wall time is stopped and reported `limit_exceeded` / `wall_time`;
//! 4. a job signed by someone other than the renter is refused;
//! 5. the renter closes: exact refund of the unused deposit; a job for the closed lease is
//!    refused;
//! 6. a lease whose deposit runs out closes at its first settlement: the provider is paid
//!    exactly the served blocks, the renter gets the remainder;
//! 7. a new lease; the miner goes offline: the chain closes the lease (`chip_unresponsive`)
//!    and refunds the unserved blocks exactly.

mod support;

use serde_json::{json, Value};
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use support::{
    at_one_height,
    provider::{chip_online, offer, provider, rent},
    unet, unet_json, wait_for, Network,
};
use unet_client::Client;
use unet_types::{chip::ChipStatus, UNC};

const EPOCH: u64 = 40;
const WINDOW: u64 = 10;
const PRICE: u128 = UNC / 1000; // 0.001 UNC per chip per block
const DEPOSIT: u128 = UNC; // 1000 blocks
const JOBS_PORT: u16 = 9791;

fn spawn_miner(home: &Path, rpc: &str) -> Child {
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
            "127.0.0.1:9790",
        ])
        .args([
            "--jobs",
            &format!("127.0.0.1:{JOBS_PORT}"),
            "--job-workers",
            "1",
        ])
        .arg("--home")
        .arg(home)
        .args(["--rpc", rpc])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn unet miner")
}

async fn balance(client: &Client, addr: &str) -> u128 {
    let a: unet_types::Address = unet_types::hexser::from_hex(addr).unwrap();
    client.account(&a).await.unwrap().balance
}

fn chip_id(hex: &str) -> [u8; 32] {
    unet_client::api::hex::decode32(hex).expect("a chip id")
}

async fn lease(client: &Client, id: u64) -> Value {
    serde_json::to_value(client.lease(id).await.unwrap()).unwrap()
}

fn amount(v: &Value) -> u128 {
    v.as_str().unwrap().parse().unwrap()
}

async fn escrowed(client: &Client) -> u128 {
    client.supply().await.unwrap().escrowed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renter_runs_jobs_with_chip_receipts_and_is_refunded() {
    let net = Network::start(
        32400,
        9700,
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
    let status = client.status().await.unwrap();
    let fee = status.params.min_fee;
    let ks_dir = net.path().join("keys");
    let ks = ks_dir.as_path();

    // Provider: a miner home with two emulated chips, its key also in the keystore; alice
    // and mallory are renters. Everyone gets 100 UNC.
    let p = provider(&net, ks, 2, &["alice", "mallory"]).await;
    let (home, chip, alice) = (p.home.clone(), p.chips[0].clone(), p.renters[0].clone());

    let mut miner = spawn_miner(&home, &net.rpc);
    chip_online(&net, &chip).await;
    // The endpoint is up and names the miner's chips.
    let info: Value = reqwest::get(format!("http://127.0.0.1:{JOBS_PORT}/v1/info"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["chain_id"], status.chain_id);
    assert!(info["chips"].as_array().unwrap().contains(&json!(chip)));

    // Offer, rent.
    let endpoint = format!("http://127.0.0.1:{JOBS_PORT}");
    offer(
        &net,
        ks,
        &chip,
        &endpoint,
        &["--model", "BM1684X", "--tag", "onnx"],
    );
    let alice_before = balance(&client, &alice).await;
    rent(&net, ks, "alice", 0, &chip, "1");
    assert_eq!(balance(&client, &alice).await, alice_before - DEPOSIT - fee);
    // The lease and the escrow read at one height (a settlement may come in between).
    let (l, in_escrow) = at_one_height(&client, || async {
        (lease(&client, 0).await, escrowed(&client).await)
    })
    .await;
    assert_eq!(l["status"], "open");
    assert_eq!(l["renter"], alice.as_str());
    assert_eq!(l["chips"], json!([chip]));
    assert_eq!(amount(&l["price_per_block"]), PRICE);
    let start = l["start"].as_u64().unwrap();
    // The whole deposit went into escrow (less whatever a settlement already paid out).
    assert_eq!(amount(&l["deposit"]) + amount(&l["total_paid"]), DEPOSIT);
    assert_eq!(in_escrow, amount(&l["deposit"]));

    // 2. ONNX inference: y = x W + B on [1, 2, 3] is [22.5, 27].
    let dir = net.path();
    let model = dir.join("affine.onnx");
    std::fs::write(&model, unet_onnx::example_model()).unwrap();
    let input = dir.join("input.json");
    std::fs::write(
        &input,
        r#"[{"name": "x", "dtype": "f32", "shape": [1, 3], "data": [1, 2, 3]}]"#,
    )
    .unwrap();
    let saved = dir.join("job.json");
    let r = unet_json(
        &net,
        ks,
        &[
            "job",
            "submit",
            "--from",
            "alice",
            "--lease",
            "0",
            "--onnx",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            saved.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r["receipt_verified"], true, "{r}");
    assert_eq!(r["result"]["status"], "ok", "{r}");
    assert_eq!(
        r["result"]["outputs"],
        json!([{"name": "y", "dtype": "f32", "shape": [1, 2], "data": [22.5, 27.0]}])
    );
    assert_eq!(r["result"]["chip_id"], chip.as_str());
    assert_eq!(r["receipt"]["lease_id"], 0);
    assert_eq!(r["receipt"]["chain_id"], status.chain_id);
    // The saved job verifies offline against the chip's registered key...
    let v = unet_json(
        &net,
        ks,
        &["market", "verify-receipt", saved.to_str().unwrap()],
        &[],
    );
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["chip_id"], chip.as_str());
    assert_eq!(v["chip_kind"], "vendor-x509");
    // ...and a copy with a changed result does not.
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.contains("22.5"));
    let forged = dir.join("forged.json");
    std::fs::write(&forged, text.replacen("22.5", "23.5", 1)).unwrap();
    let bad = unet(
        &net,
        ks,
        &[
            "market",
            "verify-receipt",
            forged.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    let bad: Value = serde_json::from_str(&bad.stdout).unwrap();
    assert_eq!(bad["valid"], false);
    assert_eq!(
        bad["error"],
        "receipt result_hash is not the hash of result_json"
    );

    // 3. A command past its wall time: stopped, reported, not hung. The command would sleep
    //    600 s; returning in half that proves it was stopped, with room for a loaded machine.
    let t = Instant::now();
    let r = unet(
        &net,
        ks,
        &[
            "job",
            "submit",
            "--from",
            "alice",
            "--lease",
            "0",
            "--json",
            "--wall-ms",
            "1000",
            "--cmd",
            "/bin/sleep",
            "600",
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(t.elapsed() < Duration::from_secs(300), "{:?}", t.elapsed());
    let r: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(r["receipt_verified"], true);
    assert_eq!(r["result"]["status"], "limit_exceeded");
    assert_eq!(r["result"]["limit"], "wall_time");
    assert_eq!(r["result"]["signal"], 9);
    // A command within its limits.
    // (`--cmd` takes everything after it, so `--json` goes first.)
    let r = unet(
        &net,
        ks,
        &[
            "job",
            "submit",
            "--json",
            "--from",
            "alice",
            "--lease",
            "0",
            "--cmd",
            "/bin/echo",
            "hi",
            "--there",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(r["result"]["status"], "ok");
    assert_eq!(r["result"]["exit_code"], 0);
    assert_eq!(r["result"]["stdout_b64"], "aGkgLS10aGVyZQo="); // "hi --there\n"

    // An OCI image: the example archive, uploaded with a signed request, run with its own
    // command; the result names the image digest, which the CLI checked against the upload.
    let archive = net.path().join("example-image.tar");
    let r = unet(
        &net,
        ks,
        &["job", "example-image", "--out", archive.to_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let digest = r.stdout.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let r = unet(
        &net,
        ks,
        &[
            "job",
            "submit",
            "--json",
            "--from",
            "alice",
            "--lease",
            "0",
            "--image-archive",
            archive.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(r["result"]["status"], "ok");
    assert_eq!(r["result"]["image"], digest.as_str());
    // "hello from the example image\n"
    assert_eq!(
        r["result"]["stdout_b64"],
        "aGVsbG8gZnJvbSB0aGUgZXhhbXBsZSBpbWFnZQo="
    );

    // 4. Signed by someone other than the renter: refused.
    let r = unet(
        &net,
        ks,
        &[
            "job",
            "submit",
            "--from",
            "mallory",
            "--lease",
            "0",
            "--cmd",
            "/bin/true",
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not_renter"), "{}", r.stderr);

    // Payments stream: by now at least one scheduled settlement has paid the provider.
    wait_for("a settlement", || async {
        amount(&lease(&client, 0).await["total_paid"]) > 0
    })
    .await;
    let (l, in_escrow) = at_one_height(&client, || async {
        (lease(&client, 0).await, escrowed(&client).await)
    })
    .await;
    let paid_until = l["paid_until"].as_u64().unwrap();
    assert!(paid_until > start);
    assert_eq!(
        amount(&l["total_paid"]),
        PRICE * u128::from(paid_until - start)
    );
    assert_eq!(amount(&l["deposit"]), DEPOSIT - amount(&l["total_paid"]));
    assert_eq!(in_escrow, amount(&l["deposit"]));

    // 5. The renter closes: paid exactly the served blocks, refunded the rest.
    let before_close = balance(&client, &alice).await;
    let close = unet_json(
        &net,
        ks,
        &["market", "close", "--from", "alice", "--lease", "0"],
        &[],
    );
    assert_eq!(close["receipt"]["status"], "ok", "{close}");
    let l = lease(&client, 0).await;
    assert_eq!(l["status"], "closed");
    // Closed by the renter, not `chip_unresponsive`: the chip answered every challenge while
    // the jobs ran (a single miss makes it Unresponsive and closes the lease).
    assert_eq!(l["close_reason"], "renter");
    let closed_at = l["closed_at"].as_u64().unwrap();
    assert_eq!(closed_at, close["height"].as_u64().unwrap());
    let paid = PRICE * u128::from(closed_at - start);
    assert_eq!(amount(&l["total_paid"]), paid);
    let refund = DEPOSIT - paid;
    assert_eq!(balance(&client, &alice).await, before_close + refund - fee);
    assert_eq!(escrowed(&client).await, 0);
    eprintln!(
        "lease 0: blocks {start}..{closed_at}, settled once at {paid_until}, paid {paid}, refunded {refund}"
    );
    // A job for the closed lease: refused.
    let r = unet(
        &net,
        ks,
        &[
            "job",
            "submit",
            "--from",
            "alice",
            "--lease",
            "0",
            "--cmd",
            "/bin/true",
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("lease_closed"), "{}", r.stderr);
    // Results of the lease stay readable by its renter.
    let job_id = serde_json::from_str::<Value>(&std::fs::read_to_string(&saved).unwrap()).unwrap()
        ["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let again = unet_json(
        &net,
        ks,
        &[
            "job", "result", "--from", "alice", "--lease", "0", "--job", &job_id,
        ],
        &[],
    );
    assert_eq!(again["receipt_verified"], true);

    // 6. A deposit that runs out: 41 blocks' worth, a 40-block settlement period. At the first
    //    settlement the provider is paid the 40 served blocks, the rest cannot cover the next
    //    period: the lease closes and the renter gets the remainder, exactly.
    let chip1 = p.chips[1].clone();
    chip_online(&net, &chip1).await;
    offer(&net, ks, &chip1, &endpoint, &[]);
    let before_rent = balance(&client, &alice).await;
    let short = PRICE * 41;
    rent(&net, ks, "alice", 1, &chip1, "0.041");
    let l = lease(&client, 1).await;
    let start1 = l["start"].as_u64().unwrap();
    assert_eq!(balance(&client, &alice).await, before_rent - short - fee);
    wait_for("the deposit exhausted", || async {
        lease(&client, 1).await["status"] == "closed"
    })
    .await;
    let l = lease(&client, 1).await;
    assert_eq!(l["close_reason"], "deposit_exhausted", "{l}");
    assert_eq!(l["closed_at"].as_u64().unwrap(), start1 + EPOCH);
    assert_eq!(amount(&l["total_paid"]), PRICE * u128::from(EPOCH));
    assert_eq!(
        balance(&client, &alice).await,
        before_rent - fee - PRICE * u128::from(EPOCH)
    );
    assert_eq!(escrowed(&client).await, 0);

    // 7. A new lease; the provider's miner goes offline.
    let before_rent = balance(&client, &alice).await;
    rent(&net, ks, "alice", 0, &chip, "1");
    let l = lease(&client, 2).await;
    assert_eq!(l["status"], "open");
    let start = l["start"].as_u64().unwrap();
    assert_eq!(balance(&client, &alice).await, before_rent - DEPOSIT - fee);
    miner.kill().unwrap();
    miner.wait().unwrap();
    wait_for("the lease closed by the chain", || async {
        lease(&client, 2).await["status"] == "closed"
    })
    .await;
    let l = lease(&client, 2).await;
    assert_eq!(l["close_reason"], "chip_unresponsive", "{l}");
    let closed_at = l["closed_at"].as_u64().unwrap();
    let paid = PRICE * u128::from(closed_at - start);
    assert_eq!(amount(&l["total_paid"]), paid);
    // Refunded exactly the unserved blocks (no fee: the chain closed it).
    assert_eq!(balance(&client, &alice).await, before_rent - fee - paid);
    assert_eq!(escrowed(&client).await, 0);
    eprintln!(
        "lease 2: blocks {start}..{closed_at} (miner killed after {start}), paid {paid}, refunded {}",
        DEPOSIT - paid
    );
    let chip_now = client.chip(&chip_id(&chip)).await.unwrap();
    assert_eq!(chip_now.status, ChipStatus::Unresponsive);
}
