//! The block explorer end to end, in headless Chromium driven over WebDriver (chromedriver +
//! fantoccini), against a real 4-validator network of `unet node` processes on loopback with
//! short epochs and an emulated `unet miner` (two chips answering their liveness challenges):
//! the page loads without errors, the finalized height advances over the live WebSocket feed,
//! a transfer made with the CLI shows on its transaction page (found through the search box),
//! a chip registered with the CLI shows online on its chip page and on its owner's page, the
//! miner's chips show Online with their liveness, the network compute chart has data with a
//! per-model split, the rewards view shows a settled epoch, the validators page lists the
//! committee with weights, an offer made with `unet market offer` shows on the offers page and
//! a lease opened with `unet market rent` on its lease page, and the layout holds at phone
//! width. Screenshots (desktop and 390 px wide) are saved under
//! `$CARGO_TARGET_DIR/explorer-artifacts/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/ci-deps installs them). Without
//! them the test fails with that instruction, unless `UNET_SKIP_BROWSER_TESTS=1` is set.

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use support::{unet_json, Network};
use unet_client::api::params::{ListChipsParams, ListLeasesParams};
use unet_types::chip::ChipStatus;

const P2P_PORT: u16 = 31030;
const RPC_PORT: u16 = 9130;
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Short epochs, so that rewards settle and committees turn over within the test.
const EPOCH: u64 = 40;
const EMULATED_CHIPS: usize = 2;

/// Where screenshots go: `<target dir>/explorer-artifacts`.
fn artifacts() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("explorer-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// A child process (the miner), killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `unet miner init` with emulated chips, then `unet miner run` against the network; returns
/// the owner address and the process.
fn start_miner(net: &Network, home: &Path) -> (String, Killed) {
    let out = Command::new(env!("CARGO_BIN_EXE_unet"))
        .args(["miner", "init", "--json", "--emulated-chips"])
        .arg(EMULATED_CHIPS.to_string())
        .arg("--home")
        .arg(home)
        .output()
        .expect("unet miner init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init: Value = serde_json::from_slice(&out.stdout).expect("miner init JSON");
    let owner = init["owner"].as_str().expect("owner").to_string();
    let log = std::fs::File::create(home.join("miner.log")).expect("miner log");
    let child = Command::new(env!("CARGO_BIN_EXE_unet"))
        .args(["miner", "run", "--no-progress", "--home"])
        .arg(home)
        .args(["--rpc", &net.rpc])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn unet miner");
    (owner, Killed(child))
}

/// A chromedriver process, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver's port: fixed, beside the nodes' API ports and below the kernel's ephemeral
/// range (a port the kernel picked and released could be handed to an outgoing connection
/// before chromedriver binds it).
const DRIVER_PORT: u16 = 9139;

async fn start_driver() -> Driver {
    let port = DRIVER_PORT;
    if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
        panic!("port {port} for chromedriver is taken ({e}): a leftover chromedriver?");
    }
    let log = std::fs::File::create(artifacts().join("chromedriver.log")).expect("driver log");
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + support::patience();
    loop {
        if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await {
            if let Ok(v) = r.json::<Value>().await {
                if v["value"]["ready"] == true {
                    return driver;
                }
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn open_browser(driver: &Driver, profile: &Path) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1280,1000",
            ],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let Value::Object(caps) = caps else {
        unreachable!("capabilities are an object")
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("WebDriver session")
}

/// Evaluates `expr` in the page.
async fn eval(c: &Client, expr: &str) -> Value {
    c.execute(&format!("return ({expr});"), vec![])
        .await
        .unwrap_or_else(|e| panic!("script {expr}: {e}"))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Polls `expr` until it is truthy; on timeout saves a screenshot and fails with what the page
/// showed.
async fn wait_for(c: &Client, what: &str, expr: &str) -> Value {
    let deadline = Instant::now() + support::patience();
    loop {
        let v = eval(c, expr).await;
        if truthy(&v) {
            return v;
        }
        if Instant::now() > deadline {
            let shot = artifacts().join("failure.png");
            if let Ok(png) = c.screenshot().await {
                let _ = std::fs::write(&shot, png);
            }
            let text = eval(c, "document.getElementById('view').innerText").await;
            let errors = eval(c, "window.__unetErrors").await;
            panic!(
                "timed out waiting for {what} ({expr}); last value {v}; page errors {errors}; \
                 view text: {text}; screenshot {}",
                shot.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Severe entries of the browser's console log (chromedriver's `se/log`): failed loads, CSP
/// violations, uncaught exceptions, `console.error`.
async fn severe_browser_log(c: &Client, driver: &Driver) -> Vec<Value> {
    let session = c
        .session_id()
        .await
        .expect("session id")
        .expect("a session");
    let v: Value = reqwest::Client::new()
        .post(format!("{}/session/{session}/se/log", driver.url))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .expect("se/log request")
        .json()
        .await
        .expect("se/log reply");
    let entries = v["value"]
        .as_array()
        .unwrap_or_else(|| panic!("se/log answered {v}"));
    entries
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .cloned()
        .collect()
}

async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let path = artifacts().join(name);
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(&path, png).expect("write screenshot");
    println!("screenshot: {}", path.display());
    path
}

/// Types `query` into the search box and submits it.
async fn search(c: &Client, query: &str) {
    let input = c
        .find(Locator::Css("#search-input"))
        .await
        .expect("search box");
    input.clear().await.expect("clear search");
    input.send_keys(query).await.expect("type query");
    c.find(Locator::Css("#search button[type=submit]"))
        .await
        .expect("search button")
        .click()
        .await
        .expect("submit search");
}

/// The page must not overflow horizontally at the current width.
async fn assert_no_horizontal_overflow(c: &Client, page: &str) {
    let v = eval(
        c,
        "[document.documentElement.scrollWidth, window.innerWidth]",
    )
    .await;
    let (scroll, inner) = (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0));
    assert!(
        scroll <= inner,
        "{page}: page is {scroll}px wide in a {inner}px window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_in_a_real_browser() {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        if std::env::var_os("UNET_SKIP_BROWSER_TESTS").is_some() {
            eprintln!("skipped: no {CHROMIUM} / {CHROMEDRIVER} (UNET_SKIP_BROWSER_TESTS is set)");
            return;
        }
        panic!(
            "the explorer test needs {CHROMIUM} and {CHROMEDRIVER}: run scripts/ci-deps \
             (apt-get install chromium chromium-driver), or set UNET_SKIP_BROWSER_TESTS=1"
        );
    }
    let epoch = EPOCH.to_string();
    let net = Network::start(
        P2P_PORT,
        RPC_PORT,
        &[
            "--epoch-length",
            &epoch,
            "--response-window",
            "10",
            "--challenges-per-epoch",
            "2",
        ],
    )
    .await;
    let base = net.rpc.clone();
    let ks_dir = net.path().join("keys");
    let ks = ks_dir.as_path();

    // 1. Over plain HTTP: the page and its assets, with types and a strict policy; POST / is
    //    still JSON-RPC.
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(page.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(
        csp.contains(&format!("connect-src 'self' ws://127.0.0.1:{RPC_PORT}")),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let js = http
        .get(format!("{base}/explorer/js/main.js"))
        .send()
        .await
        .expect("GET main.js");
    assert_eq!(js.status(), 200);
    assert_eq!(
        header(&js, "content-type"),
        "text/javascript; charset=utf-8"
    );
    let missing = http
        .get(format!("{base}/explorer/../Cargo.toml"))
        .send()
        .await
        .expect("GET missing");
    assert_eq!(missing.status(), 404);
    let status = net
        .client()
        .call("unet_status", json!([]))
        .await
        .expect("JSON-RPC on POST /");
    assert_eq!(status["validators"], 4);

    // An emulated miner with two chips, funded from the faucet through the CLI; it registers
    // its chips and answers their challenges while the browser looks.
    let faucet_file = net.faucet_file();
    let faucet = unet_json(
        &net,
        ks,
        &[
            "keys",
            "import",
            "faucet",
            "--secret-file",
            faucet_file.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    let faucet_addr = faucet["address"].as_str().expect("address").to_string();
    let miner_home = net.path().join("miner");
    let (miner_owner, _miner) = start_miner(&net, &miner_home);
    let funded = unet_json(
        &net,
        ks,
        &[
            "transfer",
            "--from",
            "faucet",
            "--to",
            &miner_owner,
            "--amount",
            "1000",
        ],
        &[],
    );
    assert_eq!(funded["status"], "finalized");
    unet_json(
        &net,
        ks,
        &[
            "keys",
            "import",
            "miner",
            "--secret-file",
            miner_home.join("owner.key").to_str().expect("utf-8 path"),
        ],
        &[],
    );

    // 2. The page loads and follows the chain live over the WebSocket.
    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let c = open_browser(&driver, profile.path()).await;
    c.set_window_size(1280, 1000).await.expect("window size");
    c.goto(&format!("{base}/")).await.expect("open explorer");
    let first = wait_for(
        &c,
        "a finalized height",
        "Number(document.getElementById('stat-finalized').dataset.finalizedHeight)",
    )
    .await
    .as_u64()
    .expect("height");
    wait_for(
        &c,
        "the WebSocket feed",
        "document.getElementById('live-mode').dataset.mode === 'live'",
    )
    .await;
    wait_for(
        &c,
        "the finalized height to advance",
        &format!(
            "Number(document.getElementById('stat-finalized').dataset.finalizedHeight) > {}",
            first + 3
        ),
    )
    .await;
    wait_for(
        &c,
        "the latest blocks table",
        "document.querySelectorAll('[data-route=home] tbody tr').length >= 5",
    )
    .await;
    let chain = eval(&c, "document.getElementById('chain-name').textContent").await;
    assert_eq!(chain, "unet-devnet · 7701");

    // 3. A transfer made with the CLI, found with the search box, shows on its page.
    let bob = unet_json(&net, ks, &["keys", "new", "bob"], &[]);
    let bob_addr = bob["address"].as_str().expect("address").to_string();
    let sent = unet_json(
        &net,
        ks,
        &[
            "transfer", "--from", "faucet", "--to", "bob", "--amount", "1.5",
        ],
        &[],
    );
    assert_eq!(sent["status"], "finalized");
    let tx_hash = sent["hash"].as_str().expect("hash").to_string();
    search(&c, &tx_hash).await;
    wait_for(
        &c,
        "the transaction page",
        &format!("location.hash === '#/tx/{tx_hash}'"),
    )
    .await;
    wait_for(
        &c,
        "the transaction to show finalized",
        "document.querySelector('[data-tx-status]')?.dataset.txStatus === 'finalized'",
    )
    .await;
    let shown = eval(
        &c,
        "({amount: document.querySelector('[data-tx-amount]')?.textContent, \
           result: document.querySelector('[data-tx-result]')?.dataset.txResult, \
           block: document.querySelector('[data-tx-block]')?.dataset.txBlock, \
           text: document.getElementById('view').innerText})",
    )
    .await;
    assert_eq!(shown["amount"], "1.5 UNC", "{shown}");
    assert_eq!(shown["result"], "ok", "{shown}");
    assert_eq!(shown["block"], sent["height"].to_string(), "{shown}");
    let text = shown["text"].as_str().unwrap_or("");
    assert!(text.contains(&faucet_addr), "sender missing: {text}");
    assert!(text.contains(&bob_addr), "recipient missing: {text}");
    screenshot(&c, "explorer-desktop-tx.png").await;
    // Its block shows the block's epoch.
    let height = sent["height"].as_u64().expect("height");
    c.goto(&format!("{base}/#/block/{height}"))
        .await
        .expect("block page");
    wait_for(
        &c,
        "the block's epoch",
        &format!(
            "document.querySelector('[data-block-epoch]')?.dataset.blockEpoch === '{}'",
            height / EPOCH
        ),
    )
    .await;

    // 4. A chip registered with the CLI shows on its page (found by search), with its rated
    //    compute, and on its owner's page. It has no agent answering its challenges, so it may
    //    turn Unresponsive at any time: its status is whatever the chain says.
    let chip_file = net.path().join("chip.json");
    let chip = unet_json(
        &net,
        ks,
        &[
            "chip",
            "provision",
            "--out",
            chip_file.to_str().expect("utf-8 path"),
            "--model",
            "H100",
            "--serial",
            "EXPLORER-1",
        ],
        &[],
    );
    let chip_id = chip["chip_id"].as_str().expect("chip id").to_string();
    let reg = unet_json(
        &net,
        ks,
        &[
            "chip",
            "register",
            "--from",
            "faucet",
            "--chip",
            chip_file.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    assert_eq!(reg["receipt"]["status"], "ok");
    search(&c, &chip_id).await;
    wait_for(
        &c,
        "the chip page",
        &format!("location.hash === '#/chip/{chip_id}'"),
    )
    .await;
    wait_for(
        &c,
        "the chip's status",
        "['online', 'unresponsive'].includes(document.querySelector('[data-chip-status]')?.textContent)",
    )
    .await;
    let compute = eval(
        &c,
        "document.querySelector('[data-chip-compute]')?.textContent",
    )
    .await;
    assert_eq!(compute, "1,979 TOPS");
    c.goto(&format!("{base}/#/account/{faucet_addr}"))
        .await
        .expect("account page");
    wait_for(
        &c,
        "the chip on its owner's page",
        &format!("document.querySelector('[data-route=account] a[href=\"#/chip/{chip_id}\"]')"),
    )
    .await;

    // 5. The miner's chips: Online on their page, with a challenge answered.
    let client = net.client();
    let miner_chips = {
        let deadline = Instant::now() + support::patience();
        loop {
            let filter = ListChipsParams {
                owner: Some(unet_types::hexser::from_hex(&miner_owner).expect("owner")),
                status: Some(ChipStatus::Online),
                ..Default::default()
            };
            let r = client.chips(filter).await.expect("unet_listChips");
            let chips: Vec<Value> = r
                .chips
                .iter()
                .map(|c| serde_json::to_value(c).unwrap())
                .collect();
            if chips.len() == EMULATED_CHIPS {
                break chips;
            }
            assert!(
                Instant::now() < deadline,
                "the miner's chips are not Online: {r:?}; see {}",
                miner_home.join("miner.log").display()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let miner_chip = miner_chips[0]["chip_id"]
        .as_str()
        .expect("chip id")
        .to_string();
    let miner_model = miner_chips[0]["model"].as_str().expect("model").to_string();
    c.goto(&format!("{base}/#/chip/{miner_chip}"))
        .await
        .expect("miner chip page");
    wait_for(
        &c,
        "the miner's chip to show Online",
        "document.querySelector('[data-chip-status]')?.textContent === 'online'",
    )
    .await;
    wait_for(
        &c,
        "the miner's chip to answer a challenge",
        "Number(document.querySelector('[data-chip-last-response]')?.dataset.chipLastResponse) > 0",
    )
    .await;

    // 6. The network compute chart has data, split by model; the models page counts every chip.
    c.goto(&format!("{base}/#/")).await.expect("home");
    wait_for(
        &c,
        "a compute chart data point",
        "Number(document.getElementById('compute-chart')?.dataset.points) >= 1",
    )
    .await;
    wait_for(
        &c,
        "the miner's model in the compute split",
        &format!(
            "Number(document.querySelector('#compute-models [data-model=\"{miner_model}\"]')?.dataset.modelChips) >= 1"
        ),
    )
    .await;
    let now = eval(&c, "document.getElementById('compute-now')?.textContent").await;
    let now = now.as_str().unwrap_or("");
    assert!(
        now.ends_with(" TOPS") && now != "0 TOPS",
        "compute now: {now}"
    );
    wait_for(
        &c,
        "the transfer in recent transactions",
        &format!("document.querySelector('[data-route=home] a[href=\"#/tx/{tx_hash}\"]')"),
    )
    .await;
    c.goto(&format!("{base}/#/models")).await.expect("models");
    wait_for(
        &c,
        "the models breakdown",
        &format!(
            "document.querySelector('[data-models-chips]')?.dataset.modelsChips === '{}'",
            1 + EMULATED_CHIPS
        ),
    )
    .await;

    // 7. Rewards: an epoch in which the miner's chips were online is settled, with UNC paid;
    //    the chip page and the owner's page show what they earned.
    c.goto(&format!("{base}/#/rewards")).await.expect("rewards");
    wait_for(
        &c,
        "a settled epoch that paid chips",
        "[...document.querySelectorAll('[data-route=rewards] [data-epoch-paid]')].some((e) => e.dataset.epochPaid !== '0')",
    )
    .await;
    screenshot(&c, "explorer-desktop-rewards.png").await;
    c.goto(&format!("{base}/#/account/{miner_owner}"))
        .await
        .expect("owner page");
    wait_for(
        &c,
        "the owner's rewards",
        "[...document.querySelectorAll('[data-owner-reward]')].some((e) => e.dataset.ownerReward !== '0')",
    )
    .await;
    c.goto(&format!("{base}/#/chip/{miner_chip}"))
        .await
        .expect("miner chip page");
    wait_for(
        &c,
        "the chip's lifetime rewards",
        "(document.querySelector('[data-chip-rewards]')?.dataset.chipRewards || '0') !== '0'",
    )
    .await;

    // 8. Validators: the committee with its weights, and the registered validators.
    c.goto(&format!("{base}/#/validators"))
        .await
        .expect("validators");
    wait_for(
        &c,
        "the committee",
        "Number(document.querySelector('[data-committee-members]')?.dataset.committeeMembers)",
    )
    .await;
    // Read the epoch and the weights together: the page follows the chain into new epochs.
    let shown = eval(
        &c,
        "(() => { const el = document.querySelector('[data-committee-members]'); \
           return {epoch: Number(el.dataset.committeeEpoch), \
                   weights: [...el.querySelectorAll('[data-member-weight]')].map((e) => e.dataset.memberWeight)}; })()",
    )
    .await;
    let committee = client
        .committee(shown["epoch"].as_u64())
        .await
        .expect("unet_getCommittee");
    let committee = serde_json::to_value(committee).unwrap();
    let weights = shown["weights"].clone();
    let mut expected: Vec<Value> = committee["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["weight"].clone())
        .collect();
    assert!(expected.len() >= 4, "{committee}");
    let mut got = weights.as_array().cloned().unwrap_or_default();
    let key = |v: &Value| v.as_str().and_then(|s| s.parse::<u128>().ok()).unwrap_or(0);
    expected.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, expected, "committee weights on the page");
    wait_for(
        &c,
        "the registered validators",
        "document.querySelectorAll('[data-validator-compute]').length >= 4",
    )
    .await;
    screenshot(&c, "explorer-desktop-validators.png").await;

    // 9. Market: an offer made with the CLI shows on the offers page; a lease opened with the
    //    CLI shows on its page, on the chip's page and on the renter's page.
    let offered = unet_json(
        &net,
        ks,
        &[
            "market",
            "offer",
            "--from",
            "miner",
            "--chip",
            &miner_chip,
            "--price",
            "0.0001",
            "--endpoint",
            "http://127.0.0.1:8600",
            "--model",
            &miner_model,
            "--memory-mib",
            "16384",
            "--tag",
            "onnx",
        ],
        &[],
    );
    assert_eq!(offered["receipt"]["status"], "ok", "{offered}");
    let offers = client
        .offers(Default::default())
        .await
        .expect("unet_listOffers");
    let offer_id = offers.offers.first().expect("an offer").id;
    c.goto(&format!("{base}/#/offers")).await.expect("offers");
    wait_for(
        &c,
        "the offer on the offers page",
        &format!(
            "document.querySelector('[data-route=offers] [data-offer-id=\"{offer_id}\"]') && \
             document.querySelector('[data-route=offers] [data-offer-model]')?.textContent === '{miner_model}'"
        ),
    )
    .await;
    screenshot(&c, "explorer-desktop-offers.png").await;
    let rented = unet_json(
        &net,
        ks,
        &[
            "market",
            "rent",
            "--from",
            "bob",
            "--offer",
            &offer_id.to_string(),
            "--chip",
            &miner_chip,
            "--deposit",
            "1",
        ],
        &[],
    );
    assert_eq!(rented["receipt"]["status"], "ok", "{rented}");
    let leases = client
        .leases(ListLeasesParams {
            renter: Some(unet_types::hexser::from_hex(&bob_addr).expect("bob")),
            ..Default::default()
        })
        .await
        .expect("unet_listLeases");
    let lease_id = leases.leases.first().expect("a lease").id;
    search(&c, &format!("lease {lease_id}")).await;
    wait_for(
        &c,
        "the lease page",
        "document.querySelector('[data-lease-status]')?.dataset.leaseStatus === 'open'",
    )
    .await;
    let text = eval(&c, "document.getElementById('view').innerText").await;
    let text = text.as_str().unwrap_or("");
    assert!(text.contains(&bob_addr), "renter missing: {text}");
    assert!(text.contains(&miner_owner), "provider missing: {text}");
    c.goto(&format!("{base}/#/leases")).await.expect("leases");
    wait_for(
        &c,
        "the lease on the leases page",
        &format!("document.querySelector('[data-route=leases] [data-lease-id=\"{lease_id}\"]')"),
    )
    .await;
    c.goto(&format!("{base}/#/chip/{miner_chip}"))
        .await
        .expect("chip page");
    wait_for(
        &c,
        "the lease on the chip's page",
        &format!("document.querySelector('[data-route=chip] [data-lease-id=\"{lease_id}\"]')"),
    )
    .await;
    c.goto(&format!("{base}/#/account/{bob_addr}"))
        .await
        .expect("renter page");
    wait_for(
        &c,
        "the lease on the renter's page",
        &format!("document.querySelector('[data-route=account] [data-lease-id=\"{lease_id}\"]')"),
    )
    .await;

    // 10. The overview with everything on it, at desktop width.
    c.goto(&format!("{base}/#/")).await.expect("home");
    wait_for(
        &c,
        "the last settled epoch on the overview",
        "document.querySelector('[data-last-settled]')",
    )
    .await;
    c.set_window_size(1280, 1800).await.expect("window size");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_no_horizontal_overflow(&c, "home (desktop)").await;
    let desktop = screenshot(&c, "explorer-desktop.png").await;

    // 11. Phone width: 390 px, no horizontal scrolling, same data.
    c.set_window_size(390, 1600).await.expect("window size");
    c.goto(&format!("{base}/#/")).await.expect("home");
    let width = wait_for(
        &c,
        "the narrow window",
        "window.innerWidth <= 400 && window.innerWidth",
    )
    .await;
    assert_eq!(width, 390, "viewport width");
    wait_for(
        &c,
        "the chart at phone width",
        "Number(document.getElementById('compute-chart')?.dataset.points) >= 1",
    )
    .await;
    wait_for(
        &c,
        "the overview cards at phone width",
        "document.querySelector('[data-last-settled]')",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_no_horizontal_overflow(&c, "home (390px)").await;
    let mobile = screenshot(&c, "explorer-390px.png").await;
    let phone_pages: [(&str, String, &str); 7] = [
        (
            "transaction",
            format!("#/tx/{tx_hash}"),
            "document.querySelector('[data-tx-status]')?.dataset.txStatus === 'finalized'",
        ),
        (
            "chip",
            format!("#/chip/{miner_chip}"),
            "document.querySelector('[data-chip-status]')",
        ),
        (
            "rewards",
            "#/rewards".to_string(),
            "document.querySelector('[data-settled-epochs]')",
        ),
        (
            "validators",
            "#/validators".to_string(),
            "document.querySelector('[data-committee-members]')",
        ),
        (
            "offers",
            "#/offers".to_string(),
            "document.querySelector('[data-offer-id]')",
        ),
        (
            "lease",
            format!("#/lease/{lease_id}"),
            "document.querySelector('[data-lease-status]')",
        ),
        (
            "account",
            format!("#/account/{miner_owner}"),
            "document.querySelector('[data-owner-reward]')",
        ),
    ];
    for (name, hash, ready) in &phone_pages {
        c.goto(&format!("{base}/{hash}")).await.expect("page");
        wait_for(&c, &format!("the {name} page at phone width"), ready).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_no_horizontal_overflow(&c, &format!("{name} (390px)")).await;
        screenshot(&c, &format!("explorer-390px-{name}.png")).await;
    }

    // 12. Bad routes and searches are handled on the page, not thrown.
    c.goto(&format!("{base}/#/block/999999999"))
        .await
        .expect("missing block");
    wait_for(
        &c,
        "the not-found panel",
        "document.querySelector('[data-error]')",
    )
    .await;
    c.goto(&format!("{base}/#/tx/not-hex"))
        .await
        .expect("bad tx");
    wait_for(
        &c,
        "the bad-hash panel",
        "document.querySelector('[data-error]')",
    )
    .await;
    c.goto(&format!("{base}/#/lease/999999"))
        .await
        .expect("missing lease");
    wait_for(
        &c,
        "the lease not-found panel",
        "document.querySelector('[data-error]')",
    )
    .await;
    search(&c, "zz<script>").await;
    wait_for(
        &c,
        "the no-match page",
        "document.querySelector('[data-matches]') && location.hash.startsWith('#/search/')",
    )
    .await;

    // 13. No errors anywhere: the page's own hook and the browser's console log.
    let errors = eval(&c, "window.__unetErrors").await;
    assert_eq!(errors, json!([]), "page errors");
    let severe = severe_browser_log(&c, &driver).await;
    assert!(severe.is_empty(), "severe browser log entries: {severe:#?}");

    println!(
        "screenshots: {} and {}",
        desktop.display(),
        mobile.display()
    );
    c.close().await.expect("close browser");
}
