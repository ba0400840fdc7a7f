//! Services on real processes: four `unet node` validators, one `unet miner` with an
//! emulated chip and a provider.toml (service ports 23610-23619), a renter.
//!
//! 1. `unet miner run` refuses a bad provider.toml with a message naming the key;
//! 2. the renter rents the chip and `unet service start --image-archive` prints the endpoint;
//!    busybox `httpd` in the container answers through it with the page the service wrote;
//! 3. `unet service status` shows it running on the uploaded digest; another key is refused;
//!    `unet service logs` shows its output;
//! 4. `unet market close`: the miner stops the service (`lease_closed`) and the endpoint
//!    refuses connections;
//! 5. `unet job volume` still downloads what the service wrote to /work (the grace period).
//!
//! Ports: nodes 23400+ / 23500+, miner metrics 23600, jobs 23601, services 23610-23619.

mod support;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};
use support::{
    poll,
    provider::{chip_online, offer, provider, rent},
    unet, unet_json, wait_for, Network,
};

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
    let ks_dir = net.path().join("keys");
    let ks = ks_dir.as_path();

    // The miner (one emulated chip) and its renter alice, funded; mallory is another key.
    let p = provider(&net, ks, 1, &["alice", "mallory"]).await;
    let (home, chip) = (p.home.clone(), p.chips[0].clone());

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

    let mut miner = spawn_miner(&home, &net.rpc, &config);
    chip_online(&net, &chip).await;
    let endpoint = format!("http://127.0.0.1:{JOBS_PORT}");
    offer(&net, ks, &chip, &endpoint, &["--model", "BM1684X"]);
    rent(&net, ks, "alice", 0, &chip, "1");

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
            "echo kept > /work/notes.txt && mkdir -p /tmp/www && \
             echo served-by-the-lease > /tmp/www/index.html && \
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
    // 5. The lease is closed, but its volume is kept for the grace period: the renter
    //    downloads what the service wrote to /work.
    let tar_file = net.path().join("work.tar");
    let got = unet_json(
        &net,
        ks,
        &[
            "job",
            "volume",
            "--from",
            "alice",
            "--lease",
            "0",
            "--out",
            tar_file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(got["bytes"].as_u64().unwrap() > 0, "{got}");
    let mut archive = tar::Archive::new(std::fs::File::open(&tar_file).unwrap());
    let notes = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_str() == Some("notes.txt"))
        .map(|mut e| {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            s
        });
    assert_eq!(notes.as_deref(), Some("kept\n"));
    let _ = miner.kill();
    let _ = miner.wait();
}
