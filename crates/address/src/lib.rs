//! Account addresses and their decoding through a bounded cache of decompressed keys.
//!
//! An [`Address`] is an ed25519 public key. Its `Read` decompresses the curve point (a square
//! root in the field), about half the cost of a batched signature verification. A transfer
//! names two keys, and a validator decodes each transfer more than once (admitted at the API or
//! from gossip, then inside the proposed block, then the stored block), so decompression was
//! most of what a validator spent on a transfer (issue 16; `cargo bench -p unet-state --bench
//! tx_path`). [`read_address`] keeps recently decompressed keys in a process-wide map, so a key
//! is decompressed once while it is in use.
//!
//! # Why this is safe
//!
//! - **Same results.** A cached key was produced by `PublicKey::read` from the very bytes it is
//!   looked up by; bytes that fail to decode are never cached and fail through
//!   `PublicKey::read` again, with its error. What the cache holds never changes an outcome, so
//!   every validator agrees whatever each one has cached.
//! - **Bounded.** At most [`CAPACITY`] keys, in [`SHARDS`] shards of two generations each: when
//!   a shard's young generation fills, it becomes the old one and the previous old one is
//!   dropped; a hit in the old generation moves the key back to the young one. Keys an attacker
//!   sprays only evict others, so the worst case costs what decoding cost without the cache
//!   (plus a map lookup).
//! - **Hash flooding.** The maps use std's randomly keyed SipHash; keys are attacker-chosen.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use commonware_codec::{Buf, Copying, Error as CodecError, FixedSize, ReadExt};
use commonware_cryptography::ed25519::PublicKey;

/// An account address: the account's ed25519 public key.
pub type Address = PublicKey;

/// Shards of the cache (keys spread by their first byte), so threads rarely wait on each other.
pub const SHARDS: usize = 16;

/// Most keys held at once, over every shard and both generations.
pub const CAPACITY: usize = 32_768;

const GENERATION: usize = CAPACITY / SHARDS / 2;

#[derive(Default)]
struct Shard {
    young: HashMap<[u8; 32], Address>,
    old: HashMap<[u8; 32], Address>,
}

impl Shard {
    fn get(&mut self, bytes: &[u8; 32]) -> Option<Address> {
        if let Some(key) = self.young.get(bytes) {
            return Some(key.clone());
        }
        let key = self.old.remove(bytes)?;
        self.insert(*bytes, key.clone());
        Some(key)
    }

    fn insert(&mut self, bytes: [u8; 32], key: Address) {
        if self.young.len() >= GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(bytes, key);
    }

    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

static CACHE: LazyLock<[Mutex<Shard>; SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| Mutex::new(Shard::default())));

fn shard(bytes: &[u8; 32]) -> std::sync::MutexGuard<'static, Shard> {
    // A poisoned lock only means another thread panicked mid-insert; the maps stay valid.
    CACHE[bytes[0] as usize % SHARDS]
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads an [`Address`] (32 bytes, a canonical ed25519 point) exactly as `PublicKey::read`
/// does, decompressing the point only if it is not among the recently decoded keys.
pub fn read_address(buf: &mut impl Buf) -> Result<Address, CodecError> {
    let bytes = <[u8; PublicKey::SIZE]>::read(buf)?;
    if let Some(key) = shard(&bytes).get(&bytes) {
        return Ok(key);
    }
    // Decompress outside the lock; bytes that are not a key fail here and are not cached.
    let key = PublicKey::read(&mut Copying(&bytes[..]))?;
    shard(&bytes).insert(bytes, key.clone());
    Ok(key)
}

/// Keys the cache holds now (at most [`CAPACITY`]).
pub fn cached_keys() -> usize {
    CACHE
        .iter()
        .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::Encode;
    use commonware_cryptography::{ed25519::PrivateKey, Signer};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn via_cache(bytes: &[u8]) -> Result<Address, CodecError> {
        read_address(&mut Copying(bytes))
    }

    fn direct(bytes: &[u8]) -> Result<Address, CodecError> {
        PublicKey::read(&mut Copying(bytes))
    }

    #[test]
    fn decodes_exactly_as_the_key_itself_does() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut points = 0;
        for i in 0..4_000u64 {
            let mut bytes = [0u8; 32];
            if i % 2 == 0 {
                bytes.copy_from_slice(&PrivateKey::from_seed(i).public_key().encode());
            } else {
                // About half of random encodings are not points.
                rng.fill_bytes(&mut bytes);
            }
            // Twice: the second read comes from the cache when the first succeeded.
            for _ in 0..2 {
                let (cached, plain) = (via_cache(&bytes), direct(&bytes));
                match (&cached, &plain) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a, b);
                        assert_eq!(a.encode().as_ref(), bytes.as_slice());
                        points += 1;
                    }
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    _ => panic!("cache and key disagree on {}", hex(&bytes)),
                }
            }
        }
        assert!(points > 4_000, "the sample has both points and non-points");
    }

    #[test]
    fn a_short_buffer_is_refused_and_consumes_what_the_key_would() {
        let key = PrivateKey::from_seed(1).public_key().encode();
        assert!(via_cache(&key[..31]).is_err());
        assert!(direct(&key[..31]).is_err());
        // Trailing bytes stay in the buffer for the next field.
        let mut longer = key.to_vec();
        longer.push(9);
        let mut buf = Copying(&longer[..]);
        read_address(&mut buf).unwrap();
        assert_eq!(buf.0, &[9]);
    }

    #[test]
    fn a_flood_of_fresh_keys_stays_within_capacity() {
        // Attack: more distinct valid keys than the cache holds, in one stream.
        for i in 0..(CAPACITY as u64 + 5_000) {
            let key = PrivateKey::from_seed(1_000_000 + i).public_key();
            assert_eq!(via_cache(&key.encode()).unwrap(), key);
            if i % 4_096 == 0 {
                assert!(cached_keys() <= CAPACITY);
            }
        }
        assert!(cached_keys() <= CAPACITY, "{} keys held", cached_keys());
        // And a key in use survives the flood going by: a hot key read between fresh ones is
        // still served (and still equal).
        let hot = PrivateKey::from_seed(5).public_key();
        for i in 0..(CAPACITY as u64) {
            let fresh = PrivateKey::from_seed(3_000_000 + i).public_key();
            via_cache(&fresh.encode()).unwrap();
            assert_eq!(via_cache(&hot.encode()).unwrap(), hot);
        }
        assert!(cached_keys() <= CAPACITY);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
