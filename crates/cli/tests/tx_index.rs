//! The lasting transaction index, against real `unet node` processes.
//!
//! Ports 24000-24199 (P2P 240xx, API 241xx); tests/light.rs uses 24200-24399.

mod support;

use commonware_cryptography::Signer;
use support::{transfer, Network};
use unet_client::api::chain::TxState;
use unet_types::PrivateKey;

/// Sets `tx_index_keep` in node `i`'s config.toml (a top-level key, so it goes first).
fn set_tx_index_keep(net: &Network, i: usize, keep: u64) {
    let path = net.home(i).join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("tx_index_keep"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, format!("tx_index_keep = {keep}\n{text}")).unwrap();
}

/// A transfer finalized before a node is SIGKILLed is found after the restart, on that node,
/// at the same height, in the same block, with the same receipt; a node restarted keeping only
/// the last two heights answers "not found" for it once it is older.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_finalized_before_a_kill_9_is_found_after_restart() {
    let mut net = Network::start(24000, 24100, &["--block-time-ms", "50"]).await;
    let s = net.client().status().await.unwrap();
    let faucet = net.faucet();
    let bob = PrivateKey::from_seed(78);
    let tx = transfer(&faucet, s.chain_id, 0, s.params.min_fee, &bob);
    let hash = net.client_of(0).send_transaction(&tx).await.unwrap();
    net.wait_tx(0, &hex::encode(hash)).await;
    let before = net.client_of(0).transaction(&hash).await.unwrap();
    let TxState::Finalized { height: at, .. } = before.state else {
        panic!("not finalized: {before:?}");
    };

    // Node 0: SIGKILL and restart from its own disk. Node 1: restarted keeping 2 heights.
    net.kill(0);
    set_tx_index_keep(&net, 1, 2);
    net.restart(1);
    net.restart(0);
    net.wait_height(0, at).await;
    let after = net.client_of(0).transaction(&hash).await.unwrap();
    assert_eq!(
        after, before,
        "same height, block and receipt after the restart"
    );

    net.wait_height(1, at + 3).await;
    let pruned = net.client_of(1).transaction(&hash).await;
    assert_eq!(
        pruned.unwrap_err().code(),
        Some(unet_client::api::code::NOT_FOUND),
        "older than the kept heights"
    );
    // Node 0 (keeping everything) still answers after more blocks.
    net.wait_height(0, at + 3).await;
    assert_eq!(net.client_of(0).transaction(&hash).await.unwrap(), before);
}
