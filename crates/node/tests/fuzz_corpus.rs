//! Replays the committed corpus of the `rpc_params` fuzz target (fuzz/corpus/rpc_params/)
//! through the function the target calls, on stable, as part of the normal test run.

use std::path::PathBuf;
use unet_node::rpc::fuzzing::parse_request;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/rpc_params")
}

/// Requests of every method's shape, named and positional.
fn seeds() -> Vec<&'static str> {
    vec![
        r#"{"jsonrpc":"2.0","id":1,"method":"unet_getBlock","params":["latest",false]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"unet_getBlock","params":{"height":"12","full":true}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"unet_getAccount","params":{"address":"0000000000000000000000000000000000000000000000000000000000000000"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"unet_getTransaction","params":["0x00"]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"unet_sendTransaction","params":{"tx":"0009"}}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"unet_sendTransactions","params":{"txs":["00","0x01"]}},{"jsonrpc":"2.0","method":"unet_status"}]"#,
        r#"{"jsonrpc":"2.0","id":"a","method":"unet_getChip","params":{"chip_id":"0x1111111111111111111111111111111111111111111111111111111111111111"}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"unet_listChips","params":{"owner":null,"start":3,"limit":1e3,"status":"online"}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"unet_getRewards","params":{"owner":"ab","epoch":-1}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"unet_listOffers","params":{"max_price":"340282366920938463463374607431768211456","min_free":"7","from":18446744073709551615}}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"unet_listLeases","params":{"renter":"zz","provider":1}}"#,
    ]
}

#[test]
fn rpc_params_corpus() {
    let files: Vec<_> = std::fs::read_dir(dir())
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir().display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    assert!(!files.is_empty(), "corpus of rpc_params is empty");
    for f in files {
        parse_request(&std::fs::read(&f).expect("corpus file"));
    }
}

#[test]
fn seeds_parse_their_parameters() {
    for s in seeds() {
        parse_request(s.as_bytes());
    }
    // A well-formed address, chip id and epoch are each accepted by their parser.
    let ok = parse_request(seeds()[2].as_bytes());
    assert!(
        ok >= 1,
        "the address of a well-formed request did not parse"
    );
    assert!(parse_request(br#"{"params":{"epoch":3}}"#) >= 1);
}

/// Writes the seeds into fuzz/corpus/rpc_params/ (run once with `--ignored` before fuzzing).
#[test]
#[ignore]
fn write_seeds() {
    std::fs::create_dir_all(dir()).unwrap();
    for (i, s) in seeds().iter().enumerate() {
        std::fs::write(dir().join(format!("seed-{i}")), s).unwrap();
    }
}
