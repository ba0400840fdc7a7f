//! Chips through the CLI against a real 4-validator devnet: manufacture an emulated chip,
//! register it (evidence bound to the chain's anchor and the owner), see it from every node,
//! list by owner and model, transfer it, and watch a replayed registration fail.

mod support;

use serde_json::Value;
use support::{unet, unet_json, Network};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chip_lifecycle_through_the_cli() {
    let net = Network::start(31020, 9120, &[]).await;
    let ks_dir = net.path().join("keys");
    let ks = ks_dir.as_path();
    let faucet_file = net.faucet_file();
    unet_json(
        &net,
        ks,
        &[
            "keys",
            "import",
            "miner",
            "--secret-file",
            faucet_file.to_str().unwrap(),
        ],
        &[],
    );
    let bob = unet_json(&net, ks, &["keys", "new", "bob"], &[]);
    let bob_addr = bob["address"].as_str().unwrap().to_string();

    // 1. The chain's model table comes from genesis.
    let models = unet_json(&net, ks, &["chip", "models"], &[]);
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["B100", "B200", "BM1684", "BM1684X", "GB200", "H100", "H200"]
    );
    assert_eq!(models["allow_devnet_roots"], true);

    // 2. Manufacture two chips; a chip of a model outside the table cannot register.
    let chip_a = net.path().join("chip-a.json");
    let chip_b = net.path().join("chip-b.json");
    let chip_x = net.path().join("chip-x.json");
    let a = unet_json(
        &net,
        ks,
        &[
            "chip",
            "provision",
            "--out",
            chip_a.to_str().unwrap(),
            "--model",
            "BM1684X",
            "--serial",
            "A-1",
        ],
        &[],
    );
    let b = unet_json(
        &net,
        ks,
        &[
            "chip",
            "provision",
            "--out",
            chip_b.to_str().unwrap(),
            "--model",
            "BM1684",
            "--curve",
            "p384",
        ],
        &[],
    );
    unet_json(
        &net,
        ks,
        &[
            "chip",
            "provision",
            "--out",
            chip_x.to_str().unwrap(),
            "--model",
            "NOPE1",
        ],
        &[],
    );
    let id_a = a["chip_id"].as_str().unwrap().to_string();
    let id_b = b["chip_id"].as_str().unwrap().to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&chip_a).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // 3. Register both to the miner key.
    let r = unet_json(
        &net,
        ks,
        &[
            "chip",
            "register",
            "--from",
            "miner",
            "--chip",
            chip_a.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r["receipt"]["status"], "ok");
    assert_eq!(r["chip"]["chip_id"], id_a.as_str());
    assert_eq!(r["chip"]["model"], "BM1684X");
    assert_eq!(r["chip"]["compute_milli_tops"], 32_000);
    assert_eq!(r["chip"]["serial"], "A-1");
    assert_eq!(r["chip"]["status"], "online");
    assert_eq!(r["chip"]["kind"], "vendor-x509");
    let r = unet_json(
        &net,
        ks,
        &[
            "chip",
            "register",
            "--from",
            "miner",
            "--chip",
            chip_b.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r["receipt"]["status"], "ok");
    let r = unet(
        &net,
        ks,
        &[
            "chip",
            "register",
            "--from",
            "miner",
            "--chip",
            chip_x.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["receipt"]["code"], "unknown_model");

    // 4. Registering the same chip again fails on chain.
    let r = unet(
        &net,
        ks,
        &[
            "chip",
            "register",
            "--from",
            "miner",
            "--chip",
            chip_a.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["receipt"]["code"], "already_registered");

    // 5. Every node sees the chip (once it finalized what node 0, where the CLI registered
    //    it, has finalized); listing by owner and by model.
    net.wait_all_caught_up_with(0).await;
    for i in 0..4 {
        let v = net
            .client_of(i)
            .chip(&unet_client::api::hex::decode32(&id_a).unwrap())
            .await
            .unwrap();
        assert_eq!(unet_types::hexser::to_hex(&v.owner), r_owner(&net, ks));
    }
    let list = unet_json(&net, ks, &["chip", "list", "--owner", "miner"], &[]);
    let ids: Vec<&str> = list["chips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["chip_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id_a.as_str(), id_b.as_str()]);
    let list = unet_json(&net, ks, &["chip", "list", "--model", "BM1684"], &[]);
    assert_eq!(list["chips"].as_array().unwrap().len(), 1);
    assert_eq!(list["chips"][0]["chip_id"], id_b.as_str());
    assert_eq!(list["total_registered"], 2);

    // 6. Transfer chip A to bob; the old owner can no longer move it.
    let r = unet_json(
        &net,
        ks,
        &[
            "chip",
            "transfer",
            "--from",
            "miner",
            "--chip-id",
            &id_a,
            "--to",
            "bob",
        ],
        &[],
    );
    assert_eq!(r["chip"]["owner"], bob_addr.as_str());
    let list = unet_json(&net, ks, &["chip", "list", "--owner", "bob"], &[]);
    assert_eq!(list["chips"].as_array().unwrap().len(), 1);
    let r = unet(
        &net,
        ks,
        &[
            "chip",
            "transfer",
            "--from",
            "miner",
            "--chip-id",
            &id_a,
            "--to",
            "miner",
            "--json",
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["receipt"]["code"], "not_owner");

    // 7. Governance (threshold 1 on a devnet): revoke chip B; it is marked revoked at once and
    //    an approval cannot be used twice.
    let gov_file = net.path().join("net/governance.key");
    unet_json(
        &net,
        ks,
        &[
            "keys",
            "import",
            "gov",
            "--secret-file",
            gov_file.to_str().unwrap(),
        ],
        &[],
    );
    let approval = net.path().join("approval.json");
    let a = unet_json(
        &net,
        ks,
        &[
            "gov",
            "approve",
            "--from",
            "gov",
            "--revoke-chip",
            &id_b,
            "--out",
            approval.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(a["gov_nonce"], 0);
    let r = unet_json(
        &net,
        ks,
        &[
            "gov",
            "submit",
            "--from",
            "miner",
            "--revoke-chip",
            &id_b,
            "--approval",
            approval.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r["receipt"]["status"], "ok");
    let chip = unet_json(&net, ks, &["chip", "show", &id_b], &[]);
    assert_eq!(chip["status"], "revoked");
    let revoked = unet_json(&net, ks, &["chip", "list", "--status", "revoked"], &[]);
    assert_eq!(revoked["chips"].as_array().unwrap().len(), 1);
    let r = unet(
        &net,
        ks,
        &[
            "gov",
            "submit",
            "--from",
            "miner",
            "--revoke-chip",
            &id_b,
            "--approval",
            approval.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["receipt"]["code"], "bad_approval");
    // An approval for another action is refused before anything is sent.
    let r = unet(
        &net,
        ks,
        &[
            "gov",
            "submit",
            "--from",
            "miner",
            "--revoke-chip",
            &id_a,
            "--approval",
            approval.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("approves a different action"),
        "{}",
        r.stderr
    );

    // 8. Unknown chip ids are a clean not-found error.
    let r = unet(&net, ks, &["chip", "show", &"00".repeat(32), "--json"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no registered chip"), "{}", r.stderr);

    // 9. An emulated B200 GPU registers with SPDM evidence (the path real GPUs take); once
    // governance sets a Blackwell firmware policy above its driver, a second GPU cannot.
    let gpu = |name: &str| {
        let path = net.path().join(name);
        let v = unet_json(
            &net,
            ks,
            &[
                "chip",
                "provision",
                "--gpu",
                "--out",
                path.to_str().unwrap(),
                "--model",
                "B200",
            ],
            &[],
        );
        assert_eq!(v["model"], "B200");
        path
    };
    let register = |path: &std::path::Path| {
        let r = unet(
            &net,
            ks,
            &[
                "chip",
                "register",
                "--from",
                "miner",
                "--chip",
                path.to_str().unwrap(),
                "--json",
            ],
            &[],
        );
        serde_json::from_str::<Value>(&r.stdout)
            .unwrap_or_else(|e| panic!("{e}: {} {}", r.stdout, r.stderr))
    };
    let r = register(&gpu("gpu-1.json"));
    assert_eq!(r["receipt"]["status"], "ok", "{r}");
    assert_eq!(r["chip"]["kind"], "nvidia-spdm");
    assert_eq!(r["chip"]["model"], "B200");
    let policy = net.path().join("blackwell-policy.json");
    std::fs::write(
        &policy,
        r#"{"architecture":"Blackwell","min_driver":"580.65.06"}"#,
    )
    .unwrap();
    let set = ["--set-firmware-policy", policy.to_str().unwrap()];
    let approval = net.path().join("approval-fw.json");
    let mut args = vec![
        "gov",
        "approve",
        "--from",
        "gov",
        "--out",
        approval.to_str().unwrap(),
    ];
    args.extend(set);
    unet_json(&net, ks, &args, &[]);
    let mut args = vec![
        "gov",
        "submit",
        "--from",
        "miner",
        "--approval",
        approval.to_str().unwrap(),
    ];
    args.extend(set);
    let r = unet_json(&net, ks, &args, &[]);
    assert_eq!(r["receipt"]["status"], "ok", "{r}");
    let models = unet_json(&net, ks, &["chip", "models"], &[]);
    assert_eq!(
        models["firmware_policies"],
        serde_json::json!([{"architecture": "Blackwell", "min_driver": "580.65.06",
                            "min_vbios": null, "measurements": []}]),
        "{models}"
    );
    let r = register(&gpu("gpu-2.json"));
    assert_eq!(
        r["receipt"]["code"], "evidence_firmware_below_minimum",
        "{r}"
    );
}

fn r_owner(net: &Network, ks: &std::path::Path) -> String {
    unet_json(net, ks, &["keys", "show", "miner"], &[])["address"]
        .as_str()
        .unwrap()
        .to_string()
}
