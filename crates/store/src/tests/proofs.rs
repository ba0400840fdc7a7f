//! Proof generation, verification, encoding and tamper resistance.

use super::{build, key, open, puts, val};
use crate::{verify_proof, Error, StateProof};
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_cryptography::{Hasher as _, Sha256};
use commonware_runtime::{deterministic, Runner as _};

#[test]
fn proofs() {
    deterministic::Runner::default().start(|ctx| async move {
        let mut db = open(&ctx, "first", "proofs").await;

        // An empty store proves absence through its commit.
        let empty_root = db.root();
        let proof = db.prove(&key(1)).await.unwrap();
        assert!(matches!(proof, StateProof::Absent(_)));
        assert_eq!(verify_proof(&empty_root, &key(1), &proof).unwrap(), None);

        let m = build(db.new_batch(), &puts(0..32, 1), 1).await;
        db.apply(&m).await.unwrap();
        let root = db.root();
        assert!(matches!(
            verify_proof(&root, &key(1), &proof),
            Err(Error::InvalidProof)
        ));

        let present = db.prove(&key(5)).await.unwrap();
        assert_eq!(present.claimed_value(), Some(&val(5, 1)[..]));
        assert_eq!(
            verify_proof(&root, &key(5), &present).unwrap(),
            Some(val(5, 1))
        );
        let absent = db.prove(&key(1000)).await.unwrap();
        assert_eq!(absent.claimed_value(), None);
        assert_eq!(absent.verify(&root, &key(1000)).unwrap(), None);

        // Codec round trip, as sent over RPC.
        for proof in [&present, &absent] {
            let bytes = proof.encode();
            assert_eq!(&StateProof::decode(bytes.clone()).unwrap(), proof);
            assert_eq!(&StateProof::from_bytes(&proof.to_bytes()).unwrap(), proof);
        }

        // Wrong root, wrong key.
        let wrong_root = Sha256::hash(&[b"not the root"]);
        assert!(matches!(
            verify_proof(&wrong_root, &key(5), &present),
            Err(Error::InvalidProof)
        ));
        assert!(matches!(
            verify_proof(&wrong_root, &key(1000), &absent),
            Err(Error::InvalidProof)
        ));
        assert!(matches!(
            verify_proof(&root, &key(6), &present),
            Err(Error::InvalidProof)
        ));
        // An absence proof cannot be reused for a key that exists.
        for i in 0..32 {
            assert!(matches!(
                verify_proof(&root, &key(i), &absent),
                Err(Error::InvalidProof)
            ));
        }
        // A forged value fails.
        let StateProof::Present { proof: inner, .. } = present.clone() else {
            unreachable!()
        };
        let forged = StateProof::Present {
            value: val(5, 2),
            proof: inner,
        };
        assert!(matches!(
            verify_proof(&root, &key(5), &forged),
            Err(Error::InvalidProof)
        ));

        // Every single flipped bit-pattern in the encoding is rejected (decode or verify).
        for (proof, k) in [(&present, key(5)), (&absent, key(1000))] {
            let bytes = proof.to_bytes();
            for i in 0..bytes.len() {
                for mask in [0x01u8, 0x80] {
                    let mut tampered = bytes.clone();
                    tampered[i] ^= mask;
                    if let Ok(decoded) = StateProof::from_bytes(&tampered) {
                        assert!(
                            matches!(verify_proof(&root, &k, &decoded), Err(Error::InvalidProof)),
                            "tampered byte {i} (mask {mask:#x}) verified"
                        );
                    }
                }
            }
            // Truncations and trailing bytes are decode errors.
            for end in 0..bytes.len() {
                assert!(matches!(
                    StateProof::from_bytes(&bytes[..end]),
                    Err(Error::MalformedProof(_))
                ));
            }
            let mut trailing = bytes.clone();
            trailing.push(0);
            assert!(matches!(
                StateProof::from_bytes(&trailing),
                Err(Error::MalformedProof(_))
            ));
        }
        // Garbage never panics.
        for len in [0usize, 1, 2, 33, 200, 5000] {
            let garbage: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let _ = StateProof::from_bytes(&garbage);
        }

        // After an update, the old proof no longer verifies against the new root.
        let m2 = build(
            db.new_batch(),
            &[(key(5), Some(val(5, 2))), (key(1000), Some(vec![1]))],
            2,
        )
        .await;
        db.apply(&m2).await.unwrap();
        let new_root = db.root();
        assert!(verify_proof(&new_root, &key(5), &present).is_err());
        assert!(verify_proof(&new_root, &key(1000), &absent).is_err());
        let fresh = db.prove(&key(5)).await.unwrap();
        assert_eq!(
            verify_proof(&new_root, &key(5), &fresh).unwrap(),
            Some(val(5, 2))
        );
        let fresh = db.prove(&key(1000)).await.unwrap();
        assert_eq!(
            verify_proof(&new_root, &key(1000), &fresh).unwrap(),
            Some(vec![1])
        );

        // Deleting every key brings back the empty-store absence proof.
        let all: Vec<_> = (0..32)
            .map(|i| (key(i), None))
            .chain([(key(1000), None)])
            .collect();
        let m3 = build(db.new_batch(), &all, 3).await;
        db.apply(&m3).await.unwrap();
        let proof = db.prove(&key(5)).await.unwrap();
        assert_eq!(verify_proof(&db.root(), &key(5), &proof).unwrap(), None);
    });
}
