//! The POCI registry's attack matrix, executed through the state transition: every attack is
//! rejected with its own error code, and the honest paths change state exactly.

use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::{Hasher, Sha256, Signer};
use std::collections::BTreeMap;
use unet_poci::{
    certificate_id,
    secure_element::{signature_twin, DevnetVendorCa},
    Curve, Evidence, VendorX509Evidence,
};
use unet_state::{
    registry::effective_status,
    testing::{MemState, Nonces, TestChip},
    BlockEnv, TxStatus,
};
use unet_types::{
    chip::{
        registration_nonce, Approval, Chip, ChipList, ChipStatus, GovAction, Model, Registry, Root,
        GOV_NAMESPACE,
    },
    keys::{
        account_key, chip_key, owner_chips_key, registry_key, revoked_cert_key, supply_key,
        Account, Supply,
    },
    Digest, Params, Payload, PrivateKey, SignedTx, UNC,
};

const CHAIN: u64 = 42;
/// 2026-11-22, inside the devnet certificates' validity.
const NOW_MS: u64 = 1_795_305_600_000;

struct Chain {
    state: MemState,
    height: u64,
    hashes: Vec<Digest>,
    nonces: Nonces,
    params: Params,
}

/// `c.entries` is the state's map.
impl std::ops::Deref for Chain {
    type Target = MemState;
    fn deref(&self) -> &MemState {
        &self.state
    }
}

impl Chain {
    fn new(registry: Registry, funded: &[&PrivateKey]) -> Self {
        let mut entries = BTreeMap::new();
        for k in funded {
            let a = Account {
                balance: 1_000 * UNC,
                nonce: 0,
            };
            entries.insert(account_key(&k.public_key()), a.encode().to_vec());
        }
        let supply = Supply {
            genesis: 1_000 * UNC * funded.len() as u128,
            ..Default::default()
        };
        entries.insert(supply_key(), supply.encode().to_vec());
        entries.insert(registry_key(), registry.encode().to_vec());
        let mut chain = Self {
            state: MemState { entries },
            height: 0,
            hashes: vec![Sha256::hash(&[b"genesis"])],
            nonces: Nonces::default(),
            params: Params {
                min_fee: 1,
                registration_window: 16,
                ..Params::default()
            },
        };
        chain.block(&[]); // height 1: records genesis as an anchor
        chain
    }

    /// Executes a block of transactions (verify mode) and returns each receipt's status.
    fn block(&mut self, txs: &[SignedTx]) -> Vec<TxStatus> {
        self.height += 1;
        let parent = *self.hashes.last().unwrap();
        let proposer = PrivateKey::from_seed(999).public_key();
        let env = BlockEnv {
            chain_id: CHAIN,
            params: &self.params,
            proposer,
            height: self.height,
            parent,
            timestamp_ms: NOW_MS + self.height * 1000,
            beacon: Sha256::hash(&[b"beacon"]),
            treasury: None,
        };
        let out = self.state.verify_block(&env, txs);
        self.hashes
            .push(Sha256::hash(&[&self.height.to_be_bytes()]));
        out.receipts.into_iter().map(|r| r.status).collect()
    }

    fn anchor(&self) -> (u64, Digest) {
        // The latest block whose hash is recorded: the parent of the next block.
        (self.height, *self.hashes.last().unwrap())
    }

    fn tx(&mut self, from: &PrivateKey, payload: Payload) -> SignedTx {
        self.nonces.tx(CHAIN, from, 1, payload)
    }

    fn registry(&self) -> Registry {
        Registry::decode(self.entries[&registry_key()].clone()).unwrap()
    }

    fn chip(&self, id: &[u8; 32]) -> Option<Chip> {
        self.entries
            .get(&chip_key(id))
            .map(|b| Chip::decode(b.clone()).unwrap())
    }

    fn owned(&self, owner: &PrivateKey) -> Vec<[u8; 32]> {
        self.entries
            .get(&owner_chips_key(&owner.public_key()))
            .map(|b| ChipList::decode(b.clone()).unwrap().0)
            .unwrap_or_default()
    }
}

fn ca() -> DevnetVendorCa {
    DevnetVendorCa::from_seed(b"test vendor").unwrap()
}

fn registry(ca: &DevnetVendorCa, governors: &[&PrivateKey], threshold: u8) -> Registry {
    let mut r = Registry {
        allow_devnet_roots: true,
        governance: governors.iter().map(|g| g.public_key()).collect(),
        threshold,
        ..Default::default()
    };
    r.set_model(Model {
        name: "BM1684X".into(),
        compute_milli_tops: 32_000,
    });
    r.roots.push(Root {
        kind: unet_types::chip::kind::VENDOR_X509,
        der: ca.root_der().to_vec(),
        devnet_only: true,
    });
    r
}

fn make_chip(ca: &DevnetVendorCa, n: u8, model: &str) -> TestChip {
    TestChip::provision(ca, n, model)
}

fn evidence(chip: &TestChip, nonce: [u8; 32]) -> Vec<u8> {
    Evidence::VendorX509(VendorX509Evidence {
        nonce,
        chain: chip.chain.clone(),
        signature: chip.se.sign_registration(&nonce).unwrap(),
    })
    .encode()
    .unwrap()
}

fn register_payload(c: &Chain, chip: &TestChip, owner: &PrivateKey) -> Payload {
    let (h, hash) = c.anchor();
    Payload::RegisterChip {
        anchor_height: h,
        evidence: evidence(chip, registration_nonce(CHAIN, &hash, &owner.public_key())),
    }
}

fn failed(s: &TxStatus) -> String {
    match s {
        TxStatus::Failed { code, .. } => code.clone(),
        TxStatus::Ok => "ok".into(),
    }
}

fn approve(action: &GovAction, gov_nonce: u64, governors: &[&PrivateKey]) -> Vec<Approval> {
    let msg = action.approval_message(CHAIN, gov_nonce);
    governors
        .iter()
        .map(|g| Approval {
            governor: g.public_key(),
            signature: g.sign(GOV_NAMESPACE, &msg),
        })
        .collect()
}

#[test]
fn honest_registration_transfer_and_deregistration() {
    let ca = ca();
    let (alice, bob) = (PrivateKey::from_seed(1), PrivateKey::from_seed(2));
    let mut c = Chain::new(registry(&ca, &[], 0), &[&alice, &bob]);
    let chip = make_chip(&ca, 7, "BM1684X");
    let p = register_payload(&c, &chip, &alice);
    let tx = c.tx(&alice, p);
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);
    let id = chip.se.chip_id();
    let rec = c.chip(&id).expect("registered");
    assert_eq!(rec.owner, alice.public_key());
    assert_eq!(rec.model, "BM1684X");
    assert_eq!(rec.status, ChipStatus::Online);
    assert_eq!(rec.serial, "SN-7");
    assert_eq!(rec.device_key, chip.se.public_key().sec1);
    assert_eq!(rec.index, 0);
    assert_eq!(c.owned(&alice), vec![id]);
    assert_eq!(c.registry().chip_count, 1);

    // Transfer by the owner; a non-owner cannot move it back.
    let tx = c.tx(
        &alice,
        Payload::TransferChip {
            chip_id: id,
            to: bob.public_key(),
        },
    );
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);
    assert_eq!(c.chip(&id).unwrap().owner, bob.public_key());
    assert!(c.owned(&alice).is_empty());
    assert_eq!(c.owned(&bob), vec![id]);
    let tx = c.tx(
        &alice,
        Payload::TransferChip {
            chip_id: id,
            to: alice.public_key(),
        },
    );
    assert_eq!(failed(&c.block(&[tx])[0]), "not_owner");

    // Deregistration by the owner.
    let tx = c.tx(&bob, Payload::DeregisterChip { chip_id: id });
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);
    assert!(c.chip(&id).is_none());
    assert!(c.owned(&bob).is_empty());
    let tx = c.tx(&bob, Payload::DeregisterChip { chip_id: id });
    assert_eq!(failed(&c.block(&[tx])[0]), "unknown_chip");
}

#[test]
fn attack_matrix_each_rejected_with_its_own_error() {
    let ca = ca();
    let (alice, mallory, gov) = (
        PrivateKey::from_seed(1),
        PrivateKey::from_seed(3),
        PrivateKey::from_seed(50),
    );
    let mut c = Chain::new(registry(&ca, &[&gov], 1), &[&alice, &mallory, &gov]);
    let (h, anchor) = c.anchor();
    let nonce_for = |owner: &PrivateKey| registration_nonce(CHAIN, &anchor, &owner.public_key());
    let chip = make_chip(&ca, 1, "BM1684X");

    let mut cases: Vec<(&str, SignedTx)> = Vec::new();
    // Forged signature: another chip's key signs this chip's evidence.
    let other = make_chip(&ca, 2, "BM1684X");
    let n = nonce_for(&alice);
    let forged = Evidence::VendorX509(VendorX509Evidence {
        nonce: n,
        chain: chip.chain.clone(),
        signature: other.se.sign_registration(&n).unwrap(),
    })
    .encode()
    .unwrap();
    cases.push((
        "evidence_evidence_signature_invalid",
        c.tx(
            &alice,
            Payload::RegisterChip {
                anchor_height: h,
                evidence: forged,
            },
        ),
    ));
    // Unknown vendor root: a CA the chain does not pin.
    let rogue = DevnetVendorCa::from_seed(b"rogue vendor").unwrap();
    let rogue_chip = make_chip(&rogue, 3, "BM1684X");
    cases.push((
        "evidence_unknown_root",
        c.tx(
            &alice,
            Payload::RegisterChip {
                anchor_height: h,
                evidence: evidence(&rogue_chip, nonce_for(&alice)),
            },
        ),
    ));
    // Wrong nonce: evidence made for another challenge.
    cases.push((
        "evidence_nonce_mismatch",
        c.tx(
            &alice,
            Payload::RegisterChip {
                anchor_height: h,
                evidence: evidence(&chip, [9; 32]),
            },
        ),
    ));
    // Mempool theft: Mallory submits Alice's evidence as her own.
    cases.push((
        "evidence_nonce_mismatch",
        c.tx(
            &mallory,
            Payload::RegisterChip {
                anchor_height: h,
                evidence: evidence(&chip, nonce_for(&alice)),
            },
        ),
    ));
    // Model not in the table.
    let odd = make_chip(&ca, 4, "XYZ9000");
    cases.push((
        "unknown_model",
        c.tx(
            &alice,
            Payload::RegisterChip {
                anchor_height: h,
                evidence: evidence(&odd, nonce_for(&alice)),
            },
        ),
    ));
    // Anchor from the future.
    cases.push((
        "stale_anchor",
        c.tx(
            &alice,
            Payload::RegisterChip {
                anchor_height: h + 5,
                evidence: evidence(&chip, nonce_for(&alice)),
            },
        ),
    ));
    // Garbage evidence.
    cases.push((
        "evidence_malformed_evidence",
        c.tx(
            &alice,
            Payload::RegisterChip {
                anchor_height: h,
                evidence: vec![1, 2, 3],
            },
        ),
    ));

    let (expected, txs): (Vec<&str>, Vec<SignedTx>) = cases.into_iter().unzip();
    let got: Vec<String> = c.block(&txs).iter().map(failed).collect();
    assert_eq!(got, expected);
    assert_eq!(c.registry().chip_count, 0, "nothing registered");
    // Failed registrations still paid their fee and consumed their nonce.
    assert_eq!(
        Account::decode(c.entries[&account_key(&alice.public_key())].clone())
            .unwrap()
            .nonce,
        6
    );
}

#[test]
fn stale_anchor_is_refused() {
    let ca = ca();
    let alice = PrivateKey::from_seed(1);
    let mut c = Chain::new(registry(&ca, &[], 0), &[&alice]);
    let chip = make_chip(&ca, 1, "BM1684X");
    let old = register_payload(&c, &chip, &alice);
    for _ in 0..c.params.registration_window + 1 {
        c.block(&[]);
    }
    let tx = c.tx(&alice, old);
    assert_eq!(failed(&c.block(&[tx])[0]), "stale_anchor");
    // Fresh evidence for the same chip works.
    let p = register_payload(&c, &chip, &alice);
    let tx = c.tx(&alice, p);
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);
}

#[test]
fn same_chip_twice_even_under_two_owners_in_one_block() {
    let ca = ca();
    let (alice, bob) = (PrivateKey::from_seed(1), PrivateKey::from_seed(2));
    let mut c = Chain::new(registry(&ca, &[], 0), &[&alice, &bob]);
    let chip = make_chip(&ca, 1, "BM1684X");
    // Both hold the chip's evidence for their own address (e.g. the owner sold the device
    // while a registration was in flight): only the first in block order wins.
    let pa = register_payload(&c, &chip, &alice);
    let pb = register_payload(&c, &chip, &bob);
    let ta = c.tx(&alice, pa);
    let tb = c.tx(&bob, pb);
    let got: Vec<String> = c.block(&[ta, tb]).iter().map(failed).collect();
    assert_eq!(got, vec!["ok", "already_registered"]);
    assert_eq!(
        c.chip(&chip.se.chip_id()).unwrap().owner,
        alice.public_key()
    );
    // And again later.
    let p = register_payload(&c, &chip, &alice);
    let tx = c.tx(&alice, p);
    assert_eq!(failed(&c.block(&[tx])[0]), "already_registered");
}

#[test]
fn revoked_chip_and_revoked_intermediate() {
    let ca = ca();
    let (alice, g1, g2, g3) = (
        PrivateKey::from_seed(1),
        PrivateKey::from_seed(51),
        PrivateKey::from_seed(52),
        PrivateKey::from_seed(53),
    );
    let mut c = Chain::new(registry(&ca, &[&g1, &g2, &g3], 2), &[&alice, &g1]);
    let chip = make_chip(&ca, 1, "BM1684X");
    let p = register_payload(&c, &chip, &alice);
    let tx = c.tx(&alice, p);
    c.block(&[tx]);
    let id = chip.se.chip_id();

    // Governance needs 2 of 3: one approval is not enough, an outsider's counts for nothing,
    // a forged approval and a duplicated governor are refused.
    let revoke = GovAction::RevokeChip { chip_id: id };
    let gn = c.registry().gov_nonce;
    let mut cases = Vec::new();
    cases.push(("insufficient_approvals", approve(&revoke, gn, &[&g1])));
    cases.push(("not_governor", approve(&revoke, gn, &[&g1, &alice])));
    cases.push(("duplicate_approval", approve(&revoke, gn, &[&g1, &g1])));
    let mut forged = approve(&revoke, gn, &[&g1, &g2]);
    forged[1].signature = g2.sign(GOV_NAMESPACE, b"something else");
    cases.push(("bad_approval", forged));
    cases.push(("insufficient_approvals", approve(&revoke, gn + 1, &[]))); // wrong nonce, no one
    for (want, approvals) in cases {
        let tx = c.tx(
            &g1,
            Payload::Govern {
                action: revoke.clone(),
                approvals,
            },
        );
        assert_eq!(failed(&c.block(&[tx])[0]), want);
    }
    assert_eq!(c.chip(&id).unwrap().status, ChipStatus::Online);

    // Properly approved: the chip is marked revoked at once.
    let approvals = approve(&revoke, gn, &[&g2, &g3]);
    let tx = c.tx(
        &g1,
        Payload::Govern {
            action: revoke.clone(),
            approvals: approvals.clone(),
        },
    );
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);
    assert_eq!(c.chip(&id).unwrap().status, ChipStatus::Revoked);
    // The same approvals cannot be replayed (the governance nonce moved on).
    let tx = c.tx(
        &g1,
        Payload::Govern {
            action: revoke,
            approvals,
        },
    );
    assert_eq!(failed(&c.block(&[tx])[0]), "bad_approval");

    // A revoked chip can never register again, even after deregistration.
    let tx = c.tx(&alice, Payload::DeregisterChip { chip_id: id });
    c.block(&[tx]);
    let p = register_payload(&c, &chip, &alice);
    let tx = c.tx(&alice, p);
    assert_eq!(failed(&c.block(&[tx])[0]), "chip_revoked");

    // Revoking the vendor intermediate: a registered chip under it counts as revoked from
    // that block on, and no new chip under it can register.
    let chip2 = make_chip(&ca, 2, "BM1684X");
    let p = register_payload(&c, &chip2, &alice);
    let tx = c.tx(&alice, p);
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);
    let inter = certificate_id(ca.intermediate_der()).unwrap();
    let action = GovAction::RevokeCertificate { fingerprint: inter };
    let approvals = approve(&action, c.registry().gov_nonce, &[&g1, &g3]);
    let tx = c.tx(&g1, Payload::Govern { action, approvals });
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);
    let rec = c.chip(&chip2.se.chip_id()).unwrap();
    let status = effective_status(&rec, |fp| c.entries.contains_key(&revoked_cert_key(fp)));
    assert_eq!(status, ChipStatus::Revoked);
    let chip3 = make_chip(&ca, 3, "BM1684X");
    let p = register_payload(&c, &chip3, &alice);
    let tx = c.tx(&alice, p);
    assert_eq!(failed(&c.block(&[tx])[0]), "certificate_revoked");
}

/// Issue 12, item 3, through the state transition: the vendor intermediate's signature
/// rewritten as (r, n - s) is a different DER (a different SHA-256) that still verifies. A chip
/// registered through the rewritten chain before the revocation counts as revoked after it, and
/// neither form registers a chip once the intermediate is revoked.
#[test]
fn revoked_intermediate_cannot_come_back_with_its_signature_rewritten() {
    let ca = ca();
    let (alice, g) = (PrivateKey::from_seed(1), PrivateKey::from_seed(50));
    let mut c = Chain::new(registry(&ca, &[&g], 1), &[&alice, &g]);
    let twin = signature_twin(ca.intermediate_der(), Curve::P256).unwrap();
    assert_ne!(twin, ca.intermediate_der());
    let with_twin = |n: u8| {
        let mut chip = make_chip(&ca, n, "BM1684X");
        chip.chain[1] = twin.clone();
        chip
    };

    // The twin is genuine: a chip registers through it, with the same recorded chain as a chip
    // registered through the original intermediate.
    let early = with_twin(1);
    let honest = make_chip(&ca, 2, "BM1684X");
    let (pe, ph) = (
        register_payload(&c, &early, &alice),
        register_payload(&c, &honest, &alice),
    );
    let txs = [c.tx(&alice, pe), c.tx(&alice, ph)];
    assert_eq!(c.block(&txs), vec![TxStatus::Ok, TxStatus::Ok]);
    let early_rec = c.chip(&early.se.chip_id()).unwrap();
    assert_eq!(early_rec.chain, c.chip(&honest.se.chip_id()).unwrap().chain);

    // Governance revokes the intermediate it knows (the original DER).
    let action = GovAction::RevokeCertificate {
        fingerprint: certificate_id(ca.intermediate_der()).unwrap(),
    };
    let approvals = approve(&action, c.registry().gov_nonce, &[&g]);
    let tx = c.tx(&g, Payload::Govern { action, approvals });
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);

    let revoked = |c: &Chain, id: &[u8; 32]| {
        effective_status(&c.chip(id).unwrap(), |fp| {
            c.entries.contains_key(&revoked_cert_key(fp))
        })
    };
    assert_eq!(revoked(&c, &early.se.chip_id()), ChipStatus::Revoked);
    assert_eq!(revoked(&c, &honest.se.chip_id()), ChipStatus::Revoked);

    // New registrations: through the twin and through the original, both refused.
    let late = with_twin(3);
    let plain = make_chip(&ca, 4, "BM1684X");
    let (pl, pp) = (
        register_payload(&c, &late, &alice),
        register_payload(&c, &plain, &alice),
    );
    let txs = [c.tx(&alice, pl), c.tx(&alice, pp)];
    let got: Vec<String> = c.block(&txs).iter().map(failed).collect();
    assert_eq!(got, vec!["certificate_revoked", "certificate_revoked"]);
    assert!(c.chip(&late.se.chip_id()).is_none());
}

#[test]
fn devnet_ca_is_refused_by_a_production_genesis() {
    let ca = ca();
    let alice = PrivateKey::from_seed(1);
    let mut production = registry(&ca, &[], 0);
    production.allow_devnet_roots = false;
    // Even pinned as if it were a production root, the devnet CA stays devnet-only.
    production.roots[0].devnet_only = false;
    let mut c = Chain::new(production, &[&alice]);
    let chip = make_chip(&ca, 1, "BM1684X");
    let p = register_payload(&c, &chip, &alice);
    let tx = c.tx(&alice, p);
    assert_eq!(
        failed(&c.block(&[tx])[0]),
        "evidence_devnet_root_not_allowed"
    );
}

#[test]
fn governance_manages_models_and_roots() {
    let ca = ca();
    let (alice, g) = (PrivateKey::from_seed(1), PrivateKey::from_seed(50));
    let mut c = Chain::new(registry(&ca, &[&g], 1), &[&alice, &g]);
    let odd = make_chip(&ca, 4, "XYZ9000");
    let p = register_payload(&c, &odd, &alice);
    let tx = c.tx(&alice, p);
    assert_eq!(failed(&c.block(&[tx])[0]), "unknown_model");
    let action = GovAction::SetModel(Model {
        name: "XYZ9000".into(),
        compute_milli_tops: 5_000,
    });
    let approvals = approve(&action, c.registry().gov_nonce, &[&g]);
    let tx = c.tx(&g, Payload::Govern { action, approvals });
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);
    assert_eq!(
        c.registry().model("XYZ9000").unwrap().compute_milli_tops,
        5_000
    );
    let p = register_payload(&c, &odd, &alice);
    let tx = c.tx(&alice, p);
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);

    // A new vendor root; a non-root certificate is refused.
    let other = DevnetVendorCa::from_seed(b"second vendor").unwrap();
    let bad = GovAction::AddRoot(Root {
        kind: unet_types::chip::kind::VENDOR_X509,
        der: other.intermediate_der().to_vec(),
        devnet_only: true,
    });
    let approvals = approve(&bad, c.registry().gov_nonce, &[&g]);
    let tx = c.tx(
        &g,
        Payload::Govern {
            action: bad,
            approvals,
        },
    );
    assert_eq!(failed(&c.block(&[tx])[0]), "invalid_action");
    let good = GovAction::AddRoot(Root {
        kind: unet_types::chip::kind::VENDOR_X509,
        der: other.root_der().to_vec(),
        devnet_only: true,
    });
    let approvals = approve(&good, c.registry().gov_nonce, &[&g]);
    let tx = c.tx(
        &g,
        Payload::Govern {
            action: good,
            approvals,
        },
    );
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);
    let chip = make_chip(&other, 5, "BM1684X");
    let p = register_payload(&c, &chip, &alice);
    let tx = c.tx(&alice, p);
    assert_eq!(c.block(&[tx]), vec![TxStatus::Ok]);
}

#[test]
fn governance_firmware_policy_gates_gpu_registration() {
    use unet_poci::secure_element::DevnetNvidiaCa;
    use unet_types::firmware::{FirmwarePolicy, MeasurementRule};
    let ca = ca();
    let (alice, g) = (PrivateKey::from_seed(1), PrivateKey::from_seed(50));
    let mut reg = registry(&ca, &[&g], 1);
    let nv = DevnetNvidiaCa::from_seed(b"test nvidia", "Blackwell").unwrap();
    reg.roots.push(Root {
        kind: unet_types::chip::kind::NVIDIA_SPDM,
        der: nv.root_der().to_vec(),
        devnet_only: true,
    });
    reg.set_model(Model {
        name: "B200".into(),
        compute_milli_tops: 2_250_000,
    });
    let mut c = Chain::new(reg, &[&alice, &g]);
    let gpus: Vec<_> = (0..3u8)
        .map(|i| nv.manufacture([0xC0 + i; 16]).unwrap())
        .collect();
    let register = |c: &mut Chain, gpu: &unet_poci::secure_element::EmulatedGpu| {
        let (h, hash) = c.anchor();
        let nonce = registration_nonce(CHAIN, &hash, &alice.public_key());
        let payload = Payload::RegisterChip {
            anchor_height: h,
            evidence: gpu.evidence(&nonce).unwrap(),
        };
        let tx = c.tx(&alice, payload);
        c.block(&[tx]).remove(0)
    };
    let govern = |c: &mut Chain, policy: FirmwarePolicy| {
        let action = GovAction::SetFirmwarePolicy(policy);
        let approvals = approve(&action, c.registry().gov_nonce, &[&g]);
        let tx = c.tx(&g, Payload::Govern { action, approvals });
        c.block(&[tx]).remove(0)
    };
    // The emulated GPUs report driver 575.32 and VBIOS 97.00.88.00.0F.
    let strict = FirmwarePolicy {
        architecture: "Blackwell".into(),
        min_driver: "580.65.06".into(),
        ..Default::default()
    };
    assert_eq!(govern(&mut c, strict.clone()), TxStatus::Ok);
    assert_eq!(c.registry().firmware, vec![strict]);
    let refused = register(&mut c, &gpus[0]);
    assert_eq!(failed(&refused), "evidence_firmware_below_minimum");
    assert!(format!("{refused:?}").contains("580.65.06"), "{refused:?}");
    assert!(c.chip(&gpus[0].chip_id()).is_none());

    // Lowered to what the GPU runs, with one measurement pinned to its true value.
    let report = unet_poci::nvidia::parse_report(&gpus[0].attest(&[0; 32])).unwrap();
    let block = &report.measurements[4];
    let met = FirmwarePolicy {
        architecture: "Blackwell".into(),
        min_driver: "575.32".into(),
        min_vbios: "97.00.88.00.0F".into(),
        measurements: vec![MeasurementRule {
            index: block.index,
            allowed: vec![block.value.clone()],
        }],
    };
    assert_eq!(govern(&mut c, met.clone()), TxStatus::Ok);
    assert_eq!(register(&mut c, &gpus[0]), TxStatus::Ok);
    assert!(c.chip(&gpus[0].chip_id()).is_some());
    // Firmware whose measurement is not the reference value (here: the reference changed).
    let mut moved = met.clone();
    moved.measurements[0].allowed[0][0] ^= 1;
    assert_eq!(govern(&mut c, moved.clone()), TxStatus::Ok);
    assert_eq!(
        failed(&register(&mut c, &gpus[1])),
        "evidence_measurement_not_allowed"
    );

    // Malformed or meaningless policies are refused and change nothing.
    for bad in [
        FirmwarePolicy {
            architecture: "Rubin".into(),
            min_driver: "1".into(),
            ..Default::default()
        },
        FirmwarePolicy {
            architecture: "Blackwell".into(),
            min_driver: "latest".into(),
            ..Default::default()
        },
        FirmwarePolicy {
            architecture: "Blackwell".into(),
            measurements: vec![MeasurementRule {
                index: 1,
                allowed: vec![],
            }],
            ..Default::default()
        },
        FirmwarePolicy {
            architecture: "Hopper".into(), // nothing to remove
            ..Default::default()
        },
    ] {
        assert_eq!(failed(&govern(&mut c, bad)), "invalid_action");
    }
    assert_eq!(c.registry().firmware, vec![moved]);

    // A policy that requires nothing removes it: the second GPU now registers.
    let none = FirmwarePolicy {
        architecture: "Blackwell".into(),
        ..Default::default()
    };
    assert_eq!(govern(&mut c, none), TxStatus::Ok);
    assert!(c.registry().firmware.is_empty());
    assert_eq!(register(&mut c, &gpus[1]), TxStatus::Ok);
}
