//! Transaction and block decoding (targets `tx_decode`, `block_decode`).

use commonware_codec::{Decode, Encode};
use unet_types::{Block, BlockCfg, SignedTx};

/// Any byte string: decoding a transaction never panics; whatever decodes re-encodes to
/// exactly the input (one encoding per transaction, so one hash) and passes or fails its
/// stateless checks without panicking.
pub fn tx_decode(data: &[u8]) {
    if let Ok(tx) = SignedTx::decode_untrusted(data) {
        assert_eq!(tx.encode().as_ref(), data, "non-canonical transaction");
        let _ = tx.check_stateless(tx.tx.chain_id, 0);
        let _ =
            unet_state::check_stateless_batch(std::slice::from_ref(&tx), tx.tx.chain_id, 0, |_| {
                false
            });
    }
}

/// Any byte string: decoding a block never panics; whatever decodes re-encodes to exactly the
/// input and its transaction root matches its transactions.
pub fn block_decode(data: &[u8]) {
    if let Ok(block) = Block::decode_cfg(data.to_vec(), &BlockCfg { max_txs: 64 }) {
        assert_eq!(block.encode().as_ref(), data, "non-canonical block");
        assert_eq!(block.tx_root, unet_types::block::tx_root(&block.txs));
    }
}

/// Seed inputs: transactions of every kind the stateful target makes, and blocks of them.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    use commonware_consensus::types::{Epoch, Height, Round, View};
    use commonware_cryptography::{Hasher, Sha256, Signer};
    use unet_types::{Context, PrivateKey};
    let txs = crate::stateful::sample_txs();
    let mut kinds = std::collections::BTreeMap::new();
    for tx in &txs {
        kinds
            .entry(tx.tx.payload.kind())
            .or_insert_with(|| tx.clone());
    }
    let one_per_kind: Vec<SignedTx> = kinds.into_values().collect();
    match target {
        "tx_decode" => one_per_kind.iter().map(|t| t.encode().to_vec()).collect(),
        "block_decode" => (0..3usize)
            .map(|n| {
                let context = Context {
                    round: Round::new(Epoch::zero(), View::new(3)),
                    leader: PrivateKey::from_seed(1).public_key(),
                    parent: (View::new(2), Sha256::hash(&[b"p"])),
                };
                let body: Vec<SignedTx> =
                    one_per_kind.iter().skip(n * 5).take(5).cloned().collect();
                Block::new(
                    context,
                    Sha256::hash(&[b"p"]),
                    Height::new(2),
                    1234,
                    None,
                    Sha256::hash(&[b"s"]),
                    body,
                )
                .encode()
                .to_vec()
            })
            .collect(),
        _ => Vec::new(),
    }
}
