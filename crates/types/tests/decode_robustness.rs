//! Decoders on hostile input: random bytes and every single-byte mutation of valid encodings
//! never panic; whatever decodes is canonical (re-encodes to the same bytes).
//! (The same properties as the cargo-fuzz targets in /fuzz, run deterministically on stable.)

use commonware_codec::{Decode, Encode};
use commonware_consensus::types::{Epoch, Height, Round, View};
use commonware_cryptography::{Hasher, Sha256, Signer};
use unet_types::{Block, BlockCfg, Context, Payload, PrivateKey, SignedTx, Transaction};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn tx(nonce: u64) -> SignedTx {
    let k = PrivateKey::from_seed(3);
    Transaction {
        chain_id: 5,
        sender: k.public_key(),
        nonce,
        fee: 10,
        payload: Payload::Transfer {
            to: PrivateKey::from_seed(4).public_key(),
            amount: 99,
        },
    }
    .sign(&k)
}

fn block() -> Block {
    let context = Context {
        round: Round::new(Epoch::zero(), View::new(3)),
        leader: PrivateKey::from_seed(1).public_key(),
        parent: (View::new(2), Sha256::hash(&[b"p"])),
    };
    Block::new(
        context,
        Sha256::hash(&[b"p"]),
        Height::new(2),
        1234,
        None,
        Sha256::hash(&[b"s"]),
        (0..3).map(tx).collect(),
    )
}

fn check_tx(bytes: &[u8]) {
    if let Ok(t) = SignedTx::decode_untrusted(bytes) {
        assert_eq!(t.encode().as_ref(), bytes);
        let _ = t.check_stateless(5, 0);
    }
}

fn check_block(bytes: &[u8]) {
    if let Ok(b) = Block::decode_cfg(bytes.to_vec(), &BlockCfg { max_txs: 16 }) {
        assert_eq!(b.encode().as_ref(), bytes);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Lcg(1);
    for i in 0..20_000 {
        let len = (rng.next() % 600) as usize;
        let data = rng.bytes(len);
        check_tx(&data);
        if i % 4 == 0 {
            check_block(&data);
        }
    }
}

#[test]
fn every_single_byte_mutation_of_a_valid_tx_is_handled() {
    let valid = tx(1).encode().to_vec();
    for pos in 0..valid.len() {
        for delta in [1u8, 0x80, 0xff] {
            let mut m = valid.clone();
            m[pos] = m[pos].wrapping_add(delta);
            check_tx(&m);
            // A mutated signed region must never pass the signature check.
            if let Ok(t) = SignedTx::decode_untrusted(&m) {
                assert!(
                    t.check_signature().is_err(),
                    "mutation at {pos} kept a valid signature"
                );
            }
        }
    }
}

#[test]
fn every_single_byte_mutation_of_a_valid_block_is_handled() {
    let valid = block().encode().to_vec();
    let original = block();
    for pos in 0..valid.len() {
        let mut m = valid.clone();
        m[pos] ^= 0x5a;
        check_block(&m);
        if let Ok(b) = Block::decode_cfg(m.clone(), &BlockCfg { max_txs: 16 }) {
            use commonware_cryptography::Digestible;
            assert_ne!(
                b.digest(),
                original.digest(),
                "mutation at {pos} kept the digest"
            );
        }
    }
}
