//! Four real `unet node` processes over loopback TCP: transfers finalize, a node killed with
//! SIGKILL restarts from its own disk, catches up, and every node reports the same finalized
//! block at a common height.

use commonware_cryptography::Signer;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use unet_client::Client;
use unet_types::{Payload, PrivateKey, SignedTx, Transaction, UNC};

const BASE_P2P: u16 = 32100;
const BASE_RPC: u16 = 9310;

struct Node {
    home: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn start(home: &Path) -> Self {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(home.join("node.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_unet"))
            .args(["node", "--home"])
            .arg(home)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn unet node");
        Self {
            home: home.to_path_buf(),
            child: Some(child),
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL on unix
            c.wait().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn client(i: usize) -> Client {
    Client::new(format!("http://127.0.0.1:{}", BASE_RPC + i as u16))
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn finalized(i: usize) -> u64 {
    client(i)
        .status()
        .await
        .map(|s| s.finalized_height)
        .unwrap_or(0)
}

fn transfer(from: &PrivateKey, chain_id: u64, nonce: u64, fee: u128, to: &PrivateKey) -> SignedTx {
    Transaction {
        chain_id,
        sender: from.public_key(),
        nonce,
        fee,
        payload: Payload::Transfer {
            to: to.public_key(),
            amount: UNC,
        },
    }
    .sign(from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_survive_kill_9_and_agree() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let status = Command::new(env!("CARGO_BIN_EXE_unet"))
        .args(["testnet", "--validators", "4", "--block-time-ms", "50"])
        .args(["--base-p2p-port", &BASE_P2P.to_string()])
        .args(["--base-rpc-port", &BASE_RPC.to_string()])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut nodes: Vec<Node> = (0..4)
        .map(|i| Node::start(&out.join(format!("node{i}"))))
        .collect();
    for i in 0..4 {
        wait_until("node API", Duration::from_secs(60), || async move {
            client(i).status().await.is_ok()
        })
        .await;
    }
    wait_until("first blocks", Duration::from_secs(60), || async {
        finalized(0).await >= 3
    })
    .await;

    let s = client(0).status().await.unwrap();
    let faucet: PrivateKey = unet_node::home::read_key(&out.join("faucet.key")).unwrap();
    let bob = PrivateKey::from_seed(77);
    let fee = s.params.min_fee;

    // Transfers through different nodes.
    let mut last_hash = String::new();
    for n in 0..10u64 {
        let tx = transfer(&faucet, s.chain_id, n, fee, &bob);
        last_hash = client((n % 4) as usize)
            .send_transaction(&tx)
            .await
            .unwrap();
    }
    let done = client(0)
        .wait_finalized(&last_hash, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done["status"], "finalized");
    assert_eq!(
        client(2).account(&bob.public_key()).await.unwrap().balance,
        10 * UNC
    );

    // SIGKILL node 3, keep going without it.
    nodes[3].kill9();
    let at_kill = finalized(0).await;
    for n in 10..20u64 {
        let tx = transfer(&faucet, s.chain_id, n, fee, &bob);
        last_hash = client((n % 3) as usize)
            .send_transaction(&tx)
            .await
            .unwrap();
    }
    client(0)
        .wait_finalized(&last_hash, Duration::from_secs(60))
        .await
        .unwrap();
    wait_until(
        "progress without node 3",
        Duration::from_secs(60),
        || async { finalized(0).await >= at_kill + 20 },
    )
    .await;

    // Restart it from its own disk: it resumes and catches up from peers.
    let home = nodes[3].home.clone();
    nodes[3] = Node::start(&home);
    wait_until("node 3 API", Duration::from_secs(60), || async {
        client(3).status().await.is_ok()
    })
    .await;
    let target = finalized(0).await + 5;
    wait_until("node 3 catch-up", Duration::from_secs(120), || async {
        finalized(3).await >= target
    })
    .await;

    // Same finalized block at a common height (and at the height of the kill) on all four.
    for h in [at_kill, target] {
        let mut hashes = Vec::new();
        for i in 0..4 {
            let b = client(i).block(h).await.unwrap();
            hashes.push(b["hash"].as_str().unwrap().to_string());
        }
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "height {h}: {hashes:?}"
        );
    }
    assert_eq!(
        client(3).account(&bob.public_key()).await.unwrap().balance,
        20 * UNC
    );
    let faucet_acct = client(3).account(&faucet.public_key()).await.unwrap();
    assert_eq!(faucet_acct.nonce, 20);
}
