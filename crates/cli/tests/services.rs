//! Services on real processes: four `unet node` validators, one `unet miner` with an
//! emulated chip and a provider.toml (service ports 23610-23619), a renter.
//!
//! 1. `unet miner run` refuses a bad provider.toml with a message naming the key;
//! 2. the renter rents the chip and `unet service start --image-archive` prints the endpoint;
//!    busybox `httpd` in the container answers through it with the page the service wrote;
//! 3. `unet service status` shows it running on the uploaded digest; another key is refused;
//!    `unet service logs` shows its output;
//! 4. `unet market close`: the miner stops the service (`lease_closed`) and the endpoint
//!    refuses connections.
//!
//! Ports: nodes 23400+ / 23500+, miner metrics 23600, jobs 23601, services 23610-23619.

mod support;

use commonware_cryptography::Signer;
use serde_json::Value;
use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};
use support::{poll, unet, unet_json, wait_for, Network};
use unet_types::{chip::ChipStatus, Payload, Transaction, UNC};

const JOBS_PORT: u16 = 23601;

fn miner(home: &Path, rpc: &str, config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_unet"));
    c.args([
        "miner",
        "run",
        "--no-progress",
        "--metrics",
        "127.0.0.1:23600",
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
    .arg("--provider-config")
    .arg(config);
    c
}

fn spawn_miner(home: &Path, rpc: &str, config: &Path) -> Child {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(home.join("miner.log"))
        .expect("log");
    miner(home, rpc, config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn unet miner")
}

/// One HTTP/1.0 GET: the body, or why there is none.
fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && !body.is_empty() => {
            Ok(body.to_string())
        }
        _ => Err(std::io::Error::other(format!(
            "not an HTTP answer: {out:?}"
        ))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renters_service_is_reached_through_the_miner_until_the_lease_closes() {
    let net = Network::start(
        23400,
        23500,
        &[
            "--epoch-length",
            "40",
            "--response-window",
            "10",
            "--challenges-per-epoch",
            "4",
        ],
    )
    .await;
    let client = net.client();
    let status = client.status().await.unwrap();
    let ks_dir = net.path().join("keys");
    let ks = ks_dir.as_path();

    let home = net.path().join("miner");
    let out = Command::new(env!("CARGO_BIN_EXE_unet"))
        .args(["miner", "init", "--json", "--emulated-chips", "1", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert!(out.status.success());
    let init: Value = serde_json::from_slice(&out.stdout).unwrap();
    let owner = init["owner"].as_str().unwrap().to_string();
    let chip = init["chips"][0].as_str().unwrap().to_string();

    // 1. A bad provider configuration stops the miner before it starts, naming the key.
    let bad = net.path().join("bad.toml");
    std::fs::write(&bad, "[services]\nports = \"80-90\"\n").unwrap();
    let out = miner(&home, &net.rpc, &bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("services.ports = \"80-90\""), "{err}");
    let config = net.path().join("provider.toml");
    std::fs::write(
        &config,
        "[resources]\nmemory_mib = 512\n[services]\nports = \"23610-23619\"\n",
    )
    .unwrap();

    let key_file = home.join("owner.key");
    unet_json(
        &net,
        ks,
        &[
            "keys",
            "import",
            "miner",
            "--secret-file",
            key_file.to_str().unwrap(),
        ],
        &[],
    );
    let alice = unet_json(&net, ks, &["keys", "new", "alice"], &[])["address"]
        .as_str()
        .unwrap()
        .to_string();
    unet_json(&net, ks, &["keys", "new", "mallory"], &[]);
    let faucet = net.faucet();
    for (i, to) in [&owner, &alice].into_iter().enumerate() {
        let tx = Transaction {
            chain_id: status.chain_id,
            sender: faucet.public_key(),
            nonce: i as u64,
            fee: status.params.min_fee,
            payload: Payload::Transfer {
                to: unet_types::hexser::from_hex(to).unwrap(),
                amount: 100 * UNC,
            },
        }
        .sign(&faucet);
        let hash = client.send_transaction(&tx).await.unwrap();
        net.wait_tx(0, &hex::encode(hash)).await;
    }
    let mut miner = spawn_miner(&home, &net.rpc, &config);
    let id = unet_client::api::hex::decode32(&chip).unwrap();
    wait_for("the chip Online", || async {
        client
            .chip(&id)
            .await
            .is_ok_and(|c| c.status == ChipStatus::Online)
    })
    .await;
    let endpoint = format!("http://127.0.0.1:{JOBS_PORT}");
    unet_json(
        &net,
        ks,
        &[
            "market",
            "offer",
            "--from",
            "miner",
            "--chip",
            &chip,
            "--price",
            "0.001",
            "--min-blocks",
            "1",
            "--max-blocks",
            "100000",
            "--endpoint",
            &endpoint,
            "--model",
            "BM1684X",
        ],
        &[],
    );
    let rent = unet_json(
        &net,
        ks,
        &[
            "market",
            "rent",
            "--from",
            "alice",
            "--offer",
            "0",
            "--chip",
            &chip,
            "--deposit",
            "1",
        ],
        &[],
    );
    assert_eq!(rent["receipt"]["status"], "ok", "{rent}");

    // 2. The service: the example image, busybox httpd on 8080 serving a page it wrote.
    let archive = net.path().join("example.tar");
    let r = unet(
        &net,
        ks,
        &["job", "example-image", "--out", archive.to_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let digest = r.stdout.trim().to_string();
    let r = unet(
        &net,
        ks,
        &[
            "service",
            "start",
            "--from",
            "alice",
            "--lease",
            "0",
            "--image-archive",
            archive.to_str().unwrap(),
            "--port",
            "8080",
            "--cmd",
            "/bin/sh",
            "-c",
            "mkdir -p /tmp/www && echo served-by-the-lease > /tmp/www/index.html && \
             echo listening && exec httpd -f -p 8080 -h /tmp/www",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let url = r.stdout.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:2361"), "{url}");
    let addr = url.trim_start_matches("http://").to_string();
    let page = poll("the service's page", || {
        let addr = addr.clone();
        async move {
            tokio::task::spawn_blocking(move || http_get(&addr, "/index.html").ok())
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(page, "served-by-the-lease\n");

    // 3. Status, another key, logs.
    let st = unet_json(
        &net,
        ks,
        &["service", "status", "--from", "alice", "--lease", "0"],
        &[],
    );
    assert_eq!(st["state"], "running", "{st}");
    assert_eq!(st["image"], digest.as_str());
    assert_eq!(st["endpoint"], url.as_str());
    let r = unet(
        &net,
        ks,
        &["service", "status", "--from", "mallory", "--lease", "0"],
        &[],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not_renter"), "{}", r.stderr);
    let r = unet(
        &net,
        ks,
        &["service", "logs", "--from", "alice", "--lease", "0"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("listening"), "{}", r.stdout);

    // 4. The renter closes the lease: the miner's watcher stops the service.
    let close = unet_json(
        &net,
        ks,
        &["market", "close", "--from", "alice", "--lease", "0"],
        &[],
    );
    assert_eq!(close["receipt"]["status"], "ok", "{close}");
    wait_for("the service stopped", || async {
        let st = unet_json(
            &net,
            ks,
            &["service", "status", "--from", "alice", "--lease", "0"],
            &[],
        );
        st["state"] == "stopped" && st["stopped_because"] == "lease_closed"
    })
    .await;
    let a = addr.clone();
    let refused = tokio::task::spawn_blocking(move || TcpStream::connect(a))
        .await
        .unwrap();
    assert!(refused.is_err(), "{refused:?}");
    let _ = miner.kill();
    let _ = miner.wait();
}
