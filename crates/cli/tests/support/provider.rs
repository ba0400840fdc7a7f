//! A provider and its renters on a test [`Network`]: the choreography the job and service
//! tests share.

use super::{unet_json, Network};
use commonware_cryptography::Signer;
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::Command,
};
use unet_types::{Payload, Transaction, UNC};

/// A miner home with emulated chips and funded keystore keys beside it.
pub struct Provider {
    /// The miner's home (`unet miner init`).
    pub home: PathBuf,
    /// The miner's owner address, hex (in the keystore as `miner`).
    pub owner: String,
    /// Its chips' ids, hex.
    pub chips: Vec<String>,
    /// The renters' addresses, hex, in the order asked (keystore keys of those names).
    pub renters: Vec<String>,
}

/// `unet miner init` with `chips` emulated chips at `net/miner`, its owner key imported as
/// `miner` into the keystore `ks`, a keystore key per name in `renters`; the owner and every
/// renter get 100 UNC from the faucet, each transfer final before this returns.
pub async fn provider(net: &Network, ks: &Path, chips: usize, renters: &[&str]) -> Provider {
    let home = net.path().join("miner");
    let out = Command::new(env!("CARGO_BIN_EXE_unet"))
        .args(["miner", "init", "--json", "--emulated-chips"])
        .arg(chips.to_string())
        .arg("--home")
        .arg(&home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let init: Value = serde_json::from_slice(&out.stdout).unwrap();
    let owner = init["owner"].as_str().unwrap().to_string();
    let chips = init["chips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let key_file = home.join("owner.key");
    unet_json(
        net,
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
    let renters: Vec<String> = renters
        .iter()
        .map(|name| {
            unet_json(net, ks, &["keys", "new", name], &[])["address"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let client = net.client();
    let status = client.status().await.unwrap();
    let faucet = net.faucet();
    let first = client
        .account(&faucet.public_key())
        .await
        .unwrap()
        .pending_nonce;
    for (nonce, to) in (first..).zip(std::iter::once(&owner).chain(&renters)) {
        let tx = Transaction {
            chain_id: status.chain_id,
            sender: faucet.public_key(),
            nonce,
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
    Provider {
        home,
        owner,
        chips,
        renters,
    }
}

/// `unet market offer` of `chip` from the keystore key `miner` at 0.001 UNC per block,
/// 1..=100000 blocks, job endpoint `endpoint`, plus `extra` arguments.
pub fn offer(net: &Network, ks: &Path, chip: &str, endpoint: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "market",
        "offer",
        "--from",
        "miner",
        "--chip",
        chip,
        "--price",
        "0.001",
        "--min-blocks",
        "1",
        "--max-blocks",
        "100000",
        "--endpoint",
        endpoint,
    ];
    args.extend_from_slice(extra);
    unet_json(net, ks, &args, &[])
}

/// `unet market rent` by the keystore key `renter` of `chip` from offer `offer` with `deposit`
/// UNC; asserts the transaction succeeded and returns its answer.
pub fn rent(
    net: &Network,
    ks: &Path,
    renter: &str,
    offer: u64,
    chip: &str,
    deposit: &str,
) -> Value {
    let offer = offer.to_string();
    let r = unet_json(
        net,
        ks,
        &[
            "market",
            "rent",
            "--from",
            renter,
            "--offer",
            &offer,
            "--chip",
            chip,
            "--deposit",
            deposit,
        ],
        &[],
    );
    assert_eq!(r["receipt"]["status"], "ok", "{r}");
    r
}

/// Waits until chip `chip` (hex) is Online on chain.
pub async fn chip_online(net: &Network, chip: &str) {
    let client = net.client();
    let id = unet_client::api::hex::decode32(chip).expect("a chip id");
    super::wait_for(&format!("chip {} Online", &chip[..8]), || async {
        client
            .chip(&id)
            .await
            .is_ok_and(|c| c.status == unet_types::chip::ChipStatus::Online)
    })
    .await;
}
